//! A generation request: what the caller sent, checked against the rules before anything is
//! read, written or paid for; and the names and keys of what a generation stores.

use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

use super::actor::{ActorId, ActorProfile, Descriptor, validate_identifier};
use super::base_photo::BaseImagePrefixes;
use super::prompts::{PromptCategory, preset};

/// The prefix of every actor's training data.
pub const TRAINING_DATA_PREFIX: &str = "system_actors/training_data/";
/// The longest custom prompt, in Unicode characters.
pub const MAX_PROMPT_CHARS: usize = 1_000;
/// The largest seed accepted (the largest integer a JavaScript client sends exactly).
pub const MAX_SEED: u64 = (1 << 53) - 1;
/// Extensions a base photo may have.
pub const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];

/// Why a request is refused before anything happens.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    /// The body is not what the API takes (bad JSON, wrong types, bad values).
    #[error("{0}")]
    Malformed(String),
    /// An actor id or name breaks the identifier rule.
    #[error(transparent)]
    Identifier(#[from] super::actor::ValidationError),
    /// `prompt_id` names no preset.
    #[error("unknown prompt_id {0:?}")]
    UnknownPromptId(String),
    /// The body's `actor_name` is not the actor's (its profile's, else its id).
    #[error("actor_name {given:?} is not this actor's name ({actor_name:?})")]
    ActorNameMismatch {
        /// What the body said.
        given: String,
        /// The actor's name.
        actor_name: String,
    },
    /// Neither the body nor a profile names the actor's base photo.
    #[error("actor {0} has no profile with a base photo; send base_image_path")]
    UnknownActor(String),
    /// The base photo is not one this actor may use. The message says where its photos may
    /// be, never whether the key exists.
    #[error("base_image_path is not a photo this actor may use{}", describe_allowed(.allowed))]
    BaseImageNotAllowed {
        /// The actor's allowed prefixes.
        allowed: Vec<String>,
    },
    /// The base photo path breaks the key rule (`..`, empty segments, extension).
    #[error("base_image_path {path:?}: {reason}")]
    BadBaseImagePath {
        /// The path as given.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The base photo does not exist.
    #[error("base photo {0} not found")]
    BaseImageNotFound(String),
    /// The base photo is not a JPEG, PNG or WebP image.
    #[error("base photo {0} is not an image")]
    BaseImageNotAnImage(String),
    /// The base photo is larger than the cap.
    #[error("base photo {key} is {size} bytes; the limit is {limit}")]
    BaseImageTooLarge {
        /// The photo's key.
        key: String,
        /// Its size.
        size: u64,
        /// The cap.
        limit: u64,
    },
}

/// The request body the web UI sends (and direct invocations, with `actor_id`). Unknown
/// fields are ignored; known ones must have the right types.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct GenerateBody {
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
}

impl GenerateBody {
    /// Reads a body from JSON, with a message that says what is wrong.
    pub fn from_json(value: Value) -> Result<Self, RequestError> {
        if !value.is_object() {
            return Err(RequestError::Malformed(
                "the body must be a JSON object".to_owned(),
            ));
        }
        serde_json::from_value(value).map_err(|error| RequestError::Malformed(error.to_string()))
    }
}

/// The prompt a generation uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptChoice {
    /// The preset's id, or `None` for a custom prompt.
    pub prompt_id: Option<&'static str>,
    /// The preset's category, or `None` for a custom prompt.
    pub category: Option<PromptCategory>,
    /// The text sent to the model.
    pub text: String,
}

/// The parts of a body that need no lookup, checked: everything is valid before the first read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedBody {
    /// The body's actor name, if it gave one (valid).
    pub actor_name: Option<String>,
    /// The body's base photo key, if it gave one (valid, in the bucket).
    pub base_image_key: Option<String>,
    /// The preset, or the custom prompt's text.
    pub prompt: PromptRequest,
    /// The seed.
    pub seed: Option<u64>,
}

/// What the caller asked for as a prompt, before the descriptor is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptRequest {
    /// A preset by id.
    Preset(&'static str),
    /// A custom prompt, sent as written.
    Custom(String),
}

impl PromptRequest {
    /// The prompt for an actor with this descriptor.
    pub fn choose(&self, descriptor: Descriptor) -> PromptChoice {
        match self {
            Self::Preset(id) => {
                let preset = preset(id);
                PromptChoice {
                    prompt_id: preset.map(|p| p.id),
                    category: preset.map(|p| p.category),
                    text: preset.map(|p| p.render(descriptor)).unwrap_or_default(),
                }
            }
            Self::Custom(text) => PromptChoice {
                prompt_id: None,
                category: None,
                text: text.clone(),
            },
        }
    }
}

