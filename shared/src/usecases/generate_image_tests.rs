//! Unit tests of the generation's steps over the in-memory fakes of the ports.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::UseCaseError;
use super::fakes::*;
use super::{MAX_IMAGES_IN_MEMORY, NotRecorded, PredictionLog, RunLimits, StoredImage};
use crate::domain::actor::ActorId;
use crate::domain::request::ImageRequest;
use crate::ports::{AtDeadline, ImageMetadata, PredictionError, PredictionState};

/// Ten seconds for the model, as much again for the rest.
fn limits() -> RunLimits {
    RunLimits {
        model: Instant::now() + Duration::from_secs(10),
        finish: Instant::now() + Duration::from_secs(20),
        hold_until_ms: 1_795_900_030_000,
    }
}

/// An image's metadata, as another prediction wrote it.
fn written_by(prediction_id: &str) -> Option<ImageMetadata> {
    Some(ImageMetadata {
        prediction_id: prediction_id.to_owned(),
        prompt_id: None,
        prompt: None,
        seed: None,
        model: "m/n".to_owned(),
        created_at: "2026-11-01T00:00:00Z".to_owned(),
    })
}

/// The request every test makes: a preset, nothing else.
fn charcoal() -> ImageRequest {
    ImageRequest {
        prompt_id: Some("bw_charcoal".to_owned()),
        ..ImageRequest::default()
    }
}

