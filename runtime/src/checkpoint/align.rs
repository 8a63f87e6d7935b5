//! Barrier alignment over several inputs: which inputs already delivered the current barrier
//! (and must be held back, in exactly-once mode), and when the barrier may go on.
//!
//! At most one checkpoint is in flight (the coordinator triggers the next only after the
//! previous completed, which needs this alignment to finish first), so one barrier at a time is
//! tracked. An input that ended counts as aligned: it will never deliver the barrier.

use crate::element::CheckpointId;

/// Alignment state of one multi-input point.
#[derive(Debug)]
pub struct BarrierAligner {
    current: Option<CheckpointId>,
    arrived: Vec<bool>,
    ended: Vec<bool>,
}

impl BarrierAligner {
    /// An aligner over `inputs` inputs.
    pub fn new(inputs: usize) -> Self {
        BarrierAligner {
            current: None,
            arrived: vec![false; inputs],
            ended: vec![false; inputs],
        }
    }

    /// True while input `i` delivered the current barrier and others have not: its further
    /// elements belong after the barrier and must wait (exactly-once).
    #[inline]
    pub fn is_blocked(&self, i: usize) -> bool {
        self.current.is_some() && self.arrived[i]
    }

    /// True while a barrier is being aligned.
    pub fn is_aligning(&self) -> bool {
        self.current.is_some()
    }

    /// Input `i` delivered `id`; returns true when every open input has, so the barrier goes on
    /// now (and nothing is blocked any more).
    pub fn on_barrier(&mut self, i: usize, id: CheckpointId) -> bool {
        match self.current {
            None => self.current = Some(id),
            Some(current) => assert_eq!(
                current, id,
                "a second barrier arrived while {current:?} aligns"
            ),
        }
        assert!(!self.arrived[i], "input {i} delivered barrier {id:?} twice");
        self.arrived[i] = true;
        self.try_complete()
    }

    /// Input `i` ended; returns true when that completes an alignment in progress.
    pub fn on_end(&mut self, i: usize) -> bool {
        self.ended[i] = true;
        self.current.is_some() && self.try_complete()
    }

    /// The barrier being aligned.
    pub fn current(&self) -> Option<CheckpointId> {
        self.current
    }

    fn try_complete(&mut self) -> bool {
        let done = self.arrived.iter().zip(&self.ended).all(|(&a, &e)| a || e);
        if done {
            self.current = None;
            self.arrived.iter_mut().for_each(|a| *a = false);
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_over_open_inputs() {
        let mut a = BarrierAligner::new(3);
        assert!(!a.on_barrier(0, CheckpointId(1)));
        assert!(a.is_blocked(0) && !a.is_blocked(1));
        assert!(!a.on_barrier(2, CheckpointId(1)));
        assert!(a.on_end(1), "the last open input ended: aligned");
        assert!(!a.is_blocked(0));
        assert!(!a.on_barrier(0, CheckpointId(2)));
        assert!(
            a.on_barrier(2, CheckpointId(2)),
            "ended input 1 counts as aligned"
        );
    }
}
