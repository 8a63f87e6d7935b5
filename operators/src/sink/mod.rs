//! Built-in sinks.

mod blackhole;
pub(crate) mod collect;
mod jsonl;
mod print;
mod staged_file;

pub use blackhole::BlackholeSink;
pub use collect::{CollectSink, Collected, collect_pair};
pub use jsonl::JsonLinesSink;
pub use print::PrintSink;
pub use staged_file::StagedFile;
