//! Result rows as JSON lines (FORMAT.md "Results"): one object per row, keys the query's output
//! column names, integers as integers, timestamps as `YYYY-MM-DD hh:mm:ss.SSS` strings,
//! decimals and floats as JSON numbers, SQL NULL as `null`.
//!
//! ```
//! use corestrom_bench::nexmark::result::ResultWriter;
//! let mut out = ResultWriter::new(Vec::new());
//! // q1: auction, bidder, 0.908 * price (DECIMAL with 3 fraction digits), dateTime
//! let price = 4321_i64;
//! out.row()
//!     .int("auction", 1000)
//!     .int("bidder", 1001)
//!     .decimal("price", i128::from(price) * 908, 3)
//!     .timestamp("dateTime", 1_436_918_400_001)
//!     .end()
//!     .unwrap();
//! let bytes = out.finish().unwrap();
//! assert_eq!(
//!     String::from_utf8(bytes).unwrap(),
//!     "{\"auction\":1000,\"bidder\":1001,\"price\":3923.468,\"dateTime\":\"2015-07-15 00:00:00.001\"}\n"
//! );
//! ```
//!
//! A row is built in the writer's reused buffer (no allocation per row). A row dropped without
//! `end()` is removed from the buffer, so a half-built row never reaches the output.

use crate::nexmark::json::{WRITE_BUFFER_BYTES, write_i64, write_json_string};
use crate::nexmark::timestamp::write_timestamp;
use std::io::{self, Write};

/// Largest decimal scale: 10^18 still fits the fraction arithmetic comfortably.
pub const DECIMAL_SCALE_MAX: u32 = 18;

/// Writes result rows as JSON lines into any `io::Write`.
pub struct ResultWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    rows: u64,
}

impl<W: Write> ResultWriter<W> {
    pub fn new(out: W) -> ResultWriter<W> {
        ResultWriter {
            out,
            buf: Vec::with_capacity(WRITE_BUFFER_BYTES + 4096),
            rows: 0,
        }
    }

    /// Starts a row; add columns in output order, then call [`Row::end`].
    pub fn row(&mut self) -> Row<'_, W> {
        let start = self.buf.len();
        self.buf.push(b'{');
        Row {
            writer: self,
            start,
            columns: 0,
            ended: false,
        }
    }

    /// Rows ended so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Hands buffered rows to the underlying writer and flushes it.
    ///
    /// # Errors
    /// An I/O error of the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
    }

    /// Flushes buffered rows and gives access to the underlying writer.
    ///
    /// # Errors
    /// An I/O error of the underlying writer.
    pub fn flushed_inner(&mut self) -> io::Result<&mut W> {
        self.flush()?;
        Ok(&mut self.out)
    }

    /// Flushes and returns the underlying writer.
    ///
    /// # Errors
    /// An I/O error of the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush()?;
        Ok(self.out)
    }
}

/// One row under construction; columns are appended in call order.
#[must_use = "a row is only written by `end()`"]
pub struct Row<'a, W: Write> {
    writer: &'a mut ResultWriter<W>,
    /// Buffer length before this row, for discarding it if dropped unfinished.
    start: usize,
    columns: u32,
    ended: bool,
}

