//! Typed state over rkyv: values are archived with the workspace's pinned format and read back
//! in place, without deserializing and, when the value is in a cached write buffer, without
//! copying.
//!
//! The archive is validated (bytecheck) once when an [`ArchivedRef`] is built; after that the
//! bytes are immutable (they sit behind an `Rc` the ref owns), so later access skips the check.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::ops::Deref;

use rkyv::api::high::{HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::{Archive, Portable, Serialize};

use crate::disk::Disk;
use crate::error::{Result, StorageError};
use crate::ids::{KeyGroup, OperatorId, StateKey};
use crate::store::{Store, ValueRef};

/// Typed access to the values of one operator, all of type `T`.
pub struct TypedState<T> {
    operator: OperatorId,
    scratch: RefCell<Vec<u8>>,
    _type: PhantomData<fn() -> T>,
}

/// A validated archived value borrowed from the store's memory.
pub struct ArchivedRef<D: Disk, T: Archive> {
    bytes: ValueRef<D>,
    _type: PhantomData<fn() -> T>,
}

impl<D: Disk, T: Archive> Deref for ArchivedRef<D, T>
where
    T::Archived: Portable,
{
    type Target = T::Archived;

    fn deref(&self) -> &T::Archived {
        // SAFETY: `TypedState::get` validated these exact bytes with `rkyv::access` before
        // building the ref, and `ValueRef` keeps them alive and unmodified (they sit behind an
        // `Rc` that no one mutates). The format features are pinned, so layout matches.
        unsafe { rkyv::access_unchecked::<T::Archived>(&self.bytes) }
    }
}

impl<D: Disk, T: Archive> std::fmt::Debug for ArchivedRef<D, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchivedRef")
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl<T> TypedState<T>
where
    T: Archive + for<'a> Serialize<HighSerializer<Vec<u8>, ArenaHandle<'a>, rancor::Error>>,
    T::Archived: Portable + for<'a> CheckBytes<HighValidator<'a, rancor::Error>>,
{
    /// Typed state for `operator`.
    pub fn new(operator: OperatorId) -> Self {
        Self {
            operator,
            scratch: RefCell::new(Vec::new()),
            _type: PhantomData,
        }
    }

    fn key<'a>(&self, key_group: KeyGroup, key: &'a [u8], namespace: &'a [u8]) -> StateKey<'a> {
        StateKey {
            operator: self.operator,
            key_group,
            key,
            namespace,
        }
    }

    /// Archives `value` and stores it.
    ///
    /// # Errors
    /// [`StorageError::Serialize`], or the store's write errors.
    pub async fn put<D: Disk>(
        &self,
        store: &Store<D>,
        key_group: KeyGroup,
        key: &[u8],
        namespace: &[u8],
        value: &T,
    ) -> Result<()> {
        // Take the scratch buffer out so no borrow is held across the await.
        let mut scratch = std::mem::take(&mut *self.scratch.borrow_mut());
        scratch.clear();
        let bytes =
            rkyv::api::high::to_bytes_in::<_, rancor::Error>(value, scratch).map_err(|e| {
                StorageError::Serialize {
                    reason: e.to_string(),
                }
            })?;
        let result = store.put(self.key(key_group, key, namespace), &bytes).await;
        *self.scratch.borrow_mut() = bytes;
        result
    }

    /// The archived value, validated, without deserializing.
    ///
    /// # Errors
    /// [`StorageError::Archive`] if the bytes are not a valid `T` archive; read errors.
    pub async fn get<D: Disk>(
        &self,
        store: &Store<D>,
        key_group: KeyGroup,
        key: &[u8],
        namespace: &[u8],
    ) -> Result<Option<ArchivedRef<D, T>>> {
        let Some(bytes) = store.get(self.key(key_group, key, namespace)).await? else {
            return Ok(None);
        };
        rkyv::access::<T::Archived, rancor::Error>(&bytes).map_err(|e| StorageError::Archive {
            file: "value".into(),
            offset: 0,
            reason: e.to_string(),
        })?;
        Ok(Some(ArchivedRef {
            bytes,
            _type: PhantomData,
        }))
    }

    /// Deletes the value; returns whether it existed.
    ///
    /// # Errors
    /// The store's write errors.
    pub async fn delete<D: Disk>(
        &self,
        store: &Store<D>,
        key_group: KeyGroup,
        key: &[u8],
        namespace: &[u8],
    ) -> Result<bool> {
        store.delete(self.key(key_group, key, namespace)).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::disk_sim::SimDisk;
    use crate::store::StoreConfig;

    #[derive(rkyv::Archive, rkyv::Serialize, Debug, PartialEq)]
    struct Window {
        count: u64,
        sum: i64,
        label: String,
    }

    #[test]
    fn typed_values_are_read_in_place() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let config = StoreConfig {
                    segment_bytes: 2 << 20,
                    ..StoreConfig::default()
                };
                let (store, _) = Store::open_on(SimDisk::new(1), config, None).await.unwrap();
                let state = TypedState::<Window>::new(OperatorId(4));
                let value = Window {
                    count: 3,
                    sum: -7,
                    label: "w1".into(),
                };
                state
                    .put(&store, KeyGroup(1), b"user", b"win-0", &value)
                    .await
                    .unwrap();
                let got = state
                    .get(&store, KeyGroup(1), b"user", b"win-0")
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(got.count, 3);
                assert_eq!(got.sum, -7);
                assert_eq!(got.label.as_str(), "w1");
                assert!(
                    state
                        .get(&store, KeyGroup(1), b"user", b"win-1")
                        .await
                        .unwrap()
                        .is_none()
                );
                // Bytes that are not a `Window` archive are rejected, not reinterpreted.
                let raw = StateKey {
                    operator: OperatorId(4),
                    key_group: KeyGroup(1),
                    key: b"bad",
                    namespace: b"",
                };
                store.put(raw, b"xy").await.unwrap();
                assert!(state.get(&store, KeyGroup(1), b"bad", b"").await.is_err());
                assert!(
                    state
                        .delete(&store, KeyGroup(1), b"user", b"win-0")
                        .await
                        .unwrap()
                );
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
