//! Entry: what turns Lambda events into use-case calls and their results into responses.
//! [`compose`] builds each function from its configuration; the rest parses and answers.

pub mod caller;
pub mod compose;
pub mod compose_trainings;
pub mod config;
pub mod generate_single;
pub mod http;
pub mod invocation_error;
pub mod logging;
pub mod metrics;
pub mod reconciler;
pub mod replicate_webhook;
mod status_map;
pub mod training_config;
pub mod training_data;
pub mod training_export;
pub mod training_prompts;
pub mod training_set_worker;
pub mod training_sets;
pub mod trainings;
