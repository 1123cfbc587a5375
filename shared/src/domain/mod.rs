//! The domain: what the service knows about actors, prompts, requests, names and manifests,
//! as plain rules with no AWS, HTTP, Lambda or async runtime in them.

pub mod actor;
pub mod base_photo;
pub mod caption;
pub mod curation;
pub mod export;
pub mod manifest;
pub mod manifest_location;
pub mod naming;
pub mod order;
pub mod prompts;
pub mod request;
pub mod set_progress;
pub mod training;
pub mod training_request;
pub mod training_set;
pub mod ulid;
