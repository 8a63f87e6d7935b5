//! q18, find last bid: per (bidder, auction), the bid with the latest event time; among equal
//! times the one that arrived last (Flink's keep-last deduplication), SPEC.md §3.2. Final table,
//! one row per pair, when the input ends ([`FinalTable`]).

use corestrom_operators::prelude::*;

use crate::nexmark::model::{Bid, Event};
use crate::nexmark::queries::final_table::FinalTable;
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;

/// (auction, bidder, price, channel, url, dateTime, extra): the kept bid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Q18Row {
    pub bid: Bid,
}

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q18Row> {
    events
        .filter_map(Event::into_bid)
        .key_by(|b: &Bid| (b.bidder, b.auction))
        .process(FinalTable::new(
            |last: &mut Option<Bid>, bid: Bid| {
                if last
                    .as_ref()
                    .is_none_or(|kept| bid.date_time >= kept.date_time)
                {
                    *last = Some(bid);
                }
            },
            |_: &(i64, i64), last: Option<Bid>, out: &mut dyn FnMut(Q18Row)| {
                if let Some(bid) = last {
                    out(Q18Row { bid });
                }
            },
        ))
        .main()
}

/// The seven bid columns of q18 and q19.
pub(crate) fn bid_columns<'a, W: std::io::Write>(bid: &Bid, row: Row<'a, W>) -> Row<'a, W> {
    row.int("auction", bid.auction)
        .int("bidder", bid.bidder)
        .int("price", bid.price)
        .str("channel", &bid.channel)
        .str("url", &bid.url)
        .timestamp("dateTime", bid.date_time)
        .str("extra", &bid.extra)
}

impl ResultRow for Q18Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        bid_columns(&self.bid, row)
    }
}
