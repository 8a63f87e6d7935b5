//! `SimDisk`: an in-memory [`Disk`] for tests that injects faults and simulates crashes.
//!
//! Each file keeps two images: `live` (what reads see) and `durable` (what survives a crash),
//! plus the writes issued since the last `fdatasync` in issue order. Faults:
//! - fail the Nth write or the Nth fsync with `EIO` (a failed fsync drops that file's unsynced
//!   writes, as Linux may);
//! - lose the Nth write: it is reported done and visible to reads, but never becomes durable;
//! - lie on the Nth fsync: it reports success but leaves the file's writes unsynced;
//! - at [`SimDisk::crash`], each unsynced write is applied, dropped, or torn at a 512 B or
//!   4 KiB boundary, chosen by a seeded generator, and live images reset to durable ones;
//! - [`SimDisk::flip_bit`] flips one bit of a file in both images.
//!
//! [`SimDisk::aim`] restricts the Nth-operation faults to files whose name starts with a prefix
//! (e.g. `idx-` for index files), and [`SimDisk::fault_log`] lists which file every injected
//! fault hit, so tests can count faults per kind of file.
//!
//! Simplifications: file creation, removal and truncation are durable immediately (the store
//! fsyncs the directory anyway). Handles opened before a crash fail every call afterwards, so a
//! dropped store's writer task cannot touch the "rebooted" disk.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::rc::Rc;

use crate::disk::{Disk, DiskBuf, DiskFile};

/// A write buffer of the simulated disk.
#[derive(Debug)]
pub struct SimBuf(Vec<u8>);

impl AsRef<[u8]> for SimBuf {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl AsMut<[u8]> for SimBuf {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl DiskBuf for SimBuf {
    fn trim(&mut self, len: usize) {
        assert!(len <= self.0.len());
        self.0.truncate(len);
    }
}

#[derive(Debug, Default)]
struct SimFileData {
    live: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<(u64, Vec<u8>)>,
}

/// What a simulated crash did to unsynced writes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CrashReport {
    /// Unsynced writes that reached the durable image whole.
    pub applied: u64,
    /// Unsynced writes that were dropped.
    pub dropped: u64,
    /// Unsynced writes of which only a prefix of sectors survived.
    pub torn: u64,
}

/// Counters of operations and injected faults.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SimStats {
    /// Writes issued.
    pub writes: u64,
    /// fsyncs issued.
    pub syncs: u64,
    /// Writes failed on purpose.
    pub writes_failed: u64,
    /// fsyncs failed on purpose.
    pub syncs_failed: u64,
    /// Writes lost on purpose.
    pub writes_lost: u64,
}

/// One injected fault: what it was and which file it hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRecord {
    /// `"fail-write"`, `"fail-sync"`, `"lose-write"`, `"lying-sync"`, `"torn-at-crash"` or
    /// `"dropped-at-crash"`.
    pub kind: &'static str,
    /// The file's name.
    pub file: String,
}

#[derive(Debug, Default)]
struct SimState {
    files: BTreeMap<String, SimFileData>,
    epoch: u64,
    stats: SimStats,
    fail_write_at: Option<u64>,
    fail_sync_at: Option<u64>,
    lose_write_at: Option<u64>,
    lie_sync_at: Option<u64>,
    /// Only files with this name prefix count towards the Nth-operation faults.
    aim: Option<String>,
    aimed_writes: u64,
    aimed_syncs: u64,
    faults: Vec<FaultRecord>,
    rng: u64,
}

impl SimState {
    fn next_random(&mut self) -> u64 {
        // xorshift64*: deterministic per seed, good enough to pick fault outcomes.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn eio(what: &str) -> io::Error {
    io::Error::other(format!("simulated EIO: {what}"))
}

fn apply(image: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = usize::try_from(offset).expect("simulated files fit in memory");
    let end = start + data.len();
    if image.len() < end {
        image.resize(end, 0);
    }
    if let Some(slot) = image.get_mut(start..end) {
        slot.copy_from_slice(data);
    }
}

/// An in-memory shard directory with fault injection. Clones share the same disk.
#[derive(Debug, Clone)]
pub struct SimDisk {
    state: Rc<RefCell<SimState>>,
}

impl SimDisk {
    /// An empty disk; `seed` drives crash outcomes.
    pub fn new(seed: u64) -> Self {
        let state = SimState {
            rng: seed | 1,
            ..SimState::default()
        };
        Self {
            state: Rc::new(RefCell::new(state)),
        }
    }

