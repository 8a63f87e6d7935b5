//! Event time for the windowed queries: every event's `dateTime` is its timestamp and the
//! watermark trails the newest one by 4 s (SPEC.md §3.0), as the `WATERMARK FOR dateTime AS
//! dateTime - INTERVAL '4' SECOND` of the Flink DDL. The watermark is computed over all events
//! before the `bid` view is taken, as in Flink, where the watermark belongs to the whole table.

use std::time::Duration;

use corestrom_operators::prelude::*;

use crate::nexmark::model::{Bid, Event};

/// SPEC.md §3.0's bounded out-of-orderness.
pub const OUT_OF_ORDERNESS: Duration = Duration::from_secs(4);

/// The bids of `events`, timestamped by `dateTime`, with 4 s bounded out-of-orderness watermarks.
pub(crate) fn bids_in_event_time(events: &Stream<Event>) -> Stream<Bid> {
    events
        .with_timestamps(
            Event::date_time,
            WatermarkStrategy::bounded_out_of_orderness(OUT_OF_ORDERNESS),
        )
        .filter_map(Event::into_bid)
}
