//! The critical path: the remote calls of the median generation, and which ran concurrently.

use crate::function_log::{Run, seeds_counter};
use crate::report::{ms, table};

/// The remote calls of the median generation, in the order they started, with the calls each
/// overlapped.
pub fn critical_path(runs: &[Run]) -> String {
    // The steady state: an actor's later image (the first also seeds its counter).
    let mut by_total: Vec<&Run> = runs.iter().filter(|run| !seeds_counter(run)).collect();
    by_total.sort_by_key(|run| run.total_us);
    let Some(run) = by_total.get(by_total.len() / 2) else {
        return String::new();
    };
    let mut calls = run.calls.clone();
    calls.sort_by_key(|call| call.start_us);
    let rows: Vec<Vec<String>> = calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            let end = call.start_us + call.duration_us;
            let concurrent: Vec<String> = calls
                .iter()
                .enumerate()
                .filter(|(j, other)| {
                    *j != i
                        && other.start_us < end
                        && call.start_us < other.start_us + other.duration_us
                })
                .map(|(j, _)| format!("#{}", j + 1))
                .collect();
            vec![
                format!("#{}", i + 1),
                call.name.clone(),
                ms(call.start_us),
                ms(call.duration_us),
                if concurrent.is_empty() {
                    "-".to_owned()
                } else {
                    concurrent.join(", ")
                },
            ]
        })
        .collect();
    let seeded = runs.iter().filter(|run| seeds_counter(run)).count();
    let header = [
        "call",
        "remote call",
        "starts at",
        "takes",
        "side by side with",
    ];
    format!(
        "## Critical path of the median generation of an actor's later image ({} end to end, {} waiting, {} own code)\n\n{}\n{seeded} of the {} generations were an actor's first image, which also seeds its counter (a listing and a put more); they are left out here.\n",
        ms(run.total_us),
        ms(run.remote_us),
        ms(run.own_us),
        table(&header, &rows),
        runs.len(),
    )
}
