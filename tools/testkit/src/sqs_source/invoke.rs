//! The invocations: where a batch is sent (a worker environment under the emulator, or a slot
//! of a fixed invoke URL), and what Lambda makes of the answer.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

use super::VISIBILITY_TIMEOUT_SECONDS;
use crate::LambdaEmulator;

/// How long an invocation of a fixed invoke URL may take before it counts as failed: the
/// server enforces the function's own timeout, and this only frees the slot of a call the
/// server lost (`cargo lambda watch` drops the calls under way when a change restarts its
/// functions). The visibility timeout, well beyond the function's: the first invocation may
/// compile the function, and past it the batch's messages are delivered again anyway.
const URL_INVOCATION_LIMIT: Duration = Duration::from_secs(VISIBILITY_TIMEOUT_SECONDS as u64);

/// Where one invocation at a time goes: an environment under the emulator (stopped with the
/// target), or one of the slots of a fixed invoke URL, which serves as many at once as it is
/// sent (the slots are the concurrency).
pub(super) struct Target {
    invoke_url: String,
    client: reqwest::Client,
    /// The environment behind `invoke_url`, when the source started it.
    _environment: Option<LambdaEmulator>,
}

impl Target {
    /// An environment the source started.
    pub(super) fn emulator(environment: LambdaEmulator) -> Self {
        Self {
            invoke_url: environment.invoke_url().to_owned(),
            // No limit of its own: the emulator ends an invocation at the function's timeout.
            client: reqwest::Client::new(),
            _environment: Some(environment),
        }
    }

    /// `slots` targets that all invoke `invoke_url`.
    pub(super) fn url_slots(invoke_url: &str, slots: usize) -> Vec<Self> {
        let client = reqwest::Client::builder()
            .timeout(URL_INVOCATION_LIMIT)
            .build()
            .expect("an HTTP client");
        (0..slots)
            .map(|_| Self {
                invoke_url: invoke_url.to_owned(),
                client: client.clone(),
                _environment: None,
            })
            .collect()
    }

    /// Invokes the function with `event`: its answer, or why the invocation failed as a whole
    /// (no answer, an HTTP error, a function error flagged by `X-Amz-Function-Error`, or an
    /// answer that is not JSON, as the emulator's text on a timeout).
    pub(super) async fn invoke(&self, event: &Value) -> Result<Value, String> {
        let response = self
            .client
            .post(&self.invoke_url)
            .json(event)
            .send()
            .await
            .map_err(|e| format!("no answer from {}: {e}", self.invoke_url))?;
        let status = response.status();
        let function_error = response
            .headers()
            .get("x-amz-function-error")
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let text = response
            .text()
            .await
            .map_err(|e| format!("the answer from {} broke off: {e}", self.invoke_url))?;
        if !status.is_success() {
            return Err(format!("HTTP {status} from {}: {text}", self.invoke_url));
        }
        if let Some(kind) = function_error {
            return Err(format!("function error ({kind}): {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("the answer is not JSON ({e}): {text}"))
    }
}

/// What Lambda makes of an answer to a batch with `ReportBatchItemFailures`: the ids of the
/// failed items (none for `null`, `{}` or an empty or null list), or why the whole invocation
/// counts as failed (a function error, an answer of another shape, an `itemIdentifier` that is
/// missing, empty or not in the batch).
pub(super) fn failed_items(answer: &Value, batch: &[&str]) -> Result<HashSet<String>, String> {
    let object = match answer {
        Value::Null => return Ok(HashSet::new()),
        Value::Object(object) => object,
        other => return Err(format!("the answer is not a batch response: {other}")),
    };
    if object.contains_key("errorType") || object.contains_key("errorMessage") {
        return Err(format!("function error: {answer}"));
    }
    let items = match object.get("batchItemFailures") {
        None | Some(Value::Null) => return Ok(HashSet::new()),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(format!("batchItemFailures is not a list: {other}")),
    };
    items
        .iter()
        .map(|item| match item.get("itemIdentifier") {
            Some(Value::String(id)) if !id.is_empty() && batch.contains(&id.as_str()) => {
                Ok(id.clone())
            }
            _ => Err(format!("invalid batch item failure {item} in {answer}")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BATCH: [&str; 2] = ["a", "b"];

    fn ids(list: &[&str]) -> Result<HashSet<String>, String> {
        Ok(list.iter().map(|id| (*id).to_owned()).collect())
    }

    #[test]
    fn null_empty_and_listless_answers_mean_the_whole_batch_succeeded() {
        for answer in [
            Value::Null,
            json!({}),
            json!({"batchItemFailures": []}),
            json!({"batchItemFailures": null}),
        ] {
            assert_eq!(failed_items(&answer, &BATCH), ids(&[]), "{answer}");
        }
    }

    #[test]
    fn listed_items_are_the_failed_ones() {
        let answer = json!({"batchItemFailures": [{"itemIdentifier": "b"}]});
        assert_eq!(failed_items(&answer, &BATCH), ids(&["b"]));
    }

    #[test]
    fn function_errors_and_invalid_items_fail_the_whole_invocation() {
        for answer in [
            json!({"errorType": "Runtime.ExitError", "errorMessage": "exit status 1"}),
            json!({"errorMessage": "Task timed out"}),
            json!("done"),
            json!([]),
            json!({"batchItemFailures": {"itemIdentifier": "a"}}),
            json!({"batchItemFailures": [{"itemIdentifier": ""}]}),
            json!({"batchItemFailures": [{"itemIdentifier": null}]}),
            json!({"batchItemFailures": [{"itemId": "a"}]}),
            json!({"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "c"}]}),
        ] {
            assert!(failed_items(&answer, &BATCH).is_err(), "{answer}");
        }
    }
}
