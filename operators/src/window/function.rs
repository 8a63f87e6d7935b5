//! How a window turns its elements into a result: the incremental accumulators behind
//! `reduce`, `aggregate` and `process`, and the built-in [`Count`] aggregate.
//!
//! Every kind is an accumulator with an associative `merge` whose identity is `create`, so the
//! same code serves single windows, sliding-window panes (merged when a window fires) and
//! merging session windows.

use corestrom_runtime::state::AggregateFunction;
use corestrom_runtime::state::snapshot::StateData;

/// An incremental window accumulator over elements `T`.
pub(crate) trait WindowAgg<T>: Clone + Send + Sync + 'static {
    type Acc: Clone + StateData;
    type Result;
    fn create(&mut self) -> Self::Acc;
    fn add(&mut self, acc: &mut Self::Acc, value: T);
    fn merge(&mut self, acc: &mut Self::Acc, other: &Self::Acc);
    fn result(&mut self, acc: Self::Acc) -> Self::Result;
}

/// `reduce(f)`: the accumulator is the reduced value (none before the first element).
#[derive(Clone)]
pub(crate) struct ReduceAgg<F>(pub(crate) F);

impl<T, F> WindowAgg<T> for ReduceAgg<F>
where
    T: Clone + StateData,
    F: FnMut(T, T) -> T + Clone + Send + Sync + 'static,
{
    type Acc = Option<T>;
    type Result = T;
    fn create(&mut self) -> Option<T> {
        None
    }
    #[inline]
    fn add(&mut self, acc: &mut Option<T>, value: T) {
        *acc = Some(match acc.take() {
            Some(a) => (self.0)(a, value),
            None => value,
        });
    }
    fn merge(&mut self, acc: &mut Option<T>, other: &Option<T>) {
        if let Some(o) = other {
            self.add(acc, o.clone());
        }
    }
    fn result(&mut self, acc: Option<T>) -> T {
        acc.expect("a window fires only with elements")
    }
}

/// `aggregate(agg)`: Flink's `AggregateFunction`.
#[derive(Clone)]
pub(crate) struct AggregateAgg<A>(pub(crate) A);

impl<T, A: AggregateFunction<T>> WindowAgg<T> for AggregateAgg<A> {
    type Acc = A::Acc;
    type Result = A::Out;
    fn create(&mut self) -> A::Acc {
        self.0.create_accumulator()
    }
    #[inline]
    fn add(&mut self, acc: &mut A::Acc, value: T) {
        self.0.add(value, acc);
    }
    fn merge(&mut self, acc: &mut A::Acc, other: &A::Acc) {
        self.0.merge(acc, other);
    }
    fn result(&mut self, acc: A::Acc) -> A::Out {
        self.0.get_result(&acc)
    }
}

/// `process(f)`: keeps every element (each once, in its pane).
#[derive(Clone)]
pub(crate) struct ListAgg;

impl<T: Clone + StateData> WindowAgg<T> for ListAgg {
    type Acc = Vec<T>;
    type Result = Vec<T>;
    fn create(&mut self) -> Vec<T> {
        Vec::new()
    }
    fn add(&mut self, acc: &mut Vec<T>, value: T) {
        acc.push(value);
    }
    fn merge(&mut self, acc: &mut Vec<T>, other: &Vec<T>) {
        acc.extend_from_slice(other);
    }
    fn result(&mut self, acc: Vec<T>) -> Vec<T> {
        acc
    }
}

/// Counts elements (an `AggregateFunction` with a `u64` accumulator).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count;

impl<T> AggregateFunction<T> for Count {
    type Acc = u64;
    type Out = u64;
    fn create_accumulator(&self) -> u64 {
        0
    }
    #[inline]
    fn add(&self, _value: T, acc: &mut u64) {
        *acc += 1;
    }
    fn get_result(&self, acc: &u64) -> u64 {
        *acc
    }
    fn merge(&self, acc: &mut u64, other: &u64) {
        *acc += *other;
    }
}
