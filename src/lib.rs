#![doc = include_str!("../README.md")]
//!
//! # Crate layout
//!
//! This root crate re-exports the API of `corestrom-operators` and `corestrom-runtime`
//! ([`prelude`]), and holds the `corestrom` binary and the integration tests.

pub use corestrom_operators::*;
pub use corestrom_runtime as runtime;

/// Everything a pipeline usually needs.
pub mod prelude {
    pub use corestrom_operators::prelude::*;
}

/// The Kafka connector (feature `kafka`, on by default): see `corestrom_kafka`.
#[cfg(feature = "kafka")]
pub use corestrom_kafka as kafka;
