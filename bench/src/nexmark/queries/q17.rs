//! q17, auction statistics report: per (auction, day), bids in total and per price level, and
//! min, max, average (BIGINT, truncated) and sum of the prices (SPEC.md §3.2). Final table, one
//! row per group, when the input ends ([`FinalTable`]).

use corestrom_operators::prelude::*;
use serde::{Deserialize, Serialize};

use crate::nexmark::model::{Bid, Event};
use crate::nexmark::queries::calendar::{ascii, day_of, day_text};
use crate::nexmark::queries::final_table::FinalTable;
use crate::nexmark::queries::price_level::price_level;
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;

/// (auction, day, total_bids, rank1..3_bids, min_price, max_price, avg_price, sum_price).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Q17Row {
    pub auction: i64,
    /// Days since the epoch.
    pub day: i64,
    pub stats: AuctionDayStatistics,
}

/// One (auction, day) group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionDayStatistics {
    /// All bids, then per level.
    pub bids: [i64; 4],
    pub min_price: i64,
    pub max_price: i64,
    pub sum_price: i64,
}

impl Default for AuctionDayStatistics {
    fn default() -> Self {
        AuctionDayStatistics {
            bids: [0; 4],
            min_price: i64::MAX,
            max_price: i64::MIN,
            sum_price: 0,
        }
    }
}

impl AuctionDayStatistics {
    pub fn add(&mut self, price: i64) {
        self.bids[0] += 1;
        self.bids[1 + price_level(price)] += 1;
        self.min_price = self.min_price.min(price);
        self.max_price = self.max_price.max(price);
        // SQL's SUM over BIGINT wraps like Java's long.
        self.sum_price = self.sum_price.wrapping_add(price);
    }

    /// `AVG(price)` over BIGINT: the sum divided by the count, truncated toward zero.
    pub fn avg_price(&self) -> i64 {
        self.sum_price / self.bids[0]
    }
}

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q17Row> {
    events
        .filter_map(Event::into_bid)
        .key_by(|b: &Bid| (b.auction, day_of(b.date_time)))
        .process(FinalTable::new(
            |stats: &mut AuctionDayStatistics, bid: Bid| stats.add(bid.price),
            |&(auction, day): &(i64, i64),
             stats: AuctionDayStatistics,
             out: &mut dyn FnMut(Q17Row)| {
                out(Q17Row {
                    auction,
                    day,
                    stats,
                })
            },
        ))
        .main()
}

impl ResultRow for Q17Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        let s = &self.stats;
        row.int("auction", self.auction)
            .str("day", ascii(&day_text(self.day)))
            .int("total_bids", s.bids[0])
            .int("rank1_bids", s.bids[1])
            .int("rank2_bids", s.bids[2])
            .int("rank3_bids", s.bids[3])
            .int("min_price", s.min_price)
            .int("max_price", s.max_price)
            .int("avg_price", s.avg_price())
            .int("sum_price", s.sum_price)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_of_a_group() {
        let mut stats = AuctionDayStatistics::default();
        for price in [9_999, 10_000, 1_000_000, 5] {
            stats.add(price);
        }
        assert_eq!(stats.bids, [4, 2, 1, 1]);
        assert_eq!((stats.min_price, stats.max_price), (5, 1_000_000));
        assert_eq!(stats.sum_price, 1_020_004);
        assert_eq!(stats.avg_price(), 255_001);
    }
}
