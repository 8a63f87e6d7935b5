//! q7, highest bid: the bids whose price is the maximum of a tumbling 10 s window, a bid at
//! exactly the window's end included (SPEC.md §3.2: `dateTime BETWEEN end - 10 s AND end`).
//!
//! Flink joins every bid with the window maxima in a regular join (all bids in state for the
//! whole run). Here it is a per-window join, in two keyed process function stages of the same
//! [`HighestBids`] logic:
//! 1. keyed by (window, a bucket of the bidder), so the work spreads over shards: each key keeps
//!    the bids that can still be a maximum of its window and emits them when the window is
//!    complete (event-time timer at the window's end, the last millisecond that may join);
//! 2. keyed by window: the same selection over the buckets' survivors, emitting the bids that
//!    equal the window's maximum.
//!
//! A bid at a window's start `s` counts toward the window `[s, s + 10 s)` and is also a join
//! candidate (not counted) of the window ending at `s`. A bid arriving after its window's timer
//! fired is dropped (Flink drops it from the maximum, but its regular join could still match it;
//! with a generator within the 4 s bound this does not happen).

use std::time::Duration;

use corestrom_operators::prelude::*;
use corestrom_operators::state::SnapshotHandle;
use corestrom_operators::window::window_start;
use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::nexmark::model::{Bid, Event};
use crate::nexmark::queries::event_time::bids_in_event_time;
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;
use crate::nexmark::text::Text;

/// (auction, bidder, price, dateTime, extra), in the select order of the Flink SQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Q7Row {
    pub auction: i64,
    pub bidder: i64,
    pub price: i64,
    pub date_time: i64,
    pub extra: Text,
}

const WINDOW: Duration = Duration::from_secs(10);
const WINDOW_MS: i64 = WINDOW.as_millis() as i64;
/// Buckets per window in stage 1: enough to spread a window over any shard count used here.
const BUCKETS: i64 = 64;

/// A bid that may join a window's maximum price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// End of the window it may join.
    pub window_end: i64,
    /// In the window (counts toward its maximum), or exactly at its end (only joins).
    pub in_window: bool,
    pub bid: Bid,
}

/// The candidates of `bid`: its own window, and the previous one when it lies on the boundary.
fn candidates(bid: Bid) -> impl Iterator<Item = Candidate> {
    let start = window_start(bid.date_time, 0, WINDOW_MS);
    let boundary = (bid.date_time == start).then(|| Candidate {
        window_end: start,
        in_window: false,
        bid: bid.clone(),
    });
    std::iter::once(Candidate {
        window_end: start + WINDOW_MS,
        in_window: true,
        bid,
    })
    .chain(boundary)
}

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q7Row> {
    bids_in_event_time(events)
        .flat_map(candidates)
        .key_by(|c: &Candidate| (c.window_end, c.bid.bidder.rem_euclid(BUCKETS)))
        .process(HighestBids::<(i64, i64)>::new(Stage::Survivors))
        .key_by(|c: &Candidate| c.window_end)
        .process(HighestBids::<i64>::new(Stage::Winners))
        .map(|c: Candidate| Q7Row {
            auction: c.bid.auction,
            bidder: c.bid.bidder,
            price: c.bid.price,
            date_time: c.bid.date_time,
            extra: c.bid.extra,
        })
}

/// What a [`HighestBids`] stage emits when a window is complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Every candidate that may still equal the window's maximum (for a later stage).
    Survivors,
    /// The bids that equal the window's maximum.
    Winners,
}

/// Per key (one window, or one bucket of a window): the bids that can still join the maximum.
#[derive(Clone, Debug)]
pub struct HighestBids<K> {
    stage: Stage,
    state: HighestBidsState<K>,
}

/// What [`HighestBids`] keeps per shard.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound = "K: Serialize + DeserializeOwned + Eq + std::hash::Hash")]
pub struct HighestBidsState<K> {
    open: FxHashMap<K, WindowCandidates>,
}

/// Invariant: `bids` holds the in-window bids priced at `max` and the boundary bids priced at
/// least `max` (all boundary bids while there is no in-window bid yet).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct WindowCandidates {
    max: Option<i64>,
    bids: Vec<Candidate>,
}

impl WindowCandidates {
    fn add(&mut self, candidate: Candidate) {
        let price = candidate.bid.price;
        if self.max.is_some_and(|max| price < max) {
            return;
        }
        if candidate.in_window && self.max.is_none_or(|max| price > max) {
            self.max = Some(price);
            self.bids.retain(|c| !c.in_window && c.bid.price >= price);
        }
        self.bids.push(candidate);
    }

