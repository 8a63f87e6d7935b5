//! `Store`: the public face of one shard's state store.
//!
//! A `Store` is `!Send` and lives on one glommio executor; clones are handles to the same
//! store (for the compaction task). All mutable state sits in one `RefCell` that is never held
//! across an `.await`: every operation does its bookkeeping synchronously and only then awaits
//! I/O (a cold read, or write credits when the writer is behind).
//!
//! Durability contract: nothing is durable until a [`Sealing`] returned by [`Store::seal`]
//! completes `Ok`; then [`Store::open`] at its position returns exactly the state at the seal.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Deref;
use std::path::Path;
use std::rc::Rc;

use glommio::channels::local_channel::{LocalReceiver, LocalSender};
use glommio::sync::Semaphore;

use crate::bounds::{SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN};
use crate::cache::CacheStats;
use crate::disk::{Disk, GlommioDisk};
use crate::error::{Result, StorageError};
use crate::format::{BLOCK_BYTES, FrameKind, Position, frame_value_offset};
use crate::ids::{KeyGroup, OperatorId, Prefix, SegmentId, StateKey};
use crate::index::{Index, Loc, decode_inner};
use crate::index_build::{BuildJob, IndexBuildOutcome, IndexFiles};
use crate::log::Log;
use crate::recovery::{Recovered, RecoveryReport, cut, recover};
use crate::segment::read_value;

/// Tunables of one shard's store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoreConfig {
    /// Segment file size at which the log rotates (multiple of 4096, 2 MiB ..= 2 GiB).
    pub segment_bytes: u64,
    /// Bytes of values the shard keeps in memory (the index is extra).
    pub memory_budget_bytes: usize,
    /// Segments whose live bytes fall below this share of their length are compacted.
    pub compaction_live_ratio: f64,
    /// When a seal also writes an index file (recovery loads it instead of scanning the log).
    pub index_files: IndexFilePolicy,
}

/// When [`Store::seal`] starts writing an index file of the sealed position.
///
/// A build folds the index into a compact base (`index_file.rs`) on the shard, in the
/// background, and costs time proportional to the number of keys; the log bytes appended since
/// the last index file are what recovery has to replay instead. The policy trades the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexFilePolicy {
    /// Never: recovery always scans the whole log.
    Never,
    /// At every seal while no build is running (tests).
    EverySeal,
    /// When the bytes appended since the last index file reach both `min_bytes` and half the
    /// log: recovery then replays at most about a third of the log, and builds cost
    /// amortized O(1) per appended byte.
    Auto {
        /// Least new bytes worth a build.
        min_bytes: u64,
    },
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            memory_budget_bytes: 256 << 20,
            compaction_live_ratio: 0.5,
            index_files: IndexFilePolicy::Auto {
                min_bytes: 64 << 20,
            },
        }
    }
}

impl StoreConfig {
    fn validate(&self) -> Result<()> {
        let bad = |reason: &str| {
            Err(StorageError::Config {
                reason: reason.to_owned(),
            })
        };
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes) {
            return bad("segment_bytes must be within 2 MiB ..= 2 GiB");
        }
        if !self.segment_bytes.is_multiple_of(BLOCK_BYTES as u64) {
            return bad("segment_bytes must be a multiple of 4096");
        }
        if !(0.0..=1.0).contains(&self.compaction_live_ratio) {
            return bad("compaction_live_ratio must be within 0..=1");
        }
        Ok(())
    }
}

/// A value read from the store. Derefs to its bytes; holds them alive without a copy when
/// they come from a cached write buffer.
pub struct ValueRef<D: Disk> {
    repr: Repr<D>,
}

enum Repr<D: Disk> {
    Chunk {
        buf: Rc<D::Buf>,
        start: usize,
        len: usize,
    },
    Owned(Rc<[u8]>),
}

impl<D: Disk> Clone for ValueRef<D> {
    fn clone(&self) -> Self {
        let repr = match &self.repr {
            Repr::Chunk { buf, start, len } => Repr::Chunk {
                buf: Rc::clone(buf),
                start: *start,
                len: *len,
            },
            Repr::Owned(bytes) => Repr::Owned(Rc::clone(bytes)),
        };
        Self { repr }
    }
}

