//! Flink's `AggregateFunction`: an incremental aggregation through an accumulator, used by
//! aggregating state and by window aggregation.

/// Aggregates values of type `T` through an accumulator.
///
/// Laws the operators rely on: `merge` is associative and `create_accumulator` is its identity,
/// so adding values to several accumulators and merging them gives the same result as adding
/// them all to one (this is what lets sliding windows share panes and session windows merge).
pub trait AggregateFunction<T>: Clone + Send + Sync + 'static {
    /// The accumulator (kept in keyed state, so checkpoints encode it with serde).
    type Acc: Clone + crate::state::snapshot::StateData;
    /// The result.
    type Out;
    /// A fresh accumulator (the identity of `merge`).
    fn create_accumulator(&self) -> Self::Acc;
    /// Adds one value.
    fn add(&self, value: T, acc: &mut Self::Acc);
    /// The result of an accumulator.
    fn get_result(&self, acc: &Self::Acc) -> Self::Out;
    /// Merges `other` into `acc`.
    fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc);
}
