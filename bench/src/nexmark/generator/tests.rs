//! Generator tests: the id and timestamp rules SPEC.md §2.2–§2.5 checked against Flink's own
//! generator, determinism and seeking, and the reference statistics of §2.11.

use super::*;
use crate::nexmark::config::DEFAULT_BASE_TIME_MS;
use proptest::prelude::*;
use std::collections::HashSet;

fn split0(events: u64) -> NexmarkGenerator {
    NexmarkGenerator::new(&GeneratorConfig::with_events(events, 10_000), 0, 1).unwrap()
}

#[test]
fn generator_ids_match_flink_split0() {
    // SPEC.md §2.2: "id 2 → auction 1001, id 3 → auction 1002, ids 4–49 → bids, id 50 →
    // person 1001, ids 51–53 → auctions 1003–1005, id 100 → person 1002".
    let generator = split0(1000);
    let events: Vec<Event> = generator.clone().collect();
    let eid = |k: u64| generator.event_id_at(k);
    assert_eq!(eid(0), 2);
    assert_eq!(events[0].as_auction().unwrap().id, 1001);
    assert_eq!(events[1].as_auction().unwrap().id, 1002);
    for (k, event) in events.iter().enumerate().take(48).skip(2) {
        assert_eq!(event.kind(), EventKind::Bid, "eid {}", eid(k as u64));
    }
    assert_eq!(eid(48), 50);
    assert_eq!(events[48].as_person().unwrap().id, 1001);
    let ids: Vec<i64> = (49..52)
        .map(|k| events[k].as_auction().unwrap().id)
        .collect();
    assert_eq!(ids, [1003, 1004, 1005]);
    assert_eq!(eid(98), 100);
    assert_eq!(events[98].as_person().unwrap().id, 1002);
    // Entity ids are dense and increasing.
    let persons: Vec<i64> = events
        .iter()
        .filter_map(|e| e.as_person().map(|p| p.id))
        .collect();
    let auctions: Vec<i64> = events
        .iter()
        .filter_map(|e| e.as_auction().map(|a| a.id))
        .collect();
    assert!(persons.windows(2).all(|w| w[1] == w[0] + 1));
    assert!(auctions.windows(2).all(|w| w[1] == w[0] + 1));
    assert_eq!(auctions[0], 1001);
}

#[test]
fn generator_split_ids_are_disjoint_and_in_phase() {
    // 8 splits of 400 events: split i's ids are 2 + 50·i … ; every split has the same
    // person/auction/bid phase because 50 divides the per-split count.
    let config = GeneratorConfig::with_events(8 * 400, 10_000_000);
    let mut all_ids = HashSet::new();
    for split in 0..8 {
        let generator = NexmarkGenerator::new(&config, split, 8).unwrap();
        assert_eq!(generator.limit(), 400);
        assert_eq!(generator.event_id_at(0), 2 + 400 * i64::from(split));
        let kinds: Vec<EventKind> = generator.clone().map(|e| e.kind()).collect();
        let first: Vec<EventKind> = split0(400).map(|e| e.kind()).collect();
        assert_eq!(kinds, first);
        for k in 0..400 {
            assert!(all_ids.insert(generator.event_id_at(k)));
        }
    }
}

