//! Exports: [`TrainingExports::start`] checks that enough images qualify, records the export
//! and queues it (the HTTP request never writes the zip); [`TrainingExports::run`], on the
//! export's message, claims it, reads the manifest once (its snapshot: images added during
//! the export wait for the next one) and streams each image and its caption into the zip,
//! reading the next image while the last is sent; [`TrainingExports::status`] reports it,
//! with a presigned URL once done. A failure aborts the zip: nothing is left in the bucket.

use std::time::Duration;

use super::UseCaseError;
use super::concurrently::both;
use super::curation::actor_words;
use crate::domain::actor::ActorId;
use crate::domain::curation::{CurationError, curated_images};
use crate::domain::export::{
    DATASET_FILE, ExportError, ExportFile, ExportId, ExportRecord, ExportRequest, ExportStatus,
    Include, dataset_json, export_files,
};
use crate::domain::naming::{export_key, manifest_key};
use crate::ports::{
    ActorProfiles, ArchiveUpload, ArchiveUploads, Clock, ExportClaim, ExportEnd, ExportQueue,
    ExportRecords, ObjectStore, StoreError,
};
use crate::retry::random_number;

/// What a run keeps back from its deadline to finish or abort its upload and end its
/// export.
pub const FINISH_RESERVE: Duration = Duration::from_secs(10);

/// What a deployment sets for its exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportSettings {
    /// The fewest images an export takes (`EXPORT_MIN_IMAGES`).
    pub min_images: usize,
    /// How long a done export's presigned URL lives (`EXPORT_URL_SECONDS`).
    pub url_lifetime: Duration,
}

/// The export use cases over their ports.
#[derive(Debug)]
pub struct TrainingExports<P, O, R, Q, A, K> {
    /// The actors' profiles (name, trigger word).
    pub profiles: P,
    /// The bucket: manifests and images read, URLs signed.
    pub objects: O,
    /// The exports' records.
    pub records: R,
    /// Where exports are handed to their run.
    pub queue: Q,
    /// The zips, streamed into the bucket.
    pub archives: A,
    /// The time.
    pub clock: K,
    /// The deployment's settings.
    pub settings: ExportSettings,
}

/// An export as its status route reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportView {
    /// Its record.
    pub record: ExportRecord,
    /// A presigned GET of the zip, once done.
    pub url: Option<String>,
    /// How long that URL lives from now: the setting, or less when the signing credentials
    /// expire sooner.
    pub url_lifetime: Duration,
}

/// How a run of an export's message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportRun {
    /// The export ended (done or failed) in this run, or had ended before.
    Ended,
    /// Another run holds it: the message should come back later.
    Held,
}

/// Why a zip could not be written.
enum WriteFailure {
    /// The bucket failed.
    Store(StoreError),
    /// A listed image is not in the bucket.
    MissingImage(String),
    /// The run's time ran out after this many images.
    OutOfTime {
        /// Images written.
        written: usize,
    },
}

