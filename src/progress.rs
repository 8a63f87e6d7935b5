//! The progress line on stderr while a long run goes on: events so far and the rate, redrawn a
//! few times per second, cleared when the run ends.
//!
//! It only reads a counter the sources bump once per batch; it never touches the shards. It
//! stays silent when stderr is not a terminal (logs and pipes get no carriage returns) and for
//! the first [`QUIET_PERIOD`], so short runs print nothing extra.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// No line before the run has lasted this long.
const QUIET_PERIOD: Duration = Duration::from_secs(2);
/// Time between two redraws.
const REDRAW_INTERVAL: Duration = Duration::from_millis(250);

/// A running progress display; [`ProgressLine::finish`] (or drop) stops and clears it.
pub struct ProgressLine {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ProgressLine {
    /// Shows `label` and `counter` on stderr, if stderr is a terminal.
    pub fn start(label: String, counter: Arc<AtomicU64>) -> ProgressLine {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::io::stderr().is_terminal().then(|| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || draw_until_stopped(&label, &counter, &stop))
        });
        ProgressLine { stop, thread }
    }

    /// Stops the display and clears its line.
    pub fn finish(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // A panic in the display thread only loses the display.
            let _ = thread.join();
        }
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

fn draw_until_stopped(label: &str, counter: &AtomicU64, stop: &AtomicBool) {
    let start = Instant::now();
    let mut drawn = false;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(REDRAW_INTERVAL);
        let elapsed = start.elapsed();
        if elapsed < QUIET_PERIOD {
            continue;
        }
        let events = counter.load(Ordering::Relaxed);
        let rate = events as f64 / elapsed.as_secs_f64();
        // \r and "erase to end of line" redraw in place.
        eprint!(
            "\r\x1b[K{label}: {events} events, {:.2} M/s, {:.0} s",
            rate / 1e6,
            elapsed.as_secs_f64()
        );
        let _ = std::io::stderr().flush();
        drawn = true;
    }
    if drawn {
        eprint!("\r\x1b[K");
        let _ = std::io::stderr().flush();
    }
}
