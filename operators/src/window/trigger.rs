//! Triggers decide when a window fires and when its contents are purged (Flink's `Trigger`).
//!
//! A trigger is called on every element added to a window, when a timer it registered fires,
//! when windows merge (sessions) and when the window is cleaned up. It keeps per-window state of
//! its own (`State`, e.g. a count), and asks for timers through its [`TriggerContext`]; the
//! operator scopes those timers to (key, window). Built-in: [`EventTimeTrigger`] (default of
//! event-time windows), [`ProcessingTimeTrigger`], [`CountTrigger`], [`PurgingTrigger`],
//! [`NeverTrigger`] (default of global windows).

use corestrom_runtime::EventTime;

use super::types::Window;

/// What a window does after a trigger call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerResult {
    /// Nothing.
    Continue,
    /// Emit the window's result; keep its contents.
    Fire,
    /// Drop the window's contents without emitting.
    Purge,
    /// Emit the result, then drop the contents.
    FireAndPurge,
}

impl TriggerResult {
    /// True for `Fire` and `FireAndPurge`.
    pub fn is_fire(self) -> bool {
        matches!(self, TriggerResult::Fire | TriggerResult::FireAndPurge)
    }
    /// True for `Purge` and `FireAndPurge`.
    pub fn is_purge(self) -> bool {
        matches!(self, TriggerResult::Purge | TriggerResult::FireAndPurge)
    }
}

/// A timer change a trigger asked for, applied to the current (key, window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerRequest {
    RegisterEvent(EventTime),
    DeleteEvent(EventTime),
    RegisterProcessing(EventTime),
    DeleteProcessing(EventTime),
}

/// What a trigger may see and do.
#[derive(Debug)]
pub struct TriggerContext<'a> {
    pub(crate) watermark: EventTime,
    pub(crate) processing_time: EventTime,
    pub(crate) requests: &'a mut Vec<TimerRequest>,
}

impl TriggerContext<'_> {
    /// The operator's current watermark.
    pub fn current_watermark(&self) -> EventTime {
        self.watermark
    }
    /// The wall clock in ms.
    pub fn current_processing_time(&self) -> EventTime {
        self.processing_time
    }
    /// Asks for `on_event_time` when the watermark reaches `time`.
    pub fn register_event_time_timer(&mut self, time: EventTime) {
        self.requests.push(TimerRequest::RegisterEvent(time));
    }
    /// Cancels an event-time timer.
    pub fn delete_event_time_timer(&mut self, time: EventTime) {
        self.requests.push(TimerRequest::DeleteEvent(time));
    }
    /// Asks for `on_processing_time` when the wall clock reaches `time`.
    pub fn register_processing_time_timer(&mut self, time: EventTime) {
        self.requests.push(TimerRequest::RegisterProcessing(time));
    }
    /// Cancels a processing-time timer.
    pub fn delete_processing_time_timer(&mut self, time: EventTime) {
        self.requests.push(TimerRequest::DeleteProcessing(time));
    }
}

