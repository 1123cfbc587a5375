//! Adapters: AWS implementations of the ports.

pub mod aws;
pub mod dynamodb;
pub mod replicate;
