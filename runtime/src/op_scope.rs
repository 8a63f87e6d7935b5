//! Which operator a shard is running right now, so that a panic in user code can be reported
//! with the operator's name.
//!
//! Every operator calls `enter(id)` before it runs user code for a batch or signal: one
//! thread-local store per batch, not per record. No guard restores the previous value on exit on
//! purpose: during unwinding a guard would overwrite the id of the operator that panicked.

use std::cell::Cell;

/// Id used when no operator is running (the shard's own loop).
pub const NO_OPERATOR: u32 = u32::MAX;

thread_local! {
    static CURRENT: Cell<u32> = const { Cell::new(NO_OPERATOR) };
}

/// Marks operator `id` as running on this thread.
#[inline]
pub fn enter(id: u32) {
    CURRENT.with(|c| c.set(id));
}

/// The operator last entered on this thread.
pub fn current() -> u32 {
    CURRENT.with(|c| c.get())
}
