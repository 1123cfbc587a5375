//! The predict step: a new prediction (the call that costs money) or one an earlier run paid
//! for, waited on until it succeeded with an output from an allowed place.

use std::time::Instant;

use super::UseCaseError;
use super::generate_image::GenerateImage;
use crate::ports::{
    AtDeadline, ImageGenerator, PredictionRequest, StartedPrediction, SucceededPrediction,
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

/// A generation whose prediction nobody else will know of: canceled at the deadline.
pub struct NotRecorded;

impl PredictionLog for NotRecorded {
    async fn started(&self, _prediction_id: &str) {}

    fn at_deadline(&self) -> AtDeadline {
        AtDeadline::Cancel
    }
}

/// How a generation gets its prediction.
#[derive(Debug, Clone, Copy)]
pub enum Start<'a, L> {
    /// A new prediction; `L` learns its id as soon as it exists.
    New(&'a L),
    /// A prediction an earlier run started and paid for.
    Resume(&'a str),
}

impl<P, O, C, G: ImageGenerator, K> GenerateImage<P, O, C, G, K> {
    /// Starts a new prediction: from here on it may be paid for.
    pub(super) async fn start_prediction(
        &self,
        request: &PredictionRequest,
        deadline: Instant,
    ) -> Result<StartedPrediction<G::State>, UseCaseError> {
        Ok(self.generator.start(request, deadline).await?)
    }

    /// Waits for the prediction until it succeeded. Every error names the prediction, so it
    /// is never taken for one that paid nothing.
    pub(super) async fn finish_prediction(
        &self,
        prediction: Collect<'_, G::State>,
        deadline: Instant,
        at_deadline: AtDeadline,
    ) -> Result<SucceededPrediction, UseCaseError> {
        match prediction {
            Collect::Started(started) => {
                let prediction_id = started.prediction_id.clone();
                self.generator
                    .finish(started, deadline, at_deadline)
                    .await
                    .map_err(|error| error.after_create(&prediction_id).into())
            }
            Collect::PaidEarlier(prediction_id) => self
                .generator
                .resume(prediction_id, deadline, AtDeadline::KeepRunning)
                .await
                .map_err(|error| error.after_create(prediction_id).into()),
        }
    }
}

/// The prediction a run waits for.
pub(super) enum Collect<'a, S> {
    /// Started by this run.
    Started(StartedPrediction<S>),
    /// Started and paid for by an earlier run.
    PaidEarlier(&'a str),
}