impl<D: Disk> Deref for ValueRef<D> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.repr {
            Repr::Chunk { buf, start, len } => (**buf)
                .as_ref()
                .get(*start..*start + *len)
                .unwrap_or_default(),
            Repr::Owned(bytes) => bytes,
        }
    }
}

impl<D: Disk> std::fmt::Debug for ValueRef<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueRef")
            .field("len", &self.len())
            .finish()
    }
}

/// One entry returned by [`Store::scan`].
#[derive(Debug)]
pub struct ScanEntry<D: Disk> {
    /// Owning operator.
    pub operator: OperatorId,
    /// Key group.
    pub key_group: KeyGroup,
    /// User key.
    pub key: Box<[u8]>,
    /// Namespace.
    pub namespace: Box<[u8]>,
    /// Current value.
    pub value: ValueRef<D>,
}

/// A seal in progress: the position is known now, durability later.
#[derive(Debug)]
pub struct Sealing {
    position: Position,
    done: LocalReceiver<Result<()>>,
}

impl Sealing {
    /// The position this seal names (not yet durable).
    pub fn position(&self) -> &Position {
        &self.position
    }

    /// Waits until every byte up to the position is fdatasync'ed.
    ///
    /// # Errors
    /// The I/O error that prevented durability; the store is fail-stopped after it.
    pub async fn durable(self) -> Result<Position> {
        match self.done.recv().await {
            Some(Ok(())) => Ok(self.position),
            Some(Err(e)) => Err(e),
            None => Err(StorageError::FailStopped {
                cause: "writer task ended before the seal".into(),
            }),
        }
    }
}

/// Counters for tests, benchmarks and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    /// Live keys.
    pub keys: usize,
    /// Live segments (including the active one).
    pub segments: usize,
    /// Bytes of live segments.
    pub log_bytes: u64,
    /// Bytes of frames the index points at.
    pub live_bytes: u64,
    /// Cache counters.
    pub cache: CacheStats,
}

/// Everything one store owns; shared by its handles, its compactor and its index-file build.
pub(crate) struct Inner<D: Disk> {
    pub disk: Rc<D>,
    pub log: Log<D>,
    pub index: Index,
    pub config: StoreConfig,
    retained: HashMap<SegmentId, u32>,
    /// Seal sequence numbers of the retained positions, with their counts (index-file pruning).
    retained_seqs: BTreeMap<u64, u32>,
    /// Retired segments whose files wait for their last retaining position to be released.
    zombies: BTreeSet<SegmentId>,
    /// Index files on disk and the build in progress.
    pub index_files: IndexFiles,
}

impl<D: Disk> Inner<D> {
    /// Points `key` at its new frame and moves live-byte accounting from the old one.
    pub fn apply_put(&mut self, key: &StateKey<'_>, loc: Loc) {
        if let Some(meta) = self.log.segments.get_mut(&loc.segment) {
            meta.live_bytes += u64::from(loc.len);
        }
        if let Some(old) = self.index.insert(key, loc) {
            self.unlive(old);
        }
    }

    pub fn unlive(&mut self, old: Loc) {
        if let Some(meta) = self.log.segments.get_mut(&old.segment) {
            meta.live_bytes -= u64::from(old.len);
        }
    }

    /// Retires a compacted segment; removes its file unless a retained position names it.
    pub fn retire(&mut self, segment: SegmentId) {
        self.log.retire_segment(segment);
        if self.retained.get(&segment).copied().unwrap_or(0) == 0 {
            self.log.remove_file(segment);
        } else {
            self.zombies.insert(segment);
        }
    }

    fn retain(&mut self, position: &Position) {
        for (segment, _) in &position.segments {
            *self.retained.entry(*segment).or_default() += 1;
        }
        *self.retained_seqs.entry(position.seq).or_default() += 1;
    }

    /// Removes the index files no retained position needs (`index_build.rs` says which).
    pub fn prune_index_files(&mut self) {
        for name in self.index_files.prunable(&self.retained_seqs) {
            self.log.remove_index_file(name);
        }
    }

