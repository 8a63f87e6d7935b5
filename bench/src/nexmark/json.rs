//! Event files: one JSON object per line, FORMAT.md's layout, Flink's key names and key order.
//!
//! ```text
//! {"event_type":2,"bid":{"auction":1000,"bidder":1001,"price":4321,"channel":"Google","url":"…","dateTime":"2015-07-15 00:00:00.001","extra":"…"}}
//! ```
//!
//! Writing is hand-rolled into one reused buffer (no allocation per event, no serde in the hot
//! path), flushed to the `io::Write` every [`WRITE_BUFFER_BYTES`]. Reading parses lines in the
//! canonical layout in place in the input's buffer (`event_line`: one pass, no copy) and every
//! other line with serde_json with borrowed strings; each line is checked completely (exactly
//! one record, matching `event_type`, no unknown keys, valid timestamps). A bad line is an
//! error naming the file, the 1-based line number and, when known, the field — or, when the
//! reader was given a dead-letter writer, the raw line goes there and is counted. Lines are
//! never skipped silently.

use crate::nexmark::event_line::FastPath;
use crate::nexmark::model::{Auction, Bid, Event, EventKind, Person};
use crate::nexmark::text::Text;
use crate::nexmark::timestamp::{self, write_timestamp};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use thiserror::Error;

/// The writer hands its buffer to the underlying `io::Write` once it holds this many bytes.
pub const WRITE_BUFFER_BYTES: usize = 1 << 16;

/// Error of reading or writing an event or result file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FormatError {
    /// A line that is not a valid event.
    #[error("{file}:{line}: {}{reason}", FieldPrefix(.field))]
    Malformed {
        file: String,
        /// 1-based line number.
        line: u64,
        /// The offending field as `record.key` (e.g. `bid.price`), when known.
        field: Option<String>,
        reason: String,
    },
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: io::Error,
    },
}

struct FieldPrefix<'a>(&'a Option<String>);

impl fmt::Display for FieldPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(field) => write!(f, "field `{field}`: "),
            None => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding.

/// Appends `event` as one JSON line (with the trailing `\n`) to `buf`.
pub fn encode_event(buf: &mut Vec<u8>, event: &Event) {
    match event {
        Event::Person(p) => {
            buf.extend_from_slice(br#"{"event_type":0,"person":{"id":"#);
            write_i64(buf, p.id);
            key_str(buf, b",\"name\":", &p.name);
            key_str(buf, b",\"emailAddress\":", &p.email_address);
            key_str(buf, b",\"creditCard\":", &p.credit_card);
            key_str(buf, b",\"city\":", &p.city);
            key_str(buf, b",\"state\":", &p.state);
            key_time(buf, b",\"dateTime\":", p.date_time);
            key_str(buf, b",\"extra\":", &p.extra);
        }
        Event::Auction(a) => {
            buf.extend_from_slice(br#"{"event_type":1,"auction":{"id":"#);
            write_i64(buf, a.id);
            key_str(buf, b",\"itemName\":", &a.item_name);
            key_str(buf, b",\"description\":", &a.description);
            key_int(buf, b",\"initialBid\":", a.initial_bid);
            key_int(buf, b",\"reserve\":", a.reserve);
            key_time(buf, b",\"dateTime\":", a.date_time);
            key_time(buf, b",\"expires\":", a.expires);
            key_int(buf, b",\"seller\":", a.seller);
            key_int(buf, b",\"category\":", a.category);
            key_str(buf, b",\"extra\":", &a.extra);
        }
        Event::Bid(b) => {
            buf.extend_from_slice(br#"{"event_type":2,"bid":{"auction":"#);
            write_i64(buf, b.auction);
            key_int(buf, b",\"bidder\":", b.bidder);
            key_int(buf, b",\"price\":", b.price);
            key_str(buf, b",\"channel\":", &b.channel);
            key_str(buf, b",\"url\":", &b.url);
            key_time(buf, b",\"dateTime\":", b.date_time);
            key_str(buf, b",\"extra\":", &b.extra);
        }
    }
    buf.extend_from_slice(b"}}\n");
}

fn key_int(buf: &mut Vec<u8>, key: &[u8], value: i64) {
    buf.extend_from_slice(key);
    write_i64(buf, value);
}

fn key_str(buf: &mut Vec<u8>, key: &[u8], value: &str) {
    buf.extend_from_slice(key);
    write_json_string(buf, value);
}

fn key_time(buf: &mut Vec<u8>, key: &[u8], ms: i64) {
    buf.extend_from_slice(key);
    buf.push(b'"');
    write_timestamp(buf, ms);
    buf.push(b'"');
}

/// Appends the decimal text of `value`.
pub fn write_i64(buf: &mut Vec<u8>, value: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        buf.push(b'-');
    }
    buf.extend_from_slice(&digits[at..]);
}

/// Appends `value` as a quoted JSON string, escaping `"`, `\` and control characters.
pub fn write_json_string(buf: &mut Vec<u8>, value: &str) {
    buf.push(b'"');
    let bytes = value.as_bytes();
    let mut clean_from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[clean_from..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            buf.extend_from_slice(b"\\u00");
            buf.push(HEX[usize::from(b >> 4)]);
            buf.push(HEX[usize::from(b & 0xf)]);
        } else {
            buf.extend_from_slice(escape);
        }
        clean_from = i + 1;
    }
    buf.extend_from_slice(&bytes[clean_from..]);
    buf.push(b'"');
}

/// Writes events as JSON lines into any `io::Write`, through one reused buffer.
pub struct EventWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    events: u64,
    bytes: u64,
}