    /// Counts only operations on files whose name starts with `prefix` towards the
    /// Nth-operation faults armed after this call (`None`: every file).
    pub fn aim(&self, prefix: Option<&str>) {
        self.state.borrow_mut().aim = prefix.map(str::to_owned);
    }

    /// The `n`th write from now (1 = the next) fails with EIO.
    pub fn fail_nth_write(&self, n: u64) {
        let mut s = self.state.borrow_mut();
        s.fail_write_at = Some(s.aimed_writes + n);
    }

    /// The `n`th fsync from now fails with EIO.
    pub fn fail_nth_sync(&self, n: u64) {
        let mut s = self.state.borrow_mut();
        s.fail_sync_at = Some(s.aimed_syncs + n);
    }

    /// The `n`th write from now is reported done but never becomes durable.
    pub fn lose_nth_write(&self, n: u64) {
        let mut s = self.state.borrow_mut();
        s.lose_write_at = Some(s.aimed_writes + n);
    }

    /// The `n`th fsync from now reports success but makes nothing durable: the file's unsynced
    /// writes stay unsynced, so the next crash tears or drops them (a disk that lies).
    pub fn lie_on_nth_sync(&self, n: u64) {
        let mut s = self.state.borrow_mut();
        s.lie_sync_at = Some(s.aimed_syncs + n);
    }

    /// Every fault injected so far, in order.
    pub fn fault_log(&self) -> Vec<FaultRecord> {
        self.state.borrow().faults.clone()
    }

    /// Disarms all pending faults.
    pub fn clear_faults(&self) {
        let mut s = self.state.borrow_mut();
        s.fail_write_at = None;
        s.fail_sync_at = None;
        s.lose_write_at = None;
        s.lie_sync_at = None;
    }

    /// Operation and fault counters.
    pub fn stats(&self) -> SimStats {
        self.state.borrow().stats
    }

    /// Simulates power loss: every unsynced write is applied, dropped or torn at a multiple of
    /// `tear_sector_bytes` (512 or 4096); handles opened before the crash stop working.
    pub fn crash(&self, tear_sector_bytes: usize) -> CrashReport {
        assert!(tear_sector_bytes == 512 || tear_sector_bytes == 4096);
        let mut s = self.state.borrow_mut();
        s.epoch += 1;
        let mut report = CrashReport::default();
        let mut files = std::mem::take(&mut s.files);
        for (name, data) in &mut files {
            for (offset, bytes) in std::mem::take(&mut data.pending) {
                match s.next_random() % 3 {
                    0 => {
                        apply(&mut data.durable, offset, &bytes);
                        report.applied += 1;
                    }
                    1 => {
                        report.dropped += 1;
                        s.faults.push(FaultRecord {
                            kind: "dropped-at-crash",
                            file: name.clone(),
                        });
                    }
                    _ => {
                        s.faults.push(FaultRecord {
                            kind: "torn-at-crash",
                            file: name.clone(),
                        });
                        let sectors = bytes.len().div_ceil(tear_sector_bytes) as u64;
                        let keep = (s.next_random() % sectors.max(1)) as usize * tear_sector_bytes;
                        apply(
                            &mut data.durable,
                            offset,
                            bytes.get(..keep).unwrap_or_default(),
                        );
                        report.torn += 1;
                    }
                }
            }
            data.live = data.durable.clone();
        }
        s.files = files;
        report
    }

    /// Flips bit `bit` of byte `offset` of `name` in both images; false if out of range.
    pub fn flip_bit(&self, name: &str, offset: u64, bit: u8) -> bool {
        let mut s = self.state.borrow_mut();
        let Some(data) = s.files.get_mut(name) else {
            return false;
        };
        let at = usize::try_from(offset).unwrap_or(usize::MAX);
        let mut flipped = false;
        for image in [&mut data.durable, &mut data.live] {
            if let Some(byte) = image.get_mut(at) {
                *byte ^= 1 << (bit % 8);
                flipped = true;
            }
        }
        flipped
    }

    /// Length of the durable image of `name`.
    pub fn durable_len(&self, name: &str) -> Option<u64> {
        self.state
            .borrow()
            .files
            .get(name)
            .map(|f| f.durable.len() as u64)
    }

    fn handle(&self, name: &str) -> SimFile {
        let epoch = self.state.borrow().epoch;
        SimFile {
            state: Rc::clone(&self.state),
            name: name.to_owned(),
            epoch,
        }
    }
}

/// A handle on one simulated file.
#[derive(Debug)]
pub struct SimFile {
    state: Rc<RefCell<SimState>>,
    name: String,
    epoch: u64,
}

impl SimFile {
    fn with<T>(&self, f: impl FnOnce(&mut SimState) -> io::Result<T>) -> io::Result<T> {
        let mut s = self.state.borrow_mut();
        if s.epoch != self.epoch {
            return Err(io::Error::other(
                "simulated file handle from before a crash",
            ));
        }
        f(&mut s)
    }
}

impl DiskFile for SimFile {
    type ReadBuf = Vec<u8>;
    type Buf = SimBuf;

