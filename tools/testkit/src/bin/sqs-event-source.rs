//! Dev-only, for the local stack: plays Lambda's SQS event source mapping (the template's
//! batch size and `ReportBatchItemFailures`) between moto's training-set queue and a function
//! served at a fixed invoke URL, until SIGTERM or SIGINT, logging one line per invocation:
//! `sqs-event-source <moto endpoint> <queue url> <queue arn> <invoke url> [batch size]`
//! (default 10; the exports' queue takes 1, as its template mapping does), e.g. with
//! `http://127.0.0.1:9000/2015-03-31/functions/training-set-worker/invocations` (`cargo
//! lambda watch`). Never deployed: on AWS the mapping is Lambda's own.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use testkit::{EventSourceSettings, InvocationReport, SqsEventSource, TrainingSetQueues};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

const USAGE: &str = "usage: sqs-event-source <moto endpoint> <queue url> <queue arn> <invoke url> [batch size 1-10]";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (endpoint, queue_url, queue_arn, invoke_url, batch_size) = match args.as_slice() {
        [endpoint, queue_url, queue_arn, invoke_url] => {
            (endpoint, queue_url, queue_arn, invoke_url, "10")
        }
        [endpoint, queue_url, queue_arn, invoke_url, size] => {
            (endpoint, queue_url, queue_arn, invoke_url, size.as_str())
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Some(batch_size) = batch_size
        .parse::<usize>()
        .ok()
        .filter(|size| (1..=10).contains(size))
    else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("sqs-event-source: cannot listen for SIGTERM and SIGINT");
        return ExitCode::FAILURE;
    };
    let sdk = testkit::sdk_config(endpoint).await;
    let queues = TrainingSetQueues {
        queue_url: queue_url.clone(),
        queue_arn: queue_arn.clone(),
        // The poller never reads the dead letters: moto moves them itself.
        dlq_url: String::new(),
    };
    let (reports, mut reported) = mpsc::unbounded_channel();
    let settings = EventSourceSettings {
        batch_size,
        reports: Some(reports),
        ..EventSourceSettings::default()
    };
    println!(
        "{} polling {queue_url} for {invoke_url} (batches of up to {}, {} invocations at once)",
        clock(),
        settings.batch_size,
        settings.concurrency
    );
    let source = SqsEventSource::start_at_url(&sdk, &queues, invoke_url, settings).await;
    let signal_name = loop {
        tokio::select! {
            report = reported.recv() => match report {
                Some(report) => log(&report),
                // Only when the poller is gone (it panicked): `stop` tells why.
                None => break "the poller ended",
            },
            _ = terminate.recv() => break "SIGTERM",
            _ = interrupt.recv() => break "SIGINT",
        }
    };
    println!(
        "{} {signal_name}: finishing the invocations under way",
        clock()
    );
    let stats = source.stop().await;
    while let Ok(report) = reported.try_recv() {
        log(&report);
    }
    println!(
        "{} stopped after {} invocations: {} messages delivered, {} failures reported, {} \
         deleted, {} invocations failed",
        clock(),
        stats.invocations,
        stats.messages_delivered,
        stats.reported_failures,
        stats.deleted,
        stats.function_errors
    );
    ExitCode::SUCCESS
}

fn log(report: &InvocationReport) {
    let outcome = match &report.error {
        Some(reason) => format!("FAILED, nothing deleted: {reason}"),
        None => format!(
            "{} failures reported, {} deleted",
            report.reported_failures, report.deleted
        ),
    };
    println!(
        "{} invocation: {} messages, {outcome} ({} ms)",
        clock(),
        report.messages,
        report.duration.as_millis()
    );
}

/// The time of day in UTC, `HH:MM:SS.mmmZ`, for the log's lines.
fn clock() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = now.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        now.subsec_millis()
    )
}
