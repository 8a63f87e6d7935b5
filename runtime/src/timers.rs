//! The timer service of one keyed operator instance: event-time and processing-time timers per
//! (key, namespace, timestamp), as Flink's `InternalTimerService`.
//!
//! Contract:
//! - A timer is identified by (key, namespace, timestamp); registering it again is a no-op, so it
//!   fires once (deduplication).
//! - A deleted timer never fires. Deletion is lazy: the entry stays in the time index as a
//!   tombstone and is skipped when popped; when tombstones outnumber live timers (plus a slack)
//!   the index is rebuilt, so memory stays proportional to the live timers.
//! - Timers pop in timestamp order ([`TimerQueue::pop_due`]); timers with the same timestamp pop
//!   in an unspecified but deterministic order.
//! - Event-time timers fire when the operator's watermark reaches them (`timestamp <=
//!   watermark`), before the watermark is forwarded; processing-time timers when the wall clock
//!   (`time::wall_clock_ms`) reaches them. Both rules are applied by the operator that owns the
//!   service; this module only keeps the queues.
//!
//! Cost: registration and deletion are one hash-set operation plus, for a new timer, an amortised
//! O(log t) insert into the ordered index over t distinct timestamps. Nothing is allocated per
//! registration once the vectors of a timestamp have grown.

use std::collections::BTreeMap;
use std::hash::Hash;

use rustc_hash::FxHashSet;

use crate::time::EventTime;

/// Which clock a timer follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeDomain {
    /// Fires when the watermark reaches the timer.
    EventTime,
    /// Fires when the wall clock reaches the timer.
    ProcessingTime,
}

/// Tombstones tolerated beyond the live count before the index is compacted.
const TOMBSTONE_SLACK: usize = 1024;

/// Timers of one time domain, ordered by timestamp, deduplicated by (key, namespace, timestamp).
#[derive(Debug)]
pub struct TimerQueue<K, N> {
    by_time: BTreeMap<EventTime, Vec<(K, N)>>,
    live: FxHashSet<(K, N, EventTime)>,
    /// Entries in `by_time` whose timer was deleted (or re-registered after a delete).
    tombstones: usize,
}

impl<K, N> Default for TimerQueue<K, N> {
    fn default() -> Self {
        TimerQueue {
            by_time: BTreeMap::new(),
            live: FxHashSet::default(),
            tombstones: 0,
        }
    }
}

impl<K: Hash + Eq + Clone, N: Hash + Eq + Clone> TimerQueue<K, N> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a timer; returns false when it was already registered (it will fire once).
    pub fn register(&mut self, key: K, namespace: N, timestamp: EventTime) -> bool {
        if !self
            .live
            .insert((key.clone(), namespace.clone(), timestamp))
        {
            return false;
        }
        self.by_time
            .entry(timestamp)
            .or_default()
            .push((key, namespace));
        true
    }

    /// Deletes a timer; returns false when no such timer was registered.
    pub fn delete(&mut self, key: &K, namespace: &N, timestamp: EventTime) -> bool {
        // The set is keyed by owned tuples, so a lookup needs owned parts; keys are cloned only
        // on deletion, which is rare next to registration.
        if !self
            .live
            .remove(&(key.clone(), namespace.clone(), timestamp))
        {
            return false;
        }
        self.tombstones += 1;
        if self.tombstones > self.live.len() + TOMBSTONE_SLACK {
            self.compact();
        }
        true
    }

    /// True when the timer is registered and has not fired.
    pub fn contains(&self, key: &K, namespace: &N, timestamp: EventTime) -> bool {
        self.live
            .contains(&(key.clone(), namespace.clone(), timestamp))
    }

    /// Number of live timers.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// True when no timer is live.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Every live timer, in unspecified order (for snapshots).
    pub fn iter(&self) -> impl Iterator<Item = (&K, &N, EventTime)> {
        self.live.iter().map(|(k, n, t)| (k, n, *t))
    }

    /// The earliest live timestamp.
    pub fn earliest(&mut self) -> Option<EventTime> {
        loop {
            let mut first = self.by_time.first_entry()?;
            let timestamp = *first.key();
            let entries = first.get_mut();
            while let Some((key, namespace)) = entries.last() {
                if self
                    .live
                    .contains(&(key.clone(), namespace.clone(), timestamp))
                {
                    return Some(timestamp);
                }
                entries.pop();
                self.tombstones -= 1;
            }
            first.remove();
        }
    }

    /// Removes and returns the earliest live timer with `timestamp <= upto`.
    pub fn pop_due(&mut self, upto: EventTime) -> Option<(K, N, EventTime)> {
        loop {
            let mut first = self.by_time.first_entry()?;
            let timestamp = *first.key();
            if timestamp > upto {
                return None;
            }
            let entries = first.get_mut();
            while let Some((key, namespace)) = entries.pop() {
                let id = (key, namespace, timestamp);
                if self.live.remove(&id) {
                    if entries.is_empty() {
                        first.remove();
                    }
                    return Some(id);
                }
                self.tombstones -= 1;
            }
            first.remove();
        }
    }

    /// Rebuilds the index from the live set, dropping every tombstone.
    fn compact(&mut self) {
        let live = &self.live;
        self.by_time.retain(|timestamp, entries| {
            entries.retain(|(k, n)| live.contains(&(k.clone(), n.clone(), *timestamp)));
            !entries.is_empty()
        });
        // Re-registration after a delete can leave two index entries for one live timer; the
        // extra one would fire nothing (the first pop removes the live id), so count it as a
        // tombstone.
        let indexed: usize = self.by_time.values().map(Vec::len).sum();
        self.tombstones = indexed - self.live.len();
    }
}

