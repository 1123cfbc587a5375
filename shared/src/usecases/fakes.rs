//! In-memory fakes of the ports, for the use cases' unit tests. The adapters are tested
//! against moto and the Replicate emulator elsewhere; these reach the corners those cannot
//! easily produce (a lost reply, a flaky read, a failed signature, an exact interleaving).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) use super::fake_records::Records;
use super::group_commit::GroupCommit;
use super::{GenerateImage, GenerationSettings, ImageSlots};
use crate::domain::actor::{ActorId, ActorProfile};
use crate::ports::{
    ActorProfiles, AtDeadline, Clock, GeneratedImage, ImageGenerator, ImageMetadata, IndexCounter,
    ObjectInfo, ObjectStart, ObjectStore, PredictionError, PredictionRequest, StartedPrediction,
    StoreError, SucceededPrediction, VersionedObject, WriteCondition, WriteOutcome,
};

pub(super) const BUCKET: &str = "bucket";
pub(super) const PHOTO: &str = "system_actors/base/a.jpg";
pub(super) const MANIFEST: &str = "system_actors/training_data/actor_a/response.json";
pub(super) const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9];

pub(super) struct Profiles;

impl ActorProfiles for Profiles {
    async fn profile(&self, _: &ActorId) -> Result<Option<ActorProfile>, StoreError> {
        Ok(Some(ActorProfile {
            actor_name: Some("actor_a".to_owned()),
            sex: Some("female".to_owned()),
            base_image_key: Some(PHOTO.to_owned()),
            trigger_word: None,
        }))
    }
}

/// A stored object: its bytes, its ETag, and an image's metadata.
pub(super) type StoredObject = (Vec<u8>, u32, Option<ImageMetadata>);

#[derive(Default)]
pub(super) struct Objects {
    pub(super) stored: Mutex<HashMap<String, StoredObject>>,
    pub(super) etags: AtomicU32,
    /// The next image write lands but answers 412, as an SDK retry after a lost reply would.
    pub(super) lose_next_image_reply: Mutex<bool>,
    /// Reads of the manifest that fail before one succeeds.
    pub(super) failing_manifest_reads: AtomicU32,
    pub(super) failing_presign: bool,
    /// The manifest read and the image write meet: the read waits until an image is stored,
    /// and the image write until a manifest read has begun, so a run that did one only after
    /// the other would never finish.
    pub(super) manifest_read_meets_image_write: bool,
    pub(super) manifest_read_begun: AtomicBool,
    /// Writes of the manifest tried (each takes a moment, as a remote call does).
    pub(super) manifest_writes: AtomicU32,
}

pub(super) fn fault() -> StoreError {
    StoreError {
        operation: "fake",
        detail: "injected".to_owned(),
    }
}

