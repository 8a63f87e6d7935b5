//! Generator configuration (SPEC.md §2.1) and how a run is cut into splits (§2.2).
//!
//! Field docs name the Flink connector option each field corresponds to, so DDL options from
//! the Flink Nexmark project map one to one. Defaults are Flink's, except the three Flink leaves
//! to the wall clock or to chance: `base_time_ms` (Flink: wall-clock at planning; here a fixed
//! date so output is reproducible), `seed` (Flink: unseeded) and `events_num` (same default, 0).
//!
//! Split invariants: every split shares `base_time_ms`, `FIRST_EVENT_NUMBER` and the
//! inter-event delay, i.e. all splits run on identical timelines; split `i` gets event ids
//! `FIRST_EVENT_ID + i·⌊max/n⌋ + FIRST_EVENT_NUMBER ..`, disjoint from every other split's; the
//! last split also takes the remainder of `max/n`.

use thiserror::Error;

/// Flink's first event id of the top-level config.
pub const FIRST_EVENT_ID: u64 = 1;
/// Flink's first event number; event numbers drive timestamps.
pub const FIRST_EVENT_NUMBER: u64 = 1;
/// Offset added to base0 person ids.
pub const FIRST_PERSON_ID: i64 = 1000;
/// Offset added to base0 auction ids.
pub const FIRST_AUCTION_ID: i64 = 1000;
/// Lowest category; categories are `FIRST_CATEGORY_ID .. FIRST_CATEGORY_ID + NUM_CATEGORIES`.
pub const FIRST_CATEGORY_ID: i64 = 10;
pub const NUM_CATEGORIES: u64 = 5;
/// How many ids beyond the newest person a random person may be ("lead").
pub const PERSON_ID_LEAD: u64 = 10;
/// How many ids beyond the newest auction a random auction may be.
pub const AUCTION_ID_LEAD: u64 = 10;
/// Hot sellers, bidders and auctions change every this many entities.
pub const HOT_BATCH_SIZE: i64 = 100;
/// A bid uses a hot channel unless `int(HOT_CHANNEL_RATIO) == 0`.
pub const HOT_CHANNEL_RATIO: u64 = 2;
/// The out-of-order permutation multiplier (§2.4).
pub const OUT_OF_ORDER_MULTIPLIER: u64 = 953;
/// 2015-07-15 00:00:00.000 UTC, FORMAT.md's example date.
pub const DEFAULT_BASE_TIME_MS: i64 = 1_436_918_400_000;

/// Largest average size accepted: `extra` is a slice of the 1 MiB pool, so it must fit twice.
pub const AVG_SIZE_MAX_BYTES: u32 = 1 << 19;

/// How a bid's `bidder` is offset (SPEC.md §2.9.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum BidderOffset {
    /// Flink's generator adds 1000 twice: bidders name persons created ~1000 persons later.
    /// Default, for parity with Flink (only q23 notices).
    #[default]
    FlinkDouble,
    /// Beam's rule: bidder ids are person ids (+1000 once).
    Single,
}

/// Everything that determines a generated stream. Two runs with equal configs (and split
/// counts) produce identical events.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratorConfig {
    /// `events.num`: events of the whole run, all splits together. 0 means practically
    /// unbounded (`i64::MAX / (total proportion × max avg size)`, SPEC.md §2.2).
    pub events_num: u64,
    /// `first-event.rate`: events per second of event time, all splits together. Sets the
    /// timestamp density; emission is unthrottled unless the caller paces with `due_at_ns`.
    pub first_event_rate: u64,
    /// `person.proportion` (default 1).
    pub person_proportion: u32,
    /// `auction.proportion` (default 3).
    pub auction_proportion: u32,
    /// `bid.proportion` (default 46).
    pub bid_proportion: u32,
    /// `person.avg-size` in bytes (default 200): target of the accounted person size.
    pub avg_person_byte_size: u32,
    /// `auction.avg-size` in bytes (default 500).
    pub avg_auction_byte_size: u32,
    /// `bid.avg-size` in bytes (default 100).
    pub avg_bid_byte_size: u32,
    /// `bid.hot-ratio.auctions` (default 2): a bid is on the hot auction with prob. 1 − 1/R.
    pub hot_auction_ratio: u32,
    /// `bid.hot-ratio.bidders` (default 4).
    pub hot_bidders_ratio: u32,
    /// `auction.hot-ratio.sellers` (default 4).
    pub hot_sellers_ratio: u32,
    /// `numInFlightAuctions` (default 100; no connector option in Flink).
    pub num_in_flight_auctions: u32,
    /// `numActivePeople` (default 1000; no connector option in Flink).
    pub num_active_people: u32,
    /// `outOfOrderGroupSize` (default 1 = in order).
    pub out_of_order_group_size: u64,
    /// `stop-at`: stop after this many events of the whole run (divided among splits like
    /// `events.num`); `None` = off (Flink's −1).
    pub stop_at_event: Option<u64>,
    /// Event time of event number 0, ms since the epoch (Flink: wall-clock at planning).
    pub base_time_ms: i64,
    /// Seed of the run's random fields (Flink: unseeded).
    pub seed: u64,
    /// Flink's double bidder offset, or Beam's single one.
    pub bidder_offset: BidderOffset,
}

