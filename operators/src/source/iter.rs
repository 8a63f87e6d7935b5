//! Sources from Rust iterators: one iterator per split (bounded when it ends, unbounded when it
//! never does), and an in-memory `Vec` split into contiguous chunks, one per shard.

use std::sync::Mutex;

use corestrom_runtime::{
    NO_TIMESTAMP, OperatorError, Record, Source, SourcePoll, SourceReader, SplitContext,
};

/// One iterator per split, made by `make(split)`.
pub struct IterSource<F> {
    make: F,
}

impl<F> IterSource<F> {
    /// A source whose split `s` yields the items of `make(s)`.
    pub fn new(make: F) -> Self {
        IterSource { make }
    }
}

struct IterReader<It> {
    items: It,
}

impl<T, I, F> Source<T> for IterSource<F>
where
    T: Send + 'static,
    I: IntoIterator<Item = T>,
    I::IntoIter: 'static,
    F: Fn(SplitContext) -> I + Send + Sync + 'static,
{
    fn create_reader(
        &self,
        split: SplitContext,
    ) -> Result<Box<dyn SourceReader<T>>, OperatorError> {
        Ok(Box::new(IterReader {
            items: (self.make)(split).into_iter(),
        }))
    }
}

impl<T, It: Iterator<Item = T> + 'static> SourceReader<T> for IterReader<It> {
    fn poll(
        &mut self,
        out: &mut Vec<Record<T>>,
        max: usize,
        _now_ns: u64,
    ) -> Result<SourcePoll, OperatorError> {
        let before = out.len();
        out.extend(self.items.by_ref().take(max).map(|value| Record {
            ts: NO_TIMESTAMP,
            value,
        }));
        Ok(if out.len() - before < max {
            SourcePoll::Finished
        } else {
            SourcePoll::Ready
        })
    }
}

/// An in-memory vector, split into one contiguous chunk per shard (shard 0 gets the first).
pub struct VecSource<T> {
    chunks: Mutex<Vec<Option<Vec<T>>>>,
    shards: usize,
}

impl<T> VecSource<T> {
    /// Splits `items` over `shards` shards.
    pub fn new(mut items: Vec<T>, shards: usize) -> Self {
        assert!(shards >= 1);
        let total = items.len();
        let mut chunks: Vec<Option<Vec<T>>> = Vec::with_capacity(shards);
        for s in (0..shards).rev() {
            let start = total * s / shards;
            chunks.push(Some(items.split_off(start)));
        }
        chunks.reverse();
        VecSource {
            chunks: Mutex::new(chunks),
            shards,
        }
    }
}

impl<T: Send + 'static> Source<T> for VecSource<T> {
    fn create_reader(
        &self,
        split: SplitContext,
    ) -> Result<Box<dyn SourceReader<T>>, OperatorError> {
        if split.shards != self.shards {
            return Err(OperatorError::Failed(format!(
                "vector source was split for {} shards, the job has {}",
                self.shards, split.shards
            )));
        }
        let chunk = self
            .chunks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(split.shard)
            .and_then(Option::take)
            .ok_or_else(|| {
                OperatorError::Failed(format!(
                    "vector source chunk {} was already taken",
                    split.shard
                ))
            })?;
        Ok(Box::new(IterReader {
            items: chunk.into_iter(),
        }))
    }
}
