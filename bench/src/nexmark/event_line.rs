//! The fast path of the event reader: an event line in the canonical compact layout that
//! `json::encode_event` writes (FORMAT.md's key order, no whitespace).
//!
//! Anything else — whitespace, another key order, a `\u` escape, a number that is not a plain
//! JSON integer, a control character — makes `parse` return `None`, and the line goes through
//! the general serde reader, which accepts every valid layout and names the field of an error.
//! So this path never decides that a line is bad; it only skips serde's work on the common one.
//!
//! Channels and URLs (10,004 distinct values) and names, cities and states repeat, so each reader
//! keeps the `Text` of the ones it saw and shares it (a reference count) instead of allocating a
//! string per event.

use rustc_hash::FxHashMap;

use crate::nexmark::model::{Auction, Bid, Event, Person};
use crate::nexmark::text::Text;
use crate::nexmark::timestamp;

/// Shared texts of repeated strings, bounded.
#[derive(Debug, Default)]
pub(crate) struct RepeatedTexts {
    texts: FxHashMap<Box<str>, Text>,
}

/// More distinct values than this and the cache starts over (values are then not repeating).
const REPEATED_TEXTS_MAX: usize = 1 << 16;

impl RepeatedTexts {
    fn get(&mut self, s: &str) -> Text {
        if let Some(text) = self.texts.get(s) {
            return text.clone();
        }
        if self.texts.len() >= REPEATED_TEXTS_MAX {
            self.texts.clear();
        }
        let text = Text::copy_from(s);
        self.texts.insert(s.into(), text.clone());
        text
    }
}

/// Index of the first `"`, `\\` or control character (< 0x20) in `bytes`: the bytes that end
/// a plain run inside a JSON string. Eight bytes at a time (SWAR): a string field is most of a
/// line, so this loop is the parser's hot spot.
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

    /// A string: borrowed when it has no escape, unescaped into `scratch` when it has only
    /// two-character escapes (quote, backslash, slash, b, f, n, r, t); `None` for a `\u`
    /// escape, a control character or anything malformed (serde decides those).
    fn string<'s>(&mut self, scratch: &'s mut String) -> Option<std::borrow::Cow<'s, str>>
    where
        'a: 's,
    {
        self.literal(b"\"")?;
        let start = self.at;
        let rest = self.line.get(start..)?;
        let stop = find_special(rest)?;
        match rest[stop] {
            b'"' => {
                let text = std::str::from_utf8(&rest[..stop]).ok()?;
                self.at = start + stop + 1;
                Some(std::borrow::Cow::Borrowed(text))
            }
            b'\\' => self
                .escaped(start, stop, scratch)
                .map(std::borrow::Cow::Borrowed),
            _ => None,
        }
    }

    /// The slow half of `string`: the string at `start` has an escape at `start + first`.
    fn escaped<'s>(
        &mut self,
        start: usize,
        first: usize,
        scratch: &'s mut String,
    ) -> Option<&'s str> {
        let mut bytes = std::mem::take(scratch).into_bytes();
        bytes.clear();
        bytes.extend_from_slice(self.line.get(start..start + first)?);
        self.at = start + first;
        loop {
            let rest = self.line.get(self.at..)?;
            let stop = find_special(rest)?;
            bytes.extend_from_slice(&rest[..stop]);
            match rest[stop] {
                b'"' => {
                    self.at += stop + 1;
                    break;
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
                    bytes.push(unescaped);
                    self.at += stop + 2;
                }
                _ => return None,
            }
        }
        *scratch = String::from_utf8(bytes).ok()?;
        Some(scratch.as_str())
    }

    fn time(&mut self, scratch: &mut String) -> Option<i64> {
        timestamp::parse_timestamp(&self.string(scratch)?).ok()
    }

    /// The two closing braces, and nothing after them.
    fn end(&mut self) -> Option<()> {
        self.literal(b"}}")?;
        (self.at == self.line.len()).then_some(())
    }
}