impl GenerateBody {
    /// Checks every field that needs no lookup. `bucket` is the configured bucket, the only
    /// one an `s3://` path may name.
    pub fn check(&self, bucket: &str) -> Result<CheckedBody, RequestError> {
        if let Some(name) = &self.actor_name {
            validate_identifier("actor name", name)?;
        }
        let base_image_key = self
            .base_image_path
            .as_deref()
            .map(|path| base_image_key(path, bucket))
            .transpose()?;
        let prompt = match (&self.prompt_id, &self.prompt) {
            (Some(id), _) => match preset(id) {
                Some(preset) => PromptRequest::Preset(preset.id),
                None => return Err(RequestError::UnknownPromptId(id.clone())),
            },
            (None, Some(text)) => PromptRequest::Custom(check_custom_prompt(text)?),
            (None, None) => {
                return Err(RequestError::Malformed(
                    "send prompt_id (a preset) or prompt (a custom prompt)".to_owned(),
                ));
            }
        };
        if self.seed.is_some_and(|seed| seed > MAX_SEED) {
            return Err(RequestError::Malformed(format!(
                "seed must be at most {MAX_SEED}"
            )));
        }
        Ok(CheckedBody {
            actor_name: self.actor_name.clone(),
            base_image_key,
            prompt,
            seed: self.seed,
        })
    }
}

/// Where a refused base photo may be instead, for the refusal's message.
fn describe_allowed(allowed: &[String]) -> String {
    if allowed.is_empty() {
        return String::new();
    }
    format!(
        ": send the profile's photo or a key under {}",
        allowed.join(" or ")
    )
}

fn check_custom_prompt(text: &str) -> Result<String, RequestError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(RequestError::Malformed(
            "prompt must not be empty".to_owned(),
        ));
    }
    let chars = text.chars().count();
    if chars > MAX_PROMPT_CHARS {
        return Err(RequestError::Malformed(format!(
            "prompt is {chars} characters; the limit is {MAX_PROMPT_CHARS}"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(RequestError::Malformed(
            "prompt must not contain control characters".to_owned(),
        ));
    }
    Ok(text.to_owned())
}

/// The key of a base photo given as a key or as `s3://bucket/key`: in the configured bucket
/// (another bucket is not allowed), with no empty, `.` or `..` segment and an image
/// extension. Whose photo it may be is [`BaseImagePrefixes`]' rule.
pub fn base_image_key(path: &str, bucket: &str) -> Result<String, RequestError> {
    let bad = |reason| RequestError::BadBaseImagePath {
        path: path.to_owned(),
        reason,
    };
    let key = match path.strip_prefix("s3://") {
        Some(rest) => {
            let (path_bucket, key) = rest
                .split_once('/')
                .ok_or_else(|| bad("no key after the bucket"))?;
            if path_bucket != bucket {
                return Err(RequestError::BaseImageNotAllowed {
                    allowed: Vec::new(),
                });
            }
            key
        }
        None => path.trim_start_matches('/'),
    };
    if key.len() > 1_024 {
        return Err(bad("is longer than 1024 bytes"));
    }
    if key
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(bad("must not contain empty, '.' or '..' segments"));
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return Err(bad("must not contain control characters or backslashes"));
    }
    let extension = key
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase());
    if !extension.is_some_and(|ext| IMAGE_EXTENSIONS.contains(&ext.as_str())) {
        return Err(bad("must end in .jpg, .jpeg, .png or .webp"));
    }
    Ok(key.to_owned())
}

/// The actor a generation is for, resolved from the body and the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedActor {
    /// The actor's id.
    pub actor_id: ActorId,
    /// The actor's name (folder and file names).
    pub actor_name: String,
    /// The base photo's key.
    pub base_image_key: String,
}

/// The actor's name and base photo. The name is the profile's, else the actor's id; a body
/// name that differs is refused, so no caller writes into another actor's folder. The photo
/// is the body's when it is the profile's own or under one of the actor's allowed prefixes,
/// else the profile's.
pub fn resolve_actor(
    actor_id: &ActorId,
    body: &CheckedBody,
    profile: Option<&ActorProfile>,
    bucket: &str,
    prefixes: &BaseImagePrefixes,
) -> Result<ResolvedActor, RequestError> {
    let actor_name = match profile.and_then(|p| p.actor_name.as_deref()) {
        Some(name) => {
            validate_identifier("actor name", name)?;
            name.to_owned()
        }
        None => actor_id.as_str().to_owned(),
    };
    if let Some(given) = body
        .actor_name
        .as_ref()
        .filter(|given| **given != actor_name)
    {
        return Err(RequestError::ActorNameMismatch {
            given: given.clone(),
            actor_name,
        });
    }
    let profile_photo = profile.and_then(|p| p.base_image_key.as_deref());
    let base_image_key = match (&body.base_image_key, profile_photo) {
        (Some(key), _) if prefixes.allows(&actor_name, key) => key.clone(),
        (Some(key), Some(own)) if base_image_key(own, bucket).as_ref() == Ok(key) => key.clone(),
        (Some(_), _) => {
            return Err(RequestError::BaseImageNotAllowed {
                allowed: prefixes.for_actor(&actor_name),
            });
        }
        (None, Some(own)) => base_image_key(own, bucket)?,
        (None, None) => return Err(RequestError::UnknownActor(actor_id.to_string())),
    };
    Ok(ResolvedActor {
        actor_id: actor_id.clone(),
        actor_name,
        base_image_key,
    })
}