// Starting and reporting need no zip writer: a training's request starts its export
// without one.
impl<P, O, R, Q, A, K> TrainingExports<P, O, R, Q, A, K>
where
    P: ActorProfiles,
    O: ObjectStore,
    R: ExportRecords,
    Q: ExportQueue,
    K: Clock,
{
    /// Accepts an export of the actor's images, asked for by `requested_by`: refused when
    /// fewer than the minimum qualify, with nothing written; else recorded as running and
    /// queued.
    pub async fn start(
        &self,
        actor_id: &ActorId,
        request: &ExportRequest,
        requested_by: &str,
    ) -> Result<ExportRecord, UseCaseError> {
        let (actor_name, actor_word) = actor_words(&self.profiles, actor_id).await?;
        let trigger_word = request.trigger_word.clone().unwrap_or(actor_word);
        let files = self
            .files(&actor_name, request.include, &trigger_word)
            .await?;
        let export_id = ExportId::new(
            self.clock.now_epoch_ms(),
            (u128::from(random_number(u64::MAX)) << 64) | u128::from(random_number(u64::MAX)),
        );
        let record = ExportRecord {
            key: export_key(&actor_name, export_id.as_str()),
            export_id,
            actor_id: actor_id.clone(),
            actor_name,
            include: request.include,
            trigger_word,
            status: ExportStatus::Running,
            requested_by: requested_by.to_owned(),
            created_at: self.clock.now_rfc3339(),
            finished_at: None,
            size: None,
            count: None,
            error: None,
        };
        self.records.create(&record).await?;
        if let Err(error) = self.queue.send(&record.export_id).await {
            let end = ExportEnd::Failed("the export could not be queued; ask again".to_owned());
            if let Err(error) = self
                .records
                .end(&record.export_id, None, &end, &self.clock.now_rfc3339())
                .await
            {
                tracing::warn!(export_id = %record.export_id, %error, "unqueued export not ended");
            }
            return Err(error.into());
        }
        tracing::info!(export_id = %record.export_id, actor = %record.actor_name, images = files.len(), "export queued");
        Ok(record)
    }

    /// The actor's export `export_id`, with a URL once done.
    pub async fn status(
        &self,
        actor_id: &ActorId,
        export_id: &ExportId,
    ) -> Result<ExportView, UseCaseError> {
        let record = self
            .records
            .get(export_id)
            .await?
            .filter(|record| record.actor_id == *actor_id)
            .ok_or_else(|| ExportError::NotFound(export_id.to_string()))?;
        let mut lifetime = self.settings.url_lifetime;
        let url = match record.status {
            ExportStatus::Done => {
                // A URL works only while the credentials that signed it do.
                if let Some(left) = self.objects.signing_time_left().await {
                    lifetime = lifetime.min(left).max(Duration::from_secs(1));
                }
                Some(self.objects.presigned_get(&record.key, lifetime).await?)
            }
            _ => None,
        };
        Ok(ExportView {
            record,
            url,
            url_lifetime: lifetime,
        })
    }

    /// The files of an export of the actor's manifest as it is now; refused when fewer than
    /// the minimum qualify.
    async fn files(
        &self,
        actor_name: &str,
        include: Include,
        trigger_word: &str,
    ) -> Result<Vec<ExportFile>, UseCaseError> {
        let manifest = self
            .objects
            .read_versioned(&manifest_key(actor_name))
            .await?;
        let images = curated_images(manifest.as_ref().map(|m| m.bytes.as_slice()))
            .map_err(CurationError::from)?;
        let files = export_files(&images, include, trigger_word);
        let minimum = self.settings.min_images;
        if files.len() < minimum {
            return Err(ExportError::TooFewImages {
                qualifying: files.len(),
                minimum,
                include: include.as_str(),
            }
            .into());
        }
        Ok(files)
    }
}

