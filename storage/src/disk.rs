//! The narrow I/O interface the store needs, and its io_uring implementation on glommio.
//!
//! Everything the store does to files goes through [`Disk`] and [`DiskFile`]: create, open,
//! remove and list files, sync the directory, write and read whole blocks at block-aligned
//! offsets, `fdatasync`, truncate. [`GlommioDisk`] implements it with glommio's `DmaFile`
//! (O_DIRECT, io_uring); [`crate::disk_sim::SimDisk`] implements it in memory with injected
//! faults. Glommio covers every operation we need (fdatasync, truncate, unlink, directory
//! fsync), so the `io-uring` crate is not used directly.
//!
//! Contract: `write_at` offsets and buffer lengths are multiples of
//! [`crate::format::BLOCK_BYTES`]; `read_at` offsets are too, and a read past the end of the
//! file returns fewer bytes. Writes to one file are issued one at a time by the log's writer
//! task, so overlapping writes (the rewritten tail block) land in issue order.

use crate::format::BLOCK_BYTES;
use std::future::Future;
use std::io;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{Directory, DmaBuffer, DmaFile, OpenOptions, ReadResult};

/// An aligned, owned write buffer.
pub trait DiskBuf: AsRef<[u8]> + AsMut<[u8]> + 'static {
    /// Shortens the buffer to `len` bytes (a multiple of the block size).
    fn trim(&mut self, len: usize);
}

/// One open file.
pub trait DiskFile: 'static {
    /// Bytes returned by a read.
    type ReadBuf: Deref<Target = [u8]> + 'static;
    /// Aligned write buffer.
    type Buf: DiskBuf;

    /// Writes all of `buf` at `offset`; returns the number of bytes written.
    fn write_at(&self, buf: Rc<Self::Buf>, offset: u64) -> impl Future<Output = io::Result<usize>>;
    /// Reads up to `len` bytes at `offset` (fewer at end of file).
    fn read_at(&self, offset: u64, len: usize) -> impl Future<Output = io::Result<Self::ReadBuf>>;
    /// `fdatasync`: everything written so far is durable when this returns `Ok`.
    fn sync_data(&self) -> impl Future<Output = io::Result<()>>;
    /// Current file size.
    fn size(&self) -> impl Future<Output = io::Result<u64>>;
    /// Cuts the file to `len` bytes.
    fn truncate(&self, len: u64) -> impl Future<Output = io::Result<()>>;
}

/// One shard's directory of files.
pub trait Disk: 'static {
    /// Files of this disk.
    type File: DiskFile<Buf = Self::Buf>;
    /// Aligned write buffers of this disk.
    type Buf: DiskBuf;

    /// Allocates an aligned write buffer of `len` bytes (contents unspecified).
    fn alloc_buf(&self, len: usize) -> Self::Buf;
    /// Creates (or truncates) a file for reading and writing.
    fn create(&self, name: &str) -> impl Future<Output = io::Result<Self::File>>;
    /// Opens an existing file for reading and writing.
    fn open(&self, name: &str) -> impl Future<Output = io::Result<Self::File>>;
    /// Removes a file.
    fn remove(&self, name: &str) -> impl Future<Output = io::Result<()>>;
    /// Names of all files in the directory.
    fn list(&self) -> io::Result<Vec<String>>;
    /// fsyncs the directory so created and removed names are durable.
    fn sync_dir(&self) -> impl Future<Output = io::Result<()>>;
    /// The name to show in errors (a full path for real disks).
    fn describe(&self, name: &str) -> String;
}

impl DiskBuf for DmaBuffer {
    fn trim(&mut self, len: usize) {
        self.trim_to_size(len);
    }
}

/// A shard directory on a real file system, accessed with O_DIRECT through io_uring.
pub struct GlommioDisk {
    dir: PathBuf,
    directory: Directory,
    /// Glommio allocates DMA buffers through an open file; this one is the directory's `LOCK`.
    alloc_file: DmaFile,
}

impl GlommioDisk {
    /// Opens (creating if needed) the shard directory `dir`. Must run inside a glommio executor.
    ///
    /// # Errors
    /// I/O errors creating the directory or its `LOCK` file.
    pub async fn open(dir: impl AsRef<Path>) -> io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let directory = Directory::open(&dir).await.map_err(io::Error::from)?;
        // Glommio 0.9 probes io_uring IOPOLL support with a real read on the first DMA file it
        // opens per device and thread, and caches the answer. On an empty file that read hits
        // EOF without touching the device and "succeeds", so every later DMA read goes to the
        // poll ring and fails with EOPNOTSUPP on devices without polling (virtio here). Giving
        // the LOCK file one block before its DMA open makes the probe read the device.
        let lock = dir.join("LOCK");
        if std::fs::metadata(&lock).map_or(true, |m| m.len() < BLOCK_BYTES as u64) {
            std::fs::write(&lock, [0u8; BLOCK_BYTES])?;
        }
        let alloc_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .dma_open(&lock)
            .await
            .map_err(io::Error::from)?;
        Ok(Self {
            dir,
            directory,
            alloc_file,
        })
    }

    /// The directory this disk lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A segment file opened with O_DIRECT.
pub struct GlommioFile(DmaFile);

impl DiskFile for GlommioFile {
    type ReadBuf = ReadResult;
    type Buf = DmaBuffer;

    async fn write_at(&self, buf: Rc<DmaBuffer>, offset: u64) -> io::Result<usize> {
        self.0
            .write_rc_at(buf, offset)
            .await
            .map_err(io::Error::from)
    }

    async fn read_at(&self, offset: u64, len: usize) -> io::Result<ReadResult> {
        self.0
            .read_at_aligned(offset, len)
            .await
            .map_err(io::Error::from)
    }

    async fn sync_data(&self) -> io::Result<()> {
        self.0.fdatasync().await.map_err(io::Error::from)
    }

    async fn size(&self) -> io::Result<u64> {
        self.0.file_size().await.map_err(io::Error::from)
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        // Truncation happens only at recovery and is a short metadata syscall, so it is made
        // here, through the file's path, rather than on glommio's blocking thread pool (a
        // thread hop per call for nothing). It was first moved here while chasing a recovery
        // hang, which turned out to be glommio's executor parking with a task queued (see
        // third_party/README.md), not this call.
        let path = self.0.path().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "truncating a DMA file without a path",
            )
        })?;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&*path)?
            .set_len(len)
    }
}

impl Disk for GlommioDisk {
    type File = GlommioFile;
    type Buf = DmaBuffer;

    fn alloc_buf(&self, len: usize) -> DmaBuffer {
        self.alloc_file.alloc_dma_buffer(len)
    }

    async fn create(&self, name: &str) -> io::Result<GlommioFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .dma_open(self.dir.join(name))
            .await
            .map_err(io::Error::from)?;
        Ok(GlommioFile(file))
    }

    async fn open(&self, name: &str) -> io::Result<GlommioFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(self.dir.join(name))
            .await
            .map_err(io::Error::from)?;
        Ok(GlommioFile(file))
    }

    async fn remove(&self, name: &str) -> io::Result<()> {
        // Unlink is a metadata call; the blocking syscall is short and rare (compaction only).
        std::fs::remove_file(self.dir.join(name))
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    async fn sync_dir(&self) -> io::Result<()> {
        self.directory.sync().await.map_err(io::Error::from)
    }

    fn describe(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}
