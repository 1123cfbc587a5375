//! The retry rule: how long to wait before trying a call again, and how many tries it gets.
//! Every retry loop of the service takes its pauses from one of the named policies here, so
//! a change of policy is a change of one line.
//!
//! Pauses are jittered where many execution environments may collide on the same item (a
//! conflict on a counter, a manifest rewritten concurrently), so their retries spread out.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How much of a pause is random.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// The pause is exactly the step.
    None,
    /// Half the step, plus a random part up to the other half.
    Half,
    /// A random pause from zero up to the step.
    Full,
}

/// Exponential backoff: the step doubles with every retry, from `first` up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The step before the first retry.
    pub first: Duration,
    /// The largest step.
    pub max: Duration,
    /// How much of the step is random.
    pub jitter: Jitter,
    /// How many tries in all, the first one included.
    pub attempts: u32,
}

impl Backoff {
    /// Creates, reads and downloads at Replicate (429, 503, a connection that failed before
    /// sending): 250 ms doubling up to 4 s, half jittered; 5 tries by default (the client's
    /// `max_attempts` may set another count).
    pub const REPLICATE: Self = Self {
        first: Duration::from_millis(250),
        max: Duration::from_secs(4),
        jitter: Jitter::Half,
        attempts: 5,
    };
    /// A manifest rewrite that lost to another writer (412, 409) or met a fault: 80 ms doubling
    /// up to 640 ms, fully jittered, 10 tries (within the generation's time to store).
    pub const MANIFEST: Self = Self {
        first: Duration::from_millis(80),
        max: Duration::from_millis(640),
        jitter: Jitter::Full,
        attempts: 10,
    };
    /// A budget transaction that conflicted with another on the same counter: 40 ms doubling
    /// up to 640 ms, fully jittered, 6 tries.
    pub const BUDGET_CONFLICT: Self = Self {
        first: Duration::from_millis(40),
        max: Duration::from_millis(640),
        jitter: Jitter::Full,
        attempts: 6,
    };
    /// A refund that conflicted: 30 ms between its 6 tries (one idempotency token for all).
    pub const REFUND_CONFLICT: Self = Self {
        first: Duration::from_millis(30),
        max: Duration::from_millis(30),
        jitter: Jitter::None,
        attempts: 6,
    };
    /// A write to an idempotency record (the prediction's id, the answer): 50 ms, then
    /// 100 ms, 3 tries.
    pub const RECORD_WRITE: Self = Self {
        first: Duration::from_millis(50),
        max: Duration::from_millis(100),
        jitter: Jitter::None,
        attempts: 3,
    };

    /// The pause before retry number `retry` (1 for the second try).
    pub fn delay(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(16);
        let step = self.first.saturating_mul(1 << doublings).min(self.max);
        match self.jitter {
            Jitter::None => step,
            Jitter::Half => step / 2 + random_up_to(step / 2),
            Jitter::Full => random_up_to(step),
        }
    }

    /// Whether try number `attempt` (1 for the first) may be followed by another.
    pub fn allows_another(&self, attempt: u32) -> bool {
        attempt < self.attempts
    }
}

/// When a training-set item's prediction is looked at again, `age` after it was created:
/// half its age, from 2 s up to 60 s. A short prediction is seen soon after it ends; a long
/// one costs few receives (each one counts toward the queue's redrive to its dead letters).
pub fn next_check_after(age: Duration) -> Duration {
    (age / 2).clamp(Duration::from_secs(2), Duration::from_secs(60))
}

/// When a worker tries an item's step again after a fault (a store or the model's API
/// unavailable, a claim held by another worker): soon, but not at once.
pub const ITEM_FAULT_RETRY: Duration = Duration::from_secs(10);

/// A random duration from zero to `max` inclusive (for jitter, not for anything secret).
fn random_up_to(max: Duration) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(random_number(nanos))
}

/// A random number from 0 to `max` inclusive (not for anything secret).
pub fn random_number(max: u64) -> u64 {
    let random = RandomState::new().build_hasher().finish();
    random % max.saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_is_checked_again_after_half_its_age_within_bounds() {
        let after = |secs| next_check_after(Duration::from_secs(secs)).as_secs();
        assert_eq!(
            [after(0), after(10), after(60), after(3600)],
            [2, 5, 30, 60]
        );
    }

    #[test]
    fn steps_double_up_to_the_maximum() {
        let fixed = Backoff {
            jitter: Jitter::None,
            ..Backoff::REPLICATE
        };
        let steps: Vec<u64> = (1..=7).map(|n| fixed.delay(n).as_millis() as u64).collect();
        assert_eq!(steps, [250, 500, 1000, 2000, 4000, 4000, 4000]);
        assert_eq!(
            Backoff::RECORD_WRITE.delay(1),
            Duration::from_millis(50),
            "no jitter"
        );
        assert_eq!(Backoff::RECORD_WRITE.delay(2), Duration::from_millis(100));
        assert_eq!(Backoff::RECORD_WRITE.delay(9), Duration::from_millis(100));
    }

    #[test]
    fn jitter_stays_within_its_share_of_the_step() {
        for retry in 1..10 {
            let half = Backoff::REPLICATE.delay(retry);
            let step = Backoff {
                jitter: Jitter::None,
                ..Backoff::REPLICATE
            }
            .delay(retry);
            assert!(half >= step / 2 && half <= step, "{retry}: {half:?}");
            assert!(Backoff::MANIFEST.delay(retry) <= Backoff::MANIFEST.max);
        }
        // The widest range must not overflow (a debug build panics on `max + 1`).
        let _ = random_number(u64::MAX);
        assert_eq!(random_number(0), 0);
    }

    #[test]
    fn attempts_are_counted_with_the_first() {
        assert!(Backoff::RECORD_WRITE.allows_another(2));
        assert!(!Backoff::RECORD_WRITE.allows_another(3));
    }
}
