//! Exports' records, their queue, and the zip they are streamed into.

use std::future::Future;

use super::StoreError;
use crate::domain::export::{ExportId, ExportRecord};

/// How a run's claim on an export ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportClaim {
    /// This run holds the export until its lease ends: it writes the zip.
    Claimed {
        /// The export.
        record: Box<ExportRecord>,
        /// Which run this is (1, 2, ...): only this run's end is recorded.
        run: u64,
    },
    /// Another run holds it (a duplicate delivery): this one leaves it.
    Held,
    /// It is done or failed already: nothing to do.
    Ended,
    /// There is no such export.
    Missing,
}

/// How an export ended, for its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportEnd {
    /// The zip is stored: its size in bytes and its image count.
    Done {
        /// The zip's size.
        size: u64,
        /// Its images.
        count: usize,
    },
    /// No zip: why (for the caller; no internals).
    Failed(String),
}

/// The exports' records: one per export, from its request to its end.
pub trait ExportRecords: Send + Sync {
    /// Records a new export (never over an existing one).
    fn create(&self, record: &ExportRecord) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The export, or `None`.
    fn get(
        &self,
        export_id: &ExportId,
    ) -> impl Future<Output = Result<Option<ExportRecord>, StoreError>> + Send;
    /// Claims a running export for a run until `lease_until_ms` (epoch milliseconds), unless
    /// another run's lease holds it past `now_ms`.
    fn claim(
        &self,
        export_id: &ExportId,
        now_ms: u64,
        lease_until_ms: u64,
    ) -> impl Future<Output = Result<ExportClaim, StoreError>> + Send;
    /// Ends a running export at `now` (RFC 3339) for the run `run` that claimed it (`None`:
    /// an export no run has claimed); an export already ended, or claimed by a later run,
    /// stays as it is.
    fn end(
        &self,
        export_id: &ExportId,
        run: Option<u64>,
        end: &ExportEnd,
        now: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Hands an export to the function that writes it (never the HTTP request's own run).
pub trait ExportQueue: Send + Sync {
    /// Sends the export's message.
    fn send(&self, export_id: &ExportId) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Starts zips that are streamed into the bucket as they are written.
pub trait ArchiveUploads: Send + Sync {
    /// One zip being written.
    type Upload: ArchiveUpload;
    /// Starts the zip at `key`; nothing is visible there until it is finished.
    fn begin(&self, key: &str) -> impl Future<Output = Result<Self::Upload, StoreError>> + Send;
}

/// A zip being written: files go in one after another; only a finished zip becomes an object,
/// and an aborted one leaves nothing behind.
pub trait ArchiveUpload: Send {
    /// Adds the file `name` with `bytes` (which may send a part of the zip).
    fn add(
        &mut self,
        name: &str,
        bytes: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Writes the zip's directory and makes the object; its size in bytes.
    fn finish(self) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Gives the zip up: what was sent is discarded.
    fn abort(self) -> impl Future<Output = Result<(), StoreError>> + Send;
}
