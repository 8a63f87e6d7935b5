//! Nexmark q3, q4, q6, q8, q9, q13, q20 (the queries that join two inputs): exact result rows on
//! small hand-checked inputs (the expected rows are worked out in the comments), including
//! records of one side arriving before their partner on the other, on 1 to 4 shards; and on
//! generated events the same multiset of rows from the 4-shard generator source as from the
//! same events on 1 shard.

use std::path::Path;
use std::sync::Arc;

use corestrom::prelude::*;
use corestrom_bench::nexmark::queries::{Output, Query, q13};
use corestrom_bench::nexmark::timestamp::timestamp_string;
use corestrom_bench::nexmark::{
    Auction, Bid, Event, GeneratorConfig, NexmarkGenerator, NexmarkSource, Person, Text,
};

/// 2015-07-15 00:00:00.000 UTC (a multiple of 10 s).
const T0: i64 = 1_436_918_400_000;
const SECOND: i64 = 1_000;

fn read_rows(dir: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir).expect("result dir") {
        let path = entry.expect("entry").path();
        rows.extend(
            std::fs::read_to_string(path)
                .expect("read")
                .lines()
                .map(str::to_string),
        );
    }
    rows.sort();
    rows
}

fn run_pipeline(
    events: Vec<Event>,
    shards: usize,
    build: impl Fn(&Stream<Event>, &Output),
) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = Env::builder().shards(shards).build().expect("config");
    build(
        &env.from_vec(events),
        &Output::Files(dir.path().to_path_buf()),
    );
    env.execute_and_wait().expect("job");
    read_rows(dir.path())
}

fn run_on(query: Query, events: Vec<Event>, shards: usize) -> Vec<String> {
    run_pipeline(events, shards, |events, output| query.build(events, output))
}

/// The same rows on 1, 2, 3 and 4 shards (the input split in contiguous chunks, so a record and
/// its partner often start on different shards and meet in any order).
fn run_everywhere(query: Query, events: Vec<Event>) -> Vec<String> {
    let one = run_on(query, events.clone(), 1);
    for shards in [2, 3, 4] {
        assert_eq!(
            run_on(query, events.clone(), shards),
            one,
            "{} on {shards} shards",
            query.name()
        );
    }
    one
}

fn sorted(mut rows: Vec<String>) -> Vec<String> {
    rows.sort();
    rows
}

fn ts(at: i64) -> String {
    timestamp_string(T0 + at)
}

fn person(id: i64, name: &str, state: &str, at: i64) -> Event {
    Event::Person(Person {
        id,
        name: Text::copy_from(name),
        email_address: Text::copy_from("x@y.com"),
        credit_card: Text::copy_from("1234 5678 9012 3456"),
        city: Text::copy_from(&format!("city{id}")),
        state: Text::copy_from(state),
        date_time: T0 + at,
        extra: Text::copy_from("p"),
    })
}

/// An auction open over `[opens, expires]` (offsets from T0).
fn auction(id: i64, seller: i64, category: i64, opens: i64, expires: i64) -> Auction {
    Auction {
        id,
        item_name: Text::copy_from(&format!("item{id}")),
        description: Text::copy_from("d"),
        initial_bid: 1,
        reserve: 2,
        date_time: T0 + opens,
        expires: T0 + expires,
        seller,
        category,
        extra: Text::copy_from("a"),
    }
}

fn bid(auction: i64, bidder: i64, price: i64, at: i64) -> Bid {
    Bid {
        auction,
        bidder,
        price,
        channel: Text::copy_from("Google"),
        url: Text::copy_from("https://www.nexmark.com/ab/cd/ef/item.htm?query=1"),
        date_time: T0 + at,
        extra: Text::copy_from(&format!("b{bidder}")),
    }
}

