//! Exports: a trainer-ready zip of an actor's curated images. What an export takes (kept
//! images, or every image not rejected), how its files are named (each image beside a
//! same-name `.txt` caption, as the LoRA trainers read them), what a caption says (the
//! manifest's, the authority, with the trigger word in place of [`TRIGGER_TOKEN`]) and the
//! `dataset.json` that lists them.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::actor::ActorId;
use super::caption::TRIGGER_TOKEN;
use super::curation::{CuratedImage, ImageStatus};

/// An export's id.
pub type ExportId = super::ulid::Ulid;

/// The fewest images an export takes unless configured otherwise: the trainers' minimum.
pub const DEFAULT_MIN_IMAGES: usize = 10;

/// The longest trigger word accepted.
pub const MAX_TRIGGER_WORD_LEN: usize = 64;

/// The name of the export's list of its files, at the zip's root.
pub const DATASET_FILE: &str = "dataset.json";

/// Which images an export takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    /// Only the images an artist kept.
    Kept,
    /// Every image not rejected (kept and undecided ones).
    NotRejected,
}

impl Include {
    /// The choice as the API and the records write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kept => "kept",
            Self::NotRejected => "not_rejected",
        }
    }

    /// The choice named `text`, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "kept" => Some(Self::Kept),
            "not_rejected" => Some(Self::NotRejected),
            _ => None,
        }
    }

    /// Whether an image of `status` goes into the export.
    pub fn admits(self, status: ImageStatus) -> bool {
        match self {
            Self::Kept => status == ImageStatus::Kept,
            Self::NotRejected => status != ImageStatus::Rejected,
        }
    }
}

/// An export as asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRequest {
    /// Which images it takes.
    pub include: Include,
    /// The word for `[trigger]`, when the caller gives one (else the actor's).
    pub trigger_word: Option<String>,
}

/// An export refused, or not found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// Fewer images qualify than a trainer needs.
    #[error("{qualifying} images qualify (include {include}); an export needs at least {minimum}")]
    TooFewImages {
        /// How many qualify.
        qualifying: usize,
        /// The least an export takes.
        minimum: usize,
        /// The request's choice.
        include: &'static str,
    },
    /// No export of this actor has this id (another actor's is not told apart).
    #[error("export {0} not found")]
    NotFound(String),
}

impl ExportRequest {
    /// The request in a POST body: `{"include"?: "kept"|"not_rejected", "trigger_word"?}`
    /// (`include` defaults to `kept`); no other field is accepted.
    pub fn from_body(body: &Value) -> Result<Self, ExportError> {
        let invalid = |message: &str| ExportError::Invalid(message.to_owned());
        let fields = body
            .as_object()
            .ok_or_else(|| invalid("the body must be a JSON object"))?;
        if let Some(unknown) = fields
            .keys()
            .find(|name| !["include", "trigger_word"].contains(&name.as_str()))
        {
            return Err(ExportError::Invalid(format!(
                "unknown field {unknown:?}: send include and trigger_word only"
            )));
        }
        let include = match fields.get("include") {
            None | Some(Value::Null) => Include::Kept,
            Some(Value::String(text)) => Include::parse(text)
                .ok_or_else(|| invalid("include must be kept or not_rejected"))?,
            Some(_) => return Err(invalid("include must be kept or not_rejected")),
        };
        let trigger_word = match fields.get("trigger_word") {
            None | Some(Value::Null) => None,
            Some(Value::String(word)) => Some(checked_trigger_word(word)?),
            Some(_) => return Err(invalid("trigger_word must be a string")),
        };
        Ok(Self {
            include,
            trigger_word,
        })
    }
}

/// A trigger word as given: trimmed, 1 to [`MAX_TRIGGER_WORD_LEN`] letters, digits, `_` or
/// `-` (one token, as the trainers' `trigger_word` is; no brackets, so it can never be read
/// as the token it replaces).
pub fn checked_trigger_word(word: &str) -> Result<String, ExportError> {
    let word = word.trim();
    let valid = !word.is_empty()
        && word.chars().count() <= MAX_TRIGGER_WORD_LEN
        && word
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(word.to_owned())
    } else {
        Err(ExportError::Invalid(format!(
            "trigger_word must be 1 to {MAX_TRIGGER_WORD_LEN} letters, digits, _ or -"
        )))
    }
}

/// Where an export is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportStatus {
    /// Accepted; its zip is being written.
    Running,
    /// Its zip is stored.
    Done,
    /// It ended without a zip (nothing is left in the bucket).
    Failed,
}

impl ExportStatus {
    /// The status as the API and the records write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    /// The status named `text`, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "running" => Some(Self::Running),
            "done" => Some(Self::Done),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One export, as recorded from its request to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRecord {
    /// Its id.
    pub export_id: ExportId,
    /// The actor it is for.
    pub actor_id: ActorId,
    /// The actor's name (its folders).
    pub actor_name: String,
    /// Which images it takes.
    pub include: Include,
    /// The word its captions hold for `[trigger]`.
    pub trigger_word: String,
    /// Where it is.
    pub status: ExportStatus,
    /// Who asked for it.
    pub requested_by: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// The zip's key (written only when done).
    pub key: String,
    /// When it ended (RFC 3339).
    pub finished_at: Option<String>,
    /// The zip's size in bytes, when done.
    pub size: Option<u64>,
    /// The image files in the zip, when done.
    pub count: Option<usize>,
    /// Why it failed.
    pub error: Option<String>,
}

/// One image of an export and the caption beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    /// The image's object key.
    pub image_key: String,
    /// Its name in the zip (its file name in the folder).
    pub image_name: String,
    /// Its caption's name in the zip: the same base name, `.txt`.
    pub caption_name: String,
    /// The caption, with the trigger word in place of [`TRIGGER_TOKEN`].
    pub caption: String,
    /// The preset it was made with.
    pub prompt_id: Option<String>,
    /// Its seed.
    pub seed: Option<u64>,
    /// The prediction that made it.
    pub prediction_id: Option<String>,
}

