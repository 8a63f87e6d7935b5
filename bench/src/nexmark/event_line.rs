//! The fast path of the event reader: an event line in the canonical compact layout that
//! `json::encode_event` writes (FORMAT.md's key order, no whitespace).
//!
//! Anything else — whitespace, another key order, a `\u` escape, a number that is not a plain
//! JSON integer, a control character — makes the parse return `None`, and the line goes through
//! the general serde reader, which accepts every valid layout and names the field of an error.
//! So this path never decides that a line is bad; it only skips serde's work on the common one.
//!
//! [`FastPath::parse_line_at`] parses straight out of the reader's buffer: it needs no line
//! split first, because a canonical line cannot contain a `\n` before its closing `}}` (a raw
//! control character inside a string makes the parse give up), and it accepts the line only
//! when the line end (`\n` or `\r\n`) follows the `}}` at once. So a line is found and parsed in
//! one pass over its bytes, and a line cut by the end of the buffer is simply not accepted.
//!
//! Channels and URLs (10,004 distinct values) and names, cities and states repeat, so each reader
//! keeps the `Text` of the ones it saw and shares it (a reference count) instead of allocating a
//! string per event. Timestamps of one file share their date, so the date's conversion is
//! cached too ([`DateCache`]).

use rustc_hash::FxHashMap;

use crate::nexmark::model::{Auction, Bid, Event, Person};
use crate::nexmark::text::Text;
use crate::nexmark::timestamp::{DateCache, TIMESTAMP_LEN};

/// Shared texts of repeated strings, bounded. Keyed by the raw bytes, so that a string seen
/// before costs one lookup and no UTF-8 check (the stored text was checked when it was added).
#[derive(Debug, Default)]
struct RepeatedTexts {
    texts: FxHashMap<Box<[u8]>, Text>,
}

/// More distinct values than this and the cache starts over (values are then not repeating).
const REPEATED_TEXTS_MAX: usize = 1 << 16;

impl RepeatedTexts {
    /// The shared text of `bytes`; `None` if they are not UTF-8.
    fn get(&mut self, bytes: &[u8]) -> Option<Text> {
        if let Some(text) = self.texts.get(bytes) {
            return Some(text.clone());
        }
        let text = Text::copy_from(std::str::from_utf8(bytes).ok()?);
        if self.texts.len() >= REPEATED_TEXTS_MAX {
            self.texts.clear();
        }
        self.texts.insert(bytes.into(), text.clone());
        Some(text)
    }
}

/// What the fast path keeps between lines of one reader: the shared repeated texts, the date
/// cache and a scratch buffer for strings with escapes.
#[derive(Debug, Default)]
pub(crate) struct FastPath {
    repeated: RepeatedTexts,
    dates: DateCache,
    /// Unescaped bytes of the current string when it has escapes; kept so that its capacity is
    /// reused (generated `extra` padding has a `\\` in most lines).
    scratch: Vec<u8>,
}

impl FastPath {
    /// The canonical event line at the start of `buf`, and the bytes it takes including its
    /// line end (`\n` or `\r\n`); `None` if `buf` does not start with a whole canonical line.
    pub(crate) fn parse_line_at(&mut self, buf: &[u8]) -> Option<(Event, usize)> {
        let mut c = Cursor { line: buf, at: 0 };
        let event = self.body(&mut c)?;
        let used = match buf.get(c.at)? {
            b'\n' => c.at + 1,
            b'\r' if buf.get(c.at + 1) == Some(&b'\n') => c.at + 2,
            _ => return None,
        };
        Some((event, used))
    }

    /// Exactly one canonical event line (without its line end); `None` if it is not one.
    pub(crate) fn parse_line(&mut self, line: &[u8]) -> Option<Event> {
        let mut c = Cursor { line, at: 0 };
        let event = self.body(&mut c)?;
        (c.at == line.len()).then_some(event)
    }

    /// One event from the line's start through its closing `}}`.
    fn body(&mut self, c: &mut Cursor<'_>) -> Option<Event> {
        match c.line.get(14) {
            Some(b'2') => self.bid(c).map(Event::Bid),
            Some(b'1') => self.auction(c).map(Event::Auction),
            Some(b'0') => self.person(c).map(Event::Person),
            _ => None,
        }
    }

