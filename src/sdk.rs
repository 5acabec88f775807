//! One clock for the whole app: [`ClockInterceptor`] lets every aws-sdk-rust client correct
//! the same [`Clock`] the streams sign with (feature `sdk-config`).
//!
//! Give the clock to the SDK client twice — as its `time_source`, so its requests sign with the
//! corrected time, and through the interceptor, so what its responses say about the server's
//! time corrects the clock:
//!
//! ```no_run
//! # async fn example() {
//! use sigv4_ws::{sdk::ClockInterceptor, services::transcribe::TranscribeClient, Clock};
//!
//! let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let transcribe = TranscribeClient::from_conf(&shared);
//!
//! // One clock for SDK requests and streams:
//! let clock = Clock::system();
//! let sts = aws_sdk_sts::Client::from_conf(
//!     aws_sdk_sts::config::Builder::from(&shared)
//!         .time_source(clock.clone())
//!         .interceptor(ClockInterceptor::new(clock.clone()))
//!         .build(),
//! );
//! let transcribe = transcribe.clock(clock);
//! // Any call through `sts` now corrects the clock `transcribe`'s next stream presigns with.
//! # let _ = (sts, transcribe);
//! # }
//! ```
//!
//! The evidence is each response's `Date` header (measured over the request's round trip, as
//! [`crate::proto::skew::observe_date_header`] does for WebSocket upgrades) and, for rejected
//! requests, the server time written in a "Signature expired" / "Signature not yet current"
//! message. Both go through [`Clock::observe`], so the clock's update policy decides.

use std::time::SystemTime;

use aws_runtime::service_clock_skew::DisableClockSkewCorrection;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeDeserializationInterceptorContextRef,
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

use crate::proto::clock::{Clock, SkewObservation};
use crate::proto::skew::{observe_date_header, observe_skew_message};

/// An aws-sdk-rust interceptor that feeds what each response says about the server's time into
/// one [`Clock`], under the clock's update policy.
///
/// Add it to any SDK client's config with `.interceptor(ClockInterceptor::new(clock.clone()))`
/// and give the same clock as the config's `time_source` (see the [module docs](self)).
///
/// While it is installed, the SDK's own per-client skew correction is switched off for the
/// calls it sees: that correction is measured against the `time_source`, so with the clock as
/// time source both would add the same offset and requests would sign twice corrected.
#[derive(Clone, Debug)]
pub struct ClockInterceptor {
    clock: Clock,
}

impl ClockInterceptor {
    /// An interceptor that corrects `clock` (and every clone of it).
    pub fn new(clock: Clock) -> Self {
        ClockInterceptor { clock }
    }

    /// The clock it corrects.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    fn apply(&self, observation: &SkewObservation, evidence: &'static str) {
        let update = self.clock.observe(observation);
        if update.changed() {
            tracing::debug!(
                evidence,
                previous_millis = update.previous_millis,
                offset_millis = update.current_millis,
                "clock offset learned from an SDK response"
            );
        } else {
            tracing::trace!(
                evidence,
                offset_millis = update.current_millis,
                estimate_millis = observation.estimated_offset_millis(),
                "SDK response agrees with the clock"
            );
        }
    }
}

/// The clock's uncorrected time when the attempt's request left.
#[derive(Clone, Copy, Debug)]
struct SentAt(SystemTime);

impl Storable for SentAt {
    type Storer = StoreReplace<Self>;
}

impl Intercept for ClockInterceptor {
    fn name(&self) -> &'static str {
        "sigv4_ws::ClockInterceptor"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // aws-runtime's ServiceClockSkewInterceptor (service_clock_skew.rs) measures its skew
        // against the time source and adds it when signing: with this clock as the time source
        // that would count every learned offset twice. The clock carries the offset instead.
        cfg.interceptor_state()
            .store_put(DisableClockSkewCorrection::from(true));
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(SentAt(self.clock.source_now()));
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let received_at = self.clock.source_now();
        let response = context.response();
        // A cached response's Date is the cache's, not now (RFC 9111 section 5.1).
        if response.headers().get("age").is_some() {
            return Ok(());
        }
        let (Some(date), Some(SentAt(sent_at))) =
            (response.headers().get("date"), cfg.load::<SentAt>())
        else {
            return Ok(());
        };
        match observe_date_header(date, *sent_at, received_at) {
            Ok(observation) => self.apply(&observation, "Date header"),
            Err(why) => tracing::debug!(%why, "SDK response's Date header not used"),
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context.output_or_error().is_ok() {
            return Ok(());
        }
        // By now the orchestrator has read a non-streaming body into memory.
        let Some(body) = context.response().body().bytes() else {
            return Ok(());
        };
        let text = String::from_utf8_lossy(body);
        if let Ok(observation) = observe_skew_message(&text, self.clock.source_now()) {
            self.apply(&observation, "skew error message");
        }
        Ok(())
    }
}
