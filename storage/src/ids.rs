//! Newtypes for the ids the store deals in: operators, key groups, segments.

/// The operator that owns a piece of keyed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OperatorId(pub u32);

/// A key group: the unit of state redistribution (Flink's model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyGroup(pub u16);

/// One append-only segment file of a shard's log; ids grow monotonically and are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId(pub u32);

impl SegmentId {
    /// The file name of this segment inside the shard directory.
    pub fn file_name(self) -> String {
        format!("seg-{:08}.log", self.0)
    }

    /// Parses a file name written by [`SegmentId::file_name`].
    pub fn from_file_name(name: &str) -> Option<Self> {
        let digits = name.strip_prefix("seg-")?.strip_suffix(".log")?;
        if digits.len() != 8 {
            return None;
        }
        digits.parse().ok().map(SegmentId)
    }
}

/// The full address of one piece of keyed state: `(operator, key group, key, namespace)`.
///
/// `key` is the user key's bytes; `namespace` is e.g. an encoded window (empty if unused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateKey<'a> {
    /// Owning operator.
    pub operator: OperatorId,
    /// Key group of `key`.
    pub key_group: KeyGroup,
    /// User key bytes.
    pub key: &'a [u8],
    /// Namespace bytes (window, timer domain, ...); may be empty.
    pub namespace: &'a [u8],
}

/// Which keys a scan visits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// All keys of one operator.
    Operator(OperatorId),
    /// All keys of one operator in one key group.
    KeyGroup(OperatorId, KeyGroup),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_file_names_round_trip() {
        let id = SegmentId(42);
        assert_eq!(id.file_name(), "seg-00000042.log");
        assert_eq!(SegmentId::from_file_name(&id.file_name()), Some(id));
        assert_eq!(SegmentId::from_file_name("seg-42.log"), None);
        assert_eq!(SegmentId::from_file_name("LOCK"), None);
    }
}
