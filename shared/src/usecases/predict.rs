//! The predict step: a new prediction (the call that costs money) or one an earlier run paid
//! for, waited on until it succeeded with an output from an allowed place.

use std::time::Instant;

use super::UseCaseError;
use super::generate_image::{GenerateImage, RunLimits};
use crate::ports::{
    AtDeadline, Clock, ImageGenerator, PredictionRequest, StartedPrediction, SucceededPrediction,
};

/// Learns the id of a new prediction as soon as it exists, so that a later run can collect
/// it instead of paying again.
pub trait PredictionLog: Send + Sync {
    /// Records that `prediction_id` was started. Failures are the recorder's to log.
    fn started(&self, prediction_id: &str) -> impl Future<Output = ()> + Send;
    /// What to do with the prediction if it is still running at the deadline: keep it
    /// running when a later run can collect it, else cancel it.
    fn at_deadline(&self) -> AtDeadline;
}

/// A generation whose prediction no caller will come back for: canceled at the deadline
/// (its record still lets the reconciler store it, if it succeeded meanwhile).
pub struct NotRecorded;

impl PredictionLog for NotRecorded {
    async fn started(&self, _prediction_id: &str) {}

    fn at_deadline(&self) -> AtDeadline {
        AtDeadline::Cancel
    }
}

impl<P, O, C, G: ImageGenerator, K: Clock, R> GenerateImage<P, O, C, G, K, R> {
    /// Starts a new prediction: from here on it may be paid for.
    pub(super) async fn start_prediction(
        &self,
        request: &PredictionRequest,
        deadline: Instant,
    ) -> Result<StartedPrediction<G::State>, UseCaseError> {
        Ok(self.generator.start(request, deadline).await?)
    }

    /// Waits for the prediction until it succeeded: until the model's deadline, then (what
    /// is done at the deadline: a cancel, a final read) until the run's finish. Every error
    /// names the prediction, so it is never taken for one that paid nothing.
    pub(super) async fn finish_prediction(
        &self,
        prediction: Collect<'_, G::State>,
        limits: RunLimits,
        at_deadline: AtDeadline,
    ) -> Result<SucceededPrediction, UseCaseError> {
        let prediction_id = match &prediction {
            Collect::Started(started) => started.prediction_id.clone(),
            Collect::PaidEarlier(prediction_id) => (*prediction_id).to_owned(),
        };
        let deadline = limits.model;
        let waited = async {
            let result = match prediction {
                Collect::Started(started) => {
                    self.generator.finish(started, deadline, at_deadline).await
                }
                Collect::PaidEarlier(prediction_id) => {
                    self.generator
                        .resume(prediction_id, deadline, AtDeadline::KeepRunning)
                        .await
                }
            };
            result.map_err(|error| UseCaseError::from(error.after_create(&prediction_id)))
        };
        self.within(limits.finish, &prediction_id, waited).await?
    }
}

/// The prediction a run waits for.
pub(super) enum Collect<'a, S> {
    /// Started by this run.
    Started(StartedPrediction<S>),
    /// Started and paid for by an earlier run.
    PaidEarlier(&'a str),
}