    fn release(&mut self, position: &Position) {
        if let Some(count) = self.retained_seqs.get_mut(&position.seq) {
            *count -= 1;
            if *count == 0 {
                self.retained_seqs.remove(&position.seq);
            }
        }
        self.prune_index_files();
        for (segment, _) in &position.segments {
            let Some(count) = self.retained.get_mut(segment) else {
                continue;
            };
            *count -= 1;
            if *count == 0 {
                self.retained.remove(segment);
                if self.zombies.remove(segment) {
                    self.log.remove_file(*segment);
                }
            }
        }
    }

    /// Value bytes of `loc` if they are in memory, without touching the disk.
    fn cached(&mut self, loc: Loc) -> Option<ValueRef<D>> {
        if let Some(frame) = self.log.active_bytes(loc) {
            let value = frame.get(frame_value_offset(frame)..).unwrap_or_default();
            return Some(ValueRef {
                repr: Repr::Owned(Rc::from(value)),
            });
        }
        if let Some((buf, start)) = self.log.cache.chunk_for(loc) {
            let frame = (*buf)
                .as_ref()
                .get(start..start + loc.len as usize)
                .unwrap_or_default();
            let value_start = start + frame_value_offset(frame);
            let len = start + loc.len as usize - value_start;
            return Some(ValueRef {
                repr: Repr::Chunk {
                    buf,
                    start: value_start,
                    len,
                },
            });
        }
        self.log.cache.cold_value(loc).map(|v| ValueRef {
            repr: Repr::Owned(v),
        })
    }
}

/// One shard's log-structured state store.
pub struct Store<D: Disk = GlommioDisk> {
    pub(crate) inner: Rc<RefCell<Inner<D>>>,
    credits: Rc<Semaphore>,
    /// The index-file builder task's queue; the task ends when the last handle is dropped.
    builder: Rc<LocalSender<BuildJob>>,
}

/// A store verified up to a position, not yet opened: nothing on disk has changed. Dropping it
/// leaves the files as they were; [`VerifiedStore::open`] cuts what follows the position and
/// starts the store.
pub struct VerifiedStore<D: Disk = GlommioDisk> {
    disk: Rc<D>,
    config: StoreConfig,
    recovered: Recovered<D>,
}

impl<D: Disk> VerifiedStore<D> {
    /// What verification found (the tail and the segments `open` will remove).
    pub fn report(&self) -> &RecoveryReport {
        &self.recovered.report
    }

    /// Every live entry under `prefix` at the verified position, read from disk with each
    /// frame's crc checked, before anything is cut. Opening from an index file does not read
    /// the frames it covers (recovery policy 3), so a caller that must know the state it will
    /// restore is intact before it commits to a position reads it here.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] naming the file and offset of a frame that fails its crc, or
    /// [`StorageError::SegmentMissing`]; I/O errors.
    pub async fn scan(&self, prefix: Prefix) -> Result<Vec<ScanEntry<D>>> {
        let mut found = Vec::new();
        self.recovered.index.scan(prefix, |op, kg, inner, loc| {
            let (key, namespace) = decode_inner(inner);
            found.push((
                op,
                kg,
                Box::<[u8]>::from(key),
                Box::<[u8]>::from(namespace),
                loc,
            ));
        });
        let mut out = Vec::with_capacity(found.len());
        for (operator, key_group, key, namespace, loc) in found {
            let name = self.disk.describe(&loc.segment.file_name());
            let file = self
                .recovered
                .files
                .get(&loc.segment)
                .ok_or_else(|| StorageError::SegmentMissing { file: name.clone() })?;
            let state_key = StateKey {
                operator,
                key_group,
                key: &key,
                namespace: &namespace,
            };
            let value = read_value(&**file, &name, loc, &state_key).await?;
            out.push(ScanEntry {
                operator,
                key_group,
                key,
                namespace,
                value: ValueRef {
                    repr: Repr::Owned(value),
                },
            });
        }
        Ok(out)
    }

