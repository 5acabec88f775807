//! The one clock: a time source plus ONE shared, signed offset, read by the presigner and the event signer alike.
//!
//! This is the only module of the crate that reads the system clock (through
//! [`aws_smithy_async::time::SystemTimeSource`]); everything else asks a [`Clock`].
//! The offset works like the JavaScript SDK's `systemClockOffset`: corrected time is
//! source time plus offset, in milliseconds.
//!
//! # Update policy
//!
//! Evidence of the server's time arrives as a [`SkewObservation`] (from an HTTP `Date`
//! header or from the times inside a "Signature expired" / "Signature not yet current"
//! message, see [`crate::proto::skew`]). Each observation is an estimate of the offset
//! (server time minus local source time) with an uncertainty: a `Date` header has a
//! resolution of one second, and the response took time to arrive. [`Clock::observe`]
//! applies it as follows:
//!
//! * If the corrected clock already agrees with the estimate to within the observation's
//!   uncertainty, the offset is left alone. Repeated `Date` headers therefore never make the
//!   offset flap between neighbouring seconds.
//! * Otherwise the offset becomes the estimate, in either direction (server ahead or behind).
//! * The update is one atomic step, so concurrent observers on clones of the clock never
//!   tear the value; the last disagreeing observation wins.
//!
//! [`Clock::set_offset_millis`] overrides all of this by hand.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use aws_smithy_async::time::{SharedTimeSource, SystemTimeSource, TimeSource};

/// Largest offset the clock accepts, in either direction: 100 years. Larger values are clamped,
/// so that corrected time never overflows `SystemTime`.
pub const MAX_OFFSET_MILLIS: i64 = 100 * 366 * 24 * 3600 * 1000;

/// A cheap-to-clone handle on one time source and ONE shared signed offset.
///
/// Every clone sees the same offset: correcting it through any clone (for example after the
/// server's `Date` header arrives) changes the time read by every presigner and event signer
/// holding a clone. `Clock` implements [`TimeSource`], so the same corrected time can be given
/// to aws-sdk-rust clients.
///
/// ```
/// use sigv4_ws::Clock;
/// let clock = Clock::system();
/// let signer_view = clock.clone();
/// clock.set_offset_millis(3_600_000); // the server is an hour ahead of this host
/// assert_eq!(signer_view.offset_millis(), 3_600_000);
/// ```
#[derive(Clone)]
pub struct Clock {
    inner: Arc<ClockInner>,
}

struct ClockInner {
    source: SharedTimeSource,
    offset_millis: AtomicI64,
}

impl Clock {
    /// A clock over the system's wall clock, with a zero offset.
    pub fn system() -> Clock {
        Clock::new(SystemTimeSource::new())
    }

    /// A clock over any time source (a fixed or manual one in tests), with a zero offset.
    pub fn new(source: impl TimeSource + 'static) -> Clock {
        Clock {
            inner: Arc::new(ClockInner {
                source: SharedTimeSource::new(source),
                offset_millis: AtomicI64::new(0),
            }),
        }
    }

    /// Corrected time: source time plus the offset. Use this for everything that is signed.
    pub fn now(&self) -> SystemTime {
        apply_offset(self.source_now(), self.offset_millis())
    }

    /// The uncorrected time of the underlying source. Skew evidence is measured against this.
    pub fn source_now(&self) -> SystemTime {
        self.inner.source.now()
    }

    /// The current offset in milliseconds (positive: the server is ahead of this host).
    pub fn offset_millis(&self) -> i64 {
        self.inner.offset_millis.load(Ordering::Acquire)
    }

    /// Sets the offset by hand (like `systemClockOffset`), clamped to ±[`MAX_OFFSET_MILLIS`].
    pub fn set_offset_millis(&self, millis: i64) {
        self.inner.offset_millis.store(
            millis.clamp(-MAX_OFFSET_MILLIS, MAX_OFFSET_MILLIS),
            Ordering::Release,
        );
    }

