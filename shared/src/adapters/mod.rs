//! Adapters: AWS, Replicate and system implementations of the ports.

mod actor_training_items;
pub mod aws;
mod budget_transaction;
pub mod clock;
pub mod coalesced;
pub mod dynamodb;
pub mod export_queue;
pub mod export_records;
pub mod idempotency;
pub mod operations;
pub mod prediction_records;
pub mod profile_cache;
pub mod replicate;
pub mod s3;
pub mod s3_archive;
mod s3_metadata;
mod s3_multipart;
pub mod spend;
pub mod sqs;
pub mod ssm;
mod training_item;
pub mod training_queue;
pub mod training_records;
pub mod training_sets;
pub mod weights_copy;