/// The event-time and processing-time timers of one keyed operator instance.
#[derive(Debug)]
pub struct TimerService<K, N> {
    /// Timers that follow the watermark.
    pub event: TimerQueue<K, N>,
    /// Timers that follow the wall clock.
    pub processing: TimerQueue<K, N>,
}

impl<K, N> Default for TimerService<K, N> {
    fn default() -> Self {
        TimerService {
            event: TimerQueue::default(),
            processing: TimerQueue::default(),
        }
    }
}

impl<K: Hash + Eq + Clone, N: Hash + Eq + Clone> TimerService<K, N> {
    /// An empty service.
    pub fn new() -> Self {
        Self::default()
    }

    /// The queue of one domain.
    pub fn queue(&mut self, domain: TimeDomain) -> &mut TimerQueue<K, N> {
        match domain {
            TimeDomain::EventTime => &mut self.event,
            TimeDomain::ProcessingTime => &mut self.processing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &mut TimerQueue<u32, u8>, upto: EventTime) -> Vec<(u32, u8, EventTime)> {
        std::iter::from_fn(|| q.pop_due(upto)).collect()
    }

    #[test]
    fn timers_fire_in_timestamp_order_up_to_the_bound() {
        let mut q = TimerQueue::new();
        for (k, t) in [(1, 30), (2, 10), (3, 20), (4, 40)] {
            assert!(q.register(k, 0u8, t));
        }
        assert_eq!(q.earliest(), Some(10));
        let fired: Vec<_> = drain(&mut q, 30).iter().map(|t| t.2).collect();
        assert_eq!(fired, vec![10, 20, 30]);
        assert_eq!(q.len(), 1);
        assert_eq!(q.earliest(), Some(40));
        assert_eq!(drain(&mut q, 39), vec![]);
        assert_eq!(drain(&mut q, 40), vec![(4, 0, 40)]);
        assert!(q.is_empty());
        assert_eq!(q.earliest(), None);
    }

    #[test]
    fn registering_twice_fires_once() {
        let mut q = TimerQueue::new();
        assert!(q.register(7, 1u8, 5));
        assert!(!q.register(7, 1u8, 5));
        assert!(q.register(7, 2u8, 5), "another namespace is another timer");
        assert!(q.register(8, 1u8, 5), "another key is another timer");
        let mut fired = drain(&mut q, 5);
        fired.sort();
        assert_eq!(fired, vec![(7, 1, 5), (7, 2, 5), (8, 1, 5)]);
    }

    #[test]
    fn deleted_timers_never_fire_and_can_be_registered_again() {
        let mut q = TimerQueue::new();
        q.register(1, 0u8, 10);
        q.register(2, 0u8, 10);
        assert!(q.delete(&1, &0, 10));
        assert!(!q.delete(&1, &0, 10), "already deleted");
        assert!(!q.contains(&1, &0, 10));
        assert_eq!(drain(&mut q, 100), vec![(2, 0, 10)]);
        // Delete then register again: fires exactly once.
        q.register(3, 0u8, 20);
        q.delete(&3, &0, 20);
        q.register(3, 0u8, 20);
        assert_eq!(drain(&mut q, 100), vec![(3, 0, 20)]);
        assert_eq!(q.earliest(), None);
    }

    #[test]
    fn earliest_skips_deleted_timers() {
        let mut q = TimerQueue::new();
        q.register(1, 0u8, 10);
        q.register(2, 0u8, 20);
        q.delete(&1, &0, 10);
        assert_eq!(q.earliest(), Some(20));
    }

    #[test]
    fn many_deletions_compact_the_index() {
        let mut q = TimerQueue::new();
        for i in 0..10_000u32 {
            q.register(i, 0u8, EventTime::from(i % 7));
            q.delete(&i, &0, EventTime::from(i % 7));
        }
        assert!(q.tombstones <= TOMBSTONE_SLACK + 1);
        q.register(1, 0u8, 3);
        assert_eq!(drain(&mut q, 100), vec![(1, 0, 3)]);
    }
}
