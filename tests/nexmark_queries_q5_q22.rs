//! Nexmark q5, q7, q11, q12, q14–q19, q21, q22: exact result rows on small hand-checked inputs
//! (the expected rows are worked out in the comments), and on generated events the same
//! multiset of rows from the 4-shard generator source as from the same events on 1 shard.

use std::path::Path;
use std::time::Duration;

use corestrom::prelude::*;
use corestrom_bench::nexmark::queries::{Output, Query, q12};
use corestrom_bench::nexmark::timestamp::timestamp_string;
use corestrom_bench::nexmark::{
    Bid, Event, GeneratorConfig, NexmarkGenerator, NexmarkSource, Text,
};

/// 2015-07-15 00:00:00.000 UTC (a multiple of 10 s).
const T0: i64 = 1_436_918_400_000;
const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;

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

/// q10's partitioned result: every row as `dt=…/hm=…|csv line`, sorted; checks that every
/// partition is committed (`_SUCCESS`) and that no file is left in progress.
fn read_partitions(dir: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for day in std::fs::read_dir(dir).expect("result dir") {
        let day = day.expect("entry").path();
        let day_name = day.file_name().unwrap().to_string_lossy().into_owned();
        if day_name.starts_with('.') {
            continue;
        }
        for minute in std::fs::read_dir(&day).expect("day dir") {
            let minute = minute.expect("entry").path();
            let partition = format!(
                "{day_name}/{}",
                minute.file_name().unwrap().to_string_lossy()
            );
            assert!(
                minute.join("_SUCCESS").exists(),
                "{partition} not committed"
            );
            for file in std::fs::read_dir(&minute).expect("partition dir") {
                let file = file.expect("entry").path();
                let name = file.file_name().unwrap().to_string_lossy().into_owned();
                assert!(
                    !name.starts_with('.'),
                    "{partition}/{name} left in progress"
                );
                if name == "_SUCCESS" {
                    continue;
                }
                for line in std::fs::read_to_string(&file).expect("read").lines() {
                    rows.push(format!("{partition}|{line}"));
                }
            }
        }
    }
    rows.sort();
    rows
}

fn run_on(query: Query, events: Vec<Event>, shards: usize) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = Env::builder().shards(shards).build().expect("config");
    query.build(
        &env.from_vec(events),
        &Output::Files(dir.path().to_path_buf()),
    );
    env.execute_and_wait().expect("job");
    if query == Query::Q10 {
        read_partitions(dir.path())
    } else {
        read_rows(dir.path())
    }
}

/// The same rows on 1, 2 and 3 shards (the input split in contiguous chunks).
fn run_everywhere(query: Query, events: Vec<Event>) -> Vec<String> {
    let one = run_on(query, events.clone(), 1);
    for shards in [2, 3] {
        assert_eq!(
            run_on(query, events.clone(), shards),
            one,
            "{} on {shards} shards",
            query.name()
        );
    }
    one
}

fn sorted(rows: &[&str]) -> Vec<String> {
    let mut rows: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    rows.sort();
    rows
}

struct B {
    auction: i64,
    bidder: i64,
    price: i64,
    at: i64,
}

impl B {
    fn at(auction: i64, bidder: i64, price: i64, at: i64) -> B {
        B {
            auction,
            bidder,
            price,
            at,
        }
    }

    fn bid(&self) -> Bid {
        Bid {
            auction: self.auction,
            bidder: self.bidder,
            price: self.price,
            channel: Text::copy_from("Google"),
            url: Text::copy_from("https://www.nexmark.com/ab/cd/ef/item.htm?query=1"),
            date_time: T0 + self.at,
            extra: Text::copy_from("pad"),
        }
    }
}

fn events(bids: &[B]) -> Vec<Event> {
    bids.iter().map(|b| Event::Bid(b.bid())).collect()
}

fn ts(at: i64) -> String {
    timestamp_string(T0 + at)
}

