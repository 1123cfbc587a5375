//! The store step: the one way a succeeded prediction becomes an image in the actor's folder,
//! numbered and listed in the manifest, and its record closed. A fresh run, a resume, the
//! reconciler (and later a worker or a webhook) all collect a paid prediction through
//! [`GenerateImage::store_prediction`].
//!
//! One prediction, at most one image: the image's place is claimed on the prediction's record
//! before the image is written, so whoever collects it again writes (or finds) it there. The
//! index is taken concurrently with the output's download (docs/design.md, invariant 2: only
//! an output refused or lost leaves a gap), the manifest is read concurrently with the wait
//! for the prediction, both and the image's write, and it is updated once the image is there.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::caption_file::{CaptionFile, CaptionWrite};
use super::concurrently::both;
use super::generate_image::{GenerateImage, ImageOrder, RunLimits};
use super::{UseCaseError, ms_between, retried};
use crate::domain::actor::ActorId;
use crate::domain::manifest::ManifestEntry;
use crate::domain::naming::{image_filename, manifest_key};
use crate::ports::{
    Clock, ImageGenerator, ImageMetadata, ImagePlace, IndexCounter, ObjectStore, PredictionRecords,
    SucceededPrediction, VersionedObject,
};

/// How long the answer's `preview_url` lives.
const PREVIEW_URL_LIFETIME: Duration = Duration::from_secs(3_600);

/// A stored image: what the answer and the manifest say of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    /// The actor's id.
    pub actor_id: ActorId,
    /// The actor's name.
    pub actor_name: String,
    /// The image's number.
    pub index: u64,
    /// `{actor_name}_{index}.jpg`.
    pub filename: String,
    /// The object's key.
    pub s3_key: String,
    /// The object's URL.
    pub s3_url: String,
    /// A presigned GET of the image, valid for an hour (none if it could not be signed).
    pub preview_url: Option<String>,
    /// The manifest's key.
    pub manifest_key: String,
    /// Why the manifest does not list the image, when it does not; the image is stored all
    /// the same.
    pub manifest_error: Option<String>,
    /// The preset's id, none for a custom prompt.
    pub prompt_id: Option<&'static str>,
    /// The preset's category, none for a custom prompt.
    pub category: Option<&'static str>,
    /// The prompt sent.
    pub prompt: String,
    /// The image's caption (with `[trigger]`), as the manifest lists it.
    pub caption: String,
    /// Why the caption file beside the image was not written, when it was not (the
    /// caption is in the manifest all the same).
    pub caption_error: Option<String>,
    /// The seed, when given.
    pub seed: Option<u64>,
    /// The prediction that made the image.
    pub prediction_id: String,
    /// The model.
    pub model: String,
    /// When the image was stored.
    pub created_at: String,
    /// How long each step took (for logs and metrics).
    pub timings: StepTimings,
}

/// How long the steps of a generation took, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepTimings {
    /// The prediction, from its start to its output downloaded (the first index is taken
    /// meanwhile).
    pub predict_ms: u64,
    /// The image write (and the new indices a taken name needs).
    pub store_ms: u64,
    /// The manifest update and the preview URL.
    pub manifest_ms: u64,
}

/// What the manifest needs of a written image.
pub(super) enum Listing {
    /// List it; the manifest as read already, if it was (`None` inside: there is none).
    Read(Option<Option<VersionedObject>>),
    /// It is listed and its record closed: an earlier collector did both.
    Done,
}

/// An image in its place: which prediction, where, when.
pub(super) struct WrittenImage {
    pub(super) prediction_id: String,
    pub(super) model: String,
    pub(super) place: ImagePlace,
    pub(super) created_at: String,
    pub(super) downloaded_at: Instant,
}

