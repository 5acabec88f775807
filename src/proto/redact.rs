//! Log-safe display of presigned URLs: a presigned URL is a bearer token.
//!
//! The signature and the session token are replaced by `***`, user info is dropped, and
//! everything else (scheme, host, path, parameter names, dates, service parameters) is kept
//! because that is what a reader needs to diagnose a rejection.

use std::fmt;

use url::Url;

/// Query parameters whose values are secrets.
const SECRET_PARAMS: [&str; 2] = ["X-Amz-Signature", "X-Amz-Security-Token"];

/// Whether the value of this query parameter must never be shown.
pub fn is_secret_param(name: &str) -> bool {
    SECRET_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// Wraps a URL so that `Display` and `Debug` mask its secrets.
///
/// ```
/// let url = url::Url::parse("wss://h:8443/p?a=1&X-Amz-Signature=abc&X-Amz-Security-Token=t").unwrap();
/// let shown = sigv4_ws::proto::redact::RedactedUrl(&url).to_string();
/// assert_eq!(shown, "wss://h:8443/p?a=1&X-Amz-Signature=***&X-Amz-Security-Token=***");
/// ```
#[derive(Clone, Copy)]
pub struct RedactedUrl<'a>(pub &'a Url);

impl fmt::Display for RedactedUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.0;
        write!(f, "{}://", url.scheme())?;
        if let Some(host) = url.host_str() {
            f.write_str(host)?;
        }
        if let Some(port) = url.port() {
            write!(f, ":{port}")?;
        }
        f.write_str(url.path())?;
        if let Some(query) = url.query() {
            f.write_str("?")?;
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    f.write_str("&")?;
                }
                let (name, _) = pair.split_once('=').unwrap_or((pair, ""));
                let decoded = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
                if is_secret_param(&decoded) {
                    write!(f, "{name}=***")?;
                } else {
                    f.write_str(pair)?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for RedactedUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secrets_and_userinfo() {
        let url = Url::parse(
            "wss://user:pw@h/p?x-amz-signature=s&b=2&X-Amz-Security-Token=tok%2Fen#frag",
        )
        .unwrap();
        let shown = RedactedUrl(&url).to_string();
        assert_eq!(
            shown,
            "wss://h/p?x-amz-signature=***&b=2&X-Amz-Security-Token=***"
        );
        assert!(!format!("{:?}", RedactedUrl(&url)).contains("tok"));
    }
}
