//! Curation: which of an actor's images are kept for training, which rejected, and the
//! captions artists corrected. Decisions live in the manifest's `curation` map, keyed by file
//! name, so that every entry can have one (legacy strings and objects without an index
//! too) while the `images` array stays exactly as it was. A rejected image is never
//! deleted: it was paid for.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::caption::checked_caption;
use super::manifest::ManifestError;
use super::manifest_location::{file_name, key_of_location};

/// The manifest field that holds the decisions.
pub const CURATION_FIELD: &str = "curation";

/// What an artist decided of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageStatus {
    /// Not decided yet.
    New,
    /// Kept for training.
    Kept,
    /// Left out of training (the image stays in the folder).
    Rejected,
}

impl ImageStatus {
    /// Every status, in the order counts are given.
    pub const ALL: [Self; 3] = [Self::New, Self::Kept, Self::Rejected];

    /// The status's place in [`Self::ALL`].
    pub fn rank(self) -> usize {
        match self {
            Self::New => 0,
            Self::Kept => 1,
            Self::Rejected => 2,
        }
    }

    /// The status as the API and the manifest write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Kept => "kept",
            Self::Rejected => "rejected",
        }
    }

    /// The status named `text`, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "new" => Some(Self::New),
            "kept" => Some(Self::Kept),
            "rejected" => Some(Self::Rejected),
            _ => None,
        }
    }
}

/// One image as the manifest lists it, with its decision applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CuratedImage {
    /// Its place in the manifest's `images` array (entries are only ever appended, so a
    /// place never changes).
    pub position: usize,
    /// Its file name, the key of its decision.
    pub filename: String,
    /// Its number, when the service stored it.
    pub index: Option<u64>,
    /// Its object key, when the entry gives or implies one.
    pub s3_key: Option<String>,
    /// The decision.
    pub status: ImageStatus,
    /// Its caption: the artist's correction, else the entry's.
    pub caption: Option<String>,
    /// The preset it was made with.
    pub prompt_id: Option<String>,
    /// The prediction that made it.
    pub prediction_id: Option<String>,
    /// Its seed, when one was given.
    pub seed: Option<u64>,
    /// When it was stored.
    pub created_at: Option<String>,
    /// Who asked for it.
    pub created_by: Option<String>,
    /// Who decided its status or caption, and when.
    pub decided_by: Option<String>,
    /// When that was.
    pub decided_at: Option<String>,
}

/// An artist's decision on one image: a status, a caption, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The new status, if it changes.
    pub status: Option<ImageStatus>,
    /// The corrected caption, if it changes (checked: one line, 1 to 1000 characters).
    pub caption: Option<String>,
}

/// A decision refused, or a manifest that cannot take one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurationError {
    /// The decision is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The manifest lists no image of that name.
    #[error("no image named {0:?} is listed for this actor")]
    UnknownImage(String),
    /// The manifest cannot be read or merged.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

impl Decision {
    /// A decision from its parts as sent, checked.
    pub fn new(status: Option<&str>, caption: Option<&str>) -> Result<Self, CurationError> {
        let status = status
            .map(|text| {
                ImageStatus::parse(text).ok_or_else(|| {
                    CurationError::Invalid(format!(
                        "status must be new, kept or rejected, not {text:?}"
                    ))
                })
            })
            .transpose()?;
        let caption = caption
            .map(|text| checked_caption(text).map_err(CurationError::Invalid))
            .transpose()?;
        if status.is_none() && caption.is_none() {
            return Err(CurationError::Invalid(
                "send status, caption or both".to_owned(),
            ));
        }
        Ok(Self { status, caption })
    }
}

/// Every image the manifest lists, in its order, with its decision; none when there is no
/// manifest.
pub fn curated_images(manifest: Option<&[u8]>) -> Result<Vec<CuratedImage>, ManifestError> {
    match manifest {
        None => Ok(Vec::new()),
        Some(bytes) => curated_in(&parse(bytes)?),
    }
}

fn curated_in(manifest: &Map<String, Value>) -> Result<Vec<CuratedImage>, ManifestError> {
    let empty = Map::new();
    let decisions = manifest
        .get(CURATION_FIELD)
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let images = match manifest.get("images") {
        None => return Ok(Vec::new()),
        Some(Value::Array(images)) => images,
        Some(_) => return Err(ManifestError::ImagesNotAnArray),
    };
    Ok(images
        .iter()
        .enumerate()
        .filter_map(|(position, entry)| curated(position, entry, decisions))
        .collect())
}

/// The manifest with `decision` recorded for the image named `filename`, by `decided_by`
/// at `now`; the `images` array and every other field stay as they were.
pub fn record_decision(
    manifest: &[u8],
    filename: &str,
    decision: &Decision,
    decided_by: &str,
    now: &str,
) -> Result<Vec<u8>, CurationError> {
    let mut manifest = parse(manifest)?;
    let listed = curated_in(&manifest)?
        .iter()
        .any(|image| image.filename == filename);
    if !listed {
        return Err(CurationError::UnknownImage(filename.to_owned()));
    }
    let decisions = manifest
        .entry(CURATION_FIELD)
        .or_insert_with(|| Value::Object(Map::new()));
    if !decisions.is_object() {
        *decisions = Value::Object(Map::new());
    }
    let Some(decisions) = decisions.as_object_mut() else {
        return Err(CurationError::Manifest(ManifestError::Unparseable));
    };
    let record = decisions
        .entry(filename.to_owned())
        .or_insert_with(|| json!({}));
    if !record.is_object() {
        *record = json!({});
    }
    if let Some(record) = record.as_object_mut() {
        if let Some(status) = decision.status {
            record.insert("status".to_owned(), json!(status.as_str()));
        }
        if let Some(caption) = &decision.caption {
            record.insert("caption".to_owned(), json!(caption));
        }
        record.insert("decided_by".to_owned(), json!(decided_by));
        record.insert("decided_at".to_owned(), json!(now));
    }
    manifest.insert("updated_at".to_owned(), json!(now));
    serde_json::to_vec_pretty(&Value::Object(manifest))
        .map_err(|_| ManifestError::Unparseable.into())
}