#[test]
fn generator_timestamps_follow_the_rate() {
    // V1 shape: 8 splits at 10 M/s; 250,000 events per split span 200 ms (SPEC.md §2.11, J).
    let config = GeneratorConfig::with_events(8 * 250_000, 10_000_000);
    let generator = NexmarkGenerator::new(&config, 3, 8).unwrap();
    let first = generator.event_time_at(0);
    let last = generator.event_time_at(249_999);
    assert_eq!(first, DEFAULT_BASE_TIME_MS);
    assert_eq!(last - first, 200);
    // Every split is on the same timeline.
    let other = NexmarkGenerator::new(&config, 0, 8).unwrap();
    assert_eq!(
        other.event_time_at(123_456),
        generator.event_time_at(123_456)
    );
    // 10 K/s, one split: 100 µs per event, event number 1 at +0 ms, number 10 at +1 ms.
    let slow = split0(100);
    assert_eq!(slow.event_time_at(8), DEFAULT_BASE_TIME_MS);
    assert_eq!(slow.event_time_at(9), DEFAULT_BASE_TIME_MS + 1);
    assert_eq!(slow.due_at_ns(10), 1_000_000);
    // In order without out-of-order groups, and the watermark is exact.
    let mut g = split0(1000);
    let mut last_time = i64::MIN;
    while let Some(t) = g.event_time_of_next() {
        assert_eq!(g.watermark_of_next(), Some(t));
        let e = g.next_event().unwrap();
        assert_eq!(e.date_time(), t);
        assert!(t >= last_time);
        last_time = t;
    }
    assert_eq!(g.event_time_of_next(), None);
}

#[test]
fn generator_out_of_order_groups_permute_within_groups() {
    let config = GeneratorConfig {
        out_of_order_group_size: 10,
        ..GeneratorConfig::with_events(1000, 10_000)
    };
    let mut generator = NexmarkGenerator::new(&config, 0, 1).unwrap();
    let ids: Vec<i64> = (0..1000).map(|k| generator.event_id_at(k)).collect();
    let distinct: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        1000,
        "the permutation is a bijection within each group"
    );
    assert!(ids.windows(2).any(|w| w[1] < w[0]), "some ids go backwards");
    while let Some(watermark) = generator.watermark_of_next() {
        let rest_min = (generator.position()..generator.limit())
            .map(|k| generator.event_time_at(k))
            .min()
            .unwrap();
        assert!(watermark <= rest_min);
        generator.next_event();
        if generator.position() > 200 {
            break;
        }
    }
}

#[test]
fn generator_same_seed_same_events_other_seed_other_fields() {
    let config = GeneratorConfig::with_events(5000, 10_000);
    let a: Vec<Event> = NexmarkGenerator::new(&config, 0, 1).unwrap().collect();
    let b: Vec<Event> = NexmarkGenerator::new(&config, 0, 1).unwrap().collect();
    assert_eq!(a, b);
    let reseeded = GeneratorConfig {
        seed: 1,
        ..config.clone()
    };
    let c: Vec<Event> = NexmarkGenerator::new(&reseeded, 0, 1).unwrap().collect();
    assert_ne!(a, c);
    // Structure does not depend on the seed.
    for (x, y) in a.iter().zip(&c) {
        assert_eq!(x.kind(), y.kind());
        assert_eq!(x.date_time(), y.date_time());
        if let (Event::Person(p), Event::Person(q)) = (x, y) {
            assert_eq!(p.id, q.id);
        }
    }
}

#[test]
fn generator_fill_matches_next_and_stops() {
    let mut by_fill = split0(1001);
    let mut out = Vec::new();
    let mut total = 0;
    loop {
        let n = by_fill.fill(&mut out, 64);
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, 1001);
    assert_eq!(out, split0(1001).collect::<Vec<_>>());
    assert_eq!(by_fill.next_event(), None);
}

#[test]
fn generator_events_own_no_heap_memory() {
    // Every generated string is a pool slice except e-mail and credit card, which are inline.
    for event in split0(10_000) {
        match event {
            Event::Person(p) => {
                for t in [&p.name, &p.city, &p.state, &p.extra] {
                    assert!(t.is_static());
                }
                assert!(p.email_address.is_inline() && p.credit_card.is_inline());
            }
            Event::Auction(a) => {
                assert!(a.item_name.is_static() && a.description.is_static());
                assert!(a.extra.is_static());
            }
            Event::Bid(b) => assert!(b.channel.is_static() && b.url.is_static()),
        }
    }
}

