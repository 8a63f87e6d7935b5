//! The push interface between fused operators, and the small collectors that wire a chain:
//! fan-out (`Tee`), fan-in (`Union`) and `Discard`.
//!
//! A chain is a stack of `Collector`s: each operator owns the collector downstream of it and
//! calls it with plain (virtual) calls, once per batch. The contract of `push`: the callee takes
//! every record out of `batch.records` and leaves the vector empty with its capacity, so the
//! caller can refill it without allocating.

use std::cell::RefCell;
use std::rc::Rc;

use crate::element::{Batch, Signal, StreamStatus};
use crate::error::OpResult;
use crate::time::{EventTime, NO_TIMESTAMP};

/// Receives a stream's batches and signals inside one shard.
pub trait Collector<T>: 'static {
    /// Takes all records out of `batch` (leaving it empty).
    fn push(&mut self, batch: &mut Batch<T>) -> OpResult;
    /// Handles a control signal; most operators forward it downstream unchanged.
    fn signal(&mut self, signal: Signal) -> OpResult;
}

/// A boxed collector, as stored in chains.
pub type BoxCollector<T> = Box<dyn Collector<T>>;

/// Drops everything: the downstream of a stream that nobody consumes.
pub struct Discard;

impl<T: 'static> Collector<T> for Discard {
    fn push(&mut self, batch: &mut Batch<T>) -> OpResult {
        batch.records.clear();
        Ok(())
    }
    fn signal(&mut self, _signal: Signal) -> OpResult {
        Ok(())
    }
}

/// Sends every batch to several downstreams: clones for all but the last, which gets the
/// original records.
pub struct Tee<T> {
    outputs: Vec<BoxCollector<T>>,
    scratch: Batch<T>,
}

impl<T: Clone + 'static> Tee<T> {
    /// A tee over at least two outputs.
    pub fn new(outputs: Vec<BoxCollector<T>>) -> Self {
        assert!(outputs.len() >= 2, "a tee needs at least two outputs");
        Tee {
            outputs,
            scratch: Batch::with_capacity(0),
        }
    }
}

impl<T: Clone + 'static> Collector<T> for Tee<T> {
    fn push(&mut self, batch: &mut Batch<T>) -> OpResult {
        let (last, rest) = self.outputs.split_last_mut().expect("tee has outputs");
        for out in rest {
            self.scratch.records.extend_from_slice(&batch.records);
            self.scratch.emitted_ns = batch.emitted_ns;
            out.push(&mut self.scratch)?;
            debug_assert!(self.scratch.is_empty(), "downstream must drain the batch");
        }
        last.push(batch)
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        for out in &mut self.outputs {
            out.signal(signal)?;
        }
        Ok(())
    }
}

/// Combines a list of downstream collectors into one: discard, itself, or a tee.
pub fn fan_out<T: Clone + 'static>(mut outputs: Vec<BoxCollector<T>>) -> BoxCollector<T> {
    match outputs.len() {
        0 => Box::new(Discard),
        1 => outputs.pop().expect("one output"),
        _ => Box::new(Tee::new(outputs)),
    }
}

/// Tracks the watermark, idleness and end of several inputs and says what the combined stream
/// should see: the minimum watermark over active inputs, idle only when all are idle, ended only
/// when all have ended.
#[derive(Debug)]
pub struct InputFrontier {
    watermarks: Vec<EventTime>,
    idle: Vec<bool>,
    ended: Vec<bool>,
    emitted_watermark: EventTime,
    emitted_idle: bool,
    open_inputs: usize,
}

/// What the combined stream should be told after an input changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FrontierUpdate {
    /// The status changed to this.
    pub status: Option<StreamStatus>,
    /// The combined watermark advanced to this.
    pub watermark: Option<EventTime>,
    /// All inputs have ended.
    pub ended: bool,
}

impl InputFrontier {
    /// A frontier over `inputs` inputs, none ended, all at `NO_TIMESTAMP`.
    pub fn new(inputs: usize) -> Self {
        assert!(inputs >= 1);
        InputFrontier {
            watermarks: vec![NO_TIMESTAMP; inputs],
            idle: vec![false; inputs],
            ended: vec![false; inputs],
            emitted_watermark: NO_TIMESTAMP,
            emitted_idle: false,
            open_inputs: inputs,
        }
    }

    /// The watermark the combined stream has been told.
    pub fn watermark(&self) -> EventTime {
        self.emitted_watermark
    }

