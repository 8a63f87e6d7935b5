//! q5, hot items: the auctions with the most bids in each hopping window of 10 s every 2 s
//! (SPEC.md §3.2), ties all emitted.
//!
//! Flink joins each window's per-auction counts with the window's maximum count. Here the join
//! is a keyed process function instead, because both sides come from the same window result:
//! 1. per auction, a sliding event-time window counts the bids (parallel over auctions); each
//!    count leaves with its window when the watermark passes the window's end;
//! 2. keyed by window, [`HottestAuctions`] keeps only the leading count and the auctions that
//!    have it, and emits them from an event-time timer at the window's last millisecond. Every
//!    count of a window arrives before that timer fires: step 1 emits a window's counts before
//!    it forwards the watermark that fires it.
//!
//! Late bids (all of whose windows have fired) are dropped by step 1, as Flink's window does.

use std::time::Duration;

use corestrom_operators::prelude::*;
use corestrom_operators::state::SnapshotHandle;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::nexmark::model::{Bid, Event};
use crate::nexmark::queries::event_time::bids_in_event_time;
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;

/// (auction, num).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Q5Row {
    pub auction: i64,
    pub num: i64,
}

const SIZE: Duration = Duration::from_secs(10);
const SLIDE: Duration = Duration::from_secs(2);

/// Bids on one auction in one window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionCount {
    pub auction: i64,
    pub window_end: i64,
    pub num: i64,
}

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q5Row> {
    bids_in_event_time(events)
        .key_by(|b: &Bid| b.auction)
        .window(SlidingEventTimeWindows::of(SIZE, SLIDE))
        .aggregate_with(
            Count,
            |auction: &i64, window: &TimeWindow, num: u64, out: &mut Vec<AuctionCount>| {
                out.push(AuctionCount {
                    auction: *auction,
                    window_end: window.end,
                    num: num as i64,
                })
            },
        )
        .key_by(|c: &AuctionCount| c.window_end)
        .process(HottestAuctions::default())
        .main()
}

/// Keyed by window end: the window's leading auctions, emitted when the window is complete.
#[derive(Clone, Debug, Default)]
pub struct HottestAuctions {
    state: HottestAuctionsState,
}

/// What [`HottestAuctions`] keeps per shard: the leaders of every open window.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HottestAuctionsState {
    windows: FxHashMap<i64, WindowLeaders>,
}

/// The largest count seen in one window and the auctions that have it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct WindowLeaders {
    num: i64,
    auctions: Vec<i64>,
}

impl KeyedProcessFunction<i64, AuctionCount> for HottestAuctions {
    type Out = Q5Row;
    type Side = ();

    fn process_element(
        &mut self,
        count: AuctionCount,
        ctx: &mut ProcessContext<'_, i64, Q5Row, ()>,
    ) {
        let leaders = self
            .state
            .windows
            .entry(count.window_end)
            .or_insert_with(|| {
                ctx.register_event_time_timer(count.window_end - 1);
                WindowLeaders {
                    num: count.num,
                    auctions: Vec::new(),
                }
            });
        if count.num > leaders.num {
            leaders.num = count.num;
            leaders.auctions.clear();
        }
        if count.num == leaders.num {
            leaders.auctions.push(count.auction);
        }
    }

    fn on_timer(&mut self, _timestamp: EventTime, ctx: &mut ProcessContext<'_, i64, Q5Row, ()>) {
        let window_end = *ctx.key();
        if let Some(leaders) = self.state.windows.remove(&window_end) {
            for auction in leaders.auctions {
                ctx.output(Q5Row {
                    auction,
                    num: leaders.num,
                });
            }
        }
    }

    fn state_handles(&mut self) -> Option<Vec<&mut dyn SnapshotHandle<i64>>> {
        Some(vec![&mut self.state.windows])
    }
}

impl ResultRow for Q5Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        row.int("auction", self.auction).int("num", self.num)
    }
}
