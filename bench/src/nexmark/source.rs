//! The Nexmark generator as a corestrom source: split `s` of the job's `n` shards runs
//! generator split `s` of `n` (SPEC.md §2.2: same timeline, disjoint ids), unthrottled or paced
//! to a total rate.
//!
//! Records carry the event's `dateTime` as their timestamp. Pacing: with a total rate `R`, split
//! event `k` is due `k · n / R` seconds after the split's first poll; a poll emits what is due
//! (at most one batch) and otherwise says when the next event is due, so the shard can park.
//!
//! An optional shared progress counter gets each batch's event count (once per poll, never per
//! record), for a progress display.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use corestrom_operators::prelude::*;

use crate::nexmark::config::GeneratorConfig;
use crate::nexmark::generator::NexmarkGenerator;
use crate::nexmark::model::Event;

/// The built-in Nexmark event source.
#[derive(Clone, Debug)]
pub struct NexmarkSource {
    config: GeneratorConfig,
    rate_per_sec: Option<u64>,
    progress: Option<Arc<AtomicU64>>,
}

impl NexmarkSource {
    /// Generates `config`'s events as fast as the pipeline takes them.
    pub fn new(config: GeneratorConfig) -> Self {
        NexmarkSource {
            config,
            rate_per_sec: None,
            progress: None,
        }
    }

    /// Adds every batch's event count to `counter`.
    pub fn with_progress(self, counter: Arc<AtomicU64>) -> Self {
        NexmarkSource {
            progress: Some(counter),
            ..self
        }
    }

    /// Emits at most `events_per_sec` events per second in total (0 = unthrottled).
    pub fn with_rate(self, events_per_sec: u64) -> Self {
        NexmarkSource {
            rate_per_sec: (events_per_sec > 0).then_some(events_per_sec),
            ..self
        }
    }
}

struct NexmarkReader {
    generator: NexmarkGenerator,
    /// Nanoseconds between two events of this split, when paced.
    interval_ns: Option<f64>,
    start_ns: Option<u64>,
    progress: Option<Arc<AtomicU64>>,
}

impl Source<Event> for NexmarkSource {
    fn create_reader(
        &self,
        split: SplitContext,
    ) -> Result<Box<dyn SourceReader<Event>>, OperatorError> {
        let generator =
            NexmarkGenerator::new(&self.config, split.shard as u32, split.shards as u32).map_err(
                |e| OperatorError::Failed(format!("nexmark generator split {}: {e}", split.shard)),
            )?;
        let interval_ns = self
            .rate_per_sec
            .map(|r| 1e9 * split.shards as f64 / r as f64);
        Ok(Box::new(NexmarkReader {
            generator,
            interval_ns,
            start_ns: None,
            progress: self.progress.clone(),
        }))
    }
}

impl NexmarkReader {
    fn emit(&mut self, out: &mut Vec<Record<Event>>, n: usize) {
        for _ in 0..n {
            match self.generator.next_event() {
                Some(event) => out.push(Record::new(event.date_time(), event)),
                None => return,
            }
        }
    }
}

impl SourceReader<Event> for NexmarkReader {
    /// The split's event position: the generator is a pure function of it, so replay is exact.
    fn position(&self) -> Option<Vec<u8>> {
        Some(self.generator.position().to_le_bytes().to_vec())
    }

    fn restore(&mut self, position: &[u8]) -> Result<(), OperatorError> {
        let bytes: [u8; 8] = position.try_into().map_err(|_| {
            OperatorError::Failed(format!(
                "a generator position is 8 bytes, got {}",
                position.len()
            ))
        })?;
        let position = u64::from_le_bytes(bytes);
        if position > self.generator.limit() {
            return Err(OperatorError::Failed(format!(
                "generator position {position} lies beyond split {}'s {} events",
                self.generator.split_index(),
                self.generator.limit()
            )));
        }
        self.generator.seek(position);
        Ok(())
    }

    fn poll(
        &mut self,
        out: &mut Vec<Record<Event>>,
        max: usize,
        now_ns: u64,
    ) -> Result<SourcePoll, OperatorError> {
        let remaining = self.generator.remaining();
        let n = match self.interval_ns {
            None => max.min(remaining as usize),
            Some(interval) => {
                let start = *self.start_ns.get_or_insert(now_ns);
                let due = ((now_ns - start) as f64 / interval) as u64 + 1;
                let n = due.saturating_sub(self.generator.position()).min(remaining) as usize;
                if n == 0 && remaining > 0 {
                    let next = start + (self.generator.position() as f64 * interval) as u64;
                    return Ok(SourcePoll::Pending {
                        wake_at_ns: Some(next),
                    });
                }
                n.min(max)
            }
        };
        let before = out.len();
        self.emit(out, n);
        if let Some(progress) = &self.progress {
            progress.fetch_add((out.len() - before) as u64, Ordering::Relaxed);
        }
        Ok(if self.generator.is_finished() {
            SourcePoll::Finished
        } else {
            SourcePoll::Ready
        })
    }
}
