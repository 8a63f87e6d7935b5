//! A source reader's checkpoint position: for every partition it owns, the next offset to read
//! and, in bounded mode, the offset it stops at.
//!
//! Stop offsets travel in the position so that a restarted bounded job stops where the first
//! run decided (the high-water marks when the job first started), not at whatever the topic
//! holds by the time of the restart — as Flink's bounded `KafkaSource` keeps them in its split
//! state.
//!
//! Encoding (little-endian): `b'K'`, version `1`, entry count `u32`, then per entry the topic
//! (`u16` length, UTF-8 bytes), partition `i32`, next offset `i64`, stop offset `i64` (`-1`:
//! unbounded). Decoding checks every length and rejects trailing bytes.

use crate::error::KafkaConnectorError;

const MAGIC: u8 = b'K';
const VERSION: u8 = 1;
/// The stop offset of a partition read without end.
pub const UNBOUNDED: i64 = -1;

/// Where one partition stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionPosition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset of the next record to emit.
    pub next: i64,
    /// Stop before this offset ([`UNBOUNDED`]: never stop).
    pub stop: i64,
}

/// Encodes positions (see the module doc).
pub fn encode(positions: &[PartitionPosition]) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + positions.len() * 32);
    out.push(MAGIC);
    out.push(VERSION);
    let count = u32::try_from(positions.len()).expect("fewer than 2^32 partitions");
    out.extend_from_slice(&count.to_le_bytes());
    for p in positions {
        let topic = u16::try_from(p.topic.len()).expect("Kafka topic names are at most 249 bytes");
        out.extend_from_slice(&topic.to_le_bytes());
        out.extend_from_slice(p.topic.as_bytes());
        out.extend_from_slice(&p.partition.to_le_bytes());
        out.extend_from_slice(&p.next.to_le_bytes());
        out.extend_from_slice(&p.stop.to_le_bytes());
    }
    out
}

/// Reads `N` bytes at `*at`, advancing it.
fn take<const N: usize>(
    bytes: &[u8],
    at: &mut usize,
    what: &str,
) -> Result<[u8; N], KafkaConnectorError> {
    let end = at
        .checked_add(N)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            KafkaConnectorError::BadPosition(format!("cut short reading {what} at byte {at}"))
        })?;
    let out: [u8; N] = bytes[*at..end].try_into().expect("length checked");
    *at = end;
    Ok(out)
}

/// Decodes what [`encode`] wrote.
///
/// # Errors
/// [`KafkaConnectorError::BadPosition`] naming the first problem and its byte offset.
pub fn decode(bytes: &[u8]) -> Result<Vec<PartitionPosition>, KafkaConnectorError> {
    let mut at = 0;
    let [magic, version] = take::<2>(bytes, &mut at, "the header")?;
    if magic != MAGIC || version != VERSION {
        return Err(KafkaConnectorError::BadPosition(format!(
            "header {magic:#04x} {version:#04x}, expected {MAGIC:#04x} {VERSION:#04x}"
        )));
    }
    let count = u32::from_le_bytes(take(bytes, &mut at, "the entry count")?);
    let mut out = Vec::with_capacity(count.min(1 << 16) as usize);
    for _ in 0..count {
        let len = u16::from_le_bytes(take(bytes, &mut at, "a topic length")?) as usize;
        let end = at
            .checked_add(len)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| {
                KafkaConnectorError::BadPosition(format!("topic name cut short at byte {at}"))
            })?;
        let topic = std::str::from_utf8(&bytes[at..end])
            .map_err(|_| {
                KafkaConnectorError::BadPosition(format!("topic at byte {at} is not UTF-8"))
            })?
            .to_string();
        at = end;
        let partition = i32::from_le_bytes(take(bytes, &mut at, "a partition")?);
        let next = i64::from_le_bytes(take(bytes, &mut at, "an offset")?);
        let stop = i64::from_le_bytes(take(bytes, &mut at, "a stop offset")?);
        out.push(PartitionPosition {
            topic,
            partition,
            next,
            stop,
        });
    }
    if at != bytes.len() {
        return Err(KafkaConnectorError::BadPosition(format!(
            "{} trailing bytes after {count} entries",
            bytes.len() - at
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn position() -> impl Strategy<Value = PartitionPosition> {
        (
            "[a-z._-]{1,40}",
            0..1000i32,
            -2..i64::MAX,
            prop_oneof![Just(UNBOUNDED), 0..i64::MAX],
        )
            .prop_map(|(topic, partition, next, stop)| PartitionPosition {
                topic,
                partition,
                next,
                stop,
            })
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(positions in proptest::collection::vec(position(), 0..20)) {
            prop_assert_eq!(decode(&encode(&positions)).unwrap(), positions);
        }

        #[test]
        fn every_truncation_is_rejected(positions in proptest::collection::vec(position(), 1..5), cut in 0usize..1000) {
            let bytes = encode(&positions);
            let cut = cut % bytes.len();
            prop_assert!(decode(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn trailing_bytes_and_foreign_headers_are_rejected() {
        let mut bytes = encode(&[]);
        bytes.push(0);
        assert!(decode(&bytes).unwrap_err().to_string().contains("trailing"));
        assert!(
            decode(b"F\x01\0\0\0\0")
                .unwrap_err()
                .to_string()
                .contains("header")
        );
    }
}
