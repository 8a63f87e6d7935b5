//! q9, winning bids: per auction, the highest bid placed while the auction was open, the
//! earliest among equal prices (SPEC.md §3.2), with the auction's and the bid's columns.
//!
//! Two stages, as in Flink: the unwindowed join of auctions and bids on `id = auction` with the
//! residual condition `A.dateTime <= B.dateTime <= A.expires` ([`RegularJoin`]), then the top-1
//! per auction. Flink's top-1 is an updating result (a better bid retracts the previous
//! winner); FORMAT.md asks for the final table, so the best pair per auction is kept in place
//! and written when the input ends ([`FinalTable`]).
//!
//! SQL orders only by price and time, so two bids of one auction equal in both are a tie whose
//! winner Flink picks by arrival order; here the tie goes to the lower bidder, then the smaller
//! `extra`, so the result does not depend on arrival order or on the number of shards.

use std::cmp::Ordering;

use corestrom_operators::prelude::*;
use serde::{Deserialize, Serialize};

use crate::nexmark::model::{Auction, Bid, Event};
use crate::nexmark::queries::final_table::FinalTable;
use crate::nexmark::queries::regular_join::RegularJoin;
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;
use crate::nexmark::text::Text;

/// The bid columns q9 keeps (its auction is the joined auction's id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinningBid {
    pub bidder: i64,
    pub price: i64,
    pub date_time: i64,
    pub extra: Text,
}

impl WinningBid {
    fn of(bid: Bid) -> WinningBid {
        WinningBid {
            bidder: bid.bidder,
            price: bid.price,
            date_time: bid.date_time,
            extra: bid.extra,
        }
    }

    /// `Less` when `self` ranks before `other`: higher price, then earlier, then the ties.
    fn rank(&self, other: &WinningBid) -> Ordering {
        other
            .price
            .cmp(&self.price)
            .then(self.date_time.cmp(&other.date_time))
            .then(self.bidder.cmp(&other.bidder))
            .then_with(|| self.extra.as_str().cmp(other.extra.as_str()))
    }
}

/// An auction with a bid placed while it was open: a row of the join, and of q9's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Q9Row {
    pub auction: Auction,
    pub bid: WinningBid,
}

/// The join of step 1: each auction with each of its bids in `[dateTime, expires]`.
pub(crate) fn in_time_bids(events: &Stream<Event>) -> Stream<Q9Row> {
    let auctions = events.filter_map(Event::into_auction);
    let bids = events.filter_map(|e: Event| e.into_bid().map(|b| (b.auction, WinningBid::of(b))));
    auctions
        .connect(&bids)
        .key_by(|a: &Auction| a.id, |b: &(i64, WinningBid)| b.0)
        .process(RegularJoin::new(
            |a: &Auction, (_, b): &(i64, WinningBid)| {
                (a.date_time <= b.date_time && b.date_time <= a.expires).then(|| Q9Row {
                    auction: a.clone(),
                    bid: b.clone(),
                })
            },
        ))
        .main()
}

/// The winning bid of every auction that has one in time, when the input ends (also q6's
/// first step).
pub(crate) fn build(events: &Stream<Event>) -> Stream<Q9Row> {
    in_time_bids(events)
        .key_by(|row: &Q9Row| row.auction.id)
        .process(FinalTable::new(
            |best: &mut Option<Q9Row>, row: Q9Row| {
                if best
                    .as_ref()
                    .is_none_or(|kept| row.bid.rank(&kept.bid) == Ordering::Less)
                {
                    *best = Some(row);
                }
            },
            |_: &i64, best: Option<Q9Row>, out: &mut dyn FnMut(Q9Row)| {
                if let Some(row) = best {
                    out(row);
                }
            },
        ))
        .main()
}

impl ResultRow for Q9Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        let (a, b) = (&self.auction, &self.bid);
        row.int("id", a.id)
            .str("itemName", &a.item_name)
            .str("description", &a.description)
            .int("initialBid", a.initial_bid)
            .int("reserve", a.reserve)
            .timestamp("dateTime", a.date_time)
            .timestamp("expires", a.expires)
            .int("seller", a.seller)
            .int("category", a.category)
            .str("extra", &a.extra)
            .int("auction", a.id)
            .int("bidder", b.bidder)
            .int("price", b.price)
            .timestamp("bid_dateTime", b.date_time)
            .str("bid_extra", &b.extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bid(bidder: i64, price: i64, date_time: i64) -> WinningBid {
        WinningBid {
            bidder,
            price,
            date_time,
            extra: Text::EMPTY,
        }
    }

    #[test]
    fn higher_price_wins_then_the_earlier_bid_then_the_lower_bidder() {
        assert_eq!(bid(9, 20, 5).rank(&bid(1, 10, 1)), Ordering::Less);
        assert_eq!(bid(9, 10, 1).rank(&bid(1, 10, 2)), Ordering::Less);
        assert_eq!(bid(1, 10, 1).rank(&bid(2, 10, 1)), Ordering::Less);
        assert_eq!(bid(2, 10, 1).rank(&bid(1, 10, 1)), Ordering::Greater);
    }
}
