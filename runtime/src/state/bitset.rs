//! A fixed-size set of small indices (key groups local to a shard, or the parts of a
//! [`SnapshotMap`](super::snapshot_map::SnapshotMap)): one bit each.
//!
//! Dirty tracking sets a bit per record, so `insert` and `contains` are a shift and a mask;
//! iteration skips empty words, so marking a checkpoint costs O(words + members), never
//! O(state).

/// A set of indices in `0..len`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BitSet {
    words: Vec<u64>,
    universe: usize,
    count: usize,
}

impl BitSet {
    /// An empty set over `0..len`.
    pub fn new(len: usize) -> Self {
        BitSet {
            words: vec![0; len.div_ceil(64)],
            universe: len,
            count: 0,
        }
    }

    /// The universe size.
    pub fn capacity(&self) -> usize {
        self.universe
    }

    /// Members.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True without members.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// True when `index` is a member.
    #[inline]
    pub fn contains(&self, index: usize) -> bool {
        // Hot path (every record while dirty tracking): debug only.
        debug_assert!(index < self.universe);
        self.words[index / 64] & (1u64 << (index % 64)) != 0
    }

    /// Adds `index`; true when it was not a member.
    #[inline]
    pub fn insert(&mut self, index: usize) -> bool {
        debug_assert!(index < self.universe);
        // Branchy on purpose: the branch-free form (`count += usize::from(added)`) came out
        // wrong under rustc 1.95 -O in `remove` (the count stayed put; see the test below).
        let bit = 1u64 << (index % 64);
        let word = &mut self.words[index / 64];
        if *word & bit != 0 {
            return false;
        }
        *word |= bit;
        self.count += 1;
        true
    }

    /// Removes `index`; true when it was a member.
    #[inline]
    pub fn remove(&mut self, index: usize) -> bool {
        debug_assert!(index < self.universe);
        let bit = 1u64 << (index % 64);
        let word = &mut self.words[index / 64];
        if *word & bit == 0 {
            return false;
        }
        *word &= !bit;
        self.count -= 1;
        true
    }

    /// Adds every index of `range`.
    pub fn insert_range(&mut self, range: std::ops::Range<usize>) {
        assert!(range.end <= self.universe);
        for index in range {
            self.insert(index);
        }
    }

    /// Removes every member.
    pub fn clear(&mut self) {
        self.words.fill(0);
        self.count = 0;
    }

    /// The members, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words
            .iter()
            .enumerate()
            .filter(|(_, w)| **w != 0)
            .flat_map(|(i, &w)| {
                let mut rest = w;
                std::iter::from_fn(move || {
                    if rest == 0 {
                        return None;
                    }
                    let bit = rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    Some(i * 64 + bit)
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_come_back_in_order_and_are_counted() {
        let mut set = BitSet::new(200);
        for i in [199, 0, 64, 63, 130, 64] {
            set.insert(i);
        }
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 63, 64, 130, 199]);
        assert_eq!(set.len(), 5);
        assert!(set.remove(64));
        assert!(!set.remove(64));
        assert!(!set.contains(64));
        assert_eq!(set.len(), 4);
        set.clear();
        assert!(set.is_empty());
        assert_eq!(set.iter().count(), 0);
    }

    /// Removing every member inside `assert!` leaves the set empty, count included (the
    /// branch-free count update once kept 8192 here in an optimised build).
    #[test]
    fn removing_every_member_empties_the_count() {
        let mut set = BitSet::new(8192);
        for group in 0..128 {
            set.insert_range(group * 64..group * 64 + 64);
        }
        assert_eq!(set.len(), 8192);
        for i in 0..8192 {
            assert!(set.remove(i));
        }
        assert_eq!(set.len(), 0);
        assert!(set.is_empty());
    }
}