    fn bid(&mut self, c: &mut Cursor<'_>) -> Option<Bid> {
        c.literal(br#"{"event_type":2,"bid":{"auction":"#)?;
        let auction = c.int()?;
        c.literal(br#","bidder":"#)?;
        let bidder = c.int()?;
        c.literal(br#","price":"#)?;
        let price = c.int()?;
        c.literal(br#","channel":"#)?;
        let channel = self.repeated.get(c.string_bytes(&mut self.scratch)?)?;
        c.literal(br#","url":"#)?;
        let url = self.repeated.get(c.string_bytes(&mut self.scratch)?)?;
        c.literal(br#","dateTime":"#)?;
        let date_time = c.time(&mut self.dates)?;
        c.literal(br#","extra":"#)?;
        let extra = Text::copy_from(c.string(&mut self.scratch)?);
        c.literal(b"}}")?;
        Some(Bid {
            auction,
            bidder,
            price,
            channel,
            url,
            date_time,
            extra,
        })
    }

    fn person(&mut self, c: &mut Cursor<'_>) -> Option<Person> {
        c.literal(br#"{"event_type":0,"person":{"id":"#)?;
        let id = c.int()?;
        c.literal(br#","name":"#)?;
        let name = self.repeated.get(c.string_bytes(&mut self.scratch)?)?;
        c.literal(br#","emailAddress":"#)?;
        let email_address = Text::copy_from(c.string(&mut self.scratch)?);
        c.literal(br#","creditCard":"#)?;
        let credit_card = Text::copy_from(c.string(&mut self.scratch)?);
        c.literal(br#","city":"#)?;
        let city = self.repeated.get(c.string_bytes(&mut self.scratch)?)?;
        c.literal(br#","state":"#)?;
        let state = self.repeated.get(c.string_bytes(&mut self.scratch)?)?;
        c.literal(br#","dateTime":"#)?;
        let date_time = c.time(&mut self.dates)?;
        c.literal(br#","extra":"#)?;
        let extra = Text::copy_from(c.string(&mut self.scratch)?);
        c.literal(b"}}")?;
        Some(Person {
            id,
            name,
            email_address,
            credit_card,
            city,
            state,
            date_time,
            extra,
        })
    }

    fn auction(&mut self, c: &mut Cursor<'_>) -> Option<Auction> {
        c.literal(br#"{"event_type":1,"auction":{"id":"#)?;
        let id = c.int()?;
        c.literal(br#","itemName":"#)?;
        let item_name = Text::copy_from(c.string(&mut self.scratch)?);
        c.literal(br#","description":"#)?;
        let description = Text::copy_from(c.string(&mut self.scratch)?);
        c.literal(br#","initialBid":"#)?;
        let initial_bid = c.int()?;
        c.literal(br#","reserve":"#)?;
        let reserve = c.int()?;
        c.literal(br#","dateTime":"#)?;
        let date_time = c.time(&mut self.dates)?;
        c.literal(br#","expires":"#)?;
        let expires = c.time(&mut self.dates)?;
        c.literal(br#","seller":"#)?;
        let seller = c.int()?;
        c.literal(br#","category":"#)?;
        let category = c.int()?;
        c.literal(br#","extra":"#)?;
        let extra = Text::copy_from(c.string(&mut self.scratch)?);
        c.literal(b"}}")?;
        Some(Auction {
            id,
            item_name,
            description,
            initial_bid,
            reserve,
            date_time,
            expires,
            seller,
            category,
            extra,
        })
    }
}

/// Index of the first `"`, `\\` or control character (< 0x20) in `bytes`: the bytes that end
/// a plain run inside a JSON string. Eight bytes at a time (SWAR): a string field is most of a
/// line, so this loop is the parser's hot spot. (SSE2 would do sixteen, but its intrinsics need
/// `unsafe` here, and this crate has none; LLVM does not vectorise the byte loop well.)
fn find_special(bytes: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let quote = w ^ (LO * u64::from(b'"'));
        let backslash = w ^ (LO * u64::from(b'\\'));
        // A byte b has its high bit set in `(x - 0x01) & !x` iff b == 0 (the first such byte is
        // exact; later ones may be false positives, which trailing_zeros skips).
        let found = ((quote.wrapping_sub(LO) & !quote)
            | (backslash.wrapping_sub(LO) & !backslash)
            | (w.wrapping_sub(LO * 0x20) & !w))
            & HI;
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|p| offset + p)
}

struct Cursor<'a> {
    line: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn literal(&mut self, expected: &[u8]) -> Option<()> {
        let end = self.at.checked_add(expected.len())?;
        (self.line.get(self.at..end)? == expected).then(|| self.at = end)
    }

    fn int(&mut self) -> Option<i64> {
        let negative = self.line.get(self.at) == Some(&b'-');
        if negative {
            self.at += 1;
        }
        let start = self.at;
        let mut value: i64 = 0;
        while let Some(&d) = self.line.get(self.at) {
            if !d.is_ascii_digit() {
                break;
            }
            // Accumulate negatively so i64::MIN parses too.
            value = value.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
            self.at += 1;
        }
        let digits = self.at - start;
        // JSON: at least one digit, no leading zero before another digit.
        if digits == 0 || (digits > 1 && self.line[start] == b'0') {
            return None;
        }
        if negative {
            Some(value)
        } else {
            value.checked_neg()
        }
    }

    /// The bytes of a string, not checked for UTF-8: borrowed from the line when it has no
    /// escape, unescaped into `scratch` when it has only two-character escapes (quote,
    /// backslash, slash, b, f, n, r, t); `None` for a `\u` escape, a control character or
    /// anything malformed (serde decides those).
    fn string_bytes<'s>(&mut self, scratch: &'s mut Vec<u8>) -> Option<&'s [u8]>
    where
        'a: 's,
    {
        self.literal(b"\"")?;
        let start = self.at;
        let rest = self.line.get(start..)?;
        let stop = find_special(rest)?;
        match rest[stop] {
            b'"' => {
                self.at = start + stop + 1;
                Some(&rest[..stop])
            }
            b'\\' => self.escaped(start, stop, scratch),
            _ => None,
        }
    }

    /// A string, checked for UTF-8 (see `string_bytes`).
    fn string<'s>(&mut self, scratch: &'s mut Vec<u8>) -> Option<&'s str>
    where
        'a: 's,
    {
        std::str::from_utf8(self.string_bytes(scratch)?).ok()
    }

    /// The slow half of `string_bytes`: the string at `start` has an escape at `start + first`.
    fn escaped<'s>(
        &mut self,
        start: usize,
        first: usize,
        scratch: &'s mut Vec<u8>,
    ) -> Option<&'s [u8]> {
        scratch.clear();
        scratch.extend_from_slice(self.line.get(start..start + first)?);
        self.at = start + first;
        loop {
            let rest = self.line.get(self.at..)?;
            let stop = find_special(rest)?;
            scratch.extend_from_slice(&rest[..stop]);
            match rest[stop] {
                b'"' => {
                    self.at += stop + 1;
                    return Some(scratch.as_slice());
                }
                b'\\' => {
                    let unescaped = match *rest.get(stop + 1)? {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        _ => return None,
                    };
                    scratch.push(unescaped);
                    self.at += stop + 2;
                }
                _ => return None,
            }
        }
    }

    /// A quoted timestamp. Its text is ASCII digits and separators or it is rejected, so it is
    /// parsed from the bytes (no escapes, no UTF-8 check to do).
    fn time(&mut self, dates: &mut DateCache) -> Option<i64> {
        let start = self.at.checked_add(1)?;
        let end = start + TIMESTAMP_LEN;
        if self.line.get(self.at) != Some(&b'"') || self.line.get(end) != Some(&b'"') {
            return None;
        }
        let ms = dates.parse(&self.line[start..end]).ok()?;
        self.at = end + 1;
        Some(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nexmark::json::encode_event;
    use crate::nexmark::model::Event;
    use crate::nexmark::{GeneratorConfig, NexmarkGenerator};
    use proptest::prelude::*;

    fn line_of(event: &Event) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_event(&mut buf, event);
        assert_eq!(buf.pop(), Some(b'\n'));
        buf
    }

    /// On generated events the fast path accepts every line and yields exactly what was written.
    #[test]
    fn generated_lines_parse_exactly() {
        let mut generator =
            NexmarkGenerator::new(&GeneratorConfig::with_events(20_000, 100_000), 0, 1).unwrap();
        let mut fast = FastPath::default();
        while let Some(event) = generator.next_event() {
            let line = line_of(&event);
            let got = fast.parse_line(&line);
            assert_eq!(
                got.as_ref(),
                Some(&event),
                "{}",
                String::from_utf8_lossy(&line)
            );
        }
    }

    /// The word-at-a-time scan agrees with a byte-by-byte one on every position and byte kind.
    #[test]
    fn find_special_matches_a_plain_scan() {
        for (len, at, filler) in (0..70).flat_map(|len| {
            (0..=len).flat_map(move |at| [b'x', 0xc3].map(|filler| (len, at, filler)))
        }) {
            {
                for special in [b'"', b'\\', 0x00, 0x1f, b'a', 0x20, 0x7f, 0x80, 0xff] {
                    let mut bytes = vec![filler; len];
                    if at < len {
                        bytes[at] = special;
                    }
                    // A later special must not hide the first one.
                    if at + 2 < len {
                        bytes[len - 1] = b'"';
                    }
                    let plain = bytes
                        .iter()
                        .position(|&b| b == b'"' || b == b'\\' || b < 0x20);
                    assert_eq!(
                        find_special(&bytes),
                        plain,
                        "len {len} at {at} byte {special:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn generated_bid_lines_parse_exactly() {
        let mut generator =
            NexmarkGenerator::new(&GeneratorConfig::with_events(20_000, 100_000), 0, 1).unwrap();
        let mut fast = FastPath::default();
        let mut bids = 0;
        while let Some(event) = generator.next_event() {
            let line = line_of(&event);
            match (&event, fast.parse_line(&line)) {
                (Event::Bid(expected), Some(Event::Bid(got))) => {
                    assert_eq!(&got, expected);
                    bids += 1;
                }
                (Event::Bid(_), _) => panic!(
                    "a generated bid fell back: {}",
                    String::from_utf8_lossy(&line)
                ),
                (_, got) => assert!(!matches!(got, Some(Event::Bid(_)))),
            }
        }
        assert_eq!(bids, 20_000 / 50 * 46);
    }

    #[test]
    fn deviations_fall_back_instead_of_failing() {
        let mut r = FastPath::default();
        let ok = br#"{"event_type":2,"bid":{"auction":1,"bidder":2,"price":3,"channel":"c","url":"u","dateTime":"2015-07-15 00:00:00.000","extra":"x"}}"#;
        assert!(r.parse_line(ok).is_some());
        for bad in [
            &br#"{"event_type":2, "bid":{"auction":1,"bidder":2,"price":3,"channel":"c","url":"u","dateTime":"2015-07-15 00:00:00.000","extra":"x"}}"#[..],
            br#"{"event_type":2,"bid":{"auction":01,"bidder":2,"price":3,"channel":"c","url":"u","dateTime":"2015-07-15 00:00:00.000","extra":"x"}}"#,
            br#"{"event_type":2,"bid":{"auction":1,"bidder":2,"price":3.5,"channel":"c","url":"u","dateTime":"2015-07-15 00:00:00.000","extra":"x"}}"#,
            br#"{"event_type":2,"bid":{"auction":1,"bidder":2,"price":3,"channel":"c\u0041","url":"u","dateTime":"2015-07-15 00:00:00.000","extra":"x"}}"#,
            br#"{"event_type":2,"bid":{"auction":1,"bidder":2,"price":3,"channel":"c","url":"u","dateTime":"2015-07-15 00:00:00","extra":"x"}}"#,
            br#"{"event_type":2,"bid":{"auction":1,"bidder":2,"price":3,"channel":"c","url":"u","dateTime":"2015-07-15 00:00:00.000","extra":"x"}} "#,
            br#"{"event_type":2,"bid":{"auction":99999999999999999999,"bidder":2,"price":3,"channel":"c","url":"u","dateTime":"2015-07-15 00:00:00.000","extra":"x"}}"#,
        ] {
            assert!(r.parse_line(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
    }

    proptest! {
        /// Any bid the writer can encode is either parsed back exactly or left to serde.
        #[test]
        fn encoded_bids_round_trip(auction in any::<i64>(), bidder in any::<i64>(), price in any::<i64>(),
                                   channel in ".{0,12}", extra in ".{0,40}") {
            let bid = Bid {
                auction, bidder, price,
                channel: Text::copy_from(&channel),
                url: Text::copy_from("https://www.nexmark.com/a/b/c/item.htm?query=1"),
                date_time: 1_436_918_400_123,
                extra: Text::copy_from(&extra),
            };
            let line = line_of(&Event::Bid(bid.clone()));
            match FastPath::default().parse_line(&line) {
                Some(got) => prop_assert_eq!(got, Event::Bid(bid)),
                None => prop_assert!(line.windows(2).any(|w| w == b"\\u"), "{}", String::from_utf8_lossy(&line)),
            }
        }
    }
}
