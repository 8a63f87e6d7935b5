//! Named crash points for crash tests: `CORESTROM_CRASH_AT=<point>:<n>` makes the process abort
//! (no unwinding, no flushing, like a kill) the `n`-th time execution passes `<point>`.
//!
//! Points: `source.after_barrier`, `sink.after_prepare`, `sink.before_commit`,
//! `sink.after_commit`, `shard.after_snapshot`, `manifest.before_rename`,
//! `manifest.after_rename`, `manifest.after_dir_fsync`, `file.before_fsync`,
//! `file.after_fsync`, `state.before_seal`, `state.after_fsync` (keyed state written to the
//! store, before its seal; seal durable, before the acknowledgement). Unset, a point costs one
//! atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that arms a crash point.
pub const CRASH_AT_VAR: &str = "CORESTROM_CRASH_AT";

struct Armed {
    point: String,
    at_hit: u64,
    hits: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var(CRASH_AT_VAR).ok()?;
            let (point, n) = spec.rsplit_once(':').unwrap_or((spec.as_str(), "1"));
            Some(Armed {
                point: point.to_string(),
                at_hit: n.parse().unwrap_or(1).max(1),
                hits: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Passes crash point `point`; aborts the process if it is armed and this is the chosen hit.
#[inline]
pub fn hit(point: &str) {
    if let Some(armed) = armed()
        && armed.point == point
        && armed.hits.fetch_add(1, Ordering::SeqCst) + 1 == armed.at_hit
    {
        eprintln!("corestrom: crash point {point} reached, aborting (test fault injection)");
        std::process::abort();
    }
}