impl<W: Write> EventWriter<W> {
    pub fn new(out: W) -> EventWriter<W> {
        EventWriter {
            out,
            buf: Vec::with_capacity(WRITE_BUFFER_BYTES + 4096),
            events: 0,
            bytes: 0,
        }
    }

    /// Appends one event; the bytes reach `out` in chunks of about [`WRITE_BUFFER_BYTES`].
    ///
    /// # Errors
    /// An I/O error of the underlying writer.
    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        let before = self.buf.len();
        encode_event(&mut self.buf, event);
        self.bytes += (self.buf.len() - before) as u64;
        self.events += 1;
        if self.buf.len() >= WRITE_BUFFER_BYTES {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Events written so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Bytes written so far (including those still buffered).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Hands buffered bytes to `out` and flushes it.
    ///
    /// # Errors
    /// An I/O error of the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
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

// ---------------------------------------------------------------------------------------------
// Decoding.

/// A line as serde sees it; strings borrow from the line unless they contain escapes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineRepr<'a> {
    event_type: u64,
    #[serde(borrow)]
    person: Option<PersonRepr<'a>>,
    #[serde(borrow)]
    auction: Option<AuctionRepr<'a>>,
    #[serde(borrow)]
    bid: Option<BidRepr<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PersonRepr<'a> {
    id: i64,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    email_address: Cow<'a, str>,
    #[serde(borrow)]
    credit_card: Cow<'a, str>,
    #[serde(borrow)]
    city: Cow<'a, str>,
    #[serde(borrow)]
    state: Cow<'a, str>,
    #[serde(borrow)]
    date_time: Cow<'a, str>,
    #[serde(borrow)]
    extra: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AuctionRepr<'a> {
    id: i64,
    #[serde(borrow)]
    item_name: Cow<'a, str>,
    #[serde(borrow)]
    description: Cow<'a, str>,
    initial_bid: i64,
    reserve: i64,
    #[serde(borrow)]
    date_time: Cow<'a, str>,
    #[serde(borrow)]
    expires: Cow<'a, str>,
    seller: i64,
    category: i64,
    #[serde(borrow)]
    extra: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BidRepr<'a> {
    auction: i64,
    bidder: i64,
    price: i64,
    #[serde(borrow)]
    channel: Cow<'a, str>,
    #[serde(borrow)]
    url: Cow<'a, str>,
    #[serde(borrow)]
    date_time: Cow<'a, str>,
    #[serde(borrow)]
    extra: Cow<'a, str>,
}

/// What is wrong with a line, before the file and line number are attached.
struct LineError {
    field: Option<String>,
    reason: String,
}

impl LineError {
    fn new(field: Option<&str>, reason: impl Into<String>) -> LineError {
        LineError {
            field: field.map(str::to_owned),
            reason: reason.into(),
        }
    }
}

/// Expected type of each field, in FORMAT.md's order; used to name the field of a serde error.
#[derive(Clone, Copy)]
enum FieldType {
    Int,
    Str,
    Time,
}

const PERSON_FIELDS: &[(&str, FieldType)] = &[
    ("id", FieldType::Int),
    ("name", FieldType::Str),
    ("emailAddress", FieldType::Str),
    ("creditCard", FieldType::Str),
    ("city", FieldType::Str),
    ("state", FieldType::Str),
    ("dateTime", FieldType::Time),
    ("extra", FieldType::Str),
];
const AUCTION_FIELDS: &[(&str, FieldType)] = &[
    ("id", FieldType::Int),
    ("itemName", FieldType::Str),
    ("description", FieldType::Str),
    ("initialBid", FieldType::Int),
    ("reserve", FieldType::Int),
    ("dateTime", FieldType::Time),
    ("expires", FieldType::Time),
    ("seller", FieldType::Int),
    ("category", FieldType::Int),
    ("extra", FieldType::Str),
];
const BID_FIELDS: &[(&str, FieldType)] = &[
    ("auction", FieldType::Int),
    ("bidder", FieldType::Int),
    ("price", FieldType::Int),
    ("channel", FieldType::Str),
    ("url", FieldType::Str),
    ("dateTime", FieldType::Time),
    ("extra", FieldType::Str),
];

/// Decodes one line (without its `\n`) into an event.
fn decode_line(line: &str) -> Result<Event, LineError> {
    let repr: LineRepr<'_> = match serde_json::from_str(line) {
        Ok(repr) => repr,
        Err(error) => return Err(diagnose(line, &error)),
    };
    let kind = EventKind::from_event_type(repr.event_type)
        .ok_or_else(|| LineError::new(Some("event_type"), "must be 0, 1 or 2"))?;
    let present = [
        repr.person.is_some(),
        repr.auction.is_some(),
        repr.bid.is_some(),
    ];
    if present.iter().filter(|&&p| p).count() != 1 {
        return Err(LineError::new(
            None,
            "exactly one of `person`, `auction`, `bid` must be present",
        ));
    }
    match (kind, repr.person, repr.auction, repr.bid) {
        (EventKind::Person, Some(p), None, None) => Ok(Event::Person(Person {
            id: p.id,
            name: Text::copy_from(&p.name),
            email_address: Text::copy_from(&p.email_address),
            credit_card: Text::copy_from(&p.credit_card),
            city: Text::copy_from(&p.city),
            state: Text::copy_from(&p.state),
            date_time: time("person.dateTime", &p.date_time)?,
            extra: Text::copy_from(&p.extra),
        })),
        (EventKind::Auction, None, Some(a), None) => Ok(Event::Auction(Auction {
            id: a.id,
            item_name: Text::copy_from(&a.item_name),
            description: Text::copy_from(&a.description),
            initial_bid: a.initial_bid,
            reserve: a.reserve,
            date_time: time("auction.dateTime", &a.date_time)?,
            expires: time("auction.expires", &a.expires)?,
            seller: a.seller,
            category: a.category,
            extra: Text::copy_from(&a.extra),
        })),
        (EventKind::Bid, None, None, Some(b)) => Ok(Event::Bid(Bid {
            auction: b.auction,
            bidder: b.bidder,
            price: b.price,
            channel: Text::copy_from(&b.channel),
            url: Text::copy_from(&b.url),
            date_time: time("bid.dateTime", &b.date_time)?,
            extra: Text::copy_from(&b.extra),
        })),
        _ => Err(LineError::new(
            Some("event_type"),
            format!("{} does not match the record present", repr.event_type),
        )),
    }
}

