//! The timestamp text of event and result files: `YYYY-MM-DD hh:mm:ss.SSS`, UTC (FORMAT.md).
//!
//! Hand-written instead of chrono: the conversion is the civil-from-days algorithm of Howard
//! Hinnant (public domain, "chrono-Compatible Low-Level Date Algorithms"), about 20 integer
//! operations, with no allocation and no dependency. Years must be 0000..=9999 so that the text
//! is always exactly [`TIMESTAMP_LEN`] bytes; [`MIN_MS`] and [`MAX_MS`] are the bounds.

use thiserror::Error;

/// Bytes of a formatted timestamp.
pub const TIMESTAMP_LEN: usize = 23;
/// 0000-01-01 00:00:00.000 UTC.
pub const MIN_MS: i64 = -62_167_219_200_000;
/// 9999-12-31 23:59:59.999 UTC.
pub const MAX_MS: i64 = 253_402_300_799_999;

const MS_PER_DAY: i64 = 86_400_000;

/// Why a timestamp text was rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimestampError {
    #[error("expected `YYYY-MM-DD hh:mm:ss.SSS` (23 characters), got {len} characters")]
    Length { len: usize },
    #[error("expected `YYYY-MM-DD hh:mm:ss.SSS`, bad character at position {position}")]
    Shape { position: usize },
    #[error("{part} out of range")]
    Range { part: &'static str },
}

/// Formats `ms` since the epoch as `YYYY-MM-DD hh:mm:ss.SSS` (UTC).
///
/// # Panics
/// If `ms` is outside [`MIN_MS`]..=[`MAX_MS`] (a year that does not have four digits).
pub fn format_timestamp(ms: i64) -> [u8; TIMESTAMP_LEN] {
    assert!(
        (MIN_MS..=MAX_MS).contains(&ms),
        "timestamp {ms} ms is outside years 0..=9999"
    );
    let days = ms.div_euclid(MS_PER_DAY);
    let ms_of_day = ms.rem_euclid(MS_PER_DAY) as u32;
    let (year, month, day) = civil_from_days(days);
    let mut out = *b"0000-00-00 00:00:00.000";
    put_digits(&mut out[0..4], year as u32);
    put_digits(&mut out[5..7], month);
    put_digits(&mut out[8..10], day);
    put_digits(&mut out[11..13], ms_of_day / 3_600_000);
    put_digits(&mut out[14..16], ms_of_day / 60_000 % 60);
    put_digits(&mut out[17..19], ms_of_day / 1000 % 60);
    put_digits(&mut out[20..23], ms_of_day % 1000);
    out
}

/// Appends the formatted timestamp to `buf`.
///
/// # Panics
/// As [`format_timestamp`].
pub fn write_timestamp(buf: &mut Vec<u8>, ms: i64) {
    buf.extend_from_slice(&format_timestamp(ms));
}

/// The formatted timestamp as a `String` (for messages and tests; allocates).
///
/// # Panics
/// As [`format_timestamp`].
pub fn timestamp_string(ms: i64) -> String {
    String::from_utf8(format_timestamp(ms).to_vec()).expect("timestamps are ASCII")
}

/// Parses `YYYY-MM-DD hh:mm:ss.SSS` (UTC) into ms since the epoch. Strict: exactly this shape,
/// a real calendar date, hours < 24, minutes and seconds < 60.
///
/// # Errors
/// [`TimestampError`] saying what is wrong.
pub fn parse_timestamp(text: &str) -> Result<i64, TimestampError> {
    parse_timestamp_bytes(text.as_bytes())
}

/// [`parse_timestamp`] of raw bytes (any byte that is not the expected ASCII is a shape error,
/// so the bytes need no UTF-8 check first).
///
/// # Errors
/// [`TimestampError`] saying what is wrong.
pub fn parse_timestamp_bytes(b: &[u8]) -> Result<i64, TimestampError> {
    if b.len() != TIMESTAMP_LEN {
        return Err(TimestampError::Length { len: b.len() });
    }
    // Shape first, then ranges, so a text wrong in both ways reports its shape (as always).
    let (date, time) = b.split_at(DATE_LEN);
    check_shape(date, DATE_SHAPE, 0)?;
    check_shape(time, TIME_SHAPE, DATE_LEN)?;
    let days = date_value(date)?;
    Ok(days * MS_PER_DAY + time_value(time)?)
}