fn parse(bytes: &[u8]) -> Result<Map<String, Value>, ManifestError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ManifestError::Unparseable),
    }
}

/// One entry with its decision; `None` for an entry that names no file.
fn curated(position: usize, entry: &Value, decisions: &Map<String, Value>) -> Option<CuratedImage> {
    let field = |name: &str| entry.get(name).and_then(Value::as_str).map(str::to_owned);
    let (s3_key, filename) = match entry {
        Value::String(text) => {
            let key = key_of_location(text);
            (Some(key.clone()), file_name(&key)?)
        }
        Value::Object(_) => {
            let key = field("s3_key").or_else(|| field("s3_url").map(|url| key_of_location(&url)));
            let filename = field("filename").or_else(|| key.as_deref().and_then(file_name))?;
            (key, filename)
        }
        _ => return None,
    };
    let decision = decisions.get(&filename);
    let decided = |name: &str| decision.and_then(|d| d.get(name)).and_then(Value::as_str);
    Some(CuratedImage {
        position,
        index: entry.get("index").and_then(Value::as_u64),
        status: decided("status")
            .and_then(ImageStatus::parse)
            .unwrap_or(ImageStatus::New),
        caption: decided("caption")
            .map(str::to_owned)
            .or_else(|| field("caption")),
        prompt_id: field("prompt_id"),
        prediction_id: field("prediction_id"),
        seed: entry.get("seed").and_then(Value::as_u64),
        created_at: field("created_at"),
        created_by: field("created_by"),
        decided_by: decided("decided_by").map(str::to_owned),
        decided_at: decided("decided_at").map(str::to_owned),
        s3_key,
        filename,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Vec<u8> {
        serde_json::to_vec(&json!({
            "actor": "a",
            "images": [
                "https://b.s3.amazonaws.com/system_actors/training_data/a/old_1.jpg?x=1",
                {"s3_url": "https://b.s3.amazonaws.com/system_actors/training_data/a/old_2.jpg"},
                {"index": 1, "filename": "a_1.jpg", "s3_key": "system_actors/training_data/a/a_1.jpg",
                 "caption": "[trigger], ink", "prompt_id": "bw_pen_ink", "created_at": "t1"},
                42,
            ],
        }))
        .unwrap()
    }

    #[test]
    fn every_entry_that_names_a_file_is_listed_new_in_its_order() {
        let images = curated_images(Some(&manifest())).unwrap();
        let names: Vec<_> = images.iter().map(|i| i.filename.as_str()).collect();
        assert_eq!(names, ["old_1.jpg", "old_2.jpg", "a_1.jpg"]);
        assert_eq!(
            images[0].s3_key.as_deref(),
            Some("system_actors/training_data/a/old_1.jpg")
        );
        assert!(images.iter().all(|i| i.status == ImageStatus::New));
        assert_eq!((images[0].index, images[2].index), (None, Some(1)));
        assert_eq!(images[2].caption.as_deref(), Some("[trigger], ink"));
        assert_eq!(images[2].position, 2);
        assert!(curated_images(None).unwrap().is_empty());
    }

    #[test]
    fn a_decision_is_recorded_beside_the_images_which_stay_as_they_were() {
        let before = manifest();
        let keep = Decision::new(Some("kept"), None).unwrap();
        let after = record_decision(&before, "old_1.jpg", &keep, "jwt:artist", "t2").unwrap();
        let fix = Decision::new(None, Some("[trigger] in ink")).unwrap();
        let after = record_decision(&after, "a_1.jpg", &fix, "jwt:other", "t3").unwrap();
        let (was, now): (Value, Value) = (
            serde_json::from_slice(&before).unwrap(),
            serde_json::from_slice(&after).unwrap(),
        );
        assert_eq!(was["images"], now["images"]);
        assert_eq!(now["actor"], "a");
        let images = curated_images(Some(&after)).unwrap();
        assert_eq!(images[0].status, ImageStatus::Kept);
        assert_eq!(images[0].decided_by.as_deref(), Some("jwt:artist"));
        assert_eq!(images[2].status, ImageStatus::New);
        assert_eq!(images[2].caption.as_deref(), Some("[trigger] in ink"));
        let reject = Decision::new(Some("rejected"), None).unwrap();
        let again = record_decision(&after, "a_1.jpg", &reject, "jwt:x", "t4").unwrap();
        let images = curated_images(Some(&again)).unwrap();
        assert_eq!(images[2].status, ImageStatus::Rejected);
        assert_eq!(images[2].caption.as_deref(), Some("[trigger] in ink"));
    }

    #[test]
    fn a_bad_decision_or_an_unknown_image_is_refused() {
        assert!(Decision::new(None, None).is_err());
        assert!(Decision::new(Some("maybe"), None).is_err());
        assert!(Decision::new(None, Some("two\nlines")).is_err());
        let keep = Decision::new(Some("kept"), None).unwrap();
        assert_eq!(
            record_decision(&manifest(), "nope.jpg", &keep, "x", "t"),
            Err(CurationError::UnknownImage("nope.jpg".to_owned()))
        );
    }
}
