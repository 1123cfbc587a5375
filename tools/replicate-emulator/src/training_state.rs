//! One training as the emulator keeps it, and its JSON as Replicate's get-training answers
//! it: the status follows the clock (`starting`, then `processing`, then `succeeded` or
//! `failed`), the logs grow with it, and the timestamps are RFC 3339 in UTC.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One training: what its create asked for and what the switches made of it.
#[derive(Debug)]
pub(crate) struct StoredTraining {
    pub(crate) id: String,
    /// The trainer, `owner/name`.
    pub(crate) model: String,
    /// The trainer's version.
    pub(crate) version: String,
    /// The model the trained version goes to, `owner/name`.
    pub(crate) destination: String,
    pub(crate) input: Value,
    /// The webhook URL the create gave (told only if its filter includes `completed`).
    pub(crate) webhook: Option<String>,
    /// What the input zip held, for `GET /admin/trainings`.
    pub(crate) zip: Value,
    /// The images in the input zip (for the logs).
    pub(crate) images: usize,
    pub(crate) steps: u64,
    pub(crate) trigger_word: String,
    pub(crate) created: Instant,
    pub(crate) created_at: SystemTime,
    /// How long it stays `starting`.
    pub(crate) starting: Duration,
    /// When it finishes, after its create (unless it never does).
    pub(crate) finish_after: Duration,
    pub(crate) never_finish: bool,
    pub(crate) fail_with: Option<String>,
    /// `metrics.predict_time` once it succeeded or failed.
    pub(crate) predict_time: f64,
    /// When it was canceled, after its create.
    pub(crate) canceled_after: Option<Duration>,
    pub(crate) weights_bytes: usize,
    /// Where its weights are served from.
    pub(crate) output_base: String,
}

