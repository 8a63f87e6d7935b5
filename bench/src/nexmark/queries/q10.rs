//! q10, log to file system: every bid as a CSV row (auction, bidder, price, dateTime, extra)
//! in a directory partitioned by event-time day and minute, partitions committed with a
//! success file once the watermark passes them (SPEC.md §3.2; the sink is
//! [`PartitionedCsvSink`](crate::nexmark::partitioned_csv::PartitionedCsvSink)). The partition columns `dt` and `hm` are the directory names, as in
//! Flink's partitioned filesystem sink.

use corestrom_operators::prelude::*;

use crate::nexmark::model::{Bid, Event};
use crate::nexmark::partitioned_csv::{CsvLine, CsvRow};
use crate::nexmark::queries::event_time::bids_in_event_time;
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;
use crate::nexmark::text::Text;

/// (auction, bidder, price, dateTime, extra).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Q10Row {
    pub auction: i64,
    pub bidder: i64,
    pub price: i64,
    pub date_time: i64,
    pub extra: Text,
}

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q10Row> {
    bids_in_event_time(events).map(|b: Bid| Q10Row {
        auction: b.auction,
        bidder: b.bidder,
        price: b.price,
        date_time: b.date_time,
        extra: b.extra,
    })
}

impl ResultRow for Q10Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        row.int("auction", self.auction)
            .int("bidder", self.bidder)
            .int("price", self.price)
            .timestamp("dateTime", self.date_time)
            .str("extra", &self.extra)
    }
}

impl CsvRow for Q10Row {
    fn write_csv(&self, line: &mut CsvLine) {
        line.int(self.auction);
        line.int(self.bidder);
        line.int(self.price);
        line.timestamp(self.date_time);
        line.str(&self.extra);
    }

    fn event_time(&self) -> i64 {
        self.date_time
    }
}