fn time(field: &str, text: &str) -> Result<i64, LineError> {
    timestamp::parse_timestamp(text).map_err(|e| LineError::new(Some(field), e.to_string()))
}

/// Slow path, only for lines serde rejected: find which field is wrong. serde_json names a
/// missing or unknown key but not the field of a type error, so re-read the line as a generic
/// value and check it against the schema tables.
fn diagnose(line: &str, error: &serde_json::Error) -> LineError {
    let reason = error.to_string();
    let Ok(serde_json::Value::Object(top)) = serde_json::from_str::<serde_json::Value>(line) else {
        return LineError::new(None, reason);
    };
    for (record, fields) in [
        ("person", PERSON_FIELDS),
        ("auction", AUCTION_FIELDS),
        ("bid", BID_FIELDS),
    ] {
        let Some(value) = top.get(record) else {
            continue;
        };
        let Some(object) = value.as_object() else {
            return LineError::new(Some(record), "must be an object");
        };
        for (key, field_type) in fields {
            let name = format!("{record}.{key}");
            let ok = match (object.get(*key), field_type) {
                (None, _) => return LineError::new(Some(&name), "missing"),
                (Some(v), FieldType::Int) => v.is_i64(),
                (Some(v), FieldType::Str | FieldType::Time) => v.is_string(),
            };
            if !ok {
                let expected = match field_type {
                    FieldType::Int => "expected a 64-bit integer",
                    FieldType::Str | FieldType::Time => "expected a string",
                };
                return LineError::new(Some(&name), expected);
            }
        }
        if let Some(unknown) = object.keys().find(|k| !fields.iter().any(|(f, _)| f == k)) {
            return LineError::new(Some(&format!("{record}.{unknown}")), "unknown field");
        }
    }
    match top.get("event_type") {
        None => LineError::new(Some("event_type"), "missing"),
        Some(v) if !v.is_u64() => LineError::new(Some("event_type"), "expected 0, 1 or 2"),
        Some(_) => LineError::new(None, reason),
    }
}

