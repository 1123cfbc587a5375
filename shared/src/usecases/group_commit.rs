//! Group commit: the writers of one execution environment that change the same object at
//! once (a worker batch's stores, each listing its image in the actor's manifest) hand their
//! changes to one of them, which writes them all in one read-modify-write while the others
//! wait for its result. One write instead of many, and no conflicts among themselves; the
//! object's own condition (`If-Match`) still guards against other environments.

use std::collections::{HashMap, HashSet};
use std::future::poll_fn;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

/// Changes waiting to be written, by the key of the object they change.
#[derive(Debug)]
pub struct GroupCommit<T> {
    keys: Mutex<HashMap<String, KeyState<T>>>,
}

#[derive(Debug)]
struct KeyState<T> {
    next_ticket: u64,
    waiting: Vec<(u64, T)>,
    writing: bool,
    results: HashMap<u64, Result<(), String>>,
    /// Callers that gave up while their change waited or was written: no result for them.
    abandoned: HashSet<u64>,
    wakers: Vec<Waker>,
}

impl<T> Default for KeyState<T> {
    fn default() -> Self {
        Self {
            next_ticket: 0,
            waiting: Vec::new(),
            writing: false,
            results: HashMap::new(),
            abandoned: HashSet::new(),
            wakers: Vec::new(),
        }
    }
}

impl<T> KeyState<T> {
    fn idle(&self) -> bool {
        self.waiting.is_empty()
            && !self.writing
            && self.results.is_empty()
            && self.abandoned.is_empty()
    }

    fn wake_all(&mut self) {
        for waker in self.wakers.drain(..) {
            waker.wake();
        }
    }
}

impl<T> Default for GroupCommit<T> {
    fn default() -> Self {
        Self {
            keys: Mutex::new(HashMap::new()),
        }
    }
}

enum Turn<T> {
    Written(Result<(), String>),
    Lead(Vec<u64>, Vec<T>),
}

impl<T: Clone> GroupCommit<T> {
    /// Has `change` written to `key`: by this caller, with every change waiting for the same
    /// key (`write` gets them all, in the order they came), or by the caller already writing
    /// when it came, or the next one. The result is that of the write that held it.
    pub async fn submit<W, F>(&self, key: &str, change: T, write: W) -> Result<(), String>
    where
        W: FnOnce(Vec<T>) -> F,
        F: Future<Output = Result<(), String>>,
    {
        let mut ticket = Ticket::join(self, key, change);
        match poll_fn(|cx| ticket.poll_turn(cx.waker())).await {
            Turn::Written(result) => {
                ticket.settled = true;
                result
            }
            Turn::Lead(tickets, changes) => {
                let mut batch = Batch {
                    commit: self,
                    key,
                    tickets,
                    changes: Some(changes.clone()),
                };
                let result = write(changes).await;
                batch.finish(&result);
                ticket.settle();
                result
            }
        }
    }
}

impl<T> GroupCommit<T> {
    fn keys(&self) -> MutexGuard<'_, HashMap<String, KeyState<T>>> {
        // A panic while the lock was held cannot leave a state half-written: use it as is.
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A caller's place in the line: dropped before it took its result, it leaves no result
/// behind (its change is written all the same).
struct Ticket<'a, T> {
    commit: &'a GroupCommit<T>,
    key: &'a str,
    number: u64,
    settled: bool,
}

impl<'a, T: Clone> Ticket<'a, T> {
    fn join(commit: &'a GroupCommit<T>, key: &'a str, change: T) -> Self {
        let mut keys = commit.keys();
        let state = keys.entry(key.to_owned()).or_default();
        let number = state.next_ticket;
        state.next_ticket += 1;
        state.waiting.push((number, change));
        Self {
            commit,
            key,
            number,
            settled: false,
        }
    }

    /// Its result, if written; else all that waits, if no one is writing; else later.
    fn poll_turn(&self, waker: &Waker) -> Poll<Turn<T>> {
        let mut keys = self.commit.keys();
        let Some(state) = keys.get_mut(self.key) else {
            return Poll::Ready(Turn::Written(Err("the change was lost".to_owned())));
        };
        if let Some(result) = state.results.remove(&self.number) {
            return Poll::Ready(Turn::Written(result));
        }
        if !state.writing && !state.waiting.is_empty() {
            state.writing = true;
            let (tickets, changes) = std::mem::take(&mut state.waiting).into_iter().unzip();
            return Poll::Ready(Turn::Lead(tickets, changes));
        }
        if !state.wakers.iter().any(|known| known.will_wake(waker)) {
            state.wakers.push(waker.clone());
        }
        Poll::Pending
    }