    /// Input `i` delivered a signal; returns what the combined stream must see.
    pub fn on_signal(&mut self, i: usize, signal: Signal) -> FrontierUpdate {
        match signal {
            Signal::Watermark(wm) => {
                // Watermarks on one channel never go backwards; a late lower one is ignored.
                if wm > self.watermarks[i] {
                    self.watermarks[i] = wm;
                }
                if self.idle[i] {
                    self.idle[i] = false;
                }
            }
            Signal::Status(StreamStatus::Idle) => self.idle[i] = true,
            Signal::Status(StreamStatus::Active) => self.idle[i] = false,
            Signal::End => {
                if !self.ended[i] {
                    self.ended[i] = true;
                    self.watermarks[i] = EventTime::MAX;
                    self.open_inputs -= 1;
                }
            }
            Signal::Barrier(_) | Signal::Tick(_) => return FrontierUpdate::default(),
        }
        self.update()
    }

    fn update(&mut self) -> FrontierUpdate {
        let mut out = FrontierUpdate {
            ended: self.open_inputs == 0,
            ..Default::default()
        };
        let mut min_active = EventTime::MAX;
        let mut max_open = EventTime::MIN;
        let mut any_active = false;
        for i in 0..self.watermarks.len() {
            if self.ended[i] || !self.idle[i] {
                any_active |= !self.ended[i];
                min_active = min_active.min(self.watermarks[i]);
            }
            if !self.ended[i] {
                max_open = max_open.max(self.watermarks[i]);
            }
        }
        let all_idle = !any_active && self.open_inputs > 0;
        if all_idle != self.emitted_idle {
            self.emitted_idle = all_idle;
            out.status = Some(if all_idle {
                StreamStatus::Idle
            } else {
                StreamStatus::Active
            });
        }
        // As Flink's StatusWatermarkValve: while some input is active, the watermark is the
        // minimum over active (and ended) inputs; when the last input goes idle, it advances to
        // the maximum over all open inputs, so a stream whose inputs all paused still completes
        // the event time it has seen.
        let target = match (all_idle, out.status) {
            (true, Some(_)) => max_open,
            (true, None) => self.emitted_watermark,
            (false, _) => min_active,
        };
        if target > self.emitted_watermark {
            self.emitted_watermark = target;
            out.watermark = Some(target);
        }
        out
    }
}

/// Several inputs feeding one downstream inside a shard (`union`, and the fan-in of one stream
/// used twice by the same operator).
pub struct UnionInput<T> {
    index: usize,
    core: Rc<RefCell<UnionCore<T>>>,
}

/// An element held back while its input waits for the others' barrier.
enum Held<T> {
    Data(Batch<T>),
    Signal(Signal),
}

struct UnionCore<T> {
    down: BoxCollector<T>,
    frontier: InputFrontier,
    aligner: crate::checkpoint::align::BarrierAligner,
    /// Exactly-once: elements of an input past the barrier wait here, in order.
    block_aligned: bool,
    held: std::collections::VecDeque<(usize, Held<T>)>,
}

/// Builds the inputs of a union of `inputs` streams feeding `down`; with `block_aligned`, an
/// input past a checkpoint barrier is held back until every input delivered it.
pub fn union_inputs<T: 'static>(
    down: BoxCollector<T>,
    inputs: usize,
    block_aligned: bool,
) -> Vec<BoxCollector<T>> {
    let core = Rc::new(RefCell::new(UnionCore {
        down,
        frontier: InputFrontier::new(inputs),
        aligner: crate::checkpoint::align::BarrierAligner::new(inputs),
        block_aligned,
        held: std::collections::VecDeque::new(),
    }));
    (0..inputs)
        .map(|index| {
            Box::new(UnionInput {
                index,
                core: Rc::clone(&core),
            }) as BoxCollector<T>
        })
        .collect()
}

