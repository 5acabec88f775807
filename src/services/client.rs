//! What a service client is apart from its service: the settings both clients have (region,
//! endpoint, credentials, clock, session configuration), the regional endpoint URL, and
//! connecting. `TranscribeClient` and `LivenessClient` are each declared with
//! [`service_client!`] as a wrapper of a [`ServiceClient`].

use std::fmt;

use aws_credential_types::provider::SharedCredentialsProvider;
use url::Url;

use crate::proto::clock::Clock;
use crate::services::{check_region, dns_suffix, endpoint_url, ValidationError};
use crate::transport::{self, ConnectRequest, Connector, Session, SessionConfig};

/// Where a service's regional endpoint is and how its requests are signed.
#[derive(Debug)]
pub(crate) struct Service {
    /// The first label of the regional host; the FIPS endpoint's is this plus `-fips`.
    pub(crate) host: &'static str,
    /// The port, when not the scheme's default.
    pub(crate) port: Option<u16>,
    /// The SigV4 signing name.
    pub(crate) signing_name: &'static str,
}

/// A service client's settings, and connecting with them.
#[derive(Clone)]
pub(crate) struct ServiceClient {
    service: &'static Service,
    pub(crate) region: String,
    pub(crate) credentials: Option<SharedCredentialsProvider>,
    pub(crate) clock: Clock,
    pub(crate) endpoint: Option<Url>,
    pub(crate) fips: bool,
    pub(crate) config: SessionConfig,
}

impl ServiceClient {
    /// A client of `service` in `region` with a system clock and the regional endpoint.
    pub(crate) fn new(service: &'static Service, region: String, config: SessionConfig) -> Self {
        ServiceClient {
            service,
            region,
            credentials: None,
            clock: Clock::system(),
            endpoint: None,
            fips: false,
            config,
        }
    }

    /// The unsigned URL of `path` with `query`, on the custom endpoint if there is one, else on
    /// the regional (or FIPS) endpoint. The region is checked either way: it is signed.
    pub(crate) fn url(
        &self,
        path: &str,
        query: &[(&'static str, String)],
    ) -> Result<Url, ValidationError> {
        check_region(&self.region)?;
        let base = match &self.endpoint {
            Some(url) => url.clone(),
            None => self.regional_endpoint()?,
        };
        endpoint_url(&base, path, query)
    }

    fn regional_endpoint(&self) -> Result<Url, ValidationError> {
        let fips = if self.fips { "-fips" } else { "" };
        let port = self
            .service
            .port
            .map(|port| format!(":{port}"))
            .unwrap_or_default();
        let url = format!(
            "wss://{}{fips}.{}.{}{port}",
            self.service.host,
            self.region,
            dns_suffix(&self.region)
        );
        Url::parse(&url).map_err(|e| {
            ValidationError::new("region", format!("cannot form the endpoint host: {e}"))
        })
    }

    /// Connects to `url`, which is presigned (with this client's credentials and clock) only
    /// now, as it is dialled.
    pub(crate) async fn connect(&self, url: Url) -> Result<Session, transport::Error> {
        let mut request = ConnectRequest::new(url, self.region.clone(), self.service.signing_name)
            .clock(self.clock.clone());
        if let Some(provider) = &self.credentials {
            request = request.credentials(provider.clone());
        }
        Connector::new(self.config.clone()).connect(request).await
    }

    /// `Debug` of the client type `name`: its settings, and whether it has credentials (never
    /// the credentials themselves).
    pub(crate) fn fmt_debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint.as_ref().map(Url::as_str))
            .field("fips", &self.fips)
            .field("has_credentials", &self.credentials.is_some())
            .field("clock", &self.clock)
            .field("config", &self.config)
            .finish()
    }
}

