//! The three price levels of q15–q17: rank1 below 10 000, rank2 from 10 000 below 1 000 000,
//! rank3 from 1 000 000 (SPEC.md §3.2, q15).

/// Index 0, 1 or 2 of the level (rank1, rank2, rank3) of a price in cents.
pub fn price_level(price: i64) -> usize {
    if price < 10_000 {
        0
    } else if price < 1_000_000 {
        1
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_bounds_are_half_open() {
        assert_eq!(price_level(i64::MIN), 0);
        assert_eq!(price_level(9_999), 0);
        assert_eq!(price_level(10_000), 1);
        assert_eq!(price_level(999_999), 1);
        assert_eq!(price_level(1_000_000), 2);
    }
}
