//! The Nexmark generator: one split's event stream (SPEC.md §2.2–§2.9).
//!
//! A split is a pure function from position to event: `event_at(k)` depends only on the config,
//! the split and `k`. Structure (event type, ids, timestamps, hot-entity rules) follows Flink's
//! generator exactly; random fields follow its distributions, drawn in its order from a
//! SplitMix64 stream seeded per event with (seed, event id) (see `rng.rs`). Hence:
//!
//! * a restored source resumes exactly with [`NexmarkGenerator::seek`] (O(1));
//! * the same config gives byte-identical output; a different seed gives different fields but
//!   the same ids, types and timestamps (those never depend on the seed, as in Flink);
//! * no heap allocation per event: strings are pool slices or inline (see `text.rs`).
//!
//! One step at position `k` (SPEC.md §2.6, "Putting it together"):
//! `m = FIRST_EVENT_NUMBER + k`, `n = adjust(m)` (out-of-order permutation, identity when the
//! group size is 1), `eid = first_event_id + n`, `t = base + ⌊n·delay_us⌋ / 1000`, and the type
//! is chosen by `eid mod total_proportion`.

use crate::nexmark::config::{
    AUCTION_ID_LEAD, BidderOffset, ConfigError, FIRST_AUCTION_ID, FIRST_CATEGORY_ID,
    FIRST_EVENT_NUMBER, FIRST_PERSON_ID, GeneratorConfig, HOT_BATCH_SIZE, HOT_CHANNEL_RATIO,
    NUM_CATEGORIES, OUT_OF_ORDER_MULTIPLIER, PERSON_ID_LEAD,
};
use crate::nexmark::model::{Auction, Bid, Event, EventKind, Person};
use crate::nexmark::pools::{
    self, CITIES, EXTRA_POOL_LEN, HOT_CHANNELS, NUM_CHANNELS, NUM_FIRST_NAMES, NUM_LAST_NAMES,
    Pools, STATES, WORD_POOL_LEN,
};
use crate::nexmark::rng::{SplitMix64, mix64};
use crate::nexmark::text::{InlineBuilder, Text};

/// Bytes Flink accounts for a bid before `extra`: four 8-byte numbers (channel and url are not
/// counted, SPEC.md §2.6).
const BID_ACCOUNTED_BYTES: u64 = 32;
/// Bytes Flink accounts for an auction's numbers: five 8-byte fields.
const AUCTION_NUMBERS_BYTES: u64 = 5 * 8;
/// The constant 8 in both person and auction accounting.
const RECORD_BASE_BYTES: u64 = 8;
/// `str(max)` bounds: e-mail words, item names, descriptions.
const EMAIL_USER_MAX: u64 = 7;
const EMAIL_DOMAIN_MAX: u64 = 5;
const ITEM_NAME_MAX: u64 = 20;
const DESCRIPTION_MAX: u64 = 100;

/// One split's generator. Cheap to construct; `Clone + Send`.
#[derive(Clone)]
pub struct NexmarkGenerator {
    pools: &'static Pools,
    split_index: u32,
    num_splits: u32,
    /// Events emitted so far (the checkpointed position).
    position: u64,
    /// Events this split emits in total.
    limit: u64,
    first_event_id: u64,
    delay_us: f64,
    base_time_ms: i64,
    group_size: u64,
    seed_mixed: u64,
    /// Proportions as i64: id arithmetic may go to −1 (SPEC.md §2.5, "previous epoch").
    person_proportion: i64,
    auction_proportion: i64,
    total_proportion: i64,
    /// ⌊numInFlightAuctions · total / auction proportion⌋: the auction-length horizon in events.
    auction_horizon_events: u64,
    hot_auction_ratio: u64,
    hot_bidders_ratio: u64,
    hot_sellers_ratio: u64,
    num_in_flight_auctions: i64,
    num_active_people: i64,
    avg_person_bytes: u64,
    avg_auction_bytes: u64,
    avg_bid_bytes: u64,
    bidder_offset: BidderOffset,
}