/// Declares a client type that wraps a [`ServiceClient`] of `service`: the struct, `new`
/// (whose sessions sign frames as `new` says), the settings methods `credentials`, `clock`,
/// `endpoint`, `fips`, `region` and `get_clock`, and a `Debug` without credentials. The
/// service's own methods go in an `impl` of their own.
///
/// `connection` is what the service calls one connection (its credentials are pinned for it),
/// `fips_host` the FIPS endpoint's host as the docs show it, and the doc comments before `new`
/// and `clock` document those two, which say what differs between the services.
macro_rules! service_client {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            service: $service:expr,
            $(#[$new_meta:meta])*
            new: $frame_signing:expr,
            $(#[$clock_meta:meta])*
            clock,
            connection: $connection:literal,
            fips_host: $fips_host:literal $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name {
            core: $crate::services::client::ServiceClient,
        }

        impl $name {
            $(#[$new_meta])*
            pub fn new(region: impl Into<String>) -> Self {
                let config =
                    $crate::transport::SessionConfig::default().frame_signing($frame_signing);
                $name {
                    core: $crate::services::client::ServiceClient::new(
                        &$service,
                        region.into(),
                        config,
                    ),
                }
            }

            /// The credentials provider (static [`Credentials`](aws_credential_types::Credentials),
            /// or aws-config's chain).
            #[doc = concat!("Credentials are resolved when a ", $connection, " starts and pinned for it.")]
            pub fn credentials(
                mut self,
                provider: impl aws_credential_types::provider::ProvideCredentials + 'static,
            ) -> Self {
                self.core.credentials = Some(
                    aws_credential_types::provider::SharedCredentialsProvider::new(provider),
                );
                self
            }

            $(#[$clock_meta])*
            pub fn clock(mut self, clock: $crate::proto::clock::Clock) -> Self {
                self.core.clock = clock;
                self
            }

            /// A custom endpoint instead of the regional one: the service path is appended to
            /// its path, e.g. `http://127.0.0.1:PORT` for the local emulator or a proxy's URL.
            pub fn endpoint(mut self, url: url::Url) -> Self {
                self.core.endpoint = Some(url);
                self
            }

            #[doc = concat!("Uses the FIPS endpoint `", $fips_host, ".<region>…` (ignored with a custom endpoint).")]
            pub fn fips(mut self, enabled: bool) -> Self {
                self.core.fips = enabled;
                self
            }

            /// The region.
            pub fn region(&self) -> &str {
                &self.core.region
            }

            /// The clock.
            pub fn get_clock(&self) -> &$crate::proto::clock::Clock {
                &self.core.clock
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.core.fmt_debug(stringify!($name), f)
            }
        }
    };
}

pub(crate) use service_client;

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: Service = Service {
        host: "streaming-example",
        port: Some(8443),
        signing_name: "example",
    };

    #[test]
    fn regional_fips_and_custom_endpoints() {
        let mut client =
            ServiceClient::new(&SERVICE, "cn-north-1".into(), SessionConfig::default());
        let url = client.url("/x-websocket", &[("a", "1".into())]).unwrap();
        assert_eq!(
            url.as_str(),
            "wss://streaming-example.cn-north-1.amazonaws.com.cn:8443/x-websocket?a=1"
        );
        client.fips = true;
        assert_eq!(
            client.url("/x", &[]).unwrap().host_str(),
            Some("streaming-example-fips.cn-north-1.amazonaws.com.cn")
        );
        client.endpoint = Some(Url::parse("http://127.0.0.1:4566/base/").unwrap());
        assert_eq!(
            client.url("/x", &[]).unwrap().as_str(),
            "http://127.0.0.1:4566/base/x"
        );
        client.region = "evil.com/x".into();
        assert_eq!(client.url("/x", &[]).unwrap_err().field, "region");
    }

    #[test]
    fn debug_hides_credentials() {
        let credentials = || {
            aws_credential_types::Credentials::new(
                "AKIDEXAMPLE",
                "very-secret-key",
                Some("session-token-value".into()),
                None,
                "test",
            )
        };
        let mut shown = Vec::new();
        #[cfg(feature = "transcribe")]
        shown.push(format!(
            "{:?}",
            crate::services::transcribe::TranscribeClient::new("us-east-1")
                .credentials(credentials())
        ));
        #[cfg(feature = "liveness")]
        shown.push(format!(
            "{:?}",
            crate::services::liveness::LivenessClient::new("us-east-1").credentials(credentials())
        ));
        for shown in shown {
            assert!(shown.contains("Client { region: \"us-east-1\""), "{shown}");
            assert!(!shown.contains("very-secret-key"));
            assert!(!shown.contains("session-token-value"));
            assert!(shown.contains("has_credentials: true"));
        }
    }
}
