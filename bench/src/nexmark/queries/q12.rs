//! q12, processing-time windows: bids per bidder in tumbling 10 s windows of the wall clock at
//! arrival (SPEC.md §3.2). Results depend on how fast the job runs, by design.
//!
//! As in Flink, a processing-time window fires when the clock passes its end; windows the clock
//! has not reached when a bounded input ends are not emitted. [`build_with_size`] takes the
//! window size so tests can see windows close within a short run.

use std::time::Duration;

use corestrom_operators::prelude::*;

use crate::nexmark::model::{Bid, Event};
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;

/// (bidder, bid_count, starttime, endtime), with processing-time window bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Q12Row {
    pub bidder: i64,
    pub bid_count: i64,
    pub start_time: i64,
    pub end_time: i64,
}

/// SPEC.md's window size.
pub const WINDOW: Duration = Duration::from_secs(10);

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q12Row> {
    build_with_size(events, WINDOW)
}

/// q12 with another window size (for tests).
pub fn build_with_size(events: &Stream<Event>, size: Duration) -> Stream<Q12Row> {
    events
        .filter_map(Event::into_bid)
        .key_by(|b: &Bid| b.bidder)
        .window(TumblingProcessingTimeWindows::of(size))
        .aggregate_with(
            Count,
            |bidder: &i64, window: &TimeWindow, count: u64, out: &mut Vec<Q12Row>| {
                out.push(Q12Row {
                    bidder: *bidder,
                    bid_count: count as i64,
                    start_time: window.start,
                    end_time: window.end,
                })
            },
        )
        .main()
}

impl ResultRow for Q12Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        row.int("bidder", self.bidder)
            .int("bid_count", self.bid_count)
            .timestamp("starttime", self.start_time)
            .timestamp("endtime", self.end_time)
    }
}
