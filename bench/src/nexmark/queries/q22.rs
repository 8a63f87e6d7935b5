//! q22, URL directories: the URL split on `/`, elements 3, 4 and 5 (0-based, empty pieces
//! kept, NULL when absent: Flink's `SPLIT_INDEX`), SPEC.md §3.2.

use corestrom_operators::prelude::*;

use crate::nexmark::model::Event;
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;
use crate::nexmark::text::Text;

/// (auction, bidder, price, channel, dir1, dir2, dir3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Q22Row {
    pub auction: i64,
    pub bidder: i64,
    pub price: i64,
    pub channel: Text,
    pub dir1: Option<Text>,
    pub dir2: Option<Text>,
    pub dir3: Option<Text>,
}

/// `SPLIT_INDEX(url, '/', 3..=5)`.
pub fn url_directories(url: &str) -> [Option<&str>; 3] {
    let mut pieces = url.split('/').skip(3);
    [pieces.next(), pieces.next(), pieces.next()]
}

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q22Row> {
    events.filter_map(|e: Event| {
        let Event::Bid(b) = e else { return None };
        let [dir1, dir2, dir3] = url_directories(&b.url).map(|d| d.map(Text::copy_from));
        Some(Q22Row {
            auction: b.auction,
            bidder: b.bidder,
            price: b.price,
            channel: b.channel,
            dir1,
            dir2,
            dir3,
        })
    })
}

impl ResultRow for Q22Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        row.int("auction", self.auction)
            .int("bidder", self.bidder)
            .int("price", self.price)
            .str("channel", &self.channel)
            .opt_str("dir1", self.dir1.as_deref())
            .opt_str("dir2", self.dir2.as_deref())
            .opt_str("dir3", self.dir3.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_index_keeps_empty_pieces_and_nulls_missing_ones() {
        assert_eq!(
            url_directories("https://www.nexmark.com/ab/cd/ef/item.htm?query=1"),
            [Some("ab"), Some("cd"), Some("ef")]
        );
        assert_eq!(url_directories("a//b/c/"), [Some("c"), Some(""), None]);
        assert_eq!(url_directories("https://host/x"), [Some("x"), None, None]);
        assert_eq!(url_directories(""), [None, None, None]);
    }
}
