//! The generate-single use case: the steps of one generation, written against the ports.
//!
//! Order (DESIGN.md's invariants): everything that needs no lookup is checked first; then the
//! profile is read (beside the base photo when the body names it) and the photo's start read
//! with its size in one ranged GET; the photo is checked (exists, an image, within the cap)
//! before anything is paid for. The prediction and the image's write run beside the manifest
//! read; the prediction's id is recorded beside everything after the create. Only once the
//! prediction has succeeded is an index taken from the counter (seeded from the bucket on
//! first use), beside the output's download; the image is written with `If-None-Match: *` (a
//! taken name means a new index), then the manifest is merged and written with `If-Match`,
//! retried on conflicts.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use serde::Serialize;
use thiserror::Error;

use super::actor::{ActorId, choose_descriptor};
use super::base_photo::BaseImagePrefixes;
use super::generation::{
    GenerateBody, PromptChoice, RequestError, ResolvedActor, image_filename, image_type,
    index_of_key, manifest_key, resolve_actor, training_folder,
};
use super::manifest::{ManifestEntry, append_entry};
use crate::ports::{
    ActorProfiles, AtDeadline, Clock, GeneratedImage, GenerationError, GenerationRequest,
    ImageGenerator, IndexCounter, InputImage, ObjectStart, ObjectStore, PredictionLog, StoreError,
    VersionedObject, WriteCondition, WriteOutcome,
};
use crate::timing::{elapsed_ms, random_up_to};

/// How long a presigned URL of the base photo lives (the model fetches it once).
const INPUT_URL_LIFETIME: Duration = Duration::from_secs(600);
/// How long the answer's `preview_url` lives.
const PREVIEW_URL_LIFETIME: Duration = Duration::from_secs(3_600);
/// How many names an image may try before giving up (each 412 takes a new index).
const MAX_IMAGE_NAME_ATTEMPTS: u32 = 8;
/// How many times the manifest update is tried.
const MAX_MANIFEST_ATTEMPTS: u32 = 10;
/// How long past the model's deadline (or the image's arrival, if later) storing may go on.
const STORE_GRACE: Duration = Duration::from_secs(5);
/// The most of a base photo read: all of one whose data URI fits (with the longest MIME type,
/// `image/jpeg`), else enough to tell an image by its first bytes and send it by URL.
const INLINE_READ_BYTES: u64 =
    ((InputImage::MAX_DATA_URI_LEN - "data:image/jpeg;base64,".len()) / 4 * 3) as u64;

/// A generation checked and ready: nothing has been written or paid for yet.
#[derive(Debug, Clone)]
pub struct PreparedGeneration {
    /// The actor, resolved.
    pub actor: ResolvedActor,
    /// The prompt.
    pub prompt: PromptChoice,
    /// What the model is asked for.
    pub request: GenerationRequest,
}