    /// Applies one piece of evidence of the server's time, following the module's update policy.
    pub fn observe(&self, observation: &SkewObservation) -> OffsetUpdate {
        let estimate = observation
            .estimated_offset_millis
            .clamp(-MAX_OFFSET_MILLIS, MAX_OFFSET_MILLIS);
        let tolerance = observation.uncertainty_millis;
        let result =
            self.inner
                .offset_millis
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                    if current.abs_diff(estimate) <= tolerance {
                        None
                    } else {
                        Some(estimate)
                    }
                });
        match result {
            Ok(previous) => OffsetUpdate {
                previous_millis: previous,
                current_millis: estimate,
            },
            Err(unchanged) => OffsetUpdate {
                previous_millis: unchanged,
                current_millis: unchanged,
            },
        }
    }
}

impl TimeSource for Clock {
    fn now(&self) -> SystemTime {
        Clock::now(self)
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clock")
            .field("offset_millis", &self.offset_millis())
            .finish_non_exhaustive()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

/// `time + millis`, saturating at the representable range instead of panicking.
pub(crate) fn apply_offset(time: SystemTime, millis: i64) -> SystemTime {
    let magnitude = Duration::from_millis(millis.unsigned_abs());
    let shifted = if millis >= 0 {
        time.checked_add(magnitude)
    } else {
        time.checked_sub(magnitude)
    };
    shifted.unwrap_or(time)
}

/// Signed difference `a - b` in milliseconds, saturating at `i64` bounds.
pub(crate) fn millis_between(a: SystemTime, b: SystemTime) -> i64 {
    match a.duration_since(b) {
        Ok(ahead) => i64::try_from(ahead.as_millis()).unwrap_or(i64::MAX),
        Err(behind) => i64::try_from(behind.duration().as_millis())
            .map(|m| -m)
            .unwrap_or(i64::MIN),
    }
}

/// One estimate of the offset between the server's clock and this host's source clock.
///
/// Build it with the constructors in [`crate::proto::skew`] (from a `Date` header or a
/// skew message) or with [`SkewObservation::new`] for evidence of your own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkewObservation {
    estimated_offset_millis: i64,
    uncertainty_millis: u64,
    source: EvidenceSource,
}

/// Where a [`SkewObservation`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EvidenceSource {
    /// An HTTP `Date` header (for example on the WebSocket upgrade response).
    DateHeader,
    /// The server time inside a "Signature expired" / "Signature not yet current" message.
    SkewMessage,
    /// Supplied by the caller.
    Other,
}

impl SkewObservation {
    /// An observation that the offset is `estimated_offset_millis`, give or take `uncertainty_millis`.
    pub fn new(
        estimated_offset_millis: i64,
        uncertainty_millis: u64,
        source: EvidenceSource,
    ) -> Self {
        SkewObservation {
            estimated_offset_millis,
            uncertainty_millis,
            source,
        }
    }

    /// From a server time observed at a local source instant, with a known uncertainty.
    pub fn from_server_time(
        server_time: SystemTime,
        observed_at: SystemTime,
        uncertainty_millis: u64,
        source: EvidenceSource,
    ) -> Self {
        SkewObservation::new(
            millis_between(server_time, observed_at),
            uncertainty_millis,
            source,
        )
    }

    /// The estimated offset: server time minus local source time, in milliseconds.
    pub fn estimated_offset_millis(&self) -> i64 {
        self.estimated_offset_millis
    }

    /// How far the true offset may be from the estimate, in milliseconds.
    pub fn uncertainty_millis(&self) -> u64 {
        self.uncertainty_millis
    }

    /// Where the evidence came from.
    pub fn source(&self) -> EvidenceSource {
        self.source
    }
}

/// What [`Clock::observe`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetUpdate {
    /// The offset before the observation, in milliseconds.
    pub previous_millis: i64,
    /// The offset after it, in milliseconds.
    pub current_millis: i64,
}

