//! A producer context that remembers failed deliveries, so the source's dead-letter producer and
//! the at-least-once sink can fail the job instead of losing records silently (librdkafka's
//! default context drops delivery errors).
//!
//! librdkafka calls `delivery` from whichever thread polls the producer: the shard that owns
//! it. Successes cost one relaxed atomic increment; only a failure takes the mutex.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::ClientContext;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::ProducerContext;

/// Counts acknowledged and failed deliveries; keeps the first failure's text.
#[derive(Debug, Default)]
pub struct DeliveryRecorder {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_failure: Mutex<Option<String>>,
}

impl DeliveryRecorder {
    /// Records the broker acknowledged.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Records whose delivery failed.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// The first failure, if any.
    pub fn first_failure(&self) -> Option<String> {
        self.first_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl ClientContext for DeliveryRecorder {}

impl ProducerContext for DeliveryRecorder {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, message)) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                    use rdkafka::Message;
                    *self.first_failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!(
                        "{error} (topic '{}' partition {})",
                        message.topic(),
                        message.partition()
                    ));
                }
            }
        }
    }
}