async fn run(service: &Service) -> Result<StoredImage, UseCaseError> {
    let body = charcoal();
    let prepared = service
        .prepare(&ActorId::parse("a1").unwrap(), &body)
        .await?;
    service.execute(&prepared, limits(), &NotRecorded).await
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
async fn concurrent_stores_list_every_image_in_fewer_manifest_writes() {
    let service = service(Objects::default(), false);
    let runs = (0..6).map(|_| run(&service)).collect();
    let stored = super::concurrently::all(runs).await;
    assert!(stored.iter().all(Result::is_ok), "{stored:?}");
    assert_eq!(manifest_indices(&service), [1, 2, 3, 4, 5, 6]);
    let writes = service.objects.manifest_writes.load(Ordering::SeqCst);
    assert!(writes < 6, "{writes} manifest writes for 6 images");
}

#[tokio::test]
async fn concurrent_stores_hold_at_most_the_slots_images_at_once() {
    let service = service(Objects::default(), false);
    let count = MAX_IMAGES_IN_MEMORY + 5;
    let runs = (0..count).map(|_| run(&service)).collect();
    let stored = super::concurrently::all(runs).await;
    assert!(stored.iter().all(Result::is_ok), "{stored:?}");
    assert_eq!(manifest_indices(&service).len(), count);
    let peak = service.generator.downloads.1.load(Ordering::SeqCst);
    assert!(
        (2..=MAX_IMAGES_IN_MEMORY).contains(&peak),
        "{peak} downloads at once"
    );
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
        (b"stray".to_vec(), 0, written_by("someone else")),
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
    assert_eq!(image.manifest_error, None);
    assert_eq!(image.preview_url, None);
    assert_eq!(manifest_indices(&service), [1]);
}

#[tokio::test]
async fn a_manifest_that_cannot_be_read_is_named_in_the_answer_without_the_stores_detail() {
    let objects = Objects {
        failing_manifest_reads: AtomicU32::new(1_000),
        ..Objects::default()
    };
    let service = service(objects, false);
    let image = run(&service).await.unwrap();
    let error = image
        .manifest_error
        .expect("the manifest was never readable");
    assert_eq!(error, "the manifest could not be updated: fake failed");
    assert!(!error.contains("injected"), "{error}");
    assert_eq!(
        images(&service).len(),
        1,
        "the paid image is stored all the same"
    );
}

#[tokio::test]
async fn a_failed_prediction_takes_no_index_and_stores_nothing() {
    let service = service(Objects::default(), true);
    let error = run(&service).await.unwrap_err();
    assert!(matches!(
        error,
        UseCaseError::Prediction(PredictionError::Failed { .. })
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
    let body = charcoal();
    let prepared = service
        .prepare(&ActorId::parse("a1").unwrap(), &body)
        .await
        .unwrap();
    let image = service
        .resume("paid_earlier", Some(&prepared.order), limits())
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

    fn at_deadline(&self) -> AtDeadline {
        AtDeadline::KeepRunning
    }
}

#[tokio::test]
async fn the_prediction_id_is_recorded_concurrently_with_the_storing_and_before_the_end() {
    let service = service(Objects::default(), false);
    let log = RecordAfterStore {
        objects: &service.objects,
        recorded: Mutex::default(),
    };
    let body = charcoal();
    let prepared = service
        .prepare(&ActorId::parse("a1").unwrap(), &body)
        .await
        .unwrap();
    let run = service.execute(&prepared, limits(), &log);
    let image = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("storing waited for the record")
        .unwrap();
    assert_eq!(*log.recorded.lock().unwrap(), vec![image.prediction_id]);
}

/// The download waits for an index and the counter for a download to begin: a run that did
/// one only after the other would never finish.
#[tokio::test]
async fn the_index_is_taken_concurrently_with_the_download() {
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
async fn the_image_is_written_concurrently_with_the_manifest_read() {
    let objects = Objects {
        manifest_read_meets_image_write: true,
        ..Objects::default()
    };
    let service = service(objects, false);
    let image = tokio::time::timeout(Duration::from_secs(5), run(&service))
        .await
        .expect("the image's write waited for the manifest read")
        .unwrap();
    assert_eq!(image.manifest_error, None);
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
            UseCaseError::Prediction(PredictionError::BadOutput { .. })
        ),
        "{error:?}"
    );
    assert!(images(&service).is_empty());
    assert!(!has_manifest(&service));
}

#[tokio::test]
async fn a_resume_of_a_prediction_stored_already_answers_from_its_record_and_stores_nothing() {
    let service = service(Objects::default(), false);
    let first = run(&service).await.unwrap();
    let record = service.records.get(&first.prediction_id).unwrap();
    assert!(matches!(
        record.state,
        PredictionState::Stored { listed: true, .. }
    ));
    assert_eq!(record.place.as_ref().map(|place| place.index), Some(1));
    let prepared = service
        .prepare(&ActorId::parse("a1").unwrap(), &charcoal())
        .await
        .unwrap();
    let again = service
        .resume(&first.prediction_id, Some(&prepared.order), limits())
        .await
        .unwrap();
    assert_eq!((again.index, &again.s3_key), (1, &first.s3_key));
    assert_eq!(images(&service), std::slice::from_ref(&first.s3_key));
    assert_eq!(manifest_indices(&service), [1]);
}

#[tokio::test]
async fn a_collector_that_finds_the_image_in_its_claimed_place_writes_no_second_one() {
    let service = service(Objects::default(), false);
    let first = run(&service).await.unwrap();
    // The first run stored the image, then lost everything after (the manifest's update,
    // the record's close): a second collector finds the record open with its place.
    service.objects.stored.lock().unwrap().remove(MANIFEST);
    service
        .records
        .records
        .lock()
        .unwrap()
        .get_mut(&first.prediction_id)
        .unwrap()
        .state = PredictionState::Open;
    let record = service.records.get(&first.prediction_id).unwrap();
    let again = service
        .collect_record(&record, limits(), AtDeadline::KeepRunning)
        .await
        .unwrap();
    assert_eq!(again.s3_key, first.s3_key);
    assert_eq!(images(&service), [first.s3_key]);
    assert_eq!(manifest_indices(&service), [1]);
    assert!(matches!(
        service.records.get(&again.prediction_id).unwrap().state,
        PredictionState::Stored { .. }
    ));
}

#[tokio::test]
async fn a_counter_behind_the_bucket_is_raised_past_it_on_a_taken_name() {
    let service = service(Objects::default(), false);
    *service.counter.last.lock().unwrap() = Some(0);
    for index in 1..=12 {
        service.objects.stored.lock().unwrap().insert(
            format!("system_actors/training_data/actor_a/actor_a_{index}.jpg"),
            (b"copied in".to_vec(), 0, None),
        );
    }
    let image = run(&service).await.unwrap();
    assert_eq!(image.index, 13);
    assert_eq!(service.generator.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failed_prediction_closes_its_record_and_one_cut_short_is_handed_on() {
    let failing = service(Objects::default(), true);
    let error = run(&failing).await.unwrap_err();
    let prediction_id = error.prediction_id().unwrap().to_owned();
    assert!(matches!(
        failing.records.get(&prediction_id).unwrap().state,
        PredictionState::Failed { .. }
    ));

    let refused = service(Objects::default(), false);
    let mut refused = refused;
    refused.generator.refuse_output = true;
    let error = run(&refused).await.unwrap_err();
    let record = refused.records.get(error.prediction_id().unwrap()).unwrap();
    assert!(
        matches!(record.state, PredictionState::Failed { .. }),
        "{record:?}"
    );
}
