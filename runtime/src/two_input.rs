//! Operators with two inputs of different types (Flink's `connect` and two-input operators,
//! the basis of joins): one operator instance per shard, fed by two collectors.
//!
//! The adapters returned by [`two_inputs`] share the operator through an `Rc<RefCell<_>>`
//! (everything stays on one shard, and a DAG never re-enters an operator while it runs). They
//! combine the two inputs' watermarks, idleness and end-of-stream with an [`InputFrontier`], so
//! the operator sees one watermark, the minimum over its active inputs, and one end, after both
//! inputs ended, exactly as a single-input operator does.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use crate::checkpoint::align::BarrierAligner;

use crate::collector::{BoxCollector, Collector, FrontierUpdate, InputFrontier};
use crate::element::{Batch, Signal, StreamStatus};
use crate::error::OpResult;
use crate::time::EventTime;

/// Which input a batch or signal arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The stream `connect` was called on.
    First,
    /// The stream passed to `connect`.
    Second,
}

/// A two-input operator as the runtime drives it.
pub trait TwoInputOperator<A, B>: 'static {
    /// Takes every record of a batch from the first input.
    fn push_first(&mut self, batch: &mut Batch<A>) -> OpResult;
    /// Takes every record of a batch from the second input.
    fn push_second(&mut self, batch: &mut Batch<B>) -> OpResult;
    /// The combined watermark (minimum over active inputs) advanced to `watermark`.
    fn on_watermark(&mut self, watermark: EventTime) -> OpResult;
    /// The combined stream became idle or active.
    fn on_status(&mut self, status: StreamStatus) -> OpResult;
    /// A barrier (once both inputs delivered it) or a tick: forwarded as the operator sees fit
    /// (usually downstream as is).
    fn on_other(&mut self, side: Side, signal: Signal) -> OpResult;
    /// Both inputs ended; emit what is left and send `End` downstream.
    fn on_end(&mut self) -> OpResult;
}

/// An element held back while its input waits for the other input's barrier.
enum Held<T> {
    Data(Batch<T>),
    Signal(Signal),
}

struct Shared<Op, A, B> {
    op: Op,
    frontier: InputFrontier,
    aligner: BarrierAligner,
    block_aligned: bool,
    held_first: VecDeque<Held<A>>,
    held_second: VecDeque<Held<B>>,
}

/// The collector of the first input of a two-input operator.
pub struct FirstInput<Op, A, B> {
    shared: Rc<RefCell<Shared<Op, A, B>>>,
}

/// The collector of the second input of a two-input operator.
pub struct SecondInput<Op, A, B> {
    shared: Rc<RefCell<Shared<Op, A, B>>>,
}

/// The two input collectors of `op`: feed the first stream into `.0`, the second into `.1`.
/// With `block_aligned` (exactly-once checkpoints), an input past a barrier is held back until
/// the other input delivered it too.
pub fn two_inputs<A: 'static, B: 'static, Op: TwoInputOperator<A, B>>(
    op: Op,
    block_aligned: bool,
) -> (BoxCollector<A>, BoxCollector<B>) {
    let shared = Rc::new(RefCell::new(Shared {
        op,
        frontier: InputFrontier::new(2),
        aligner: BarrierAligner::new(2),
        block_aligned,
        held_first: VecDeque::new(),
        held_second: VecDeque::new(),
    }));
    (
        Box::new(FirstInput {
            shared: Rc::clone(&shared),
        }),
        Box::new(SecondInput { shared }),
    )
}

fn apply<A, B, Op: TwoInputOperator<A, B>>(op: &mut Op, update: FrontierUpdate) -> OpResult {
    // Same order as `collector::forward_update`: active before the watermark, the last
    // watermark before idle, the end last.
    match update.status {
        Some(StreamStatus::Idle) => {
            if let Some(wm) = update.watermark {
                op.on_watermark(wm)?;
            }
            op.on_status(StreamStatus::Idle)?;
        }
        status => {
            if let Some(status) = status {
                op.on_status(status)?;
            }
            if let Some(wm) = update.watermark {
                op.on_watermark(wm)?;
            }
        }
    }
    if update.ended {
        op.on_end()?;
    }
    Ok(())
}

impl<A: 'static, B: 'static, Op: TwoInputOperator<A, B>> Shared<Op, A, B> {
    fn blocked(&self, side: Side) -> bool {
        self.block_aligned && self.aligner.is_blocked(side.index())
    }

    fn push_first(&mut self, batch: &mut Batch<A>) -> OpResult {
        if self.blocked(Side::First) {
            let held = Batch {
                records: std::mem::take(&mut batch.records),
                emitted_ns: batch.emitted_ns,
            };
            self.held_first.push_back(Held::Data(held));
            return Ok(());
        }
        self.op.push_first(batch)
    }

    fn push_second(&mut self, batch: &mut Batch<B>) -> OpResult {
        if self.blocked(Side::Second) {
            let held = Batch {
                records: std::mem::take(&mut batch.records),
                emitted_ns: batch.emitted_ns,
            };
            self.held_second.push_back(Held::Data(held));
            return Ok(());
        }
        self.op.push_second(batch)
    }

    fn signal(&mut self, side: Side, signal: Signal) -> OpResult {
        if self.blocked(side) && !matches!(signal, Signal::Tick(_)) {
            match side {
                Side::First => self.held_first.push_back(Held::Signal(signal)),
                Side::Second => self.held_second.push_back(Held::Signal(signal)),
            }
            return Ok(());
        }
        match signal {
            Signal::Tick(_) => self.op.on_other(side, signal),
            Signal::Barrier(id) => {
                if self.aligner.on_barrier(side.index(), id) {
                    self.op.on_other(side, signal)?;
                    self.release_held()?;
                }
                Ok(())
            }
            _ => {
                let aligning = self.aligner.current();
                let completes = signal == Signal::End && self.aligner.on_end(side.index());
                if completes {
                    let id = aligning.expect("alignment in progress");
                    self.op.on_other(side, Signal::Barrier(id))?;
                }
                let update = self.frontier.on_signal(side.index(), signal);
                apply::<A, B, Op>(&mut self.op, update)?;
                if completes {
                    self.release_held()?;
                }
                Ok(())
            }
        }
    }

    /// Replays what was held back after the barrier went on (only one side can hold).
    fn release_held(&mut self) -> OpResult {
        while let Some(held) = self.held_first.pop_front() {
            match held {
                Held::Data(mut batch) => self.push_first(&mut batch)?,
                Held::Signal(signal) => self.signal(Side::First, signal)?,
            }
        }
        while let Some(held) = self.held_second.pop_front() {
            match held {
                Held::Data(mut batch) => self.push_second(&mut batch)?,
                Held::Signal(signal) => self.signal(Side::Second, signal)?,
            }
        }
        Ok(())
    }
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::First => 0,
            Side::Second => 1,
        }
    }
}

impl<A: 'static, B: 'static, Op: TwoInputOperator<A, B>> Collector<A> for FirstInput<Op, A, B> {
    fn push(&mut self, batch: &mut Batch<A>) -> OpResult {
        self.shared.borrow_mut().push_first(batch)
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        self.shared.borrow_mut().signal(Side::First, signal)
    }
}

impl<A: 'static, B: 'static, Op: TwoInputOperator<A, B>> Collector<B> for SecondInput<Op, A, B> {
    fn push(&mut self, batch: &mut Batch<B>) -> OpResult {
        self.shared.borrow_mut().push_second(batch)
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        self.shared.borrow_mut().signal(Side::Second, signal)
    }
}
