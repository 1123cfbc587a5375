//! Replicate's JSON, read leniently, and the hints its errors carry.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A prediction as the API returns it. Fields it does not know are ignored; `version` may be
/// a hash, `"hidden"` or null; `output` a string, a list, or null.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Prediction {
    /// The prediction's id.
    pub id: String,
    /// `starting`, `processing`, `succeeded`, `failed`, `canceled` (or `aborted`).
    pub status: String,
    /// The output: a URL or a list of URLs, once succeeded.
    #[serde(default)]
    pub output: Option<Value>,
    /// The model's error, once failed.
    #[serde(default)]
    pub error: Option<Value>,
    /// Links to get and cancel the prediction.
    #[serde(default)]
    pub urls: Option<PredictionUrls>,
}

/// The links a prediction carries.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct PredictionUrls {
    /// Where to read the prediction.
    #[serde(default)]
    pub get: Option<String>,
    /// Where to cancel it.
    #[serde(default)]
    pub cancel: Option<String>,
}

impl Prediction {
    /// Whether the prediction has stopped changing.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.status.as_str(),
            "succeeded" | "failed" | "canceled" | "aborted"
        )
    }

    /// The first output URL: the string itself, or the first string of a list.
    pub fn output_url(&self) -> Option<&str> {
        match self.output.as_ref()? {
            Value::String(url) => Some(url),
            Value::Array(items) => items.iter().find_map(Value::as_str),
            _ => None,
        }
    }

    /// The model's error message, as text.
    pub fn error_message(&self) -> String {
        match &self.error {
            Some(Value::String(message)) if !message.is_empty() => message.clone(),
            Some(Value::Null) | None => "the model reported no error message".to_owned(),
            Some(other) => other.to_string(),
        }
    }
}

/// The message of an API error body: its `detail`, else its `title`, else its `status`, else
/// the raw text (cut to 500 characters).
pub fn problem_message(status: u16, body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(|v| match v {
                Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
    };
    field("detail")
        .or_else(|| field("title"))
        .or_else(|| field("status").map(|s| format!("status {s}")))
        .unwrap_or_else(|| {
            let raw = body.trim();
            if raw.is_empty() {
                format!("HTTP {status} with an empty body")
            } else {
                raw.chars().take(500).collect()
            }
        })
}

/// When to try again: the `Retry-After` header in seconds, else a "resets in ~Ns" text in the
/// body (Replicate's throttling message).
pub fn retry_hint(retry_after_header: Option<&str>, body: &str) -> Option<Duration> {
    if let Some(seconds) = retry_after_header.and_then(|v| v.trim().parse::<f64>().ok()) {
        return seconds_to_duration(seconds);
    }
    let rest = &body[body.find("resets in")? + "resets in".len()..];
    let number: String = rest
        .trim_start()
        .trim_start_matches('~')
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    seconds_to_duration(number.parse().ok()?)
}

fn seconds_to_duration(seconds: f64) -> Option<Duration> {
    (0.0..=3600.0)
        .contains(&seconds)
        .then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_message_prefers_detail_then_title_then_status_then_raw() {
        assert_eq!(
            problem_message(
                422,
                r#"{"title":"Invalid input","detail":"prompt is required","status":422}"#
            ),
            "prompt is required"
        );
        assert_eq!(
            problem_message(401, r#"{"title":"Unauthenticated"}"#),
            "Unauthenticated"
        );
        assert_eq!(problem_message(402, r#"{"status":402}"#), "status 402");
        assert_eq!(
            problem_message(502, "<html>Bad gateway</html>"),
            "<html>Bad gateway</html>"
        );
        assert_eq!(problem_message(500, "  "), "HTTP 500 with an empty body");
        assert_eq!(problem_message(500, &"x".repeat(900)).len(), 500);
        assert_eq!(
            problem_message(429, r#"{"detail":"","title":"Too many"}"#),
            "Too many"
        );
    }

    #[test]
    fn retry_hint_reads_the_header_then_the_reset_text() {
        let body = r#"{"detail":"Request was throttled. Your rate limit resets in ~7s."}"#;
        assert_eq!(retry_hint(Some("3"), body), Some(Duration::from_secs(3)));
        assert_eq!(retry_hint(None, body), Some(Duration::from_secs(7)));
        assert_eq!(retry_hint(Some("soon"), body), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_hint(None, "limit resets in 0.5s"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(retry_hint(None, "try later"), None);
        assert_eq!(retry_hint(Some("-1"), ""), None);
    }

    #[test]
    fn predictions_are_read_leniently() {
        let list: Prediction = serde_json::from_str(
            r#"{"id":"p1","status":"succeeded","version":"hidden","output":["https://a/1.jpg","https://a/2.jpg"],"extra":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(list.output_url(), Some("https://a/1.jpg"));
        assert!(list.is_terminal());
        let string: Prediction = serde_json::from_str(
            r#"{"id":"p2","status":"processing","version":null,"output":"https://a/x.jpg","urls":{"get":"g"}}"#,
        )
        .unwrap();
        assert_eq!(string.output_url(), Some("https://a/x.jpg"));
        assert!(!string.is_terminal());
        let failed: Prediction =
            serde_json::from_str(r#"{"id":"p3","status":"failed","output":null,"error":"NSFW"}"#)
                .unwrap();
        assert_eq!(failed.output_url(), None);
        assert_eq!(failed.error_message(), "NSFW");
    }
}