    /// Makes the verified position the end of the store on disk and starts it there.
    ///
    /// # Errors
    /// I/O errors while truncating the tail or removing segments.
    pub async fn open(self) -> Result<(Store<D>, RecoveryReport)> {
        let Self {
            disk,
            config,
            recovered,
        } = self;
        cut(&*disk, &recovered).await?;
        let seal_seq = recovered.report.position.seq;
        let log = Log::start(
            Rc::clone(&disk),
            config.segment_bytes,
            config.memory_budget_bytes,
            recovered.segments,
            recovered.files,
            recovered.next_segment,
            seal_seq,
        );
        let credits = log.credits();
        let kept = recovered.index_file.map(|(seq, _)| {
            let base = recovered.index.base();
            let segments = base.map(|b| b.segments.iter().map(|s| (s.segment, s.len)).collect());
            (seq, segments.unwrap_or_default())
        });
        let index_files = IndexFiles::new(kept, recovered.report.bytes);
        let mut inner = Inner {
            disk,
            log,
            index: recovered.index,
            config,
            retained: HashMap::new(),
            retained_seqs: BTreeMap::new(),
            zombies: BTreeSet::new(),
            index_files,
        };
        inner.retain(&recovered.report.position);
        let inner = Rc::new(RefCell::new(inner));
        let builder = Rc::new(crate::index_build::spawn_builder(Rc::downgrade(&inner)));
        Ok((
            Store {
                inner,
                credits,
                builder,
            },
            recovered.report,
        ))
    }
}

impl<D: Disk> Clone for Store<D> {
    fn clone(&self) -> Self {
        Self {
            inner: Rc::clone(&self.inner),
            credits: Rc::clone(&self.credits),
            builder: Rc::clone(&self.builder),
        }
    }
}

impl Store<GlommioDisk> {
    /// Creates an empty store in `dir`, removing any segments already there.
    ///
    /// # Errors
    /// Configuration or I/O errors.
    pub async fn create(dir: impl AsRef<Path>, config: StoreConfig) -> Result<Self> {
        let disk = GlommioDisk::open(dir.as_ref()).await;
        let disk = disk.map_err(|e| {
            StorageError::io("open directory", &dir.as_ref().display().to_string(), 0, e)
        })?;
        Ok(Self::open_on(disk, config, None).await?.0)
    }

    /// Opens the store in `dir` at a position returned by an earlier [`Store::seal`].
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] or [`StorageError::SegmentMissing`] naming the file and offset
    /// when the bytes up to the position do not verify; I/O errors.
    pub async fn open(
        dir: impl AsRef<Path>,
        config: StoreConfig,
        position: &Position,
    ) -> Result<(Self, RecoveryReport)> {
        Self::verify(dir, config, position).await?.open().await
    }

    /// Verifies the store in `dir` up to `position` without changing a file (see
    /// [`Store::verify_on`]).
    ///
    /// # Errors
    /// As [`Store::open`].
    pub async fn verify(
        dir: impl AsRef<Path>,
        config: StoreConfig,
        position: &Position,
    ) -> Result<VerifiedStore<GlommioDisk>> {
        let disk = GlommioDisk::open(dir.as_ref()).await;
        let disk = disk.map_err(|e| {
            StorageError::io("open directory", &dir.as_ref().display().to_string(), 0, e)
        })?;
        Self::verify_on(disk, config, Some(position)).await
    }
}

