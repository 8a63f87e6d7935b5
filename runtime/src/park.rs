//! Parking an idle shard and waking it when data arrives, without a lost wake-up.
//!
//! Protocol (a Dekker-style handshake on two locations, the ring and the `sleeping` flag):
//!
//! - The consumer that wants to sleep stores `sleeping = true`, issues a SeqCst fence, and then
//!   polls all its inputs once more. Only if that poll finds nothing does it call
//!   `thread::park_timeout`.
//! - A producer publishes into a ring (a Release store inside the ring), issues a SeqCst fence,
//!   then loads `sleeping`; if set, it unparks the consumer's thread.
//!
//! With both fences, either the consumer's last poll sees the new data, or the producer sees
//! `sleeping == true` and unparks. `unpark` before `park` is remembered by the thread's token, so
//! the race where the unpark lands between the last poll and the park is harmless too. The park
//! has a timeout (`PARK_MAX`) only as a safety net.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::thread::Thread;
use std::time::Duration;

/// One shard's parking spot, shared with every shard that sends to it or receives from it.
/// Aligned to its own cache lines: the flag is read by producers on other cores per batch.
#[repr(align(128))]
#[derive(Debug, Default)]
pub struct Parker {
    sleeping: AtomicBool,
    thread: OnceLock<Thread>,
}

impl Parker {
    /// A parker whose thread is not registered yet.
    pub fn new() -> Self {
        Parker::default()
    }

    /// Registers the calling thread as the one to wake. Called once by the shard thread.
    pub fn register_current_thread(&self) {
        // A second registration (not expected) keeps the first thread; nothing to do then.
        let _ = self.thread.set(std::thread::current());
    }

    /// Announces that the owner is about to sleep. The owner must poll its inputs once more
    /// after this and only then call [`Parker::park`].
    pub fn prepare_park(&self) {
        self.sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Sleeps at most `timeout`, or until woken, then clears the flag.
    pub fn park(&self, timeout: Duration) {
        std::thread::park_timeout(timeout);
        self.sleeping.store(false, Ordering::SeqCst);
    }

    /// Called by the owner when its extra poll found work, instead of parking.
    pub fn cancel_park(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }

    /// Wakes the owner if it sleeps or is about to. Call after publishing data for it.
    #[inline]
    pub fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            self.wake();
        }
    }

    /// Wakes the owner unconditionally (cancellation, failure).
    pub fn wake(&self) {
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }
}