impl ObjectStore for Objects {
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        Ok(self
            .stored
            .lock()
            .unwrap()
            .get(key)
            .map(|(bytes, etag, image)| ObjectInfo {
                size: bytes.len() as u64,
                image: image.clone(),
                etag: etag.to_string(),
            }))
    }

    async fn read_start(&self, key: &str, limit: u64) -> Result<Option<ObjectStart>, StoreError> {
        Ok(self.stored.lock().unwrap().get(key).map(|(bytes, _, _)| {
            let end = bytes.len().min(limit as usize);
            ObjectStart {
                bytes: bytes[..end].to_vec(),
                size: bytes.len() as u64,
            }
        }))
    }

    async fn presigned_get(&self, key: &str, _: Duration) -> Result<String, StoreError> {
        if self.failing_presign {
            return Err(fault());
        }
        Ok(format!("https://signed/{key}"))
    }

    async fn signing_time_left(&self) -> Option<Duration> {
        None
    }

    fn object_url(&self, key: &str) -> String {
        format!("https://bucket/{key}")
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .stored
            .lock()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }

    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .stored
            .lock()
            .unwrap()
            .get(key)
            .map(|(bytes, _, _)| bytes.to_vec()))
    }

    async fn read_versioned(&self, key: &str) -> Result<Option<VersionedObject>, StoreError> {
        self.manifest_read_begun.store(true, Ordering::SeqCst);
        while self.manifest_read_meets_image_write && !self.image_stored() {
            tokio::task::yield_now().await;
        }
        let failing = &self.failing_manifest_reads;
        if failing.load(Ordering::SeqCst) > 0 {
            failing.fetch_sub(1, Ordering::SeqCst);
            return Err(fault());
        }
        Ok(self
            .stored
            .lock()
            .unwrap()
            .get(key)
            .map(|(bytes, etag, _)| VersionedObject {
                bytes: bytes.clone(),
                etag: etag.to_string(),
            }))
    }

    async fn write(
        &self,
        key: &str,
        bytes: Arc<Vec<u8>>,
        _: &str,
        condition: WriteCondition,
        image: Option<&ImageMetadata>,
    ) -> Result<WriteOutcome, StoreError> {
        while self.manifest_read_meets_image_write
            && image.is_some()
            && !self.manifest_read_begun.load(Ordering::SeqCst)
        {
            tokio::task::yield_now().await;
        }
        if key == MANIFEST {
            self.manifest_writes.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
        }
        let mut stored = self.stored.lock().unwrap();
        let current = stored.get(key).map(|(_, etag, _)| etag.to_string());
        let holds = match &condition {
            WriteCondition::IfAbsent => current.is_none(),
            WriteCondition::IfMatch(etag) => current.as_ref() == Some(etag),
        };
        if !holds {
            return Ok(WriteOutcome::PreconditionFailed);
        }
        let etag = self.etags.fetch_add(1, Ordering::SeqCst);
        stored.insert(key.to_owned(), (bytes.to_vec(), etag, image.cloned()));
        let mut lose = self.lose_next_image_reply.lock().unwrap();
        if *lose && image.is_some() {
            *lose = false;
            return Ok(WriteOutcome::PreconditionFailed);
        }
        Ok(WriteOutcome::Written)
    }
}

impl Objects {
    /// Whether a training image has been written.
    pub(super) fn image_stored(&self) -> bool {
        let stored = self.stored.lock().unwrap();
        stored
            .keys()
            .any(|k| k.contains("training_data") && k.ends_with(".jpg"))
    }
}

/// The last index taken, shared so that a fake generator can watch it.
#[derive(Default)]
pub(super) struct Counter {
    pub(super) last: Arc<Mutex<Option<u64>>>,
    /// Indices are given only once this is set (a download has begun).
    pub(super) waits_for: Option<Arc<AtomicBool>>,
}

impl IndexCounter for Counter {
    async fn take_next(&self, _: &str) -> Result<Option<u64>, StoreError> {
        while let Some(begun) = &self.waits_for
            && !begun.load(Ordering::SeqCst)
        {
            tokio::task::yield_now().await;
        }
        let mut last = self.last.lock().unwrap();
        Ok(last.as_mut().map(|n| {
            *n += 1;
            *n
        }))
    }

    async fn seed(&self, _: &str, highest: u64) -> Result<(), StoreError> {
        self.last.lock().unwrap().get_or_insert(highest);
        Ok(())
    }

    async fn raise(&self, _: &str, highest: u64) -> Result<(), StoreError> {
        let mut last = self.last.lock().unwrap();
        *last = Some(last.unwrap_or(0).max(highest));
        Ok(())
    }
}

pub(super) struct Generator {
    pub(super) calls: AtomicU32,
    pub(super) fail: bool,
    /// The prediction succeeds but its output is refused at the download.
    pub(super) refuse_output: bool,
    /// The API refuses every create (401): nothing is made or paid.
    pub(super) reject_creates: bool,
    /// Set once a download begins.
    pub(super) download_begun: Arc<AtomicBool>,
    /// Downloads wait until this counter has given an index.
    pub(super) download_waits_for: Option<Arc<Mutex<Option<u64>>>>,
    /// Downloads under way now, and the most there were at once.
    pub(super) downloads: (AtomicUsize, AtomicUsize),
}

