//! Generating one image for an actor: [`GenerateImage::prepare`] checks everything without
//! paying, [`GenerateImage::execute`] predicts and then stores what succeeded. The steps live
//! in their own files (`prepare`, `predict`, `store`, `numbering`, `manifest_listing`); this
//! one holds the use case's ports and settings and puts the steps in order.

use std::time::Instant;

use super::UseCaseError;
use super::concurrently::{Handoff, both};
use super::predict::{Collect, PredictionLog, Start};
use super::store::StoredImage;
use crate::domain::base_photo::BaseImagePrefixes;
use crate::domain::request::{PromptChoice, ResolvedActor};
use crate::ports::{
    ActorProfiles, AtDeadline, Clock, ImageGenerator, IndexCounter, ObjectStore, PredictionRequest,
};

/// Settings of the use case.
#[derive(Debug, Clone)]
pub struct GenerationSettings {
    /// The bucket `s3://` paths must name.
    pub bucket: String,
    /// The largest base photo accepted, in bytes.
    pub max_base_image_bytes: u64,
    /// Where an actor's base photos may be, besides its profile's own.
    pub base_image_prefixes: BaseImagePrefixes,
}

/// What a paid prediction was for: everything that storing and listing its image needs, so
/// that whoever collects the prediction (a resume, a worker, a webhook) stores it alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOrder {
    /// The actor, resolved.
    pub actor: ResolvedActor,
    /// The prompt.
    pub prompt: PromptChoice,
    /// The seed, when given.
    pub seed: Option<u64>,
}

/// A generation checked and ready: nothing has been written or paid for yet.
#[derive(Debug, Clone)]
pub struct PreparedGeneration {
    /// What the image is for.
    pub order: ImageOrder,
    /// What the model is asked for.
    pub request: PredictionRequest,
}

/// The use case with its ports. Build it once per execution environment.
#[derive(Debug)]
pub struct GenerateImage<P, O, C, G, K> {
    /// Actor profiles.
    pub profiles: P,
    /// The bucket.
    pub objects: O,
    /// The image counters.
    pub counter: C,
    /// The image model.
    pub generator: G,
    /// Time.
    pub clock: K,
    /// Settings.
    pub settings: GenerationSettings,
}

impl<P, O, C, G, K> GenerateImage<P, O, C, G, K>
where
    P: ActorProfiles,
    O: ObjectStore,
    C: IndexCounter,
    G: ImageGenerator,
    K: Clock,
{
    /// Runs a prepared generation: a new prediction (its id told to the log as soon as it
    /// exists) or one an earlier run paid for, then its image stored and listed.
    ///
    /// The id is recorded concurrently with everything after the create: nothing there needs
    /// the record, and a failed run records it again when it settles. The manifest is read
    /// concurrently with the whole prediction (docs/benchmark.md, "Critical path").
    pub async fn execute(
        &self,
        prepared: &PreparedGeneration,
        deadline: Instant,
        start: Start<'_, impl PredictionLog>,
    ) -> Result<StoredImage, UseCaseError> {
        // The run's state lives on the heap: inline, it made the future of a direct batch
        // job overflow the 8 MiB main-thread stack of the unoptimised build.
        Box::pin(self.run(prepared, deadline, start)).await
    }

    async fn run(
        &self,
        prepared: &PreparedGeneration,
        deadline: Instant,
        start: Start<'_, impl PredictionLog>,
    ) -> Result<StoredImage, UseCaseError> {
        // The new prediction's id, handed from the create to its record.
        let created = Handoff::<String>::default();
        let (log, at_deadline) = match start {
            Start::New(log) => (Some(log), log.at_deadline()),
            Start::Resume(_) => (None, AtDeadline::KeepRunning),
        };
        let record = async {
            if let Some(log) = log
                && let Some(prediction_id) = created.take().await
            {
                log.started(&prediction_id).await;
            }
        };
        let succeeded = async {
            let prediction = match start {
                Start::New(_) => {
                    let started = self.start_prediction(&prepared.request, deadline).await?;
                    created.give(started.prediction_id.clone());
                    Collect::Started(started)
                }
                Start::Resume(prediction_id) => Collect::PaidEarlier(prediction_id),
            };
            self.finish_prediction(prediction, deadline, at_deadline)
                .await
        };
        let collect = async {
            let stored = self
                .collect_and_store(&prepared.order, deadline, succeeded)
                .await;
            created.close();
            stored
        };
        let ((), stored) = both(record, collect).await;
        stored
    }
}
