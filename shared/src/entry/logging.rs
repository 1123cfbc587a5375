//! The functions' log subscriber: Lambda's advanced logging controls, as lambda_runtime's
//! default subscriber reads them (`AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else INFO;
//! `AWS_LAMBDA_LOG_FORMAT=JSON` for JSON lines), with one rule on top: no crate but the
//! service's own logs below DEBUG, whatever level is set. At TRACE the AWS SDK and hyper
//! print request and response bodies (presigned URLs, a photo's base64), so TRACE set in the
//! console or in `RUST_LOG` must never reach them.

use std::str::FromStr;

use tracing::{Level, Metadata};

use super::config::LogSettings;
use crate::timing::InvocationTimings;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{LevelFilter, filter_fn};
use tracing_subscriber::prelude::*;

/// The service's own crates: the only targets that may log at TRACE.
const OWN_CRATES: [&str; 3] = ["shared", "generate_single", "training_prompts"];

/// Whether an event or span may be logged at its level: at DEBUG or above, or from our code.
fn within_cap(metadata: &Metadata<'_>) -> bool {
    *metadata.level() <= Level::DEBUG || is_own(metadata.target())
}

fn is_own(target: &str) -> bool {
    let crate_name = target.split("::").next().unwrap_or(target);
    OWN_CRATES.contains(&crate_name)
}

/// Installs the subscriber, writing to standard output (CloudWatch Logs).
pub fn init(settings: &LogSettings) {
    let level = settings
        .level
        .as_deref()
        .and_then(|text| LevelFilter::from_str(text).ok())
        .unwrap_or(LevelFilter::INFO);
    let levels = EnvFilter::builder()
        .with_default_directive(level.into())
        .parse_lossy(settings.directives.as_deref().unwrap_or_default());
    let cap = filter_fn(within_cap);
    let lines = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time();
    let registry = tracing_subscriber::registry().with(levels).with(cap);
    if settings.json {
        registry.with(lines.json()).init();
    } else {
        registry.with(lines).init();
    }
}

/// One log line with the invocation's answer status (none if it failed outright, or for an
/// invocation that answers no HTTP status) and where its time went, the remote calls as a
/// JSON array (the benchmark reads it).
pub(crate) fn log_timings(status: Option<u16>, timings: &InvocationTimings) {
    let calls = serde_json::to_string(&timings.calls).unwrap_or_default();
    tracing::info!(
        status,
        total_us = timings.total_us,
        remote_us = timings.remote_us,
        own_us = timings.own_us,
        remote_calls = %calls,
        "invocation timed"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_crates_are_below_debug() {
        for own in ["shared", "shared::adapters::s3", "generate_single"] {
            assert!(is_own(own), "{own}");
        }
        for dependency in [
            "aws_smithy_runtime::client",
            "hyper",
            "hyper_util::client",
            "h2",
            "sharedx",
        ] {
            assert!(!is_own(dependency), "{dependency}");
        }
    }
}
