//! Listing an image in its actor's manifest (`response.json`): a read-modify-write guarded by
//! the ETag (`If-Match`, or `If-None-Match` for a first manifest), so that concurrent writers
//! lose nothing; retried on conflicts and faults with [`Backoff::MANIFEST`].

use std::sync::Arc;
use std::time::Instant;

use super::generate_image::GenerateImage;
use crate::domain::manifest::{ManifestEntry, append_entry};
use crate::ports::{Clock, ObjectStore, VersionedObject, WriteCondition, WriteOutcome};
use crate::retry::Backoff;

impl<P, O: ObjectStore, C, G, K: Clock, R> GenerateImage<P, O, C, G, K, R> {
    /// Appends the entry with a read-modify-write guarded by the ETag, retried on 412, 409
    /// and store faults until `finish_by`. `first_read` is the manifest as read concurrently with the
    /// image's write, used for the first attempt.
    pub(super) async fn list_in_manifest(
        &self,
        key: &str,
        entry: &ManifestEntry,
        mut first_read: Option<Option<VersionedObject>>,
        finish_by: Instant,
    ) -> Result<(), String> {
        // What the answer says: the operation that failed, never the store's detail (logged).
        let mut last_error = String::from("no attempt was made in time");
        for attempt in 1..=Backoff::MANIFEST.attempts {
            if attempt > 1 {
                let pause = Backoff::MANIFEST.delay(attempt - 1);
                if self.clock.now() + pause > finish_by {
                    break;
                }
                self.clock.sleep(pause).await;
            }
            let current = match first_read.take() {
                Some(read) => read,
                None => match self.objects.read_versioned(key).await {
                    Ok(read) => read,
                    Err(error) => {
                        tracing::warn!(key, attempt, %error, "manifest read failed; trying again");
                        last_error = format!("{} failed", error.operation);
                        continue;
                    }
                },
            };
            let (bytes, condition) = match &current {
                Some(object) => (
                    Some(object.bytes.as_slice()),
                    WriteCondition::IfMatch(object.etag.clone()),
                ),
                None => (None, WriteCondition::IfAbsent),
            };
            let merged =
                append_entry(bytes, entry, &self.clock.now_rfc3339()).map_err(|e| e.to_string())?;
            match self
                .objects
                .write(key, Arc::new(merged), "application/json", condition, None)
                .await
            {
                Ok(WriteOutcome::Written) => return Ok(()),
                Ok(outcome) => {
                    tracing::info!(
                        key,
                        attempt,
                        ?outcome,
                        "manifest changed meanwhile; merging again"
                    );
                    last_error = format!("the manifest kept changing ({outcome:?})");
                }
                Err(error) => {
                    tracing::warn!(key, attempt, %error, "manifest write failed; trying again");
                    last_error = format!("{} failed", error.operation);
                }
            }
        }
        Err(format!("the manifest could not be updated: {last_error}"))
    }
}
