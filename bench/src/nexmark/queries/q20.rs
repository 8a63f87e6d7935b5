//! q20, expand bid with auction: every bid joined with its auction when the auction is in
//! category 10 (SPEC.md §3.2), an unwindowed inner join on `auction = id` ([`RegularJoin`]).
//! The category filter is applied to auctions before the join; every bid is kept in state,
//! since an auction that arrives later may still match it (as in Flink). Append-only.

use corestrom_operators::prelude::*;

use crate::nexmark::model::{Auction, Bid, Event};
use crate::nexmark::queries::regular_join::RegularJoin;
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;

/// The bid's seven columns then the auction's (without its id, equal to the bid's auction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Q20Row {
    pub bid: Bid,
    pub auction: Auction,
}

const CATEGORY: i64 = 10;

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q20Row> {
    let bids = events.filter_map(Event::into_bid);
    let auctions = events.filter_map(|e: Event| {
        e.into_auction()
            .filter(|a: &Auction| a.category == CATEGORY)
    });
    bids.connect(&auctions)
        .key_by(|b: &Bid| b.auction, |a: &Auction| a.id)
        .process(RegularJoin::new(|b: &Bid, a: &Auction| {
            Some(Q20Row {
                bid: b.clone(),
                auction: a.clone(),
            })
        }))
        .main()
}

impl ResultRow for Q20Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        let (b, a) = (&self.bid, &self.auction);
        row.int("auction", b.auction)
            .int("bidder", b.bidder)
            .int("price", b.price)
            .str("channel", &b.channel)
            .str("url", &b.url)
            .timestamp("bid_dateTime", b.date_time)
            .str("bid_extra", &b.extra)
            .str("itemName", &a.item_name)
            .str("description", &a.description)
            .int("initialBid", a.initial_bid)
            .int("reserve", a.reserve)
            .timestamp("auction_dateTime", a.date_time)
            .timestamp("expires", a.expires)
            .int("seller", a.seller)
            .int("category", a.category)
            .str("auction_extra", &a.extra)
    }
}