/// How a generation gets its prediction.
#[derive(Debug, Clone, Copy)]
pub enum Start<'a, L> {
    /// A new prediction; `L` learns its id as soon as it exists.
    New(&'a L),
    /// A prediction an earlier run started and paid for.
    Resume(&'a str),
}

/// A generation's record of the prediction it paid for.
pub struct NotRecorded;

impl PredictionLog for NotRecorded {
    async fn started(&self, _prediction_id: &str) {}

    fn resumable(&self) -> bool {
        false
    }
}

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

/// Why a generation did not produce a stored image.
#[derive(Debug, Error)]
pub enum GenerateError {
    /// The request was refused before anything happened.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A store failed before anything was paid for.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The image model did not produce an image.
    #[error(transparent)]
    Generation(#[from] GenerationError),
    /// The image was paid for but could not be stored.
    #[error("prediction {prediction_id} succeeded but its image could not be stored: {source}")]
    NotStored {
        /// The paid prediction.
        prediction_id: String,
        /// What failed.
        source: StoreError,
    },
}

impl GenerateError {
    /// Whether the generation certainly paid for nothing, so its budget unit goes back.
    pub fn paid_nothing(&self) -> bool {
        match self {
            Self::Request(_) | Self::Store(_) => true,
            Self::Generation(error) => error.paid_nothing(),
            Self::NotStored { .. } => false,
        }
    }
}

/// A stored image, as the web UI's answer and the manifest describe it.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratedTrainingImage {
    /// Always true here.
    pub success: bool,
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
    /// A presigned GET of the image, valid for an hour (null if it could not be signed).
    pub preview_url: Option<String>,
    /// The manifest's key.
    pub manifest_key: String,
    /// Whether the manifest lists the image. When false, `manifest_error` says why and the
    /// image is stored all the same.
    pub manifest_updated: bool,
    /// Why the manifest was not updated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_error: Option<String>,
    /// The preset's id, null for a custom prompt.
    pub prompt_id: Option<&'static str>,
    /// The preset's category, null for a custom prompt.
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
    /// How long each step took (for logs and metrics, not the answer).
    #[serde(skip)]
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

/// The use case with its ports. Build it once per execution environment.
#[derive(Debug)]
pub struct GenerateSingle<P, O, C, G, K> {
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

impl<P, O, C, G, K> GenerateSingle<P, O, C, G, K>
where
    P: ActorProfiles,
    O: ObjectStore,
    C: IndexCounter,
    G: ImageGenerator,
    K: Clock,
{
    /// Checks the request completely (body, profile, base photo) without writing or paying
    /// anything: every refusal comes from here.
    pub async fn prepare(
        &self,
        actor_id: &ActorId,
        body: &GenerateBody,
    ) -> Result<PreparedGeneration, GenerateError> {
        let checked = body.check(&self.settings.bucket)?;
        // A photo named in the body is read beside the profile only when it is allowed for
        // the actor's id, and the body claims no other name: the usual case (actors named by
        // their id). Any other key is read once the profile has allowed it, so a key refused
        // for the actor is never read on a caller's word.
        let claims_another_name = checked
            .actor_name
            .as_deref()
            .is_some_and(|name| name != actor_id.as_str());
        let early_key = checked.base_image_key.as_deref().filter(|key| {
            !claims_another_name
                && self
                    .settings
                    .base_image_prefixes
                    .allows(actor_id.as_str(), key)
        });
        let body_photo = async {
            match early_key {
                Some(key) => self.objects.read_start(key, INLINE_READ_BYTES).await,
                None => Ok(None),
            }
        };
        let (profile, body_photo) = join(self.profiles.profile(actor_id), body_photo).await;
        let profile = profile?;
        let actor = resolve_actor(
            actor_id,
            &checked,
            profile.as_ref(),
            &self.settings.bucket,
            &self.settings.base_image_prefixes,
        )?;
        // The early read, when there was one, is of the resolved key: the body's.
        let photo = match early_key {
            Some(_) => body_photo?,
            None => {
                self.objects
                    .read_start(&actor.base_image_key, INLINE_READ_BYTES)
                    .await?
            }
        };
        let input_image = self.input_image(&actor.base_image_key, photo).await?;
        let (descriptor, _) = choose_descriptor(actor_id, profile.as_ref());
        let prompt = checked.prompt.choose(descriptor);
        let request = GenerationRequest {
            prompt: prompt.text.clone(),
            input_image,
            seed: checked.seed,
        };
        Ok(PreparedGeneration {
            actor,
            prompt,
            request,
        })
    }

    /// Runs a prepared generation: a new prediction (its id reported as soon as it exists) or
    /// one started by an earlier run, then the image, the index and the manifest.
    pub async fn execute(
        &self,
        prepared: &PreparedGeneration,
        deadline: Instant,
        start: Start<'_, impl PredictionLog>,
    ) -> Result<GeneratedTrainingImage, GenerateError> {
        // A new prediction's id is recorded as soon as it exists, beside the rest of the run:
        // nothing after the create needs the record, and a failed run records it again when
        // it settles. The run ends once both are done.
        let (id_sender, id_receiver) = tokio::sync::oneshot::channel::<String>();
        let new_log = match &start {
            Start::New(log) => Some(*log),
            Start::Resume(_) => None,
        };
        let record = async {
            if let (Some(log), Ok(prediction_id)) = (new_log, id_receiver.await) {
                log.started(&prediction_id).await;
            }
        };
        // The run's state lives on the heap: inline, it made the future of a direct batch
        // job overflow the 8 MiB main-thread stack of the unoptimised build.
        let (_, stored) = join(
            record,
            Box::pin(self.generate_and_store(prepared, deadline, start, id_sender)),
        )
        .await;
        stored
    }

    /// The prediction (its id sent to `id_sender` as soon as it exists), then the image, the
    /// index and the manifest.
    async fn generate_and_store(
        &self,
        prepared: &PreparedGeneration,
        deadline: Instant,
        start: Start<'_, impl PredictionLog>,
        id_sender: tokio::sync::oneshot::Sender<String>,
    ) -> Result<GeneratedTrainingImage, GenerateError> {
        let PreparedGeneration {
            actor,
            prompt,
            request,
        } = prepared;
        let actor_id = &actor.actor_id;
        let manifest_key = manifest_key(&actor.actor_name);
        let predict_started = Instant::now();
        let image_stored = async {
            let succeeded = match start {
                Start::New(log) => {
                    let started = self.generator.start(request, deadline).await?;
                    let at_deadline = if log.resumable() {
                        AtDeadline::KeepRunning
                    } else {
                        AtDeadline::Cancel
                    };
                    // The receiver lives until the run ends: a send cannot fail.
                    let _ = id_sender.send(started.prediction_id.clone());
                    let prediction_id = started.prediction_id.clone();
                    self.generator
                        .finish(started, deadline, at_deadline)
                        .await
                        .map_err(|error| error.after_create(&prediction_id))?
                }
                Start::Resume(prediction_id) => self
                    .generator
                    .resume(prediction_id, deadline, AtDeadline::KeepRunning)
                    .await
                    .map_err(|error| error.after_create(prediction_id))?,
            };
            // The prediction has succeeded, so its index is taken beside the download
            // (invariant 2): only an output refused or lost now leaves a gap in the numbers.
            let download = async {
                let image = self
                    .generator
                    .download(&succeeded, deadline)
                    .await
                    .map_err(|error| error.after_create(&succeeded.prediction_id));
                (image, elapsed_ms(predict_started))
            };
            let ((image, predict_ms), index) =
                join(download, self.take_index(&actor.actor_name)).await;
            let mut image = image.inspect_err(|_| match &index {
                Ok(index) => {
                    tracing::warn!(actor = %actor_id, index, prediction_id = %succeeded.prediction_id, "output not fetched: its index stays unused");
                }
                Err(error) => {
                    tracing::warn!(actor = %actor_id, prediction_id = %succeeded.prediction_id, %error, "no index taken either");
                }
            })?;
            let not_stored = |source| GenerateError::NotStored {
                prediction_id: succeeded.prediction_id.clone(),
                source,
            };
            let bytes = Arc::new(std::mem::take(&mut image.bytes));
            let store_started = Instant::now();
            let finish_by = deadline.max(store_started) + STORE_GRACE;
            let (index, s3_key) = self
                .store_image(
                    &actor.actor_name,
                    index.map_err(not_stored)?,
                    bytes,
                    &image.prediction_id,
                )
                .await
                .map_err(not_stored)?;
            Ok::<_, GenerateError>(StoredImage {
                image,
                index,
                s3_key,
                finish_by,
                predict_ms,
                store_ms: elapsed_ms(store_started),
            })
        };
        // The manifest is read beside everything up to the image's write; only its update
        // needs both.
        let (stored, manifest) =
            join(image_stored, self.objects.read_versioned(&manifest_key)).await;
        let StoredImage {
            image,
            index,
            s3_key,
            finish_by,
            predict_ms,
            store_ms,
        } = stored?;
        let manifest_started = Instant::now();
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
            seed: request.seed,
            prediction_id: image.prediction_id.clone(),
            model: image.model.clone(),
            created_at: created_at.clone(),
        };
        let first_read = manifest.ok();
        let (manifest_written, preview_url) = join(
            self.update_manifest(&manifest_key, &entry, first_read, finish_by),
            self.objects.presigned_get(&s3_key, PREVIEW_URL_LIFETIME),
        )
        .await;
        let manifest_ms = elapsed_ms(manifest_started);
        let manifest_error = manifest_written.err();
        if let Some(error) = &manifest_error {
            tracing::error!(actor = %actor_id, index, prediction_id = %image.prediction_id, %error, "image stored but not listed in the manifest");
        }
        Ok(GeneratedTrainingImage {
            success: true,
            actor_id: actor_id.clone(),
            actor_name: actor.actor_name.clone(),
            index,
            filename,
            s3_url: entry.s3_url,
            preview_url: preview_url
                .inspect_err(|error| tracing::warn!(%error, "preview URL not signed"))
                .ok(),
            s3_key,
            manifest_key,
            manifest_updated: manifest_error.is_none(),
            manifest_error,
            prompt_id: prompt.prompt_id,
            category: prompt.category.map(|c| c.as_str()),
            prompt: prompt.text.clone(),
            seed: request.seed,
            prediction_id: image.prediction_id,
            model: image.model,
            created_at,
            timings: StepTimings {
                predict_ms,
                store_ms,
                manifest_ms,
            },
        })
    }

    /// The photo, checked (there, within the cap, starting like an image): inline when it was
    /// read whole and its data URI fits, else by a presigned URL.
    async fn input_image(
        &self,
        key: &str,
        photo: Option<ObjectStart>,
    ) -> Result<InputImage, GenerateError> {
        let photo = photo.ok_or_else(|| RequestError::BaseImageNotFound(key.to_owned()))?;
        if photo.size > self.settings.max_base_image_bytes {
            return Err(RequestError::BaseImageTooLarge {
                key: key.to_owned(),
                size: photo.size,
                limit: self.settings.max_base_image_bytes,
            }
            .into());
        }
        let content_type = image_type(&photo.bytes)
            .ok_or_else(|| RequestError::BaseImageNotAnImage(key.to_owned()))?;
        let whole = photo.bytes.len() as u64 == photo.size;
        let fits = usize::try_from(photo.size).is_ok_and(|size| {
            InputImage::data_uri_len(content_type, size) <= InputImage::MAX_DATA_URI_LEN
        });
        if whole && fits {
            return Ok(InputImage::Inline {
                content_type: content_type.to_owned(),
                bytes: photo.bytes,
            });
        }
        Ok(InputImage::Url(
            self.objects.presigned_get(key, INPUT_URL_LIFETIME).await?,
        ))
    }

    /// Writes the image under `index`'s name, or under a name nobody has: each name found
    /// taken (a stray file, a legacy one) takes a new index.
    ///
    /// A 412 can also answer the SDK's own retry of a write whose first reply was lost: the
    /// object's `prediction-id` metadata tells our own image from someone else's.
    async fn store_image(
        &self,
        actor_name: &str,
        mut index: u64,
        bytes: Arc<Vec<u8>>,
        prediction_id: &str,
    ) -> Result<(u64, String), StoreError> {
        for attempt in 1..=MAX_IMAGE_NAME_ATTEMPTS {
            if attempt > 1 {
                index = self.take_index(actor_name).await?;
            }
            let key = format!(
                "{}{}",
                training_folder(actor_name),
                image_filename(actor_name, index)
            );
            let outcome = self
                .objects
                .write(
                    &key,
                    bytes.clone(),
                    "image/jpeg",
                    WriteCondition::IfAbsent,
                    Some(prediction_id),
                )
                .await?;
            if outcome == WriteOutcome::Written {
                return Ok((index, key));
            }
            let existing = self.objects.head(&key).await?;
            if existing.and_then(|info| info.written_by).as_deref() == Some(prediction_id) {
                return Ok((index, key));
            }
            tracing::warn!(
                actor_name,
                index,
                ?outcome,
                "image name taken; taking the next index"
            );
        }
        Err(StoreError {
            operation: "S3 PutObject (image)",
            detail: format!("{MAX_IMAGE_NAME_ATTEMPTS} image names in a row were taken"),
        })
    }

    /// The next index; on first use the counter is seeded from the highest index in the bucket.
    async fn take_index(&self, actor_name: &str) -> Result<u64, StoreError> {
        if let Some(index) = self.counter.take_next(actor_name).await? {
            return Ok(index);
        }
        let keys = self.objects.list_keys(&training_folder(actor_name)).await?;
        let highest = keys
            .iter()
            .filter_map(|key| index_of_key(actor_name, key))
            .max()
            .unwrap_or(0);
        tracing::info!(
            actor_name,
            highest,
            "seeding the image counter from the bucket"
        );
        self.counter.seed(actor_name, highest).await?;
        self.counter
            .take_next(actor_name)
            .await?
            .ok_or_else(|| StoreError {
                operation: "DynamoDB UpdateItem (counter)",
                detail: "the counter is missing right after it was seeded".to_owned(),
            })
    }

    /// Appends the entry with a read-modify-write guarded by the ETag, retried on 412, 409
    /// and store faults until `finish_by`. `first_read` is the manifest as read beside the
    /// prediction, used for the first attempt.
    async fn update_manifest(
        &self,
        key: &str,
        entry: &ManifestEntry,
        mut first_read: Option<Option<VersionedObject>>,
        finish_by: Instant,
    ) -> Result<(), String> {
        let mut last_error = String::from("no attempt was made in time");
        for attempt in 1..=MAX_MANIFEST_ATTEMPTS {
            if attempt > 1 {
                let pause = jitter(attempt);
                if Instant::now() + pause > finish_by {
                    break;
                }
                self.clock.sleep(pause).await;
            }
            let current = match first_read.take() {
                Some(read) => read,
                None => match self.objects.read_versioned(key).await {
                    Ok(read) => read,
                    Err(error) => {
                        tracing::warn!(key, attempt, %error, "manifest read failed; trying again");
                        last_error = error.to_string();
                        continue;
                    }
                },
            };
            let (bytes, condition) = match &current {
                Some(object) => (
                    Some(object.bytes.as_slice()),
                    WriteCondition::IfMatch(object.etag.clone()),
                ),
                None => (None, WriteCondition::IfAbsent),
            };
            let merged =
                append_entry(bytes, entry, &self.clock.now_rfc3339()).map_err(|e| e.to_string())?;
            match self
                .objects
                .write(key, Arc::new(merged), "application/json", condition, None)
                .await
            {
                Ok(WriteOutcome::Written) => return Ok(()),
                Ok(outcome) => {
                    tracing::info!(
                        key,
                        attempt,
                        ?outcome,
                        "manifest changed meanwhile; merging again"
                    );
                    last_error = format!("the manifest kept changing ({outcome:?})");
                }
                Err(error) => {
                    tracing::warn!(key, attempt, %error, "manifest write failed; trying again");
                    last_error = error.to_string();
                }
            }
        }
        Err(format!("the manifest could not be updated: {last_error}"))
    }
}

/// A random pause that grows with the attempt: up to 20 ms × 2^attempt, at most 640 ms.
fn jitter(attempt: u32) -> Duration {
    let ceiling = 20u64 << attempt.min(5);
    Duration::from_millis(random_up_to(ceiling))
}

/// An image written under its name, with when the rest must be done and the steps' times.
struct StoredImage {
    image: GeneratedImage,
    index: u64,
    s3_key: String,
    /// When the manifest update gives up.
    finish_by: Instant,
    predict_ms: u64,
    store_ms: u64,
}

/// Runs two futures side by side and waits for both.
async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut a_out, mut b_out) = (None, None);
    poll_fn(move |cx| {
        if a_out.is_none()
            && let Poll::Ready(value) = a.as_mut().poll(cx)
        {
            a_out = Some(value);
        }
        if b_out.is_none()
            && let Poll::Ready(value) = b.as_mut().poll(cx)
        {
            b_out = Some(value);
        }
        match (a_out.take(), b_out.take()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            (a, b) => {
                a_out = a;
                b_out = b;
                Poll::Pending
            }
        }
    })
    .await
}

#[cfg(test)]
#[path = "generate_single_tests.rs"]
mod tests;
