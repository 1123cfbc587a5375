//! Repairing a manifest from the bucket: every image of the actor's folder that the manifest
//! does not list is added from its object metadata (each image the service stores carries its
//! entry's fields), in one read-modify-write guarded by the ETag like every other writer. An
//! image without the service's metadata (copied in by hand) is reported, never listed.

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use super::UseCaseError;
use super::generate_image::GenerateImage;
use crate::domain::actor::validate_identifier;
use crate::domain::caption::custom_prompt_caption;
use crate::domain::manifest::{ManifestEntry, append_entries};
use crate::domain::naming::{image_filename, index_of_key, manifest_key, training_folder};
use crate::domain::prompts::preset;
use crate::domain::request::RequestError;
use crate::ports::{Clock, ObjectStore, StoreError, WriteCondition, WriteOutcome};
use crate::retry::Backoff;

/// What a repair found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Images in the folder.
    pub images: usize,
    /// The keys it added to the manifest, by index.
    pub added: Vec<String>,
    /// Images it could not add: no metadata of the service's (not written by it).
    pub not_ours: Vec<String>,
}

impl<P, O: ObjectStore, C, G, K: Clock, R> GenerateImage<P, O, C, G, K, R> {
    /// Lists in `actor_name`'s manifest every image of its folder missing from it, by
    /// `finish_by` (each manifest attempt checks it).
    pub async fn repair_manifest(
        &self,
        actor_name: &str,
        finish_by: Instant,
    ) -> Result<RepairReport, UseCaseError> {
        validate_identifier("actor_name", actor_name).map_err(RequestError::from)?;
        let mut images: Vec<(u64, String)> = self
            .objects
            .list_keys(&training_folder(actor_name))
            .await?
            .into_iter()
            .filter_map(|key| index_of_key(actor_name, &key).map(|index| (index, key)))
            .collect();
        images.sort();
        let key = manifest_key(actor_name);
        let mut report = RepairReport {
            images: images.len(),
            ..RepairReport::default()
        };
        for attempt in 1..=Backoff::MANIFEST.attempts {
            if attempt > 1 {
                let pause = Backoff::MANIFEST.delay(attempt - 1);
                if self.clock.now() + pause > finish_by {
                    break;
                }
                self.clock.sleep(pause).await;
            }
            let current = self.objects.read_versioned(&key).await?;
            let listed = listed_keys(current.as_ref().map(|object| object.bytes.as_slice()));
            let mut merged = current.as_ref().map(|object| object.bytes.clone());
            report.added.clear();
            report.not_ours.clear();
            for (index, image_key) in &images {
                if listed.iter().any(|listed| listed == image_key) {
                    continue;
                }
                let Some(metadata) = self
                    .objects
                    .head(image_key)
                    .await?
                    .and_then(|info| info.image)
                else {
                    report.not_ours.push(image_key.clone());
                    continue;
                };
                let chosen = metadata.prompt_id.as_deref().and_then(preset);
                let caption = chosen.map_or_else(
                    || custom_prompt_caption(metadata.prompt.as_deref().unwrap_or_default()),
                    |preset| preset.caption.to_owned(),
                );
                let entry = ManifestEntry {
                    index: *index,
                    filename: image_filename(actor_name, *index),
                    s3_key: image_key.clone(),
                    s3_url: self.objects.object_url(image_key),
                    prompt_id: chosen.map(|preset| preset.id.to_owned()),
                    category: chosen.map(|preset| preset.category.as_str().to_owned()),
                    // A prompt too long for the metadata is named by its preset's label.
                    prompt: metadata
                        .prompt
                        .or_else(|| chosen.map(|preset| preset.label.to_owned()))
                        .unwrap_or_default(),
                    caption,
                    seed: metadata.seed,
                    prediction_id: metadata.prediction_id,
                    model: metadata.model,
                    created_at: metadata.created_at,
                    created_by: None,
                };
                let bytes = append_entries(
                    merged.as_deref(),
                    std::slice::from_ref(&entry),
                    &self.clock.now_rfc3339(),
                )
                .map_err(|error| StoreError {
                    operation: "S3 PutObject (manifest)",
                    detail: error.to_string(),
                })?;
                merged = Some(bytes);
                report.added.push(image_key.clone());
            }
            let Some(merged) = merged.filter(|_| !report.added.is_empty()) else {
                return Ok(report);
            };
            let condition = match &current {
                Some(object) => WriteCondition::IfMatch(object.etag.clone()),
                None => WriteCondition::IfAbsent,
            };
            match self
                .objects
                .write(&key, Arc::new(merged), "application/json", condition, None)
                .await?
            {
                WriteOutcome::Written => {
                    tracing::info!(
                        actor_name,
                        added = report.added.len(),
                        not_ours = report.not_ours.len(),
                        "manifest repaired"
                    );
                    return Ok(report);
                }
                outcome => tracing::info!(
                    actor_name,
                    attempt,
                    ?outcome,
                    "manifest changed meanwhile; repairing again"
                ),
            }
        }
        Err(StoreError {
            operation: "S3 PutObject (manifest)",
            detail: "the manifest kept changing".to_owned(),
        }
        .into())
    }
}

/// The keys a manifest lists: its entries' `s3_key`, and legacy string entries (a URL or a
/// key) by their path.
fn listed_keys(manifest: Option<&[u8]>) -> Vec<String> {
    let Some(Value::Object(manifest)) =
        manifest.and_then(|bytes| serde_json::from_slice(bytes).ok())
    else {
        return Vec::new();
    };
    let Some(Value::Array(images)) = manifest.get("images") else {
        return Vec::new();
    };
    images
        .iter()
        .filter_map(|image| match image {
            Value::String(legacy) => legacy
                .split_once("system_actors/")
                .map(|(_, rest)| format!("system_actors/{rest}")),
            other => other
                .get("s3_key")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
        .collect()
}