impl std::fmt::Debug for NexmarkGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NexmarkGenerator")
            .field("split_index", &self.split_index)
            .field("num_splits", &self.num_splits)
            .field("position", &self.position)
            .field("limit", &self.limit)
            .field("first_event_id", &self.first_event_id)
            .finish_non_exhaustive()
    }
}

impl NexmarkGenerator {
    /// Split `split_index` of `num_splits` at position 0 (SPEC.md §2.2).
    ///
    /// # Errors
    /// If the config does not validate or the split does not exist.
    pub fn new(
        config: &GeneratorConfig,
        split_index: u32,
        num_splits: u32,
    ) -> Result<NexmarkGenerator, ConfigError> {
        let plan = config.split(split_index, num_splits)?;
        let auction_horizon_events = if config.auction_proportion == 0 {
            0 // No auctions are ever generated; avoid dividing by zero.
        } else {
            u64::from(config.num_in_flight_auctions) * config.total_proportion()
                / u64::from(config.auction_proportion)
        };
        Ok(NexmarkGenerator {
            pools: pools::pools(),
            split_index,
            num_splits,
            position: 0,
            limit: plan.limit,
            first_event_id: plan.first_event_id,
            delay_us: plan.delay_us,
            base_time_ms: config.base_time_ms,
            group_size: config.out_of_order_group_size,
            seed_mixed: mix64(config.seed),
            person_proportion: i64::from(config.person_proportion),
            auction_proportion: i64::from(config.auction_proportion),
            total_proportion: config.total_proportion() as i64,
            auction_horizon_events,
            hot_auction_ratio: u64::from(config.hot_auction_ratio),
            hot_bidders_ratio: u64::from(config.hot_bidders_ratio),
            hot_sellers_ratio: u64::from(config.hot_sellers_ratio),
            num_in_flight_auctions: i64::from(config.num_in_flight_auctions),
            num_active_people: i64::from(config.num_active_people),
            avg_person_bytes: u64::from(config.avg_person_byte_size),
            avg_auction_bytes: u64::from(config.avg_auction_byte_size),
            avg_bid_bytes: u64::from(config.avg_bid_byte_size),
            bidder_offset: config.bidder_offset,
        })
    }

    /// Split `split_index` of `num_splits`, resumed at `position` (e.g. from a checkpoint).
    ///
    /// # Errors
    /// As [`NexmarkGenerator::new`].
    ///
    /// # Panics
    /// If `position` exceeds the split's event count.
    pub fn at_position(
        config: &GeneratorConfig,
        split_index: u32,
        num_splits: u32,
        position: u64,
    ) -> Result<NexmarkGenerator, ConfigError> {
        let mut generator = NexmarkGenerator::new(config, split_index, num_splits)?;
        generator.seek(position);
        Ok(generator)
    }

    /// Moves to `position`: the next event returned is the one a fresh generator returns after
    /// `position` events.
    ///
    /// # Panics
    /// If `position > self.limit()` (a position this split never reaches is a caller bug).
    pub fn seek(&mut self, position: u64) {
        assert!(position <= self.limit, "seek past the split's end");
        self.position = position;
    }

    /// Events emitted so far; store this in checkpoints.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Events this split emits in total.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Events still to come.
    pub fn remaining(&self) -> u64 {
        self.limit - self.position
    }

    pub fn is_finished(&self) -> bool {
        self.position == self.limit
    }

    pub fn split_index(&self) -> u32 {
        self.split_index
    }

    pub fn num_splits(&self) -> u32 {
        self.num_splits
    }

    /// Microseconds of event time between consecutive events of this split
    /// (`1e6 / first-event.rate × num_splits`).
    pub fn inter_event_delay_us(&self) -> f64 {
        self.delay_us
    }

    /// The next event, or `None` when the split is finished.
    pub fn next_event(&mut self) -> Option<Event> {
        if self.is_finished() {
            return None;
        }
        let event = self.event_at(self.position);
        self.position += 1;
        Some(event)
    }

