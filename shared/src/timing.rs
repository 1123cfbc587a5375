//! Small time helpers every layer uses: wall-clock milliseconds, elapsed milliseconds, and a
//! random number for jittered pauses (std only).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Milliseconds since `start`.
pub fn elapsed_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A random number from 0 to `max` inclusive, for jitter (not for anything secret).
pub fn random_up_to(max: u64) -> u64 {
    let random = RandomState::new().build_hasher().finish();
    random % max.saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_stays_in_its_range() {
        assert_eq!(random_up_to(0), 0);
        assert!((0..200).all(|_| random_up_to(7) <= 7));
        // The widest range must not overflow (a debug build panics on `max + 1`).
        let _ = random_up_to(u64::MAX);
    }
}
