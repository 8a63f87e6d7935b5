//! q0, pass-through: every bid with five columns, unchanged (SPEC.md §3.2).

use corestrom_operators::prelude::*;

use crate::nexmark::model::{Bid, Event};
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;
use crate::nexmark::text::Text;

/// (auction, bidder, price, dateTime, extra).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Q0Row {
    pub auction: i64,
    pub bidder: i64,
    pub price: i64,
    pub date_time: i64,
    pub extra: Text,
}

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q0Row> {
    events.filter_map(Event::into_bid).map(|b: Bid| Q0Row {
        auction: b.auction,
        bidder: b.bidder,
        price: b.price,
        date_time: b.date_time,
        extra: b.extra,
    })
}

impl ResultRow for Q0Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        row.int("auction", self.auction)
            .int("bidder", self.bidder)
            .int("price", self.price)
            .timestamp("dateTime", self.date_time)
            .str("extra", &self.extra)
    }
}
