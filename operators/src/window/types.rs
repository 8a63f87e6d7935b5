//! Window values: time windows `[start, end)` and the single global window.

use std::fmt::Debug;
use std::hash::Hash;

use corestrom_runtime::timers::TimeDomain;
use corestrom_runtime::{EventTime, NO_TIMESTAMP, OperatorError};

/// A window: a namespace for keyed window state with a last timestamp.
pub trait Window:
    Clone + Eq + Hash + Debug + Send + Sync + corestrom_runtime::state::snapshot::StateData
{
    /// The largest timestamp that belongs to the window (`end - 1` for time windows).
    fn max_timestamp(&self) -> EventTime;
    /// The time window `[start, end)`; only called by assigners that produce time windows.
    #[doc(hidden)]
    fn from_span(start: EventTime, end: EventTime) -> Self;
    /// The window as a time window, if it is one (session merging needs intervals).
    #[doc(hidden)]
    fn as_time_window(&self) -> Option<TimeWindow>;
}

/// The time window `[start, end)` (end exclusive, as Flink's `TimeWindow`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct TimeWindow {
    /// First timestamp in the window.
    pub start: EventTime,
    /// First timestamp after the window.
    pub end: EventTime,
}

impl TimeWindow {
    /// The window `[start, end)`.
    pub fn new(start: EventTime, end: EventTime) -> Self {
        assert!(start < end, "a window is not empty");
        TimeWindow { start, end }
    }

    /// Flink's `TimeWindow.intersects`: true when the windows overlap *or touch*
    /// (`[0, 10)` and `[10, 20)` intersect), which is when session windows merge.
    pub fn intersects(&self, other: &TimeWindow) -> bool {
        self.start <= other.end && self.end >= other.start
    }

    /// The smallest window covering both.
    pub fn cover(&self, other: &TimeWindow) -> TimeWindow {
        TimeWindow {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

impl Window for TimeWindow {
    fn max_timestamp(&self) -> EventTime {
        self.end - 1
    }
    fn from_span(start: EventTime, end: EventTime) -> Self {
        TimeWindow::new(start, end)
    }
    fn as_time_window(&self) -> Option<TimeWindow> {
        Some(*self)
    }
}

/// The one window of `GlobalWindows`; its last timestamp is `EventTime::MAX`, so it never ends
/// by time and its state is never cleaned up by time.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct GlobalWindow;

impl Window for GlobalWindow {
    fn max_timestamp(&self) -> EventTime {
        EventTime::MAX
    }
    fn from_span(_start: EventTime, _end: EventTime) -> Self {
        GlobalWindow
    }
    fn as_time_window(&self) -> Option<TimeWindow> {
        None
    }
}

/// The start of the window of size `size` (aligned to the epoch plus `offset`) that contains
/// `timestamp`. Unlike Flink's formula this is also right for negative timestamps.
#[inline]
pub fn window_start(timestamp: EventTime, offset: i64, size: i64) -> EventTime {
    debug_assert!(size > 0);
    timestamp - (timestamp - offset).rem_euclid(size)
}

/// The time a record counts at in a window of `domain`: its timestamp in event time (an error
/// if it has none), the current processing time otherwise.
///
/// # Errors
/// An event-time record without a timestamp.
pub(crate) fn record_time(
    domain: TimeDomain,
    ts: EventTime,
    now_ms: EventTime,
) -> Result<EventTime, OperatorError> {
    match domain {
        TimeDomain::ProcessingTime => Ok(now_ms),
        TimeDomain::EventTime if ts == NO_TIMESTAMP => Err(OperatorError::Failed(
            "record without timestamp in an event-time window; assign timestamps with with_timestamps first".into(),
        )),
        TimeDomain::EventTime => Ok(ts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_are_aligned_to_epoch_and_offset() {
        assert_eq!(window_start(0, 0, 10), 0);
        assert_eq!(window_start(9, 0, 10), 0);
        assert_eq!(
            window_start(10, 0, 10),
            10,
            "the end belongs to the next window"
        );
        assert_eq!(window_start(-1, 0, 10), -10);
        assert_eq!(window_start(12, 3, 10), 3);
        assert_eq!(window_start(2, 3, 10), -7);
    }

    #[test]
    fn touching_windows_intersect() {
        let a = TimeWindow::new(0, 10);
        assert!(a.intersects(&TimeWindow::new(10, 20)));
        assert!(!a.intersects(&TimeWindow::new(11, 20)));
        assert_eq!(a.cover(&TimeWindow::new(5, 20)), TimeWindow::new(0, 20));
    }
}
