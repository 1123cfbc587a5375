//! Trainings: a LoRA trained on Replicate from an export of an actor's images. Their states
//! (ours before Replicate has the training, Replicate's own words after), the record kept of
//! each, where its model and weights go (the naming of the destination), and what the
//! artist sees of its logs and cost.

use super::actor::ActorId;
use super::export::ExportId;

/// A training's id (ours; Replicate's is kept beside it).
pub type TrainingId = super::ulid::Ulid;

/// The most log lines a training's status shows (the end of Replicate's logs).
pub const LOG_TAIL_LINES: usize = 20;
/// The most bytes of log a training's record keeps.
pub const LOG_TAIL_BYTES: usize = 4096;

/// Where a training is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainingStatus {
    /// Its export is being written; Replicate has nothing yet.
    Exporting,
    /// The create is being sent to Replicate (or its answer was lost): reported as
    /// `starting`, as Replicate would.
    Creating,
    /// Replicate's `starting`.
    Starting,
    /// Replicate's `processing`.
    Processing,
    /// Replicate's `succeeded`: its weights are in the bucket.
    Succeeded,
    /// Replicate's `failed`, or ours before Replicate had it (the export failed, the create
    /// was refused).
    Failed,
    /// Replicate's `canceled`, or canceled while exporting.
    Canceled,
}

impl TrainingStatus {
    /// The status as the record stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exporting => "exporting",
            Self::Creating => "creating",
            Self::Starting => "starting",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    /// The status as the API reports it: `exporting`, then Replicate's words.
    pub fn reported(self) -> &'static str {
        match self {
            Self::Creating => Self::Starting.as_str(),
            other => other.as_str(),
        }
    }

    /// The stored status `text`, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Exporting,
            Self::Creating,
            Self::Starting,
            Self::Processing,
            Self::Succeeded,
            Self::Failed,
            Self::Canceled,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }

    /// Replicate's status `text` (`starting`, `processing`, `succeeded`, `failed`,
    /// `canceled`; `aborted` is taken as failed), if it is one.
    pub fn from_replicate(text: &str) -> Option<Self> {
        if text == "aborted" {
            // Stopped by Replicate itself: an end, not a run.
            return Some(Self::Failed);
        }
        Self::parse(text).filter(|status| !matches!(status, Self::Exporting | Self::Creating))
    }

    /// Whether the training has ended: nothing about it changes any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }
}

/// A training refused, or not found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrainingError {
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// No training of this actor has this id (another actor's is not told apart).
    #[error("training {0} not found")]
    NotFound(String),
    /// A training of this actor is running: one at a time.
    #[error("training {running} is still running for this actor; wait for it or cancel it")]
    AlreadyRunning {
        /// The running training.
        running: String,
    },
    /// The export asked for failed: there is no zip to train on.
    #[error("export {0} failed; ask for a new export or leave export_id out")]
    ExportFailed(String),
    /// The training is being handed to Replicate this moment: it can be canceled once
    /// Replicate has it.
    #[error("training {0} is being handed to Replicate; cancel it again in a moment")]
    BeingCreated(String),
    /// The training has ended: it cannot be canceled.
    #[error("training {training_id} has {status} already")]
    Ended {
        /// The training.
        training_id: String,
        /// How it ended.
        status: &'static str,
    },
    /// Replicate could not be reached, or failed, before anything was created.
    #[error("Replicate is unavailable; try again shortly")]
    TrainerUnavailable,
}

/// A Replicate model, `owner/name`: where a training's versions go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelName {
    /// The user or organisation.
    pub owner: String,
    /// The model's name.
    pub name: String,
}

