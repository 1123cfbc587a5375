//! The wire types of generate-single: the body the web UI (and a direct job) sends, and the
//! answer it gets. The use cases know nothing of JSON field names; this file does.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::actor::ActorId;
use crate::domain::request::{ImageRequest, RequestError};
use crate::entry::http::{error_body, status_of};
use crate::ports::StoredAnswer;
use crate::usecases::{AnswerFormat, StoredImage, UseCaseError};

/// The request body. Unknown fields are ignored; known ones must have the right types.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct GenerateSingleBody {
    /// The actor's name; the profile's when absent.
    #[serde(default)]
    pub actor_name: Option<String>,
    /// The base photo: a key or `s3://bucket/key`; the profile's when absent.
    #[serde(default)]
    pub base_image_path: Option<String>,
    /// A preset's id.
    #[serde(default)]
    pub prompt_id: Option<String>,
    /// A custom prompt, used when there is no `prompt_id`.
    #[serde(default)]
    pub prompt: Option<String>,
    /// A seed for a reproducible result.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The image's caption for a LoRA trainer, with `[trigger]` where the actor's trigger
    /// word goes; the preset's, or `[trigger], ` and the custom prompt, when absent.
    #[serde(default)]
    pub caption: Option<String>,
}

impl GenerateSingleBody {
    /// Reads a request from a JSON body, with a message that says what is wrong.
    pub fn from_json(value: Value) -> Result<ImageRequest, RequestError> {
        if !value.is_object() {
            return Err(RequestError::Malformed(
                "the body must be a JSON object".to_owned(),
            ));
        }
        let body: Self = serde_json::from_value(value)
            .map_err(|error| RequestError::Malformed(error.to_string()))?;
        Ok(ImageRequest {
            actor_name: body.actor_name,
            base_image_path: body.base_image_path,
            prompt_id: body.prompt_id,
            prompt: body.prompt,
            seed: body.seed,
            caption: body.caption,
            requested_by: None,
        })
    }
}

/// The answer for a stored image, as the web UI reads it.
#[derive(Debug, Serialize)]
pub struct GenerateSingleAnswer<'a> {
    /// Always true here.
    pub success: bool,
    /// The actor's id.
    pub actor_id: &'a ActorId,
    /// The actor's name.
    pub actor_name: &'a str,
    /// The image's number.
    pub index: u64,
    /// `{actor_name}_{index}.jpg`.
    pub filename: &'a str,
    /// The object's key.
    pub s3_key: &'a str,
    /// The object's URL.
    pub s3_url: &'a str,
    /// A presigned GET of the image, valid for an hour (null if it could not be signed).
    pub preview_url: Option<&'a str>,
    /// The manifest's key.
    pub manifest_key: &'a str,
    /// Whether the manifest lists the image. When false, `manifest_error` says why and the
    /// image is stored all the same.
    pub manifest_updated: bool,
    /// Why the manifest was not updated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_error: Option<&'a str>,
    /// The preset's id, null for a custom prompt.
    pub prompt_id: Option<&'static str>,
    /// The preset's category, null for a custom prompt.
    pub category: Option<&'static str>,
    /// The prompt sent.
    pub prompt: &'a str,
    /// The image's caption, with `[trigger]` for the actor's trigger word.
    pub caption: &'a str,
    /// Whether the caption file beside the image was written. When false,
    /// `caption_file_error` says why; the manifest has the caption all the same.
    pub caption_file_written: bool,
    /// Why the caption file was not written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption_file_error: Option<&'a str>,
    /// The seed, when given.
    pub seed: Option<u64>,
    /// The prediction that made the image.
    pub prediction_id: &'a str,
    /// The model.
    pub model: &'a str,
    /// When the image was stored.
    pub created_at: &'a str,
}

impl<'a> From<&'a StoredImage> for GenerateSingleAnswer<'a> {
    fn from(image: &'a StoredImage) -> Self {
        Self {
            success: true,
            actor_id: &image.actor_id,
            actor_name: &image.actor_name,
            index: image.index,
            filename: &image.filename,
            s3_key: &image.s3_key,
            s3_url: &image.s3_url,
            preview_url: image.preview_url.as_deref(),
            manifest_key: &image.manifest_key,
            manifest_updated: image.manifest_error.is_none(),
            manifest_error: image.manifest_error.as_deref(),
            prompt_id: image.prompt_id,
            category: image.category,
            prompt: &image.prompt,
            caption: &image.caption,
            caption_file_written: image.caption_error.is_none(),
            caption_file_error: image.caption_error.as_deref(),
            seed: image.seed,
            prediction_id: &image.prediction_id,
            model: &image.model,
            created_at: &image.created_at,
        }
    }
}

/// The answer for a stored image, as JSON.
pub fn answer_json(image: &StoredImage) -> Value {
    serde_json::to_value(GenerateSingleAnswer::from(image)).unwrap_or_else(|error| {
        json!({"success": true, "index": image.index, "s3_key": image.s3_key, "encoding_error": error.to_string()})
    })
}

/// The answers an idempotency record keeps, exactly as this function's callers get them.
pub struct WireAnswers;

impl AnswerFormat for WireAnswers {
    fn stored(&self, image: &StoredImage) -> StoredAnswer {
        StoredAnswer {
            status: 200,
            body: answer_json(image).to_string(),
        }
    }

    fn failed(&self, error: &UseCaseError) -> StoredAnswer {
        StoredAnswer {
            status: status_of(error).as_u16(),
            body: error_body(
                crate::entry::http::code_of(error),
                error,
                error.prediction_id(),
            )
            .to_string(),
        }
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod request_tests;
