//! Entry: what turns Lambda events into domain calls and domain results into responses.

pub mod config;
pub mod generate;
pub mod http;
pub mod list_prompts;
pub mod logging;
pub mod metrics;
