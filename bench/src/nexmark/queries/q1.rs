//! q1, currency conversion: each bid's price times the exact decimal 0.908 (DECIMAL(23,3), no
//! floating point), SPEC.md §3.2.

use corestrom_operators::prelude::*;

use crate::nexmark::model::{Bid, Event};
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;
use crate::nexmark::text::Text;

/// (auction, bidder, price DECIMAL(23,3), dateTime, extra); the price is kept unscaled in
/// thousandths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Q1Row {
    pub auction: i64,
    pub bidder: i64,
    /// `0.908 × price`, in thousandths.
    pub price_milli: i128,
    pub date_time: i64,
    pub extra: Text,
}

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q1Row> {
    events.filter_map(Event::into_bid).map(|b: Bid| Q1Row {
        auction: b.auction,
        bidder: b.bidder,
        price_milli: i128::from(b.price) * 908,
        date_time: b.date_time,
        extra: b.extra,
    })
}

impl ResultRow for Q1Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        row.int("auction", self.auction)
            .int("bidder", self.bidder)
            .decimal("price", self.price_milli, 3)
            .timestamp("dateTime", self.date_time)
            .str("extra", &self.extra)
    }
}
