//! corestrom-storage: each shard's own log-structured store for keyed state.
//!
//! Built in its own issue; see `../shared/DESIGN.md` ("State and storage").
