//! q8, monitor new users: the persons who registered and opened an auction in the same 10 s
//! tumbling event-time window (SPEC.md §3.2).
//!
//! Flink groups each side by window (distinct persons `(id, name)`, distinct sellers) and joins
//! the two grouped tables on id and window. Here it is one window co-group of persons and
//! auctions keyed by person id = seller: per key and window, when the window fires, every
//! distinct `(id, name)` among the window's persons is emitted if the window has an auction of
//! that seller, so the grouping and the join happen together without a second state. Append;
//! a window's rows appear when the watermark (4 s behind the newest event) passes its end.

use std::time::Duration;

use corestrom_operators::prelude::*;
use corestrom_operators::window::window_start;

use crate::nexmark::model::{Event, Person};
use crate::nexmark::queries::event_time::OUT_OF_ORDERNESS;
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;
use crate::nexmark::text::Text;

/// (id, name, stime): the person and the start of the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Q8Row {
    pub id: i64,
    pub name: Text,
    pub stime: i64,
}

const WINDOW: Duration = Duration::from_secs(10);
const WINDOW_MS: i64 = WINDOW.as_millis() as i64;

/// The person columns kept in the window: (id, name, dateTime).
type NewPerson = (i64, Text, i64);

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q8Row> {
    let timed = events.with_timestamps(
        Event::date_time,
        WatermarkStrategy::bounded_out_of_orderness(OUT_OF_ORDERNESS),
    );
    let persons =
        timed.filter_map(|e: Event| e.into_person().map(|p: Person| (p.id, p.name, p.date_time)));
    let sellers = timed.filter_map(|e: Event| e.into_auction().map(|a| a.seller));
    persons
        .join(&sellers)
        .where_key(|p: &NewPerson| p.0)
        .equal_to(|seller: &i64| *seller)
        .window(TumblingEventTimeWindows::of(WINDOW))
        .co_group(
            |persons: &mut dyn Iterator<Item = &NewPerson>,
             sellers: &mut dyn Iterator<Item = &i64>,
             out: &mut Vec<Q8Row>| {
                if sellers.next().is_none() {
                    return;
                }
                // `out` holds only this window's rows: the distinct names of one id, almost
                // always a single one, so a linear scan is the cheapest set.
                for (id, name, at) in persons {
                    if !out.iter().any(|row| row.name == *name) {
                        out.push(Q8Row {
                            id: *id,
                            name: name.clone(),
                            stime: window_start(*at, 0, WINDOW_MS),
                        });
                    }
                }
            },
        )
}

impl ResultRow for Q8Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        row.int("id", self.id)
            .str("name", &self.name)
            .timestamp("stime", self.stime)
    }
}
