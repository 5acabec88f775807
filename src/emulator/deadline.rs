//! Deadlines from configured waits that may be as long as `Duration::MAX`.

use std::time::Duration;

use tokio::time::Instant;

/// About 30 years: later than any session lives, early enough for every clock's arithmetic.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `from + wait`, or about 30 years after `from` when the sum does not fit in an `Instant`
/// (a configured `Duration::MAX` means "never", not a panic).
pub(crate) fn deadline_after(from: Instant, wait: Duration) -> Instant {
    from.checked_add(wait).unwrap_or(from + FAR_FUTURE)
}

/// `deadline_after(Instant::now(), wait)`.
pub(crate) fn deadline_in(wait: Duration) -> Instant {
    deadline_after(Instant::now(), wait)
}