    /// Appends up to `max` events to `out` and returns how many; 0 means finished (or
    /// `max == 0`).
    pub fn fill(&mut self, out: &mut Vec<Event>, max: usize) -> usize {
        let count = self.remaining().min(max as u64) as usize;
        out.reserve(count);
        for k in self.position..self.position + count as u64 {
            out.push(self.event_at(k));
        }
        self.position += count as u64;
        count
    }

    /// Event time of the next event, `None` when finished.
    pub fn event_time_of_next(&self) -> Option<i64> {
        (!self.is_finished()).then(|| self.event_time_at(self.position))
    }

    /// A lower bound on the event time of the next event and of every later one (exact with no
    /// out-of-order groups): the timestamp of the next event's group start (SPEC.md §2.4).
    pub fn watermark_of_next(&self) -> Option<i64> {
        if self.is_finished() {
            return None;
        }
        let m = FIRST_EVENT_NUMBER + self.position;
        Some(self.timestamp(m / self.group_size * self.group_size))
    }

    /// Nanoseconds after the split started emitting at which event `position` is due, when the
    /// source is paced to `first-event.rate` (Flink's `maxEmitSpeed = false`). Each split gets
    /// `rate / num_splits`. Finer than Flink's millisecond rule, same rate.
    pub fn due_at_ns(&self, position: u64) -> u64 {
        (position as f64 * self.delay_us * 1000.0) as u64
    }

    /// The event at `position`, without moving (a pure function of config, split, position).
    ///
    /// # Panics
    /// If `position >= self.limit()`.
    pub fn event_at(&self, position: u64) -> Event {
        assert!(position < self.limit, "position beyond the split's end");
        let n = self.adjusted_number(position);
        let eid = (self.first_event_id + n) as i64;
        let t = self.timestamp(n);
        let mut rng = SplitMix64::for_event(self.seed_mixed, eid as u64);
        match self.kind_of(eid) {
            EventKind::Person => Event::Person(self.person(&mut rng, eid, t)),
            EventKind::Auction => Event::Auction(self.auction(&mut rng, eid, n, t)),
            EventKind::Bid => Event::Bid(self.bid(&mut rng, eid, t)),
        }
    }

    /// The event id at `position` (globally unique across the splits of a run).
    pub fn event_id_at(&self, position: u64) -> i64 {
        (self.first_event_id + self.adjusted_number(position)) as i64
    }

    /// The event time at `position`.
    pub fn event_time_at(&self, position: u64) -> i64 {
        self.timestamp(self.adjusted_number(position))
    }

    fn adjusted_number(&self, position: u64) -> u64 {
        let m = FIRST_EVENT_NUMBER + position;
        let g = self.group_size;
        if g == 1 {
            return m;
        }
        m / g * g + m.wrapping_mul(OUT_OF_ORDER_MULTIPLIER) % g
    }

    /// `ts(n) = base + ⌊n·delay_us⌋ / 1000` with Java's double product and truncations.
    fn timestamp(&self, event_number: u64) -> i64 {
        self.base_time_ms + (event_number as f64 * self.delay_us) as i64 / 1000
    }

    fn kind_of(&self, eid: i64) -> EventKind {
        let r = eid % self.total_proportion;
        if r < self.person_proportion {
            EventKind::Person
        } else if r < self.person_proportion + self.auction_proportion {
            EventKind::Auction
        } else {
            EventKind::Bid
        }
    }

    /// base0 id of the newest person at event id `eid` (SPEC.md §2.5).
    fn last_person(&self, eid: i64) -> i64 {
        let epoch = eid / self.total_proportion;
        let offset = eid % self.total_proportion;
        epoch * self.person_proportion + offset.min(self.person_proportion - 1)
    }

    /// base0 id of the newest auction at event id `eid`; −1 before the first one.
    fn last_auction(&self, eid: i64) -> i64 {
        let epoch = eid / self.total_proportion;
        let offset = eid % self.total_proportion;
        if offset < self.person_proportion {
            (epoch - 1) * self.auction_proportion + self.auction_proportion - 1
        } else if offset >= self.person_proportion + self.auction_proportion {
            epoch * self.auction_proportion + self.auction_proportion - 1
        } else {
            epoch * self.auction_proportion + offset - self.person_proportion
        }
    }

