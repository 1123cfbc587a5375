//! What an image carries in its S3 object metadata (`x-amz-meta-*`): its manifest entry's own
//! fields, written with the image and read back to recognise it (and rebuild a manifest).

use std::collections::HashMap;

use crate::ports::ImageMetadata;

/// The object metadata keys of an image (`x-amz-meta-*`): its manifest entry's own fields.
const PREDICTION_ID: &str = "prediction-id";
const PROMPT_ID: &str = "prompt-id";
const PROMPT: &str = "prompt";
const SEED: &str = "seed";
const MODEL: &str = "model";
const CREATED_AT: &str = "created-at";

/// An image's metadata as S3 keeps it.
pub(super) fn metadata_of(image: &ImageMetadata) -> HashMap<String, String> {
    let mut metadata = HashMap::from([
        (PREDICTION_ID.to_owned(), image.prediction_id.clone()),
        (MODEL.to_owned(), image.model.clone()),
        (CREATED_AT.to_owned(), image.created_at.clone()),
    ]);
    if let Some(prompt_id) = &image.prompt_id {
        metadata.insert(PROMPT_ID.to_owned(), prompt_id.clone());
    }
    if let Some(prompt) = &image.prompt {
        metadata.insert(PROMPT.to_owned(), prompt.clone());
    }
    if let Some(seed) = image.seed {
        metadata.insert(SEED.to_owned(), seed.to_string());
    }
    metadata
}

/// An image's metadata read back; none when the service did not write the object.
pub(super) fn image_of(metadata: Option<&HashMap<String, String>>) -> Option<ImageMetadata> {
    let metadata = metadata?;
    Some(ImageMetadata {
        prediction_id: metadata.get(PREDICTION_ID)?.clone(),
        prompt_id: metadata.get(PROMPT_ID).cloned(),
        prompt: metadata.get(PROMPT).cloned(),
        seed: metadata.get(SEED).and_then(|seed| seed.parse().ok()),
        model: metadata.get(MODEL).cloned().unwrap_or_default(),
        created_at: metadata.get(CREATED_AT).cloned().unwrap_or_default(),
    })
}