/// Shapes of the date and of the time-of-day part: `0` stands for any digit, every other byte
/// must be itself.
const DATE_SHAPE: &[u8; DATE_LEN] = b"0000-00-00";
const TIME_SHAPE: &[u8; TIMESTAMP_LEN - DATE_LEN] = b" 00:00:00.000";

/// Bytes of the date part `YYYY-MM-DD`; the rest, ` hh:mm:ss.SSS`, is the time of day.
const DATE_LEN: usize = 10;

/// Checks `b` against `shape` (same length; see [`DATE_SHAPE`]); `offset` is added to the
/// reported position.
fn check_shape(b: &[u8], shape: &[u8], offset: usize) -> Result<(), TimestampError> {
    debug_assert_eq!(b.len(), shape.len());
    for (position, (&byte, &expected)) in b.iter().zip(shape).enumerate() {
        let ok = if expected == b'0' {
            byte.is_ascii_digit()
        } else {
            byte == expected
        };
        if !ok {
            return Err(TimestampError::Shape {
                position: position + offset,
            });
        }
    }
    Ok(())
}

fn number(digits: &[u8]) -> u32 {
    digits.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0'))
}

/// Days since 1970-01-01 of `YYYY-MM-DD` (exactly [`DATE_LEN`] bytes, shape checked).
fn date_value(b: &[u8]) -> Result<i64, TimestampError> {
    debug_assert_eq!(b.len(), DATE_LEN);
    let (year, month, day) = (number(&b[0..4]), number(&b[5..7]), number(&b[8..10]));
    if !(1..=12).contains(&month) {
        return Err(TimestampError::Range { part: "month" });
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err(TimestampError::Range { part: "day" });
    }
    Ok(days_from_civil(i64::from(year), month, day))
}

/// Milliseconds since midnight of ` hh:mm:ss.SSS` (the 13 bytes after the date, shape
/// checked).
fn time_value(b: &[u8]) -> Result<i64, TimestampError> {
    debug_assert_eq!(b.len(), TIMESTAMP_LEN - DATE_LEN);
    let (hour, minute, second, milli) = (
        number(&b[1..3]),
        number(&b[4..6]),
        number(&b[7..9]),
        number(&b[10..13]),
    );
    if hour > 23 {
        return Err(TimestampError::Range { part: "hour" });
    }
    if minute > 59 {
        return Err(TimestampError::Range { part: "minute" });
    }
    if second > 59 {
        return Err(TimestampError::Range { part: "second" });
    }
    Ok(
        ((i64::from(hour) * 60 + i64::from(minute)) * 60 + i64::from(second)) * 1000
            + i64::from(milli),
    )
}

/// A timestamp parser that remembers the last date it converted: the events of a file come in
/// (nearly) time order, so consecutive timestamps share their date, and the calendar arithmetic
/// and the date's validation are done once per day instead of once per event. Accepts and
/// rejects exactly what [`parse_timestamp_bytes`] does (the cached date was validated when it
/// was stored; the time of day is validated every time).
#[derive(Debug, Clone, Default)]
pub struct DateCache {
    /// The date bytes of the last valid timestamp, and its days since the epoch; `None` before.
    last: Option<([u8; DATE_LEN], i64)>,
}

impl DateCache {
    /// As [`parse_timestamp_bytes`].
    ///
    /// # Errors
    /// [`TimestampError`] saying what is wrong.
    pub fn parse(&mut self, b: &[u8]) -> Result<i64, TimestampError> {
        if b.len() != TIMESTAMP_LEN {
            return Err(TimestampError::Length { len: b.len() });
        }
        let (date, time) = b.split_at(DATE_LEN);
        match &self.last {
            Some((cached, days)) if cached.as_slice() == date => {
                check_shape(time, TIME_SHAPE, DATE_LEN)?;
                Ok(days * MS_PER_DAY + time_value(time)?)
            }
            _ => {
                let ms = parse_timestamp_bytes(b)?;
                let mut key = [0u8; DATE_LEN];
                key.copy_from_slice(date);
                self.last = Some((key, ms.div_euclid(MS_PER_DAY)));
                Ok(ms)
            }
        }
    }
}

