//! CloudWatch embedded-metric-format (EMF) lines of an invocation: generations, failures by
//! reason, the Replicate predict time, the end-to-end latency, the budget used, and the three
//! money outcomes the template alarms on: images paid for but not stored, predictions whose
//! outcome is uncertain, and stored images the manifest does not list. One line carries the
//! invocation's figures and its first failure reason; a batch whose jobs failed for several
//! reasons writes one more line per further reason, so each reason is counted under its own
//! `FailureReason` and the `Function` totals add up.

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
    /// Failures by reason, in the order the reasons first occurred.
    failures: Vec<(&'static str, ReasonCounts)>,
    predict_ms: Option<u64>,
    budget_used: u64,
    manifests_not_updated: u64,
}

/// What the failures of one reason counted.
#[derive(Debug, Clone, Copy, Default)]
struct ReasonCounts {
    failures: u64,
    images_paid_not_stored: u64,
    predictions_uncertain: u64,
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
        let use_case = error.use_case();
        let counts = self.reason(error.code());
        counts.failures += 1;
        counts.images_paid_not_stored +=
            u64::from(use_case.is_some_and(UseCaseError::paid_not_stored));
        counts.predictions_uncertain +=
            u64::from(use_case.is_some_and(UseCaseError::outcome_uncertain));
    }

    /// A job failed with this code and touched no money (e.g. `not_started`).
    pub fn failed_with(&mut self, code: &'static str) {
        self.reason(code).failures += 1;
    }

    fn reason(&mut self, code: &'static str) -> &mut ReasonCounts {
        let position = match self.failures.iter().position(|(reason, _)| *reason == code) {
            Some(position) => position,
            None => {
                self.failures.push((code, ReasonCounts::default()));
                self.failures.len() - 1
            }
        };
        &mut self.failures[position].1
    }

    /// An image was stored but the manifest does not list it (`manifest_updated: false`).
    pub fn manifest_not_updated(&mut self) {
        self.manifests_not_updated += 1;
    }

    /// The spend guard counted one generation.
    pub fn budget_counted(&mut self) {
        self.budget_used += 1;
    }

    /// The EMF documents of this invocation, which took `end_to_end_ms`: the first with
    /// every figure and the first failure reason (or `none`), then one per further reason
    /// with that reason's failures.
    pub fn documents(&self, request_id: &str, end_to_end_ms: u64, timestamp_ms: u64) -> Vec<Value> {
        let mut reasons = self.failures.iter();
        let (first_reason, first) = reasons
            .next()
            .map_or(("none", ReasonCounts::default()), |(reason, counts)| {
                (*reason, *counts)
            });
        let mut figures = vec![
            ("Generations", "Count", json!(self.generations)),
            ("EndToEndLatency", "Milliseconds", json!(end_to_end_ms)),
            ("BudgetUsed", "Count", json!(self.budget_used)),
            (
                "ManifestNotUpdated",
                "Count",
                json!(self.manifests_not_updated),
            ),
        ];
        if let Some(predict_ms) = self.predict_ms {
            figures.push(("ReplicatePredictTime", "Milliseconds", json!(predict_ms)));
        }
        let mut documents = vec![self.line(request_id, timestamp_ms, first_reason, first, figures)];
        for (reason, counts) in reasons {
            let figures = vec![
                ("Generations", "Count", json!(0)),
                ("ManifestNotUpdated", "Count", json!(0)),
            ];
            documents.push(self.line(request_id, timestamp_ms, reason, *counts, figures));
        }
        documents
    }

    /// One EMF line: a reason's failures and money outcomes, with `figures` besides.
    fn line(
        &self,
        request_id: &str,
        timestamp_ms: u64,
        reason: &str,
        counts: ReasonCounts,
        mut figures: Vec<(&'static str, &'static str, Value)>,
    ) -> Value {
        figures.extend([
            ("Failures", "Count", json!(counts.failures)),
            (
                "ImagesPaidNotStored",
                "Count",
                json!(counts.images_paid_not_stored),
            ),
            (
                "PredictionsUncertain",
                "Count",
                json!(counts.predictions_uncertain),
            ),
        ]);
        let declared: Vec<Value> = figures
            .iter()
            .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
            .collect();
        let mut document = json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Function"], ["Function", "FailureReason"]],
                    "Metrics": declared,
                }],
            },
            "Function": self.function,
            "FailureReason": reason,
            "requestId": request_id,
        });
        for (name, _, value) in figures {
            document[name] = value;
        }
        document
    }

    /// Writes the EMF lines to standard output, where CloudWatch Logs picks them up.
    pub fn emit(&self, request_id: &str, end_to_end_ms: u64) {
        for document in self.documents(request_id, end_to_end_ms, epoch_ms()) {
            println!("{document}");
        }
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
    fn each_failure_reason_gets_its_own_line_and_the_totals_add_up() {
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
        metrics.failed(&failed_prediction(PredictionError::Failed {
            prediction_id: "p3".to_owned(),
            message: "NSFW".to_owned(),
        }));
        metrics.manifest_not_updated();
        let lines = metrics.documents("r1", 1500, 7);
        let reasons: Vec<&str> = lines
            .iter()
            .map(|line| line["FailureReason"].as_str().unwrap())
            .collect();
        assert_eq!(
            reasons,
            [
                "prediction_failed",
                "model_unavailable",
                "prediction_uncertain"
            ]
        );
        let total = |name: &str| lines.iter().map(|l| l[name].as_u64().unwrap()).sum::<u64>();
        assert_eq!(
            (
                total("Failures"),
                total("ImagesPaidNotStored"),
                total("PredictionsUncertain"),
                total("ManifestNotUpdated"),
                total("Generations")
            ),
            (4, 1, 1, 1, 1)
        );
        assert_eq!(lines[0]["Failures"], 2, "both failures of the first reason");
        assert_eq!(lines[1]["ImagesPaidNotStored"], 1);
        for line in &lines {
            assert_eq!(line["_aws"]["Timestamp"], 7);
            let declared = line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap();
            for metric in declared {
                let name = metric["Name"].as_str().unwrap();
                assert!(line[name].is_number(), "{name} declared but missing");
            }
        }
        assert_eq!(lines[0]["ReplicatePredictTime"], 1200);
        assert!(lines[1].get("ReplicatePredictTime").is_none());
        let idle = InvocationMetrics::new("generate-single").documents("r2", 3, 7);
        assert_eq!(idle.len(), 1);
        assert!(idle[0].get("ReplicatePredictTime").is_none());
        assert_eq!(idle[0]["FailureReason"], "none");
    }
}