impl Default for GeneratorConfig {
    fn default() -> GeneratorConfig {
        GeneratorConfig {
            events_num: 0,
            first_event_rate: 10_000,
            person_proportion: 1,
            auction_proportion: 3,
            bid_proportion: 46,
            avg_person_byte_size: 200,
            avg_auction_byte_size: 500,
            avg_bid_byte_size: 100,
            hot_auction_ratio: 2,
            hot_bidders_ratio: 4,
            hot_sellers_ratio: 4,
            num_in_flight_auctions: 100,
            num_active_people: 1000,
            out_of_order_group_size: 1,
            stop_at_event: None,
            base_time_ms: DEFAULT_BASE_TIME_MS,
            seed: 0,
            bidder_offset: BidderOffset::FlinkDouble,
        }
    }
}

/// A configuration the generator cannot run.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("person, auction and bid proportions are all 0")]
    NoProportions,
    #[error("first-event.rate must be at least 1 event/s")]
    ZeroRate,
    #[error("{option} must be at least 1")]
    ZeroRatio { option: &'static str },
    #[error("{option} = {bytes} exceeds the maximum of {max} bytes", max = AVG_SIZE_MAX_BYTES)]
    AvgSizeTooLarge { option: &'static str, bytes: u32 },
    #[error("out-of-order group size must be at least 1")]
    ZeroGroupSize,
    #[error("split {split_index} of {num_splits} does not exist")]
    BadSplit { split_index: u32, num_splits: u32 },
    #[error("base time {base_time_ms} ms is outside years 1970..=9000")]
    BaseTimeOutOfRange { base_time_ms: i64 },
}

/// Everything one split needs, derived from a config (SPEC.md §2.2, §2.4).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SplitPlan {
    /// `firstEventId_i`; the split's event ids are this + adjusted event numbers.
    pub(crate) first_event_id: u64,
    /// Events this split emits in total.
    pub(crate) limit: u64,
    /// Microseconds of event time between consecutive event numbers of this split.
    pub(crate) delay_us: f64,
}

impl GeneratorConfig {
    /// The defaults with `events.num = events` and `first-event.rate = rate`.
    pub fn with_events(events: u64, rate: u64) -> GeneratorConfig {
        GeneratorConfig {
            events_num: events,
            first_event_rate: rate,
            ..GeneratorConfig::default()
        }
    }

    /// person + auction + bid proportion (50 by default).
    pub fn total_proportion(&self) -> u64 {
        u64::from(self.person_proportion)
            + u64::from(self.auction_proportion)
            + u64::from(self.bid_proportion)
    }

