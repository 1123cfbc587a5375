//! One CloudWatch embedded-metric-format (EMF) line per invocation: generations, failures by
//! reason, the Replicate predict time, the end-to-end latency and the budget used.

use serde_json::{Value, json};

use crate::timing::epoch_ms;

/// The metrics namespace.
pub const NAMESPACE: &str = "TrainingImageService";

/// What one invocation did, for its metrics line.
#[derive(Debug, Clone, Default)]
pub struct InvocationMetrics {
    function: &'static str,
    generations: u64,
    failures: u64,
    failure_reason: Option<&'static str>,
    predict_ms: Option<u64>,
    budget_used: u64,
}

impl InvocationMetrics {
    /// Metrics of an invocation of `function`.
    pub fn new(function: &'static str) -> Self {
        Self {
            function,
            ..Self::default()
        }
    }

    /// An image was generated and stored; its prediction took `predict_ms`.
    pub fn generated(&mut self, predict_ms: u64) {
        self.generations += 1;
        self.predict_ms = Some(self.predict_ms.unwrap_or(0).max(predict_ms));
    }

    /// A job failed with this error code (the first one names the reason).
    pub fn failed(&mut self, code: &'static str) {
        self.failures += 1;
        self.failure_reason.get_or_insert(code);
    }

    /// The spend guard counted one generation.
    pub fn budget_counted(&mut self) {
        self.budget_used += 1;
    }

    /// The EMF document for this invocation, which took `end_to_end_ms`.
    pub fn document(&self, request_id: &str, end_to_end_ms: u64, timestamp_ms: u64) -> Value {
        let mut metrics = vec![
            json!({"Name": "Generations", "Unit": "Count"}),
            json!({"Name": "Failures", "Unit": "Count"}),
            json!({"Name": "EndToEndLatency", "Unit": "Milliseconds"}),
            json!({"Name": "BudgetUsed", "Unit": "Count"}),
        ];
        if self.predict_ms.is_some() {
            metrics.push(json!({"Name": "ReplicatePredictTime", "Unit": "Milliseconds"}));
        }
        let mut document = json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Function"], ["Function", "FailureReason"]],
                    "Metrics": metrics,
                }],
            },
            "Function": self.function,
            "FailureReason": self.failure_reason.unwrap_or("none"),
            "requestId": request_id,
            "Generations": self.generations,
            "Failures": self.failures,
            "EndToEndLatency": end_to_end_ms,
            "BudgetUsed": self.budget_used,
        });
        if let Some(predict_ms) = self.predict_ms {
            document["ReplicatePredictTime"] = json!(predict_ms);
        }
        document
    }

    /// Writes the EMF line to standard output, where CloudWatch Logs picks it up.
    pub fn emit(&self, request_id: &str, end_to_end_ms: u64) {
        println!("{}", self.document(request_id, end_to_end_ms, epoch_ms()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_declares_what_it_carries() {
        let mut metrics = InvocationMetrics::new("generate-single");
        metrics.budget_counted();
        metrics.generated(1200);
        metrics.failed("prediction_failed");
        let document = metrics.document("r1", 1500, 7);
        assert_eq!(document["_aws"]["Timestamp"], 7);
        let declared: Vec<&str> = document["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        for name in &declared {
            assert!(document.get(*name).is_some(), "{name} declared but missing");
        }
        assert_eq!(document["ReplicatePredictTime"], 1200);
        assert_eq!(document["FailureReason"], "prediction_failed");
        let idle = InvocationMetrics::new("generate-single").document("r2", 3, 7);
        assert!(idle.get("ReplicatePredictTime").is_none());
        assert_eq!(idle["FailureReason"], "none");
    }
}