impl ImageGenerator for Generator {
    type State = ();

    fn model(&self) -> &str {
        "m/n"
    }

    async fn start(
        &self,
        _: &PredictionRequest,
        _: Instant,
    ) -> Result<StartedPrediction<()>, PredictionError> {
        if self.reject_creates {
            return Err(PredictionError::Rejected {
                status: 401,
                message: "bad token".to_owned(),
            });
        }
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(StartedPrediction {
            prediction_id: format!("p{call}"),
            state: (),
        })
    }

    async fn finish(
        &self,
        started: StartedPrediction<()>,
        deadline: Instant,
        at_deadline: AtDeadline,
    ) -> Result<SucceededPrediction, PredictionError> {
        self.resume(&started.prediction_id, deadline, at_deadline)
            .await
    }

    async fn resume(
        &self,
        prediction_id: &str,
        _: Instant,
        _: AtDeadline,
    ) -> Result<SucceededPrediction, PredictionError> {
        if self.fail {
            return Err(PredictionError::Failed {
                prediction_id: prediction_id.to_owned(),
                message: "NSFW".to_owned(),
            });
        }
        Ok(SucceededPrediction {
            prediction_id: prediction_id.to_owned(),
            output_url: format!("https://replicate.delivery/{prediction_id}.jpg"),
        })
    }

    async fn download(
        &self,
        succeeded: &SucceededPrediction,
        _: Instant,
    ) -> Result<GeneratedImage, PredictionError> {
        self.download_begun.store(true, Ordering::SeqCst);
        let now = self.downloads.0.fetch_add(1, Ordering::SeqCst) + 1;
        self.downloads.1.fetch_max(now, Ordering::SeqCst);
        if let Some(counter) = &self.download_waits_for {
            while counter.lock().unwrap().is_none_or(|index| index == 0) {
                tokio::task::yield_now().await;
            }
        }
        // A download takes a while: the other stores get to start theirs meanwhile.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        self.downloads.0.fetch_sub(1, Ordering::SeqCst);
        if self.refuse_output {
            return Err(PredictionError::BadOutput {
                prediction_id: succeeded.prediction_id.clone(),
                reason: "not a JPEG".to_owned(),
            });
        }
        Ok(GeneratedImage {
            prediction_id: succeeded.prediction_id.clone(),
            model: "m/n".to_owned(),
            bytes: JPEG.to_vec(),
        })
    }
}

pub(super) struct InstantClock;

impl Clock for InstantClock {
    fn now_rfc3339(&self) -> String {
        "2026-11-28T00:00:00Z".to_owned()
    }

    fn now_epoch_ms(&self) -> u64 {
        1_795_900_000_000
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    /// A retry's pause passes at once; a run's deadline (seconds away in these tests) never
    /// comes, so a step cut by it is one that never ends.
    async fn sleep(&self, duration: Duration) {
        if duration > Duration::from_secs(5) {
            std::future::pending::<()>().await;
        }
    }
}

/// The generation over the fakes.
pub(super) type Service =
    GenerateImage<Profiles, Objects, Counter, Generator, InstantClock, Records>;

/// The generation over fresh fakes, with the actor's photo in the bucket; `fail` makes
/// every prediction fail.
pub(super) fn service(objects: Objects, fail: bool) -> Service {
    objects
        .stored
        .lock()
        .unwrap()
        .insert(PHOTO.to_owned(), (JPEG.to_vec(), 0, None));
    GenerateImage {
        profiles: Profiles,
        objects,
        counter: Counter::default(),
        generator: Generator {
            calls: AtomicU32::new(0),
            fail,
            refuse_output: false,
            reject_creates: false,
            download_begun: Arc::default(),
            download_waits_for: None,
            downloads: Default::default(),
        },
        clock: InstantClock,
        records: Records::default(),
        settings: GenerationSettings {
            bucket: BUCKET.to_owned(),
            max_base_image_bytes: 1024,
            base_image_prefixes: Default::default(),
        },
        manifests: GroupCommit::default(),
        image_slots: ImageSlots::default(),
    }
}