/// Decodes single event lines (e.g. Kafka messages): the canonical-line fast path first, then
/// the full decoder; keeps the fast path's shared channel and URL texts between calls.
#[derive(Debug, Default)]
pub struct EventLineDecoder {
    fast: FastPath,
}

impl EventLineDecoder {
    /// One event from one line (a trailing `\n` or `\r\n` is allowed).
    ///
    /// # Errors
    /// What is wrong with the line and in which field, as in the file reader's errors.
    pub fn decode(&mut self, line: &[u8]) -> Result<Event, String> {
        let mut bytes = line.strip_suffix(b"\n").unwrap_or(line);
        bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if let Some(event) = self.fast.parse_line(bytes) {
            return Ok(event);
        }
        let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
        decode_line(text).map_err(|e| match e.field {
            Some(field) => format!("field {field}: {}", e.reason),
            None => e.reason,
        })
    }
}

/// Reads an event file line by line. See the module doc for what a valid line is.
pub struct EventReader<R> {
    input: R,
    file: String,
    line_number: u64,
    /// Bytes consumed from `input` (whole lines): where a replay of this input resumes.
    bytes_read: u64,
    /// The current line, only when it did not take the fast path (see `next_event`).
    line: Vec<u8>,
    /// The canonical-line parser and what it keeps between lines (shared texts, dates).
    fast: FastPath,
    dead_letter: Option<Box<dyn Write + Send>>,
    dead_letters: u64,
}

impl<R> fmt::Debug for EventReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventReader")
            .field("file", &self.file)
            .field("line_number", &self.line_number)
            .field("dead_letters", &self.dead_letters)
            .finish_non_exhaustive()
    }
}

/// Opens `path` for reading events.
///
/// # Errors
/// [`FormatError::Io`] if the file cannot be opened.
pub fn open_event_file(path: &Path) -> Result<EventReader<BufReader<File>>, FormatError> {
    let file = File::open(path).map_err(|source| FormatError::Io {
        file: path.display().to_string(),
        source,
    })?;
    Ok(EventReader::new(
        BufReader::with_capacity(1 << 16, file),
        path.display().to_string(),
    ))
}

impl<R: BufRead> EventReader<R> {
    /// A reader of `input`; `file` names it in errors.
    pub fn new(input: R, file: impl Into<String>) -> EventReader<R> {
        EventReader {
            input,
            file: file.into(),
            line_number: 0,
            bytes_read: 0,
            fast: FastPath::default(),
            line: Vec::with_capacity(1024),
            dead_letter: None,
            dead_letters: 0,
        }
    }

