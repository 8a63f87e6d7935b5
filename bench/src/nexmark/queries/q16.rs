//! q16, channel statistics report: q15's counters per (channel, day), plus the latest minute
//! (`max(HH:mm)`) of the group's bids (SPEC.md §3.2). Final table, one row per group, when the
//! input ends ([`FinalTable`]).

use corestrom_operators::prelude::*;
use serde::{Deserialize, Serialize};

use crate::nexmark::model::{Bid, Event};
use crate::nexmark::queries::bid_statistics::{self, BidStatistics};
use crate::nexmark::queries::calendar::{ascii, day_of, day_text, minute_of_day, minute_text};
use crate::nexmark::queries::final_table::FinalTable;
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;
use crate::nexmark::text::Text;

/// (channel, day, minute, then the twelve counters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Q16Row {
    pub channel: Text,
    /// Days since the epoch.
    pub day: i64,
    /// Minute of the day.
    pub minute: i64,
    pub counters: [i64; 12],
}

/// One (channel, day) group.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ChannelDayStatistics {
    /// Latest minute of the day seen; the default 0 is the least minute, and a group has at
    /// least one bid, so the maximum is right.
    latest_minute: i64,
    stats: BidStatistics,
}

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q16Row> {
    events
        .filter_map(Event::into_bid)
        .key_by(|b: &Bid| (b.channel.clone(), day_of(b.date_time)))
        .process(FinalTable::new(
            |group: &mut ChannelDayStatistics, bid: Bid| {
                group.latest_minute = group.latest_minute.max(minute_of_day(bid.date_time));
                group.stats.add(&bid);
            },
            |(channel, day): &(Text, i64),
             group: ChannelDayStatistics,
             out: &mut dyn FnMut(Q16Row)| {
                out(Q16Row {
                    channel: channel.clone(),
                    day: *day,
                    minute: group.latest_minute,
                    counters: group.stats.counters(),
                })
            },
        ))
        .main()
}

impl ResultRow for Q16Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        let mut row = row
            .str("channel", &self.channel)
            .str("day", ascii(&day_text(self.day)))
            .str("minute", ascii(&minute_text(self.minute)));
        for (name, value) in bid_statistics::COLUMNS.iter().zip(self.counters) {
            row = row.int(name, value);
        }
        row
    }
}