/// Decides when windows of elements `T` fire (Flink's `Trigger<T, W>`).
pub trait Trigger<T, W: Window>: Clone + Send + Sync + 'static {
    /// Per-window state of the trigger (e.g. a count); `Default` is the fresh state.
    type State: Default + Clone + corestrom_runtime::state::snapshot::StateData;
    /// An element was added to `window`.
    fn on_element(
        &mut self,
        element: &T,
        timestamp: EventTime,
        window: &W,
        state: &mut Self::State,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult;
    /// An event-time timer of this window fired.
    fn on_event_time(
        &mut self,
        time: EventTime,
        window: &W,
        state: &mut Self::State,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult;
    /// A processing-time timer of this window fired.
    fn on_processing_time(
        &mut self,
        time: EventTime,
        window: &W,
        state: &mut Self::State,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult;
    /// Combines the state of a window merged into another (sessions); default: keep `into`.
    fn merge_state(&self, _into: &mut Self::State, _from: Self::State) {}
    /// Windows were merged into `window` (whose state is already merged).
    fn on_merge(&mut self, _window: &W, _state: &mut Self::State, _ctx: &mut TriggerContext<'_>) {}
    /// The window is dropped: delete the timers this trigger registered for it.
    fn clear(&mut self, window: &W, state: &mut Self::State, ctx: &mut TriggerContext<'_>);
}

/// Fires once the watermark passes the window's end (`max_timestamp() <= watermark`), and at
/// once for an element added to a window the watermark has already passed (a late firing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventTimeTrigger;

impl<T, W: Window> Trigger<T, W> for EventTimeTrigger {
    type State = ();
    fn on_element(
        &mut self,
        _element: &T,
        _timestamp: EventTime,
        window: &W,
        _state: &mut (),
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        if window.max_timestamp() <= ctx.current_watermark() {
            TriggerResult::Fire
        } else {
            ctx.register_event_time_timer(window.max_timestamp());
            TriggerResult::Continue
        }
    }
    fn on_event_time(
        &mut self,
        time: EventTime,
        window: &W,
        _state: &mut (),
        _ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        if time == window.max_timestamp() {
            TriggerResult::Fire
        } else {
            TriggerResult::Continue
        }
    }
    fn on_processing_time(
        &mut self,
        _time: EventTime,
        _window: &W,
        _state: &mut (),
        _ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        TriggerResult::Continue
    }
    fn on_merge(&mut self, window: &W, _state: &mut (), ctx: &mut TriggerContext<'_>) {
        // As Flink: a merged window the watermark has passed fires through `on_element`.
        if window.max_timestamp() > ctx.current_watermark() {
            ctx.register_event_time_timer(window.max_timestamp());
        }
    }
    fn clear(&mut self, window: &W, _state: &mut (), ctx: &mut TriggerContext<'_>) {
        ctx.delete_event_time_timer(window.max_timestamp());
    }
}

/// Fires when the wall clock passes the window's end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessingTimeTrigger;

impl<T, W: Window> Trigger<T, W> for ProcessingTimeTrigger {
    type State = ();
    fn on_element(
        &mut self,
        _element: &T,
        _timestamp: EventTime,
        window: &W,
        _state: &mut (),
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        ctx.register_processing_time_timer(window.max_timestamp());
        TriggerResult::Continue
    }
    fn on_event_time(
        &mut self,
        _time: EventTime,
        _window: &W,
        _state: &mut (),
        _ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        TriggerResult::Continue
    }
    fn on_processing_time(
        &mut self,
        _time: EventTime,
        _window: &W,
        _state: &mut (),
        _ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        TriggerResult::Fire
    }
    fn on_merge(&mut self, window: &W, _state: &mut (), ctx: &mut TriggerContext<'_>) {
        if window.max_timestamp() > ctx.current_processing_time() {
            ctx.register_processing_time_timer(window.max_timestamp());
        }
    }
    fn clear(&mut self, window: &W, _state: &mut (), ctx: &mut TriggerContext<'_>) {
        ctx.delete_processing_time_timer(window.max_timestamp());
    }
}

/// Fires every `count` elements of a window (and resets its count); keeps the contents, as
/// Flink's `CountTrigger` (wrap it in [`PurgingTrigger`] for count windows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountTrigger {
    count: u64,
}

impl CountTrigger {
    /// Fires every `count` elements.
    pub fn of(count: u64) -> Self {
        assert!(count > 0, "a count trigger needs a positive count");
        CountTrigger { count }
    }
}

impl<T, W: Window> Trigger<T, W> for CountTrigger {
    type State = u64;
    fn on_element(
        &mut self,
        _element: &T,
        _timestamp: EventTime,
        _window: &W,
        seen: &mut u64,
        _ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        *seen += 1;
        if *seen >= self.count {
            *seen = 0;
            TriggerResult::Fire
        } else {
            TriggerResult::Continue
        }
    }
    fn on_event_time(
        &mut self,
        _time: EventTime,
        _window: &W,
        _seen: &mut u64,
        _ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        TriggerResult::Continue
    }
    fn on_processing_time(
        &mut self,
        _time: EventTime,
        _window: &W,
        _seen: &mut u64,
        _ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        TriggerResult::Continue
    }
    fn merge_state(&self, into: &mut u64, from: u64) {
        *into += from;
    }
    fn clear(&mut self, _window: &W, seen: &mut u64, _ctx: &mut TriggerContext<'_>) {
        *seen = 0;
    }
}

/// Turns every `Fire` of the inner trigger into `FireAndPurge`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PurgingTrigger<Tr> {
    inner: Tr,
}

impl<Tr> PurgingTrigger<Tr> {
    /// Purges whenever `inner` fires.
    pub fn of(inner: Tr) -> Self {
        PurgingTrigger { inner }
    }
}

fn purging(result: TriggerResult) -> TriggerResult {
    if result.is_fire() {
        TriggerResult::FireAndPurge
    } else {
        result
    }
}

impl<T, W: Window, Tr: Trigger<T, W>> Trigger<T, W> for PurgingTrigger<Tr> {
    type State = Tr::State;
    fn on_element(
        &mut self,
        element: &T,
        timestamp: EventTime,
        window: &W,
        state: &mut Tr::State,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        purging(
            self.inner
                .on_element(element, timestamp, window, state, ctx),
        )
    }
    fn on_event_time(
        &mut self,
        time: EventTime,
        window: &W,
        state: &mut Tr::State,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        purging(self.inner.on_event_time(time, window, state, ctx))
    }
    fn on_processing_time(
        &mut self,
        time: EventTime,
        window: &W,
        state: &mut Tr::State,
        ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        purging(self.inner.on_processing_time(time, window, state, ctx))
    }
    fn merge_state(&self, into: &mut Tr::State, from: Tr::State) {
        self.inner.merge_state(into, from);
    }
    fn on_merge(&mut self, window: &W, state: &mut Tr::State, ctx: &mut TriggerContext<'_>) {
        self.inner.on_merge(window, state, ctx);
    }
    fn clear(&mut self, window: &W, state: &mut Tr::State, ctx: &mut TriggerContext<'_>) {
        self.inner.clear(window, state, ctx);
    }
}

/// Never fires (the default of global windows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NeverTrigger;

impl<T, W: Window> Trigger<T, W> for NeverTrigger {
    type State = ();
    fn on_element(
        &mut self,
        _element: &T,
        _timestamp: EventTime,
        _window: &W,
        _state: &mut (),
        _ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        TriggerResult::Continue
    }
    fn on_event_time(
        &mut self,
        _time: EventTime,
        _window: &W,
        _state: &mut (),
        _ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        TriggerResult::Continue
    }
    fn on_processing_time(
        &mut self,
        _time: EventTime,
        _window: &W,
        _state: &mut (),
        _ctx: &mut TriggerContext<'_>,
    ) -> TriggerResult {
        TriggerResult::Continue
    }
    fn clear(&mut self, _window: &W, _state: &mut (), _ctx: &mut TriggerContext<'_>) {}
}
