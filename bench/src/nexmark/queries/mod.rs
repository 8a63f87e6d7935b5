//! The Nexmark queries (SPEC.md §3) as corestrom pipelines written on the public API only.
//!
//! Each query takes the stream of events and ends in the given [`Output`]: a blackhole for
//! throughput runs, or FORMAT.md result files. Queries that need operators that do not exist
//! yet (windows, joins, keyed state) are added with those operators.

mod q0;
mod q1;
mod q2;

use std::path::PathBuf;

use corestrom_operators::prelude::*;

use crate::nexmark::model::Event;
use crate::nexmark::result_sink::{ResultRow, ResultSink};

pub use q0::Q0Row;
pub use q1::Q1Row;
pub use q2::Q2Row;

/// Where a query's results go.
#[derive(Clone, Debug)]
pub enum Output {
    /// Discarded (counted and timed).
    Blackhole,
    /// JSON-lines result files in this directory.
    Files(PathBuf),
    /// One JSON row per message in a Kafka topic.
    #[cfg(feature = "kafka")]
    Kafka(crate::nexmark::kafka::KafkaResults),
}

impl Output {
    fn attach<T: ResultRow>(&self, stream: &Stream<T>) {
        match self {
            Output::Blackhole => stream.blackhole(),
            Output::Files(dir) => stream.sink("results", ResultSink::new(dir.clone())),
            #[cfg(feature = "kafka")]
            Output::Kafka(results) => stream.sink("results", results.sink::<T>()),
        }
    }
}

/// A Nexmark query corestrom can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    /// Pass-through.
    Q0,
    /// Currency conversion.
    Q1,
    /// Selection.
    Q2,
}

impl Query {
    /// Every query, in order.
    pub const ALL: [Query; 3] = [Query::Q0, Query::Q1, Query::Q2];

    /// The query's name, `q0`, `q1`, ….
    pub fn name(self) -> &'static str {
        match self {
            Query::Q0 => "q0",
            Query::Q1 => "q1",
            Query::Q2 => "q2",
        }
    }

    /// Adds the query's pipeline on `events`, ending in `output`.
    pub fn build(self, events: &Stream<Event>, output: &Output) {
        match self {
            Query::Q0 => output.attach(&q0::build(events)),
            Query::Q1 => output.attach(&q1::build(events)),
            Query::Q2 => output.attach(&q2::build(events)),
        }
    }
}

impl std::str::FromStr for Query {
    type Err = String;

    fn from_str(s: &str) -> Result<Query, String> {
        Query::ALL
            .into_iter()
            .find(|q| q.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<_> = Query::ALL.iter().map(|q| q.name()).collect();
                format!("unknown query '{s}'; available: {}", names.join(", "))
            })
    }
}
