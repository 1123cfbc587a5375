//! What the emulator keeps between requests: the predictions, trainings and models it made,
//! the switches and the counts, behind one lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::{Value, json};

use crate::models::StoredModel;
use crate::training_state::StoredTraining;
use crate::{Counts, Faults};

/// One prediction as the emulator keeps it.
#[derive(Debug)]
pub(crate) struct StoredPrediction {
    pub(crate) model: String,
    pub(crate) version: String,
    pub(crate) input: Value,
    pub(crate) created: Instant,
    pub(crate) processing: Duration,
    pub(crate) starting_polls_left: u32,
    pub(crate) never_finish: bool,
    pub(crate) fail_with: Option<String>,
    pub(crate) canceled: bool,
    pub(crate) forced_success: bool,
    pub(crate) output_list: bool,
    pub(crate) output_base: String,
    /// The output JPEG, or why the input could not be used.
    pub(crate) output: Result<Bytes, String>,
}

impl StoredPrediction {
    pub(crate) fn status(&self) -> &'static str {
        if self.forced_success {
            return "succeeded";
        }
        if self.canceled {
            return "canceled";
        }
        if self.never_finish {
            return "processing";
        }
        if self.starting_polls_left > 0 {
            return "starting";
        }
        if self.created.elapsed() < self.processing {
            return "processing";
        }
        if self.fail_with.is_some() || self.output.is_err() {
            "failed"
        } else {
            "succeeded"
        }
    }

    pub(crate) fn to_json(&self, id: &str, api_base: &str) -> Value {
        let status = self.status();
        let output = (status == "succeeded").then(|| {
            let url = format!("{}/files/{id}.jpg", self.output_base);
            if self.output_list {
                json!([url])
            } else {
                json!(url)
            }
        });
        let error = (status == "failed").then(|| {
            self.fail_with
                .clone()
                .or_else(|| self.output.as_ref().err().cloned())
        });
        json!({
            "id": id,
            "model": self.model,
            "version": self.version,
            "input": self.input,
            "status": status,
            "output": output,
            "error": error,
            "logs": "",
            "urls": {
                "get": format!("{api_base}/v1/predictions/{id}"),
                "cancel": format!("{api_base}/v1/predictions/{id}/cancel"),
            },
        })
    }
}

/// Everything behind the lock; `Default` is a fresh emulator.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) faults: Faults,
    pub(crate) counts: Counts,
    pub(crate) predictions: HashMap<String, StoredPrediction>,
    pub(crate) next_id: u64,
    /// The trainings, oldest first.
    pub(crate) trainings: Vec<StoredTraining>,
    pub(crate) next_training_id: u64,
    /// The models created with `POST /v1/models`, by `owner/name`.
    pub(crate) models: BTreeMap<String, StoredModel>,
}

impl Inner {
    /// The training with this id.
    pub(crate) fn training(&self, id: &str) -> Option<&StoredTraining> {
        self.trainings.iter().find(|training| training.id == id)
    }

    /// The training with this id, to change.
    pub(crate) fn training_mut(&mut self, id: &str) -> Option<&mut StoredTraining> {
        self.trainings.iter_mut().find(|training| training.id == id)
    }
}

/// What every handler shares: the lock, and what is fixed when the emulator starts.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
    pub(crate) base_url: String,
    pub(crate) token: Option<String>,
    pub(crate) fetcher: reqwest::Client,
    /// The `whsec_` secret webhooks are signed with.
    pub(crate) webhook_secret: String,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock only happens in a broken test; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub(crate) type AppState = Arc<Shared>;
