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
        loop {
            match *self.line.get(self.at)? {
                b'"' => break,
                b'\\' => return self.escaped(start, scratch).map(std::borrow::Cow::Borrowed),
                c if c < 0x20 => return None,
                _ => self.at += 1,
            }
        }
        let text = std::str::from_utf8(&self.line[start..self.at]).ok()?;
        self.at += 1;
        Some(std::borrow::Cow::Borrowed(text))
    }

    fn time(&mut self, scratch: &mut String) -> Option<i64> {
        timestamp::parse_timestamp(&self.string(scratch)?).ok()
    }

    /// The two closing braces, and nothing after them.
    fn end(&mut self) -> Option<()> {
        self.literal(b"}}")?;
        (self.at == self.line.len()).then_some(())
    }

    fn escaped<'s>(&mut self, start: usize, scratch: &'s mut String) -> Option<&'s str> {
        let mut bytes = Vec::with_capacity(self.at - start + 16);
        bytes.extend_from_slice(&self.line[start..self.at]);
        loop {
            match *self.line.get(self.at)? {
                b'"' => break,
                b'\\' => {
                    let unescaped = match *self.line.get(self.at + 1)? {
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
                    self.at += 2;
                }
                c if c < 0x20 => return None,
                c => {
                    bytes.push(c);
                    self.at += 1;
                }
            }
        }
        self.at += 1;
        *scratch = String::from_utf8(bytes).ok()?;
        Some(scratch.as_str())
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

    /// On generated events the fast path accepts every bid line and yields exactly what was
    /// written; person and auction lines are left to serde.
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
