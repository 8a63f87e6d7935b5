//! Window assigners: which windows a record belongs to, by event time or processing time.
//!
//! Tumbling and sliding windows are aligned to the epoch plus an optional offset, end exclusive
//! (`[start, end)`): a record at `t` is in every window with `start <= t < end`. A session
//! window of a record at `t` is `[t, t + gap)`; overlapping or touching sessions of a key merge.
//! `GlobalWindows` puts every record of a key in one window that only a trigger can fire.

use std::time::Duration;

use corestrom_runtime::{EventTime, TimeDomain};

use super::trigger::{EventTimeTrigger, NeverTrigger, ProcessingTimeTrigger};
use super::types::{GlobalWindow, TimeWindow, Window, window_start};

/// Size, slide and offset of aligned (tumbling or sliding) windows, in ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlignedSpec {
    /// Window length.
    pub size_ms: i64,
    /// Distance between window starts (`size` for tumbling windows).
    pub slide_ms: i64,
    /// Shift of the window starts from the epoch.
    pub offset_ms: i64,
}

/// Assigns records to windows.
pub trait WindowAssigner: Clone + Send + Sync + 'static {
    /// The windows it produces.
    type W: Window;
    /// The trigger used unless `WindowedStream::trigger` replaces it.
    type DefaultTrigger: Clone + Send + Sync + 'static;
    /// Appends the windows of a record at `timestamp` (event or processing time).
    fn assign(&self, timestamp: EventTime, out: &mut Vec<Self::W>);
    /// Which clock assigns and ends the windows.
    fn domain(&self) -> TimeDomain;
    /// The default trigger.
    fn default_trigger(&self) -> Self::DefaultTrigger;
    /// True for session windows (windows of a key merge).
    fn is_merging(&self) -> bool {
        false
    }
    /// For tumbling and sliding windows: their alignment (lets the operator share panes).
    fn aligned(&self) -> Option<AlignedSpec> {
        None
    }
}

fn ms(d: Duration) -> i64 {
    let ms = i64::try_from(d.as_millis()).expect("duration fits in i64 ms");
    assert!(ms > 0, "window sizes are at least 1 ms");
    ms
}

fn assign_aligned(spec: AlignedSpec, timestamp: EventTime, out: &mut Vec<TimeWindow>) {
    let last = window_start(timestamp, spec.offset_ms, spec.slide_ms);
    let mut start = last;
    while start > timestamp - spec.size_ms {
        out.push(TimeWindow::new(start, start + spec.size_ms));
        start -= spec.slide_ms;
    }
}

macro_rules! aligned_assigner {
    ($name:ident, $domain:expr, $trigger:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            spec: AlignedSpec,
        }

        impl $name {
            /// Shifts the window starts by `offset` from the epoch (e.g. time zones).
            pub fn with_offset(mut self, offset: Duration) -> Self {
                self.spec.offset_ms = ms(offset).rem_euclid(self.spec.slide_ms);
                self
            }
        }

        impl WindowAssigner for $name {
            type W = TimeWindow;
            type DefaultTrigger = $trigger;
            fn assign(&self, timestamp: EventTime, out: &mut Vec<TimeWindow>) {
                assign_aligned(self.spec, timestamp, out);
            }
            fn domain(&self) -> TimeDomain {
                $domain
            }
            fn default_trigger(&self) -> $trigger {
                <$trigger>::default()
            }
            fn aligned(&self) -> Option<AlignedSpec> {
                Some(self.spec)
            }
        }
    };
}

aligned_assigner!(
    TumblingEventTimeWindows,
    TimeDomain::EventTime,
    EventTimeTrigger,
    "Tumbling event-time windows: `[k·size + offset, (k+1)·size + offset)`."
);
aligned_assigner!(
    SlidingEventTimeWindows,
    TimeDomain::EventTime,
    EventTimeTrigger,
    "Sliding event-time windows of `size` starting every `slide`."
);
aligned_assigner!(
    TumblingProcessingTimeWindows,
    TimeDomain::ProcessingTime,
    ProcessingTimeTrigger,
    "Tumbling processing-time windows (the record's arrival time on the wall clock)."
);
aligned_assigner!(
    SlidingProcessingTimeWindows,
    TimeDomain::ProcessingTime,
    ProcessingTimeTrigger,
    "Sliding processing-time windows."
);

impl TumblingEventTimeWindows {
    /// Windows of `size`.
    pub fn of(size: Duration) -> Self {
        let size_ms = ms(size);
        TumblingEventTimeWindows {
            spec: AlignedSpec {
                size_ms,
                slide_ms: size_ms,
                offset_ms: 0,
            },
        }
    }
}

