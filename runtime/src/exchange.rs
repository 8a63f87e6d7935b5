//! Exchanges: moving a stream between shards through an N × N mesh of SPSC channels.
//!
//! The sending side of an exchange on one shard is an `Outbox`: one open batch per destination
//! shard, filled record by record as the `Route` decides, and sent when full, when the shard has
//! nothing else to do, or when it has waited `max_batch_delay`. A full ring never blocks the
//! shard: the message waits in the outbox's overflow queue (order kept) and the shard loop pauses
//! the drivers that feed this exchange until the overflow drains (see `shard`), which is the
//! backpressure. The receiving side is a `Receiver` driver: it takes batches from every channel
//! round-robin, and combines the channels' watermarks, idleness and end-of-stream through an
//! `InputFrontier`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::rc::Rc;

use crate::channel::{ChannelReceiver, ChannelSender, Message};
use crate::checkpoint::Guarantee;
use crate::checkpoint::align::BarrierAligner;
use crate::collector::{BoxCollector, Collector, InputFrontier, forward_update};
use crate::constants::RECEIVE_BATCHES_PER_TURN;
use crate::element::{Batch, Signal};
use crate::error::OpResult;
use crate::hash::KeyGroupRouter;
use crate::shard::{Driver, DriverPoll, LoopContext, Pump};

/// Where one record goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// To one shard.
    Shard(usize),
    /// To every shard (the record is cloned).
    All,
}

/// Decides the destination shard of each record of an exchange. One instance per shard.
pub trait Route<T>: 'static {
    /// The destination of `value`.
    fn destination(&mut self, value: &T) -> Destination;
}

/// `key_by`: by the stable hash of the record's key, through its key group.
pub struct HashRoute<F> {
    key_hash: F,
    router: KeyGroupRouter,
}

impl<F> HashRoute<F> {
    /// Routes by `key_hash(record)` over `max_key_groups` groups and `shards` shards.
    pub fn new(key_hash: F, max_key_groups: u32, shards: usize) -> Self {
        HashRoute {
            key_hash,
            router: KeyGroupRouter::new(max_key_groups, shards),
        }
    }
}

impl<T, F: Fn(&T) -> u64 + 'static> Route<T> for HashRoute<F> {
    #[inline]
    fn destination(&mut self, value: &T) -> Destination {
        Destination::Shard(self.router.shard_of_hash((self.key_hash)(value)))
    }
}

/// `rebalance`: round robin over all shards, starting at the sender's own shard.
pub struct RoundRobinRoute {
    next: usize,
    shards: usize,
}

impl RoundRobinRoute {
    /// Round robin over `shards`, starting at `first`.
    pub fn new(first: usize, shards: usize) -> Self {
        RoundRobinRoute {
            next: first % shards,
            shards,
        }
    }
}

impl<T> Route<T> for RoundRobinRoute {
    #[inline]
    fn destination(&mut self, _value: &T) -> Destination {
        let d = self.next;
        self.next += 1;
        if self.next == self.shards {
            self.next = 0;
        }
        Destination::Shard(d)
    }
}

/// `broadcast`: every record to every shard.
pub struct BroadcastRoute;

impl<T> Route<T> for BroadcastRoute {
    #[inline]
    fn destination(&mut self, _value: &T) -> Destination {
        Destination::All
    }
}

/// The per-destination batches and overflow queues of one exchange on one shard.
pub struct Outbox<T> {
    level: u32,
    channels: Vec<ChannelSender<T>>,
    open: Vec<Batch<T>>,
    opened_ns: Vec<u64>,
    overflow: Vec<VecDeque<Message<T>>>,
    overflow_len: usize,
    batch_records: usize,
    loop_now: Rc<Cell<u64>>,
}