    /// Routes malformed lines to `dead_letter` (each raw line plus `\n`) instead of failing,
    /// and counts them ([`EventReader::dead_letter_count`]).
    pub fn with_dead_letter(mut self, dead_letter: impl Write + Send + 'static) -> EventReader<R> {
        self.dead_letter = Some(Box::new(dead_letter));
        self
    }

    /// Lines routed to the dead-letter writer so far.
    pub fn dead_letter_count(&self) -> u64 {
        self.dead_letters
    }

    /// Bytes of whole lines consumed from the input so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// 1-based number of the last line read (0 before the first).
    pub fn line_number(&self) -> u64 {
        self.line_number
    }

    /// The file name given at construction.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The next event; `Ok(None)` at the end of the input.
    ///
    /// # Errors
    /// [`FormatError::Malformed`] for a bad line (unless a dead-letter writer takes it);
    /// [`FormatError::Io`] for an I/O error of the input or of the dead-letter writer.
    pub fn next_event(&mut self) -> Result<Option<Event>, FormatError> {
        loop {
            // The fast path parses a canonical line in place, in the input's own buffer: no
            // search for the line end first and no copy. Anything else (another layout, a bad
            // line, a line cut by the end of the buffer, the last line without `\n`) is copied
            // out whole and decoded below, where every error is found and named.
            let buffered = self.input.fill_buf().map_err(|source| FormatError::Io {
                file: self.file.clone(),
                source,
            })?;
            if buffered.is_empty() {
                return Ok(None);
            }
            if let Some((event, used)) = self.fast.parse_line_at(buffered) {
                self.input.consume(used);
                self.bytes_read += used as u64;
                self.line_number += 1;
                return Ok(Some(event));
            }
            self.line.clear();
            let read = self
                .input
                .read_until(b'\n', &mut self.line)
                .map_err(|source| self.io_error(source))?;
            if read == 0 {
                return Ok(None);
            }
            self.bytes_read += read as u64;
            self.line_number += 1;
            match self.decode_current() {
                Ok(event) => return Ok(Some(event)),
                Err(error) => self.dead_letter_or_fail(error)?,
            }
        }
    }

    fn decode_current(&mut self) -> Result<Event, LineError> {
        let mut bytes = self.line.as_slice();
        bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if let Some(event) = self.fast.parse_line(bytes) {
            return Ok(event);
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|e| LineError::new(None, format!("not UTF-8: {e}")))?;
        decode_line(text)
    }

    fn dead_letter_or_fail(&mut self, error: LineError) -> Result<(), FormatError> {
        let Some(dead_letter) = self.dead_letter.as_mut() else {
            return Err(FormatError::Malformed {
                file: self.file.clone(),
                line: self.line_number,
                field: error.field,
                reason: error.reason,
            });
        };
        let written = dead_letter.write_all(&self.line).and_then(|()| {
            if self.line.ends_with(b"\n") {
                Ok(())
            } else {
                dead_letter.write_all(b"\n")
            }
        });
        written.map_err(|source| FormatError::Io {
            file: format!("dead-letter output of {}", self.file),
            source,
        })?;
        self.dead_letters += 1;
        Ok(())
    }

    fn io_error(&self, source: io::Error) -> FormatError {
        FormatError::Io {
            file: self.file.clone(),
            source,
        }
    }
}

impl<R: BufRead> Iterator for EventReader<R> {
    type Item = Result<Event, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_event().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nexmark::{GeneratorConfig, NexmarkGenerator};
    use proptest::prelude::*;
    use std::sync::{Arc, Mutex};

    fn encode(event: &Event) -> String {
        let mut buf = Vec::new();
        encode_event(&mut buf, event);
        String::from_utf8(buf).unwrap()
    }

    fn sample_bid() -> Bid {
        Bid {
            auction: 1000,
            bidder: 1001,
            price: 4321,
            channel: Text::from_static("Google"),
            url: Text::from_static("https://x/y"),
            date_time: 1_436_918_400_001,
            extra: Text::from_static("a\"b\\c\n\u{1}é"),
        }
    }