/// The files of an export of `images` (a manifest's, in its order): the images `include`
/// admits that name an object, each name once, captioned with `trigger_word`. An image
/// with no caption in the manifest (an old one) gets the trigger word alone.
pub fn export_files(
    images: &[CuratedImage],
    include: Include,
    trigger_word: &str,
) -> Vec<ExportFile> {
    let mut names = HashSet::new();
    images
        .iter()
        .filter(|image| include.admits(image.status))
        .filter_map(|image| {
            let image_key = image.s3_key.clone()?;
            let stem = image
                .filename
                .rsplit_once('.')
                .map_or(image.filename.as_str(), |(stem, _)| stem);
            let caption_name = format!("{stem}.txt");
            let fresh = image.filename != DATASET_FILE
                && names.insert(image.filename.clone())
                && names.insert(caption_name.clone());
            fresh.then(|| ExportFile {
                image_key,
                image_name: image.filename.clone(),
                caption_name,
                caption: image
                    .caption
                    .as_deref()
                    .unwrap_or(TRIGGER_TOKEN)
                    .replace(TRIGGER_TOKEN, trigger_word),
                prompt_id: image.prompt_id.clone(),
                seed: image.seed,
                prediction_id: image.prediction_id.clone(),
            })
        })
        .collect()
}

/// The export's `dataset.json`: who, which word, how many, and each file's origin.
pub fn dataset_json(record: &ExportRecord, files: &[ExportFile]) -> Vec<u8> {
    let listed: Vec<Value> = files
        .iter()
        .map(|file| {
            json!({
                "image": file.image_name,
                "caption_file": file.caption_name,
                "caption": file.caption,
                "prompt_id": file.prompt_id,
                "seed": file.seed,
                "prediction_id": file.prediction_id,
            })
        })
        .collect();
    let dataset = json!({
        "export_id": record.export_id.as_str(),
        "actor_id": record.actor_id.as_str(),
        "actor_name": record.actor_name,
        "trigger_word": record.trigger_word,
        "include": record.include.as_str(),
        "count": files.len(),
        "created_at": record.created_at,
        "files": listed,
    });
    serde_json::to_vec_pretty(&dataset).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(n: usize, status: ImageStatus, caption: Option<&str>) -> CuratedImage {
        CuratedImage {
            position: n,
            filename: format!("a_{n}.jpg"),
            index: Some(n as u64),
            s3_key: Some(format!("system_actors/training_data/a/a_{n}.jpg")),
            status,
            caption: caption.map(str::to_owned),
            prompt_id: Some("bw_pen_ink".to_owned()),
            seed: Some(n as u64 * 10),
            prediction_id: Some(format!("p{n}")),
            created_at: None,
            created_by: None,
            decided_by: None,
            decided_at: None,
        }
    }

    #[test]
    fn kept_takes_only_kept_images_and_not_rejected_the_undecided_too() {
        let images = [
            image(
                1,
                ImageStatus::Kept,
                Some("[trigger], ink, [trigger] again"),
            ),
            image(2, ImageStatus::New, None),
            image(3, ImageStatus::Rejected, Some("x")),
        ];
        let kept = export_files(&images, Include::Kept, "zed_1a2b");
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].caption, "zed_1a2b, ink, zed_1a2b again");
        assert_eq!(kept[0].caption_name, "a_1.txt");
        assert_eq!(kept[0].seed, Some(10));
        let open = export_files(&images, Include::NotRejected, "zed");
        let names: Vec<_> = open.iter().map(|f| f.image_name.as_str()).collect();
        assert_eq!(names, ["a_1.jpg", "a_2.jpg"]);
        assert_eq!(open[1].caption, "zed", "no caption: the word alone");
    }

    #[test]
    fn a_name_is_exported_once_and_an_entry_without_a_key_not_at_all() {
        let mut keyless = image(2, ImageStatus::Kept, None);
        keyless.s3_key = None;
        let mut dataset = image(3, ImageStatus::Kept, None);
        dataset.filename = DATASET_FILE.to_owned();
        let images = [
            image(1, ImageStatus::Kept, None),
            image(1, ImageStatus::Kept, None),
            keyless,
            dataset,
        ];
        assert_eq!(export_files(&images, Include::Kept, "w").len(), 1);
    }

    #[test]
    fn a_body_is_checked_field_by_field() {
        let default = ExportRequest::from_body(&json!({})).unwrap();
        assert_eq!(default.include, Include::Kept);
        let asked =
            ExportRequest::from_body(&json!({"include": "not_rejected", "trigger_word": " TOK "}))
                .unwrap();
        assert_eq!(asked.include, Include::NotRejected);
        assert_eq!(asked.trigger_word.as_deref(), Some("TOK"));
        for bad in [
            json!([]),
            json!({"include": "all"}),
            json!({"include": 1}),
            json!({"trigger_word": ""}),
            json!({"trigger_word": "two words"}),
            json!({"trigger_word": "[trigger]"}),
            json!({"trigger_word": "x".repeat(65)}),
            json!({"extra": true}),
        ] {
            assert!(
                matches!(ExportRequest::from_body(&bad), Err(ExportError::Invalid(_))),
                "{bad}"
            );
        }
    }
}
