//! Calendar columns of the unwindowed statistics queries: the UTC day
//! (`DATE_FORMAT(dateTime, 'yyyy-MM-dd')`) and minute (`'HH:mm'`) of an event time.
//!
//! They are kept as integers (days since the epoch, minute of the day) in keys and state, and
//! formatted only when a result row is written. Within one day, the string order of `HH:mm`
//! equals the numeric order of the minute of the day, so `max` over either agrees.

use crate::nexmark::timestamp::format_timestamp;

const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;

/// Days since 1970-01-01 (UTC) of the event time `ms`.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// Minutes since midnight (UTC) of the event time `ms`, 0..1440.
pub fn minute_of_day(ms: i64) -> i64 {
    ms.rem_euclid(DAY_MS) / MINUTE_MS
}

/// `yyyy-MM-dd` of a day number.
///
/// # Panics
/// Outside years 0..=9999, as `format_timestamp`.
pub fn day_text(day: i64) -> [u8; 10] {
    let ts = format_timestamp(day * DAY_MS);
    ts[..10]
        .try_into()
        .expect("a timestamp starts with its date")
}

/// `HH:mm` of a minute of the day.
pub fn minute_text(minute: i64) -> [u8; 5] {
    let ts = format_timestamp(minute * MINUTE_MS);
    ts[11..16]
        .try_into()
        .expect("a timestamp has HH:mm at 11..16")
}

/// The ASCII bytes of a formatted column as `&str`.
pub fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("formatted timestamps are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nexmark::timestamp::parse_timestamp;

    #[test]
    fn day_and_minute_match_date_format() {
        let t = parse_timestamp("2015-07-15 23:59:59.999").unwrap();
        assert_eq!(ascii(&day_text(day_of(t))), "2015-07-15");
        assert_eq!(ascii(&minute_text(minute_of_day(t))), "23:59");
        assert_eq!(ascii(&day_text(day_of(t + 1))), "2015-07-16");
        assert_eq!(ascii(&minute_text(minute_of_day(t + 1))), "00:00");
        let before_epoch = parse_timestamp("1969-12-31 12:34:00.000").unwrap();
        assert_eq!(ascii(&day_text(day_of(before_epoch))), "1969-12-31");
        assert_eq!(ascii(&minute_text(minute_of_day(before_epoch))), "12:34");
    }
}
