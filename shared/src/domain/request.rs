//! An image request: what the caller asks for, checked against the rules before anything is
//! read, written or paid for, and the actor it is for, resolved from its profile.

use sha2::{Digest, Sha256};
use thiserror::Error;

use super::actor::{ActorId, ActorProfile, Descriptor, validate_identifier};
use super::base_photo::{BaseImagePrefixes, IMAGE_EXTENSIONS};
use super::caption::{checked_caption, custom_prompt_caption};
use super::prompts::{PromptCategory, preset};

/// The longest custom prompt, in Unicode characters.
pub const MAX_PROMPT_CHARS: usize = 1_000;
/// The largest seed accepted (the largest integer a JavaScript client sends exactly).
pub const MAX_SEED: u64 = (1 << 53) - 1;

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

/// What a caller asks for: an image of an actor, from a preset or a custom prompt. The
/// entry reads it from an HTTP body or a direct job; every field is checked here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageRequest {
    /// The actor's name; the profile's when absent.
    pub actor_name: Option<String>,
    /// The base photo: a key or `s3://bucket/key`; the profile's when absent.
    pub base_image_path: Option<String>,
    /// A preset's id.
    pub prompt_id: Option<String>,
    /// A custom prompt, used when there is no `prompt_id`.
    pub prompt: Option<String>,
    /// A seed for a reproducible result.
    pub seed: Option<u64>,
    /// The image's caption for a LoRA trainer, when the caller writes its own (most useful
    /// with a custom prompt); the preset's, or the custom prompt's own words, when absent.
    pub caption: Option<String>,
    /// Who asks (`jwt:{subject}`, as the entry tells it), recorded with the image as its
    /// `created_by`; not part of what is asked, so not in the fingerprint.
    pub requested_by: Option<String>,
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
    /// The image's caption, with [`TRIGGER_TOKEN`](super::caption::TRIGGER_TOKEN) where the
    /// actor's trigger word goes.
    pub caption: String,
}

/// The parts of a request that need no lookup, checked: everything is valid before the first
/// read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedRequest {
    /// The request's actor name, if it gave one (valid).
    pub actor_name: Option<String>,
    /// The request's base photo key, if it gave one (valid, in the bucket).
    pub base_image_key: Option<String>,
    /// The preset, or the custom prompt's text.
    pub prompt: PromptRequest,
    /// The seed.
    pub seed: Option<u64>,
    /// The caller's own caption (valid), if it gave one.
    pub caption: Option<String>,
}

impl CheckedRequest {
    /// The prompt for an actor with this descriptor, captioned with the caller's caption or
    /// else the prompt's own.
    pub fn choose_prompt(&self, descriptor: Descriptor) -> PromptChoice {
        let mut choice = self.prompt.choose(descriptor);
        if let Some(caption) = &self.caption {
            choice.caption.clone_from(caption);
        }
        choice
    }
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
                    caption: preset.map(|p| p.caption.to_owned()).unwrap_or_default(),
                }
            }
            Self::Custom(text) => PromptChoice {
                prompt_id: None,
                category: None,
                text: text.clone(),
                caption: custom_prompt_caption(text),
            },
        }
    }
}

impl ImageRequest {
    /// Checks every field that needs no lookup. `bucket` is the configured bucket, the only
    /// one an `s3://` path may name.
    pub fn check(&self, bucket: &str) -> Result<CheckedRequest, RequestError> {
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
        let caption = self
            .caption
            .as_deref()
            .map(|caption| checked_caption(caption).map_err(RequestError::Malformed))
            .transpose()?;
        if self.seed.is_some_and(|seed| seed > MAX_SEED) {
            return Err(RequestError::Malformed(format!(
                "seed must be at most {MAX_SEED}"
            )));
        }
        Ok(CheckedRequest {
            actor_name: self.actor_name.clone(),
            base_image_key,
            prompt,
            seed: self.seed,
            caption,
        })
    }

    /// A hash of what the request asks for (every field that changes the result) for
    /// `actor_id`, so that an idempotency key reused with another request is caught.
    pub fn fingerprint(&self, actor_id: &ActorId) -> String {
        let mut canonical = format!(
            "{actor_id}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
            self.actor_name, self.base_image_path, self.prompt_id, self.prompt, self.seed
        );
        // Only when given: the fingerprints of requests without one stay as they were.
        if let Some(caption) = &self.caption {
            canonical.push_str(&format!("\n{caption:?}"));
        }
        Sha256::digest(canonical.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
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
    body: &CheckedRequest,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_tells_requests_apart_and_keeps_a_repeat_equal() {
        let actor = ActorId::parse("a1").unwrap();
        let request = ImageRequest {
            prompt_id: Some("bw_charcoal".to_owned()),
            seed: Some(7),
            ..ImageRequest::default()
        };
        assert_eq!(
            request.fingerprint(&actor),
            request.clone().fingerprint(&actor)
        );
        let other_seed = ImageRequest {
            seed: Some(8),
            ..request.clone()
        };
        assert_ne!(request.fingerprint(&actor), other_seed.fingerprint(&actor));
        let other_actor = ActorId::parse("a2").unwrap();
        assert_ne!(
            request.fingerprint(&actor),
            request.fingerprint(&other_actor)
        );
    }
}