    /// Takes the caller's own result out (the writer's, which it already has).
    fn settle(&mut self) {
        let mut keys = self.commit.keys();
        if let Some(state) = keys.get_mut(self.key) {
            state.results.remove(&self.number);
        }
        self.settled = true;
    }
}

impl<T> Drop for Ticket<'_, T> {
    fn drop(&mut self) {
        let mut keys = self.commit.keys();
        if let Some(state) = keys.get_mut(self.key) {
            if !self.settled && state.results.remove(&self.number).is_none() {
                state.abandoned.insert(self.number);
            }
            if state.idle() {
                keys.remove(self.key);
            }
        }
    }
}

/// The changes a writer took: dropped before it finished (its caller gave up), they go back
/// to the line for the next writer.
struct Batch<'a, T> {
    commit: &'a GroupCommit<T>,
    key: &'a str,
    tickets: Vec<u64>,
    changes: Option<Vec<T>>,
}

impl<T> Batch<'_, T> {
    fn finish(&mut self, result: &Result<(), String>) {
        self.changes = None;
        let mut keys = self.commit.keys();
        if let Some(state) = keys.get_mut(self.key) {
            for ticket in &self.tickets {
                if !state.abandoned.remove(ticket) {
                    state.results.insert(*ticket, result.clone());
                }
            }
            state.writing = false;
            state.wake_all();
        }
    }
}

impl<T> Drop for Batch<'_, T> {
    fn drop(&mut self) {
        let Some(changes) = self.changes.take() else {
            return;
        };
        let mut keys = self.commit.keys();
        if let Some(state) = keys.get_mut(self.key) {
            let mut back: Vec<_> = self.tickets.drain(..).zip(changes).collect();
            back.append(&mut state.waiting);
            state.waiting = back;
            state.writing = false;
            state.wake_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::concurrently::{all, unless};
    use std::sync::Mutex as StdMutex;

    /// Writes that record what each held, taking a few polls as a remote call would.
    #[derive(Default)]
    struct Writes(StdMutex<Vec<Vec<u32>>>);

    impl Writes {
        async fn write(&self, changes: Vec<u32>, fails: bool) -> Result<(), String> {
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            self.0.lock().unwrap().push(changes);
            if fails {
                Err("refused".to_owned())
            } else {
                Ok(())
            }
        }

        fn held(&self) -> Vec<Vec<u32>> {
            self.0.lock().unwrap().clone()
        }
    }

    #[tokio::test]
    async fn changes_that_come_while_one_is_written_are_written_together_next() {
        let commit = GroupCommit::default();
        let writes = Writes::default();
        let callers = (0..6)
            .map(|n| commit.submit("k", n, |changes| writes.write(changes, false)))
            .collect();
        let results = all(callers).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        // The first writes alone; the five that came while it wrote go in one write.
        assert_eq!(writes.held(), [vec![0], vec![1, 2, 3, 4, 5]]);
        assert!(commit.keys().is_empty(), "nothing is left behind");
    }

    #[tokio::test]
    async fn each_key_has_its_own_line_and_a_failed_write_fails_all_it_held() {
        let commit = GroupCommit::default();
        let writes = &Writes::default();
        let callers = [
            ("a", 1, false),
            ("b", 2, true),
            ("b", 3, true),
            ("b", 4, true),
        ]
        .into_iter()
        .map(|(key, n, fails)| commit.submit(key, n, move |c| writes.write(c, fails)))
        .collect();
        let results = all(callers).await;
        assert_eq!(results[0], Ok(()));
        assert!(results[1..].iter().all(|r| *r == Err("refused".to_owned())));
        assert_eq!(writes.held(), [vec![1], vec![2], vec![3, 4]]);
    }

    #[tokio::test]
    async fn a_writer_that_gives_up_hands_its_changes_to_the_next() {
        let commit = GroupCommit::default();
        let writes = Writes::default();
        let never = std::future::pending::<Result<(), String>>();
        let quitter = unless(commit.submit("k", 1, |_| never), async {
            for _ in 0..2 {
                tokio::task::yield_now().await;
            }
        });
        let second = async {
            tokio::task::yield_now().await;
            commit
                .submit("k", 2, |changes| writes.write(changes, false))
                .await
        };
        let (gave_up, second) = crate::usecases::concurrently::both(quitter, second).await;
        assert_eq!(gave_up, None);
        assert_eq!(second, Ok(()));
        assert_eq!(
            writes.held(),
            [vec![1, 2]],
            "the quitter's change is written too"
        );
        assert!(commit.keys().is_empty());
    }
}
