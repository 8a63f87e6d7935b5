//! The shard's processing-time service: wake-ups that operators ask for, so that their
//! processing-time timers fire even when no data flows.
//!
//! Model: an operator registers one callback ([`ProcessingTimeService::register`]) when it is
//! instantiated and gets a [`Wakeup`] handle. Through the handle it asks to be called back when
//! the wall clock (`time::wall_clock_ms`) reaches a time; it asks only when its own earliest
//! processing-time timer moves earlier, so the heap holds about one entry per operator, and a
//! record costs nothing here. The shard loop checks the earliest due time once per turn, calls
//! the due callbacks, and caps its park timeout by the next due time.
//!
//! Rules:
//! - A callback may fire late (the loop was busy) or spuriously (a superseded wake-up); the
//!   operator fires whatever of its timers is due and asks again for the rest.
//! - Callbacks run from the shard loop only, never from inside a chain's `push` or `signal`, so
//!   an operator's `RefCell` is never borrowed twice.
//! - Callbacks are held weakly: the operator owns the strong reference, so a finished chain
//!   frees its operators even while wake-ups are pending.
//! - When every input of the job has ended the loop stops without waiting for pending wake-ups:
//!   as in Flink, processing-time timers that are not yet due at the end of a bounded job do
//!   not fire.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::{Rc, Weak};

use crate::error::{OpResult, OperatorError};
use crate::time::EventTime;

/// An operator that wants to be called when processing time passes.
pub trait ProcessingTimeCallback {
    /// The wall clock reached (at least) one of the wake-up times the operator asked for.
    fn on_processing_time(&mut self, now_ms: EventTime) -> OpResult;
}

struct Slot {
    operator: u32,
    callback: Weak<RefCell<dyn ProcessingTimeCallback>>,
}

#[derive(Default)]
struct Inner {
    due: BinaryHeap<Reverse<(EventTime, u32)>>,
    slots: Vec<Slot>,
}

/// One shard's processing-time service (cheap to clone; all clones are the same service).
#[derive(Clone, Default)]
pub struct ProcessingTimeService {
    inner: Rc<RefCell<Inner>>,
}

impl std::fmt::Debug for ProcessingTimeService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.borrow();
        f.debug_struct("ProcessingTimeService")
            .field("pending", &inner.due.len())
            .field("callbacks", &inner.slots.len())
            .finish()
    }
}

/// An operator's handle for asking to be woken.
#[derive(Clone)]
pub struct Wakeup {
    inner: Rc<RefCell<Inner>>,
    slot: u32,
}

impl std::fmt::Debug for Wakeup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wakeup").field("slot", &self.slot).finish()
    }
}

impl Wakeup {
    /// Asks for a callback once the wall clock reaches `at_ms`. O(log n).
    pub fn wake_at(&self, at_ms: EventTime) {
        self.inner
            .borrow_mut()
            .due
            .push(Reverse((at_ms, self.slot)));
    }
}

impl ProcessingTimeService {
    /// A service with no callbacks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers operator `operator`'s callback; the handle asks for wake-ups.
    pub fn register(
        &self,
        operator: u32,
        callback: Weak<RefCell<dyn ProcessingTimeCallback>>,
    ) -> Wakeup {
        let mut inner = self.inner.borrow_mut();
        let slot = u32::try_from(inner.slots.len()).expect("fewer than 2^32 operators");
        inner.slots.push(Slot { operator, callback });
        Wakeup {
            inner: Rc::clone(&self.inner),
            slot,
        }
    }

    /// The earliest requested wake-up time.
    pub fn next_due_ms(&self) -> Option<EventTime> {
        self.inner.borrow().due.peek().map(|Reverse((at, _))| *at)
    }

    /// Calls every callback with a wake-up due at `now_ms`, each at most once per call; returns
    /// how many were called. A failing callback's error carries its operator id.
    pub fn fire_due(&self, now_ms: EventTime) -> Result<usize, (u32, OperatorError)> {
        let mut due: Vec<u32> = Vec::new();
        {
            let mut inner = self.inner.borrow_mut();
            while let Some(Reverse((at, slot))) = inner.due.peek().copied() {
                if at > now_ms {
                    break;
                }
                inner.due.pop();
                if !due.contains(&slot) {
                    due.push(slot);
                }
            }
        }
        let mut called = 0;
        for slot in due {
            // The borrow of `inner` ends before the callback runs: callbacks ask for new
            // wake-ups through their handle.
            let (operator, callback) = {
                let inner = self.inner.borrow();
                let s = &inner.slots[slot as usize];
                (s.operator, s.callback.upgrade())
            };
            if let Some(callback) = callback {
                crate::op_scope::enter(operator);
                callback
                    .borrow_mut()
                    .on_processing_time(now_ms)
                    .map_err(|e| (operator, e))?;
                called += 1;
            }
        }
        Ok(called)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Recorder {
        calls: Vec<EventTime>,
    }

    impl ProcessingTimeCallback for Recorder {
        fn on_processing_time(&mut self, now_ms: EventTime) -> OpResult {
            self.calls.push(now_ms);
            Ok(())
        }
    }

    #[test]
    fn due_callbacks_fire_once_per_call_and_in_time() {
        let service = ProcessingTimeService::new();
        let rec = Rc::new(RefCell::new(Recorder { calls: vec![] }));
        let weak: Weak<RefCell<dyn ProcessingTimeCallback>> =
            Rc::downgrade(&(Rc::clone(&rec) as Rc<RefCell<dyn ProcessingTimeCallback>>));
        let wake = service.register(3, weak);
        wake.wake_at(100);
        wake.wake_at(50);
        wake.wake_at(200);
        assert_eq!(service.next_due_ms(), Some(50));
        assert_eq!(service.fire_due(40).ok(), Some(0));
        assert_eq!(service.fire_due(150).ok(), Some(1));
        assert_eq!(rec.borrow().calls, vec![150]);
        assert_eq!(service.next_due_ms(), Some(200));
        drop(rec);
        assert_eq!(
            service.fire_due(300).ok(),
            Some(0),
            "a dropped operator is skipped"
        );
    }
}