#[test]
fn generator_bidder_offset_switch() {
    let flink = split0(100);
    let beam_config = GeneratorConfig {
        bidder_offset: BidderOffset::Single,
        ..GeneratorConfig::with_events(100, 10_000)
    };
    let beam = NexmarkGenerator::new(&beam_config, 0, 1).unwrap();
    for (x, y) in flink.zip(beam) {
        if let (Event::Bid(a), Event::Bid(b)) = (x, y) {
            assert_eq!(a.bidder, b.bidder + 1000);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A restored source resumes exactly: seek(k) then next == the k-th event of a fresh one.
    #[test]
    fn generator_seek_resumes_exactly(k in 0u64..20_000, splits in 1u32..5, seed in any::<u64>()) {
        let config = GeneratorConfig { seed, ..GeneratorConfig::with_events(20_000, 1_000_000) };
        let split = splits - 1;
        let fresh = NexmarkGenerator::new(&config, split, splits).unwrap();
        prop_assume!(k < fresh.limit());
        let mut sought = NexmarkGenerator::at_position(&config, split, splits, k).unwrap();
        let mut walked = fresh.clone();
        for _ in 0..k % 50 {
            walked.next_event();
        }
        walked.seek(k);
        let expected = fresh.clone().nth(k as usize);
        prop_assert_eq!(sought.next_event(), expected.clone());
        prop_assert_eq!(walked.next_event(), expected);
    }
}

/// Accumulates the statistics of SPEC.md §2.11 over a stream.
#[derive(Default)]
struct Stats {
    persons: u64,
    auctions: u64,
    bids: u64,
    person_accounted: u64,
    auction_accounted: u64,
    bid_accounted: u64,
    bid_extra_min: usize,
    bid_extra_max: usize,
    hot_auction_bids: u64,
    hot_bidder_bids: u64,
    q2_bids: u64,
    q14_bids: u64,
    q21_bids: u64,
    channels: HashSet<String>,
    channel_len: u64,
    url_len: u64,
    category10: u64,
    price_buckets: [u64; 3],
}

fn collect_stats(events: u64) -> Stats {
    let generator = split0(events);
    let mut s = Stats {
        bid_extra_min: usize::MAX,
        ..Stats::default()
    };
    for k in 0..generator.limit() {
        let eid = generator.event_id_at(k);
        match generator.event_at(k) {
            Event::Person(p) => {
                s.persons += 1;
                let fields = [&p.name, &p.email_address, &p.credit_card, &p.city, &p.state];
                let len: usize = fields.iter().map(|t| t.len()).sum();
                s.person_accounted += (8 + len + p.extra.len()) as u64;
                assert_eq!(p.credit_card.len(), 19);
                assert!(p.email_address.ends_with(".com") && p.email_address.contains('@'));
            }
            Event::Auction(a) => {
                s.auctions += 1;
                let len = a.item_name.len() + a.description.len() + a.extra.len();
                s.auction_accounted += (8 + 40 + len) as u64;
                assert!(a.reserve > a.initial_bid);
                assert!(a.expires > a.date_time);
                assert!((10..15).contains(&a.category));
                s.category10 += u64::from(a.category == 10);
            }
            Event::Bid(b) => {
                s.bids += 1;
                s.bid_accounted += 32 + b.extra.len() as u64;
                s.bid_extra_min = s.bid_extra_min.min(b.extra.len());
                s.bid_extra_max = s.bid_extra_max.max(b.extra.len());
                let hot_auction = generator.last_auction(eid) / 100 * 100 + 1000;
                let hot_bidder = generator.last_person(eid) / 100 * 100 + 1 + 2000;
                s.hot_auction_bids += u64::from(b.auction == hot_auction);
                s.hot_bidder_bids += u64::from(b.bidder == hot_bidder);
                s.q2_bids += u64::from(b.auction % 123 == 0);
                let dollars = 0.908 * b.price as f64;
                s.q14_bids += u64::from(1_000_000.0 < dollars && dollars < 50_000_000.0);
                let brand = HOT_CHANNELS.contains(&&*b.channel);
                s.q21_bids += u64::from(brand || b.url.contains("channel_id="));
                s.price_buckets[match b.price {
                    ..10_000 => 0,
                    10_000..1_000_000 => 1,
                    _ => 2,
                }] += 1;
                s.channel_len += b.channel.len() as u64;
                s.url_len += b.url.len() as u64;
                if !s.channels.contains(&*b.channel) {
                    s.channels.insert(b.channel.to_string());
                }
            }
        }
    }
    s
}

fn assert_near(name: &str, actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{name}: {actual} not within {tolerance} of {expected}"
    );
}

#[test]
fn generator_statistics_match_spec_2_11() {
    let s = collect_stats(300_000);
    let total = (s.persons + s.auctions + s.bids) as f64;
    assert_eq!(total, 300_000.0);
    assert_eq!((s.persons, s.auctions, s.bids), (6_000, 18_000, 276_000));
    let bids = s.bids as f64;
    eprintln!(
        "sizes {:.1}/{:.1}/{:.2}, hot auction {:.4}, hot bidder {:.4}, q2 {:.4}, q14 {:.4}, \
         q21 {:.4}, channels {}, channel len {:.2}, url len {:.2}, category 10 {:.4}",
        s.person_accounted as f64 / s.persons as f64,
        s.auction_accounted as f64 / s.auctions as f64,
        s.bid_accounted as f64 / bids,
        s.hot_auction_bids as f64 / bids,
        s.hot_bidder_bids as f64 / bids,
        s.q2_bids as f64 / bids,
        s.q14_bids as f64 / bids,
        s.q21_bids as f64 / bids,
        s.channels.len(),
        s.channel_len as f64 / bids,
        s.url_len as f64 / bids,
        s.category10 as f64 / s.auctions as f64,
    );
    assert_near(
        "person size",
        s.person_accounted as f64 / s.persons as f64,
        199.7,
        1.5,
    );
    assert_near(
        "auction size",
        s.auction_accounted as f64 / s.auctions as f64,
        500.1,
        1.5,
    );
    assert_near("bid size", s.bid_accounted as f64 / bids, 99.5, 0.2);
    assert_eq!((s.bid_extra_min, s.bid_extra_max), (54, 81));
    assert_near(
        "hot auction",
        s.hot_auction_bids as f64 / bids,
        0.502,
        0.006,
    );
    assert_near("hot bidder", s.hot_bidder_bids as f64 / bids, 0.750, 0.005);
    let q2 = s.q2_bids as f64 / bids;
    assert!((0.003..=0.009).contains(&q2), "q2 selectivity {q2}");
    assert_near("q14", s.q14_bids as f64 / bids, 0.283, 0.005);
    assert_near("q21", s.q21_bids as f64 / bids, 0.95, 0.005);
    for bucket in s.price_buckets {
        assert_near("price bucket", bucket as f64 / bids, 1.0 / 3.0, 0.005);
    }
    assert_eq!(s.channels.len(), 10_004);
    assert_near("channel length", s.channel_len as f64 / bids, 8.9, 0.1);
    assert_near("url length", s.url_len as f64 / bids, 63.0, 1.0);
    assert_near(
        "category 10",
        s.category10 as f64 / s.auctions as f64,
        0.20,
        0.01,
    );
}

#[test]
fn generator_bid_references_mostly_existing_auctions() {
    // SPEC.md §2.11: ≈ 95 % of bids name an auction that already exists when generated.
    let mut newest_auction = i64::MIN;
    let (mut existing, mut bids) = (0u64, 0u64);
    for event in split0(100_000) {
        match event {
            Event::Auction(a) => newest_auction = a.id,
            Event::Bid(b) => {
                bids += 1;
                existing += u64::from(b.auction <= newest_auction);
            }
            Event::Person(_) => {}
        }
    }
    assert_near(
        "existing auctions",
        existing as f64 / bids as f64,
        0.95,
        0.01,
    );
}
