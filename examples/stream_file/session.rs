//! What `transcribe` and `liveness` share around one streaming session: reading the input off
//! the async threads, the service client pointed at the [`Target`], the pacing the sender waits
//! on, Ctrl-C and clock corrections while connected, the wait for the sending task, and how a
//! run that failed is reported.

use std::fmt::Display;
use std::path::Path;
use std::time::Duration;

use sigv4_ws::services::liveness::{
    LivenessClient, LivenessError, LivenessEvent, LivenessReceiver,
};
use sigv4_ws::services::pacing::RealTimePacer;
use sigv4_ws::services::transcribe::{
    EventReceiver, TranscribeClient, TranscribeError, TranscribeEvent,
};
use sigv4_ws::transport::{self, ErrorKind, OffsetLearned};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cli::ConnectArgs;
use crate::connect::{self, Interrupts, Target};
use crate::fail::{Fail, Kind};
use crate::output::{fmt_time, Out};

/// Opens the input file with `open` on a blocking thread (decoding takes a while).
pub async fn read_input<T: Send + 'static>(
    file: &Path,
    open: impl FnOnce(&Path) -> Result<T, Fail> + Send + 'static,
) -> Result<T, Fail> {
    let path = file.to_owned();
    tokio::task::spawn_blocking(move || open(&path))
        .await
        .map_err(|e| Fail::input(format!("cannot read {}: {e}", file.display())))?
}

/// A service client pointed at a [`Target`]: its region, credentials, clock and endpoint.
pub trait ForTarget {
    fn for_target(target: &Target) -> Self;
}

// The library makes both clients with the same settings methods, but no trait of its own.
macro_rules! for_target {
    ($($client:ident),+) => {$(
        impl ForTarget for $client {
            fn for_target(target: &Target) -> Self {
                let client = $client::new(target.region.clone())
                    .credentials(target.credentials.clone())
                    .clock(target.clock.clone());
                match &target.endpoint {
                    Some(endpoint) => client.endpoint(endpoint.clone()),
                    None => client,
                }
            }
        }
    )+};
}

for_target!(TranscribeClient, LivenessClient);

/// Where the stream goes, in words: the endpoint as a WebSocket URL, or the service and region.
pub fn destination(target: &Target, service: &str) -> String {
    match &target.endpoint {
        Some(url) => connect::ws_form(url),
        None => format!("{service} in {}", target.region),
    }
}

/// Real time, or as fast as the server takes (`--fast`).
pub fn pacer(args: &ConnectArgs) -> RealTimePacer {
    if args.fast {
        RealTimePacer::unpaced()
    } else {
        RealTimePacer::new()
    }
}

/// Waits until `media` more may be sent: `false` when the sender is told to stop first (or
/// already was).
pub async fn next_turn(
    pacer: &mut RealTimePacer,
    media: Duration,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        () = pacer.pace(media) => true,
        _ = stop.changed() => false,
    }
}

/// The receiving half of a service stream.
pub trait Receiver {
    type Event;
    type Error;
    async fn next_event(&mut self) -> Option<Result<Self::Event, Self::Error>>;
    fn offsets_learned(&self) -> Vec<OffsetLearned>;
}

impl Receiver for EventReceiver {
    type Event = TranscribeEvent;
    type Error = TranscribeError;

    async fn next_event(&mut self) -> Option<Result<TranscribeEvent, TranscribeError>> {
        EventReceiver::next_event(self).await
    }

    fn offsets_learned(&self) -> Vec<OffsetLearned> {
        EventReceiver::offsets_learned(self)
    }
}

impl Receiver for LivenessReceiver {
    type Event = LivenessEvent;
    type Error = LivenessError;

    async fn next_event(&mut self) -> Option<Result<LivenessEvent, LivenessError>> {
        LivenessReceiver::next_event(self).await
    }

    fn offsets_learned(&self) -> Vec<OffsetLearned> {
        LivenessReceiver::offsets_learned(self)
    }
}

/// A session from the moment it is connected: the first Ctrl-C ends it cleanly (a second one
/// quits at once, see `main`), and every clock correction is reported once.
pub struct Connected<'a> {
    out: &'a Out,
    interrupts: Interrupts,
    offsets_reported: usize,
}

