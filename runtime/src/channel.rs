//! One ordered pair of shards inside an exchange: a bounded lock-free SPSC ring of messages
//! (batches and signals), plus a return ring that hands emptied batch buffers back to the
//! producer so steady-state traffic allocates nothing.
//!
//! The rings are `rtrb` ring buffers (a well-kept wait-free SPSC queue with cache-padded head and
//! tail); this module adds the buffer recycling and the wake-ups of `park`. Access rules: the
//! `ChannelSender` lives on the producing shard only, the `ChannelReceiver` on the consuming
//! shard only; both are `Send` so they can be moved to their shard threads before the job starts.

use std::sync::Arc;

use rtrb::{Consumer, Producer, RingBuffer};

use crate::element::{Batch, Record, Signal};
use crate::park::Parker;

/// What one ring slot carries.
#[derive(Debug)]
pub enum Message<T> {
    /// A batch of records.
    Data(Batch<T>),
    /// A control signal (never `Tick`).
    Signal(Signal),
}

/// The producing end of one channel.
pub struct ChannelSender<T> {
    data: Producer<Message<T>>,
    recycled: Consumer<Vec<Record<T>>>,
    consumer: Arc<Parker>,
}

/// The consuming end of one channel.
pub struct ChannelReceiver<T> {
    data: Consumer<Message<T>>,
    recycled: Producer<Vec<Record<T>>>,
    producer: Arc<Parker>,
}

/// Creates a channel holding `capacity` messages, from the shard parked on `producer` to the
/// shard parked on `consumer`.
pub fn channel<T>(
    capacity: usize,
    producer: Arc<Parker>,
    consumer: Arc<Parker>,
) -> (ChannelSender<T>, ChannelReceiver<T>) {
    assert!(capacity >= 1);
    let (data_tx, data_rx) = RingBuffer::new(capacity);
    // Room for every buffer that can be in flight, plus the consumer's one in hand.
    let (recycled_tx, recycled_rx) = RingBuffer::new(capacity + 2);
    (
        ChannelSender {
            data: data_tx,
            recycled: recycled_rx,
            consumer,
        },
        ChannelReceiver {
            data: data_rx,
            recycled: recycled_tx,
            producer,
        },
    )
}

impl<T> ChannelSender<T> {
    /// Tries to enqueue; gives the message back when the ring is full. Wakes the consumer.
    #[inline]
    pub fn try_send(&mut self, message: Message<T>) -> Result<(), Message<T>> {
        match self.data.push(message) {
            Ok(()) => {
                self.consumer.notify();
                Ok(())
            }
            Err(rtrb::PushError::Full(message)) => Err(message),
        }
    }

    /// An empty record buffer: one handed back by the consumer, or a new one.
    #[inline]
    pub fn take_buffer(&mut self, capacity: usize) -> Vec<Record<T>> {
        match self.recycled.pop() {
            Ok(buffer) => {
                debug_assert!(buffer.is_empty());
                buffer
            }
            Err(_) => Vec::with_capacity(capacity),
        }
    }

    /// True when the ring has no free slot.
    pub fn is_full(&self) -> bool {
        self.data.is_full()
    }

    /// True when the consumer was dropped (its shard stopped).
    pub fn is_abandoned(&self) -> bool {
        self.data.is_abandoned()
    }
}

impl<T> ChannelReceiver<T> {
    /// Takes the next message, if any. Wakes the producer, which may wait for a free slot.
    #[inline]
    pub fn try_recv(&mut self) -> Option<Message<T>> {
        let message = self.data.pop().ok()?;
        self.producer.notify();
        Some(message)
    }

    /// True when a message is waiting.
    #[inline]
    pub fn has_message(&self) -> bool {
        !self.data.is_empty()
    }