impl<P, O, C, G, K, R> GenerateImage<P, O, C, G, K, R>
where
    O: ObjectStore,
    C: IndexCounter,
    G: ImageGenerator,
    K: Clock,
    R: PredictionRecords,
{
    /// Stores a succeeded prediction's image in `place` (claimed on its record earlier), or
    /// under the actor's next free index, lists it in the manifest and closes the record.
    /// An error after the download names the prediction: it was paid for.
    pub async fn store_prediction(
        &self,
        order: &ImageOrder,
        model: &str,
        succeeded: &SucceededPrediction,
        place: Option<ImagePlace>,
        limits: RunLimits,
    ) -> Result<StoredImage, UseCaseError> {
        self.collect_and_store(order, model, limits, place, async { Ok(succeeded.clone()) })
            .await
    }

    /// Stores the prediction `succeeded` resolves to, reading the manifest concurrently with
    /// the wait for it as well as with the download and the write.
    pub(super) async fn collect_and_store(
        &self,
        order: &ImageOrder,
        model: &str,
        limits: RunLimits,
        place: Option<ImagePlace>,
        succeeded: impl Future<Output = Result<SucceededPrediction, UseCaseError>>,
    ) -> Result<StoredImage, UseCaseError> {
        let manifest_key = manifest_key(&order.actor.actor_name);
        let collect_started = self.clock.now();
        // Boxed, like the steps below: inline, the generation's future overflows the 8 MiB
        // main-thread stack of the unoptimised build.
        let written = Box::pin(async {
            let succeeded = succeeded.await?;
            self.write_image(order, model, &succeeded, place, limits)
                .await
        });
        let (written, manifest) = both(written, self.objects.read_versioned(&manifest_key)).await;
        let written = written?;
        let written_at = self.clock.now();
        let mut stored =
            Box::pin(self.list_and_close(order, &written, Listing::Read(manifest.ok()), limits))
                .await;
        stored.timings = StepTimings {
            predict_ms: ms_between(collect_started, written.downloaded_at),
            store_ms: ms_between(written.downloaded_at, written_at),
            manifest_ms: stored.timings.manifest_ms,
        };
        Ok(stored)
    }

    /// Lists a written image in the manifest, signs its preview, and closes its prediction's
    /// record (unless `listing` says both are done).
    pub(super) async fn list_and_close(
        &self,
        order: &ImageOrder,
        written: &WrittenImage,
        listing: Listing,
        limits: RunLimits,
    ) -> StoredImage {
        let started = self.clock.now();
        let actor = &order.actor;
        let manifest_key = manifest_key(&actor.actor_name);
        let entry = ManifestEntry {
            index: written.place.index,
            filename: image_filename(&actor.actor_name, written.place.index),
            s3_key: written.place.key.clone(),
            s3_url: self.objects.object_url(&written.place.key),
            prompt_id: order.prompt.prompt_id.map(str::to_owned),
            category: order.prompt.category.map(|c| c.as_str().to_owned()),
            prompt: order.prompt.text.clone(),
            caption: order.prompt.caption.clone(),
            seed: order.seed,
            prediction_id: written.prediction_id.clone(),
            model: written.model.clone(),
            created_at: written.created_at.clone(),
            created_by: order.requested_by.clone(),
        };
        let prediction_id = &written.prediction_id;
        let list = async {
            let Listing::Read(manifest) = listing else {
                return None;
            };
            let manifest_error = self
                .list_in_manifest(&manifest_key, &entry, manifest, limits.finish)
                .await
                .err();
            if let Some(error) = &manifest_error {
                tracing::error!(actor = %actor.actor_id, index = entry.index, %prediction_id, %error, "image stored but not listed in the manifest");
            }
            let closed = retried(&self.clock, || {
                self.records
                    .stored(prediction_id, &entry.created_at, manifest_error.is_none())
            })
            .await;
            if let Err(error) = closed {
                // Still open: the reconciler finds the image in its place and closes it.
                tracing::error!(%prediction_id, %error, "image stored but its prediction record not closed");
            }
            manifest_error
        };
        let caption = async {
            let metadata =
                image_metadata(order, prediction_id, &written.model, &written.created_at);
            let written = self
                .write_caption_file(&entry.s3_key, &entry.caption, &metadata, CaptionWrite::New)
                .await;
            match written {
                Ok(CaptionFile::Written) => None,
                Ok(CaptionFile::Foreign) => {
                    tracing::warn!(actor = %actor.actor_id, index = entry.index, %prediction_id, "a caption file the service did not write is beside the image; left as it is");
                    Some("a file the service did not write is there".to_owned())
                }
                Err(error) => {
                    tracing::error!(actor = %actor.actor_id, index = entry.index, %prediction_id, %error, "image stored but its caption file not written");
                    Some(error)
                }
            }
        };
        let ((manifest_error, caption_error), preview_url) = both(
            both(list, caption),
            self.objects
                .presigned_get(&written.place.key, PREVIEW_URL_LIFETIME),
        )
        .await;
        StoredImage {
            actor_id: actor.actor_id.clone(),
            actor_name: actor.actor_name.clone(),
            index: entry.index,
            filename: entry.filename,
            s3_url: entry.s3_url,
            preview_url: preview_url
                .inspect_err(|error| tracing::warn!(%error, "preview URL not signed"))
                .ok(),
            s3_key: entry.s3_key,
            manifest_key,
            manifest_error,
            prompt_id: order.prompt.prompt_id,
            category: order.prompt.category.map(|c| c.as_str()),
            prompt: entry.prompt,
            caption: entry.caption,
            caption_error,
            seed: entry.seed,
            prediction_id: entry.prediction_id,
            model: entry.model,
            created_at: entry.created_at,
            timings: StepTimings {
                manifest_ms: ms_between(started, self.clock.now()),
                ..StepTimings::default()
            },
        }
    }

    /// The output downloaded while the image's place is found (claimed before, or a new
    /// index claimed now), then written there (or in the next free place). An image already
    /// in a claimed place (an earlier collector got that far) is not fetched again.
    async fn write_image(
        &self,
        order: &ImageOrder,
        model: &str,
        succeeded: &SucceededPrediction,
        place: Option<ImagePlace>,
        limits: RunLimits,
    ) -> Result<WrittenImage, UseCaseError> {
        let prediction_id = &succeeded.prediction_id;
        let not_stored = |source| UseCaseError::NotStored {
            prediction_id: prediction_id.clone(),
            source,
        };
        if let Some(place) = &place
            && let Some(image) = self
                .objects
                .head(&place.key)
                .await
                .map_err(not_stored)?
                .and_then(|info| info.image)
            && image.prediction_id == *prediction_id
        {
            return Ok(WrittenImage {
                prediction_id: prediction_id.clone(),
                model: image.model,
                place: place.clone(),
                created_at: image.created_at,
                downloaded_at: self.clock.now(),
            });
        }
        // The download's own retries may run a moment past the finish: the run's deadline
        // cuts it first, so a slow output is left for a later collector, not taken for gone.
        let download = async {
            self.generator
                .download(succeeded, limits.finish + Duration::from_secs(1))
                .await
                .map_err(|error| UseCaseError::from(error.after_create(prediction_id)))
        };
        let find_place = async {
            match place {
                Some(place) => Ok(place),
                None => {
                    self.claim_new_place(order, model, prediction_id, limits.hold_until_ms)
                        .await
                }
            }
        };
        let download = self.within(limits.finish, prediction_id, download);
        let find_place = self.within(limits.finish, prediction_id, find_place);
        // Held from the download to the write: the image is in memory meanwhile.
        let _slot = self.image_slots.take().await;
        let (image, place) = both(download, find_place).await;
        let mut image = image.and_then(|image| image).inspect_err(|_| match &place {
            Ok(Ok(place)) => {
                tracing::warn!(actor = %order.actor.actor_id, index = place.index, %prediction_id, "output not fetched: its index stays unused");
            }
            _ => {
                tracing::warn!(actor = %order.actor.actor_id, %prediction_id, "no place taken either");
            }
        })?;
        let place = place?.map_err(not_stored)?;
        let downloaded_at = self.clock.now();
        let metadata = image_metadata(
            order,
            prediction_id,
            &image.model,
            &self.clock.now_rfc3339(),
        );
        let bytes = Arc::new(std::mem::take(&mut image.bytes));
        let write = self.write_numbered(order, place, bytes, &metadata, limits.hold_until_ms);
        let place = self
            .within(limits.finish, prediction_id, write)
            .await?
            .map_err(not_stored)?;
        Ok(WrittenImage {
            prediction_id: prediction_id.clone(),
            model: metadata.model,
            place,
            created_at: metadata.created_at,
            downloaded_at,
        })
    }
}

/// What an image (and its caption file) carries in its object metadata.
fn image_metadata(
    order: &ImageOrder,
    prediction_id: &str,
    model: &str,
    created_at: &str,
) -> ImageMetadata {
    ImageMetadata {
        prediction_id: prediction_id.to_owned(),
        prompt_id: order.prompt.prompt_id.map(str::to_owned),
        prompt: ImageMetadata::fitting_prompt(&order.prompt.text),
        seed: order.seed,
        model: model.to_owned(),
        created_at: created_at.to_owned(),
    }
}