impl<'a> Connected<'a> {
    /// Right after the connection: claims Ctrl-C and reports the corrections made connecting.
    pub fn new(out: &'a Out, learned: &[OffsetLearned]) -> Connected<'a> {
        let mut connected = Connected {
            out,
            interrupts: Interrupts::claim(),
            offsets_reported: 0,
        };
        connected.report_offsets(learned);
        connected
    }

    fn report_offsets(&mut self, learned: &[OffsetLearned]) {
        connect::report_offsets(self.out, learned, &mut self.offsets_reported);
    }

    /// Shows every event with `show` until the stream ends or fails, and returns the error that
    /// ended it. The first Ctrl-C tells the sender to stop (it then ends the `what` cleanly);
    /// the sender is told to stop in any case once the stream has ended.
    pub async fn receive<R: Receiver>(
        &mut self,
        receiver: &mut R,
        stop: &watch::Sender<bool>,
        what: &str,
        mut show: impl FnMut(&R::Event),
    ) -> Option<R::Error> {
        let mut interrupted = false;
        let mut receive_error = None;
        loop {
            tokio::select! {
                event = receiver.next_event() => match event {
                    Some(Ok(event)) => {
                        show(&event);
                        self.report_offsets(&receiver.offsets_learned());
                    }
                    Some(Err(error)) => {
                        receive_error = Some(error);
                        break;
                    }
                    None => break,
                },
                () = self.interrupts.next(), if !interrupted => {
                    interrupted = true;
                    let _ = stop.send(true);
                    self.out.stderr_line(&format!(
                        "interrupted: ending the {what} (Ctrl-C again to quit at once)"
                    ));
                }
            }
        }
        self.report_offsets(&receiver.offsets_learned());
        let _ = stop.send(true);
        receive_error
    }
}

/// What the sending task returned, waiting at most `wait` for it to finish.
pub async fn sent<T>(task: JoinHandle<T>, wait: Duration) -> Result<T, Fail> {
    match tokio::time::timeout(wait, task).await {
        Ok(Ok(sent)) => Ok(sent),
        Ok(Err(join)) => Err(Fail::service(format!("the sending task failed: {join}"))),
        Err(_) => Err(Fail::service("the sending task did not finish")),
    }
}

/// The end of a run the user interrupted after `sent` of `media`.
pub fn interrupted_after(sent: Duration, media: &str, what: &str) -> Fail {
    Fail::interrupted(format!(
        "interrupted after {} of {media}; the {what} was ended cleanly",
        fmt_time(sent.as_secs_f64())
    ))
}

/// A service's error, which decides the exit code.
pub trait ServiceError: Display {
    fn exit_kind(&self) -> Kind;
}

/// Whether a transport error is the user's doing (exit code 2): a request the service would
/// refuse, plain `ws://` to another machine, or no credentials.
pub fn is_usage_error(error: &transport::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::InvalidRequest | ErrorKind::PlaintextRefused | ErrorKind::Credentials
    )
}

/// Why a run failed: the service said no (explained by [`conclude`]), or anything else.
pub enum Failure {
    Service { message: String, kind: Kind },
    Fail(Fail),
}

impl From<Fail> for Failure {
    fn from(fail: Fail) -> Self {
        Failure::Fail(fail)
    }
}

impl<E: ServiceError> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure::Service {
            message: error.to_string(),
            kind: error.exit_kind(),
        }
    }
}

/// Ends a run: a service failure explained (with the in-process emulator's diagnosis when there
/// is one), the progress bar removed, the in-process emulator stopped.
pub async fn conclude(out: &Out, target: Target, result: Result<(), Failure>) -> Result<(), Fail> {
    let result = match result {
        Err(Failure::Service { message, kind }) => {
            Err(connect::explain(out, &target, &message, kind).await)
        }
        Err(Failure::Fail(fail)) => Err(fail),
        Ok(()) => Ok(()),
    };
    out.finish();
    target.shutdown().await;
    result
}
