//! Listing an image in its actor's manifest (`response.json`): a read-modify-write guarded by
//! the ETag (`If-Match`, or `If-None-Match` for a first manifest), so that concurrent writers
//! lose nothing; retried on conflicts and faults with [`Backoff::MANIFEST`]. The stores of one
//! execution environment that list at once share one write ([`super::group_commit`]).

use std::sync::Arc;
use std::time::Instant;

use super::generate_image::GenerateImage;
use crate::domain::manifest::{ManifestEntry, append_entries};
use crate::ports::{Clock, ObjectStore, VersionedObject, WriteCondition, WriteOutcome};
use crate::retry::Backoff;

impl<P, O: ObjectStore, C, G, K: Clock, R> GenerateImage<P, O, C, G, K, R> {
    /// Appends the entry, with those of the other stores listing in the same manifest
    /// meanwhile, until `finish_by`. `first_read` is the manifest as read concurrently with
    /// the image's write, used for the first attempt if this store writes.
    pub(super) async fn list_in_manifest(
        &self,
        key: &str,
        entry: &ManifestEntry,
        first_read: Option<Option<VersionedObject>>,
        finish_by: Instant,
    ) -> Result<(), String> {
        self.manifests
            .submit(key, entry.clone(), |entries| {
                self.write_manifest(key, entries, first_read, finish_by)
            })
            .await
    }

    /// The read-modify-write of `entries`, retried on 412, 409 and store faults. A first
    /// read that turns out stale (another store wrote since) is read again at once: only a
    /// conflict over a fresh read means writers are racing, and pauses.
    async fn write_manifest(
        &self,
        key: &str,
        entries: Vec<ManifestEntry>,
        mut first_read: Option<Option<VersionedObject>>,
        finish_by: Instant,
    ) -> Result<(), String> {
        // What the answer says: the operation that failed, never the store's detail (logged).
        let mut last_error = String::from("no attempt was made in time");
        let mut pauses = 0;
        let mut pause_next = false;
        for attempt in 1..=Backoff::MANIFEST.attempts {
            if pause_next {
                pauses += 1;
                let pause = Backoff::MANIFEST.delay(pauses);
                if self.clock.now() + pause > finish_by {
                    break;
                }
                self.clock.sleep(pause).await;
            }
            let pre_read = first_read.is_some();
            pause_next = true;
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
            let merged = append_entries(bytes, &entries, &self.clock.now_rfc3339())
                .map_err(|e| e.to_string())?;
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
                        entries = entries.len(),
                        "manifest changed meanwhile; merging again"
                    );
                    last_error = format!("the manifest kept changing ({outcome:?})");
                    pause_next = !pre_read;
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
