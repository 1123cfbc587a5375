//! Time: wall-clock timestamps, monotonic instants and pauses.

use std::future::Future;

/// Time, for timestamps and pauses.
pub trait Clock: Send + Sync {
    /// Now, as RFC 3339 in UTC.
    fn now_rfc3339(&self) -> String;
    /// Now, in milliseconds since the Unix epoch (for holds kept in records).
    fn now_epoch_ms(&self) -> u64;
    /// Now, on the monotonic clock that deadlines are measured on.
    fn now(&self) -> std::time::Instant;
    /// Waits for `duration` before a retry (recorded as waiting, not as our own code).
    fn sleep(&self, duration: std::time::Duration) -> impl Future<Output = ()> + Send;
}