#[test]
fn q3_joins_category_10_auctions_with_their_sellers_from_or_id_ca() {
    // Auction 10 (seller 1, category 10) arrives before its seller (OR): matched when the
    // seller arrives. Auction 11 is category 11; auction 12's seller is from WA; auctions 13
    // and 14 (seller 3, CA) arrive after their seller; auction 15's seller never registers.
    let input = vec![
        Event::Auction(auction(10, 1, 10, 0, 10 * SECOND)),
        Event::Auction(auction(11, 1, 11, 0, 10 * SECOND)),
        person(1, "ann", "OR", SECOND),
        person(2, "bob", "WA", SECOND),
        Event::Auction(auction(12, 2, 10, 2 * SECOND, 10 * SECOND)),
        person(3, "cat", "CA", 2 * SECOND),
        Event::Auction(auction(13, 3, 10, 3 * SECOND, 10 * SECOND)),
        Event::Auction(auction(14, 3, 10, 3 * SECOND, 10 * SECOND)),
        Event::Auction(auction(15, 4, 10, 3 * SECOND, 10 * SECOND)),
    ];
    let row = |name: &str, id: i64, state: &str, auction: i64| {
        format!(r#"{{"name":"{name}","city":"city{id}","state":"{state}","id":{auction}}}"#)
    };
    let expected = sorted(vec![
        row("ann", 1, "OR", 10),
        row("cat", 3, "CA", 13),
        row("cat", 3, "CA", 14),
    ]);
    assert_eq!(run_everywhere(Query::Q3, input), expected);
}

#[test]
fn q20_joins_bids_with_their_category_10_auction_in_either_order() {
    // Bid (1, 7) arrives before auction 1 (category 10), bid (1, 8) after; auction 2 is
    // category 11; auction 3 never arrives.
    let input = vec![
        Event::Bid(bid(1, 7, 100, SECOND)),
        Event::Auction(auction(1, 5, 10, 0, 10 * SECOND)),
        Event::Auction(auction(2, 5, 11, 0, 10 * SECOND)),
        Event::Bid(bid(1, 8, 200, 2 * SECOND)),
        Event::Bid(bid(2, 9, 300, 2 * SECOND)),
        Event::Bid(bid(3, 9, 400, 3 * SECOND)),
    ];
    let row = |bidder: i64, price: i64, at: i64| {
        format!(
            concat!(
                r#"{{"auction":1,"bidder":{},"price":{},"channel":"Google","#,
                r#""url":"https://www.nexmark.com/ab/cd/ef/item.htm?query=1","#,
                r#""bid_dateTime":"{}","bid_extra":"b{}","itemName":"item1","description":"d","#,
                r#""initialBid":1,"reserve":2,"auction_dateTime":"{}","expires":"{}","#,
                r#""seller":5,"category":10,"auction_extra":"a"}}"#
            ),
            bidder,
            price,
            ts(at),
            bidder,
            ts(0),
            ts(10 * SECOND)
        )
    };
    let expected = sorted(vec![row(7, 100, SECOND), row(8, 200, 2 * SECOND)]);
    assert_eq!(run_everywhere(Query::Q20, input), expected);
}

/// Auctions and bids for q4, q6 and q9. Auction 1 (seller 1, category 10, open [0, 10 s]):
/// bids 100 at 1 s, 300 at 5 s, 500 at 11 s (after it expired); bid 300 at 5 s arrives before
/// the auction. Auction 2 (seller 1, category 10, open [0, 5 s]): 201 at 3 s by bidder 5 and
/// 201 at 2 s by bidder 7 (equal prices: the earlier wins), 150 at 4 s. Auction 3 (seller 2,
/// category 11, open [0, 10 s]): 50 exactly at 10 s (BETWEEN is inclusive). Auction 4 (seller
/// 2, category 12, open [5 s, 10 s]): only a bid at 4 s, before it opened.
fn auction_bids() -> Vec<Event> {
    vec![
        Event::Bid(bid(1, 2, 300, 5 * SECOND)),
        Event::Auction(auction(1, 1, 10, 0, 10 * SECOND)),
        Event::Auction(auction(2, 1, 10, 0, 5 * SECOND)),
        Event::Auction(auction(3, 2, 11, 0, 10 * SECOND)),
        Event::Auction(auction(4, 2, 12, 5 * SECOND, 10 * SECOND)),
        Event::Bid(bid(1, 1, 100, SECOND)),
        Event::Bid(bid(2, 5, 201, 3 * SECOND)),
        Event::Bid(bid(2, 7, 201, 2 * SECOND)),
        Event::Bid(bid(2, 8, 150, 4 * SECOND)),
        Event::Bid(bid(4, 9, 999, 4 * SECOND)),
        Event::Bid(bid(3, 3, 50, 10 * SECOND)),
        Event::Bid(bid(1, 4, 500, 11 * SECOND)),
    ]
}

#[test]
fn q4_averages_the_in_time_maxima_per_category_truncating() {
    // Category 10: maxima 300 (auction 1) and 201 (auction 2), average 250.5 → 250. Category
    // 11: 50. Category 12: no in-time bid, no row.
    let expected = sorted(vec![
        r#"{"category":10,"avg":250}"#.to_string(),
        r#"{"category":11,"avg":50}"#.to_string(),
    ]);
    assert_eq!(run_everywhere(Query::Q4, auction_bids()), expected);
}

#[test]
fn q9_keeps_the_highest_in_time_bid_the_earliest_among_equal_prices() {
    let row =
        |id: i64, seller: i64, category: i64, expires: i64, bidder: i64, price: i64, at: i64| {
            let opens = if id == 4 { 5 * SECOND } else { 0 };
            format!(
                concat!(
                    r#"{{"id":{id},"itemName":"item{id}","description":"d","initialBid":1,"#,
                    r#""reserve":2,"dateTime":"{opens}","expires":"{expires}","seller":{seller},"#,
                    r#""category":{category},"extra":"a","auction":{id},"bidder":{bidder},"#,
                    r#""price":{price},"bid_dateTime":"{at}","bid_extra":"b{bidder}"}}"#
                ),
                id = id,
                opens = ts(opens),
                expires = ts(expires),
                seller = seller,
                category = category,
                bidder = bidder,
                price = price,
                at = ts(at),
            )
        };
    let expected = sorted(vec![
        row(1, 1, 10, 10 * SECOND, 2, 300, 5 * SECOND),
        row(2, 1, 10, 5 * SECOND, 7, 201, 2 * SECOND),
        row(3, 2, 11, 10 * SECOND, 3, 50, 10 * SECOND),
    ]);
    assert_eq!(run_everywhere(Query::Q9, auction_bids()), expected);
}

#[test]
fn q6_averages_each_sellers_winning_prices_in_bid_time_order() {
    // Seller 1's winners in bid-time order: auction 2 (201 at 2 s), auction 1 (300 at 5 s):
    // rows 201 and (201 + 300) / 2 = 250. Seller 2: auction 3 (50); auction 4 has no winner.
    let expected = sorted(vec![
        r#"{"seller":1,"avg_price":201}"#.to_string(),
        r#"{"seller":1,"avg_price":250}"#.to_string(),
        r#"{"seller":2,"avg_price":50}"#.to_string(),
    ]);
    assert_eq!(run_everywhere(Query::Q6, auction_bids()), expected);
}

#[test]
fn q8_finds_persons_with_an_auction_in_the_same_tumbling_window() {
    // Window [0, 10 s): person 1 (twice, same name) and two auctions of seller 1 → one row;
    // person 2 registers at 5 s but sells at 12 s (next window) → none; person 3 registers at
    // 15 s and sells at 19.999 s → a row for window [10 s, 20 s); seller 4 never registers.
    let input = vec![
        person(1, "ann", "OR", SECOND),
        person(1, "ann", "OR", 2 * SECOND),
        Event::Auction(auction(10, 1, 10, 3 * SECOND, 9 * SECOND)),
        Event::Auction(auction(11, 1, 10, 4 * SECOND, 9 * SECOND)),
        person(2, "bob", "WA", 5 * SECOND),
        Event::Auction(auction(12, 2, 10, 12 * SECOND, 19 * SECOND)),
        Event::Auction(auction(13, 4, 10, 13 * SECOND, 19 * SECOND)),
        person(3, "cat", "CA", 15 * SECOND),
        Event::Auction(auction(14, 3, 10, 20 * SECOND - 1, 29 * SECOND)),
    ];
    let expected = sorted(vec![
        format!(r#"{{"id":1,"name":"ann","stime":"{}"}}"#, ts(0)),
        format!(r#"{{"id":3,"name":"cat","stime":"{}"}}"#, ts(10 * SECOND)),
    ]);
    assert_eq!(run_everywhere(Query::Q8, input), expected);
}

#[test]
fn q13_looks_up_auction_mod_10000_in_the_side_table() {
    let input = vec![
        Event::Bid(bid(5, 1, 10, SECOND)),
        Event::Bid(bid(10_007, 2, 20, 2 * SECOND)),
        Event::Bid(bid(20_000, 3, 30, 3 * SECOND)),
        Event::Auction(auction(5, 1, 10, 0, SECOND)),
    ];
    let row = |auction: i64, bidder: i64, price: i64, at: i64, value: &str| {
        format!(
            r#"{{"auction":{auction},"bidder":{bidder},"price":{price},"dateTime":"{}","value":"{value}"}}"#,
            ts(at)
        )
    };
    let expected = sorted(vec![
        row(5, 1, 10, SECOND, "5"),
        row(10_007, 2, 20, 2 * SECOND, "7"),
        row(20_000, 3, 30, 3 * SECOND, "0"),
    ]);
    assert_eq!(run_everywhere(Query::Q13, input.clone()), expected);

    // A side file without key 5 or 0: those bids have no partner (inner join).
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), "7,seven\n9,nine\n").expect("write");
    let side = Arc::new(q13::SideInput::from_csv_file(file.path()).expect("side input"));
    for shards in [1, 3] {
        let side = Arc::clone(&side);
        let rows = run_pipeline(input.clone(), shards, move |events, output| {
            let Output::Files(dir) = output else {
                unreachable!("files")
            };
            q13::build_with(events, Arc::clone(&side)).sink(
                "results",
                corestrom_bench::nexmark::result_sink::ResultSink::new(dir.clone()),
            );
        });
        assert_eq!(rows, vec![row(10_007, 2, 20, 2 * SECOND, "seven")]);
    }
}

#[test]
fn generated_events_give_the_same_rows_on_1_and_4_shards() {
    // 40 000 events at 2 000 events/s: 20 s of event time, so q8 has several windows and the
    // regular joins see partners arrive on other shards in either order.
    let config = GeneratorConfig {
        seed: 11,
        ..GeneratorConfig::with_events(40_000, 2_000)
    };
    for query in [
        Query::Q3,
        Query::Q4,
        Query::Q6,
        Query::Q8,
        Query::Q9,
        Query::Q13,
        Query::Q20,
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let env = Env::builder().shards(4).build().expect("config");
        query.build(
            &env.source("nexmark", NexmarkSource::new(config.clone())),
            &Output::Files(dir.path().into()),
        );
        env.execute_and_wait().expect("job");
        let parallel = read_rows(dir.path());
        // The 4 splits' events merged in time order (what one time-ordered file holds) on one
        // shard.
        let mut events = Vec::new();
        for split in 0..4 {
            let mut generator = NexmarkGenerator::new(&config, split, 4).expect("split");
            while let Some(e) = generator.next_event() {
                events.push(e);
            }
        }
        events.sort_by_key(Event::date_time);
        let expected = run_on(query, events, 1);
        assert!(!expected.is_empty(), "{}: no rows", query.name());
        assert_eq!(parallel.len(), expected.len(), "{}", query.name());
        assert!(parallel == expected, "{}: rows differ", query.name());
    }
}

/// The regular join under the queries, against a nested loop: for random left and right records
/// over a few keys (so partners arrive in every order, from different source shards), the
/// multiset of emitted pairs is every (left, right) pair of one key that passes the residual
/// condition, each exactly once, on 1 and 4 shards.
mod regular_join_reference {
    use corestrom::prelude::*;
    use corestrom_bench::nexmark::queries::regular_join::RegularJoin;
    use proptest::prelude::*;

    /// (key, id).
    type Rec = (u8, u32);

    /// The residual condition: keeps pairs whose ids sum to an even number.
    fn join(l: &Rec, r: &Rec) -> Option<(u8, u32, u32)> {
        (l.1 + r.1).is_multiple_of(2).then_some((l.0, l.1, r.1))
    }

    fn run(lefts: &[Rec], rights: &[Rec], shards: usize) -> Vec<(u8, u32, u32)> {
        let env = Env::builder().shards(shards).build().expect("config");
        let pairs = env
            .from_vec(lefts.to_vec())
            .connect(&env.from_vec(rights.to_vec()))
            .key_by(|l: &Rec| l.0, |r: &Rec| r.0)
            .process(RegularJoin::new(join))
            .main()
            .collect();
        env.execute_and_wait().expect("job");
        let mut pairs = pairs.take();
        pairs.sort_unstable();
        pairs
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn emits_each_matching_pair_once_in_any_arrival_order(
            lefts in proptest::collection::vec((0u8..4, 0u32..1000), 0..40),
            rights in proptest::collection::vec((0u8..4, 0u32..1000), 0..40),
        ) {
            let mut expected: Vec<_> = lefts
                .iter()
                .flat_map(|l| rights.iter().filter(|r| r.0 == l.0).filter_map(|r| join(l, r)))
                .collect();
            expected.sort_unstable();
            for shards in [1, 4] {
                prop_assert_eq!(run(&lefts, &rights, shards), expected.clone(), "{} shards", shards);
            }
        }
    }
}