    /// What the window emits when it is complete, in `stage`.
    fn emit(self, stage: Stage) -> impl Iterator<Item = Candidate> {
        let max = self.max;
        self.bids.into_iter().filter(move |c| match stage {
            Stage::Survivors => true,
            Stage::Winners => max == Some(c.bid.price),
        })
    }
}

impl<K> HighestBids<K> {
    pub fn new(stage: Stage) -> Self {
        HighestBids {
            stage,
            state: HighestBidsState {
                open: FxHashMap::default(),
            },
        }
    }
}

impl<K> KeyedProcessFunction<K, Candidate> for HighestBids<K>
where
    K: Clone + Eq + std::hash::Hash + Send + Sync + Serialize + DeserializeOwned + StableHash,
    K: 'static,
{
    type Out = Candidate;
    type Side = ();

    fn process_element(
        &mut self,
        candidate: Candidate,
        ctx: &mut ProcessContext<'_, K, Candidate, ()>,
    ) {
        if candidate.window_end <= ctx.current_watermark() {
            return; // its window was already emitted
        }
        let window_end = candidate.window_end;
        self.state
            .open
            .entry(ctx.key().clone())
            .or_insert_with(|| {
                ctx.register_event_time_timer(window_end);
                WindowCandidates::default()
            })
            .add(candidate);
    }

    fn on_timer(&mut self, _timestamp: EventTime, ctx: &mut ProcessContext<'_, K, Candidate, ()>) {
        if let Some(window) = self.state.open.remove(ctx.key()) {
            for candidate in window.emit(self.stage) {
                ctx.output(candidate);
            }
        }
    }

    fn state_handles(&mut self) -> Option<Vec<&mut dyn SnapshotHandle<K>>> {
        Some(vec![&mut self.state.open])
    }
}

impl ResultRow for Q7Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        row.int("auction", self.auction)
            .int("bidder", self.bidder)
            .int("price", self.price)
            .timestamp("dateTime", self.date_time)
            .str("extra", &self.extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn candidate(price: i64, in_window: bool) -> Candidate {
        Candidate {
            window_end: 10_000,
            in_window,
            bid: Bid {
                auction: price,
                bidder: 1,
                price,
                channel: Text::EMPTY,
                url: Text::EMPTY,
                date_time: if in_window { 5_000 } else { 10_000 },
                extra: Text::EMPTY,
            },
        }
    }

    #[test]
    fn window_keeps_the_maximum_and_boundary_bids_that_may_equal_it() {
        let mut window = WindowCandidates::default();
        window.add(candidate(300, false)); // no maximum yet: kept
        window.add(candidate(50, false)); // kept too: may equal the maximum
        window.add(candidate(100, true));
        window.add(candidate(90, true)); // below
        window.add(candidate(100, true)); // tie
        window.add(candidate(80, false)); // below
        let mut kept: Vec<_> = window
            .bids
            .iter()
            .map(|c| (c.bid.price, c.in_window))
            .collect();
        kept.sort();
        assert_eq!(window.max, Some(100));
        assert_eq!(kept, [(100, true), (100, true), (300, false)]);
        window.add(candidate(300, true));
        let mut kept: Vec<_> = window
            .bids
            .iter()
            .map(|c| (c.bid.price, c.in_window))
            .collect();
        kept.sort();
        assert_eq!(kept, [(300, false), (300, true)]);
    }

    proptest! {
        /// Against the SQL definition (the window's maximum over its in-window bids, joined
        /// with every candidate at that price), with the candidates spread over buckets whose
        /// survivors go through the second stage.
        #[test]
        fn two_stages_select_the_bids_at_the_window_maximum(
            input in proptest::collection::vec((0i64..6, any::<bool>(), 0usize..3), 0..40)
        ) {
            let all: Vec<Candidate> = input
                .iter()
                .map(|&(price, in_window, _)| candidate(price, in_window))
                .collect();
            let mut buckets = vec![WindowCandidates::default(); 3];
            for (c, &(_, _, bucket)) in all.iter().zip(&input) {
                buckets[bucket].add(c.clone());
            }
            let mut last = WindowCandidates::default();
            for bucket in buckets {
                for survivor in bucket.emit(Stage::Survivors) {
                    last.add(survivor);
                }
            }
            let mut got: Vec<_> = last
                .emit(Stage::Winners)
                .map(|c| (c.bid.price, c.in_window))
                .collect();
            got.sort();
            let max = all.iter().filter(|c| c.in_window).map(|c| c.bid.price).max();
            let mut expected: Vec<_> = all
                .iter()
                .filter(|c| Some(c.bid.price) == max)
                .map(|c| (c.bid.price, c.in_window))
                .collect();
            expected.sort();
            prop_assert_eq!(got, expected);
        }
    }
}
