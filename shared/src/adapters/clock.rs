//! The system clock.

use std::time::{Duration, Instant, SystemTime};

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

use crate::ports::Clock;
use crate::timing;

/// Real time, on the tokio timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_rfc3339(&self) -> String {
        let now = DateTime::from(SystemTime::now());
        let whole_seconds = DateTime::from_secs(now.secs());
        whole_seconds
            .fmt(Format::DateTime)
            .unwrap_or_else(|_| now.secs().to_string())
    }

    fn now_epoch_ms(&self) -> u64 {
        timing::epoch_ms()
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    async fn sleep(&self, duration: Duration) {
        timing::pause_before_retry(duration).await;
    }
}