impl<D: Disk> Store<D> {
    /// Opens a store on any [`Disk`]: empty (`None`) or at a sealed position.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub async fn open_on(
        disk: D,
        config: StoreConfig,
        position: Option<&Position>,
    ) -> Result<(Self, RecoveryReport)> {
        Self::verify_on(disk, config, position).await?.open().await
    }

    /// Verifies the store on `disk` up to `position` and rebuilds its index without changing
    /// any file: what follows the position is still on disk until [`VerifiedStore::open`]. A
    /// caller that must choose among several positions (a job whose shards all have to agree
    /// on one checkpoint) verifies first and opens only the chosen one.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub async fn verify_on(
        disk: D,
        config: StoreConfig,
        position: Option<&Position>,
    ) -> Result<VerifiedStore<D>> {
        config.validate()?;
        let disk = Rc::new(disk);
        let recovered = recover(&*disk, position).await?;
        Ok(VerifiedStore {
            disk,
            config,
            recovered,
        })
    }

    pub(crate) fn from_parts(
        inner: Rc<RefCell<Inner<D>>>,
        credits: Rc<Semaphore>,
        builder: Rc<LocalSender<BuildJob>>,
    ) -> Self {
        Self {
            inner,
            credits,
            builder,
        }
    }

    pub(crate) fn builder_handle(&self) -> Rc<LocalSender<BuildJob>> {
        Rc::clone(&self.builder)
    }

    pub(crate) fn credits_handle(&self) -> Rc<Semaphore> {
        Rc::clone(&self.credits)
    }

    /// Waits for the writer to finish one of the writes this task queued.
    pub(crate) async fn wait_one_credit(&self) -> Result<()> {
        let acquired = self.credits.acquire(1).await;
        acquired.map_err(|e| StorageError::FailStopped {
            cause: e.to_string(),
        })
    }

    async fn wait_credits(&self, queued: u32) -> Result<()> {
        for _ in 0..queued {
            self.wait_one_credit().await?;
        }
        Ok(())
    }

    /// Sets `key` to `value`.
    ///
    /// # Errors
    /// [`StorageError::EntryTooLarge`], or [`StorageError::FailStopped`] after an I/O error.
    pub async fn put(&self, key: StateKey<'_>, value: &[u8]) -> Result<()> {
        let queued = {
            let mut inner = self.inner.borrow_mut();
            let (loc, queued) = inner.log.append(FrameKind::Put, &key, value)?;
            inner.apply_put(&key, loc);
            queued
        };
        self.wait_credits(queued).await
    }

    /// Deletes `key`; returns whether it was live.
    ///
    /// # Errors
    /// As [`Store::put`].
    pub async fn delete(&self, key: StateKey<'_>) -> Result<bool> {
        let queued = {
            let mut inner = self.inner.borrow_mut();
            if inner.index.get(&key).is_none() {
                return Ok(false);
            }
            let (_, queued) = inner.log.append(FrameKind::Delete, &key, &[])?;
            if let Some(old) = inner.index.remove(&key) {
                inner.unlive(old);
            }
            queued
        };
        self.wait_credits(queued).await?;
        Ok(true)
    }

    /// The value of `key`, from memory or read back (and verified) from disk.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] if the bytes on disk fail their crc; I/O errors.
    pub async fn get(&self, key: StateKey<'_>) -> Result<Option<ValueRef<D>>> {
        let (loc, file, name) = {
            let mut inner = self.inner.borrow_mut();
            let Some(loc) = inner.index.get(&key) else {
                return Ok(None);
            };
            if let Some(value) = inner.cached(loc) {
                return Ok(Some(value));
            }
            let name = inner.disk.describe(&loc.segment.file_name());
            let file = inner.log.file(loc.segment);
            let file = file.ok_or_else(|| StorageError::SegmentMissing { file: name.clone() })?;
            (loc, file, name)
        };
        let value = read_value(&*file, &name, loc, &key).await?;
        let mut inner = self.inner.borrow_mut();
        inner.log.cache.stats.misses += 1;
        inner.log.cache.insert_cold(loc, Rc::clone(&value));
        Ok(Some(ValueRef {
            repr: Repr::Owned(value),
        }))
    }

    /// Every live entry under `prefix`, in unspecified order.
    ///
    /// # Errors
    /// As [`Store::get`].
    pub async fn scan(&self, prefix: Prefix) -> Result<Vec<ScanEntry<D>>> {
        let mut found = Vec::new();
        self.inner.borrow().index.scan(prefix, |op, kg, inner, _| {
            let (key, namespace) = decode_inner(inner);
            found.push((op, kg, Box::<[u8]>::from(key), Box::<[u8]>::from(namespace)));
        });
        let mut out = Vec::with_capacity(found.len());
        for (operator, key_group, key, namespace) in found {
            let state_key = StateKey {
                operator,
                key_group,
                key: &key,
                namespace: &namespace,
            };
            // A concurrent delete between the index walk and this read drops the entry.
            if let Some(value) = self.get(state_key).await? {
                out.push(ScanEntry {
                    operator,
                    key_group,
                    key,
                    namespace,
                    value,
                });
            }
        }
        Ok(out)
    }

    /// Makes everything written so far durable. Returns at once with the position; await
    /// [`Sealing::durable`] for the fdatasync. The position is retained until
    /// [`Store::release`].
    ///
    /// # Errors
    /// [`StorageError::FailStopped`] after an earlier I/O error.
    pub fn seal(&self) -> Result<Sealing> {
        let mut inner = self.inner.borrow_mut();
        let (position, done) = inner.log.seal()?;
        inner.retain(&position);
        let job = BuildJob::due(&mut inner, &position);
        drop(inner);
        if let Some(job) = job {
            job.send(&self.builder);
        }
        Ok(Sealing { position, done })
    }

    /// Keeps every segment named by `position` on disk until a matching [`Store::release`].
    pub fn retain(&self, position: &Position) {
        self.inner.borrow_mut().retain(position);
    }

    /// Releases one retain of `position` (every seal retains its position once).
    pub fn release(&self, position: &Position) {
        self.inner.borrow_mut().release(position);
    }

    /// Waits until no index-file build runs; returns the outcome of the last finished one.
    pub async fn wait_index_file(&self) -> Option<IndexBuildOutcome> {
        crate::index_build::wait_idle(&self.inner).await
    }

    /// Seal sequence numbers of the index files the store keeps on disk.
    pub fn index_files(&self) -> Vec<u64> {
        self.inner.borrow().index_files.on_disk()
    }

    /// The first I/O error if the store is fail-stopped.
    pub fn fail_stopped(&self) -> Option<StorageError> {
        self.inner.borrow().log.fail_stopped()
    }

    /// Counters.
    pub fn stats(&self) -> StoreStats {
        let mut inner = self.inner.borrow_mut();
        inner.log.evict();
        let segments = &inner.log.segments;
        StoreStats {
            keys: inner.index.len(),
            segments: segments.len(),
            log_bytes: segments.values().map(|m| m.len).sum(),
            live_bytes: segments.values().map(|m| m.live_bytes).sum(),
            cache: inner.log.cache.stats,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::disk_sim::SimDisk;
    use crate::index_build::IndexBuildOutcome;

    fn key(k: &[u8]) -> StateKey<'_> {
        StateKey {
            operator: OperatorId(1),
            key_group: KeyGroup(2),
            key: k,
            namespace: b"",
        }
    }

    fn small() -> StoreConfig {
        StoreConfig {
            segment_bytes: 2 << 20,
            memory_budget_bytes: 1 << 20,
            compaction_live_ratio: 0.5,
            index_files: IndexFilePolicy::EverySeal,
        }
    }

    fn run<F: std::future::Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
        glommio::LocalExecutorBuilder::default()
            .spawn(f)
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn put_seal_crash_reopen_on_sim_disk() {
        run(|| async {
            let disk = SimDisk::new(7);
            let (store, _) = Store::open_on(disk.clone(), small(), None).await.unwrap();
            for i in 0..20_000u32 {
                store
                    .put(key(&i.to_le_bytes()), &[i as u8; 100])
                    .await
                    .unwrap();
            }
            assert!(store.delete(key(&5u32.to_le_bytes())).await.unwrap());
            let pos = store.seal().unwrap().durable().await.unwrap();
            store.put(key(b"after"), b"lost").await.unwrap();
            store.seal().unwrap();
            drop(store);
            disk.crash(512);
            let (store, report) = Store::open_on(disk.clone(), small(), Some(&pos))
                .await
                .unwrap();
            assert_eq!(report.keys, 19_999);
            assert!(store.get(key(b"after")).await.unwrap().is_none());
            assert!(store.get(key(&5u32.to_le_bytes())).await.unwrap().is_none());
            for i in (0..20_000u32).step_by(7).filter(|i| *i != 5) {
                let v = store.get(key(&i.to_le_bytes())).await.unwrap().unwrap();
                assert_eq!(&*v, &[i as u8; 100][..]);
            }
            assert!(
                store.stats().cache.misses > 0,
                "state exceeds the budget: cold reads"
            );
        });
    }

    #[test]
    fn compaction_retires_segments_and_keeps_data() {
        run(|| async {
            let disk = SimDisk::new(8);
            let (store, _) = Store::open_on(disk.clone(), small(), None).await.unwrap();
            for round in 0..6u32 {
                for i in 0..5_000u32 {
                    store
                        .put(key(&i.to_le_bytes()), &[(i + round) as u8; 100])
                        .await
                        .unwrap();
                }
            }
            let before = store.stats();
            let first = store.seal().unwrap().durable().await.unwrap();
            let report = store.compact().await.unwrap();
            assert!(!report.segments.is_empty());
            let after = store.stats();
            assert!(
                after.log_bytes < before.log_bytes,
                "{before:?} -> {after:?}"
            );
            for i in 0..5_000u32 {
                let v = store.get(key(&i.to_le_bytes())).await.unwrap().unwrap();
                assert_eq!(v[0], (i + 5) as u8);
            }
            // The first position still names the retired segments: they stay until released.
            let retired = report.segments[0];
            assert!(disk.durable_len(&retired.file_name()).is_some());
            let second = store.seal().unwrap().durable().await.unwrap();
            store.release(&first);
            store.seal().unwrap().durable().await.unwrap();
            assert!(disk.durable_len(&retired.file_name()).is_none());
            drop(store);
            disk.crash(4096);
            let (store, _) = Store::open_on(disk, small(), Some(&second)).await.unwrap();
            for i in 0..5_000u32 {
                let v = store.get(key(&i.to_le_bytes())).await.unwrap().unwrap();
                assert_eq!(v[0], (i + 5) as u8);
            }
        });
    }

    #[test]
    fn recovery_starts_from_the_index_file_and_falls_back_when_it_is_damaged() {
        run(|| async {
            let disk = SimDisk::new(9);
            let (store, _) = Store::open_on(disk.clone(), small(), None).await.unwrap();
            for i in 0..30_000u32 {
                store
                    .put(key(&(i % 10_000).to_le_bytes()), &[i as u8; 60])
                    .await
                    .unwrap();
            }
            let first = store.seal().unwrap().durable().await.unwrap();
            let outcome = store.wait_index_file().await;
            assert!(
                matches!(
                    outcome,
                    Some(IndexBuildOutcome::Written { keys: 10_000, .. })
                ),
                "{outcome:?}"
            );
            for i in 0..500u32 {
                store
                    .put(key(&i.to_le_bytes()), b"after the index")
                    .await
                    .unwrap();
            }
            assert!(store.delete(key(&600u32.to_le_bytes())).await.unwrap());
            let second = store.seal().unwrap().durable().await.unwrap();
            store.release(&first);
            drop(store);
            disk.crash(4096);
            let name = crate::index_file::index_file_name(first.seq);
            let check = |store: Store<SimDisk>| async move {
                assert_eq!(store.stats().keys, 9_999);
                assert!(
                    store
                        .get(key(&600u32.to_le_bytes()))
                        .await
                        .unwrap()
                        .is_none()
                );
                let v = store.get(key(&7u32.to_le_bytes())).await.unwrap().unwrap();
                assert_eq!(&*v, b"after the index");
                let v = store
                    .get(key(&9_999u32.to_le_bytes()))
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(&*v, &[29_999u32 as u8; 60][..]);
                store.scrub().await.unwrap();
            };
            let (store, report) = Store::open_on(disk.clone(), small(), Some(&second))
                .await
                .unwrap();
            let used = report.index_file.clone().expect("index file used");
            assert_eq!(used.seq, first.seq);
            assert!(report.index_fallbacks.is_empty());
            assert!(
                report.frames < 1_000,
                "only the tail is replayed: {report:?}"
            );
            check(store).await;
            disk.crash(4096);
            assert!(disk.flip_bit(&name, 100, 3));
            let (store, report) = Store::open_on(disk.clone(), small(), Some(&second))
                .await
                .unwrap();
            assert!(report.index_file.is_none());
            assert_eq!(report.index_fallbacks.len(), 1, "{report:?}");
            assert!(
                report.index_fallbacks[0].reason.contains("crc"),
                "{report:?}"
            );
            assert!(report.frames >= 30_000, "full scan");
            check(store).await;
        });
    }
}
