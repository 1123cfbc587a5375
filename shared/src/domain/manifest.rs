//! The actor's manifest, `response.json`: the service owns its `images` array (it appends
//! entries) and `updated_at`; every other field and every entry it did not write stays as
//! it was.

use serde::Serialize;
use serde_json::{Map, Value};
use thiserror::Error;

/// A manifest the service must not rewrite.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ManifestError {
    /// Not JSON, or not a JSON object.
    #[error("the manifest is not a JSON object; it is left as it is")]
    Unparseable,
    /// `images` is there but is not an array.
    #[error("the manifest's images field is not an array; it is left as it is")]
    ImagesNotAnArray,
}

/// One image's entry in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestEntry {
    /// The image's number.
    pub index: u64,
    /// `{actor_name}_{index}.jpg`.
    pub filename: String,
    /// The object's key.
    pub s3_key: String,
    /// The object's URL.
    pub s3_url: String,
    /// The preset's id, null for a custom prompt.
    pub prompt_id: Option<String>,
    /// The preset's category, null for a custom prompt.
    pub category: Option<String>,
    /// The prompt text sent to the model.
    pub prompt: String,
    /// The image's caption for a LoRA trainer, with `[trigger]` for the actor's trigger
    /// word: the authority its `.txt` file is written from.
    pub caption: String,
    /// The seed, when one was given.
    pub seed: Option<u64>,
    /// The prediction that made the image.
    pub prediction_id: String,
    /// The model, `owner/name`.
    pub model: String,
    /// When the image was stored (RFC 3339, UTC).
    pub created_at: String,
    /// Who asked for it (`jwt:{subject}`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

/// The manifest with `entries` appended in order and `updated_at` set to `now`. `current` is
/// the manifest as read, or `None` when there is none yet. An entry for a key or a prediction
/// already there (or earlier in `entries`) is not added twice (a retried update, a second
/// collector): one prediction is listed once.
pub fn append_entries(
    current: Option<&[u8]>,
    entries: &[ManifestEntry],
    now: &str,
) -> Result<Vec<u8>, ManifestError> {
    let mut manifest = match current {
        None => Map::new(),
        Some(bytes) => match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => map,
            _ => return Err(ManifestError::Unparseable),
        },
    };
    let images = manifest
        .entry("images")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or(ManifestError::ImagesNotAnArray)?;
    for entry in entries {
        let already_there = images.iter().any(|image| {
            let field = |name| image.get(name).and_then(Value::as_str);
            field("s3_key") == Some(entry.s3_key.as_str())
                || field("prediction_id") == Some(entry.prediction_id.as_str())
        });
        if !already_there {
            images.push(serde_json::to_value(entry).map_err(|_| ManifestError::Unparseable)?);
        }
    }
    manifest.insert("updated_at".to_owned(), Value::String(now.to_owned()));
    serde_json::to_vec_pretty(&Value::Object(manifest)).map_err(|_| ManifestError::Unparseable)
}

/// One training's entry in the manifest's `trainings` list: how it ended and, when it
/// succeeded, the LoRA it made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainingListing {
    /// Our training's id.
    pub training_id: String,
    /// Replicate's id of it.
    pub replicate_id: Option<String>,
    /// `succeeded`, `failed` or `canceled`.
    pub status: &'static str,
    /// The export it trained on.
    pub export_id: String,
    /// The word the LoRA is triggered by.
    pub trigger_word: String,
    /// The trained version, `owner/name:hash`.
    pub version: Option<String>,
    /// The weights' key in the bucket.
    pub weights_key: Option<String>,
    /// What it cost, in US dollars.
    pub cost_usd: Option<f64>,
    /// When it ended (RFC 3339).
    pub finished_at: String,
}

