//! Nexmark q0–q2: exact result rows on a small hand-checked input, and on generated events the
//! same multiset of rows from the 4-shard generator source as from the same events on 1 shard.

use std::path::Path;

use corestrom::prelude::*;
use corestrom_bench::nexmark::queries::{Output, Query};
use corestrom_bench::nexmark::{
    Auction, Bid, Event, GeneratorConfig, NexmarkGenerator, NexmarkSource, Person, Text,
};

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

fn bid(auction: i64, price: i64, date_time: i64) -> Event {
    Event::Bid(Bid {
        auction,
        bidder: 2001,
        price,
        channel: Text::copy_from("Google"),
        url: Text::copy_from("https://www.nexmark.com/a/b/c/item.htm?query=1"),
        date_time,
        extra: Text::copy_from("pad"),
    })
}

fn hand_input() -> Vec<Event> {
    let t = 1_436_918_400_000; // 2015-07-15 00:00:00.000 UTC
    vec![
        Event::Person(Person {
            id: 1000,
            name: Text::copy_from("Ann Lee"),
            email_address: Text::copy_from("ann@x.com"),
            credit_card: Text::copy_from("1234 5678 9012 3456"),
            city: Text::copy_from("Boise"),
            state: Text::copy_from("ID"),
            date_time: t,
            extra: Text::copy_from(""),
        }),
        Event::Auction(Auction {
            id: 1230,
            item_name: Text::copy_from("lamp"),
            description: Text::copy_from("old"),
            initial_bid: 100,
            reserve: 200,
            date_time: t,
            expires: t + 10,
            seller: 1000,
            category: 10,
            extra: Text::copy_from(""),
        }),
        bid(1230, 4321, t + 1),
        bid(1231, 1, t + 1_000),
        bid(2460, 100_000_000, t + 86_400_000),
    ]
}

fn run_on(query: Query, events: Vec<Event>, shards: usize) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = Env::builder().shards(shards).build().expect("config");
    query.build(
        &env.from_vec(events),
        &Output::Files(dir.path().to_path_buf()),
    );
    env.execute_and_wait().expect("job");
    read_rows(dir.path())
}

#[test]
fn hand_checked_rows() {
    let q0 = run_on(Query::Q0, hand_input(), 2);
    assert_eq!(
        q0,
        [
            r#"{"auction":1230,"bidder":2001,"price":4321,"dateTime":"2015-07-15 00:00:00.001","extra":"pad"}"#,
            r#"{"auction":1231,"bidder":2001,"price":1,"dateTime":"2015-07-15 00:00:01.000","extra":"pad"}"#,
            r#"{"auction":2460,"bidder":2001,"price":100000000,"dateTime":"2015-07-16 00:00:00.000","extra":"pad"}"#,
        ]
    );
    let q1 = run_on(Query::Q1, hand_input(), 3);
    assert_eq!(
        q1,
        [
            r#"{"auction":1230,"bidder":2001,"price":3923.468,"dateTime":"2015-07-15 00:00:00.001","extra":"pad"}"#,
            r#"{"auction":1231,"bidder":2001,"price":0.908,"dateTime":"2015-07-15 00:00:01.000","extra":"pad"}"#,
            r#"{"auction":2460,"bidder":2001,"price":90800000.000,"dateTime":"2015-07-16 00:00:00.000","extra":"pad"}"#,
        ]
    );
    let q2 = run_on(Query::Q2, hand_input(), 1);
    assert_eq!(
        q2,
        [
            r#"{"auction":1230,"price":4321}"#,
            r#"{"auction":2460,"price":100000000}"#
        ]
    );
}

#[test]
fn generated_events_give_the_same_rows_on_1_and_4_shards() {
    let config = GeneratorConfig {
        seed: 11,
        ..GeneratorConfig::with_events(40_000, 10_000_000)
    };
    for query in [Query::Q0, Query::Q1, Query::Q2] {
        // The engine's own source, split over 4 shards (4 generator splits) …
        let dir = tempfile::tempdir().expect("temp dir");
        let env = Env::builder().shards(4).build().expect("config");
        query.build(
            &env.source("nexmark", NexmarkSource::new(config.clone())),
            &Output::Files(dir.path().into()),
        );
        env.execute_and_wait().expect("job");
        let parallel = read_rows(dir.path());
        // … against the same 4 generator splits' events, read up front, on one shard.
        let mut events = Vec::new();
        for split in 0..4 {
            let mut generator = NexmarkGenerator::new(&config, split, 4).expect("split");
            while let Some(e) = generator.next_event() {
                events.push(e);
            }
        }
        assert_eq!(events.len(), 40_000);
        let expected = run_on(query, events, 1);
        assert!(!expected.is_empty());
        assert_eq!(parallel, expected, "{}", query.name());
    }
}