    /// Hands an emptied buffer back to the producer for reuse (dropped if the return ring is
    /// full, which only happens when the producer stopped taking buffers).
    #[inline]
    pub fn recycle(&mut self, buffer: Vec<Record<T>>) {
        debug_assert!(buffer.is_empty());
        let _ = self.recycled.push(buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::NO_TIMESTAMP;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn parkers() -> (Arc<Parker>, Arc<Parker>) {
        (Arc::new(Parker::new()), Arc::new(Parker::new()))
    }

    #[derive(Debug, Clone)]
    enum Op {
        Send(u32),
        Recv,
    }

    proptest! {
        /// The channel behaves like a bounded `VecDeque`: FIFO, rejects exactly when full, gives
        /// back the rejected message unchanged.
        #[test]
        fn behaves_like_a_bounded_vecdeque(
            capacity in 1usize..9,
            ops in proptest::collection::vec(
                prop_oneof![any::<u32>().prop_map(Op::Send), Just(Op::Recv)], 0..200),
        ) {
            let (p, c) = parkers();
            let (mut tx, mut rx) = channel::<u32>(capacity, p, c);
            let mut model = VecDeque::new();
            for op in ops {
                match op {
                    Op::Send(v) => {
                        let mut buffer = tx.take_buffer(4);
                        buffer.push(Record::new(NO_TIMESTAMP, v));
                        let message = Message::Data(Batch { records: buffer, emitted_ns: 0 });
                        match tx.try_send(message) {
                            Ok(()) => {
                                prop_assert!(model.len() < capacity);
                                model.push_back(v);
                            }
                            Err(Message::Data(batch)) => {
                                prop_assert_eq!(model.len(), capacity);
                                prop_assert_eq!(batch.records[0].value, v);
                            }
                            Err(Message::Signal(_)) => prop_assert!(false),
                        }
                    }
                    Op::Recv => match (rx.try_recv(), model.pop_front()) {
                        (None, None) => {}
                        (Some(Message::Data(mut batch)), Some(expected)) => {
                            prop_assert_eq!(batch.records.pop().map(|r| r.value), Some(expected));
                            rx.recycle(batch.records);
                        }
                        (got, expected) => prop_assert!(false, "got {:?}, expected {:?}", got, expected),
                    },
                }
            }
        }
    }

    /// Two threads exchange batches through a channel pair with parking between bursts; every
    /// message arrives, in order, and neither side hangs (a lost wake-up would stall a round
    /// trip until the park timeout, and a lost message would fail the sequence check).
    #[test]
    fn ping_pong_with_parking_never_loses_a_wakeup() {
        use std::time::{Duration, Instant};
        let (pa, pb) = parkers();
        let (mut a_to_b, mut b_from_a) = channel::<u64>(4, Arc::clone(&pa), Arc::clone(&pb));
        let (mut b_to_a, mut a_from_b) = channel::<u64>(4, Arc::clone(&pb), Arc::clone(&pa));
        const ROUNDS: u64 = 20_000;
        let pb_thread = Arc::clone(&pb);
        let echo = std::thread::spawn(move || {
            pb_thread.register_current_thread();
            let mut expected = 0;
            while expected < ROUNDS {
                match b_from_a.try_recv() {
                    Some(Message::Data(batch)) => {
                        assert_eq!(batch.records[0].value, expected);
                        expected += 1;
                        let mut message = Message::Data(batch);
                        loop {
                            match b_to_a.try_send(message) {
                                Ok(()) => break,
                                Err(back) => message = back,
                            }
                        }
                    }
                    Some(Message::Signal(_)) => unreachable!(),
                    None => {
                        pb_thread.prepare_park();
                        if b_from_a.has_message() {
                            pb_thread.cancel_park();
                        } else {
                            pb_thread.park(Duration::from_secs(5));
                        }
                    }
                }
            }
        });
        pa.register_current_thread();
        let started = Instant::now();
        let mut slowest = Duration::ZERO;
        for i in 0..ROUNDS {
            let round = Instant::now();
            let mut buffer = a_to_b.take_buffer(1);
            buffer.push(Record::new(NO_TIMESTAMP, i));
            assert!(
                a_to_b
                    .try_send(Message::Data(Batch {
                        records: buffer,
                        emitted_ns: 0
                    }))
                    .is_ok()
            );
            loop {
                if let Some(Message::Data(mut batch)) = a_from_b.try_recv() {
                    assert_eq!(batch.records.pop().map(|r| r.value), Some(i));
                    a_from_b.recycle(batch.records);
                    break;
                }
                pa.prepare_park();
                if a_from_b.has_message() {
                    pa.cancel_park();
                } else {
                    pa.park(Duration::from_secs(5));
                }
            }
            slowest = slowest.max(round.elapsed());
        }
        echo.join().expect("echo thread");
        // A lost wake-up would cost the full 5 s park timeout on some round.
        assert!(
            slowest < Duration::from_secs(4),
            "slowest round trip {slowest:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(60));
    }
}