impl<P, O, R, Q, A, K> TrainingExports<P, O, R, Q, A, K>
where
    P: ActorProfiles,
    O: ObjectStore,
    R: ExportRecords,
    Q: ExportQueue,
    A: ArchiveUploads,
    K: Clock,
{
    /// Writes the export `export_id` unless another run holds it or it ended; holds it
    /// until `deadline_ms` (the run's end). An error leaves it running for a later delivery.
    pub async fn run(
        &self,
        export_id: &ExportId,
        deadline_ms: u64,
    ) -> Result<ExportRun, UseCaseError> {
        let now_ms = self.clock.now_epoch_ms();
        let (record, run) = match self.records.claim(export_id, now_ms, deadline_ms).await? {
            ExportClaim::Claimed { record, run } => (*record, run),
            ExportClaim::Held => return Ok(ExportRun::Held),
            ExportClaim::Ended | ExportClaim::Missing => return Ok(ExportRun::Ended),
        };
        let started = self.clock.now();
        let end = self.write(&record, deadline_ms).await;
        if let ExportEnd::Failed(error) = &end {
            tracing::warn!(%export_id, run, actor = %record.actor_name, %error, "export failed");
        } else {
            tracing::info!(%export_id, actor = %record.actor_name, ?end, elapsed_ms = started.elapsed().as_millis() as u64, "export done");
        }
        self.records
            .end(export_id, Some(run), &end, &self.clock.now_rfc3339())
            .await?;
        Ok(ExportRun::Ended)
    }

    /// The zip of `record`'s images, written before `deadline_ms`, and how it ended.
    async fn write(&self, record: &ExportRecord, deadline_ms: u64) -> ExportEnd {
        let files = match self
            .files(&record.actor_name, record.include, &record.trigger_word)
            .await
        {
            Ok(files) => files,
            Err(error) => return ExportEnd::Failed(error.to_string()),
        };
        let mut upload = match self.archives.begin(&record.key).await {
            Ok(upload) => upload,
            Err(error) => return self.store_failure(record, &error),
        };
        match self.stream(&mut upload, record, &files, deadline_ms).await {
            Ok(()) => match upload.finish().await {
                Ok(size) => ExportEnd::Done {
                    size,
                    count: files.len(),
                },
                Err(error) => self.store_failure(record, &error),
            },
            Err(failure) => {
                if let Err(error) = upload.abort().await {
                    tracing::error!(export_id = %record.export_id, %error, "zip upload not aborted: the bucket's lifecycle rule removes it");
                }
                match failure {
                    WriteFailure::Store(error) => self.store_failure(record, &error),
                    WriteFailure::MissingImage(name) => ExportEnd::Failed(format!(
                        "{name} is listed in the manifest but is not in the bucket"
                    )),
                    WriteFailure::OutOfTime { written } => ExportEnd::Failed(format!(
                        "the export did not fit in one run of the function ({written} of {} images written); ask for an export of fewer images",
                        files.len()
                    )),
                }
            }
        }
    }

    /// Each file and its caption into `upload`, then `dataset.json`; each image is read
    /// while the one before it is written. A file is begun only while [`FINISH_RESERVE`] is
    /// left before `deadline_ms`, so that a run out of time still aborts its upload and ends
    /// its export rather than being stopped mid-upload.
    async fn stream(
        &self,
        upload: &mut A::Upload,
        record: &ExportRecord,
        files: &[ExportFile],
        deadline_ms: u64,
    ) -> Result<(), WriteFailure> {
        let reserve_ms = FINISH_RESERVE.as_millis() as u64;
        let mut current = self.image(files.first()).await?;
        for (position, file) in files.iter().enumerate() {
            if self.clock.now_epoch_ms() + reserve_ms > deadline_ms {
                return Err(WriteFailure::OutOfTime { written: position });
            }
            let bytes = current.take().unwrap_or_default();
            let write = async {
                upload.add(&file.image_name, &bytes).await?;
                upload
                    .add(&file.caption_name, file.caption.as_bytes())
                    .await
            };
            let (written, next) = both(write, self.image(files.get(position + 1))).await;
            written.map_err(WriteFailure::Store)?;
            current = next?;
        }
        upload
            .add(DATASET_FILE, &dataset_json(record, files))
            .await
            .map_err(WriteFailure::Store)
    }

    /// The bytes of `file`'s image, when there is a file.
    async fn image(&self, file: Option<&ExportFile>) -> Result<Option<Vec<u8>>, WriteFailure> {
        let Some(file) = file else { return Ok(None) };
        match self.objects.read(&file.image_key).await {
            Ok(Some(bytes)) => Ok(Some(bytes)),
            Ok(None) => Err(WriteFailure::MissingImage(file.image_name.clone())),
            Err(error) => Err(WriteFailure::Store(error)),
        }
    }

    /// The end of an export the bucket failed (the fault's detail is for the log).
    fn store_failure(&self, record: &ExportRecord, error: &StoreError) -> ExportEnd {
        tracing::warn!(export_id = %record.export_id, %error, "bucket failed during export");
        ExportEnd::Failed(
            "the bucket failed while the zip was written; nothing was kept: ask for a new export"
                .to_owned(),
        )
    }
}
