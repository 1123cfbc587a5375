//! What an operator sees: with `AWS_LAMBDA_LOG_FORMAT=JSON` every log line of the function is
//! JSON; a generation's line carries the request id, actor, index, prediction id and the time
//! of each step; each invocation writes one timing line (its status and remote calls) and
//! exactly one embedded-metric-format line.

mod common;

use serde_json::{Value, json};
use testkit::GenerationStack;

#[tokio::test]
async fn json_logs_and_one_emf_line_per_invocation() {
    let stack = GenerationStack::start().await;
    let replicate = &stack.replicate;
    let mut env = stack.function_env();
    env.push(("AWS_LAMBDA_LOG_FORMAT".to_owned(), "JSON".to_owned()));
    env.push(("DAILY_GENERATION_CAP".to_owned(), "100".to_owned()));
    // The deployed name, as Lambda sets it: the metrics' dimension, so stacks do not mix.
    env.push((
        "AWS_LAMBDA_FUNCTION_NAME".to_owned(),
        "staging-generate-single".to_owned(),
    ));
    let (function, log) = common::start_capturing(&env, "observability").await;

    let success = function
        .invoke(&testkit::event("generate-single-http-v2.json"))
        .await;
    assert_eq!(success["statusCode"], 200, "{success}");
    replicate
        .set_faults(json!({"fail_with": "NSFW content detected"}))
        .await;
    let failure = function
        .invoke(&testkit::event("generate-single-http-v2.json"))
        .await;
    assert_eq!(failure["statusCode"], 422, "{failure}");
    replicate.set_faults(json!({})).await;
    let batch = function
        .invoke(&testkit::event("generate-single-batch.json"))
        .await;
    assert_eq!(batch["succeeded"], 3, "{batch}");
    // Read while the function still runs: its exit when the emulator stops is not an invocation's.
    let text = log.text();
    drop(function);
    // The emulator's own lines (its "(rapid)" log, START, END, REPORT) are not JSON; the
    // function's all are.
    let ours: Vec<Value> = text
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let stray: Vec<&str> = text
        .lines()
        .filter(|line| !line.starts_with('{') && !line.trim().is_empty())
        .filter(|line| !line.contains("(rapid)"))
        .filter(|line| {
            !["START RequestId", "END RequestId", "REPORT RequestId"]
                .iter()
                .any(|emulator_line| line.starts_with(emulator_line))
        })
        .collect();
    assert!(
        stray.is_empty(),
        "non-JSON lines from the function: {stray:#?}"
    );

    let generated: Vec<&Value> = ours
        .iter()
        .filter(|line| line.pointer("/fields/message") == Some(&json!("image generated")))
        .collect();
    assert_eq!(generated.len(), 4, "one per image (1 + 3 in the batch)");
    for line in &generated {
        assert!(
            line.pointer("/span/requestId")
                .and_then(Value::as_str)
                .is_some_and(|id| !id.is_empty()),
            "{line}"
        );
        for field in [
            "actor",
            "index",
            "prediction_id",
            "prepare_ms",
            "predict_ms",
            "store_ms",
            "manifest_ms",
        ] {
            assert!(
                line["fields"].get(field).is_some(),
                "{field} missing: {line}"
            );
        }
    }

    // One timing line per invocation: its status, and every remote call it waited on.
    let timed: Vec<&Value> = ours
        .iter()
        .filter(|line| line.pointer("/fields/message") == Some(&json!("invocation timed")))
        .collect();
    assert_eq!(timed.len(), 3, "one per invocation: {timed:#?}");
    assert_eq!(timed[0]["fields"]["status"], 200, "{}", timed[0]);
    assert_eq!(timed[1]["fields"]["status"], 422, "{}", timed[1]);
    let field = |line: &Value, name: &str| line["fields"][name].as_u64().unwrap_or(u64::MAX);
    assert_eq!(
        field(timed[0], "own_us") + field(timed[0], "remote_us"),
        field(timed[0], "total_us")
    );
    let calls: Vec<Value> = timed[0]["fields"]["remote_calls"]
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok())
        .expect("remote_calls, a JSON array");
    let names: Vec<&str> = calls.iter().filter_map(|c| c["name"].as_str()).collect();
    for expected in [
        "DynamoDB TransactWriteItems (budget)",
        "Replicate create",
        "Replicate download",
        "DynamoDB UpdateItem (counter)",
        "S3 PutObject (If-None-Match)",
    ] {
        assert!(names.contains(&expected), "{expected} not timed: {names:?}");
    }

    let emf: Vec<&Value> = ours
        .iter()
        .filter(|line| line.get("_aws").is_some())
        .collect();
    assert_eq!(emf.len(), 3, "one metrics line per invocation: {emf:#?}");
    for line in &emf {
        let declared = line
            .pointer("/_aws/CloudWatchMetrics/0/Metrics")
            .and_then(Value::as_array)
            .expect("metrics");
        for metric in declared {
            let name = metric["Name"].as_str().expect("name");
            assert!(
                line[name].is_number(),
                "{name} declared but not set: {line}"
            );
        }
        assert_eq!(line["Function"], "staging-generate-single");
        assert!(line["requestId"].as_str().is_some_and(|id| !id.is_empty()));
        assert!(line["EndToEndLatency"].is_number());
    }
    assert_eq!(
        (
            emf[0]["Generations"].as_u64(),
            emf[0]["Failures"].as_u64(),
            emf[0]["BudgetUsed"].as_u64()
        ),
        (Some(1), Some(0), Some(1))
    );
    assert!(emf[0]["ReplicatePredictTime"].is_number());
    assert_eq!(emf[1]["FailureReason"], "prediction_failed");
    assert_eq!(
        (emf[1]["Generations"].as_u64(), emf[1]["Failures"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(
        (
            emf[2]["Generations"].as_u64(),
            emf[2]["BudgetUsed"].as_u64()
        ),
        (Some(3), Some(3))
    );
}

/// TRACE set outside the template (the console, `RUST_LOG`) never reaches the SDK's or
/// hyper's events: at TRACE they print request and response bodies (presigned URLs, the
/// photo's base64). DEBUG still does.
#[tokio::test]
async fn trace_set_outside_the_template_is_capped_at_debug() {
    let stack = GenerationStack::start().await;
    let photo = testkit::sample_jpeg(48, 48);
    testkit::put_object(
        &stack.sdk,
        testkit::SAMPLE_ACTOR.base_image_key,
        photo.clone(),
        "image/jpeg",
    )
    .await;
    let photo_base64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&photo)
    };
    for (variable, value) in [
        ("AWS_LAMBDA_LOG_LEVEL", "TRACE"),
        (
            "RUST_LOG",
            "trace,aws_smithy_runtime::client=trace,hyper=trace",
        ),
    ] {
        let mut env = stack.function_env();
        env.push(("AWS_LAMBDA_LOG_FORMAT".to_owned(), "JSON".to_owned()));
        env.push((variable.to_owned(), value.to_owned()));
        let (function, log) = common::start_capturing(&env, &format!("log-level-{variable}")).await;
        let answer = function
            .invoke(&testkit::event("generate-single-http-v2.json"))
            .await;
        assert_eq!(answer["statusCode"], 200, "{answer}");
        let text = log.text();
        drop(function);
        let levels: Vec<&str> = text
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter_map(|line| {
                line["level"].as_str().map(|level| match level {
                    "TRACE" => "TRACE",
                    "DEBUG" => "DEBUG",
                    _ => "other",
                })
            })
            .collect();
        assert!(
            !levels.contains(&"TRACE"),
            "{variable}={value}: {} TRACE lines",
            levels.iter().filter(|l| **l == "TRACE").count()
        );
        assert!(
            levels.contains(&"DEBUG"),
            "{variable}={value}: no DEBUG line"
        );
        assert!(
            !text.contains("X-Amz-Signature"),
            "a presigned URL is in the log"
        );
        assert!(
            !text.contains(&photo_base64[..64]),
            "the photo is in the log"
        );
    }
}