impl<W: Write> Row<'_, W> {
    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if self.columns > 0 {
            self.writer.buf.push(b',');
        }
        self.columns += 1;
        write_json_string(&mut self.writer.buf, key);
        self.writer.buf.push(b':');
        &mut self.writer.buf
    }

    /// A BIGINT column.
    pub fn int(mut self, key: &str, value: i64) -> Self {
        write_i64(self.key(key), value);
        self
    }

    /// A nullable BIGINT column.
    pub fn opt_int(self, key: &str, value: Option<i64>) -> Self {
        match value {
            Some(v) => self.int(key, v),
            None => self.null(key),
        }
    }

    /// A VARCHAR column.
    pub fn str(mut self, key: &str, value: &str) -> Self {
        write_json_string(self.key(key), value);
        self
    }

    /// A nullable VARCHAR column (e.g. q21's `channel_id`, q22's `dir1`).
    pub fn opt_str(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.str(key, v),
            None => self.null(key),
        }
    }

    /// A TIMESTAMP(3) column: ms since the epoch, written as the UTC timestamp string.
    ///
    /// # Panics
    /// If `ms` is outside years 0..=9999 (see `timestamp::format_timestamp`).
    pub fn timestamp(mut self, key: &str, ms: i64) -> Self {
        let buf = self.key(key);
        buf.push(b'"');
        write_timestamp(buf, ms);
        buf.push(b'"');
        self
    }

    /// A DECIMAL column given as `unscaled / 10^scale`, written with exactly `scale` fraction
    /// digits (q1's `0.908 * price` is `decimal(key, price * 908, 3)`).
    ///
    /// # Panics
    /// If `scale > DECIMAL_SCALE_MAX`.
    pub fn decimal(mut self, key: &str, unscaled: i128, scale: u32) -> Self {
        assert!(
            scale <= DECIMAL_SCALE_MAX,
            "decimal scale {scale} too large"
        );
        let buf = self.key(key);
        write_decimal(buf, unscaled, scale);
        self
    }

    /// A DOUBLE column; NaN and infinities (not representable in JSON) become `null`.
    pub fn float(mut self, key: &str, value: f64) -> Self {
        let buf = self.key(key);
        if value.is_finite() {
            // Rust's Display is the shortest text that reads back to the same f64, never in
            // exponent form, so always a valid JSON number.
            write!(buf, "{value}").expect("writing to a Vec cannot fail");
        } else {
            buf.extend_from_slice(b"null");
        }
        self
    }

    /// A NULL column.
    pub fn null(mut self, key: &str) -> Self {
        self.key(key).extend_from_slice(b"null");
        self
    }

    /// Finishes the row (`}` and newline); flushes the buffer to the output once it is large.
    ///
    /// # Errors
    /// An I/O error of the underlying writer.
    pub fn end(mut self) -> io::Result<()> {
        self.ended = true;
        let writer = &mut *self.writer;
        writer.buf.extend_from_slice(b"}\n");
        writer.rows += 1;
        if writer.buf.len() >= WRITE_BUFFER_BYTES {
            writer.out.write_all(&writer.buf)?;
            writer.buf.clear();
        }
        Ok(())
    }
}

impl<W: Write> Drop for Row<'_, W> {
    fn drop(&mut self) {
        if !self.ended {
            self.writer.buf.truncate(self.start);
        }
    }
}

fn write_decimal(buf: &mut Vec<u8>, unscaled: i128, scale: u32) {
    let divisor = 10u128.pow(scale);
    let magnitude = unscaled.unsigned_abs();
    if unscaled < 0 {
        buf.push(b'-');
    }
    let whole = magnitude / divisor;
    match i64::try_from(whole) {
        Ok(w) => write_i64(buf, w),
        Err(_) => write!(buf, "{whole}").expect("writing to a Vec cannot fail"),
    }
    if scale > 0 {
        let fraction = magnitude % divisor;
        write!(buf, ".{fraction:0width$}", width = scale as usize)
            .expect("writing to a Vec cannot fail");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_row(build: impl FnOnce(&mut ResultWriter<Vec<u8>>)) -> String {
        let mut writer = ResultWriter::new(Vec::new());
        build(&mut writer);
        String::from_utf8(writer.finish().unwrap()).unwrap()
    }

    #[test]
    fn result_row_values_are_typed_json() {
        let line = one_row(|w| {
            w.row()
                .int("a", -5)
                .str("s", "x\"y")
                .opt_str("n", None)
                .opt_int("i", Some(3))
                .float("f", 0.1)
                .float("nan", f64::NAN)
                .decimal("d", -5, 3)
                .decimal("e", 123_456, 0)
                .timestamp("t", 0)
                .end()
                .unwrap()
        });
        assert_eq!(
            line,
            "{\"a\":-5,\"s\":\"x\\\"y\",\"n\":null,\"i\":3,\"f\":0.1,\"nan\":null,\"d\":-0.005,\
             \"e\":123456,\"t\":\"1970-01-01 00:00:00.000\"}\n"
        );
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["d"].as_f64(), Some(-0.005));
    }

    #[test]
    fn result_q1_decimal_is_exact() {
        // 0.908 × 100 000 000 cents = 90 800 000.000; 0.908 × 1 = 0.908.
        let line = one_row(|w| {
            w.row()
                .decimal("p", 100_000_000 * 908, 3)
                .decimal("q", 908, 3)
                .end()
                .unwrap()
        });
        assert_eq!(line, "{\"p\":90800000.000,\"q\":0.908}\n");
    }

    #[test]
    fn result_unfinished_row_is_discarded() {
        let text = one_row(|w| {
            w.row().int("a", 1).end().unwrap();
            let _abandoned = w.row().int("b", 2);
            drop(_abandoned);
            w.row().int("c", 3).end().unwrap();
        });
        assert_eq!(text, "{\"a\":1}\n{\"c\":3}\n");
    }
}
