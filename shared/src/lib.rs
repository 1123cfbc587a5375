//! The training-image service's shared crate.
//!
//! Layers, from the inside out (each may use only the ones above it):
//! - [`domain`]: prompts, actors and the use cases, free of AWS and HTTP;
//! - [`ports`]: the traits the domain needs from the outside world;
//! - [`adapters`]: AWS implementations of the ports;
//! - [`entry`]: Lambda event parsing, configuration, and the one place errors become HTTP statuses.

pub mod adapters;
pub mod domain;
pub mod entry;
pub mod ports;
pub mod timing;
