//! Coalesced reads: callers that want the same item while a read of it is under way (the
//! concurrent creates of one worker batch, each reading the kill switch and its actor's
//! profile) take that read's answer instead of each reading again. A caller only ever gets a
//! read that ended after it called, so nothing older than one round trip is answered: this
//! is not a cache.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// The most keys remembered; past it, the memory of finished reads is cleared.
const MAX_KEYS: usize = 1_024;

/// One key's last read and when it ended, locked while a read of it is under way.
type Slot<V> = Arc<tokio::sync::Mutex<Option<(Instant, V)>>>;

/// The last read of each key and when it ended.
#[derive(Debug)]
pub struct CoalescedReads<K, V> {
    keys: Mutex<HashMap<K, Slot<V>>>,
}

impl<K, V> Default for CoalescedReads<K, V> {
    fn default() -> Self {
        Self {
            keys: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> CoalescedReads<K, V> {
    /// The value of `key`: from a read that ended after this call began (another caller's,
    /// waited for), or from `read` now. A failed read is not shared: the next caller reads.
    pub async fn read<E>(&self, key: &K, read: impl Future<Output = Result<V, E>>) -> Result<V, E> {
        let called_at = Instant::now();
        let slot = {
            let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
            if keys.len() >= MAX_KEYS && !keys.contains_key(key) {
                keys.retain(|_, slot| Arc::strong_count(slot) > 1);
            }
            keys.entry(key.clone()).or_default().clone()
        };
        let mut last = slot.lock().await;
        if let Some((ended_at, value)) = last.as_ref()
            && *ended_at >= called_at
        {
            return Ok(value.clone());
        }
        let value = read.await?;
        *last = Some((Instant::now(), value.clone()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn callers_during_a_read_share_it_and_a_later_caller_reads_again() {
        let reads = CoalescedReads::<&str, u32>::default();
        let count = AtomicU32::new(0);
        let read = || async {
            tokio::task::yield_now().await;
            Ok::<_, ()>(count.fetch_add(1, Ordering::SeqCst))
        };
        let (a, b, c) = tokio::join!(
            reads.read(&"k", read()),
            reads.read(&"k", read()),
            reads.read(&"other", read())
        );
        assert_eq!(a, b, "one read for the two callers of k");
        assert_ne!(a, c, "another key reads on its own");
        assert_eq!(count.load(Ordering::SeqCst), 2);
        assert_eq!(
            reads.read(&"k", read()).await,
            Ok(2),
            "a later caller reads again"
        );
    }

    #[tokio::test]
    async fn a_failed_read_is_not_shared() {
        let reads = CoalescedReads::<(), u32>::default();
        let failing = async {
            tokio::task::yield_now().await;
            Err::<u32, &str>("down")
        };
        let (first, second) = tokio::join!(
            reads.read(&(), failing),
            reads.read(&(), async { Ok::<u32, &str>(7) })
        );
        assert_eq!((first, second), (Err("down"), Ok(7)));
    }
}
