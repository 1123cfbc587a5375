//! What the functions logged: their JSON lines (the timing line of each invocation) and the
//! runtime interface emulator's REPORT lines.

use serde_json::{Value, json};

use crate::stats::Samples;

/// The JSON log lines whose message is `message`.
pub fn messages(lines: &[String], message: &str) -> Vec<Value> {
    lines
        .iter()
        .filter(|line| line.starts_with('{'))
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line.pointer("/fields/message") == Some(&json!(message)))
        .collect()
}

/// The durations of the emulator's REPORT lines, in microseconds.
pub fn reported_durations(lines: &[String]) -> Vec<u64> {
    report_field(lines, "Duration: ")
}

/// The billed durations of the emulator's REPORT lines (Lambda's whole milliseconds), in
/// microseconds.
pub fn billed_durations(lines: &[String]) -> Vec<u64> {
    report_field(lines, "Billed Duration: ")
}

/// One milliseconds field (`{name}12.3 ms`) of every REPORT line, in microseconds.
fn report_field(lines: &[String], name: &str) -> Vec<u64> {
    lines
        .iter()
        .filter(|line| line.starts_with("REPORT RequestId"))
        .filter_map(|line| {
            line.split('\t')
                .map(str::trim)
                .find_map(|field| field.strip_prefix(name))
                .and_then(|value| value.trim_end_matches(" ms").parse::<f64>().ok())
                .map(|millis| (millis * 1000.0) as u64)
        })
        .collect()
}

/// The last `count` values of `field` in `lines` (earlier ones are warm-up).
pub fn last_field(lines: &[Value], field: &str, count: usize) -> Samples {
    let values: Vec<u64> = lines
        .iter()
        .filter_map(|line| line.pointer(&format!("/fields/{field}")))
        .filter_map(Value::as_u64)
        .collect();
    Samples::new(values[values.len().saturating_sub(count)..].to_vec())
}

/// The last `count` of `values` (earlier ones are warm-up).
pub fn last(values: Vec<u64>, count: usize) -> Samples {
    Samples::new(values[values.len().saturating_sub(count)..].to_vec())
}

/// One timed generation, from its log line.
#[derive(Debug, Clone)]
pub struct Run {
    /// The HTTP status answered (none if the invocation failed outright).
    pub status: Option<u64>,
    pub total_us: u64,
    pub remote_us: u64,
    pub own_us: u64,
    pub calls: Vec<Call>,
}

#[derive(Debug, Clone)]
/// One remote call of a generation, as its timing line lists it.
pub struct Call {
    pub name: String,
    pub start_us: u64,
    pub duration_us: u64,
}

/// The generations timed in `lines`, in order.
pub fn runs(lines: &[String]) -> Vec<Run> {
    messages(lines, "invocation timed")
        .iter()
        .map(|line| {
            let field = |name: &str| {
                line.pointer(&format!("/fields/{name}"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
            };
            let calls: Vec<Value> = line
                .pointer("/fields/remote_calls")
                .and_then(Value::as_str)
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or_default();
            Run {
                status: line.pointer("/fields/status").and_then(Value::as_u64),
                total_us: field("total_us"),
                remote_us: field("remote_us"),
                own_us: field("own_us"),
                calls: calls
                    .iter()
                    .map(|call| Call {
                        name: call["name"].as_str().unwrap_or("?").to_owned(),
                        start_us: call["start_us"].as_u64().unwrap_or(0),
                        duration_us: call["duration_us"].as_u64().unwrap_or(0),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Whether a generation was its actor's first, which also seeds the actor's counter.
pub fn seeds_counter(run: &Run) -> bool {
    run.calls
        .iter()
        .any(|call| call.name.contains("counter seed"))
}