impl OffsetUpdate {
    /// Whether the observation changed the offset.
    pub fn changed(&self) -> bool {
        self.previous_millis != self.current_millis
    }

    /// By how much the offset moved, in milliseconds.
    pub fn delta_millis(&self) -> i64 {
        self.current_millis.saturating_sub(self.previous_millis)
    }
}

/// A time source set and advanced by hand, for tests and simulations. Clones share the time.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use sigv4_ws::{Clock, ManualTime};
/// let time = ManualTime::new(UNIX_EPOCH + Duration::from_secs(1_724_194_903));
/// let clock = Clock::new(time.clone());
/// time.advance(Duration::from_secs(10));
/// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(1_724_194_913));
/// ```
#[derive(Clone, Debug)]
pub struct ManualTime {
    now: Arc<Mutex<SystemTime>>,
}

impl ManualTime {
    /// Starts at `start`.
    pub fn new(start: SystemTime) -> Self {
        ManualTime {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Sets the time (it may go backwards: a host clock can be reset).
    pub fn set(&self, time: SystemTime) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = time;
    }

    /// Moves the time forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now = now.checked_add(by).unwrap_or(*now);
    }
}

impl TimeSource for ManualTime {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn clones_share_one_offset() {
        let time = ManualTime::new(at(1_000_000));
        let a = Clock::new(time);
        let b = a.clone();
        a.set_offset_millis(-1500);
        assert_eq!(b.offset_millis(), -1500);
        assert_eq!(b.now(), at(1_000_000) - Duration::from_millis(1500));
        assert_eq!(b.source_now(), at(1_000_000));
    }

    #[test]
    fn observation_inside_uncertainty_keeps_offset() {
        let clock = Clock::new(ManualTime::new(at(1_000_000)));
        clock.set_offset_millis(300_000);
        let update = clock.observe(&SkewObservation::new(
            300_900,
            1000,
            EvidenceSource::DateHeader,
        ));
        assert!(!update.changed());
        assert_eq!(clock.offset_millis(), 300_000);
    }

    #[test]
    fn observation_outside_uncertainty_moves_offset_both_ways() {
        let clock = Clock::new(ManualTime::new(at(1_000_000)));
        let up = clock.observe(&SkewObservation::new(
            3_600_000,
            1000,
            EvidenceSource::DateHeader,
        ));
        assert!(up.changed());
        assert_eq!(up.delta_millis(), 3_600_000);
        let down = clock.observe(&SkewObservation::new(
            -60_000,
            1000,
            EvidenceSource::SkewMessage,
        ));
        assert_eq!(down.previous_millis, 3_600_000);
        assert_eq!(clock.offset_millis(), -60_000);
    }

    #[test]
    fn huge_offsets_are_clamped_not_overflowing() {
        let clock = Clock::new(ManualTime::new(at(10)));
        clock.set_offset_millis(i64::MIN);
        assert_eq!(clock.offset_millis(), -MAX_OFFSET_MILLIS);
        // Before the epoch is not representable on every platform; it must not panic.
        let _ = clock.now();
        clock.set_offset_millis(i64::MAX);
        let _ = clock.now();
    }

    #[test]
    fn clock_is_a_time_source() {
        fn takes(source: impl TimeSource) -> SystemTime {
            source.now()
        }
        let clock = Clock::new(ManualTime::new(at(50)));
        clock.set_offset_millis(1000);
        assert_eq!(takes(clock), at(51));
    }

    #[test]
    fn concurrent_observers_never_tear() {
        let clock = Clock::new(ManualTime::new(at(1_000_000)));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let c = clock.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        let v = if i % 2 == 0 { 3_600_000 } else { -3_600_000 };
                        c.observe(&SkewObservation::new(v, 1000, EvidenceSource::Other));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("observer thread");
        }
        assert!([3_600_000, -3_600_000].contains(&clock.offset_millis()));
    }
}
