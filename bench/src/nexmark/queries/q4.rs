//! q4, average price for a category: the average over a category's auctions of each auction's
//! highest in-time bid (SPEC.md §3.2).
//!
//! Three stages, as Flink's plan: the unwindowed join of auctions and bids on `id = auction`
//! with the residual condition `A.dateTime <= B.dateTime <= A.expires` ([`RegularJoin`]); the
//! maximum price per (auction, category); the average of those maxima per category. In Flink
//! both aggregations are updating (a higher bid retracts the auction's old maximum from its
//! category's average); FORMAT.md asks for the final table, so each stage keeps its value in
//! place and passes it on when the input ends ([`FinalTable`]): the maxima are final before the
//! averages are taken, which is what the retractions converge to.
//!
//! `AVG` of a BIGINT is a BIGINT in Flink: the sum divided by the count, truncated.

use corestrom_operators::prelude::*;
use serde::{Deserialize, Serialize};

use crate::nexmark::model::{Auction, Bid, Event};
use crate::nexmark::queries::final_table::FinalTable;
use crate::nexmark::queries::regular_join::RegularJoin;
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;

/// (category, avg).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Q4Row {
    pub category: i64,
    pub avg: i64,
}

/// The auction columns the join keeps: (id, category, dateTime, expires).
type OpenAuction = (i64, i64, i64, i64);
/// The bid columns the join keeps: (auction, price, dateTime).
type TimedPrice = (i64, i64, i64);

/// A category's running sum and count of auction maxima.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct Average {
    sum: i64,
    count: i64,
}

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q4Row> {
    let auctions = events.filter_map(|e: Event| {
        e.into_auction()
            .map(|a: Auction| (a.id, a.category, a.date_time, a.expires))
    });
    let bids =
        events.filter_map(|e: Event| e.into_bid().map(|b: Bid| (b.auction, b.price, b.date_time)));
    auctions
        .connect(&bids)
        .key_by(|a: &OpenAuction| a.0, |b: &TimedPrice| b.0)
        .process(RegularJoin::new(
            |&(id, category, opens, expires): &OpenAuction, &(_, price, at): &TimedPrice| {
                (opens <= at && at <= expires).then_some((id, category, price))
            },
        ))
        .key_by(|&(id, category, _): &(i64, i64, i64)| (id, category))
        .process(FinalTable::new(
            |max: &mut Option<i64>, (_, _, price): (i64, i64, i64)| {
                *max = Some(max.map_or(price, |m| m.max(price)));
            },
            |&(_, category): &(i64, i64), max: Option<i64>, out: &mut dyn FnMut((i64, i64))| {
                if let Some(max) = max {
                    out((category, max));
                }
            },
        ))
        .key_by(|&(category, _): &(i64, i64)| category)
        .process(FinalTable::new(
            |avg: &mut Average, (_, max): (i64, i64)| {
                avg.sum += max;
                avg.count += 1;
            },
            |&category: &i64, avg: Average, out: &mut dyn FnMut(Q4Row)| {
                if avg.count > 0 {
                    out(Q4Row {
                        category,
                        avg: avg.sum / avg.count,
                    });
                }
            },
        ))
        .main()
}

impl ResultRow for Q4Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        row.int("category", self.category).int("avg", self.avg)
    }
}
