//! The Nexmark queries (SPEC.md §3) as corestrom pipelines written on the public API only.
//!
//! Each query takes the stream of events and ends in the given [`Output`]: a blackhole for
//! throughput runs, or FORMAT.md result files.
//!
//! Event-time queries (q5, q7, q8, q11) take the watermark of [`event_time`]; the updating
//! queries (q4, q6, q9, q15–q19) write their final table when the input ends ([`final_table`]).
//! The unwindowed joins of two streams (q3, q4, q9, q20) are [`regular_join`]s; q8 is a window
//! co-group, q13 a lookup join against a static side table.

pub mod bid_statistics;
pub mod calendar;
pub mod event_time;
pub mod final_table;
pub mod price_level;
mod q0;
mod q1;
mod q10;
mod q11;
pub mod q12;
pub mod q13;
mod q14;
mod q15;
mod q16;
mod q17;
mod q18;
mod q19;
mod q2;
mod q20;
mod q21;
mod q22;
mod q3;
mod q4;
mod q5;
pub mod q6;
mod q7;
mod q8;
pub mod q9;
pub mod regular_join;

use std::path::PathBuf;
use std::sync::Arc;

use corestrom_operators::prelude::*;

use crate::nexmark::model::Event;
use crate::nexmark::partitioned_csv::{CsvRow, PartitionedCsvSink};
use crate::nexmark::result_sink::{ResultRow, ResultSink};

pub use q0::Q0Row;
pub use q1::Q1Row;
pub use q2::Q2Row;
pub use q3::Q3Row;
pub use q4::Q4Row;
pub use q5::{AuctionCount, HottestAuctions, Q5Row};
pub use q6::{Q6Row, SellerWins};
pub use q7::{Candidate, HighestBids, Q7Row, Stage};
pub use q8::Q8Row;
pub use q9::{Q9Row, WinningBid};
pub use q10::Q10Row;
pub use q11::Q11Row;
pub use q12::Q12Row;
pub use q13::{Q13Row, SideInput, SideInputError};
pub use q14::{BidTimeType, Q14Row, count_char};
pub use q15::Q15Row;
pub use q16::{ChannelDayStatistics, Q16Row};
pub use q17::{AuctionDayStatistics, Q17Row};
pub use q18::Q18Row;
pub use q19::{Q19Row, TopBids};
pub use q20::Q20Row;
pub use q21::{Q21Row, brand_channel_id, url_channel_id};
pub use q22::{Q22Row, url_directories};

/// Where a query's results go.
#[derive(Clone, Debug)]
pub enum Output {
    /// Discarded (counted and timed).
    Blackhole,
    /// JSON-lines result files in this directory (q10: its partitioned CSV files).
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

    /// q10's output: partitioned CSV files instead of JSON lines (a topic gets JSON rows: it
    /// has no directories to partition by).
    fn attach_partitioned<T: CsvRow + ResultRow>(&self, stream: &Stream<T>) {
        match self {
            Output::Blackhole => stream.blackhole(),
            Output::Files(dir) => {
                stream.sink("partitioned files", PartitionedCsvSink::new(dir.clone()))
            }
            #[cfg(feature = "kafka")]
            Output::Kafka(results) => stream.sink("results", results.sink::<T>()),
        }
    }
}

/// Inputs of a query besides the events.
#[derive(Clone, Debug, Default)]
pub struct QueryOptions {
    /// q13's side table; `None`: SPEC.md's ([`SideInput::spec`]).
    pub side_input: Option<Arc<SideInput>>,
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
    /// Local item suggestion (regular join).
    Q3,
    /// Average price per category (regular join, two aggregations).
    Q4,
    /// Hot items (hopping windows).
    Q5,
    /// Average selling price by seller (q9's winners, OVER window of 11 rows).
    Q6,
    /// Highest bid (tumbling window joined with its maximum).
    Q7,
    /// Monitor new users (window join).
    Q8,
    /// Winning bids (regular join, top-1).
    Q9,
    /// Log to file system (partitioned CSV files).
    Q10,
    /// User sessions (session windows).
    Q11,
    /// Processing-time windows.
    Q12,
    /// Bounded side input join (lookup join).
    Q13,
    /// Calculation (expressions and a UDF).
    Q14,
    /// Bidding statistics per day (distinct counts).
    Q15,
    /// Channel statistics per day (distinct counts).
    Q16,
    /// Auction statistics per day.
    Q17,
    /// Last bid per bidder and auction.
    Q18,
    /// Top-10 bids per auction.
    Q19,
    /// Expand bid with auction (regular join).
    Q20,
    /// Channel id (CASE and a regex).
    Q21,
    /// URL directories (string split).
    Q22,
}

