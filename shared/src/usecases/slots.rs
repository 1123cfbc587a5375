//! A counting semaphore for the futures of one execution environment, without an async
//! runtime's help (the use cases stay free of tokio): at most `n` holders at once, the others
//! wait and are woken when a slot is given back.

use std::future::poll_fn;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

/// At most a fixed number of holders at once.
#[derive(Debug)]
pub struct Slots {
    state: Mutex<SlotsState>,
}

#[derive(Debug)]
struct SlotsState {
    free: usize,
    waiting: Vec<Waker>,
}

/// A slot held: given back when dropped.
#[derive(Debug)]
pub struct Slot<'a> {
    slots: &'a Slots,
}

impl Slots {
    /// `count` slots, all free.
    pub fn new(count: usize) -> Self {
        Self {
            state: Mutex::new(SlotsState {
                free: count,
                waiting: Vec::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, SlotsState> {
        // A panic while the lock was held cannot leave the count half-written: use it as is.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a free slot.
    pub async fn take(&self) -> Slot<'_> {
        poll_fn(|cx| {
            let mut state = self.state();
            if state.free > 0 {
                state.free -= 1;
                return Poll::Ready(Slot { slots: self });
            }
            // The futures of one task share its waker: it is kept once.
            if !state.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                state.waiting.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let waiting = {
            let mut state = self.slots.state();
            state.free += 1;
            std::mem::take(&mut state.waiting)
        };
        // Every waiter looks again (one may have been dropped meanwhile): the first to poll
        // takes the slot, the others wait again.
        for waker in waiting {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::concurrently::all;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn no_more_than_the_count_hold_a_slot_at_once_and_every_waiter_gets_one() {
        let slots = Slots::new(3);
        let (holding, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let holders = (0..10)
            .map(|n| {
                let (slots, holding, most) = (&slots, &holding, &most);
                async move {
                    let _slot = slots.take().await;
                    let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    for _ in 0..3 {
                        tokio::task::yield_now().await;
                    }
                    holding.fetch_sub(1, Ordering::SeqCst);
                    n
                }
            })
            .collect();
        assert_eq!(all(holders).await, (0..10).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), 3);
        assert_eq!(holding.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn holders_on_separate_tasks_are_woken_too() {
        let slots = std::sync::Arc::new(Slots::new(1));
        let first = slots.take().await;
        let waiter = tokio::spawn({
            let slots = std::sync::Arc::clone(&slots);
            async move {
                let _slot = slots.take().await;
            }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(first);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the waiter got the slot")
            .expect("the waiter ran");
    }
}
