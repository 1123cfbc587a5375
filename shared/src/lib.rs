//! The training-image service's shared crate.
//!
//! Layers, from the inside out; each may use only the layers before it in this list, and
//! `shared/tests/layers.rs` fails the build's tests when one does not:
//! - [`domain`]: actors, prompts, requests, names and manifests, as plain rules (std, serde,
//!   thiserror, sha2; no async runtime, AWS, Lambda or HTTP crate);
//! - [`ports`]: the traits the use cases need from the outside world, one per file;
//! - [`usecases`]: what the service does (prepare, predict, store, the guarded generation),
//!   written against the ports, still with no async runtime, AWS, Lambda or HTTP crate;
//! - [`adapters`]: AWS, Replicate and system implementations of the ports;
//! - [`entry`]: Lambda events parsed, use cases called, results mapped to responses; the
//!   configuration read and each function composed.
//!
//! [`retry`] (the backoff policies) and [`timing`] (where an invocation's time went) are
//! used by every layer that waits; they use nothing of the crate.

pub mod adapters;
pub mod domain;
pub mod entry;
pub mod ports;
pub mod retry;
pub mod timing;
pub mod usecases;
