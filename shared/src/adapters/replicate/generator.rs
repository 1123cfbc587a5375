//! The image-model port, as Replicate serves it.

use std::time::Instant;

use super::{Prediction, ReplicateClient};
use crate::ports::{
    AtDeadline, GeneratedImage, ImageGenerator, PredictionError, PredictionRequest,
    StartedPrediction, SucceededPrediction,
};

impl ImageGenerator for ReplicateClient {
    /// Replicate's answer to the create: finishing a prediction that is done already needs
    /// no read.
    type State = Prediction;

    fn model(&self) -> &str {
        &self.config.model
    }

    async fn start(
        &self,
        request: &PredictionRequest,
        deadline: Instant,
    ) -> Result<StartedPrediction<Prediction>, PredictionError> {
        let started = Instant::now();
        let created = self.create(request, deadline).await?;
        tracing::info!(prediction_id = %created.id, status = %created.status, elapsed_ms = started.elapsed().as_millis() as u64, "prediction created");
        Ok(StartedPrediction {
            prediction_id: created.id.clone(),
            state: created,
        })
    }

    async fn finish(
        &self,
        started: StartedPrediction<Prediction>,
        deadline: Instant,
        at_deadline: AtDeadline,
    ) -> Result<SucceededPrediction, PredictionError> {
        self.settle(started.state, deadline, at_deadline).await
    }

    async fn resume(
        &self,
        prediction_id: &str,
        deadline: Instant,
        at_deadline: AtDeadline,
    ) -> Result<SucceededPrediction, PredictionError> {
        tracing::info!(
            prediction_id,
            "resuming a prediction paid for by an earlier run"
        );
        let prediction = self.get(prediction_id).await?;
        self.settle(prediction, deadline, at_deadline).await
    }

    async fn download(
        &self,
        succeeded: &SucceededPrediction,
        finish_by: Instant,
    ) -> Result<GeneratedImage, PredictionError> {
        let started = Instant::now();
        let bytes = self.download_output(succeeded, finish_by).await?;
        tracing::info!(prediction_id = %succeeded.prediction_id, bytes = bytes.len(), elapsed_ms = started.elapsed().as_millis() as u64, "prediction output downloaded");
        Ok(GeneratedImage {
            prediction_id: succeeded.prediction_id.clone(),
            model: self.config.model.clone(),
            bytes,
        })
    }
}