/// The folder of an actor's training data.
pub fn training_folder(actor_name: &str) -> String {
    format!("{TRAINING_DATA_PREFIX}{actor_name}/")
}

/// The file name of an actor's image number `index`.
pub fn image_filename(actor_name: &str, index: u64) -> String {
    format!("{actor_name}_{index}.jpg")
}

/// The key of an actor's manifest.
pub fn manifest_key(actor_name: &str) -> String {
    format!("{}response.json", training_folder(actor_name))
}

/// The index of a key in an actor's folder named `{actor_name}_{n}.jpg` (any case of the
/// extension, `.jpeg` too), if it is one.
pub fn index_of_key(actor_name: &str, key: &str) -> Option<u64> {
    let name = key.strip_prefix(&training_folder(actor_name))?;
    let rest = name.strip_prefix(actor_name)?.strip_prefix('_')?;
    let (digits, extension) = rest.split_once('.')?;
    let is_jpeg = matches!(extension.to_ascii_lowercase().as_str(), "jpg" | "jpeg");
    let valid = is_jpeg
        && !digits.is_empty()
        && digits.len() <= 12
        && digits.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| digits.parse().ok()).flatten()
}

/// What kind of image the bytes start like, by their magic numbers.
pub fn image_type(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BUCKET: &str = "story-boards-assets";

    fn body(value: Value) -> Result<CheckedBody, RequestError> {
        GenerateBody::from_json(value)?.check(BUCKET)
    }

    #[test]
    fn a_preset_request_is_checked_without_lookups() {
        let checked = body(json!({
            "actor_name": "0000_european_16_male",
            "base_image_path": "s3://story-boards-assets/system_actors/base/0000.jpg",
            "prompt_id": "bw_charcoal",
            "seed": 42,
            "something_new": true,
        }))
        .unwrap();
        assert_eq!(
            checked.base_image_key.as_deref(),
            Some("system_actors/base/0000.jpg")
        );
        assert_eq!(checked.prompt, PromptRequest::Preset("bw_charcoal"));
        let choice = checked.prompt.choose(Descriptor::Woman);
        assert!(choice.text.contains("the woman"));
        assert_eq!(choice.category, Some(PromptCategory::BwStylized));
    }

    #[test]
    fn prompt_id_wins_and_a_custom_prompt_is_trimmed_and_capped() {
        let both = body(json!({"prompt_id": "bw_woodcut", "prompt": "ignored"})).unwrap();
        assert_eq!(both.prompt, PromptRequest::Preset("bw_woodcut"));
        let custom = body(json!({"prompt": "  a portrait at dusk  "})).unwrap();
        assert_eq!(
            custom.prompt,
            PromptRequest::Custom("a portrait at dusk".to_owned())
        );
        assert!(
            body(json!({"prompt": "é".repeat(1_000)})).is_ok(),
            "1000 characters, 2000 bytes"
        );
        assert!(body(json!({"prompt": "é".repeat(1_001)})).is_err());
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for bad in [
            json!([]),
            json!("text"),
            json!({}),
            json!({"prompt_id": 7}),
            json!({"prompt_id": "nope"}),
            json!({"prompt": ""}),
            json!({"prompt": "a\u{0007}b"}),
            json!({"prompt": "x", "seed": -1}),
            json!({"prompt": "x", "seed": 1.5}),
            json!({"prompt": "x", "seed": 9_007_199_254_740_992u64}),
            json!({"prompt": "x", "actor_name": "../etc"}),
            json!({"prompt": "x", "actor_name": 5}),
            json!({"prompt": "x", "base_image_path": "system_actors/../secret.jpg"}),
            json!({"prompt": "x", "base_image_path": "s3://another-bucket/system_actors/a.jpg"}),
            json!({"prompt": "x", "base_image_path": "system_actors/notes.txt"}),
            json!({"prompt": "x", "base_image_path": "system_actors//a.jpg"}),
        ] {
            assert!(body(bad.clone()).is_err(), "{bad} was accepted");
        }
    }

    fn resolve(
        actor: &str,
        request: Value,
        profile: Option<&ActorProfile>,
    ) -> Result<ResolvedActor, RequestError> {
        resolve_actor(
            &ActorId::parse(actor).unwrap(),
            &body(request).unwrap(),
            profile,
            BUCKET,
            &BaseImagePrefixes::default(),
        )
    }

    #[test]
    fn the_profile_fills_in_and_a_different_name_is_refused() {
        let profile = ActorProfile {
            actor_name: Some("actor_one".to_owned()),
            sex: None,
            base_image_key: Some("system_actors/base/a1.png".to_owned()),
        };
        let from_profile = resolve("a1", json!({"prompt": "x"}), Some(&profile)).unwrap();
        assert_eq!(from_profile.actor_name, "actor_one");
        assert_eq!(from_profile.base_image_key, "system_actors/base/a1.png");
        // The profile's own photo is allowed outside the prefixes, in either form.
        let own = json!({"prompt": "x", "base_image_path": "s3://story-boards-assets/system_actors/base/a1.png"});
        assert!(resolve("a1", own, Some(&profile)).is_ok());
        let mismatch = json!({"prompt": "x", "actor_name": "someone_else"});
        assert!(matches!(
            resolve("a1", mismatch, Some(&profile)),
            Err(RequestError::ActorNameMismatch { .. })
        ));
        // The id is not the name when the profile says otherwise.
        assert!(matches!(
            resolve(
                "a1",
                json!({"prompt": "x", "actor_name": "a1"}),
                Some(&profile)
            ),
            Err(RequestError::ActorNameMismatch { .. })
        ));
    }

    #[test]
    fn without_a_profile_name_the_actor_is_its_id() {
        let photo = "system_actors/base_images/a1.jpg";
        let nameless = ActorProfile {
            sex: Some("male".to_owned()),
            ..ActorProfile::default()
        };
        for profile in [None, Some(&nameless)] {
            let resolved = resolve(
                "a1",
                json!({"prompt": "x", "base_image_path": photo}),
                profile,
            )
            .unwrap();
            assert_eq!(resolved.actor_name, "a1");
            let named = json!({"prompt": "x", "actor_name": "a1", "base_image_path": photo});
            assert_eq!(resolve("a1", named, profile).unwrap().actor_name, "a1");
            let other = json!({"prompt": "x", "actor_name": "a2", "base_image_path": photo});
            assert!(matches!(
                resolve("a1", other, profile),
                Err(RequestError::ActorNameMismatch { .. })
            ));
            assert!(matches!(
                resolve("a1", json!({"prompt": "x"}), profile),
                Err(RequestError::UnknownActor(_))
            ));
        }
    }

    #[test]
    fn a_photo_outside_the_actors_prefixes_is_not_allowed() {
        for path in [
            "system_actors/base_images/a2.jpg",
            "system_actors/training_data/a2/a2_1.jpg",
            "system_actors/base_images/a1_2.jpg",
            "elsewhere/a1.jpg",
            "s3://another-bucket/system_actors/base_images/a1.jpg",
        ] {
            let request = json!({"prompt": "x", "base_image_path": path});
            let refused = GenerateBody::from_json(request)
                .unwrap()
                .check(BUCKET)
                .and_then(|checked| {
                    resolve_actor(
                        &ActorId::parse("a1").unwrap(),
                        &checked,
                        None,
                        BUCKET,
                        &BaseImagePrefixes::default(),
                    )
                });
            assert!(
                matches!(refused, Err(RequestError::BaseImageNotAllowed { .. })),
                "{path}: {refused:?}"
            );
        }
        let own =
            json!({"prompt": "x", "base_image_path": "system_actors/training_data/a1/a1_3.jpg"});
        assert!(resolve("a1", own, None).is_ok());
    }

    #[test]
    fn keys_and_indices() {
        assert_eq!(image_filename("a_b", 7), "a_b_7.jpg");
        assert_eq!(
            manifest_key("a_b"),
            "system_actors/training_data/a_b/response.json"
        );
        let folder = training_folder("a_b");
        assert_eq!(
            index_of_key("a_b", &format!("{folder}a_b_12.jpg")),
            Some(12)
        );
        assert_eq!(index_of_key("a_b", &format!("{folder}a_b_3.JPEG")), Some(3));
        for not_an_index in [
            "a_b_x.jpg",
            "a_b_.jpg",
            "a_b_1.png",
            "a_b_1_2.jpg",
            "other_1.jpg",
            "response.json",
        ] {
            assert_eq!(
                index_of_key("a_b", &format!("{folder}{not_an_index}")),
                None,
                "{not_an_index}"
            );
        }
        assert_eq!(
            index_of_key("a", &format!("{}a_b_1.jpg", training_folder("a"))),
            None
        );
    }

    #[test]
    fn image_types_by_magic() {
        assert_eq!(image_type(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(image_type(b"hello world!"), None);
    }
}
