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
    /// The service id of its Smithy model, which names its endpoint overrides in the shared
    /// config (`AWS_ENDPOINT_URL_<ID>`, a profile's `[services]` section).
    #[cfg_attr(not(feature = "sdk-config"), allow(dead_code))]
    pub(crate) sdk_id: &'static str,
}

/// A service client's settings, and connecting with them.
#[derive(Clone)]
pub(crate) struct ServiceClient {
    service: &'static Service,
    pub(crate) region: String,
    pub(crate) credentials: Option<SharedCredentialsProvider>,
    pub(crate) clock: Clock,
    pub(crate) endpoint: Option<Url>,
    /// A configured endpoint that is not a URL, reported when a stream starts.
    pub(crate) bad_endpoint: Option<ValidationError>,
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
            bad_endpoint: None,
            fips: false,
            config,
        }
    }

    /// A client of `service` with what the shared AWS config says: region, credentials
    /// provider, time source (as the source of this client's clock), FIPS, and endpoint URL.
    #[cfg(feature = "sdk-config")]
    pub(crate) fn from_sdk_config(
        service: &'static Service,
        shared: &aws_types::SdkConfig,
        config: SessionConfig,
    ) -> Self {
        let region = shared.region().map(|r| r.to_string()).unwrap_or_default();
        let mut client = ServiceClient::new(service, region, config);
        client.credentials = shared.credentials_provider();
        if let Some(source) = shared.time_source() {
            client.clock = Clock::new(source);
        }
        client.fips = shared.use_fips().unwrap_or(false);
        if let Some(endpoint) = configured_endpoint(service.sdk_id, shared) {
            match Url::parse(&endpoint) {
                Ok(url) => client.endpoint = Some(url),
                Err(e) => {
                    client.bad_endpoint = Some(ValidationError::new(
                        "endpoint",
                        format!(
                            "the configured endpoint URL {endpoint:?} is not a URL ({e}); fix \
                             AWS_ENDPOINT_URL / the profile's endpoint_url"
                        ),
                    ))
                }
            }
        }
        client
    }

    /// The unsigned URL of `path` with `query`, on the custom endpoint if there is one, else on
    /// the regional (or FIPS) endpoint. The region is checked either way: it is signed.
    pub(crate) fn url(
        &self,
        path: &str,
        query: &[(&'static str, String)],
    ) -> Result<Url, ValidationError> {
        if let Some(bad) = &self.bad_endpoint {
            return Err(bad.clone());
        }
        if self.region.is_empty() {
            return Err(ValidationError::new(
                "region",
                "no region is configured: set AWS_REGION or a profile's `region`, or name one",
            ));
        }
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

/// The endpoint URL the shared config sets for the service with `sdk_id`, resolved as the
/// generated aws-sdk-rust clients do (aws-sdk-sts `config.rs`, `service_config_key`): the
/// service-specific setting (`AWS_ENDPOINT_URL_<ID>`, the profile's `[services]` entry), then
/// the global one. aws-config leaves both out when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is set.
#[cfg(feature = "sdk-config")]
fn configured_endpoint(sdk_id: &str, shared: &aws_types::SdkConfig) -> Option<String> {
    let key = aws_types::service_config::ServiceConfigKey::builder()
        .service_id(sdk_id)
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok()?;
    shared
        .service_config()
        .and_then(|loader| loader.load_config(key))
        .or_else(|| shared.endpoint_url().map(str::to_owned))
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
            fips_host: $fips_host:literal,
            module: $module:literal,
            env_id: $env_id:literal $(,)?
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

            /// A client configured from the shared AWS config, as aws-sdk-rust's
            /// `Client::new(&SdkConfig)` is: its region, credentials provider, FIPS setting,
            /// endpoint URL (the service's own override first, e.g.
            #[doc = concat!("`AWS_ENDPOINT_URL_", $env_id, "`), and time source (the source of")]
            /// this client's clock; hand one [`Clock`](crate::Clock) to [`Self::clock`] to share it
            /// with other clients). Feature `sdk-config`.
            ///
            /// ```no_run
            /// # async fn example() {
            #[doc = concat!("let client = sigv4_ws::services::", $module, "::", stringify!($name), "::from_conf(")]
            ///     &aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
            /// );
            /// # }
            /// ```
            #[cfg(feature = "sdk-config")]
            pub fn from_conf(shared: &aws_types::SdkConfig) -> Self {
                let config =
                    $crate::transport::SessionConfig::default().frame_signing($frame_signing);
                $name {
                    core: $crate::services::client::ServiceClient::from_sdk_config(
                        &$service, shared, config,
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
                self.core.bad_endpoint = None;
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

        #[cfg(feature = "sdk-config")]
        impl From<&aws_types::SdkConfig> for $name {
            /// As [`Self::from_conf`].
            fn from(shared: &aws_types::SdkConfig) -> Self {
                Self::from_conf(shared)
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
        sdk_id: "Example",
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

    /// A profile/environment loader that knows one service's endpoint override, keyed as
    /// aws-config's `EnvServiceConfig` is asked (service id, `AWS_ENDPOINT_URL`, `endpoint_url`).
    #[cfg(feature = "sdk-config")]
    #[derive(Debug)]
    struct OneServiceEndpoint(&'static str, &'static str);

    #[cfg(feature = "sdk-config")]
    impl aws_types::service_config::LoadServiceConfig for OneServiceEndpoint {
        fn load_config(
            &self,
            key: aws_types::service_config::ServiceConfigKey<'_>,
        ) -> Option<String> {
            (key.service_id() == self.0
                && key.env() == "AWS_ENDPOINT_URL"
                && key.profile() == "endpoint_url")
                .then(|| self.1.to_owned())
        }
    }

    #[cfg(feature = "sdk-config")]
    #[test]
    fn shared_config_sets_region_credentials_fips_time_and_endpoint() {
        use aws_types::region::Region;
        use std::time::{Duration, UNIX_EPOCH};

        let time = crate::ManualTime::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let base = aws_types::SdkConfig::builder()
            .region(Region::new("eu-west-1"))
            .credentials_provider(SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("AKID", "secret", None, None, "test"),
            ))
            .time_source(time.clone())
            .use_fips(true);
        let shared = base.build();
        let client = ServiceClient::from_sdk_config(&SERVICE, &shared, SessionConfig::default());
        assert_eq!(client.region, "eu-west-1");
        assert!(client.credentials.is_some());
        assert_eq!(
            client.clock.now(),
            aws_smithy_async::time::TimeSource::now(&time)
        );
        assert_eq!(
            client.url("/x", &[]).unwrap().host_str(),
            Some("streaming-example-fips.eu-west-1.amazonaws.com")
        );

        // The service's own override wins over the global one; another service's is ignored.
        let global = shared
            .to_builder()
            .endpoint_url("http://127.0.0.1:1/global")
            .build();
        let client = ServiceClient::from_sdk_config(&SERVICE, &global, SessionConfig::default());
        assert_eq!(
            client.url("/x", &[]).unwrap().as_str(),
            "http://127.0.0.1:1/global/x"
        );
        for (id, expected) in [
            ("Example", "http://127.0.0.1:2/own/x"),
            ("Other", "http://127.0.0.1:1/global/x"),
        ] {
            let with_own = shared
                .to_builder()
                .endpoint_url("http://127.0.0.1:1/global")
                .service_config(OneServiceEndpoint(id, "http://127.0.0.1:2/own"))
                .build();
            let client =
                ServiceClient::from_sdk_config(&SERVICE, &with_own, SessionConfig::default());
            assert_eq!(client.url("/x", &[]).unwrap().as_str(), expected, "{id}");
        }

        let broken = shared.to_builder().endpoint_url("not a url").build();
        let client = ServiceClient::from_sdk_config(&SERVICE, &broken, SessionConfig::default());
        let error = client.url("/x", &[]).unwrap_err();
        assert_eq!(error.field, "endpoint");
        assert!(error.reason.contains("AWS_ENDPOINT_URL"), "{error}");

        let no_region = aws_types::SdkConfig::builder().build();
        let client = ServiceClient::from_sdk_config(&SERVICE, &no_region, SessionConfig::default());
        let error = client.url("/x", &[]).unwrap_err();
        assert!(error.reason.contains("AWS_REGION"), "{error}");
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