impl TumblingProcessingTimeWindows {
    /// Windows of `size`.
    pub fn of(size: Duration) -> Self {
        let size_ms = ms(size);
        TumblingProcessingTimeWindows {
            spec: AlignedSpec {
                size_ms,
                slide_ms: size_ms,
                offset_ms: 0,
            },
        }
    }
}

impl SlidingEventTimeWindows {
    /// Windows of `size`, a new one every `slide`.
    pub fn of(size: Duration, slide: Duration) -> Self {
        SlidingEventTimeWindows {
            spec: sliding(size, slide),
        }
    }
}

impl SlidingProcessingTimeWindows {
    /// Windows of `size`, a new one every `slide`.
    pub fn of(size: Duration, slide: Duration) -> Self {
        SlidingProcessingTimeWindows {
            spec: sliding(size, slide),
        }
    }
}

fn sliding(size: Duration, slide: Duration) -> AlignedSpec {
    let (size_ms, slide_ms) = (ms(size), ms(slide));
    assert!(
        slide_ms <= size_ms,
        "a slide longer than the size would drop records"
    );
    AlignedSpec {
        size_ms,
        slide_ms,
        offset_ms: 0,
    }
}

/// Session windows by event time: a key's session closes after `gap` without records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventTimeSessionWindows {
    gap_ms: i64,
}

impl EventTimeSessionWindows {
    /// Sessions separated by at least `gap`.
    pub fn with_gap(gap: Duration) -> Self {
        EventTimeSessionWindows { gap_ms: ms(gap) }
    }
}

impl WindowAssigner for EventTimeSessionWindows {
    type W = TimeWindow;
    type DefaultTrigger = EventTimeTrigger;
    fn assign(&self, timestamp: EventTime, out: &mut Vec<TimeWindow>) {
        out.push(TimeWindow::new(timestamp, timestamp + self.gap_ms));
    }
    fn domain(&self) -> TimeDomain {
        TimeDomain::EventTime
    }
    fn default_trigger(&self) -> EventTimeTrigger {
        EventTimeTrigger
    }
    fn is_merging(&self) -> bool {
        true
    }
}

/// Session windows by processing time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessingTimeSessionWindows {
    gap_ms: i64,
}

impl ProcessingTimeSessionWindows {
    /// Sessions separated by at least `gap` of wall-clock time.
    pub fn with_gap(gap: Duration) -> Self {
        ProcessingTimeSessionWindows { gap_ms: ms(gap) }
    }
}

impl WindowAssigner for ProcessingTimeSessionWindows {
    type W = TimeWindow;
    type DefaultTrigger = ProcessingTimeTrigger;
    fn assign(&self, timestamp: EventTime, out: &mut Vec<TimeWindow>) {
        out.push(TimeWindow::new(timestamp, timestamp + self.gap_ms));
    }
    fn domain(&self) -> TimeDomain {
        TimeDomain::ProcessingTime
    }
    fn default_trigger(&self) -> ProcessingTimeTrigger {
        ProcessingTimeTrigger
    }
    fn is_merging(&self) -> bool {
        true
    }
}

/// One window per key for all time; it fires only by a trigger (the default never fires).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalWindows;

impl WindowAssigner for GlobalWindows {
    type W = GlobalWindow;
    type DefaultTrigger = NeverTrigger;
    fn assign(&self, _timestamp: EventTime, out: &mut Vec<GlobalWindow>) {
        out.push(GlobalWindow);
    }
    /// Not event time, as Flink's `GlobalWindows.isEventTime()`: records need no timestamp,
    /// nothing is ever late, and the window is never cleaned up by time.
    fn domain(&self) -> TimeDomain {
        TimeDomain::ProcessingTime
    }
    fn default_trigger(&self) -> NeverTrigger {
        NeverTrigger
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_assigns_every_window_containing_the_timestamp() {
        let a = SlidingEventTimeWindows::of(Duration::from_millis(10), Duration::from_millis(4));
        let mut out = Vec::new();
        a.assign(9, &mut out);
        assert_eq!(
            out,
            vec![
                TimeWindow::new(8, 18),
                TimeWindow::new(4, 14),
                TimeWindow::new(0, 10)
            ]
        );
        out.clear();
        a.assign(10, &mut out);
        assert_eq!(out, vec![TimeWindow::new(8, 18), TimeWindow::new(4, 14)]);
    }
}