impl StoredTraining {
    /// Its status now.
    pub(crate) fn status(&self) -> &'static str {
        if self.canceled_after.is_some() {
            return "canceled";
        }
        let elapsed = self.created.elapsed();
        if elapsed < self.starting {
            "starting"
        } else if self.never_finish || elapsed < self.finish_after {
            "processing"
        } else if self.fail_with.is_some() {
            "failed"
        } else {
            "succeeded"
        }
    }

    /// Whether it is over: succeeded, failed or canceled.
    pub(crate) fn is_terminal(&self) -> bool {
        matches!(self.status(), "succeeded" | "failed" | "canceled")
    }

    /// Cancels it, unless it is over already.
    pub(crate) fn cancel(&mut self) {
        if !self.is_terminal() {
            self.canceled_after = Some(self.created.elapsed());
        }
    }

    /// Lets a never-finishing training finish: now, or when it was due if that is later.
    pub(crate) fn release(&mut self) {
        if self.never_finish {
            self.never_finish = false;
            self.finish_after = self.finish_after.max(self.created.elapsed());
        }
    }

    /// The version it made on its destination: `{destination}:{64 hex}`.
    pub(crate) fn trained_version(&self) -> String {
        format!("{}:{}", self.destination, version_hash(&self.id))
    }

    /// When it completed (it ran from its create until then), if it did.
    fn completed_after(&self) -> Option<Duration> {
        match (self.status(), self.canceled_after) {
            (_, Some(canceled)) => Some(canceled),
            ("succeeded" | "failed", None) => Some(self.finish_after.max(self.starting)),
            _ => None,
        }
    }

    /// When it started processing, after its create, if it did.
    fn started_after(&self) -> Option<Duration> {
        let reached = self
            .canceled_after
            .unwrap_or_else(|| self.created.elapsed());
        (reached >= self.starting).then_some(self.starting)
    }

    /// Its logs so far: a line per tenth of its steps done, and a last line when it ended.
    fn logs(&self, status: &str) -> String {
        let mut logs = String::from("starting training\n");
        let Some(started) = self.started_after() else {
            if status == "canceled" {
                logs.push_str("training canceled\n");
            }
            return logs;
        };
        logs.push_str(&format!(
            "Loaded {} images from input_images\n",
            self.images
        ));
        let reached = self
            .completed_after()
            .unwrap_or_else(|| self.created.elapsed());
        let window = self.finish_after.saturating_sub(started);
        let tenths = match status {
            "succeeded" | "failed" => 10,
            _ if window.is_zero() => 9,
            _ => {
                let done = reached.saturating_sub(started).as_secs_f64() / window.as_secs_f64();
                ((done * 10.0) as u64).min(9)
            }
        };
        for tenth in 0..=tenths {
            let step = self.steps * tenth / 10;
            logs.push_str(&format!(
                "flux_train_replicate:  {step}/{} [lr: 4.0e-04 loss: {:.3e}]\n",
                self.steps,
                0.5 / (1.0 + tenth as f64)
            ));
        }
        match status {
            "succeeded" => logs.push_str("training succeeded: saved trained_model.tar\n"),
            "failed" => logs.push_str(&format!(
                "training failed: {}\n",
                self.fail_with.as_deref().unwrap_or_default()
            )),
            "canceled" => logs.push_str("training canceled\n"),
            _ => {}
        }
        logs
    }

    /// Its JSON as `GET /v1/trainings/{id}` answers it; `api_base` is the emulator's URL.
    pub(crate) fn to_json(&self, api_base: &str) -> Value {
        let id = &self.id;
        let status = self.status();
        let output = (status == "succeeded").then(|| {
            json!({
                "version": self.trained_version(),
                "weights": format!("{}/files/trainings/{id}/trained_model.tar", self.output_base),
            })
        });
        let at = |after: Option<Duration>| after.map(|after| rfc3339(self.created_at + after));
        let mut body = json!({
            "id": id,
            "model": self.model,
            "version": self.version,
            "destination": self.destination,
            "input": self.input,
            "status": status,
            "logs": self.logs(status),
            "output": output,
            "error": (status == "failed").then(|| self.fail_with.clone()),
            "created_at": rfc3339(self.created_at),
            "started_at": at(self.started_after()),
            "completed_at": at(self.completed_after()),
            "urls": {
                "get": format!("{api_base}/v1/trainings/{id}"),
                "cancel": format!("{api_base}/v1/trainings/{id}/cancel"),
            },
        });
        if let Some(predict_time) = self.predict_time_now(status) {
            body["metrics"] = json!({ "predict_time": predict_time });
        }
        if let Some(webhook) = &self.webhook {
            body["webhook"] = json!(webhook);
        }
        body
    }

    /// `metrics.predict_time` when it is over: the switch's seconds when it finished, the
    /// seconds it processed when it was canceled (none if it was still starting).
    fn predict_time_now(&self, status: &str) -> Option<f64> {
        match (status, self.canceled_after) {
            ("succeeded" | "failed", _) => Some(self.predict_time),
            ("canceled", Some(canceled)) => {
                Some(canceled.saturating_sub(self.starting).as_secs_f64())
            }
            _ => None,
        }
    }
}

/// The 64 hex digits of the version a training made, derived from its id.
pub(crate) fn version_hash(id: &str) -> String {
    Sha256::digest(format!("trained-version:{id}"))
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// `t` in RFC 3339, UTC, with microseconds, as Replicate writes its timestamps.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let in_day = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60,
        since.subsec_micros()
    )
}

/// The date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = |secs: u64, micros: u64| {
            rfc3339(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(at(1_735_689_599, 999_999), "2024-12-31T23:59:59.999999Z");
        assert_eq!(at(1_709_210_096, 0), "2024-02-29T12:34:56.000000Z");
    }

    #[test]
    fn trained_versions_are_64_hex_per_id() {
        let a = version_hash("trn1");
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, version_hash("trn1"));
        assert_ne!(a, version_hash("trn2"));
    }
}