/// Parses a canonical bid line (without its line end); `None` if it is not one.
pub(crate) fn parse(line: &[u8], repeated: &mut RepeatedTexts) -> Option<Bid> {
    let mut c = Cursor { line, at: 0 };
    c.literal(br#"{"event_type":2,"bid":{"auction":"#)?;
    let auction = c.int()?;
    c.literal(br#","bidder":"#)?;
    let bidder = c.int()?;
    c.literal(br#","price":"#)?;
    let price = c.int()?;
    let mut scratch = String::new();
    c.literal(br#","channel":"#)?;
    let channel = repeated.get(&c.string(&mut scratch)?);
    c.literal(br#","url":"#)?;
    let url = repeated.get(&c.string(&mut scratch)?);
    c.literal(br#","dateTime":"#)?;
    let date_time = c.time(&mut scratch)?;
    c.literal(br#","extra":"#)?;
    let extra = Text::copy_from(&c.string(&mut scratch)?);
    c.end()?;
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

/// Parses a canonical person line; `None` if it is not one.
pub(crate) fn parse_person(line: &[u8], repeated: &mut RepeatedTexts) -> Option<Person> {
    let mut c = Cursor { line, at: 0 };
    let mut scratch = String::new();
    c.literal(br#"{"event_type":0,"person":{"id":"#)?;
    let id = c.int()?;
    c.literal(br#","name":"#)?;
    let name = repeated.get(&c.string(&mut scratch)?);
    c.literal(br#","emailAddress":"#)?;
    let email_address = Text::copy_from(&c.string(&mut scratch)?);
    c.literal(br#","creditCard":"#)?;
    let credit_card = Text::copy_from(&c.string(&mut scratch)?);
    c.literal(br#","city":"#)?;
    let city = repeated.get(&c.string(&mut scratch)?);
    c.literal(br#","state":"#)?;
    let state = repeated.get(&c.string(&mut scratch)?);
    c.literal(br#","dateTime":"#)?;
    let date_time = c.time(&mut scratch)?;
    c.literal(br#","extra":"#)?;
    let extra = Text::copy_from(&c.string(&mut scratch)?);
    c.end()?;
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

/// Parses a canonical auction line; `None` if it is not one.
pub(crate) fn parse_auction(line: &[u8]) -> Option<Auction> {
    let mut c = Cursor { line, at: 0 };
    let mut scratch = String::new();
    c.literal(br#"{"event_type":1,"auction":{"id":"#)?;
    let id = c.int()?;
    c.literal(br#","itemName":"#)?;
    let item_name = Text::copy_from(&c.string(&mut scratch)?);
    c.literal(br#","description":"#)?;
    let description = Text::copy_from(&c.string(&mut scratch)?);
    c.literal(br#","initialBid":"#)?;
    let initial_bid = c.int()?;
    c.literal(br#","reserve":"#)?;
    let reserve = c.int()?;
    c.literal(br#","dateTime":"#)?;
    let date_time = c.time(&mut scratch)?;
    c.literal(br#","expires":"#)?;
    let expires = c.time(&mut scratch)?;
    c.literal(br#","seller":"#)?;
    let seller = c.int()?;
    c.literal(br#","category":"#)?;
    let category = c.int()?;
    c.literal(br#","extra":"#)?;
    let extra = Text::copy_from(&c.string(&mut scratch)?);
    c.end()?;
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

/// Any canonical event line; `None` if it is not one.
pub(crate) fn parse_event(line: &[u8], repeated: &mut RepeatedTexts) -> Option<Event> {
    match line.get(14) {
        Some(b'2') => parse(line, repeated).map(Event::Bid),
        Some(b'1') => parse_auction(line).map(Event::Auction),
        Some(b'0') => parse_person(line, repeated).map(Event::Person),
        _ => None,
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
        let mut repeated = RepeatedTexts::default();
        while let Some(event) = generator.next_event() {
            let line = line_of(&event);
            let got = parse_event(&line, &mut repeated);
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
        for len in 0..40 {
            for at in 0..=len {
                for special in [b'"', b'\\', 0x00, 0x1f, b'a', 0x20, 0x7f, 0x80, 0xff] {
                    let mut bytes = vec![b'x'; len];
                    if at < len {
                        bytes[at] = special;
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
        let mut repeated = RepeatedTexts::default();
        let mut bids = 0;
        while let Some(event) = generator.next_event() {
            let line = line_of(&event);
            match (&event, parse(&line, &mut repeated)) {
                (Event::Bid(expected), Some(got)) => {
                    assert_eq!(&got, expected);
                    bids += 1;
                }
                (Event::Bid(_), None) => panic!(
                    "a generated bid fell back: {}",
                    String::from_utf8_lossy(&line)
                ),
                (_, got) => assert!(got.is_none()),
            }
        }
        assert_eq!(bids, 20_000 / 50 * 46);
    }

    #[test]
    fn deviations_fall_back_instead_of_failing() {
        let mut r = RepeatedTexts::default();
        let ok = br#"{"event_type":2,"bid":{"auction":1,"bidder":2,"price":3,"channel":"c","url":"u","dateTime":"2015-07-15 00:00:00.000","extra":"x"}}"#;
        assert!(parse(ok, &mut r).is_some());
        for bad in [
            &br#"{"event_type":2, "bid":{"auction":1,"bidder":2,"price":3,"channel":"c","url":"u","dateTime":"2015-07-15 00:00:00.000","extra":"x"}}"#[..],
            br#"{"event_type":2,"bid":{"auction":01,"bidder":2,"price":3,"channel":"c","url":"u","dateTime":"2015-07-15 00:00:00.000","extra":"x"}}"#,
            br#"{"event_type":2,"bid":{"auction":1,"bidder":2,"price":3.5,"channel":"c","url":"u","dateTime":"2015-07-15 00:00:00.000","extra":"x"}}"#,
            br#"{"event_type":2,"bid":{"auction":1,"bidder":2,"price":3,"channel":"c\u0041","url":"u","dateTime":"2015-07-15 00:00:00.000","extra":"x"}}"#,
            br#"{"event_type":2,"bid":{"auction":1,"bidder":2,"price":3,"channel":"c","url":"u","dateTime":"2015-07-15 00:00:00","extra":"x"}}"#,
            br#"{"event_type":2,"bid":{"auction":1,"bidder":2,"price":3,"channel":"c","url":"u","dateTime":"2015-07-15 00:00:00.000","extra":"x"}} "#,
            br#"{"event_type":2,"bid":{"auction":99999999999999999999,"bidder":2,"price":3,"channel":"c","url":"u","dateTime":"2015-07-15 00:00:00.000","extra":"x"}}"#,
        ] {
            assert!(parse(bad, &mut r).is_none(), "{}", String::from_utf8_lossy(bad));
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
            match parse(&line, &mut RepeatedTexts::default()) {
                Some(got) => prop_assert_eq!(got, bid),
                None => prop_assert!(line.windows(2).any(|w| w == b"\\u"), "{}", String::from_utf8_lossy(&line)),
            }
        }
    }
}
