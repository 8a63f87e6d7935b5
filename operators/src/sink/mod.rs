//! Built-in sinks.

mod blackhole;
pub(crate) mod collect;
mod jsonl;
mod part_files;
mod print;
mod staged_file;

pub use blackhole::BlackholeSink;
pub use collect::{CollectSink, Collected, collect_pair};
pub use jsonl::JsonLinesSink;
pub use part_files::PartFiles;
pub use print::PrintSink;
pub use staged_file::StagedFile;
