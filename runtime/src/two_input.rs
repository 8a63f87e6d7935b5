//! Operators with two inputs of different types (Flink's `connect` and two-input operators,
//! the basis of joins): one operator instance per shard, fed by two collectors.
//!
//! The adapters returned by [`two_inputs`] share the operator through an `Rc<RefCell<_>>`
//! (everything stays on one shard, and a DAG never re-enters an operator while it runs). They
//! combine the two inputs' watermarks, idleness and end-of-stream with an [`InputFrontier`], so
//! the operator sees one watermark, the minimum over its active inputs, and one end, after both
//! inputs ended, exactly as a single-input operator does.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;

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
    /// A barrier, a tick: forwarded as the operator sees fit (usually downstream as is).
    fn on_other(&mut self, side: Side, signal: Signal) -> OpResult;
    /// Both inputs ended; emit what is left and send `End` downstream.
    fn on_end(&mut self) -> OpResult;
}

struct Shared<Op> {
    op: Op,
    frontier: InputFrontier,
}

/// The collector of the first input of a two-input operator.
pub struct FirstInput<Op, B> {
    shared: Rc<RefCell<Shared<Op>>>,
    _second: PhantomData<fn(B)>,
}

/// The collector of the second input of a two-input operator.
pub struct SecondInput<Op, A> {
    shared: Rc<RefCell<Shared<Op>>>,
    _first: PhantomData<fn(A)>,
}

/// The two input collectors of `op`: feed the first stream into `.0`, the second into `.1`.
pub fn two_inputs<A: 'static, B: 'static, Op: TwoInputOperator<A, B>>(
    op: Op,
) -> (BoxCollector<A>, BoxCollector<B>) {
    let shared = Rc::new(RefCell::new(Shared {
        op,
        frontier: InputFrontier::new(2),
    }));
    (
        Box::new(FirstInput::<Op, B> {
            shared: Rc::clone(&shared),
            _second: PhantomData,
        }),
        Box::new(SecondInput::<Op, A> {
            shared,
            _first: PhantomData,
        }),
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

fn on_signal<A, B, Op: TwoInputOperator<A, B>>(
    shared: &RefCell<Shared<Op>>,
    side: Side,
    signal: Signal,
) -> OpResult {
    let mut shared = shared.borrow_mut();
    match signal {
        Signal::Barrier(_) | Signal::Tick(_) => shared.op.on_other(side, signal),
        _ => {
            let index = match side {
                Side::First => 0,
                Side::Second => 1,
            };
            let update = shared.frontier.on_signal(index, signal);
            apply::<A, B, Op>(&mut shared.op, update)
        }
    }
}

impl<A: 'static, B: 'static, Op: TwoInputOperator<A, B>> Collector<A> for FirstInput<Op, B> {
    fn push(&mut self, batch: &mut Batch<A>) -> OpResult {
        self.shared.borrow_mut().op.push_first(batch)
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        on_signal::<A, B, Op>(&self.shared, Side::First, signal)
    }
}

impl<A: 'static, B: 'static, Op: TwoInputOperator<A, B>> Collector<B> for SecondInput<Op, A> {
    fn push(&mut self, batch: &mut Batch<B>) -> OpResult {
        self.shared.borrow_mut().op.push_second(batch)
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        on_signal::<A, B, Op>(&self.shared, Side::Second, signal)
    }
}