impl Query {
    /// Every query, in order.
    pub const ALL: [Query; 23] = [
        Query::Q0,
        Query::Q1,
        Query::Q2,
        Query::Q3,
        Query::Q4,
        Query::Q5,
        Query::Q6,
        Query::Q7,
        Query::Q8,
        Query::Q9,
        Query::Q10,
        Query::Q11,
        Query::Q12,
        Query::Q13,
        Query::Q14,
        Query::Q15,
        Query::Q16,
        Query::Q17,
        Query::Q18,
        Query::Q19,
        Query::Q20,
        Query::Q21,
        Query::Q22,
    ];

    /// The query's name, `q0`, `q1`, ….
    pub fn name(self) -> &'static str {
        match self {
            Query::Q0 => "q0",
            Query::Q1 => "q1",
            Query::Q2 => "q2",
            Query::Q3 => "q3",
            Query::Q4 => "q4",
            Query::Q5 => "q5",
            Query::Q6 => "q6",
            Query::Q7 => "q7",
            Query::Q8 => "q8",
            Query::Q9 => "q9",
            Query::Q10 => "q10",
            Query::Q11 => "q11",
            Query::Q12 => "q12",
            Query::Q13 => "q13",
            Query::Q14 => "q14",
            Query::Q15 => "q15",
            Query::Q16 => "q16",
            Query::Q17 => "q17",
            Query::Q18 => "q18",
            Query::Q19 => "q19",
            Query::Q20 => "q20",
            Query::Q21 => "q21",
            Query::Q22 => "q22",
        }
    }

    /// True when the pipeline keeps keyed state (windows, keyed process functions), which its
    /// checkpoints snapshot.
    pub fn keeps_keyed_state(self) -> bool {
        !matches!(
            self,
            Query::Q0
                | Query::Q1
                | Query::Q2
                | Query::Q10
                | Query::Q13
                | Query::Q14
                | Query::Q21
                | Query::Q22
        )
    }

    /// Adds the query's pipeline on `events`, ending in `output`.
    pub fn build(self, events: &Stream<Event>, output: &Output) {
        self.build_with(events, output, &QueryOptions::default());
    }

    /// As [`Query::build`], with the inputs besides the events given in `options`.
    pub fn build_with(self, events: &Stream<Event>, output: &Output, options: &QueryOptions) {
        match self {
            Query::Q0 => output.attach(&q0::build(events)),
            Query::Q1 => output.attach(&q1::build(events)),
            Query::Q2 => output.attach(&q2::build(events)),
            Query::Q3 => output.attach(&q3::build(events)),
            Query::Q4 => output.attach(&q4::build(events)),
            Query::Q5 => output.attach(&q5::build(events)),
            Query::Q6 => output.attach(&q6::build(events)),
            Query::Q7 => output.attach(&q7::build(events)),
            Query::Q8 => output.attach(&q8::build(events)),
            Query::Q9 => output.attach(&q9::build(events)),
            Query::Q10 => output.attach_partitioned(&q10::build(events)),
            Query::Q11 => output.attach(&q11::build(events)),
            Query::Q12 => output.attach(&q12::build(events)),
            Query::Q13 => match &options.side_input {
                Some(side) => output.attach(&q13::build_with(events, Arc::clone(side))),
                None => output.attach(&q13::build(events)),
            },
            Query::Q14 => output.attach(&q14::build(events)),
            Query::Q15 => output.attach(&q15::build(events)),
            Query::Q16 => output.attach(&q16::build(events)),
            Query::Q17 => output.attach(&q17::build(events)),
            Query::Q18 => output.attach(&q18::build(events)),
            Query::Q19 => output.attach(&q19::build(events)),
            Query::Q20 => output.attach(&q20::build(events)),
            Query::Q21 => output.attach(&q21::build(events)),
            Query::Q22 => output.attach(&q22::build(events)),
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
