//! Generating one image for an actor: [`GenerateImage::prepare`] checks everything without
//! paying, [`GenerateImage::execute`] pays for a new prediction and stores what succeeded,
//! [`GenerateImage::resume`] collects one an earlier run paid for. The steps live in their own
//! files (`prepare`, `predict`, `store`, `numbering`, `manifest_listing`, `collect`); this one
//! holds the use case's ports and settings and puts the steps of a new prediction in order.

use std::time::Instant;

use super::UseCaseError;
use super::concurrently::{Handoff, both};
use super::group_commit::GroupCommit;
use super::predict::{Collect, PredictionLog};
use super::slots::{Slot, Slots};
use super::store::StoredImage;
use crate::domain::base_photo::BaseImagePrefixes;
use crate::domain::manifest::ManifestEntry;
use crate::ports::{
    ActorProfiles, Clock, ImageGenerator, IndexCounter, ObjectStore, PredictionRecords,
    PredictionRequest,
};

pub use crate::domain::order::ImageOrder;

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

/// A generation checked and ready: nothing has been written or paid for yet.
#[derive(Debug, Clone)]
pub struct PreparedGeneration {
    /// What the image is for.
    pub order: ImageOrder,
    /// What the model is asked for.
    pub request: PredictionRequest,
}

/// When a run must be done by.
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    /// When the model must be done: a prediction still running then is canceled, or left
    /// running for a later collector.
    pub model: Instant,
    /// When everything after the model must be done (the cancel and final read, the
    /// download, the index, the image's write, each manifest attempt): the answer's own
    /// deadline. What is paid for and not stored by then is left to a retry or the
    /// reconciler.
    pub finish: Instant,
    /// Until when (epoch milliseconds) the run holds its prediction's record; past it, the
    /// reconciler may collect the prediction.
    pub hold_until_ms: u64,
}

/// The use case with its ports. Build it once per execution environment.
#[derive(Debug)]
pub struct GenerateImage<P, O, C, G, K, R> {
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
    /// The paid predictions' records.
    pub records: R,
    /// Settings.
    pub settings: GenerationSettings,
    /// The manifest entries this execution environment's concurrent stores list together.
    pub manifests: GroupCommit<ManifestEntry>,
    /// The images this execution environment holds at once, between download and write.
    pub image_slots: ImageSlots,
}

/// The most images one execution environment holds in memory at once: a worker batch stores
/// its items concurrently, and each image is held whole from its download to its write (up
/// to the download cap each). Ten is what a batch of ten held before batches grew; the
/// other steps of a larger batch still run all at once.
pub const MAX_IMAGES_IN_MEMORY: usize = 10;

/// Slots for the images held at once ([`MAX_IMAGES_IN_MEMORY`]).
#[derive(Debug)]
pub struct ImageSlots(Slots);

impl Default for ImageSlots {
    fn default() -> Self {
        Self(Slots::new(MAX_IMAGES_IN_MEMORY))
    }
}

impl ImageSlots {
    /// Waits for a free slot; the image's slot is given back when the guard is dropped.
    pub(super) async fn take(&self) -> Slot<'_> {
        self.0.take().await
    }
}

impl<P, O, C, G, K, R> GenerateImage<P, O, C, G, K, R>
where
    P: ActorProfiles,
    O: ObjectStore,
    C: IndexCounter,
    G: ImageGenerator,
    K: Clock,
    R: PredictionRecords,
{
    /// Pays for a new prediction and stores its image. Its record is opened (and `log` told
    /// its id) as soon as it exists, concurrently with everything after the create; the
    /// manifest is read concurrently with the whole prediction (docs/benchmark.md, "Critical
    /// path"). A run that ends without storing what it paid for closes the record when the
    /// prediction ended for good, and else hands it to the reconciler.
    pub async fn execute(
        &self,
        prepared: &PreparedGeneration,
        limits: RunLimits,
        log: &impl PredictionLog,
    ) -> Result<StoredImage, UseCaseError> {
        // The run's state lives on the heap: inline, it made the future of a direct batch
        // job overflow the 8 MiB main-thread stack of the unoptimised build.
        Box::pin(async {
            let result = self.run_new(prepared, limits, log).await;
            self.settle_record(&result, limits.hold_until_ms).await;
            result
        })
        .await
    }

    async fn run_new(
        &self,
        prepared: &PreparedGeneration,
        limits: RunLimits,
        log: &impl PredictionLog,
    ) -> Result<StoredImage, UseCaseError> {
        let order = &prepared.order;
        let model = self.generator.model();
        // The new prediction's id, handed from the create to its records.
        let created = Handoff::<String>::default();
        let record = async {
            if let Some(prediction_id) = created.take().await {
                both(
                    self.open_record(&prediction_id, order, model, limits.hold_until_ms),
                    log.started(&prediction_id),
                )
                .await;
            }
        };
        let succeeded = async {
            let started = self
                .start_prediction(&prepared.request, limits.model)
                .await?;
            created.give(started.prediction_id.clone());
            self.finish_prediction(Collect::Started(started), limits, log.at_deadline())
                .await
        };
        let collect = async {
            let stored = self
                .collect_and_store(order, model, limits, None, succeeded)
                .await;
            created.close();
            stored
        };
        let ((), stored) = both(record, collect).await;
        stored
    }
}