    /// Checks every field.
    ///
    /// # Errors
    /// The first field found that the generator cannot run with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.total_proportion() == 0 {
            return Err(ConfigError::NoProportions);
        }
        if self.first_event_rate == 0 {
            return Err(ConfigError::ZeroRate);
        }
        for (option, ratio) in [
            ("bid.hot-ratio.auctions", self.hot_auction_ratio),
            ("bid.hot-ratio.bidders", self.hot_bidders_ratio),
            ("auction.hot-ratio.sellers", self.hot_sellers_ratio),
        ] {
            if ratio == 0 {
                return Err(ConfigError::ZeroRatio { option });
            }
        }
        for (option, bytes) in [
            ("person.avg-size", self.avg_person_byte_size),
            ("auction.avg-size", self.avg_auction_byte_size),
            ("bid.avg-size", self.avg_bid_byte_size),
        ] {
            if bytes > AVG_SIZE_MAX_BYTES {
                return Err(ConfigError::AvgSizeTooLarge { option, bytes });
            }
        }
        if self.out_of_order_group_size == 0 {
            return Err(ConfigError::ZeroGroupSize);
        }
        // Keeps every timestamp of a run within the formatter's 4-digit years.
        const YEAR_9000_MS: i64 = 221_845_392_000_000;
        if !(0..=YEAR_9000_MS).contains(&self.base_time_ms) {
            return Err(ConfigError::BaseTimeOutOfRange {
                base_time_ms: self.base_time_ms,
            });
        }
        Ok(())
    }

    /// `maxEvents` of the top-level config: `events.num`, or the overflow-safe "infinite"
    /// count when it is 0.
    pub fn max_events(&self) -> u64 {
        if self.events_num > 0 {
            return self.events_num;
        }
        let max_avg = self
            .avg_person_byte_size
            .max(self.avg_auction_byte_size)
            .max(self.avg_bid_byte_size)
            .max(1);
        i64::MAX as u64 / (self.total_proportion().max(1) * u64::from(max_avg))
    }

    /// Cuts the run into `num_splits` and returns split `split_index`'s share.
    pub(crate) fn split(
        &self,
        split_index: u32,
        num_splits: u32,
    ) -> Result<SplitPlan, ConfigError> {
        self.validate()?;
        if num_splits == 0 || split_index >= num_splits {
            return Err(ConfigError::BadSplit {
                split_index,
                num_splits,
            });
        }
        let share = |total: u64| -> u64 {
            let base = total / u64::from(num_splits);
            if split_index + 1 == num_splits {
                base + total % u64::from(num_splits)
            } else {
                base
            }
        };
        let max_events = self.max_events();
        let mut limit = share(max_events);
        if let Some(stop_at) = self.stop_at_event {
            limit = limit.min(share(stop_at));
        }
        let first_event_id =
            FIRST_EVENT_ID + u64::from(split_index) * (max_events / u64::from(num_splits));
        let delay_us = 1_000_000.0 / self.first_event_rate as f64 * f64::from(num_splits);
        Ok(SplitPlan {
            first_event_id,
            limit,
            delay_us,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_unbounded_max_events_is_flinks() {
        assert_eq!(GeneratorConfig::default().max_events(), 368_934_881_474_191);
    }

    #[test]
    fn config_splits_share_timeline_and_partition_ids() {
        let config = GeneratorConfig::with_events(100_000_003, 10_000_000);
        let plans: Vec<SplitPlan> = (0..8).map(|i| config.split(i, 8).unwrap()).collect();
        assert_eq!(plans.iter().map(|p| p.limit).sum::<u64>(), 100_000_003);
        assert_eq!(plans[0].limit, 12_500_000);
        assert_eq!(plans[7].limit, 12_500_003);
        for (i, plan) in plans.iter().enumerate() {
            assert_eq!(plan.first_event_id, 1 + i as u64 * 12_500_000);
            assert_eq!(plan.delay_us, 0.8);
        }
    }

    #[test]
    fn config_stop_at_is_divided_like_events() {
        let config = GeneratorConfig {
            stop_at_event: Some(10),
            ..GeneratorConfig::with_events(1000, 100)
        };
        assert_eq!(config.split(0, 3).unwrap().limit, 3);
        assert_eq!(config.split(2, 3).unwrap().limit, 4);
    }

    #[test]
    fn config_rejects_unrunnable_values() {
        let bad = GeneratorConfig {
            hot_bidders_ratio: 0,
            ..GeneratorConfig::default()
        };
        assert_eq!(
            bad.validate(),
            Err(ConfigError::ZeroRatio {
                option: "bid.hot-ratio.bidders"
            })
        );
        assert!(matches!(
            GeneratorConfig::default().split(3, 3),
            Err(ConfigError::BadSplit { .. })
        ));
        let zero_rate = GeneratorConfig::with_events(10, 0);
        assert_eq!(zero_rate.validate(), Err(ConfigError::ZeroRate));
    }
}