impl<T: 'static> UnionCore<T> {
    fn blocked(&self, index: usize) -> bool {
        self.block_aligned && self.aligner.is_blocked(index)
    }

    fn push(&mut self, index: usize, batch: &mut Batch<T>) -> OpResult {
        if self.blocked(index) {
            let held = Batch {
                records: std::mem::take(&mut batch.records),
                emitted_ns: batch.emitted_ns,
            };
            self.held.push_back((index, Held::Data(held)));
            return Ok(());
        }
        self.down.push(batch)
    }

    fn signal(&mut self, index: usize, signal: Signal) -> OpResult {
        if self.blocked(index) && !matches!(signal, Signal::Tick(_)) {
            self.held.push_back((index, Held::Signal(signal)));
            return Ok(());
        }
        match signal {
            Signal::Tick(_) => self.down.signal(signal),
            Signal::Barrier(id) => {
                if self.aligner.on_barrier(index, id) {
                    self.down.signal(signal)?;
                    self.release_held()?;
                }
                Ok(())
            }
            _ => {
                let aligning = self.aligner.current();
                if signal == Signal::End && self.aligner.on_end(index) {
                    self.down
                        .signal(Signal::Barrier(aligning.expect("alignment in progress")))?;
                    let update = self.frontier.on_signal(index, signal);
                    forward_update(&mut *self.down, update)?;
                    return self.release_held();
                }
                let update = self.frontier.on_signal(index, signal);
                forward_update(&mut *self.down, update)
            }
        }
    }

    /// Replays what was held back, in arrival order, after the barrier went on.
    fn release_held(&mut self) -> OpResult {
        while let Some((index, held)) = self.held.pop_front() {
            match held {
                Held::Data(mut batch) => self.push(index, &mut batch)?,
                Held::Signal(signal) => self.signal(index, signal)?,
            }
        }
        Ok(())
    }
}

impl<T: 'static> Collector<T> for UnionInput<T> {
    fn push(&mut self, batch: &mut Batch<T>) -> OpResult {
        self.core.borrow_mut().push(self.index, batch)
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        self.core.borrow_mut().signal(self.index, signal)
    }
}

/// Sends the signals a frontier update calls for: a stream becoming active says so before its
/// watermark, a stream going idle sends its last watermark first (a watermark on an idle input
/// would make it active again downstream); the end comes last.
pub fn forward_update<T: 'static>(down: &mut dyn Collector<T>, update: FrontierUpdate) -> OpResult {
    match update.status {
        Some(StreamStatus::Idle) => {
            if let Some(wm) = update.watermark {
                down.signal(Signal::Watermark(wm))?;
            }
            down.signal(Signal::Status(StreamStatus::Idle))?;
        }
        status => {
            if let Some(status) = status {
                down.signal(Signal::Status(status))?;
            }
            if let Some(wm) = update.watermark {
                down.signal(Signal::Watermark(wm))?;
            }
        }
    }
    if update.ended {
        down.signal(Signal::End)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontier_is_min_over_active_inputs() {
        let mut f = InputFrontier::new(3);
        assert_eq!(f.on_signal(0, Signal::Watermark(10)).watermark, None);
        assert_eq!(f.on_signal(1, Signal::Watermark(5)).watermark, None);
        assert_eq!(f.on_signal(2, Signal::Watermark(7)).watermark, Some(5));
        assert_eq!(
            f.on_signal(1, Signal::Status(StreamStatus::Idle)).watermark,
            Some(7)
        );
        let u = f.on_signal(2, Signal::End);
        assert_eq!(u.watermark, Some(10));
        assert!(!u.ended);
        // All open inputs idle: the combined stream goes idle at the maximum open watermark.
        let u = f.on_signal(0, Signal::Status(StreamStatus::Idle));
        assert_eq!(u.status, Some(StreamStatus::Idle));
        assert_eq!(u.watermark, None, "10 was already emitted");
        // A watermark on the idle input 1 makes it active again.
        let u = f.on_signal(1, Signal::Watermark(20));
        assert_eq!(u.status, Some(StreamStatus::Active));
        assert_eq!(u.watermark, Some(20));
        f.on_signal(0, Signal::End);
        let u = f.on_signal(1, Signal::End);
        assert!(u.ended);
        assert_eq!(u.watermark, Some(EventTime::MAX));
    }

    #[test]
    fn last_input_going_idle_releases_the_max_watermark() {
        let mut f = InputFrontier::new(2);
        f.on_signal(0, Signal::Watermark(50));
        assert_eq!(
            f.on_signal(0, Signal::Status(StreamStatus::Idle)).watermark,
            None
        );
        let u = f.on_signal(1, Signal::Status(StreamStatus::Idle));
        assert_eq!(u.status, Some(StreamStatus::Idle));
        assert_eq!(u.watermark, Some(50));
    }

    #[test]
    fn watermarks_never_regress() {
        let mut f = InputFrontier::new(1);
        assert_eq!(f.on_signal(0, Signal::Watermark(10)).watermark, Some(10));
        assert_eq!(f.on_signal(0, Signal::Watermark(3)).watermark, None);
        assert_eq!(f.watermark(), 10);
    }
}
