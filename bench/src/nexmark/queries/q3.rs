//! q3, local item suggestion: sellers from Oregon, Idaho or California and their category-10
//! auctions (SPEC.md §3.2), an unwindowed inner join of auctions and persons on
//! `seller = id` ([`RegularJoin`]). The filters are applied before the join, as Flink's planner
//! pushes them down, and each side is projected to the columns the result needs, so the state
//! holds only the ~20 % of auctions and ~50 % of persons that can match. Append-only.

use corestrom_operators::prelude::*;

use crate::nexmark::model::{Auction, Event, Person};
use crate::nexmark::queries::regular_join::RegularJoin;
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;
use crate::nexmark::text::Text;

/// (name, city, state, id): the seller and the auction id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Q3Row {
    pub name: Text,
    pub city: Text,
    pub state: Text,
    pub id: i64,
}

const CATEGORY: i64 = 10;
const STATES: [&str; 3] = ["OR", "ID", "CA"];

/// A kept auction: (seller, id).
type SellerAuction = (i64, i64);

/// A kept seller: (id, name, city, state).
type Seller = (i64, Text, Text, Text);

fn local_seller(p: Person) -> Option<Seller> {
    STATES
        .contains(&p.state.as_str())
        .then_some((p.id, p.name, p.city, p.state))
}

fn category_auction(a: Auction) -> Option<SellerAuction> {
    (a.category == CATEGORY).then_some((a.seller, a.id))
}

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q3Row> {
    let auctions = events.filter_map(|e: Event| e.into_auction().and_then(category_auction));
    let sellers = events.filter_map(|e: Event| e.into_person().and_then(local_seller));
    auctions
        .connect(&sellers)
        .key_by(|a: &SellerAuction| a.0, |p: &Seller| p.0)
        .process(RegularJoin::new(|a: &SellerAuction, p: &Seller| {
            Some(Q3Row {
                name: p.1.clone(),
                city: p.2.clone(),
                state: p.3.clone(),
                id: a.1,
            })
        }))
        .main()
}

impl ResultRow for Q3Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        row.str("name", &self.name)
            .str("city", &self.city)
            .str("state", &self.state)
            .int("id", self.id)
    }
}