impl<T: Clone + 'static> Outbox<T> {
    /// An outbox sending through `channels` (index = destination shard).
    pub fn new(
        level: u32,
        mut channels: Vec<ChannelSender<T>>,
        batch_records: usize,
        loop_now: Rc<Cell<u64>>,
    ) -> Self {
        let n = channels.len();
        let open = channels
            .iter_mut()
            .map(|c| Batch {
                records: c.take_buffer(batch_records),
                emitted_ns: u64::MAX,
            })
            .collect();
        Outbox {
            level,
            channels,
            open,
            opened_ns: vec![0; n],
            overflow: (0..n).map(|_| VecDeque::new()).collect(),
            overflow_len: 0,
            batch_records,
            loop_now,
        }
    }

    #[inline]
    fn add(&mut self, dest: usize, record: crate::element::Record<T>, emitted_ns: u64) {
        let batch = &mut self.open[dest];
        if batch.records.is_empty() {
            self.opened_ns[dest] = self.loop_now.get();
        }
        batch.records.push(record);
        batch.emitted_ns = batch.emitted_ns.min(emitted_ns);
        if batch.records.len() >= self.batch_records {
            self.send_open(dest);
        }
    }

    fn send_open(&mut self, dest: usize) {
        if self.open[dest].records.is_empty() {
            return;
        }
        let fresh = self.channels[dest].take_buffer(self.batch_records);
        let records = std::mem::replace(&mut self.open[dest].records, fresh);
        let emitted_ns = std::mem::replace(&mut self.open[dest].emitted_ns, u64::MAX);
        self.enqueue(
            dest,
            Message::Data(Batch {
                records,
                emitted_ns,
            }),
        );
    }

    fn enqueue(&mut self, dest: usize, message: Message<T>) {
        if !self.overflow[dest].is_empty() {
            self.overflow[dest].push_back(message);
            self.overflow_len += 1;
            return;
        }
        if let Err(message) = self.channels[dest].try_send(message) {
            self.overflow[dest].push_back(message);
            self.overflow_len += 1;
        }
    }

    fn broadcast_signal(&mut self, signal: Signal) {
        for dest in 0..self.channels.len() {
            self.send_open(dest);
            self.enqueue(dest, Message::Signal(signal));
        }
    }
}

impl<T: Clone + 'static> Pump for Outbox<T> {
    fn level(&self) -> u32 {
        self.level
    }

    fn is_blocked(&self) -> bool {
        self.overflow_len > 0
    }

    fn pump(&mut self, now_ns: u64, max_delay_ns: u64) -> bool {
        let mut progress = false;
        if self.overflow_len > 0 {
            for dest in 0..self.channels.len() {
                while let Some(message) = self.overflow[dest].pop_front() {
                    match self.channels[dest].try_send(message) {
                        Ok(()) => {
                            self.overflow_len -= 1;
                            progress = true;
                        }
                        Err(message) => {
                            self.overflow[dest].push_front(message);
                            break;
                        }
                    }
                }
            }
        }
        for dest in 0..self.open.len() {
            if !self.open[dest].records.is_empty()
                && now_ns.saturating_sub(self.opened_ns[dest]) >= max_delay_ns
            {
                self.send_open(dest);
                progress = true;
            }
        }
        progress
    }

    fn flush(&mut self) -> bool {
        let mut sent = false;
        for dest in 0..self.open.len() {
            if !self.open[dest].records.is_empty() {
                self.send_open(dest);
                sent = true;
            }
        }
        sent
    }

    fn could_progress(&self) -> bool {
        (0..self.channels.len())
            .any(|d| !self.overflow[d].is_empty() && !self.channels[d].is_full())
    }
}

/// The chain end of an exchange: routes each record into the shared outbox.
pub struct ExchangeSender<T, R> {
    outbox: Rc<RefCell<Outbox<T>>>,
    route: R,
    _records: PhantomData<fn(T)>,
}

impl<T, R> ExchangeSender<T, R> {
    /// A sender routing with `route` into `outbox`.
    pub fn new(outbox: Rc<RefCell<Outbox<T>>>, route: R) -> Self {
        ExchangeSender {
            outbox,
            route,
            _records: PhantomData,
        }
    }
}

