//! q21, add channel id: a numeric channel id for the four brand channels, otherwise the value
//! of the URL's `channel_id` query parameter; rows with neither are dropped (SPEC.md §3.2).
//!
//! The regex `(&|^)channel_id=([^&]*)` (group 2, leftmost match, as Flink's `REGEXP_EXTRACT`)
//! is evaluated by a hand-written scan with the same semantics: the first `channel_id=` that
//! starts the URL or follows a `&`, its value running to the next `&` or the end (possibly
//! empty, which is a value, not NULL).

use corestrom_operators::prelude::*;

use crate::nexmark::model::Event;
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;
use crate::nexmark::text::Text;

/// (auction, bidder, price, channel, channel_id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Q21Row {
    pub auction: i64,
    pub bidder: i64,
    pub price: i64,
    pub channel: Text,
    pub channel_id: Text,
}

const PARAMETER: &str = "channel_id=";

/// Group 2 of `(&|^)channel_id=([^&]*)` on `url`, leftmost match; `None` when it does not match.
pub fn url_channel_id(url: &str) -> Option<&str> {
    let mut from = 0;
    while let Some(found) = url[from..].find(PARAMETER) {
        let at = from + found;
        if at == 0 || url.as_bytes()[at - 1] == b'&' {
            let value = &url[at + PARAMETER.len()..];
            return Some(value.find('&').map_or(value, |end| &value[..end]));
        }
        from = at + 1;
    }
    None
}

/// The brand channels' ids: `lower(channel)` equal to apple, google, facebook, baidu.
pub fn brand_channel_id(channel: &str) -> Option<&'static str> {
    const BRANDS: [(&str, &str); 4] = [
        ("apple", "0"),
        ("google", "1"),
        ("facebook", "2"),
        ("baidu", "3"),
    ];
    let find = |lower: &str| {
        BRANDS
            .iter()
            .find(|(name, _)| *name == lower)
            .map(|(_, id)| *id)
    };
    if channel.is_ascii() {
        BRANDS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(channel))
            .map(|(_, id)| *id)
    } else {
        // Unicode lower-casing (as Java's `toLowerCase`) can map a non-ASCII character to an
        // ASCII letter (the Kelvin sign to `k`), so only ASCII channels take the fast path.
        find(&channel.to_lowercase())
    }
}

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q21Row> {
    events.filter_map(|e: Event| {
        let Event::Bid(b) = e else { return None };
        let channel_id = match brand_channel_id(&b.channel) {
            Some(id) => Text::from_static(id),
            None => Text::copy_from(url_channel_id(&b.url)?),
        };
        Some(Q21Row {
            auction: b.auction,
            bidder: b.bidder,
            price: b.price,
            channel: b.channel,
            channel_id,
        })
    })
}

impl ResultRow for Q21Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        row.int("auction", self.auction)
            .int("bidder", self.bidder)
            .int("price", self.price)
            .str("channel", &self.channel)
            .str("channel_id", &self.channel_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_scan_matches_the_regex_semantics() {
        let base = "https://www.nexmark.com/a/b/c/item.htm?query=1";
        assert_eq!(url_channel_id(&format!("{base}&channel_id=42")), Some("42"));
        assert_eq!(
            url_channel_id(&format!("{base}&channel_id=42&x=1")),
            Some("42")
        );
        assert_eq!(url_channel_id(&format!("{base}&channel_id=")), Some(""));
        assert_eq!(url_channel_id("channel_id=7&channel_id=8"), Some("7"));
        // Not preceded by `&` (nor at the start): no match there, but a later one counts.
        assert_eq!(url_channel_id(&format!("{base}?channel_id=1")), None);
        assert_eq!(url_channel_id("x_channel_id=1&channel_id=2"), Some("2"));
        assert_eq!(url_channel_id(base), None);
        assert_eq!(url_channel_id(""), None);
    }

    #[test]
    fn brands_compare_lower_cased() {
        assert_eq!(brand_channel_id("Apple"), Some("0"));
        assert_eq!(brand_channel_id("GOOGLE"), Some("1"));
        assert_eq!(brand_channel_id("facebook"), Some("2"));
        assert_eq!(brand_channel_id("Baidu"), Some("3"));
        assert_eq!(brand_channel_id("channel-17"), None);
        assert_eq!(brand_channel_id("app le"), None);
        // U+212A KELVIN SIGN lower-cases to `k`, as in Java.
        assert_eq!(brand_channel_id("faceboo\u{212A}"), Some("2"));
    }
}
