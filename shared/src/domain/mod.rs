//! The domain: what the service knows about actors and prompts, with no AWS or HTTP in it.

pub mod actor;
pub mod base_photo;
pub mod generate_single;
pub mod generation;
pub mod manifest;
pub mod prompts;
pub mod training_prompts;