impl<T: Clone + 'static, R: Route<T>> Collector<T> for ExchangeSender<T, R> {
    fn push(&mut self, batch: &mut Batch<T>) -> OpResult {
        let mut outbox = self.outbox.borrow_mut();
        let emitted_ns = batch.emitted_ns;
        for record in batch.records.drain(..) {
            match self.route.destination(&record.value) {
                Destination::Shard(dest) => outbox.add(dest, record, emitted_ns),
                Destination::All => {
                    let last = outbox.channels.len() - 1;
                    for dest in 0..last {
                        outbox.add(dest, record.clone(), emitted_ns);
                    }
                    outbox.add(last, record, emitted_ns);
                }
            }
        }
        Ok(())
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        match signal {
            // Ticks are local to a shard's chain.
            Signal::Tick(_) => Ok(()),
            _ => {
                self.outbox.borrow_mut().broadcast_signal(signal);
                Ok(())
            }
        }
    }
}

/// The receiving end of an exchange on one shard: a driver of the shard loop.
pub struct Receiver<T> {
    level: u32,
    channels: Vec<ChannelReceiver<T>>,
    frontier: InputFrontier,
    down: BoxCollector<T>,
    operator: u32,
    next_channel: usize,
    finished: bool,
    aligner: BarrierAligner,
    /// Exactly-once: a channel past the barrier is not read until the others catch up.
    block_aligned: bool,
}

impl<T: 'static> Receiver<T> {
    /// A receiver over `channels` (index = source shard) feeding `down`.
    pub fn new(
        level: u32,
        operator: u32,
        channels: Vec<ChannelReceiver<T>>,
        down: BoxCollector<T>,
        guarantee: Guarantee,
    ) -> Self {
        let n = channels.len();
        Receiver {
            level,
            channels,
            frontier: InputFrontier::new(n),
            down,
            operator,
            next_channel: 0,
            finished: false,
            aligner: BarrierAligner::new(n),
            block_aligned: guarantee == Guarantee::ExactlyOnce,
        }
    }

    fn on_signal(&mut self, channel: usize, signal: Signal) -> OpResult {
        if let Signal::Barrier(id) = signal {
            if self.aligner.on_barrier(channel, id) {
                return self.down.signal(signal);
            }
            return Ok(());
        }
        let aligning = self.aligner.current();
        if signal == Signal::End && self.aligner.on_end(channel) {
            // The last channel that still owed the barrier ended: the barrier goes on first.
            let id = aligning.expect("an alignment was in progress");
            self.down.signal(Signal::Barrier(id))?;
        }
        let update = self.frontier.on_signal(channel, signal);
        if update.ended {
            self.finished = true;
        }
        forward_update(&mut *self.down, update)
    }
}

impl<T: 'static> Driver for Receiver<T> {
    fn level(&self) -> u32 {
        self.level
    }

    fn is_finished(&self) -> bool {
        self.finished
    }

    fn poll(
        &mut self,
        _cx: &LoopContext,
    ) -> Result<DriverPoll, (u32, crate::error::OperatorError)> {
        let n = self.channels.len();
        let mut progress = false;
        for _ in 0..n {
            let c = self.next_channel;
            self.next_channel = if c + 1 == n { 0 } else { c + 1 };
            for _ in 0..RECEIVE_BATCHES_PER_TURN {
                if self.block_aligned && self.aligner.is_blocked(c) {
                    break;
                }
                let Some(message) = self.channels[c].try_recv() else {
                    break;
                };
                progress = true;
                crate::op_scope::enter(self.operator);
                let result = match message {
                    Message::Data(mut batch) => {
                        let result = self.down.push(&mut batch);
                        batch.records.clear();
                        self.channels[c].recycle(batch.records);
                        result
                    }
                    Message::Signal(signal) => self.on_signal(c, signal),
                };
                result.map_err(|e| (crate::op_scope::current(), e))?;
                if self.finished {
                    return Ok(DriverPoll::Finished);
                }
            }
        }
        Ok(if progress {
            DriverPoll::Progress
        } else {
            DriverPoll::Idle { wake_at_ns: None }
        })
    }

    fn has_input(&self) -> bool {
        self.channels
            .iter()
            .enumerate()
            .any(|(i, c)| c.has_message() && !(self.block_aligned && self.aligner.is_blocked(i)))
    }
}
