//! Time helpers every layer uses: wall-clock milliseconds, elapsed milliseconds, a random
//! number for jittered pauses, and the record of an invocation's remote calls (which tells the
//! time spent in our own code from the time spent waiting on S3, DynamoDB and Replicate).
//!
//! A remote call's time runs from sending the request to having its answer parsed, so the
//! SDK's signing and parsing count as waiting; the benchmark prints the process's CPU time
//! next to these figures for that reason.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

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

/// One remote call of an invocation: what, when it started and how long it took, in
/// microseconds from the invocation's start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteCall {
    /// The service and operation, e.g. `S3 PutObject`.
    pub name: &'static str,
    /// When it started.
    pub start_us: u64,
    /// How long it took.
    pub duration_us: u64,
}

/// Where one invocation's remote calls are recorded.
#[derive(Debug)]
struct RemoteCallLog {
    started: Instant,
    calls: Mutex<Vec<RemoteCall>>,
}

tokio::task_local! {
    static REMOTE_CALLS: Arc<RemoteCallLog>;
}

/// Awaits `call`, a request to a remote service, and records its time on the invocation being
/// [`timed`] (nothing is recorded outside one).
pub async fn remote<F: Future>(name: &'static str, call: F) -> F::Output {
    let started = Instant::now();
    let output = call.await;
    let finished = Instant::now();
    // Outside `timed` there is no log; the call is simply not recorded.
    let _ = REMOTE_CALLS.try_with(|log| {
        let call = RemoteCall {
            name,
            start_us: micros(started.saturating_duration_since(log.started)),
            duration_us: micros(finished.saturating_duration_since(started)),
        };
        if let Ok(mut calls) = log.calls.lock() {
            calls.push(call);
        }
    });
    output
}

/// `.remote_call(name)` on any future: [`remote`] as a method, for SDK and HTTP call chains.
pub trait RemoteCallExt: Future + Sized {
    /// Awaits this remote call and records its time as `name`.
    fn remote_call(self, name: &'static str) -> impl Future<Output = Self::Output> {
        remote(name, self)
    }
}

impl<F: Future> RemoteCallExt for F {}

/// Pauses before retrying a remote call, recorded as waiting (`pause before a retry`): the
/// pause is time the invocation spends on a remote service's account, not in our own code.
pub async fn pause_before_retry(duration: std::time::Duration) {
    remote("pause before a retry", tokio::time::sleep(duration)).await;
}

/// Where an invocation's time went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvocationTimings {
    /// From start to end, in microseconds.
    pub total_us: u64,
    /// While at least one remote call (or a pause before retrying one) was in flight, in
    /// microseconds.
    pub remote_us: u64,
    /// The rest: time in our own code.
    pub own_us: u64,
    /// Each remote call, in the order they ended.
    pub calls: Vec<RemoteCall>,
}

/// Runs `invocation`, recording the remote calls made while it runs.
pub async fn timed<F: Future>(invocation: F) -> (F::Output, InvocationTimings) {
    let log = Arc::new(RemoteCallLog {
        started: Instant::now(),
        calls: Mutex::new(Vec::new()),
    });
    let output = REMOTE_CALLS.scope(log.clone(), invocation).await;
    let total_us = micros(log.started.elapsed());
    let calls = log
        .calls
        .lock()
        .map(|calls| calls.clone())
        .unwrap_or_default();
    let remote_us = busy_us(&calls).min(total_us);
    let timings = InvocationTimings {
        total_us,
        remote_us,
        own_us: total_us - remote_us,
        calls,
    };
    (output, timings)
}

/// The time covered by at least one call (overlapping calls count once).
fn busy_us(calls: &[RemoteCall]) -> u64 {
    let mut spans: Vec<(u64, u64)> = calls
        .iter()
        .map(|call| (call.start_us, call.start_us + call.duration_us))
        .collect();
    spans.sort_unstable();
    let (mut busy, mut reached) = (0, 0);
    for (start, end) in spans {
        let start = start.max(reached);
        if end > start {
            busy += end - start;
            reached = end;
        }
    }
    busy
}

fn micros(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(start_us: u64, duration_us: u64) -> RemoteCall {
        RemoteCall {
            name: "test",
            start_us,
            duration_us,
        }
    }

    #[test]
    fn overlapping_calls_count_once() {
        assert_eq!(busy_us(&[]), 0);
        assert_eq!(busy_us(&[call(10, 5)]), 5);
        // 0..10 and 5..20 overlap: 0..20; 30..31 apart; 12..14 inside.
        assert_eq!(
            busy_us(&[call(30, 1), call(5, 15), call(0, 10), call(12, 2)]),
            21
        );
    }

    #[tokio::test]
    async fn timed_records_the_remote_calls_of_its_own_invocation_only() {
        let pause = || tokio::time::sleep(std::time::Duration::from_millis(20));
        remote("outside", pause()).await;
        let ((), timings) = timed(async {
            let side_by_side = async {
                tokio::join!(remote("a", pause()), remote("b", pause()));
            };
            side_by_side.await;
            remote("c", pause()).await;
        })
        .await;
        let names: Vec<_> = timings.calls.iter().map(|call| call.name).collect();
        assert_eq!(names.len(), 3);
        assert!(names.contains(&"a") && names.contains(&"b") && names[2] == "c");
        // a and b ran side by side: their overlap counts once, c after them counts whole.
        let duration = |name| {
            timings
                .calls
                .iter()
                .find(|c| c.name == name)
                .map_or(0, |c| c.duration_us)
        };
        let sum = duration("a") + duration("b") + duration("c");
        assert!(timings.remote_us < sum, "{timings:?}");
        assert!(
            timings.remote_us >= duration("a").max(duration("b")) + duration("c"),
            "{timings:?}"
        );
        assert_eq!(timings.own_us, timings.total_us - timings.remote_us);
    }

    #[tokio::test]
    async fn a_pause_before_a_retry_counts_as_waiting_not_as_our_own_code() {
        let ((), timings) = timed(pause_before_retry(std::time::Duration::from_millis(30))).await;
        assert_eq!(timings.calls.len(), 1, "{timings:?}");
        assert_eq!(timings.calls[0].name, "pause before a retry");
        assert!(timings.remote_us >= 30_000, "{timings:?}");
    }

    #[test]
    fn random_stays_in_its_range() {
        assert_eq!(random_up_to(0), 0);
        assert!((0..200).all(|_| random_up_to(7) <= 7));
        // The widest range must not overflow (a debug build panics on `max + 1`).
        let _ = random_up_to(u64::MAX);
    }
}
