//! What a training request may ask: an export of this actor's (else one of the kept images
//! is made first), a trigger word, the trainer's steps and the LoRA's rank, each checked
//! before anything is written.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::actor::ActorId;
use super::export::{ExportId, checked_trigger_word};
use super::training::TrainingError;

/// The trainer's steps unless asked otherwise (ostris/flux-dev-lora-trainer's default).
pub const DEFAULT_STEPS: u32 = 1000;
/// The fewest and most steps accepted (the trainer's bounds).
pub const STEPS: std::ops::RangeInclusive<u32> = 3..=6000;
/// The LoRA's rank unless asked otherwise.
pub const DEFAULT_LORA_RANK: u32 = 16;
/// The ranks accepted.
pub const LORA_RANKS: std::ops::RangeInclusive<u32> = 1..=128;

/// A training as asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingRequest {
    /// The export to train on, when given (it must be the actor's).
    pub export_id: Option<ExportId>,
    /// The trigger word, when given (else the export's, or the actor's).
    pub trigger_word: Option<String>,
    /// The trainer's steps.
    pub steps: u32,
    /// The LoRA's rank.
    pub lora_rank: u32,
}

impl TrainingRequest {
    /// The request in a POST body: `{"export_id"?, "trigger_word"?, "steps"?,
    /// "lora_rank"?}`; no other field is accepted.
    pub fn from_body(body: &Value) -> Result<Self, TrainingError> {
        let invalid = |message: &str| TrainingError::Invalid(message.to_owned());
        let fields = body
            .as_object()
            .ok_or_else(|| invalid("the body must be a JSON object"))?;
        const FIELDS: [&str; 4] = ["export_id", "trigger_word", "steps", "lora_rank"];
        if let Some(unknown) = fields.keys().find(|name| !FIELDS.contains(&name.as_str())) {
            return Err(TrainingError::Invalid(format!(
                "unknown field {unknown:?}: send export_id, trigger_word, steps and lora_rank only"
            )));
        }
        let export_id = match fields.get("export_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => Some(
                ExportId::parse(id).ok_or_else(|| invalid("export_id is not an export's id"))?,
            ),
            Some(_) => return Err(invalid("export_id must be a string")),
        };
        let trigger_word = match fields.get("trigger_word") {
            None | Some(Value::Null) => None,
            Some(Value::String(word)) => Some(
                checked_trigger_word(word)
                    .map_err(|error| TrainingError::Invalid(error.to_string()))?,
            ),
            Some(_) => return Err(invalid("trigger_word must be a string")),
        };
        Ok(Self {
            export_id,
            trigger_word,
            steps: bounded(fields.get("steps"), "steps", DEFAULT_STEPS, STEPS)?,
            lora_rank: bounded(
                fields.get("lora_rank"),
                "lora_rank",
                DEFAULT_LORA_RANK,
                LORA_RANKS,
            )?,
        })
    }

    /// A hash of what makes two requests the same (for an idempotency key's check).
    pub fn fingerprint(&self, actor_id: &ActorId) -> String {
        let canonical = format!(
            "training\n{actor_id}\n{:?}\n{:?}\n{}\n{}",
            self.export_id.as_ref().map(ExportId::as_str),
            self.trigger_word,
            self.steps,
            self.lora_rank
        );
        Sha256::digest(canonical.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// An integer field within `range`, or `default` when absent.
fn bounded(
    value: Option<&Value>,
    name: &str,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, TrainingError> {
    let out_of_range = || {
        TrainingError::Invalid(format!(
            "{name} must be an integer from {} to {}",
            range.start(),
            range.end()
        ))
    };
    match value {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(number)) => number
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| range.contains(n))
            .ok_or_else(out_of_range),
        Some(_) => Err(out_of_range()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_empty_body_asks_for_the_defaults() {
        let request = TrainingRequest::from_body(&json!({})).unwrap();
        assert_eq!(
            request,
            TrainingRequest {
                export_id: None,
                trigger_word: None,
                steps: DEFAULT_STEPS,
                lora_rank: DEFAULT_LORA_RANK,
            }
        );
    }

    #[test]
    fn each_field_is_checked() {
        let export = "01KBN5Z7Q0000000000000000A";
        let request = TrainingRequest::from_body(&json!({
            "export_id": export, "trigger_word": " ZARA ", "steps": 500, "lora_rank": 32
        }))
        .unwrap();
        assert_eq!(request.export_id.unwrap().as_str(), export);
        assert_eq!(request.trigger_word.as_deref(), Some("ZARA"));
        assert_eq!((request.steps, request.lora_rank), (500, 32));
        for bad in [
            json!([]),
            json!({"export_id": "nope"}),
            json!({"export_id": 7}),
            json!({"trigger_word": "two words"}),
            json!({"steps": 2}),
            json!({"steps": 6001}),
            json!({"steps": 1.5}),
            json!({"steps": "100"}),
            json!({"lora_rank": 0}),
            json!({"lora_rank": 129}),
            json!({"learning_rate": 0.1}),
        ] {
            assert!(
                matches!(
                    TrainingRequest::from_body(&bad),
                    Err(TrainingError::Invalid(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_fingerprint_tells_requests_and_actors_apart() {
        let actor = ActorId::parse("a1").unwrap();
        let other = ActorId::parse("a2").unwrap();
        let base = TrainingRequest::from_body(&json!({})).unwrap();
        let more_steps = TrainingRequest::from_body(&json!({"steps": 2000})).unwrap();
        assert_eq!(base.fingerprint(&actor), base.fingerprint(&actor));
        assert_ne!(base.fingerprint(&actor), base.fingerprint(&other));
        assert_ne!(base.fingerprint(&actor), more_steps.fingerprint(&actor));
    }
}