/// Writes `value` as exactly `out.len()` decimal digits (leading zeros).
fn put_digits(out: &mut [u8], mut value: u32) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
    debug_assert_eq!(value, 0, "value has more digits than the field");
}

fn is_leap_year(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// (year, month 1..=12, day 1..=31) of `days` since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // Shift the epoch to 0000-03-01, the start of a 400-year era.
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a proleptic Gregorian date; inverse of `civil_from_days`.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Seconds computed once with `date -u -d @SECS '+%Y-%m-%d %H:%M:%S'` (GNU date).
    const KNOWN: [(i64, &str); 12] = [
        (0, "1970-01-01 00:00:00"),
        (951_782_400, "2000-02-29 00:00:00"),
        (951_868_799, "2000-02-29 23:59:59"),
        (951_868_800, "2000-03-01 00:00:00"),
        (1_078_012_800, "2004-02-29 00:00:00"),
        (4_107_542_399, "2100-02-28 23:59:59"),
        (4_107_542_400, "2100-03-01 00:00:00"),
        (1_436_918_400, "2015-07-15 00:00:00"),
        (1_709_208_000, "2024-02-29 12:00:00"),
        (1_735_689_599, "2024-12-31 23:59:59"),
        (-1, "1969-12-31 23:59:59"),
        (-2_208_988_800, "1900-01-01 00:00:00"),
    ];

    #[test]
    fn timestamp_formats_known_dates() {
        for (secs, text) in KNOWN {
            assert_eq!(
                timestamp_string(secs * 1000),
                format!("{text}.000"),
                "secs {secs}"
            );
            assert_eq!(timestamp_string(secs * 1000 + 7), format!("{text}.007"));
            assert_eq!(
                parse_timestamp(&format!("{text}.123")),
                Ok(secs * 1000 + 123)
            );
        }
        assert_eq!(timestamp_string(-1), "1969-12-31 23:59:59.999");
        assert_eq!(timestamp_string(MIN_MS), "0000-01-01 00:00:00.000");
        assert_eq!(timestamp_string(MAX_MS), "9999-12-31 23:59:59.999");
    }

    #[test]
    fn timestamp_rejects_malformed_text() {
        assert_eq!(
            parse_timestamp("2015-07-15 00:00:00"),
            Err(TimestampError::Length { len: 19 })
        );
        assert_eq!(
            parse_timestamp("2015-07-15T00:00:00.000"),
            Err(TimestampError::Shape { position: 10 })
        );
        assert_eq!(
            parse_timestamp("2015-02-29 00:00:00.000"),
            Err(TimestampError::Range { part: "day" })
        );
        assert_eq!(
            parse_timestamp("2015-13-01 00:00:00.000"),
            Err(TimestampError::Range { part: "month" })
        );
        assert_eq!(
            parse_timestamp("2015-12-01 24:00:00.000"),
            Err(TimestampError::Range { part: "hour" })
        );
        assert!(parse_timestamp("2016-02-29 23:59:59.999").is_ok());
    }

    proptest! {
        #[test]
        fn timestamp_round_trips(ms in MIN_MS..=MAX_MS) {
            let text = timestamp_string(ms);
            prop_assert_eq!(parse_timestamp(&text), Ok(ms));
        }

        /// The date cache accepts and rejects exactly what the plain parser does, whatever came
        /// before (a cached date must not make a bad time of day or another date pass).
        #[test]
        fn timestamp_date_cache_agrees_with_the_plain_parser(
            texts in proptest::collection::vec(
                prop_oneof![
                    (MIN_MS..=MAX_MS).prop_map(timestamp_string),
                    (1_436_918_400_000i64..1_437_004_800_000).prop_map(timestamp_string),
                    "2015-07-1[45] [0-2][0-9]:[0-6][0-9]:[0-6][0-9]\\.[0-9]{3}",
                    "[0-9 :.-]{21,24}",
                ],
                1..40,
            )
        ) {
            let mut cache = DateCache::default();
            for text in &texts {
                prop_assert_eq!(cache.parse(text.as_bytes()), parse_timestamp(text), "{}", text);
            }
        }

        #[test]
        fn timestamp_days_round_trip(days in -800_000i64..3_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
            prop_assert!(d >= 1 && d <= days_in_month(y.rem_euclid(400) as u32 + 2000, m));
        }
    }
}
