//! q13, bounded side input join: every bid with the value of the side-input row whose key is
//! `auction mod 10000` (SPEC.md §3.2).
//!
//! The side input is a small static table, so this is a lookup join (as in the Flink Nexmark
//! project's processing-time lookup join): the table ([`SideInput`]) is loaded once before the
//! job starts, shared read-only by every shard, and each bid does one hash lookup; nothing is
//! kept in state and no bid waits. A bid whose key has no row is dropped (inner join). The
//! table has one row per key (a duplicate key is an error when loading it), so every bid
//! yields at most one row. Append-only.
//!
//! [`Query::Q13`](super::Query::Q13) uses the table SPEC.md defines ([`SideInput::spec`], the
//! same rows as the file `bench/peers/flink/run.sh` writes for Flink); [`build_with`] takes any
//! table, e.g. one read with [`SideInput::from_csv_file`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use corestrom_operators::prelude::*;
use rustc_hash::FxHashMap;
use thiserror::Error;

use crate::nexmark::model::{Bid, Event};
use crate::nexmark::result::Row;
use crate::nexmark::result_sink::ResultRow;
use crate::nexmark::text::Text;

/// SPEC.md's side table size: keys `0..10_000`, and the modulus of the lookup key.
pub const SIDE_ROWS: i64 = 10_000;

/// (auction, bidder, price, dateTime, value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Q13Row {
    pub auction: i64,
    pub bidder: i64,
    pub price: i64,
    pub date_time: i64,
    pub value: Text,
}

/// The static side table: `value` by `key`.
#[derive(Clone, Debug, Default)]
pub struct SideInput {
    values: FxHashMap<i64, Text>,
}

/// Why a side-input file could not be loaded.
#[derive(Debug, Error)]
pub enum SideInputError {
    #[error("cannot read side input {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: expected `key,value` with an integer key, got {text:?}")]
    Malformed {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error("{path}:{line}: key {key} appears twice")]
    DuplicateKey {
        path: PathBuf,
        line: usize,
        key: i64,
    },
}

impl SideInput {
    /// SPEC.md's table: `SIDE_ROWS` rows `k,k` for `k = 0..SIDE_ROWS`.
    pub fn spec() -> SideInput {
        SideInput {
            values: (0..SIDE_ROWS)
                .map(|k| (k, Text::copy_from(&k.to_string())))
                .collect(),
        }
    }

    /// Reads a CSV file of `key,value` lines (the value is the rest of the line; empty lines
    /// are skipped), as Flink's `csv` format reads SPEC.md's side file.
    pub fn from_csv_file(path: &Path) -> Result<SideInput, SideInputError> {
        let text = std::fs::read_to_string(path).map_err(|source| SideInputError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut values = FxHashMap::default();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let malformed = || SideInputError::Malformed {
                path: path.to_path_buf(),
                line: index + 1,
                text: line.to_string(),
            };
            let (key, value) = line.split_once(',').ok_or_else(malformed)?;
            let key: i64 = key.trim().parse().map_err(|_| malformed())?;
            if values.insert(key, Text::copy_from(value)).is_some() {
                return Err(SideInputError::DuplicateKey {
                    path: path.to_path_buf(),
                    line: index + 1,
                    key,
                });
            }
        }
        Ok(SideInput { values })
    }

    /// The value of `key`, if the table has it.
    pub fn get(&self, key: i64) -> Option<&Text> {
        self.values.get(&key)
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// q13 with the given side table.
pub fn build_with(events: &Stream<Event>, side: Arc<SideInput>) -> Stream<Q13Row> {
    // Each shard's copy of the closure holds its own `Arc` (cloned once, at build time), so
    // the per-bid lookup touches no shared reference count.
    events.filter_map(move |e: Event| {
        let bid: Bid = e.into_bid()?;
        let value = side.get(bid.auction.rem_euclid(SIDE_ROWS))?;
        Some(Q13Row {
            auction: bid.auction,
            bidder: bid.bidder,
            price: bid.price,
            date_time: bid.date_time,
            value: value.clone(),
        })
    })
}

pub(crate) fn build(events: &Stream<Event>) -> Stream<Q13Row> {
    build_with(events, Arc::new(SideInput::spec()))
}

impl ResultRow for Q13Row {
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W> {
        row.int("auction", self.auction)
            .int("bidder", self.bidder)
            .int("price", self.price)
            .timestamp("dateTime", self.date_time)
            .str("value", &self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(f.path(), text).expect("write");
        f
    }

    #[test]
    fn the_spec_table_equals_the_file_flink_reads() {
        let text: String = (0..SIDE_ROWS).map(|k| format!("{k},{k}\n")).collect();
        let f = file(&text);
        let read = SideInput::from_csv_file(f.path()).expect("load");
        let spec = SideInput::spec();
        assert_eq!(read.len(), SIDE_ROWS as usize);
        for k in 0..SIDE_ROWS {
            assert_eq!(read.get(k), spec.get(k));
        }
        assert_eq!(spec.get(SIDE_ROWS), None);
    }

    #[test]
    fn malformed_lines_and_duplicate_keys_name_the_line() {
        let err = SideInput::from_csv_file(file("1,a\nx,b\n").path()).unwrap_err();
        assert!(
            matches!(err, SideInputError::Malformed { line: 2, .. }),
            "{err}"
        );
        let err = SideInput::from_csv_file(file("1,a\n\n1,b\n").path()).unwrap_err();
        assert!(
            matches!(
                err,
                SideInputError::DuplicateKey {
                    line: 3,
                    key: 1,
                    ..
                }
            ),
            "{err}"
        );
    }
}
