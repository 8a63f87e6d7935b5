//! q11, user sessions: bids per bidder per event-time session with a 10 s inactivity gap; the
//! session runs from its first bid to its last bid plus 10 s (SPEC.md §3.2). A session is
//! emitted when the watermark passes its end.

use std::time::Duration;

use corestrom_operators::prelude::*;

use crate::nexmark::model::{Bid, Event};
use crate::nexmark::queries::event_time::bids_in_event_time;
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;

/// (bidder, bid_count, starttime, endtime).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Q11Row {
    pub bidder: i64,
    pub bid_count: i64,
    pub start_time: i64,
    pub end_time: i64,
}

const GAP: Duration = Duration::from_secs(10);

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q11Row> {
    bids_in_event_time(events)
        .key_by(|b: &Bid| b.bidder)
        .window(EventTimeSessionWindows::with_gap(GAP))
        .aggregate_with(
            Count,
            |bidder: &i64, session: &TimeWindow, count: u64, out: &mut Vec<Q11Row>| {
                out.push(Q11Row {
                    bidder: *bidder,
                    bid_count: count as i64,
                    start_time: session.start,
                    end_time: session.end,
                })
            },
        )
        .main()
}

impl ResultRow for Q11Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        row.int("bidder", self.bidder)
            .int("bid_count", self.bid_count)
            .timestamp("starttime", self.start_time)
            .timestamp("endtime", self.end_time)
    }
}
