//! Nexmark for corestrom: the data model, the generator and the JSON-lines file formats.
//!
//! * [`model`]: `Person`, `Auction`, `Bid`, `Event` (SPEC.md §1), strings as [`text::Text`];
//! * [`config`] and [`generator`]: Flink's generator (SPEC.md §2), one [`NexmarkGenerator`] per
//!   source split, deterministic and seekable;
//! * [`timestamp`]: the `YYYY-MM-DD hh:mm:ss.SSS` UTC format of event and result files;
//! * [`json`]: event files (FORMAT.md) — writer, reader with typed errors and dead letters;
//! * [`result`]: result rows as JSON lines;
//! * [`files`]: whole-run helpers: one merged file, or one time-ordered file per split;
//! * [`source`] and [`file_source`]: the generator and event files as corestrom sources.
//!
//! The generator's pools are built on first use and shared by every split in the process.

pub mod config;
mod event_line;
pub mod file_source;
pub mod files;
pub mod generator;
pub mod json;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod model;
pub mod partitioned_csv;
mod pools;
pub mod queries;
pub mod result;
pub mod result_sink;
mod rng;
pub mod source;
pub mod text;
pub mod timestamp;

pub use config::{BidderOffset, ConfigError, GeneratorConfig};
pub use file_source::NexmarkFileSource;
pub use generator::NexmarkGenerator;
pub use model::{Auction, Bid, Event, EventKind, Person};
pub use source::NexmarkSource;
pub use text::Text;