#[test]
fn q5_emits_every_window_leader_ties_included() {
    // Windows [s, s + 10 s) every 2 s. Auction 1 at 1 s and 3 s, auction 2 at 3 s, 11 s, 12 s,
    // auction 3 at 13 s. Leaders by window start: -8 → 1 (1 bid); -6, -4, -2, 0 → 1 (2 bids,
    // auction 2 has 1); 2, 4, 6, 8, 10 → 2 (2 bids; auction 1 has at most 1, auction 3 at most
    // 1); 12 → auctions 2 and 3 with 1 bid each (a tie).
    let input = events(&[
        B::at(1, 7, 10, SECOND),
        B::at(1, 7, 10, 3 * SECOND),
        B::at(2, 8, 10, 3 * SECOND),
        B::at(2, 8, 10, 11 * SECOND),
        B::at(2, 9, 10, 12 * SECOND),
        B::at(3, 9, 10, 13 * SECOND),
    ]);
    let mut expected = vec![r#"{"auction":1,"num":1}"#];
    expected.extend([r#"{"auction":1,"num":2}"#; 4]);
    expected.extend([r#"{"auction":2,"num":2}"#; 5]);
    expected.extend([r#"{"auction":2,"num":1}"#, r#"{"auction":3,"num":1}"#]);
    assert_eq!(run_everywhere(Query::Q5, input), sorted(&expected));
}

#[test]
fn q7_joins_each_window_maximum_with_bids_up_to_its_end_inclusive() {
    // Window [0, 10 s): max 300, held by auctions 2 and 3; auction 4's bid at exactly 10 s is
    // in window [10, 20) but also joins [0, 10) (BETWEEN is inclusive). Window [10, 20): max
    // 300 (auction 4 again). Auction 6 at 20 s (price 200) is below [10, 20)'s max, and is the
    // max of [20, 30). Auction 7 at 25 s is below it.
    let input = events(&[
        B::at(1, 11, 100, SECOND),
        B::at(2, 12, 300, 5 * SECOND),
        B::at(3, 13, 300, 10 * SECOND - 1),
        B::at(4, 14, 300, 10 * SECOND),
        B::at(5, 15, 50, 12 * SECOND),
        B::at(6, 16, 200, 20 * SECOND),
        B::at(7, 17, 199, 25 * SECOND),
    ]);
    let row = |auction: i64, bidder: i64, price: i64, at: i64| {
        format!(
            r#"{{"auction":{auction},"bidder":{bidder},"price":{price},"dateTime":"{}","extra":"pad"}}"#,
            ts(at)
        )
    };
    let mut expected = vec![
        row(2, 12, 300, 5 * SECOND),
        row(3, 13, 300, 10 * SECOND - 1),
        row(4, 14, 300, 10 * SECOND),
        row(4, 14, 300, 10 * SECOND),
        row(6, 16, 200, 20 * SECOND),
    ];
    expected.sort();
    assert_eq!(run_everywhere(Query::Q7, input), expected);
}

#[test]
fn q10_writes_csv_rows_into_committed_minute_partitions() {
    let input = vec![
        bid_with("A", "u", 1, 30 * SECOND, "plain"),
        bid_with("A", "u", 2, MINUTE + 10 * SECOND, "a,\"b\""),
        bid_with("A", "u", 3, 2 * MINUTE - 1, ""),
        bid_with("A", "u", 4, 2 * MINUTE + 5 * SECOND, "x"),
    ];
    assert_eq!(
        run_everywhere(Query::Q10, input),
        sorted(&[
            "dt=2015-07-15/hm=00%3A00|5,6,1,2015-07-15 00:00:30.000,plain",
            "dt=2015-07-15/hm=00%3A01|5,6,2,2015-07-15 00:01:10.000,\"a,\"\"b\"\"\"",
            "dt=2015-07-15/hm=00%3A01|5,6,3,2015-07-15 00:01:59.999,",
            "dt=2015-07-15/hm=00%3A02|5,6,4,2015-07-15 00:02:05.000,x",
        ])
    );
}

#[test]
fn q11_counts_bids_per_session() {
    // Bidder 1 at 0 s and 5 s (one session, ends 5 s + 10 s), then 20 s (a new session: 15 s
    // of silence); bidder 2 at 3 s.
    let input = events(&[
        B::at(100, 1, 10, 0),
        B::at(100, 2, 10, 3 * SECOND),
        B::at(101, 1, 10, 5 * SECOND),
        B::at(102, 1, 10, 20 * SECOND),
    ]);
    let row = |bidder: i64, count: i64, start: i64, end: i64| {
        format!(
            r#"{{"bidder":{bidder},"bid_count":{count},"starttime":"{}","endtime":"{}"}}"#,
            ts(start),
            ts(end)
        )
    };
    let mut expected = vec![
        row(1, 2, 0, 15 * SECOND),
        row(1, 1, 20 * SECOND, 30 * SECOND),
        row(2, 1, 3 * SECOND, 13 * SECOND),
    ];
    expected.sort();
    assert_eq!(run_everywhere(Query::Q11, input), expected);
}

/// Emits its records at once, then stays open until `open_for` has passed, so that
/// processing-time windows close before the input ends.
#[derive(Clone)]
struct OpenFor {
    events: Vec<Event>,
    open_for: Duration,
}

struct OpenForReader {
    events: Option<Vec<Event>>,
    until_ns: Option<u64>,
    open_for_ns: u64,
}

impl Source<Event> for OpenFor {
    fn create_reader(
        &self,
        split: SplitContext,
    ) -> Result<Box<dyn SourceReader<Event>>, OperatorError> {
        Ok(Box::new(OpenForReader {
            events: (split.shard == 0).then(|| self.events.clone()),
            until_ns: None,
            open_for_ns: self.open_for.as_nanos() as u64,
        }))
    }
}

impl SourceReader<Event> for OpenForReader {
    fn poll(
        &mut self,
        out: &mut Vec<Record<Event>>,
        _max: usize,
        now_ns: u64,
    ) -> Result<SourcePoll, OperatorError> {
        let until = *self.until_ns.get_or_insert(now_ns + self.open_for_ns);
        if let Some(events) = self.events.take() {
            out.extend(events.into_iter().map(|value| Record {
                ts: EventTime::MIN,
                value,
            }));
        }
        if now_ns >= until {
            Ok(SourcePoll::Finished)
        } else {
            Ok(SourcePoll::Pending {
                wake_at_ns: Some(until),
            })
        }
    }
}

#[test]
fn q12_counts_bids_per_bidder_in_processing_time_windows() {
    let size = Duration::from_millis(100);
    let mut bids = Vec::new();
    for i in 0..30 {
        bids.push(B::at(1, i % 3, 10, i));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let env = Env::builder().shards(2).build().expect("config");
    let events = env.source(
        "open for a while",
        OpenFor {
            events: events(&bids),
            open_for: size * 4,
        },
    );
    q12::build_with_size(&events, size).sink(
        "results",
        corestrom_bench::nexmark::result_sink::ResultSink::new(dir.path()),
    );
    env.execute_and_wait().expect("job");
    let rows = read_rows(dir.path());
    // The bids arrive at once: in one window, or two if the clock crossed a boundary between
    // batches; either way the counts per bidder add up to 10 each, and every window is an
    // aligned 100 ms of the wall clock.
    let mut per_bidder = [0i64; 3];
    for row in &rows {
        let value: serde_json::Value = serde_json::from_str(row).expect("json");
        let start = corestrom_bench::nexmark::timestamp::parse_timestamp(
            value["starttime"].as_str().expect("start"),
        )
        .expect("timestamp");
        let end = corestrom_bench::nexmark::timestamp::parse_timestamp(
            value["endtime"].as_str().expect("end"),
        )
        .expect("timestamp");
        assert_eq!(end - start, 100, "{row}");
        assert_eq!(start % 100, 0, "{row}");
        per_bidder[value["bidder"].as_i64().expect("bidder") as usize] +=
            value["bid_count"].as_i64().expect("count");
    }
    assert_eq!(per_bidder, [10, 10, 10], "{rows:?}");
}

fn bid_with(channel: &str, url: &str, price: i64, at: i64, extra: &str) -> Event {
    Event::Bid(Bid {
        auction: 5,
        bidder: 6,
        price,
        channel: Text::copy_from(channel),
        url: Text::copy_from(url),
        date_time: T0 + at,
        extra: Text::copy_from(extra),
    })
}

#[test]
fn q14_filters_on_the_euro_price_and_classifies_hours() {
    // 0.908 × 1 101 321 = 999 999.468 (out), × 1 101 322 = 1 000 000.376 (in),
    // × 55 066 079 = 49 999 999.732 (in), × 55 066 080 = 50 000 000.640 (out).
    let url = "https://x/a/b/c";
    let input = vec![
        bid_with("A", url, 1_101_321, 8 * HOUR, "c"),
        bid_with("A", url, 1_101_322, 8 * HOUR, "cacc"),
        bid_with("A", url, 55_066_079, 7 * HOUR, ""),
        bid_with("A", url, 55_066_080, 0, "c"),
        bid_with("A", url, 2_000_000, 23 * HOUR + 59 * MINUTE, "xyz"),
    ];
    let expected = sorted(&[
        r#"{"auction":5,"bidder":6,"price":1000000.376,"bidTimeType":"dayTime","dateTime":"2015-07-15 08:00:00.000","extra":"cacc","c_counts":3}"#,
        r#"{"auction":5,"bidder":6,"price":49999999.732,"bidTimeType":"otherTime","dateTime":"2015-07-15 07:00:00.000","extra":"","c_counts":0}"#,
        r#"{"auction":5,"bidder":6,"price":1816000.000,"bidTimeType":"nightTime","dateTime":"2015-07-15 23:59:00.000","extra":"xyz","c_counts":0}"#,
    ]);
    assert_eq!(run_everywhere(Query::Q14, input), expected);
}

#[test]
fn q21_and_q22_derive_columns_from_channel_and_url() {
    let input = vec![
        bid_with(
            "Apple",
            "https://x/a/b/c/item.htm?query=1&channel_id=9",
            1,
            0,
            "",
        ),
        bid_with(
            "channel-5",
            "https://x/a/b/c/item.htm?query=1&channel_id=5",
            2,
            0,
            "",
        ),
        bid_with("channel-6", "https://x/a/b/c/item.htm?query=1", 3, 0, ""),
        bid_with("BAIDU", "https://host/only", 4, 0, ""),
    ];
    assert_eq!(
        run_everywhere(Query::Q21, input.clone()),
        sorted(&[
            r#"{"auction":5,"bidder":6,"price":1,"channel":"Apple","channel_id":"0"}"#,
            r#"{"auction":5,"bidder":6,"price":2,"channel":"channel-5","channel_id":"5"}"#,
            r#"{"auction":5,"bidder":6,"price":4,"channel":"BAIDU","channel_id":"3"}"#,
        ])
    );
    assert_eq!(
        run_everywhere(Query::Q22, input),
        sorted(&[
            r#"{"auction":5,"bidder":6,"price":1,"channel":"Apple","dir1":"a","dir2":"b","dir3":"c"}"#,
            r#"{"auction":5,"bidder":6,"price":2,"channel":"channel-5","dir1":"a","dir2":"b","dir3":"c"}"#,
            r#"{"auction":5,"bidder":6,"price":3,"channel":"channel-6","dir1":"a","dir2":"b","dir3":"c"}"#,
            r#"{"auction":5,"bidder":6,"price":4,"channel":"BAIDU","dir1":"only","dir2":null,"dir3":null}"#,
        ])
    );
}

/// (auction, bidder, price, channel, minutes after T0) of the statistics tests.
const STATS_BIDS: [(i64, i64, i64, &str, i64); 6] = [
    (10, 1, 5_000, "Apple", 1),           // b1: day 1, rank1
    (10, 2, 50_000, "Apple", 2),          // b2: rank2
    (11, 1, 2_000_000, "Baidu", 3),       // b3: rank3
    (10, 1, 6_000, "Apple", 24 * 60 + 5), // b4: day 2, rank1
    (10, 1, 7_000, "Apple", 1),           // b5: rank1, same time as b1
    (10, 2, 40_000, "Apple", 2),          // b6: rank2, same pair and time as b2, later
];

fn stats_bid(i: usize) -> Bid {
    let (auction, bidder, price, channel, minutes) = STATS_BIDS[i];
    Bid {
        auction,
        bidder,
        price,
        channel: Text::copy_from(channel),
        url: Text::copy_from("https://x/u"),
        date_time: T0 + minutes * MINUTE,
        extra: Text::copy_from("e"),
    }
}

fn stats_input() -> Vec<Event> {
    (0..STATS_BIDS.len())
        .map(|i| Event::Bid(stats_bid(i)))
        .collect()
}

fn bid_json(b: &Bid) -> String {
    format!(
        r#"{{"auction":{},"bidder":{},"price":{},"channel":"{}","url":"{}","dateTime":"{}","extra":"{}""#,
        b.auction,
        b.bidder,
        b.price,
        b.channel,
        b.url,
        timestamp_string(b.date_time),
        b.extra
    )
}

#[test]
fn q15_and_q16_count_bids_and_distinct_bidders_and_auctions() {
    // Day 1: b1 b2 b3 b5 b6 — levels r1 {b1, b5}, r2 {b2, b6}, r3 {b3}; bidders {1, 2}
    // (r1 {1}, r2 {2}, r3 {1}); auctions {10, 11} (r1 {10}, r2 {10}, r3 {11}). Day 2: b4 only.
    assert_eq!(
        run_everywhere(Query::Q15, stats_input()),
        sorted(&[
            r#"{"day":"2015-07-15","total_bids":5,"rank1_bids":2,"rank2_bids":2,"rank3_bids":1,"total_bidders":2,"rank1_bidders":1,"rank2_bidders":1,"rank3_bidders":1,"total_auctions":2,"rank1_auctions":1,"rank2_auctions":1,"rank3_auctions":1}"#,
            r#"{"day":"2015-07-16","total_bids":1,"rank1_bids":1,"rank2_bids":0,"rank3_bids":0,"total_bidders":1,"rank1_bidders":1,"rank2_bidders":0,"rank3_bidders":0,"total_auctions":1,"rank1_auctions":1,"rank2_auctions":0,"rank3_auctions":0}"#,
        ])
    );
    // (Apple, day 1): b1 b2 b5 b6, latest minute 00:02; (Baidu, day 1): b3 at 00:03;
    // (Apple, day 2): b4 at 00:05.
    assert_eq!(
        run_everywhere(Query::Q16, stats_input()),
        sorted(&[
            r#"{"channel":"Apple","day":"2015-07-15","minute":"00:02","total_bids":4,"rank1_bids":2,"rank2_bids":2,"rank3_bids":0,"total_bidders":2,"rank1_bidders":1,"rank2_bidders":1,"rank3_bidders":0,"total_auctions":1,"rank1_auctions":1,"rank2_auctions":1,"rank3_auctions":0}"#,
            r#"{"channel":"Baidu","day":"2015-07-15","minute":"00:03","total_bids":1,"rank1_bids":0,"rank2_bids":0,"rank3_bids":1,"total_bidders":1,"rank1_bidders":0,"rank2_bidders":0,"rank3_bidders":1,"total_auctions":1,"rank1_auctions":0,"rank2_auctions":0,"rank3_auctions":1}"#,
            r#"{"channel":"Apple","day":"2015-07-16","minute":"00:05","total_bids":1,"rank1_bids":1,"rank2_bids":0,"rank3_bids":0,"total_bidders":1,"rank1_bidders":1,"rank2_bidders":0,"rank3_bidders":0,"total_auctions":1,"rank1_auctions":1,"rank2_auctions":0,"rank3_auctions":0}"#,
        ])
    );
}

#[test]
fn q17_aggregates_prices_per_auction_and_day() {
    // (10, day 1): 5 000, 50 000, 7 000, 40 000 → sum 102 000, avg 25 500.
    assert_eq!(
        run_everywhere(Query::Q17, stats_input()),
        sorted(&[
            r#"{"auction":10,"day":"2015-07-15","total_bids":4,"rank1_bids":2,"rank2_bids":2,"rank3_bids":0,"min_price":5000,"max_price":50000,"avg_price":25500,"sum_price":102000}"#,
            r#"{"auction":11,"day":"2015-07-15","total_bids":1,"rank1_bids":0,"rank2_bids":0,"rank3_bids":1,"min_price":2000000,"max_price":2000000,"avg_price":2000000,"sum_price":2000000}"#,
            r#"{"auction":10,"day":"2015-07-16","total_bids":1,"rank1_bids":1,"rank2_bids":0,"rank3_bids":0,"min_price":6000,"max_price":6000,"avg_price":6000,"sum_price":6000}"#,
        ])
    );
}

#[test]
fn q18_keeps_the_last_bid_of_each_pair_later_arrival_winning_ties() {
    // (1, 10): b1, b5 at 00:01, b4 the next day → b4. (2, 10): b2 and b6 at the same time → b6,
    // which arrived later. (1, 11): b3. One shard only, so "arrived later" is well defined.
    let mut expected: Vec<String> = [3, 5, 2]
        .iter()
        .map(|&i| bid_json(&stats_bid(i)) + "}")
        .collect();
    expected.sort();
    assert_eq!(run_on(Query::Q18, stats_input(), 1), expected);
}

#[test]
fn q19_ranks_the_highest_bids_of_each_auction() {
    // Auction 10: b2 50 000, b6 40 000, b5 7 000, b4 6 000, b1 5 000; auction 11: b3. Plus 12
    // bids of 1 cent on auction 11 at increasing times: only the 9 earliest make its top 10.
    let mut input = stats_input();
    let mut cheap = Vec::new();
    for i in 0..12 {
        let b = Bid {
            price: 1,
            bidder: 100 + i,
            date_time: T0 + i * SECOND,
            ..stats_bid(2)
        };
        cheap.push(b.clone());
        input.push(Event::Bid(b));
    }
    let rank = |b: &Bid, n: i64| format!(r#"{},"rank_number":{n}}}"#, bid_json(b));
    let mut expected = vec![
        rank(&stats_bid(1), 1),
        rank(&stats_bid(5), 2),
        rank(&stats_bid(4), 3),
        rank(&stats_bid(3), 4),
        rank(&stats_bid(0), 5),
        rank(&stats_bid(2), 1),
    ];
    for (i, b) in cheap.iter().take(9).enumerate() {
        expected.push(rank(b, i as i64 + 2));
    }
    expected.sort();
    assert_eq!(run_everywhere(Query::Q19, input), expected);
}

#[test]
fn generated_events_give_the_same_rows_on_1_and_4_shards() {
    // 40 000 events at 2 000 events/s: 20 s of event time, so the windows, sessions and
    // statistics have several groups each.
    let config = GeneratorConfig {
        seed: 11,
        ..GeneratorConfig::with_events(40_000, 2_000)
    };
    // The join queries (q3, q4, q6, q8, q9, q13, q20) have this check in
    // nexmark_queries_joins.rs.
    let queries = Query::ALL.into_iter().filter(|q| {
        !matches!(
            q,
            Query::Q0
                | Query::Q1
                | Query::Q2
                | Query::Q12
                | Query::Q3
                | Query::Q4
                | Query::Q6
                | Query::Q8
                | Query::Q9
                | Query::Q13
                | Query::Q20
        )
    });
    for query in queries {
        let dir = tempfile::tempdir().expect("temp dir");
        let env = Env::builder().shards(4).build().expect("config");
        query.build(
            &env.source("nexmark", NexmarkSource::new(config.clone())),
            &Output::Files(dir.path().into()),
        );
        env.execute_and_wait().expect("job");
        let parallel = if query == Query::Q10 {
            read_partitions(dir.path())
        } else {
            read_rows(dir.path())
        };
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
        // q15 has one row per day, and these events span one day.
        assert!(!expected.is_empty(), "{}: no rows", query.name());
        assert_eq!(parallel.len(), expected.len(), "{}", query.name());
        assert!(parallel == expected, "{}: rows differ", query.name());
    }
}

#[test]
fn every_query_checkpoints_its_keyed_state_and_gives_the_rows_of_a_run_without() {
    use corestrom::runtime::checkpoint::CheckpointConfig;
    let config = GeneratorConfig::with_events(4_000, 2_000);
    let run = |query: Query, checkpoints: bool| {
        let state = tempfile::tempdir().expect("state dir");
        let out = tempfile::tempdir().expect("output dir");
        let mut builder = Env::builder().shards(2);
        if checkpoints {
            builder = builder.checkpointing(CheckpointConfig::new(
                Duration::from_millis(5),
                state.path().to_path_buf(),
            ));
        }
        let env = builder.build().expect("config");
        let source = NexmarkSource::new(config.clone()).with_rate(40_000);
        query.build(
            &env.source("nexmark", source),
            &Output::Files(out.path().to_path_buf()),
        );
        let report = env
            .execute_and_wait()
            .unwrap_or_else(|e| panic!("{}: {e}", query.name()));
        let rows = if query == Query::Q10 {
            read_partitions(out.path())
        } else {
            read_rows(out.path())
        };
        let snapshots = report.snapshot_pauses.map_or(0, |p| p.len());
        (rows, snapshots)
    };
    // q12's processing-time windows depend on the wall clock. q8 (the window co-group) and the
    // other join queries are covered: their join buffers are in the snapshots.
    let checkpointed = Query::ALL.into_iter().filter(|q| *q != Query::Q12);
    for query in checkpointed {
        let (expected, _) = run(query, false);
        let (got, snapshots) = run(query, true);
        assert_eq!(
            got,
            expected,
            "{}: rows differ with checkpoints",
            query.name()
        );
        if query.keeps_keyed_state() {
            assert!(
                snapshots > 0,
                "{}: no keyed state was snapshotted",
                query.name()
            );
        }
    }
}
