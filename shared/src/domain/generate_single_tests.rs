//! Unit tests of the generation steps over in-memory fakes of the ports. The adapters are
//! tested against moto and the Replicate emulator elsewhere; these reach the corners those
//! cannot easily produce (a lost reply, a flaky read, a failed signature).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use serde_json::{Value, json};

use super::*;
use crate::domain::actor::ActorProfile;
use crate::ports::{
    GeneratedImage, ObjectInfo, ObjectStart, StartedPrediction, SucceededPrediction,
};

const BUCKET: &str = "bucket";
const PHOTO: &str = "system_actors/base/a.jpg";
const MANIFEST: &str = "system_actors/training_data/actor_a/response.json";
const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9];

struct Profiles;

impl ActorProfiles for Profiles {
    async fn profile(&self, _: &ActorId) -> Result<Option<ActorProfile>, StoreError> {
        Ok(Some(ActorProfile {
            actor_name: Some("actor_a".to_owned()),
            sex: Some("female".to_owned()),
            base_image_key: Some(PHOTO.to_owned()),
        }))
    }
}

/// A stored object: its bytes, its ETag, and the prediction that wrote it.
type StoredObject = (Vec<u8>, u32, Option<String>);

#[derive(Default)]
struct Objects {
    stored: Mutex<HashMap<String, StoredObject>>,
    etags: AtomicU32,
    /// The next image write lands but answers 412, as an SDK retry after a lost reply would.
    lose_next_image_reply: Mutex<bool>,
    /// Reads of the manifest that fail before one succeeds.
    failing_manifest_reads: AtomicU32,
    failing_presign: bool,
    /// The manifest read and the image write meet: the read waits until an image is stored,
    /// and the image write until a manifest read has begun, so a run that did one only after
    /// the other would never finish.
    manifest_read_meets_image_write: bool,
    manifest_read_begun: AtomicBool,
}

