//! One CloudWatch embedded-metric-format (EMF) line per invocation: generations, failures by
//! reason, the Replicate predict time, the end-to-end latency, the budget used, and the three
//! money outcomes the template alarms on: images paid for but not stored, predictions whose
//! outcome is uncertain, and stored images the manifest does not list.

use serde_json::{Value, json};

use super::http::ApiError;
use crate::timing::epoch_ms;
use crate::usecases::UseCaseError;

/// The metrics namespace.
pub const NAMESPACE: &str = "TrainingImageService";

/// What one invocation did, for its metrics line.
#[derive(Debug, Clone, Default)]
pub struct InvocationMetrics {
    function: String,
    generations: u64,
    failures: u64,
    failure_reason: Option<&'static str>,
    predict_ms: Option<u64>,
    budget_used: u64,
    images_paid_not_stored: u64,
    predictions_uncertain: u64,
    manifests_not_updated: u64,
}

impl InvocationMetrics {
    /// Metrics of an invocation of `function` (the deployed name, `config::function_name`, so
    /// that two stacks in one account and region have their own metrics and alarms).
    pub fn new(function: &str) -> Self {
        Self {
            function: function.to_owned(),
            ..Self::default()
        }
    }

    /// An image was generated and stored; its prediction took `predict_ms`.
    pub fn generated(&mut self, predict_ms: u64) {
        self.generations += 1;
        self.predict_ms = Some(self.predict_ms.unwrap_or(0).max(predict_ms));
    }

    /// A job failed with this error (the first one names the reason), counted among the
    /// money outcomes when it is one.
    pub fn failed(&mut self, error: &ApiError) {
        self.failed_with(error.code());
        let use_case = error.use_case();
        self.images_paid_not_stored +=
            u64::from(use_case.is_some_and(UseCaseError::paid_not_stored));
        self.predictions_uncertain +=
            u64::from(use_case.is_some_and(UseCaseError::outcome_uncertain));
    }

    /// A job failed with this code and touched no money (e.g. `not_started`).
    pub fn failed_with(&mut self, code: &'static str) {
        self.failures += 1;
        self.failure_reason.get_or_insert(code);
    }

    /// An image was stored but the manifest does not list it (`manifest_updated: false`).
    pub fn manifest_not_updated(&mut self) {
        self.manifests_not_updated += 1;
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
            json!({"Name": "ImagesPaidNotStored", "Unit": "Count"}),
            json!({"Name": "PredictionsUncertain", "Unit": "Count"}),
            json!({"Name": "ManifestNotUpdated", "Unit": "Count"}),
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
            "ImagesPaidNotStored": self.images_paid_not_stored,
            "PredictionsUncertain": self.predictions_uncertain,
            "ManifestNotUpdated": self.manifests_not_updated,
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
    use crate::ports::PredictionError;

    fn failed_prediction(error: PredictionError) -> ApiError {
        ApiError::UseCase(UseCaseError::Prediction(error))
    }

    #[test]
    fn the_document_declares_what_it_carries() {
        let mut metrics = InvocationMetrics::new("generate-single");
        metrics.budget_counted();
        metrics.generated(1200);
        metrics.failed(&failed_prediction(PredictionError::Failed {
            prediction_id: "p1".to_owned(),
            message: "NSFW".to_owned(),
        }));
        metrics.failed(&failed_prediction(PredictionError::Unavailable {
            prediction_id: Some("p2".to_owned()),
            message: "the output download kept failing".to_owned(),
        }));
        metrics.failed(&failed_prediction(PredictionError::Uncertain {
            message: "timed out after sending".to_owned(),
        }));
        metrics.manifest_not_updated();
        let document = metrics.document("r1", 1500, 7);
        assert_eq!(
            (
                &document["ImagesPaidNotStored"],
                &document["PredictionsUncertain"],
                &document["ManifestNotUpdated"],
                &document["Failures"]
            ),
            (&json!(1), &json!(1), &json!(1), &json!(3))
        );
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
