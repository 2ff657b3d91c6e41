//! One keyed table of the store: immutable values behind `Arc`s, in a
//! dashmap, with two versions per key.
//!
//! * **latest**: what every write so far made of the key, durable or not.
//!   Writers read and change it under the key's shard lock, so checks and
//!   changes are atomic, and queue the change to the persistence in the
//!   same critical section (persistence order equals change order).
//! * **visible**: the latest version the persistence has confirmed. Readers
//!   and watchers only ever see this one, so nothing a client is shown can
//!   be taken back by a crash.
//!
//! Every write gets a sequence number; the persistence publishes writes
//! (in its order) once they are durable, and a key's visible version only
//! ever moves forward. A failed write is reverted: latest falls back to
//! visible unless a later write has been made on top of it (which then
//! fails too: the persistence stops at its first failure).

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use tokio::sync::watch;

struct Slot<V> {
    visible: Option<Arc<V>>,
    visible_seq: u64,
    latest: Option<Arc<V>>,
    latest_seq: u64,
    watchers: Option<watch::Sender<Arc<V>>>,
}

/// How the persistence took a write.
pub(crate) enum Taken {
    /// Nothing to wait for (no persistence): visible at once.
    Applied,
    /// Queued; the persistence publishes it when it is durable.
    Queued,
}

/// A keyed table with latest and visible versions.
pub(crate) struct Table<K, V> {
    slots: DashMap<K, Slot<V>>,
    seq: AtomicU64,
}

impl<K: Eq + Hash + Clone, V> Table<K, V> {
    pub(crate) fn new() -> Self {
        Table {
            slots: DashMap::new(),
            seq: AtomicU64::new(0),
        }
    }

    /// A table holding `values` (replayed, hence visible).
    pub(crate) fn with(values: impl IntoIterator<Item = (K, V)>) -> Self {
        let t = Table::new();
        for (k, v) in values {
            let v = Some(Arc::new(v));
            t.slots.insert(
                k,
                Slot {
                    visible: v.clone(),
                    visible_seq: 0,
                    latest: v,
                    latest_seq: 0,
                    watchers: None,
                },
            );
        }
        t
    }

    /// The visible value of `key`.
    pub(crate) fn get(&self, key: &K) -> Option<Arc<V>> {
        self.slots.get(key).and_then(|s| s.visible.clone())
    }

    /// The latest value of `key` (visible or not).
    #[cfg(test)]
    pub(crate) fn latest(&self, key: &K) -> Option<Arc<V>> {
        self.slots.get(key).and_then(|s| s.latest.clone())
    }

    /// Every visible value with its key.
    pub(crate) fn visible(&self) -> Vec<(K, Arc<V>)> {
        self.slots
            .iter()
            .filter_map(|s| s.visible.clone().map(|v| (s.key().clone(), v)))
            .collect()
    }

    /// Visible values for which `keep` holds.
    pub(crate) fn filter(&self, mut keep: impl FnMut(&K, &V) -> bool) -> Vec<Arc<V>> {
        self.slots
            .iter()
            .filter_map(|s| {
                let v = s.visible.as_ref()?;
                keep(s.key(), v).then(|| v.clone())
            })
            .collect()
    }

    /// Every latest value with its key (for a snapshot: all that was
    /// queued, in a state the persistence will have written).
    pub(crate) fn latest_all(&self) -> Vec<(K, Arc<V>)> {
        self.slots
            .iter()
            .filter_map(|s| s.latest.clone().map(|v| (s.key().clone(), v)))
            .collect()
    }

