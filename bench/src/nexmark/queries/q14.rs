//! q14, calculation: bids whose euro price `0.908 × price` lies strictly between 1 000 000 and
//! 50 000 000, with the euro price, the time-of-day class of the UTC hour and the number of `c`
//! bytes in `extra` (the `count_char` UDF), SPEC.md §3.2.
//!
//! Decimal arithmetic is exact: prices are compared and emitted in thousandths (`price × 908`),
//! as Flink's DECIMAL(23,3), never as floating point.

use corestrom_operators::prelude::*;

use crate::nexmark::model::Event;
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;
use crate::nexmark::text::Text;

/// (auction, bidder, price DECIMAL(23,3), bidTimeType, dateTime, extra, c_counts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Q14Row {
    pub auction: i64,
    pub bidder: i64,
    /// `0.908 × price`, in thousandths.
    pub price_milli: i128,
    pub bid_time_type: BidTimeType,
    pub date_time: i64,
    pub extra: Text,
    pub c_counts: i64,
}

/// q14's classification of the bid's UTC hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BidTimeType {
    /// 08:00–18:59.
    DayTime,
    /// 00:00–06:59 and 20:00–23:59.
    NightTime,
    /// 07:00–07:59 and 19:00–19:59.
    OtherTime,
}

impl BidTimeType {
    /// The class of the hour (UTC) of `ms`, as q14's CASE expression.
    pub fn of(ms: i64) -> BidTimeType {
        let hour = ms.rem_euclid(86_400_000) / 3_600_000;
        match hour {
            8..=18 => BidTimeType::DayTime,
            0..=6 | 20..=23 => BidTimeType::NightTime,
            _ => BidTimeType::OtherTime,
        }
    }

    /// The SQL string value.
    pub fn as_str(self) -> &'static str {
        match self {
            BidTimeType::DayTime => "dayTime",
            BidTimeType::NightTime => "nightTime",
            BidTimeType::OtherTime => "otherTime",
        }
    }
}

/// Bounds of the filter on `0.908 × price`, in thousandths (exclusive on both sides).
const EURO_MILLI_LOW: i128 = 1_000_000 * 1_000;
const EURO_MILLI_HIGH: i128 = 50_000_000 * 1_000;

/// The `count_char(s, c)` UDF: how many bytes of `s` equal `c`.
pub fn count_char(s: &str, c: u8) -> i64 {
    s.bytes().filter(|&b| b == c).count() as i64
}

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q14Row> {
    events.filter_map(|e: Event| {
        let Event::Bid(b) = e else { return None };
        let price_milli = i128::from(b.price) * 908;
        if price_milli <= EURO_MILLI_LOW || price_milli >= EURO_MILLI_HIGH {
            return None;
        }
        Some(Q14Row {
            auction: b.auction,
            bidder: b.bidder,
            price_milli,
            bid_time_type: BidTimeType::of(b.date_time),
            date_time: b.date_time,
            c_counts: count_char(&b.extra, b'c'),
            extra: b.extra,
        })
    })
}

impl ResultRow for Q14Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        row.int("auction", self.auction)
            .int("bidder", self.bidder)
            .decimal("price", self.price_milli, 3)
            .str("bidTimeType", self.bid_time_type.as_str())
            .timestamp("dateTime", self.date_time)
            .str("extra", &self.extra)
            .int("c_counts", self.c_counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_are_classified_as_the_case_expression() {
        let hour = |h: i64| BidTimeType::of(h * 3_600_000 + 59 * 60_000);
        let classes: Vec<_> = (0..24).map(hour).collect();
        for (h, class) in classes.iter().enumerate() {
            let expected = if (8..=18).contains(&h) {
                BidTimeType::DayTime
            } else if h <= 6 || h >= 20 {
                BidTimeType::NightTime
            } else {
                BidTimeType::OtherTime
            };
            assert_eq!(*class, expected, "hour {h}");
        }
        // Before the epoch the hour is still the UTC hour of the day.
        assert_eq!(BidTimeType::of(-1), BidTimeType::NightTime);
        assert_eq!(BidTimeType::of(-5 * 3_600_000), BidTimeType::OtherTime);
    }

    #[test]
    fn count_char_counts_bytes() {
        assert_eq!(count_char("", b'c'), 0);
        assert_eq!(count_char("cacc ç C", b'c'), 3);
    }
}
