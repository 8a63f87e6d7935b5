//! q19, auction top-10 price: per auction, the 10 highest bids with their rank 1..10 (SPEC.md
//! §3.2). Final table when the input ends ([`FinalTable`]).
//!
//! SQL leaves the order of equal prices undefined; this pipeline breaks ties by a total order
//! on the whole bid (earlier time first, then bidder, then the remaining columns), so the result
//! does not depend on arrival order or on the number of shards.

use std::cmp::Ordering;

use corestrom_operators::prelude::*;
use serde::{Deserialize, Serialize};

use crate::nexmark::model::{Bid, Event};
use crate::nexmark::queries::final_table::FinalTable;
use crate::nexmark::queries::q18::bid_columns;
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;

/// (auction, bidder, price, channel, url, dateTime, extra, rank_number).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Q19Row {
    pub bid: Bid,
    pub rank_number: i64,
}

/// How many bids per auction.
pub const TOP: usize = 10;

/// The ranking order: higher price first, ties broken by the rest of the bid.
fn rank_order(a: &Bid, b: &Bid) -> Ordering {
    b.price
        .cmp(&a.price)
        .then(a.date_time.cmp(&b.date_time))
        .then(a.bidder.cmp(&b.bidder))
        .then_with(|| (&a.channel, &a.url, &a.extra).cmp(&(&b.channel, &b.url, &b.extra)))
}

/// One auction's best bids. Invariant: sorted by [`rank_order`], at most [`TOP`] long.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TopBids {
    bids: Vec<Bid>,
}

impl TopBids {
    pub fn add(&mut self, bid: Bid) {
        if self.bids.len() == TOP
            && rank_order(&bid, self.bids.last().expect("TOP > 0")) != Ordering::Less
        {
            return;
        }
        let at = self
            .bids
            .partition_point(|kept| rank_order(kept, &bid) != Ordering::Greater);
        self.bids.insert(at, bid);
        self.bids.truncate(TOP);
    }

    /// The kept bids, best first.
    pub fn bids(&self) -> &[Bid] {
        &self.bids
    }
}

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q19Row> {
    events
        .filter_map(Event::into_bid)
        .key_by(|b: &Bid| b.auction)
        .process(FinalTable::new(
            |top: &mut TopBids, bid: Bid| top.add(bid),
            |_: &i64, top: TopBids, out: &mut dyn FnMut(Q19Row)| {
                for (rank, bid) in top.bids.into_iter().enumerate() {
                    out(Q19Row {
                        bid,
                        rank_number: rank as i64 + 1,
                    });
                }
            },
        ))
        .main()
}

impl ResultRow for Q19Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        bid_columns(&self.bid, row).int("rank_number", self.rank_number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nexmark::text::Text;
    use proptest::prelude::*;

    fn bid(price: i64, date_time: i64, bidder: i64) -> Bid {
        Bid {
            auction: 1,
            bidder,
            price,
            channel: Text::EMPTY,
            url: Text::EMPTY,
            date_time,
            extra: Text::EMPTY,
        }
    }

    proptest! {
        /// Against the reference: sort everything, take the first ten.
        #[test]
        fn top_bids_are_the_first_ten_of_the_sorted_input(
            input in proptest::collection::vec((0i64..30, 0i64..5, 0i64..3), 0..60)
        ) {
            let bids: Vec<Bid> = input.iter().map(|&(p, t, b)| bid(p, t, b)).collect();
            let mut top = TopBids::default();
            for b in &bids {
                top.add(b.clone());
            }
            let mut expected = bids.clone();
            expected.sort_by(rank_order);
            expected.truncate(TOP);
            prop_assert_eq!(top.bids(), &expected[..]);
        }
    }
}