    /// Number of visible values.
    pub(crate) fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.visible.is_some()).count()
    }

    /// Change `key`: `change` gets the latest value (`None`: absent) and
    /// gives the new one (`None`: remove) or refuses; `take` queues it to
    /// the persistence with its sequence number, inside the same critical
    /// section. Returns the new latest value.
    pub(crate) fn write<E>(
        &self,
        key: &K,
        change: impl FnOnce(Option<&V>) -> Result<Option<V>, E>,
        take: impl FnOnce(u64, Option<&Arc<V>>) -> Taken,
    ) -> Result<Option<Arc<V>>, E> {
        let (seq, next, taken) = match self.slots.entry(key.clone()) {
            Entry::Occupied(mut o) => {
                let slot = o.get_mut();
                let next = change(slot.latest.as_deref())?.map(Arc::new);
                let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
                slot.latest = next.clone();
                slot.latest_seq = seq;
                (seq, next.clone(), take(seq, next.as_ref()))
            }
            Entry::Vacant(v) => {
                let next = change(None)?.map(Arc::new);
                if next.is_none() {
                    return Ok(None);
                }
                let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
                v.insert(Slot {
                    visible: None,
                    visible_seq: 0,
                    latest: next.clone(),
                    latest_seq: seq,
                    watchers: None,
                });
                (seq, next.clone(), take(seq, next.as_ref()))
            }
        };
        if let Taken::Applied = taken {
            self.publish(key, seq, next.clone());
        }
        Ok(next)
    }

    /// Write `seq` of `key` is durable: make it visible (unless a later
    /// one already is) and tell the watchers.
    pub(crate) fn publish(&self, key: &K, seq: u64, value: Option<Arc<V>>) {
        let gone = {
            let Some(mut slot) = self.slots.get_mut(key) else {
                return;
            };
            if seq <= slot.visible_seq {
                return;
            }
            slot.visible = value.clone();
            slot.visible_seq = seq;
            match &value {
                Some(v) => {
                    if let Some(tx) = &slot.watchers {
                        // Replaced even while nobody listens, so the next
                        // subscriber starts from what is visible now.
                        tx.send_replace(v.clone());
                    }
                }
                // Dropping the sender ends every watch stream of the key.
                None => slot.watchers = None,
            }
            value.is_none() && slot.latest.is_none() && slot.latest_seq == seq
        };
        if gone {
            self.slots
                .remove_if(key, |_, s| s.latest.is_none() && s.latest_seq == seq);
        }
    }

    /// Write `seq` of `key` failed: the latest value goes back to the
    /// visible one unless a later write was made on top of it.
    pub(crate) fn revert(&self, key: &K, seq: u64) {
        let gone = {
            let Some(mut slot) = self.slots.get_mut(key) else {
                return;
            };
            if slot.latest_seq != seq {
                return;
            }
            slot.latest = slot.visible.clone();
            slot.latest_seq = slot.visible_seq;
            slot.visible.is_none()
        };
        if gone {
            self.slots
                .remove_if(key, |_, s| s.visible.is_none() && s.latest.is_none());
        }
    }

    /// Subscribe to the visible versions of `key`; the channel closes when
    /// the key is removed.
    pub(crate) fn watch(&self, key: &K) -> Option<watch::Receiver<Arc<V>>> {
        let mut slot = self.slots.get_mut(key)?;
        let current = slot.visible.clone()?;
        let tx = slot
            .watchers
            .get_or_insert_with(|| watch::channel(current).0);
        Some(tx.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(t: &Table<&'static str, u32>, k: &'static str, v: u32, taken: Taken) -> u64 {
        let mut seq = 0;
        let _ = t.write::<()>(
            &k,
            |_| Ok(Some(v)),
            |s, _| {
                seq = s;
                taken
            },
        );
        seq
    }

    #[test]
    fn a_queued_write_is_invisible_until_published() {
        let t = Table::new();
        let s1 = put(&t, "a", 1, Taken::Queued);
        assert_eq!(t.get(&"a"), None);
        assert_eq!(t.latest(&"a").as_deref(), Some(&1));
        let s2 = put(&t, "a", 2, Taken::Queued);
        t.publish(&"a", s1, Some(Arc::new(1)));
        assert_eq!(t.get(&"a").as_deref(), Some(&1));
        t.publish(&"a", s2, Some(Arc::new(2)));
        // An older publication arriving late changes nothing.
        t.publish(&"a", s1, Some(Arc::new(1)));
        assert_eq!(t.get(&"a").as_deref(), Some(&2));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_failed_write_falls_back_to_what_is_visible() {
        let t = Table::new();
        let s1 = put(&t, "a", 1, Taken::Queued);
        t.publish(&"a", s1, Some(Arc::new(1)));
        let s2 = put(&t, "a", 2, Taken::Queued);
        t.revert(&"a", s2);
        assert_eq!(t.latest(&"a").as_deref(), Some(&1));
        let s3 = put(&t, "b", 3, Taken::Queued);
        t.revert(&"b", s3);
        assert!(t.latest(&"b").is_none());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_removal_ends_watches_once_it_is_published() {
        let t = Table::new();
        put(&t, "a", 1, Taken::Applied);
        let rx = t.watch(&"a").unwrap();
        let mut seq = 0;
        let _ = t.write::<()>(
            &"a",
            |_| Ok(None),
            |s, _| {
                seq = s;
                Taken::Queued
            },
        );
        assert_eq!(t.get(&"a").as_deref(), Some(&1), "still visible");
        assert!(rx.has_changed().is_ok());
        t.publish(&"a", seq, None);
        assert!(t.get(&"a").is_none());
        assert!(rx.has_changed().is_err(), "the watch ended");
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn refusals_change_nothing() {
        let t: Table<&str, u32> = Table::new();
        put(&t, "a", 1, Taken::Applied);
        let r = t.write(&"a", |_| Err::<Option<u32>, _>("no"), |_, _| Taken::Applied);
        assert!(matches!(r, Err("no")));
        assert_eq!(t.get(&"a").as_deref(), Some(&1));
    }
}
