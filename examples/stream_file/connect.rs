//! Where to connect, as whom, on which clock: the endpoint check, the AWS credential chain, the
//! in-process emulator, Ctrl-C / SIGTERM, and how a rejection is put in plain words.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_types::error::display::DisplayErrorContext;
use serde_json::json;
use sigv4_ws::transport::{OffsetLearned, OffsetSource};
use sigv4_ws::Clock;
use tokio::sync::watch;
use url::Url;

use crate::cli::ConnectArgs;
use crate::fail::Fail;
use crate::output::Out;

/// Everything a client needs, resolved before anything is dialled.
pub struct Target {
    /// `None`: the regional AWS endpoint.
    pub endpoint: Option<Url>,
    pub region: String,
    pub credentials: SharedCredentialsProvider,
    pub clock: Clock,
    #[cfg(feature = "emulator")]
    pub emulator: Option<sigv4_ws::emulator::EmulatorHandle>,
}

impl Target {
    /// Whether the stream goes to the emulator started in this process.
    pub fn is_local_emulator(&self) -> bool {
        #[cfg(feature = "emulator")]
        {
            self.emulator.is_some()
        }
        #[cfg(not(feature = "emulator"))]
        {
            false
        }
    }

    /// Stops the in-process emulator, if any.
    pub async fn shutdown(self) {
        #[cfg(feature = "emulator")]
        if let Some(emulator) = self.emulator {
            emulator.shutdown().await;
        }
    }
}

