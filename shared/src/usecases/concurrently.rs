//! Running two futures concurrently on the task that awaits them, without an async runtime's
//! help: the use cases stay free of tokio, and the steps of one generation share its task.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

/// Runs `a` and `b` concurrently and waits for both.
pub async fn both<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut a_out, mut b_out) = (None, None);
    poll_fn(move |cx| {
        if a_out.is_none()
            && let Poll::Ready(value) = a.as_mut().poll(cx)
        {
            a_out = Some(value);
        }
        if b_out.is_none()
            && let Poll::Ready(value) = b.as_mut().poll(cx)
        {
            b_out = Some(value);
        }
        match (a_out.take(), b_out.take()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            (a, b) => {
                a_out = a;
                b_out = b;
                Poll::Pending
            }
        }
    })
    .await
}

/// Runs every future of `futures` concurrently and waits for all; the outputs come in the
/// futures' order (a worker's batch of messages, each its own step).
pub async fn all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    poll_fn(move |cx| {
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none()
                && let Poll::Ready(value) = future.as_mut().poll(cx)
            {
                *output = Some(value);
            }
        }
        if outputs.iter().all(Option::is_some) {
            Poll::Ready(outputs.iter_mut().filter_map(Option::take).collect())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Runs `work` until `give_up` is done first: `None` then, and `work` is dropped.
pub async fn unless<A: Future, B: Future>(work: A, give_up: B) -> Option<A::Output> {
    let (mut work, mut give_up) = (pin!(work), pin!(give_up));
    poll_fn(move |cx| {
        if let Poll::Ready(value) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(value));
        }
        match give_up.as_mut().poll(cx) {
            Poll::Ready(_) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// A value one future hands to another that runs concurrently with it, at most once: the
/// taker waits until it is given or the giver closes the hand-off without one.
#[derive(Debug)]
pub struct Handoff<T> {
    state: Mutex<HandoffState<T>>,
}

#[derive(Debug)]
struct HandoffState<T> {
    value: Option<T>,
    closed: bool,
    waker: Option<Waker>,
}

impl<T> Default for Handoff<T> {
    fn default() -> Self {
        Self {
            state: Mutex::new(HandoffState {
                value: None,
                closed: false,
                waker: None,
            }),
        }
    }
}

impl<T> Handoff<T> {
    fn state(&self) -> MutexGuard<'_, HandoffState<T>> {
        // A panic while the lock was held cannot leave the state half-written: use it as is.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives the value and closes the hand-off.
    pub fn give(&self, value: T) {
        let mut state = self.state();
        state.value = Some(value);
        state.closed = true;
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }

    /// Closes the hand-off: a taker still waiting gets what was given, if anything.
    pub fn close(&self) {
        let mut state = self.state();
        state.closed = true;
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }

    /// Waits until the value is given (`Some`) or the hand-off is closed without one.
    pub async fn take(&self) -> Option<T> {
        poll_fn(|cx| {
            let mut state = self.state();
            if state.closed {
                Poll::Ready(state.value.take())
            } else {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_value_given_reaches_the_taker_and_a_close_ends_its_wait() {
        let handoff = Handoff::default();
        let ((), taken) = both(
            async {
                tokio::task::yield_now().await;
                handoff.give(7);
            },
            handoff.take(),
        )
        .await;
        assert_eq!(taken, Some(7));
        let empty = Handoff::<u8>::default();
        let ((), taken) = both(async { empty.close() }, empty.take()).await;
        assert_eq!(taken, None);
    }

    #[tokio::test]
    async fn all_runs_its_futures_at_once_and_keeps_their_order() {
        // The first waits for what the last gives: one after another, it never ends.
        let handoff = Handoff::default();
        let futures: Vec<std::pin::Pin<Box<dyn Future<Output = u8> + '_>>> = vec![
            Box::pin(async { handoff.take().await.unwrap_or(0) }),
            Box::pin(async { 2 }),
            Box::pin(async {
                tokio::task::yield_now().await;
                handoff.give(7);
                3
            }),
        ];
        assert_eq!(all(futures).await, [7, 2, 3]);
        assert!(all(Vec::<std::future::Ready<u8>>::new()).await.is_empty());
    }
}