/// The money metrics an alarm watches, one EMF line per invocation: a prediction paid for
/// whose image was not stored, a create whose outcome is unknown, and a 200 whose manifest
/// was not updated.
#[tokio::test]
async fn money_outcomes_are_metrics_an_alarm_can_watch() {
    let stack = GenerationStack::start().await;
    let (function, log) = common::start_capturing(&stack.function_env(), "money-metrics").await;
    let event = testkit::event("generate-single-http-v2.json");
    let mut expected = Vec::new();

    stack
        .replicate
        .set_faults(json!({"output_not_jpeg": true}))
        .await;
    assert_eq!(function.invoke(&event).await["statusCode"], 502);
    expected.push(("ImagesPaidNotStored", "output_refused"));

    stack
        .replicate
        .set_faults(json!({"reject_creates": 1, "reject_status": 500}))
        .await;
    assert_eq!(function.invoke(&event).await["statusCode"], 502);
    expected.push(("PredictionsUncertain", "prediction_uncertain"));

    stack.replicate.set_faults(json!({})).await;
    testkit::put_object(
        &stack.sdk,
        "system_actors/training_data/0000_european_16_male/response.json",
        b"{not json".to_vec(),
        "application/json",
    )
    .await;
    let answer = function.invoke(&event).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    expected.push(("ManifestNotUpdated", "none"));

    let text = log.text();
    drop(function);
    let emf: Vec<Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line.get("_aws").is_some())
        .collect();
    assert_eq!(emf.len(), expected.len(), "{emf:#?}");
    let money = [
        "ImagesPaidNotStored",
        "PredictionsUncertain",
        "ManifestNotUpdated",
    ];
    for (line, (metric, reason)) in emf.iter().zip(&expected) {
        assert_eq!(line["FailureReason"], *reason, "{line}");
        let declared: Vec<&str> = line
            .pointer("/_aws/CloudWatchMetrics/0/Metrics")
            .and_then(Value::as_array)
            .expect("metrics")
            .iter()
            .filter_map(|m| m["Name"].as_str())
            .collect();
        for name in money {
            assert!(declared.contains(&name), "{name} not declared: {line}");
            let value = if name == *metric { 1 } else { 0 };
            assert_eq!(line[name], value, "{name} in {line}");
        }
    }
}
