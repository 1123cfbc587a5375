//! A read-merge-write of an actor's manifest under `If-Match` (or `If-None-Match` when there
//! is none yet), merged again over a fresh read whenever another writer got there first: the
//! one way a single change (a decision, a training) goes into `response.json` without losing
//! a concurrent one.

use std::sync::Arc;

use super::UseCaseError;
use crate::domain::manifest::ManifestError;
use crate::ports::{Clock, ObjectStore, StoreError, WriteCondition, WriteOutcome};
use crate::retry::Backoff;

/// Why a rewrite did not happen.
#[derive(Debug)]
pub enum RewriteError<E> {
    /// The merge refused the manifest as read.
    Merge(E),
    /// The bucket failed, or the manifest kept changing, through every attempt.
    Store(StoreError),
}

/// Merges `merge` into the manifest at `key` (`None` when there is none yet) and writes it
/// if it is still the one read; the bytes written.
pub async fn rewrite_manifest<E>(
    objects: &impl ObjectStore,
    clock: &impl Clock,
    key: &str,
    merge: impl Fn(Option<&[u8]>) -> Result<Vec<u8>, E>,
) -> Result<Vec<u8>, RewriteError<E>> {
    let policy = Backoff::MANIFEST;
    let mut last = StoreError {
        operation: "S3 PutObject (If-Match, the manifest)",
        detail: "no attempt was made".to_owned(),
    };
    for attempt in 1..=policy.attempts {
        if attempt > 1 {
            clock.sleep(policy.delay(attempt - 1)).await;
        }
        let current = objects
            .read_versioned(key)
            .await
            .map_err(RewriteError::Store)?;
        let (bytes, condition) = match &current {
            Some(object) => (
                Some(object.bytes.as_slice()),
                WriteCondition::IfMatch(object.etag.clone()),
            ),
            None => (None, WriteCondition::IfAbsent),
        };
        let merged = Arc::new(merge(bytes).map_err(RewriteError::Merge)?);
        match objects
            .write(
                key,
                Arc::clone(&merged),
                "application/json",
                condition,
                None,
            )
            .await
        {
            Ok(WriteOutcome::Written) => return Ok(Arc::unwrap_or_clone(merged)),
            Ok(outcome) => {
                tracing::info!(
                    key,
                    attempt,
                    ?outcome,
                    "manifest changed meanwhile; merging again"
                );
                last.detail = format!("the manifest kept changing ({outcome:?})");
            }
            Err(error) => {
                tracing::warn!(key, attempt, %error, "manifest write failed; trying again");
                last = error;
            }
        }
    }
    Err(RewriteError::Store(last))
}

impl From<RewriteError<ManifestError>> for UseCaseError {
    fn from(error: RewriteError<ManifestError>) -> Self {
        match error {
            RewriteError::Merge(error) => {
                crate::domain::curation::CurationError::from(error).into()
            }
            RewriteError::Store(error) => error.into(),
        }
    }
}