/// Checks `--endpoint` before anything else happens: a URL, a scheme we speak, and no plain
/// `ws://` to a host that is not this machine (the presigned URL is a replayable credential).
pub fn parse_endpoint(text: &str) -> Result<Url, Fail> {
    let hint = "use wss://HOST[:PORT], or ws://127.0.0.1:PORT for a local emulator";
    let url = Url::parse(text)
        .map_err(|e| Fail::input(format!("--endpoint {text:?} is not a URL ({e}); {hint}")))?;
    let host = match url.host_str() {
        Some(host) if !host.is_empty() => host.to_owned(),
        _ => {
            return Err(Fail::input(format!(
                "--endpoint {text:?} has no host; {hint}"
            )))
        }
    };
    match url.scheme() {
        "wss" | "https" => Ok(url),
        "ws" | "http" => {
            if is_loopback(&url) {
                Ok(url)
            } else {
                Err(Fail::input(format!(
                    "--endpoint {text:?}: refusing plain {}:// to {host}, which is not this machine: the presigned URL \
                     would travel unencrypted; use wss:// (ws:// is only for 127.0.0.1, ::1 or localhost)",
                    url.scheme()
                )))
            }
        }
        other => Err(Fail::input(format!(
            "--endpoint {text:?}: the scheme {other}:// is not supported; {hint}"
        ))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Resolves the endpoint, credentials and clock for `transcribe` / `liveness`, starting the
/// in-process emulator when asked.
pub async fn prepare(args: &ConnectArgs, out: &Out) -> Result<Target, Fail> {
    let clock = Clock::system();
    clock.set_offset_millis(args.clock_offset_ms);
    let target = if args.emulator {
        start_emulator(args, clock, out).await?
    } else {
        let endpoint = args.endpoint.as_deref().map(parse_endpoint).transpose()?;
        let credentials = credential_chain(&args.region).await?;
        Target {
            endpoint,
            region: args.region.clone(),
            credentials,
            clock,
            #[cfg(feature = "emulator")]
            emulator: None,
        }
    };
    if args.clock_offset_ms != 0 {
        out.note(
            "clockOffset",
            &format!(
                "starting with a clock offset of {} ms (--clock-offset-ms)",
                args.clock_offset_ms
            ),
            json!({ "offsetMillis": args.clock_offset_ms, "source": "option" }),
        );
    }
    Ok(target)
}

/// A URL as the user would type it for a WebSocket (`ws://`, `wss://`).
pub fn ws_form(url: &Url) -> String {
    let text = url.as_str().trim_end_matches('/');
    if let Some(rest) = text.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = text.strip_prefix("https://") {
        format!("wss://{rest}")
    } else {
        text.to_owned()
    }
}

#[cfg(not(feature = "emulator"))]
async fn start_emulator(_args: &ConnectArgs, _clock: Clock, _out: &Out) -> Result<Target, Fail> {
    Err(Fail::input(
        "--emulator: this build has no emulator; build or install with `--features emulator`",
    ))
}

#[cfg(feature = "emulator")]
async fn start_emulator(args: &ConnectArgs, clock: Clock, out: &Out) -> Result<Target, Fail> {
    use sigv4_ws::emulator::{Emulator, EmulatorConfig};

    let skew = args.emulator_clock_offset_ms.unwrap_or(0);
    let signing = sigv4_ws::emulator::example_credentials();
    let mut config = EmulatorConfig::default().clock_offset_millis(skew);
    if let Some(secret) = &args.emulator_secret_access_key {
        config = config.credentials(aws_credential_types::Credentials::new(
            signing.access_key_id(),
            secret.clone(),
            None,
            None,
            "stream_file --emulator-secret-access-key",
        ));
    }
    let handle = Emulator::start(config)
        .await
        .map_err(|e| Fail::service(format!("cannot start the in-process emulator: {e}")))?;
    let endpoint = handle.endpoint();
    let shown = ws_form(&endpoint);
    out.note(
        "emulator",
        &format!(
            "emulator listening on {shown}{}",
            if skew != 0 {
                format!(" (its clock is {skew:+} ms from this host's)")
            } else {
                String::new()
            }
        ),
        json!({ "endpoint": shown, "clockOffsetMillis": skew }),
    );
    Ok(Target {
        endpoint: Some(endpoint),
        region: args.region.clone(),
        credentials: SharedCredentialsProvider::new(signing),
        clock,
        emulator: Some(handle),
    })
}

/// The standard AWS credential chain (environment, profile, SSO, web identity, container,
/// instance metadata), resolved once now so that missing credentials are a usage error.
async fn credential_chain(region: &str) -> Result<SharedCredentialsProvider, Fail> {
    let advice =
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pick a profile with AWS_PROFILE, \
                  run `aws sso login`, or use --emulator";
    // The chain's own HTTPS client (SSO, container and instance providers) on rustls + ring.
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .http_client(https)
        .load()
        .await;
    let provider = config.credentials_provider().ok_or_else(|| {
        Fail::input(format!(
            "no AWS credentials provider is configured; {advice}"
        ))
    })?;
    match tokio::time::timeout(Duration::from_secs(30), provider.provide_credentials()).await {
        Ok(Ok(_)) => Ok(provider),
        Ok(Err(CredentialsError::CredentialsNotLoaded(_))) => Err(Fail::input(format!(
            "no AWS credentials found (looked in the environment, the profile files, SSO, web identity, \
             container and instance metadata); {advice}"
        ))),
        Ok(Err(e)) => Err(Fail::input(format!(
            "could not load AWS credentials: {}; {advice}",
            first_line(&DisplayErrorContext(&e).to_string())
        ))),
        Err(_) => Err(Fail::input(format!(
            "no AWS credentials within 30 s (the credential chain did not answer); {advice}"
        ))),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text).trim()
}

/// Reports each clock correction once, in words and (JSON mode) as an object.
pub fn report_offsets(out: &Out, learned: &[OffsetLearned], already: &mut usize) {
    for offset in learned.iter().skip(*already) {
        let source = match offset.source {
            OffsetSource::UpgradeDate => "UpgradeDate",
            OffsetSource::RejectedUpgrade => "RejectedUpgrade",
            OffsetSource::ExceptionFrame => "ExceptionFrame",
            _ => "Other",
        };
        out.note(
            "clockOffsetLearned",
            &format!(
                "{offset} (this host's clock is {} ms {} the server's)",
                offset.current_millis.unsigned_abs(),
                if offset.current_millis >= 0 {
                    "behind"
                } else {
                    "ahead of"
                }
            ),
            json!({
                "source": source,
                "previousMillis": offset.previous_millis,
                "offsetMillis": offset.current_millis,
            }),
        );
    }
    *already = learned.len();
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        if self.claimed {
            CLAIMS.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Reports a failed stream: the in-process emulator's diagnosis of the rejection when there is
/// one, then returns the one-line error (the caller prints it and exits with its code).
pub async fn explain(out: &Out, target: &Target, message: &str, kind: crate::fail::Kind) -> Fail {
    let mut message = message.to_owned();
    if let Some(lines) = emulator_diagnosis(target).await {
        for line in &lines {
            out.stderr_line(line);
        }
        if out.is_json() {
            out.json_line(&json!({ "type": "diagnosis", "lines": lines }));
        }
    } else if !target.is_local_emulator() && kind == crate::fail::Kind::Service {
        let lower = message.to_ascii_lowercase();
        if lower.contains("signature expired") || lower.contains("not yet current") {
            message.push_str(
                " (this host's clock is far from AWS's: sync it with NTP, or pass --clock-offset-ms with the difference)",
            );
        }
    }
    Fail { kind, message }
}

/// The in-process emulator's account of the last refused connection, in plain words.
#[cfg(feature = "emulator")]
async fn emulator_diagnosis(target: &Target) -> Option<Vec<String>> {
    let emulator = target.emulator.as_ref()?;
    // The client may hear the refusal a moment before the emulator has written it down.
    let mut records = emulator.records();
    if !records.iter().any(|r| r.rejection.is_some()) {
        records = emulator
            .wait_for_finished(records.len().max(1), Duration::from_secs(2))
            .await;
    }
    let rejection = records.iter().rev().find_map(|r| r.rejection.as_ref())?;
    Some(rejection_lines(rejection))
}

/// A recorded rejection as lines: what was sent back, and the verifier's diagnosis.
#[cfg(feature = "emulator")]
pub fn rejection_lines(rejection: &sigv4_ws::emulator::RecordedRejection) -> Vec<String> {
    let mut lines = vec![format!(
        "the emulator refused the stream: {}: {}",
        rejection.exception_type, rejection.message
    )];
    if let Some(diagnosis) = &rejection.diagnosis {
        lines.push(format!("  diagnosis: {}", diagnosis.check()));
        if !diagnosis.detail().is_empty() {
            lines.push(format!("  {}", diagnosis.detail()));
        }
        if let Some(skew) = diagnosis.skew_millis() {
            lines.push(format!(
                "  clock: the signing time was {} ms {} the emulator's clock",
                skew.unsigned_abs(),
                if skew >= 0 { "ahead of" } else { "behind" }
            ));
        }
        for advice in diagnosis.advice() {
            lines.push(format!("  what to do: {advice}"));
        }
        // What the server computed (no secret in either: tokens and prior signatures masked).
        for (title, text) in [
            (
                "expected canonical request",
                diagnosis.expected_canonical_request(),
            ),
            (
                "expected string-to-sign",
                diagnosis.expected_string_to_sign(),
            ),
        ] {
            if let Some(text) = text {
                lines.push(format!("  {title}:"));
                lines.extend(text.split('\n').map(|line| format!("    {line}")));
            }
        }
    }
    lines
}

#[cfg(not(feature = "emulator"))]
async fn emulator_diagnosis(_target: &Target) -> Option<Vec<String>> {
    None
}

static INTERRUPTS: OnceLock<watch::Sender<u32>> = OnceLock::new();

/// Takes over Ctrl-C (and SIGTERM on Unix) for the whole run: the OS handlers are registered
/// right here, so no signal is lost between two waits. Call once, inside the runtime.
pub fn install_interrupts() {
    let (tx, _) = watch::channel(0u32);
    if INTERRUPTS.set(tx.clone()).is_err() {
        return;
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        if let (Ok(mut int), Ok(mut term)) = (int, term) {
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        got = int.recv() => if got.is_none() { return },
                        got = term.recv() => if got.is_none() { return },
                    }
                    tx.send_modify(|n| *n += 1);
                }
            });
            return;
        }
    }
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            tx.send_modify(|n| *n += 1);
        }
    });
}

