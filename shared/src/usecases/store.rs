//! The store step: the one way a succeeded prediction becomes an image in the actor's folder,
//! numbered and listed in the manifest. A fresh run, a resume, and later a worker, a webhook
//! or a reconciler all collect a paid prediction through [`GenerateImage::store_prediction`].
//!
//! The index is taken concurrently with the output's download (docs/design.md, invariant 2:
//! only an output refused or lost leaves a gap), the manifest is read concurrently with the
//! wait for the prediction, both and the image's write, and it is updated once the image is
//! there.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::concurrently::both;
use super::generate_image::{GenerateImage, ImageOrder};
use super::{UseCaseError, ms_between};
use crate::domain::actor::ActorId;
use crate::domain::manifest::ManifestEntry;
use crate::domain::naming::{image_filename, manifest_key};
use crate::ports::{
    Clock, GeneratedImage, ImageGenerator, IndexCounter, ObjectStore, SucceededPrediction,
};

/// How long the answer's `preview_url` lives.
const PREVIEW_URL_LIFETIME: Duration = Duration::from_secs(3_600);
/// How long past the model's deadline (or the output's download, if later) storing may go
/// on.
const STORE_GRACE: Duration = Duration::from_secs(5);

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

impl<P, O, C, G, K> GenerateImage<P, O, C, G, K>
where
    O: ObjectStore,
    C: IndexCounter,
    G: ImageGenerator,
    K: Clock,
{
    /// Downloads a succeeded prediction's output, writes it under the actor's next free
    /// index and lists it in the manifest. An error after the download names the prediction
    /// ([`UseCaseError::NotStored`]): it was paid for.
    pub async fn store_prediction(
        &self,
        order: &ImageOrder,
        succeeded: &SucceededPrediction,
        deadline: Instant,
    ) -> Result<StoredImage, UseCaseError> {
        self.collect_and_store(order, deadline, async { Ok(succeeded.clone()) })
            .await
    }

    /// Stores the prediction `succeeded` resolves to, reading the manifest concurrently with
    /// the wait for it as well as with the download and the write.
    pub(super) async fn collect_and_store(
        &self,
        order: &ImageOrder,
        deadline: Instant,
        succeeded: impl Future<Output = Result<SucceededPrediction, UseCaseError>>,
    ) -> Result<StoredImage, UseCaseError> {
        let ImageOrder {
            actor,
            prompt,
            seed,
        } = order;
        let manifest_key = manifest_key(&actor.actor_name);
        let collect_started = self.clock.now();
        let written = async {
            let succeeded = succeeded.await?;
            self.write_image(&actor.actor_id, &actor.actor_name, &succeeded, deadline)
                .await
        };
        let (written, manifest) = both(written, self.objects.read_versioned(&manifest_key)).await;
        let WrittenImage {
            image,
            index,
            s3_key,
            downloaded_at,
        } = written?;
        let written_at = self.clock.now();
        let filename = image_filename(&actor.actor_name, index);
        let created_at = self.clock.now_rfc3339();
        let entry = ManifestEntry {
            index,
            filename: filename.clone(),
            s3_key: s3_key.clone(),
            s3_url: self.objects.object_url(&s3_key),
            prompt_id: prompt.prompt_id.map(str::to_owned),
            category: prompt.category.map(|c| c.as_str().to_owned()),
            prompt: prompt.text.clone(),
            seed: *seed,
            prediction_id: image.prediction_id.clone(),
            model: image.model.clone(),
            created_at: created_at.clone(),
        };
        let finish_by = deadline.max(downloaded_at) + STORE_GRACE;
        let (listed, preview_url) = both(
            self.list_in_manifest(&manifest_key, &entry, manifest.ok(), finish_by),
            self.objects.presigned_get(&s3_key, PREVIEW_URL_LIFETIME),
        )
        .await;
        let manifest_ms = ms_between(written_at, self.clock.now());
        let manifest_error = listed.err();
        if let Some(error) = &manifest_error {
            tracing::error!(actor = %actor.actor_id, index, prediction_id = %image.prediction_id, %error, "image stored but not listed in the manifest");
        }
        Ok(StoredImage {
            actor_id: actor.actor_id.clone(),
            actor_name: actor.actor_name.clone(),
            index,
            filename,
            s3_url: entry.s3_url,
            preview_url: preview_url
                .inspect_err(|error| tracing::warn!(%error, "preview URL not signed"))
                .ok(),
            s3_key,
            manifest_key,
            manifest_error,
            prompt_id: prompt.prompt_id,
            category: prompt.category.map(|c| c.as_str()),
            prompt: prompt.text.clone(),
            seed: *seed,
            prediction_id: image.prediction_id,
            model: image.model,
            created_at,
            timings: StepTimings {
                predict_ms: ms_between(collect_started, downloaded_at),
                store_ms: ms_between(downloaded_at, written_at),
                manifest_ms,
            },
        })
    }

    /// The output downloaded while an index is taken, then written under that index's name
    /// (or the next free one).
    async fn write_image(
        &self,
        actor_id: &ActorId,
        actor_name: &str,
        succeeded: &SucceededPrediction,
        deadline: Instant,
    ) -> Result<WrittenImage, UseCaseError> {
        let prediction_id = &succeeded.prediction_id;
        let download = async {
            self.generator
                .download(succeeded, deadline)
                .await
                .map_err(|error| error.after_create(prediction_id))
        };
        let (image, index) = both(download, self.take_index(actor_name)).await;
        let mut image = image.inspect_err(|_| match &index {
            Ok(index) => {
                tracing::warn!(actor = %actor_id, index, %prediction_id, "output not fetched: its index stays unused");
            }
            Err(error) => {
                tracing::warn!(actor = %actor_id, %prediction_id, %error, "no index taken either");
            }
        })?;
        let downloaded_at = self.clock.now();
        let not_stored = |source| UseCaseError::NotStored {
            prediction_id: prediction_id.clone(),
            source,
        };
        let bytes = Arc::new(std::mem::take(&mut image.bytes));
        let (index, s3_key) = self
            .write_numbered(
                actor_name,
                index.map_err(not_stored)?,
                bytes,
                &image.prediction_id,
            )
            .await
            .map_err(not_stored)?;
        Ok(WrittenImage {
            image,
            index,
            s3_key,
            downloaded_at,
        })
    }
}

/// An image written under its name, with when its output arrived.
struct WrittenImage {
    image: GeneratedImage,
    index: u64,
    s3_key: String,
    downloaded_at: Instant,
}
