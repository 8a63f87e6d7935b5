//! Collects a bounded stream's records in memory and hands them to the caller after the job.
//!
//! Each shard keeps its own vector (no lock per record); at the end of its input it moves the
//! vector into the shared slot of its shard, once.

use std::sync::{Arc, Mutex};

use corestrom_runtime::{
    EventTime, OpResult, OperatorError, Record, Sink, SinkWriter, SplitContext,
};

type Slots<T> = Arc<Mutex<Vec<Option<Vec<Record<T>>>>>>;

/// The sink side of `Stream::collect`.
pub struct CollectSink<T> {
    slots: Slots<T>,
}

/// The caller's side of `Stream::collect`: the records, once the job has finished.
#[derive(Clone)]
pub struct Collected<T> {
    slots: Slots<T>,
}

impl<T> std::fmt::Debug for Collected<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collected").finish_non_exhaustive()
    }
}

/// A connected pair of collect sink and handle.
pub fn collect_pair<T>() -> (CollectSink<T>, Collected<T>) {
    let slots = Arc::new(Mutex::new(Vec::new()));
    (
        CollectSink {
            slots: Arc::clone(&slots),
        },
        Collected { slots },
    )
}

impl<T> Collected<T> {
    /// The records of every shard that finished, each shard's in arrival order, by shard.
    pub fn take_records_by_shard(&self) -> Vec<Vec<Record<T>>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .iter_mut()
            .map(|s| s.take().unwrap_or_default())
            .collect()
    }

    /// The values of every shard, each shard's in arrival order, by shard.
    pub fn take_by_shard(&self) -> Vec<Vec<T>> {
        self.take_records_by_shard()
            .into_iter()
            .map(|rs| rs.into_iter().map(|r| r.value).collect())
            .collect()
    }

    /// All values: shard 0's first, then shard 1's, and so on.
    pub fn take(&self) -> Vec<T> {
        self.take_by_shard().into_iter().flatten().collect()
    }

    /// All records with their timestamps, in the order of `take`.
    pub fn take_records(&self) -> Vec<Record<T>> {
        self.take_records_by_shard().into_iter().flatten().collect()
    }
}

struct CollectWriter<T> {
    shard: usize,
    records: Vec<Record<T>>,
    slots: Slots<T>,
    watermarks: Vec<EventTime>,
}

impl<T: Send + 'static> Sink<T> for CollectSink<T> {
    fn create_writer(&self, split: SplitContext) -> Result<Box<dyn SinkWriter<T>>, OperatorError> {
        {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            if slots.len() < split.shards {
                slots.resize_with(split.shards, || None);
            }
        }
        Ok(Box::new(CollectWriter {
            shard: split.shard,
            records: Vec::new(),
            slots: Arc::clone(&self.slots),
            watermarks: Vec::new(),
        }))
    }
}

impl<T: 'static> SinkWriter<T> for CollectWriter<T> {
    fn write(&mut self, records: &mut Vec<Record<T>>) -> OpResult {
        self.records.append(records);
        Ok(())
    }

    fn on_watermark(&mut self, watermark: EventTime) -> OpResult {
        self.watermarks.push(watermark);
        Ok(())
    }

    fn finish(&mut self) -> OpResult {
        let records = std::mem::take(&mut self.records);
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots[self.shard] = Some(records);
        Ok(())
    }
}
