//! q2, selection: bids on every 123rd auction id, (auction, price) (SPEC.md §3.2).

use corestrom_operators::prelude::*;

use crate::nexmark::model::Event;
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;

/// (auction, price).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Q2Row {
    pub auction: i64,
    pub price: i64,
}

/// Beam's `auctionSkip`.
const AUCTION_SKIP: i64 = 123;

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q2Row> {
    events.filter_map(|e: Event| match e {
        Event::Bid(b) if b.auction % AUCTION_SKIP == 0 => Some(Q2Row {
            auction: b.auction,
            price: b.price,
        }),
        _ => None,
    })
}

impl ResultRow for Q2Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        row.int("auction", self.auction).int("price", self.price)
    }
}