    /// A random recent person, possibly up to `PERSON_ID_LEAD` ids in the future (base0).
    fn random_person(&self, rng: &mut SplitMix64, eid: i64) -> i64 {
        let num_people = self.last_person(eid) + 1;
        let active = num_people.min(self.num_active_people);
        let pick = rng.below((active + PERSON_ID_LEAD as i64) as u64) as i64;
        num_people - active + pick
    }

    /// A random in-flight auction, possibly up to `AUCTION_ID_LEAD` ids in the future (base0).
    fn random_auction(&self, rng: &mut SplitMix64, eid: i64) -> i64 {
        let max_auction = self.last_auction(eid);
        let min_auction = (max_auction - self.num_in_flight_auctions).max(0);
        let span = max_auction - min_auction + 1 + AUCTION_ID_LEAD as i64;
        min_auction + rng.below(span as u64) as i64
    }

    fn person(&self, rng: &mut SplitMix64, eid: i64, t: i64) -> Person {
        let id = self.last_person(eid) + FIRST_PERSON_ID;
        let name = self
            .pools
            .name(rng.below(NUM_FIRST_NAMES), rng.below(NUM_LAST_NAMES));
        let email_address = self.email(rng);
        let credit_card = credit_card(rng);
        let city = CITIES[rng.below(CITIES.len() as u64) as usize];
        let state = STATES[rng.below(STATES.len() as u64) as usize];
        let accounted = RECORD_BASE_BYTES
            + (name.len() + email_address.len() + credit_card.len() + city.len() + state.len())
                as u64;
        let extra = self.extra(rng, accounted, self.avg_person_bytes);
        Person {
            id,
            name: Text::from_static(name),
            email_address,
            credit_card,
            city: Text::from_static(city),
            state: Text::from_static(state),
            date_time: t,
            extra,
        }
    }

    fn auction(&self, rng: &mut SplitMix64, eid: i64, n: u64, t: i64) -> Auction {
        let id = self.last_auction(eid) + FIRST_AUCTION_ID;
        let seller = if rng.below(self.hot_sellers_ratio) > 0 {
            self.last_person(eid) / HOT_BATCH_SIZE * HOT_BATCH_SIZE
        } else {
            self.random_person(rng, eid)
        } + FIRST_PERSON_ID;
        let category = FIRST_CATEGORY_ID + rng.below(NUM_CATEGORIES) as i64;
        let initial_bid = price(rng);
        let expires = t + self.auction_length_ms(rng, n, t);
        let item_name = self.word(rng, ITEM_NAME_MAX);
        let description = self.word(rng, DESCRIPTION_MAX);
        let reserve = initial_bid + price(rng);
        let accounted = RECORD_BASE_BYTES
            + item_name.len() as u64
            + description.len() as u64
            + AUCTION_NUMBERS_BYTES;
        let extra = self.extra(rng, accounted, self.avg_auction_bytes);
        Auction {
            id,
            item_name: Text::from_static(item_name),
            description: Text::from_static(description),
            initial_bid,
            reserve,
            date_time: t,
            expires,
            seller,
            category,
            extra,
        }
    }

    /// Uniform on [1, 2·horizon] where horizon is the event time until ~100 more auctions
    /// exist (SPEC.md §2.6, "Auction length").
    fn auction_length_ms(&self, rng: &mut SplitMix64, n: u64, t: i64) -> i64 {
        let horizon = self.timestamp(n + self.auction_horizon_events) - t;
        1 + rng.below((2 * horizon).max(1) as u64) as i64
    }