/// How many [`Interrupts::claim`]s are alive: while one is, the command handles Ctrl-C itself
/// (ends its stream cleanly) and `main` only acts on a second press.
static CLAIMS: AtomicUsize = AtomicUsize::new(0);

/// Whether a command is handling Ctrl-C itself right now.
pub fn interrupts_claimed() -> bool {
    CLAIMS.load(Ordering::SeqCst) > 0
}

/// Ctrl-C / SIGTERM presses from now on.
pub struct Interrupts {
    rx: watch::Receiver<u32>,
    claimed: bool,
}

impl Interrupts {
    /// Watches for presses after this call.
    pub fn watch() -> Interrupts {
        let rx = match INTERRUPTS.get() {
            Some(tx) => tx.subscribe(),
            None => {
                // Not installed (unit tests): a channel that never changes.
                let (tx, rx) = watch::channel(0);
                std::mem::forget(tx);
                rx
            }
        };
        Interrupts { rx, claimed: false }
    }

    /// Watches for presses and tells `main` that this command ends cleanly on the first one.
    pub fn claim() -> Interrupts {
        let mut interrupts = Interrupts::watch();
        CLAIMS.fetch_add(1, Ordering::SeqCst);
        interrupts.claimed = true;
        interrupts
    }

    /// Resolves at the next press.
    pub async fn next(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked_before_dialling() {
        assert!(parse_endpoint("wss://transcribestreaming.us-east-1.amazonaws.com:8443").is_ok());
        assert!(parse_endpoint("ws://127.0.0.1:9000").is_ok());
        assert!(parse_endpoint("ws://localhost:9000").is_ok());
        assert!(parse_endpoint("http://[::1]:9000").is_ok());
        for (bad, says) in [
            ("not-a-url", "is not a URL"),
            ("ws://192.0.2.10:9000", "not this machine"),
            ("ws://example.com", "not this machine"),
            ("ftp://127.0.0.1/", "not supported"),
            ("wss://", "is not a URL"),
        ] {
            let err = parse_endpoint(bad).unwrap_err();
            assert_eq!(err.code(), 2, "{bad}");
            assert!(err.message.contains(says), "{bad}: {}", err.message);
            assert_eq!(err.to_string().lines().count(), 1);
        }
    }
}
