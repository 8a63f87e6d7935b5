//! The Nexmark data model (SPEC.md §1): `Person`, `Auction`, `Bid` and the combined `Event`.
//!
//! Field names follow Flink's table schema in snake case (`emailAddress` → `email_address`).
//! Ids, prices (cents), categories and times are `i64`; times are milliseconds since the Unix
//! epoch, rendered in UTC. Strings are [`Text`], so generated events own no heap memory.
//!
//! `Bid` is the hot record (92 % of events): four integers and three texts, 104 bytes. `Event`
//! is as large as its largest variant (`Person`, 160 bytes) plus a tag; it is moved by value in
//! batches and never boxed, because boxing would allocate once per event.
//!
//! Every type is serde `Serialize + Deserialize` (a [`Text`] as a plain string) because query
//! state holds them and keyed state is snapshotted with serde. This serde form is the Rust field
//! layout, not FORMAT.md's file layout (that is [`crate::nexmark::json`]).

use serde::{Deserialize, Serialize};

use crate::nexmark::text::Text;

/// A newly registered user (SPEC.md §1.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Person {
    pub id: i64,
    pub name: Text,
    pub email_address: Text,
    pub credit_card: Text,
    pub city: Text,
    pub state: Text,
    pub date_time: i64,
    pub extra: Text,
}

/// An item put up for sale (SPEC.md §1.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Auction {
    pub id: i64,
    pub item_name: Text,
    pub description: Text,
    pub initial_bid: i64,
    pub reserve: i64,
    pub date_time: i64,
    pub expires: i64,
    pub seller: i64,
    pub category: i64,
    pub extra: Text,
}

/// A bid on an auction (SPEC.md §1.3, Flink's model with `channel` and `url`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Bid {
    pub auction: i64,
    pub bidder: i64,
    pub price: i64,
    pub channel: Text,
    pub url: Text,
    pub date_time: i64,
    pub extra: Text,
}

/// Which of the three records an event carries; the discriminant is Flink's `event_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum EventKind {
    Person = 0,
    Auction = 1,
    Bid = 2,
}

impl EventKind {
    /// Flink's `event_type` column value.
    pub fn event_type(self) -> u8 {
        self as u8
    }

    /// The kind for an `event_type` value, if valid.
    pub fn from_event_type(event_type: u64) -> Option<EventKind> {
        match event_type {
            0 => Some(EventKind::Person),
            1 => Some(EventKind::Auction),
            2 => Some(EventKind::Bid),
            _ => None,
        }
    }
}

/// One element of the Nexmark stream (SPEC.md §1.4).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Event {
    Person(Person),
    Auction(Auction),
    Bid(Bid),
}

// Sizes are part of the throughput budget; a change here should be deliberate.
const _: () = assert!(std::mem::size_of::<Bid>() == 104);
const _: () = assert!(std::mem::size_of::<Person>() == 160);
const _: () = assert!(std::mem::size_of::<Event>() <= 168);

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Person(_) => EventKind::Person,
            Event::Auction(_) => EventKind::Auction,
            Event::Bid(_) => EventKind::Bid,
        }
    }

    /// The event time: the `dateTime` of whichever record is present (Flink's rowtime column).
    pub fn date_time(&self) -> i64 {
        match self {
            Event::Person(p) => p.date_time,
            Event::Auction(a) => a.date_time,
            Event::Bid(b) => b.date_time,
        }
    }

    pub fn as_person(&self) -> Option<&Person> {
        match self {
            Event::Person(p) => Some(p),
            _ => None,
        }
    }

    pub fn as_auction(&self) -> Option<&Auction> {
        match self {
            Event::Auction(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_bid(&self) -> Option<&Bid> {
        match self {
            Event::Bid(b) => Some(b),
            _ => None,
        }
    }

    /// The `person` view (SPEC.md §1.4), for `filter_map`.
    pub fn into_person(self) -> Option<Person> {
        match self {
            Event::Person(p) => Some(p),
            _ => None,
        }
    }

    /// The `auction` view, for `filter_map`.
    pub fn into_auction(self) -> Option<Auction> {
        match self {
            Event::Auction(a) => Some(a),
            _ => None,
        }
    }

    /// The `bid` view, for `filter_map`.
    pub fn into_bid(self) -> Option<Bid> {
        match self {
            Event::Bid(b) => Some(b),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_model_bounds<T: Clone + Send + Sync + 'static + std::fmt::Debug + PartialEq>() {}

    #[test]
    fn model_types_meet_engine_bounds() {
        assert_model_bounds::<Person>();
        assert_model_bounds::<Auction>();
        assert_model_bounds::<Bid>();
        assert_model_bounds::<Event>();
        assert_model_bounds::<Text>();
    }

    #[test]
    fn event_kind_round_trips_event_type() {
        for kind in [EventKind::Person, EventKind::Auction, EventKind::Bid] {
            assert_eq!(
                EventKind::from_event_type(kind.event_type().into()),
                Some(kind)
            );
        }
        assert_eq!(EventKind::from_event_type(3), None);
    }

    #[test]
    fn events_round_trip_through_serde_with_texts_as_strings() {
        let bid = Event::Bid(Bid {
            auction: 1000,
            bidder: 1001,
            price: 4321,
            channel: Text::from_static("Google"),
            url: Text::copy_from("https://www.nexmark.com/a/b/c/item.htm?query=1&channel_id=7"),
            date_time: 1_436_918_400_001,
            extra: Text::copy_from("x\"y"),
        });
        let encoded = serde_json::to_string(&bid).unwrap();
        assert!(encoded.contains(r#""channel":"Google""#), "{encoded}");
        let back: Event = serde_json::from_str(&encoded).unwrap();
        assert_eq!(back, bid);
        let kind: EventKind =
            serde_json::from_str(&serde_json::to_string(&EventKind::Auction).unwrap()).unwrap();
        assert_eq!(kind, EventKind::Auction);
    }
}
