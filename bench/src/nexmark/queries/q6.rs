//! q6, average selling price by seller: for each auction's winning bid (q9's), the average of
//! that price and the prices of the same seller's 10 previous winning bids in bid-time order
//! (SPEC.md §3.2: `ROWS BETWEEN 10 PRECEDING AND CURRENT ROW`, 11 rows, despite the "last 10"
//! of the description). Flink cannot run it (FLINK-19059: its OVER window does not take the
//! retractions of the top-1), so there is no Flink result to compare with.
//!
//! Over the final winners (q9's final table), the OVER window's final result is one row per
//! winner: (seller, average of the window ending at it). The winners of a seller are kept per
//! seller ([`FinalTable`]), sorted by bid time when the input ends (equal times by auction id,
//! so the order is total) and averaged over a sliding window of 11. `AVG` of a BIGINT is a
//! BIGINT, truncated.

use corestrom_operators::prelude::*;
use serde::{Deserialize, Serialize};

use crate::nexmark::model::Event;
use crate::nexmark::queries::final_table::FinalTable;
use crate::nexmark::queries::q9::{self, Q9Row};
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;

/// (seller, avg_price).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Q6Row {
    pub seller: i64,
    pub avg_price: i64,
}

/// Rows in the OVER window: the current one and the 10 preceding.
pub const WINDOW_ROWS: usize = 11;

/// A seller's winning bids as (bid time, auction, price).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SellerWins {
    wins: Vec<(i64, i64, i64)>,
}

impl SellerWins {
    /// The average over each win's window of `WINDOW_ROWS` rows, in bid-time order.
    pub fn averages(mut self) -> impl Iterator<Item = i64> {
        self.wins.sort_unstable();
        let prices: Vec<i64> = self.wins.iter().map(|&(_, _, price)| price).collect();
        (0..prices.len()).map(move |i| {
            let window = &prices[(i + 1).saturating_sub(WINDOW_ROWS)..=i];
            window.iter().sum::<i64>() / window.len() as i64
        })
    }
}

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q6Row> {
    q9::build(events)
        .key_by(|row: &Q9Row| row.auction.seller)
        .process(FinalTable::new(
            |wins: &mut SellerWins, row: Q9Row| {
                wins.wins
                    .push((row.bid.date_time, row.auction.id, row.bid.price));
            },
            |&seller: &i64, wins: SellerWins, out: &mut dyn FnMut(Q6Row)| {
                for avg_price in wins.averages() {
                    out(Q6Row { seller, avg_price });
                }
            },
        ))
        .main()
}

impl ResultRow for Q6Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        row.int("seller", self.seller)
            .int("avg_price", self.avg_price)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_win_averages_itself_and_up_to_ten_earlier_wins_truncating() {
        // Prices 1..=13 at times 13 - i, given in reverse time order.
        let wins = SellerWins {
            wins: (1..=13).map(|p| (100 - p, p, 14 - p)).collect(),
        };
        // In time order the prices are 1, 2, …, 13.
        let got: Vec<i64> = wins.averages().collect();
        let mut expected: Vec<i64> = (1..=11).map(|n| (1..=n).sum::<i64>() / n).collect();
        expected.push((2..=12).sum::<i64>() / 11);
        expected.push((3..=13).sum::<i64>() / 11);
        assert_eq!(got, expected);
    }
}