impl ModelName {
    /// `owner/name` if both parts are Replicate names (lower-case letters, digits, `-`,
    /// `_`, `.`; not starting with punctuation).
    pub fn parse(text: &str) -> Option<Self> {
        let (owner, name) = text.split_once('/')?;
        (is_model_part(owner) && is_model_part(name)).then(|| Self {
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The destination of an actor's trainings: `pattern` (`owner/name`, which may hold
    /// `{actor_name}`) with the actor's name made a model name (lower case, anything else
    /// than letters, digits, `-`, `_` or `.` as `-`). `None` when the result is not a model
    /// name.
    pub fn destination(pattern: &str, actor_name: &str) -> Option<Self> {
        let slug: String = actor_name
            .chars()
            .map(|c| {
                let c = c.to_ascii_lowercase();
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        Self::parse(&pattern.replace("{actor_name}", slug.trim_matches('-')))
    }
}

impl std::fmt::Display for ModelName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// Whether `part` is one half of a Replicate model name.
fn is_model_part(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= 100
        && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && part
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// A training as its record keeps it, from its request to its end.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingRecord {
    /// Its id.
    pub training_id: TrainingId,
    /// The actor it is for.
    pub actor_id: ActorId,
    /// The actor's name (the folders it reads and writes).
    pub actor_name: String,
    /// The export it trains on.
    pub export_id: ExportId,
    /// Where it is.
    pub status: TrainingStatus,
    /// The word the LoRA is triggered by.
    pub trigger_word: String,
    /// The trainer's steps.
    pub steps: u32,
    /// The LoRA's rank.
    pub lora_rank: u32,
    /// The model its version goes to.
    pub destination: ModelName,
    /// Who asked for it (`jwt:{subject}`).
    pub requested_by: String,
    /// When it was asked for (RFC 3339).
    pub created_at: String,
    /// Replicate's id of the training, once it has one.
    pub replicate_id: Option<String>,
    /// The end of its logs, as last read.
    pub logs: Option<String>,
    /// Why it failed, for the artist.
    pub error: Option<String>,
    /// The seconds Replicate billed, once ended.
    pub predict_time: Option<f64>,
    /// What they cost, in US dollars.
    pub cost_usd: Option<f64>,
    /// The trained version, `owner/name:hash`, once succeeded.
    pub version: Option<String>,
    /// Where its weights are in the bucket, once succeeded.
    pub weights_key: Option<String>,
    /// When it ended (RFC 3339).
    pub finished_at: Option<String>,
    /// The UTC day its budget unit was counted on.
    pub budget_day: String,
    /// The token of that unit's one refund.
    pub refund_token: String,
    /// When it is next looked at (epoch milliseconds), while it is open.
    pub look_at_ms: Option<u64>,
    /// When its create was claimed (epoch milliseconds), once it was: a `creating` one is
    /// searched for on Replicate only after its grace from then.
    pub create_claimed_ms: Option<u64>,
}

/// An actor's trained LoRA, as its record keeps it (beside the operators' profile, never
/// in it): the last training that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoraRecord {
    /// The actor.
    pub actor_id: ActorId,
    /// The trained version, `owner/name:hash`.
    pub version: String,
    /// The weights' key in the bucket.
    pub weights_key: String,
    /// The training that made it.
    pub training_id: TrainingId,
    /// When it was trained (RFC 3339).
    pub trained_at: String,
    /// The word it is triggered by.
    pub trigger_word: String,
}

/// The end of `logs`: its last [`LOG_TAIL_LINES`] lines, at most [`LOG_TAIL_BYTES`] bytes
/// (cut at a character boundary).
pub fn log_tail(logs: &str) -> String {
    let trimmed = logs.trim_end();
    let start = trimmed
        .rmatch_indices('\n')
        .nth(LOG_TAIL_LINES - 1)
        .map_or(0, |(at, _)| at + 1);
    let mut tail = &trimmed[start..];
    while tail.len() > LOG_TAIL_BYTES {
        let cut = tail.len() - LOG_TAIL_BYTES;
        let boundary = (cut..tail.len())
            .find(|at| tail.is_char_boundary(*at))
            .unwrap_or(tail.len());
        tail = &tail[boundary..];
    }
    tail.to_owned()
}

/// What `predict_time` seconds cost at `price_per_second`, in US dollars, to the cent's
/// hundredth.
pub fn cost_usd(predict_time: f64, price_per_second: f64) -> f64 {
    (predict_time.max(0.0) * price_per_second * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_reported_in_replicates_words_after_exporting() {
        assert_eq!(TrainingStatus::Creating.reported(), "starting");
        assert_eq!(TrainingStatus::Exporting.reported(), "exporting");
        for word in ["starting", "processing", "succeeded", "failed", "canceled"] {
            let status = TrainingStatus::from_replicate(word).unwrap();
            assert_eq!(status.reported(), word);
            assert_eq!(TrainingStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(TrainingStatus::from_replicate("exporting"), None);
        assert_eq!(TrainingStatus::from_replicate("creating"), None);
        assert_eq!(
            TrainingStatus::from_replicate("aborted"),
            Some(TrainingStatus::Failed)
        );
        assert!(TrainingStatus::Canceled.is_terminal() && !TrainingStatus::Creating.is_terminal());
    }

    #[test]
    fn a_destination_takes_the_actors_name_as_a_model_name() {
        let destination = ModelName::destination("studio/lora-{actor_name}", "Jane Doe_2").unwrap();
        assert_eq!(destination.to_string(), "studio/lora-jane-doe_2");
        assert_eq!(
            ModelName::destination("studio/fixed", "x").unwrap().name,
            "fixed"
        );
        for bad in ["no-slash", "a/b/c", "Upper/name", "/name", "owner/", "-o/n"] {
            assert_eq!(ModelName::parse(bad), None, "{bad}");
        }
        assert_eq!(ModelName::destination("{actor_name}/m", "***"), None);
    }

    #[test]
    fn the_log_tail_keeps_the_last_lines_within_the_byte_cap() {
        let logs: String = (1..=30).map(|n| format!("line {n}\n")).collect();
        let tail = log_tail(&logs);
        assert!(
            tail.starts_with("line 11\n") && tail.ends_with("line 30"),
            "{tail}"
        );
        let long = "é".repeat(LOG_TAIL_BYTES);
        let tail = log_tail(&long);
        assert!(tail.len() <= LOG_TAIL_BYTES && tail.chars().all(|c| c == 'é'));
        assert_eq!(log_tail(""), "");
    }

    #[test]
    fn cost_is_the_billed_seconds_times_the_price() {
        assert_eq!(cost_usd(1234.5, 0.001528), 1.8863);
        assert_eq!(cost_usd(-1.0, 0.5), 0.0);
    }
}