    #[test]
    fn json_layout_matches_format_md() {
        let line = encode(&Event::Bid(sample_bid()));
        assert_eq!(
            line,
            "{\"event_type\":2,\"bid\":{\"auction\":1000,\"bidder\":1001,\"price\":4321,\
             \"channel\":\"Google\",\"url\":\"https://x/y\",\"dateTime\":\"2015-07-15 00:00:00.001\",\
             \"extra\":\"a\\\"b\\\\c\\n\\u0001é\"}}\n"
        );
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["bid"]["extra"], "a\"b\\c\n\u{1}é");
        // Key order of every record is FORMAT.md's.
        let generated: Vec<Event> =
            NexmarkGenerator::new(&GeneratorConfig::with_events(100, 1000), 0, 1)
                .unwrap()
                .collect();
        let person = encode(
            generated
                .iter()
                .find(|e| e.kind() == EventKind::Person)
                .unwrap(),
        );
        let auction = encode(
            generated
                .iter()
                .find(|e| e.kind() == EventKind::Auction)
                .unwrap(),
        );
        assert_key_order(&person, PERSON_FIELDS);
        assert_key_order(&auction, AUCTION_FIELDS);
        assert_key_order(&line, BID_FIELDS);
    }

    fn assert_key_order(line: &str, fields: &[(&str, FieldType)]) {
        let mut at = 0;
        for (key, _) in fields {
            let pattern = format!("\"{key}\":");
            let found = line[at..]
                .find(&pattern)
                .unwrap_or_else(|| panic!("{key} in {line}"));
            at += found + pattern.len();
        }
    }

    #[test]
    fn json_round_trips_generated_events() {
        let config = GeneratorConfig::with_events(20_000, 10_000);
        let events: Vec<Event> = NexmarkGenerator::new(&config, 0, 1).unwrap().collect();
        let mut writer = EventWriter::new(Vec::new());
        for event in &events {
            writer.write(event).unwrap();
        }
        assert_eq!(writer.events(), 20_000);
        let bytes = writer.finish().unwrap();
        let reader = EventReader::new(bytes.as_slice(), "mem.jsonl");
        let back: Vec<Event> = reader.collect::<Result<_, _>>().unwrap();
        assert_eq!(back, events);
    }

    fn read_all(text: &str) -> Result<Vec<Event>, FormatError> {
        EventReader::new(text.as_bytes(), "events.jsonl").collect()
    }

    fn malformed(text: &str) -> (u64, Option<String>, String) {
        match read_all(text) {
            Err(FormatError::Malformed {
                file,
                line,
                field,
                reason,
            }) => {
                assert_eq!(file, "events.jsonl");
                (line, field, reason)
            }
            other => panic!("expected a malformed-line error, got {other:?}"),
        }
    }

    #[test]
    fn json_malformed_lines_name_file_line_and_field() {
        let good = encode(&Event::Bid(sample_bid()));
        let cases: [(String, Option<&str>); 9] = [
            (good.replace("4321", "\"4321\""), Some("bid.price")),
            (good.replace("\"price\":4321,", ""), Some("bid.price")),
            (good.replace("\"price\"", "\"prize\""), Some("bid.price")),
            (
                good.replace("00:00:00.001", "00:00:00"),
                Some("bid.dateTime"),
            ),
            (
                good.replace("\"event_type\":2", "\"event_type\":1"),
                Some("event_type"),
            ),
            (
                good.replace("\"event_type\":2", "\"event_type\":7"),
                Some("event_type"),
            ),
            (good.replace("}}", "},\"color\":1}"), None),
            ("{not json\n".to_owned(), None),
            ("\n".to_owned(), None),
        ];
        for (bad, field) in cases {
            let text = format!("{good}{good}{bad}{good}");
            let (line, got_field, reason) = malformed(&text);
            assert_eq!(line, 3, "{bad}");
            assert_eq!(got_field.as_deref(), field, "{bad}: {reason}");
        }
        let error = read_all(&format!("{good}{}", good.replace("4321", "true"))).unwrap_err();
        assert_eq!(
            error.to_string(),
            "events.jsonl:2: field `bid.price`: expected a 64-bit integer"
        );
    }

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_dead_letter_mode_routes_and_counts_bad_lines() {
        let good = encode(&Event::Bid(sample_bid()));
        let text = format!("{good}garbage\n{good}{{}}\n{good}\u{0}no newline");
        let sink = Shared::default();
        let mut reader = EventReader::new(text.as_bytes(), "f").with_dead_letter(sink.clone());
        let mut events = 0;
        while let Some(event) = reader.next_event().unwrap() {
            assert_eq!(event, Event::Bid(sample_bid()));
            events += 1;
        }
        assert_eq!(events, 3);
        assert_eq!(reader.dead_letter_count(), 3);
        assert_eq!(reader.line_number(), 6);
        let dead = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(dead, "garbage\n{}\n\u{0}no newline\n");
    }

    #[test]
    fn json_integers_cover_the_full_range() {
        for v in [0, 7, -7, 1_000_000, i64::MAX, i64::MIN] {
            let mut buf = Vec::new();
            write_i64(&mut buf, v);
            assert_eq!(String::from_utf8(buf).unwrap(), v.to_string());
        }
    }

    /// Lines cut by the end of the reader's buffer, `\r\n` line ends and a last line without
    /// a line end all read back exactly, with the right line numbers and byte counts: the fast
    /// path parses in place only whole lines and leaves the rest to the copying path.
    #[test]
    fn json_reader_handles_buffer_boundaries_and_line_ends() {
        let config = GeneratorConfig::with_events(3_000, 10_000);
        let events: Vec<Event> = NexmarkGenerator::new(&config, 0, 1).unwrap().collect();
        let mut text = Vec::new();
        for (i, event) in events.iter().enumerate() {
            encode_event(&mut text, event);
            if i % 3 == 1 {
                text.pop();
                text.extend_from_slice(b"\r\n");
            }
        }
        assert_eq!(text.pop(), Some(b'\n'));
        for capacity in [1, 7, 64, 200, 333, 4096] {
            let input = io::BufReader::with_capacity(capacity, text.as_slice());
            let mut reader = EventReader::new(input, "cut.jsonl");
            let mut back = Vec::new();
            while let Some(event) = reader.next_event().unwrap() {
                back.push(event);
                assert_eq!(reader.line_number(), back.len() as u64);
            }
            assert_eq!(back, events, "capacity {capacity}");
            assert_eq!(reader.bytes_read(), text.len() as u64);
        }
    }

    /// Lines in the canonical layout (the fast path's) that are malformed somewhere are still
    /// errors naming the line and the field: the fast path gives up on them and the general
    /// decoder names the fault.
    #[test]
    fn json_malformed_canonical_lines_are_errors_with_field() {
        let good = encode(&Event::Bid(Bid {
            extra: Text::from_static("plain padding"),
            ..sample_bid()
        }));
        assert!(FastPath::default().parse_line_at(good.as_bytes()).is_some());
        let line = |from: &str, to: &str| {
            assert!(good.contains(from), "{from}");
            good.replacen(from, to, 1)
        };
        let cases: Vec<(String, Option<&str>)> = vec![
            (line("4321", "99999999999999999999"), Some("bid.price")),
            (line("4321", "-"), None),
            (line("4321", "04321"), None),
            (line("1001", "1001.5"), Some("bid.bidder")),
            (line(".001", ".0x1"), Some("bid.dateTime")),
            (line("2015-07-15", "2015-02-30"), Some("bid.dateTime")),
            (line("00:00:00.001", "24:00:00.001"), Some("bid.dateTime")),
            (line("00:00:00.001", "00:00:00.0011"), Some("bid.dateTime")),
            (line("Google", "Goo\u{1}gle"), None),
            (line("Google\"", "Google"), None),
            (line("}}\n", "}\n"), None),
            (line("}}\n", "}}}\n"), None),
            (
                line("{\"event_type\":2", "{\"event_type\":3"),
                Some("event_type"),
            ),
            (line("\"bid\":{", "\"bid\":{\"bid\":1,"), Some("bid.bid")),
        ];
        for (bad, field) in cases {
            // Also as the last line, without a line end, and with a date cached from line 1.
            for text in [
                format!("{good}{good}{bad}{good}"),
                format!("{good}{good}{}", bad.trim_end()),
            ] {
                let (at, got_field, reason) = malformed(&text);
                assert_eq!(at, 3, "{bad}");
                assert_eq!(got_field.as_deref(), field, "{bad}: {reason}");
            }
        }
        // Invalid UTF-8 inside a string of an otherwise canonical line.
        let mut bytes = good.clone().into_bytes();
        let at = good.find("Google").unwrap();
        bytes[at + 1] = 0xff;
        let mut text = good.clone().into_bytes();
        text.extend_from_slice(&bytes);
        match EventReader::new(text.as_slice(), "events.jsonl").collect::<Result<Vec<_>, _>>() {
            Err(FormatError::Malformed { line, reason, .. }) => {
                assert_eq!(line, 2);
                assert!(reason.contains("UTF-8"), "{reason}");
            }
            other => panic!("expected a malformed-line error, got {other:?}"),
        }
    }

    /// The fast path and the general (serde) decoder agree on generated events of any seed and
    /// on every event type: the fast path takes each line and yields what serde yields.
    #[test]
    fn json_fast_path_agrees_with_the_general_decoder_on_generated_events() {
        for seed in [0, 1, 0xfeed] {
            let config = GeneratorConfig {
                seed,
                ..GeneratorConfig::with_events(5_000, 10_000)
            };
            let mut fast = FastPath::default();
            for event in NexmarkGenerator::new(&config, 0, 1).unwrap() {
                let mut line = Vec::new();
                encode_event(&mut line, &event);
                let general = decode_line(std::str::from_utf8(&line[..line.len() - 1]).unwrap())
                    .unwrap_or_else(|e| panic!("{}", e.reason));
                let (got, used) = fast
                    .parse_line_at(&line)
                    .expect("a generated line is canonical");
                assert_eq!(used, line.len());
                assert_eq!(got, general);
                assert_eq!(got, event);
            }
        }
    }

    proptest! {
        #[test]
        fn json_strings_round_trip(s in any::<String>(), price in any::<i64>()) {
            let bid = Bid { price, extra: Text::copy_from(&s), channel: Text::copy_from(&s), ..sample_bid() };
            let line = encode(&Event::Bid(bid.clone()));
            let back = read_all(&line).unwrap();
            prop_assert_eq!(back, vec![Event::Bid(bid)]);
        }

        /// On any encodable event (any integers, any strings, any valid time) the fast path
        /// either declines or yields exactly what the general decoder yields.
        #[test]
        fn json_fast_path_never_disagrees_with_the_general_decoder(
            ints in proptest::array::uniform8(any::<i64>()),
            strings in proptest::array::uniform6(".{0,30}"),
            times in proptest::array::uniform2(timestamp::MIN_MS..=timestamp::MAX_MS),
            kind in 0u8..3,
        ) {
            let t = |i: usize| Text::copy_from(&strings[i]);
            let event = match kind {
                0 => Event::Person(Person {
                    id: ints[0], name: t(0), email_address: t(1), credit_card: t(2), city: t(3),
                    state: t(4), date_time: times[0], extra: t(5),
                }),
                1 => Event::Auction(Auction {
                    id: ints[0], item_name: t(0), description: t(1), initial_bid: ints[1],
                    reserve: ints[2], date_time: times[0], expires: times[1], seller: ints[3],
                    category: ints[4], extra: t(2),
                }),
                _ => Event::Bid(Bid {
                    auction: ints[0], bidder: ints[1], price: ints[2], channel: t(0), url: t(1),
                    date_time: times[0], extra: t(2),
                }),
            };
            let mut line = Vec::new();
            encode_event(&mut line, &event);
            let general = decode_line(std::str::from_utf8(&line[..line.len() - 1]).unwrap());
            prop_assert!(general.as_ref().is_ok_and(|g| g == &event));
            if let Some((got, used)) = FastPath::default().parse_line_at(&line) {
                prop_assert_eq!(used, line.len());
                prop_assert_eq!(got, event);
            }
        }
    }
}
