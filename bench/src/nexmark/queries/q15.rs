//! q15, bidding statistics report: per day, bids and distinct bidders and auctions, in total and
//! per price level (SPEC.md §3.2). Updating in Flink; here the final table, one row per day,
//! when the input ends ([`FinalTable`]).
//!
//! The whole run is usually one day, so one key: all bids of a day meet on one shard (Flink
//! splits the distinct state by hash to scale out; this pipeline does not yet).

use corestrom_operators::prelude::*;

use crate::nexmark::model::{Bid, Event};
use crate::nexmark::queries::bid_statistics::{self, BidStatistics};
use crate::nexmark::queries::calendar::{ascii, day_of, day_text};
use crate::nexmark::queries::final_table::FinalTable;
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;

/// (day, then the twelve counters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Q15Row {
    /// Days since the epoch.
    pub day: i64,
    pub counters: [i64; 12],
}

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q15Row> {
    events
        .filter_map(Event::into_bid)
        .key_by(|b: &Bid| day_of(b.date_time))
        .process(FinalTable::new(
            |stats: &mut BidStatistics, bid: Bid| stats.add(&bid),
            |day: &i64, stats: BidStatistics, out: &mut dyn FnMut(Q15Row)| {
                out(Q15Row {
                    day: *day,
                    counters: stats.counters(),
                })
            },
        ))
        .main()
}

impl ResultRow for Q15Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        let mut row = row.str("day", ascii(&day_text(self.day)));
        for (name, value) in bid_statistics::COLUMNS.iter().zip(self.counters) {
            row = row.int(name, value);
        }
        row
    }
}
