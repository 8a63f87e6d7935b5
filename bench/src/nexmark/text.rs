//! `Text`: the string type of every Nexmark string field.
//!
//! The generator must not allocate per event (the engine's target is millions of events per
//! second per core, generation included), so a generated string is never an owned `String`. A
//! `Text` is one of three representations, all 24 bytes:
//!
//! * `Static`: a slice of a process-wide pool that lives for the whole process (the `extra`
//!   padding pool, the channel/URL table, name and city lists, the `str()` letter pool);
//! * `Inline`: up to [`INLINE_CAPACITY`] bytes stored in the value itself (generated e-mail
//!   addresses are at most 15 bytes, credit cards exactly 19);
//! * `Shared`: an `Arc<str>`, for longer strings read from a file (one allocation per string,
//!   shared by every clone).
//!
//! Invariants: the representation is invisible. Equality, ordering, hashing, `Debug`, `Display`
//! and serialization all go through [`Text::as_str`], so a `Static` and a `Shared` text with the
//! same content are equal and hash alike. The inline bytes are always valid UTF-8, because they
//! are only ever copied from `&str`s (whole strings, never split inside a character).

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// The longest string a `Text` stores inline: 22 bytes keep `Text` at 24 bytes (tag + length +
/// bytes), the same as a `&str` plus tag. Generated e-mails (≤ 15) and credit cards (19) fit.
pub const INLINE_CAPACITY: usize = 22;

/// An immutable UTF-8 string that is a pool slice, an inline short string, or a shared `Arc<str>`.
#[derive(Clone)]
pub struct Text(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Inline(Inline),
    Shared(Arc<str>),
}

#[derive(Clone, Copy)]
struct Inline {
    len: u8,
    bytes: [u8; INLINE_CAPACITY],
}

// Bid holds three of these; its size is part of the hot path's memory traffic.
const _: () = assert!(std::mem::size_of::<Text>() == 24);
const _: () = assert!(INLINE_CAPACITY <= u8::MAX as usize);

impl Text {
    /// The empty string (a `Static` slice; no allocation).
    pub const EMPTY: Text = Text(Repr::Static(""));

    /// A text borrowing a string that lives for the whole process.
    pub const fn from_static(s: &'static str) -> Text {
        Text(Repr::Static(s))
    }

    /// A text holding a copy of `s` inline, or `None` when `s` is longer than
    /// [`INLINE_CAPACITY`] bytes.
    pub fn inline(s: &str) -> Option<Text> {
        let mut builder = InlineBuilder::new();
        if builder.try_push(s) {
            Some(builder.finish())
        } else {
            None
        }
    }

    /// A text sharing an existing `Arc<str>` (no copy).
    pub fn shared(s: Arc<str>) -> Text {
        Text(Repr::Shared(s))
    }

    /// A text with the content of `s`: inline when it fits (no allocation), otherwise one new
    /// `Arc<str>`. This is what readers of event files use.
    pub fn copy_from(s: &str) -> Text {
        Text::inline(s).unwrap_or_else(|| Text(Repr::Shared(Arc::from(s))))
    }

    /// The content.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            Repr::Shared(s) => s,
            Repr::Inline(inline) => {
                let bytes = &inline.bytes[..usize::from(inline.len)];
                // Never fails: inline bytes are copied from whole `&str`s (module invariant).
                // The check costs a few ns on ≤ 22 bytes and keeps this crate free of `unsafe`.
                std::str::from_utf8(bytes).expect("inline Text holds valid UTF-8")
            }
        }
    }

    /// Whether this text borrows a process-wide pool (true for every generated string except
    /// e-mail and credit card). Used by tests that check the generator does not allocate.
    pub fn is_static(&self) -> bool {
        matches!(self.0, Repr::Static(_))
    }

    /// Whether this text is stored inline.
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline(_))
    }
}

/// Builds an inline `Text` from several pieces without allocating (e-mail, credit card).
pub(crate) struct InlineBuilder {
    inline: Inline,
}

impl InlineBuilder {
    pub(crate) fn new() -> InlineBuilder {
        InlineBuilder {
            inline: Inline {
                len: 0,
                bytes: [0; INLINE_CAPACITY],
            },
        }
    }

    /// Appends `s` if it fits; returns false (and appends nothing) otherwise.
    pub(crate) fn try_push(&mut self, s: &str) -> bool {
        let start = usize::from(self.inline.len);
        let end = start + s.len();
        if end > INLINE_CAPACITY {
            return false;
        }
        self.inline.bytes[start..end].copy_from_slice(s.as_bytes());
        self.inline.len = end as u8;
        true
    }

    /// Appends `s`.
    ///
    /// # Panics
    /// If the result would exceed [`INLINE_CAPACITY`]; callers push pieces of bounded length.
    pub(crate) fn push(&mut self, s: &str) {
        assert!(self.try_push(s), "inline text overflow");
    }

    /// Appends one ASCII byte.
    ///
    /// # Panics
    /// If `b` is not ASCII or the text is full.
    pub(crate) fn push_ascii(&mut self, b: u8) {
        assert!(b.is_ascii());
        let at = usize::from(self.inline.len);
        assert!(at < INLINE_CAPACITY, "inline text overflow");
        self.inline.bytes[at] = b;
        self.inline.len += 1;
    }

    pub(crate) fn finish(self) -> Text {
        Text(Repr::Inline(self.inline))
    }
}

impl Default for Text {
    fn default() -> Text {
        Text::EMPTY
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Text) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Text) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Text {
    // Must hash exactly like `str` so that `Borrow<str>` lookups in maps work.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

/// Routes like the `str` it holds, so a text key lands on the same shard as the same string.
impl corestrom_runtime::StableHash for Text {
    fn stable_hash(&self) -> u64 {
        self.as_str().stable_hash()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&'static str> for Text {
    fn from(s: &'static str) -> Text {
        Text::from_static(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text::copy_from(&s)
    }
}

impl From<Arc<str>> for Text {
    fn from(s: Arc<str>) -> Text {
        Text::shared(s)
    }
}

impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Text::copy_from(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn text_representations_are_invisible() {
        let a = Text::from_static("Google");
        let b = Text::inline("Google").unwrap();
        let c = Text::shared(Arc::from("Google"));
        assert!(a.is_static());
        assert!(b.is_inline());
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(a.cmp(&c), Ordering::Equal);
        let set: HashSet<Text> = [a, b, c].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert!(set.contains("Google"));
        assert_eq!(format!("{:?}", Text::from_static("a\"b")), "\"a\\\"b\"");
        assert_eq!(
            serde_json::to_string(&Text::from_static("x\\y")).unwrap(),
            r#""x\\y""#
        );
        let back: Text = serde_json::from_str(r#""x\\y""#).unwrap();
        assert_eq!(back, "x\\y");
    }

    #[test]
    fn text_inline_capacity_boundary() {
        let fits = "a".repeat(INLINE_CAPACITY);
        let too_long = "a".repeat(INLINE_CAPACITY + 1);
        assert!(Text::inline(&fits).is_some());
        assert!(Text::inline(&too_long).is_none());
        assert!(Text::copy_from(&fits).is_inline());
        let shared = Text::copy_from(&too_long);
        assert!(!shared.is_inline() && !shared.is_static());
        assert_eq!(shared.len(), INLINE_CAPACITY + 1);
        // Multi-byte characters are copied whole.
        let t = Text::copy_from("é€😀");
        assert_eq!(&*t, "é€😀");
    }
}
