//! The twelve counters of q15 and q16 for one group of bids: bids, distinct bidders and distinct
//! auctions, in total and per price level (SPEC.md §3.2, q15).
//!
//! Distinct counting keeps, per bidder and per auction, the set of price levels it was seen at
//! (three bits), so a filtered `COUNT(DISTINCT …)` is the number of entries with that level's bit.
//! One hash-map update per dimension per bid; the counts are computed once, at the end.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::nexmark::model::Bid;
use crate::nexmark::queries::price_level::price_level;

/// Counters of one group.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BidStatistics {
    /// All bids, then per level.
    bids: [i64; 4],
    /// Levels seen per bidder (bit `l` = level `l`).
    bidders: FxHashMap<i64, u8>,
    /// Levels seen per auction.
    auctions: FxHashMap<i64, u8>,
}

impl BidStatistics {
    pub fn add(&mut self, bid: &Bid) {
        let level = price_level(bid.price);
        self.bids[0] += 1;
        self.bids[1 + level] += 1;
        *self.bidders.entry(bid.bidder).or_insert(0) |= 1 << level;
        *self.auctions.entry(bid.auction).or_insert(0) |= 1 << level;
    }

    /// total_bids, rank1..3_bids, total_bidders, rank1..3_bidders, total_auctions,
    /// rank1..3_auctions.
    pub fn counters(&self) -> [i64; 12] {
        let mut out = [0; 12];
        out[..4].copy_from_slice(&self.bids);
        out[4..8].copy_from_slice(&distinct_counts(&self.bidders));
        out[8..12].copy_from_slice(&distinct_counts(&self.auctions));
        out
    }
}

/// Distinct ids in total and per level, from the levels seen per id (bit `l` = level `l`).
pub fn distinct_counts(levels: &FxHashMap<i64, u8>) -> [i64; 4] {
    let mut out = [levels.len() as i64, 0, 0, 0];
    for seen in levels.values() {
        for level in 0..3 {
            out[1 + level] += i64::from(seen >> level & 1);
        }
    }
    out
}

/// The counters' column names, in output order.
pub const COLUMNS: [&str; 12] = [
    "total_bids",
    "rank1_bids",
    "rank2_bids",
    "rank3_bids",
    "total_bidders",
    "rank1_bidders",
    "rank2_bidders",
    "rank3_bidders",
    "total_auctions",
    "rank1_auctions",
    "rank2_auctions",
    "rank3_auctions",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nexmark::text::Text;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn bid(bidder: i64, auction: i64, price: i64) -> Bid {
        Bid {
            auction,
            bidder,
            price,
            channel: Text::EMPTY,
            url: Text::EMPTY,
            date_time: 0,
            extra: Text::EMPTY,
        }
    }

    proptest! {
        /// Against the SQL definition: filtered counts and distinct sets computed directly.
        #[test]
        fn counters_equal_the_filtered_distinct_counts(
            bids in proptest::collection::vec((0i64..20, 0i64..20, prop_oneof![0i64..20_000, 990_000i64..1_010_000]), 0..200)
        ) {
            let mut stats = BidStatistics::default();
            for &(bidder, auction, price) in &bids {
                stats.add(&bid(bidder, auction, price));
            }
            let mut expected = [0i64; 12];
            expected[0] = bids.len() as i64;
            let distinct = |pick: fn(&(i64, i64, i64)) -> i64, level: Option<usize>| {
                bids.iter()
                    .filter(|b| level.is_none_or(|l| price_level(b.2) == l))
                    .map(pick)
                    .collect::<BTreeSet<_>>()
                    .len() as i64
            };
            for level in 0..3 {
                expected[1 + level] = bids.iter().filter(|b| price_level(b.2) == level).count() as i64;
                expected[5 + level] = distinct(|b| b.0, Some(level));
                expected[9 + level] = distinct(|b| b.1, Some(level));
            }
            expected[4] = distinct(|b| b.0, None);
            expected[8] = distinct(|b| b.1, None);
            prop_assert_eq!(stats.counters(), expected);
        }
    }
}