/// The manifest with `listing` in its `trainings` list (replacing an entry of the same
/// training: a repeated end lists it once) and `updated_at` set to `now`; `images` and every
/// other field stay as they were.
pub fn record_training(
    current: Option<&[u8]>,
    listing: &TrainingListing,
    now: &str,
) -> Result<Vec<u8>, ManifestError> {
    let mut manifest = match current {
        None => Map::new(),
        Some(bytes) => match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => map,
            _ => return Err(ManifestError::Unparseable),
        },
    };
    let value = serde_json::to_value(listing).map_err(|_| ManifestError::Unparseable)?;
    let trainings = manifest
        .entry("trainings")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !trainings.is_array() {
        // Not ours to interpret: the list is made anew rather than the manifest refused.
        *trainings = Value::Array(Vec::new());
    }
    if let Value::Array(list) = trainings {
        list.retain(|entry| {
            entry.get("training_id").and_then(Value::as_str) != Some(listing.training_id.as_str())
        });
        list.push(value);
    }
    manifest.insert("updated_at".to_owned(), Value::String(now.to_owned()));
    serde_json::to_vec_pretty(&Value::Object(manifest)).map_err(|_| ManifestError::Unparseable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(index: u64) -> ManifestEntry {
        ManifestEntry {
            index,
            filename: format!("a_{index}.jpg"),
            s3_key: format!("system_actors/training_data/a/a_{index}.jpg"),
            s3_url: format!(
                "https://b.s3.amazonaws.com/system_actors/training_data/a/a_{index}.jpg"
            ),
            prompt_id: Some("bw_charcoal".to_owned()),
            category: Some("bw_stylized".to_owned()),
            prompt: "p".to_owned(),
            caption: "[trigger], p".to_owned(),
            seed: None,
            prediction_id: format!("p{index}"),
            model: "m/n".to_owned(),
            created_at: "2026-11-28T10:00:00Z".to_owned(),
            created_by: None,
        }
    }

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn a_new_manifest_has_the_entry() {
        let written = parse(&append_entries(None, &[entry(1)], "now").unwrap());
        assert_eq!(written["images"].as_array().unwrap().len(), 1);
        assert_eq!(written["images"][0]["index"], 1);
        assert_eq!(written["images"][0]["prompt_id"], "bw_charcoal");
        assert_eq!(written["updated_at"], "now");
    }

    #[test]
    fn foreign_fields_and_entries_survive_in_order() {
        let before = json!({
            "actor": "a",
            "lora": {"steps": 1200},
            "images": ["https://legacy/a_1.jpg", {"custom": true}],
            "updated_at": "then",
        });
        let bytes = serde_json::to_vec(&before).unwrap();
        let after = parse(&append_entries(Some(&bytes), &[entry(2)], "now").unwrap());
        assert_eq!(after["actor"], "a");
        assert_eq!(after["lora"], json!({"steps": 1200}));
        let images = after["images"].as_array().unwrap();
        assert_eq!(images[0], "https://legacy/a_1.jpg");
        assert_eq!(images[1], json!({"custom": true}));
        assert_eq!(images[2]["index"], 2);
        assert_eq!(after["updated_at"], "now");
        let keys: Vec<_> = after.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["actor", "lora", "images", "updated_at"]);
    }

    #[test]
    fn a_retried_entry_is_not_added_twice() {
        let once = append_entries(None, &[entry(3)], "t1").unwrap();
        let twice = parse(&append_entries(Some(&once), &[entry(3)], "t2").unwrap());
        assert_eq!(twice["images"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn entries_appended_together_are_all_listed_once_in_order() {
        let once = append_entries(None, &[entry(1)], "t1").unwrap();
        let both = parse(
            &append_entries(Some(&once), &[entry(2), entry(1), entry(3), entry(2)], "t2").unwrap(),
        );
        let indices: Vec<_> = both["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|image| image["index"].as_u64().unwrap())
            .collect();
        assert_eq!(indices, [1, 2, 3]);
    }

    #[test]
    fn one_prediction_is_never_listed_twice() {
        let once = append_entries(None, &[entry(3)], "t1").unwrap();
        let mut moved = entry(4);
        moved.prediction_id = entry(3).prediction_id;
        let twice = parse(&append_entries(Some(&once), &[moved], "t2").unwrap());
        assert_eq!(twice["images"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn a_manifest_it_cannot_merge_is_refused() {
        assert_eq!(
            append_entries(Some(b"{not json"), &[entry(1)], "t"),
            Err(ManifestError::Unparseable)
        );
        assert_eq!(
            append_entries(Some(b"[1,2]"), &[entry(1)], "t"),
            Err(ManifestError::Unparseable)
        );
        assert_eq!(
            append_entries(Some(br#"{"images": {"a": 1}}"#), &[entry(1)], "t"),
            Err(ManifestError::ImagesNotAnArray)
        );
    }

    #[test]
    fn a_training_is_listed_once_beside_the_images() {
        let listing = TrainingListing {
            training_id: "T1".to_owned(),
            replicate_id: Some("r1".to_owned()),
            status: "succeeded",
            export_id: "E1".to_owned(),
            trigger_word: "ZARA".to_owned(),
            version: Some("o/n:abc".to_owned()),
            weights_key: Some("system_actors/loras/a/T1.tar".to_owned()),
            cost_usd: Some(1.5),
            finished_at: "2026-12-03T10:00:00Z".to_owned(),
        };
        let with_image = append_entries(None, &[entry(1)], "t0").unwrap();
        let once = record_training(Some(&with_image), &listing, "t1").unwrap();
        let twice = parse(&record_training(Some(&once), &listing, "t2").unwrap());
        assert_eq!(twice["trainings"].as_array().unwrap().len(), 1);
        assert_eq!(twice["trainings"][0]["version"], "o/n:abc");
        assert_eq!(twice["images"].as_array().unwrap().len(), 1);
        assert_eq!(twice["updated_at"], "t2");
        assert_eq!(
            record_training(Some(b"[1]"), &listing, "t"),
            Err(ManifestError::Unparseable)
        );
    }
}
