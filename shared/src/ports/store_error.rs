//! The one fault every store port reports.

use thiserror::Error;

/// A storage fault: the store could not answer. Says which operation failed; the detail is
/// for logs, never for callers.
#[derive(Debug, Error)]
#[error("{operation} failed: {detail}")]
pub struct StoreError {
    /// The operation that failed (e.g. `DynamoDB GetItem`).
    pub operation: &'static str,
    /// What the store or SDK said.
    pub detail: String,
}
