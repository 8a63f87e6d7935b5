//! q15, bidding statistics report: per day, bids and distinct bidders and auctions, in total and
//! per price level (SPEC.md §3.2). Updating in Flink; here the final table, one row per day,
//! when the input ends ([`FinalTable`]).
//!
//! The whole run is usually one day, so one group key: grouping by day alone would put every bid
//! on one shard. Instead the distinct counting is split by hash, as Flink's split-distinct
//! optimisation does:
//! 1. each bid becomes two [`DistinctPart`]s, one for its bidder and one for its auction;
//! 2. keyed by (day, dimension, id bucket), each bucket keeps the price levels seen per id —
//!    the buckets of one dimension partition its ids, so their distinct counts add up exactly;
//!    the bidder buckets also count the bids (each bid has exactly one bidder part);
//! 3. at the end of input each bucket emits its partial counters, and keyed by day the partials
//!    are summed into the row.

use corestrom_operators::prelude::*;
use corestrom_runtime::StableHash;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::nexmark::model::{Bid, Event};
use crate::nexmark::queries::bid_statistics::{self, distinct_counts};
use crate::nexmark::queries::calendar::{ascii, day_of, day_text};
use crate::nexmark::queries::final_table::FinalTable;
use crate::nexmark::queries::price_level::price_level;
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;

/// (day, then the twelve counters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Q15Row {
    /// Days since the epoch.
    pub day: i64,
    pub counters: [i64; 12],
}

/// Buckets per (day, dimension): enough to spread one day over any shard count used here.
const BUCKETS: i64 = 64;

/// The distinct column a part counts toward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dimension {
    Bidder,
    Auction,
}

impl StableHash for Dimension {
    fn stable_hash(&self) -> u64 {
        (*self as u8).stable_hash()
    }
}

/// One bid's contribution to one of its day's distinct counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistinctPart {
    pub day: i64,
    pub dimension: Dimension,
    pub id: i64,
    /// Price level index, 0..3.
    pub level: u8,
}

/// One bucket of one dimension of a day.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DayBucket {
    /// All bids, then per level (bidder buckets only).
    bids: [i64; 4],
    /// Levels seen per id (bit `l` = level `l`).
    levels: FxHashMap<i64, u8>,
}

impl DayBucket {
    fn add(&mut self, part: DistinctPart) {
        if part.dimension == Dimension::Bidder {
            self.bids[0] += 1;
            self.bids[1 + usize::from(part.level)] += 1;
        }
        *self.levels.entry(part.id).or_insert(0) |= 1 << part.level;
    }

    /// The bucket's share of the twelve counters.
    fn counters(&self, dimension: Dimension) -> [i64; 12] {
        let mut out = [0; 12];
        out[..4].copy_from_slice(&self.bids);
        let at = match dimension {
            Dimension::Bidder => 4,
            Dimension::Auction => 8,
        };
        out[at..at + 4].copy_from_slice(&distinct_counts(&self.levels));
        out
    }
}

fn parts(bid: Bid) -> [DistinctPart; 2] {
    let day = day_of(bid.date_time);
    let level = price_level(bid.price) as u8;
    [
        DistinctPart {
            day,
            dimension: Dimension::Bidder,
            id: bid.bidder,
            level,
        },
        DistinctPart {
            day,
            dimension: Dimension::Auction,
            id: bid.auction,
            level,
        },
    ]
}

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q15Row> {
    events
        .filter_map(Event::into_bid)
        .flat_map(parts)
        .key_by(|p: &DistinctPart| (p.day, p.dimension, p.id.rem_euclid(BUCKETS)))
        .process(FinalTable::new(
            |bucket: &mut DayBucket, part: DistinctPart| bucket.add(part),
            |&(day, dimension, _): &(i64, Dimension, i64),
             bucket: DayBucket,
             out: &mut dyn FnMut((i64, [i64; 12]))| {
                out((day, bucket.counters(dimension)))
            },
        ))
        .key_by(|(day, _): &(i64, [i64; 12])| *day)
        .process(FinalTable::new(
            |sum: &mut [i64; 12], (_, partial): (i64, [i64; 12])| {
                for (total, part) in sum.iter_mut().zip(partial) {
                    *total += part;
                }
            },
            |day: &i64, counters: [i64; 12], out: &mut dyn FnMut(Q15Row)| {
                out(Q15Row {
                    day: *day,
                    counters,
                })
            },
        ))
        .main()
}

impl ResultRow for Q15Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        let mut row = row.str("day", ascii(&day_text(self.day)));
        for (name, value) in bid_statistics::COLUMNS.iter().zip(self.counters) {
            row = row.int(name, value);
        }
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nexmark::queries::bid_statistics::BidStatistics;
    use crate::nexmark::text::Text;
    use proptest::prelude::*;

    proptest! {
        /// Split by id bucket and summed, the counters equal the one-group statistics.
        #[test]
        fn bucketed_partials_add_up_to_the_whole(
            bids in proptest::collection::vec((0i64..40, 0i64..40, 0i64..2_000_000), 0..200)
        ) {
            let mut whole = BidStatistics::default();
            let mut buckets: FxHashMap<(Dimension, i64), DayBucket> = FxHashMap::default();
            for &(bidder, auction, price) in &bids {
                let bid = Bid {
                    auction,
                    bidder,
                    price,
                    channel: Text::EMPTY,
                    url: Text::EMPTY,
                    date_time: 0,
                    extra: Text::EMPTY,
                };
                whole.add(&bid);
                for part in parts(bid) {
                    buckets.entry((part.dimension, part.id % 7)).or_default().add(part);
                }
            }
            let mut sum = [0i64; 12];
            for ((dimension, _), bucket) in &buckets {
                for (total, part) in sum.iter_mut().zip(bucket.counters(*dimension)) {
                    *total += part;
                }
            }
            prop_assert_eq!(sum, whole.counters());
        }
    }
}