    fn bid(&self, rng: &mut SplitMix64, eid: i64, t: i64) -> Bid {
        let auction = if rng.below(self.hot_auction_ratio) > 0 {
            self.last_auction(eid) / HOT_BATCH_SIZE * HOT_BATCH_SIZE
        } else {
            self.random_auction(rng, eid)
        } + FIRST_AUCTION_ID;
        let mut bidder = if rng.below(self.hot_bidders_ratio) > 0 {
            // The second person of the block, so the hot bidder is not the hot seller.
            self.last_person(eid) / HOT_BATCH_SIZE * HOT_BATCH_SIZE + 1
        } else {
            self.random_person(rng, eid)
        } + FIRST_PERSON_ID;
        let price = price(rng);
        let (channel, url) = if rng.below(HOT_CHANNEL_RATIO) > 0 {
            self.pools.hot_channel(rng.below(HOT_CHANNELS.len() as u64))
        } else {
            self.pools.channel(rng.below(NUM_CHANNELS))
        };
        if self.bidder_offset == BidderOffset::FlinkDouble {
            bidder += FIRST_PERSON_ID; // SPEC.md §2.9.1: Flink adds the offset a second time.
        }
        let extra = self.extra(rng, BID_ACCOUNTED_BYTES, self.avg_bid_bytes);
        Bid {
            auction,
            bidder,
            price,
            channel: Text::from_static(channel),
            url: Text::from_static(url),
            date_time: t,
            extra,
        }
    }

    /// `str(max)`: a trimmed window of 3..max−1 characters of the `str()` pool.
    fn word(&self, rng: &mut SplitMix64, max: u64) -> &'static str {
        let len = 3 + rng.below(max - 3);
        let offset = rng.below(WORD_POOL_LEN - len);
        self.pools.word(offset, len)
    }

    /// `str(7) + "@" + str(5) + ".com"`, at most 6 + 1 + 4 + 4 = 15 bytes, inline.
    fn email(&self, rng: &mut SplitMix64) -> Text {
        let mut builder = InlineBuilder::new();
        builder.push(self.word(rng, EMAIL_USER_MAX));
        builder.push_ascii(b'@');
        builder.push(self.word(rng, EMAIL_DOMAIN_MAX));
        builder.push(".com");
        builder.finish()
    }

    /// Padding so the accounted size averages `avg` (SPEC.md §2.7 `extra(cur, avg)`).
    fn extra(&self, rng: &mut SplitMix64, accounted: u64, avg: u64) -> Text {
        if accounted > avg {
            return Text::EMPTY;
        }
        let target = avg - accounted;
        // round_half_up(target × 0.2) in integers: ties cannot occur for integer targets.
        let delta = (2 * target + 5) / 10;
        let size = target - delta + if delta == 0 { 0 } else { rng.below(2 * delta) };
        let offset = rng.below(EXTRA_POOL_LEN - size);
        Text::from_static(self.pools.extra(offset, size))
    }
}

impl Iterator for NexmarkGenerator {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        self.next_event()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = usize::try_from(self.remaining()).unwrap_or(usize::MAX);
        (remaining, usize::try_from(self.remaining()).ok())
    }
}

/// `round_half_up(10^(6·u) × 100)` cents: log-uniform on [$1, $1M] (SPEC.md §2.7).
/// `exp` instead of `powf(10, x)`: same value to ~1 ulp, half the cost (benches/generator.rs).
/// Java's `Math.round` is `floor(x + 0.5)`; x ≥ 100 here, so truncating `as` is that floor and
/// avoids a libm `floor` call on targets without SSE4.1.
fn price(rng: &mut SplitMix64) -> i64 {
    let x = (rng.next_f64() * 6.0 * std::f64::consts::LN_10).exp() * 100.0;
    debug_assert!(x >= 99.0);
    (x + 0.5) as i64
}

/// Four groups of four decimal digits separated by spaces (19 bytes, inline).
fn credit_card(rng: &mut SplitMix64) -> Text {
    let mut builder = InlineBuilder::new();
    for group in 0..4 {
        if group > 0 {
            builder.push_ascii(b' ');
        }
        let mut value = rng.below(10_000);
        let mut digits = [b'0'; 4];
        for digit in digits.iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
        for digit in digits {
            builder.push_ascii(digit);
        }
    }
    builder.finish()
}

#[cfg(test)]
mod tests;