    async fn write_at(&self, buf: Rc<SimBuf>, offset: u64) -> io::Result<usize> {
        self.with(|s| {
            s.stats.writes += 1;
            let aimed = s
                .aim
                .as_ref()
                .is_none_or(|p| self.name.starts_with(p.as_str()));
            s.aimed_writes += u64::from(aimed);
            let n = s.aimed_writes;
            if aimed && s.fail_write_at == Some(n) {
                s.stats.writes_failed += 1;
                s.faults.push(FaultRecord {
                    kind: "fail-write",
                    file: self.name.clone(),
                });
                return Err(eio("write"));
            }
            let lost = aimed && s.lose_write_at == Some(n);
            s.stats.writes_lost += u64::from(lost);
            if lost {
                s.faults.push(FaultRecord {
                    kind: "lose-write",
                    file: self.name.clone(),
                });
            }
            let data = s
                .files
                .get_mut(&self.name)
                .ok_or_else(|| eio("write to removed file"))?;
            apply(&mut data.live, offset, &buf.0);
            if !lost {
                data.pending.push((offset, buf.0.clone()));
            }
            Ok(buf.0.len())
        })
    }

    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.with(|s| {
            let data = s
                .files
                .get(&self.name)
                .ok_or_else(|| eio("read of removed file"))?;
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(data.live.len());
            let end = start.saturating_add(len).min(data.live.len());
            Ok(data.live.get(start..end).unwrap_or_default().to_vec())
        })
    }

    async fn sync_data(&self) -> io::Result<()> {
        self.with(|s| {
            s.stats.syncs += 1;
            let aimed = s
                .aim
                .as_ref()
                .is_none_or(|p| self.name.starts_with(p.as_str()));
            s.aimed_syncs += u64::from(aimed);
            let failed = aimed && s.fail_sync_at == Some(s.aimed_syncs);
            s.stats.syncs_failed += u64::from(failed);
            if failed {
                s.faults.push(FaultRecord {
                    kind: "fail-sync",
                    file: self.name.clone(),
                });
            }
            let lie = aimed && s.lie_sync_at == Some(s.aimed_syncs);
            if lie {
                s.faults.push(FaultRecord {
                    kind: "lying-sync",
                    file: self.name.clone(),
                });
                return Ok(());
            }
            let data = s
                .files
                .get_mut(&self.name)
                .ok_or_else(|| eio("sync of removed file"))?;
            let pending = std::mem::take(&mut data.pending);
            if failed {
                return Err(eio("fdatasync"));
            }
            for (offset, bytes) in pending {
                apply(&mut data.durable, offset, &bytes);
            }
            Ok(())
        })
    }

    async fn size(&self) -> io::Result<u64> {
        self.with(|s| {
            let data = s
                .files
                .get(&self.name)
                .ok_or_else(|| eio("stat of removed file"))?;
            Ok(data.live.len() as u64)
        })
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        self.with(|s| {
            let data = s
                .files
                .get_mut(&self.name)
                .ok_or_else(|| eio("truncate removed file"))?;
            let len = usize::try_from(len).expect("simulated files fit in memory");
            data.live.resize(len, 0);
            data.durable.resize(len, 0);
            Ok(())
        })
    }
}

impl Disk for SimDisk {
    type File = SimFile;
    type Buf = SimBuf;

    fn alloc_buf(&self, len: usize) -> SimBuf {
        SimBuf(vec![0; len])
    }

    async fn create(&self, name: &str) -> io::Result<SimFile> {
        self.state
            .borrow_mut()
            .files
            .insert(name.to_owned(), SimFileData::default());
        Ok(self.handle(name))
    }

    async fn open(&self, name: &str) -> io::Result<SimFile> {
        if !self.state.borrow().files.contains_key(name) {
            return Err(io::Error::new(io::ErrorKind::NotFound, name.to_owned()));
        }
        Ok(self.handle(name))
    }

    async fn remove(&self, name: &str) -> io::Result<()> {
        self.state.borrow_mut().files.remove(name);
        Ok(())
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.state.borrow().files.keys().cloned().collect())
    }

    async fn sync_dir(&self) -> io::Result<()> {
        Ok(())
    }

    fn describe(&self, name: &str) -> String {
        format!("sim:{name}")
    }
}
