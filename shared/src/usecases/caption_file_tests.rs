//! The caption every stored image gets: in its manifest entry, and in the `.txt` file beside
//! it, which the service never writes over when it did not write it.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::caption_file::{CaptionFile, CaptionWrite};
use super::fakes::*;
use super::{NotRecorded, RunLimits, StoredImage, UseCaseError};
use crate::domain::actor::ActorId;
use crate::domain::prompts::preset;
use crate::domain::request::ImageRequest;

const CAPTION_FILE: &str = "system_actors/training_data/actor_a/actor_a_1.txt";

async fn store(service: &Service, request: ImageRequest) -> Result<StoredImage, UseCaseError> {
    let prepared = service
        .prepare(&ActorId::parse("a1").unwrap(), &request)
        .await?;
    let limits = RunLimits {
        model: Instant::now() + Duration::from_secs(10),
        finish: Instant::now() + Duration::from_secs(20),
        hold_until_ms: u64::MAX,
    };
    service.execute(&prepared, limits, &NotRecorded).await
}

fn preset_request(id: &str) -> ImageRequest {
    ImageRequest {
        prompt_id: Some(id.to_owned()),
        ..ImageRequest::default()
    }
}

fn listed_caption(service: &Service) -> String {
    let stored = service.objects.stored.lock().unwrap();
    let manifest: Value = serde_json::from_slice(&stored[MANIFEST].0).unwrap();
    manifest["images"][0]["caption"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn caption_file(service: &Service) -> Option<(String, Option<String>)> {
    let stored = service.objects.stored.lock().unwrap();
    stored.get(CAPTION_FILE).map(|(bytes, _, image)| {
        let writer = image.as_ref().map(|image| image.prediction_id.clone());
        (String::from_utf8(bytes.clone()).unwrap(), writer)
    })
}

#[tokio::test]
async fn a_presets_image_is_captioned_in_the_manifest_and_beside_it() {
    let service = service(Objects::default(), false);
    let image = store(&service, preset_request("bw_charcoal"))
        .await
        .unwrap();
    let caption = preset("bw_charcoal").unwrap().caption;
    assert_eq!(image.caption, caption);
    assert_eq!(image.caption_error, None);
    assert_eq!(listed_caption(&service), caption);
    assert!(!caption.contains("Keep the exact face") && caption.contains("[trigger]"));
    let (text, writer) = caption_file(&service).expect("a caption file");
    assert_eq!(text, caption);
    assert_eq!(writer.as_deref(), Some(image.prediction_id.as_str()));
}

#[tokio::test]
async fn a_custom_prompt_is_captioned_with_its_own_caption_or_its_words() {
    let service = service(Objects::default(), false);
    let own = ImageRequest {
        prompt: Some("a knight at dawn".to_owned()),
        caption: Some(" [trigger] as a knight, dawn light ".to_owned()),
        ..ImageRequest::default()
    };
    let image = store(&service, own).await.unwrap();
    assert_eq!(image.caption, "[trigger] as a knight, dawn light");
    assert_eq!(caption_file(&service).unwrap().0, image.caption);
    let words = ImageRequest {
        prompt: Some("a knight\nat dawn".to_owned()),
        ..ImageRequest::default()
    };
    assert_eq!(
        store(&service, words).await.unwrap().caption,
        "[trigger], a knight at dawn"
    );
}

#[tokio::test]
async fn a_caption_file_the_service_did_not_write_is_left_as_it_is() {
    let service = service(Objects::default(), false);
    service.objects.stored.lock().unwrap().insert(
        CAPTION_FILE.to_owned(),
        (b"an artist's own caption".to_vec(), 0, None),
    );
    let image = store(&service, preset_request("bw_woodcut")).await.unwrap();
    assert_eq!(image.index, 1);
    assert!(image.caption_error.is_some());
    assert_eq!(
        caption_file(&service),
        Some(("an artist's own caption".to_owned(), None))
    );
    assert_eq!(listed_caption(&service), image.caption);
}

#[tokio::test]
async fn a_caption_that_is_not_one_line_is_refused_before_anything_is_paid() {
    let service = service(Objects::default(), false);
    let request = ImageRequest {
        caption: Some("two\nlines".to_owned()),
        ..preset_request("bw_charcoal")
    };
    let refused = store(&service, request).await.unwrap_err();
    assert!(refused.to_string().contains("caption"), "{refused}");
    assert_eq!(
        service
            .generator
            .calls
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert!(caption_file(&service).is_none());
}

#[tokio::test]
async fn a_second_store_keeps_a_corrected_caption_and_a_correction_writes_over_its_own_file() {
    let service = service(Objects::default(), false);
    let image = store(&service, preset_request("bw_charcoal"))
        .await
        .unwrap();
    let writer = service.objects.stored.lock().unwrap()[CAPTION_FILE]
        .2
        .clone()
        .unwrap();
    let image_key = image.s3_key.as_str();
    let corrected = service
        .write_caption_file(
            image_key,
            "[trigger] corrected",
            &writer,
            CaptionWrite::Correction,
        )
        .await;
    assert_eq!(corrected, Ok(CaptionFile::Written));
    assert_eq!(caption_file(&service).unwrap().0, "[trigger] corrected");
    // The reconciler collecting the same prediction again writes only a missing file.
    let again = service
        .write_caption_file(image_key, &image.caption, &writer, CaptionWrite::New)
        .await;
    assert_eq!(again, Ok(CaptionFile::Written));
    assert_eq!(caption_file(&service).unwrap().0, "[trigger] corrected");
}