fn fault() -> StoreError {
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
            .map(|(bytes, _, by)| ObjectInfo {
                size: bytes.len() as u64,
                written_by: by.clone(),
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
        written_by: Option<&str>,
    ) -> Result<WriteOutcome, StoreError> {
        while self.manifest_read_meets_image_write
            && written_by.is_some()
            && !self.manifest_read_begun.load(Ordering::SeqCst)
        {
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
        stored.insert(
            key.to_owned(),
            (bytes.to_vec(), etag, written_by.map(str::to_owned)),
        );
        let mut lose = self.lose_next_image_reply.lock().unwrap();
        if *lose && written_by.is_some() {
            *lose = false;
            return Ok(WriteOutcome::PreconditionFailed);
        }
        Ok(WriteOutcome::Written)
    }
}

impl Objects {
    fn image_stored(&self) -> bool {
        let stored = self.stored.lock().unwrap();
        stored
            .keys()
            .any(|k| k.contains("training_data") && k.ends_with(".jpg"))
    }
}

/// The last index taken, shared so that a fake generator can watch it.
#[derive(Default)]
struct Counter {
    last: Arc<Mutex<Option<u64>>>,
    /// Indices are given only once this is set (a download has begun).
    waits_for: Option<Arc<AtomicBool>>,
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
}

struct Generator {
    calls: AtomicU32,
    fail: bool,
    /// The prediction succeeds but its output is refused at the download.
    refuse_output: bool,
    /// Set once a download begins.
    download_begun: Arc<AtomicBool>,
    /// Downloads wait until this counter has given an index.
    download_waits_for: Option<Arc<Mutex<Option<u64>>>>,
}

impl ImageGenerator for Generator {
    async fn start(
        &self,
        _: &GenerationRequest,
        _: Instant,
    ) -> Result<StartedPrediction, GenerationError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(StartedPrediction {
            prediction_id: format!("p{call}"),
            state: Value::Null,
        })
    }

    async fn finish(
        &self,
        started: StartedPrediction,
        deadline: Instant,
        at_deadline: AtDeadline,
    ) -> Result<SucceededPrediction, GenerationError> {
        self.resume(&started.prediction_id, deadline, at_deadline)
            .await
    }

    async fn resume(
        &self,
        prediction_id: &str,
        _: Instant,
        _: AtDeadline,
    ) -> Result<SucceededPrediction, GenerationError> {
        if self.fail {
            return Err(GenerationError::Failed {
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
    ) -> Result<GeneratedImage, GenerationError> {
        self.download_begun.store(true, Ordering::SeqCst);
        if let Some(counter) = &self.download_waits_for {
            while counter.lock().unwrap().is_none_or(|index| index == 0) {
                tokio::task::yield_now().await;
            }
        }
        if self.refuse_output {
            return Err(GenerationError::BadOutput {
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

struct InstantClock;

impl Clock for InstantClock {
    fn now_rfc3339(&self) -> String {
        "2026-11-28T00:00:00Z".to_owned()
    }

    async fn sleep(&self, _: Duration) {}
}

type Service = GenerateSingle<Profiles, Objects, Counter, Generator, InstantClock>;

fn service(objects: Objects, fail: bool) -> Service {
    objects
        .stored
        .lock()
        .unwrap()
        .insert(PHOTO.to_owned(), (JPEG.to_vec(), 0, None));
    GenerateSingle {
        profiles: Profiles,
        objects,
        counter: Counter::default(),
        generator: Generator {
            calls: AtomicU32::new(0),
            fail,
            refuse_output: false,
            download_begun: Arc::default(),
            download_waits_for: None,
        },
        clock: InstantClock,
        settings: GenerationSettings {
            bucket: BUCKET.to_owned(),
            max_base_image_bytes: 1024,
            base_image_prefixes: Default::default(),
        },
    }
}

async fn run(service: &Service) -> Result<GeneratedTrainingImage, GenerateError> {
    let body = GenerateBody::from_json(json!({"prompt_id": "bw_charcoal"})).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let prepared = service
        .prepare(&ActorId::parse("a1").unwrap(), &body)
        .await?;
    service
        .execute(&prepared, deadline, Start::New(&NotRecorded))
        .await
}

fn images(service: &Service) -> Vec<String> {
    let mut keys: Vec<String> = service
        .objects
        .stored
        .lock()
        .unwrap()
        .keys()
        .filter(|k| k.ends_with(".jpg") && k.contains("training_data"))
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn has_manifest(service: &Service) -> bool {
    service
        .objects
        .stored
        .lock()
        .unwrap()
        .contains_key(MANIFEST)
}

fn manifest_indices(service: &Service) -> Vec<u64> {
    let stored = service.objects.stored.lock().unwrap();
    let manifest: Value = serde_json::from_slice(&stored[MANIFEST].0).unwrap();
    manifest["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_412_answering_our_own_lost_write_keeps_the_index() {
    let objects = Objects::default();
    *objects.lose_next_image_reply.lock().unwrap() = true;
    let service = service(objects, false);
    let image = run(&service).await.unwrap();
    assert_eq!(image.index, 1);
    assert_eq!(
        images(&service),
        ["system_actors/training_data/actor_a/actor_a_1.jpg"]
    );
    assert_eq!(manifest_indices(&service), [1]);
}

#[tokio::test]
async fn a_name_taken_by_someone_else_takes_the_next_index() {
    let service = service(Objects::default(), false);
    service.objects.stored.lock().unwrap().insert(
        "system_actors/training_data/actor_a/actor_a_0.txt".to_owned(),
        (b"not an image".to_vec(), 0, None),
    );
    assert_eq!(run(&service).await.unwrap().index, 1);
    service.objects.stored.lock().unwrap().insert(
        "system_actors/training_data/actor_a/actor_a_2.jpg".to_owned(),
        (b"stray".to_vec(), 0, Some("someone else".to_owned())),
    );
    assert_eq!(run(&service).await.unwrap().index, 3);
    assert_eq!(manifest_indices(&service), [1, 3]);
}

#[tokio::test]
async fn flaky_manifest_reads_are_retried_and_a_failed_signature_is_not_a_failure() {
    let objects = Objects {
        failing_manifest_reads: AtomicU32::new(3),
        failing_presign: true,
        ..Objects::default()
    };
    let service = service(objects, false);
    // The photo is inline (no signature needed for it); the preview cannot be signed.
    let image = run(&service).await.unwrap();
    assert!(image.manifest_updated, "{:?}", image.manifest_error);
    assert_eq!(image.preview_url, None);
    assert_eq!(manifest_indices(&service), [1]);
}

#[tokio::test]
async fn a_failed_prediction_takes_no_index_and_stores_nothing() {
    let service = service(Objects::default(), true);
    let error = run(&service).await.unwrap_err();
    assert!(matches!(
        error,
        GenerateError::Generation(GenerationError::Failed { .. })
    ));
    assert!(images(&service).is_empty());
    assert_eq!(
        *service.counter.last.lock().unwrap(),
        None,
        "an index was taken"
    );
    assert!(!has_manifest(&service));
}

#[tokio::test]
async fn an_unparseable_manifest_is_left_alone_and_the_answer_says_so() {
    let service = service(Objects::default(), false);
    service
        .objects
        .stored
        .lock()
        .unwrap()
        .insert(MANIFEST.to_owned(), (b"{broken".to_vec(), 0, None));
    let image = run(&service).await.unwrap();
    assert!(!image.manifest_updated);
    assert!(image.manifest_error.unwrap().contains("not a JSON object"));
    assert_eq!(
        service.objects.stored.lock().unwrap()[MANIFEST].0,
        b"{broken"
    );
    assert_eq!(
        images(&service).len(),
        1,
        "the paid image is stored all the same"
    );
}

#[tokio::test]
async fn a_resumed_prediction_is_stored_without_starting_another() {
    let service = service(Objects::default(), false);
    let body = GenerateBody::from_json(json!({"prompt_id": "bw_charcoal"})).unwrap();
    let prepared = service
        .prepare(&ActorId::parse("a1").unwrap(), &body)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let image = service
        .execute(
            &prepared,
            deadline,
            Start::<NotRecorded>::Resume("paid_earlier"),
        )
        .await
        .unwrap();
    assert_eq!(image.prediction_id, "paid_earlier");
    assert_eq!(
        service.generator.calls.load(Ordering::SeqCst),
        0,
        "a new prediction was started"
    );
    assert_eq!(manifest_indices(&service), [1]);
}

/// Records the prediction id only once an image is stored: a run that waited for the record
/// before storing would never finish.
struct RecordAfterStore<'a> {
    objects: &'a Objects,
    recorded: Mutex<Vec<String>>,
}

impl PredictionLog for RecordAfterStore<'_> {
    async fn started(&self, prediction_id: &str) {
        while !self.objects.image_stored() {
            tokio::task::yield_now().await;
        }
        self.recorded.lock().unwrap().push(prediction_id.to_owned());
    }

    fn resumable(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn the_prediction_id_is_recorded_beside_the_storing_and_before_the_end() {
    let service = service(Objects::default(), false);
    let log = RecordAfterStore {
        objects: &service.objects,
        recorded: Mutex::default(),
    };
    let body = GenerateBody::from_json(json!({"prompt_id": "bw_charcoal"})).unwrap();
    let prepared = service
        .prepare(&ActorId::parse("a1").unwrap(), &body)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let run = service.execute(&prepared, deadline, Start::New(&log));
    let image = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("storing waited for the record")
        .unwrap();
    assert_eq!(*log.recorded.lock().unwrap(), vec![image.prediction_id]);
}

/// The download waits for an index and the counter for a download to begin: a run that did
/// one only after the other would never finish.
#[tokio::test]
async fn the_index_is_taken_beside_the_download() {
    let mut service = service(Objects::default(), false);
    service.generator.download_waits_for = Some(service.counter.last.clone());
    service.counter.waits_for = Some(service.generator.download_begun.clone());
    let image = tokio::time::timeout(Duration::from_secs(5), run(&service))
        .await
        .expect("the index waited for the download")
        .unwrap();
    assert_eq!(image.index, 1);
    assert_eq!(manifest_indices(&service), [1]);
}

#[tokio::test]
async fn the_image_is_written_beside_the_manifest_read() {
    let objects = Objects {
        manifest_read_meets_image_write: true,
        ..Objects::default()
    };
    let service = service(objects, false);
    let image = tokio::time::timeout(Duration::from_secs(5), run(&service))
        .await
        .expect("the image's write waited for the manifest read")
        .unwrap();
    assert!(image.manifest_updated, "{:?}", image.manifest_error);
    assert_eq!(manifest_indices(&service), [1]);
}

#[tokio::test]
async fn an_output_refused_at_the_download_stores_and_lists_nothing() {
    let mut service = service(Objects::default(), false);
    service.generator.refuse_output = true;
    let error = run(&service).await.unwrap_err();
    assert!(
        matches!(
            error,
            GenerateError::Generation(GenerationError::BadOutput { .. })
        ),
        "{error:?}"
    );
    assert!(images(&service).is_empty());
    assert!(!has_manifest(&service));
}
