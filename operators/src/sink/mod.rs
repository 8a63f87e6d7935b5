//! Built-in sinks.

mod blackhole;
pub(crate) mod collect;
mod jsonl;
mod print;

pub use blackhole::BlackholeSink;
pub use collect::{CollectSink, Collected, collect_pair};
pub use jsonl::JsonLinesSink;
pub use print::PrintSink;
