//! Values fetched from Keystone, cached per key until they go stale, with
//! single-flight refresh: callers that find the value stale at the same time
//! share one request instead of each sending their own.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use occi_so_sdk::BackendError;
use tokio::sync::OnceCell;

type Flight<V> = Arc<OnceCell<Result<V, BackendError>>>;

struct Entry<V> {
    value: Option<V>,
    flight: Option<Flight<V>>,
}

/// A keyed cache of values (tokens, resolved endpoints).
pub(crate) struct TokenCache<V> {
    entries: Mutex<HashMap<String, Entry<V>>>,
}

impl<V: Clone + Send + Sync + 'static> TokenCache<V> {
    pub(crate) fn new() -> Self {
        TokenCache {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<String, Entry<V>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached value of `key` if `fresh` says it still is; otherwise the
    /// result of one shared call of `fetch`. A failed fetch is not cached.
    /// If the caller running the fetch is cancelled, a waiting caller takes
    /// over with its own `fetch`.
    pub(crate) async fn get<F, Fut>(
        &self,
        key: &str,
        fresh: impl Fn(&V) -> bool,
        fetch: F,
    ) -> Result<V, BackendError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, BackendError>>,
    {
        let flight = {
            let mut entries = self.entries();
            let entry = entries.entry(key.to_string()).or_insert(Entry {
                value: None,
                flight: None,
            });
            if let Some(v) = entry.value.as_ref().filter(|v| fresh(v)) {
                return Ok(v.clone());
            }
            entry
                .flight
                .get_or_insert_with(|| Arc::new(OnceCell::new()))
                .clone()
        };
        let result = flight.get_or_init(fetch).await.clone();
        let mut entries = self.entries();
        if let Some(entry) = entries.get_mut(key) {
            if entry
                .flight
                .as_ref()
                .is_some_and(|f| Arc::ptr_eq(f, &flight))
            {
                entry.flight = None;
                if let Ok(v) = &result {
                    entry.value = Some(v.clone());
                }
            }
        }
        result
    }

    /// Forget the value of `key` if `is_it` recognises it (so a refresh that
    /// already replaced it is kept).
    pub(crate) fn invalidate(&self, key: &str, is_it: impl Fn(&V) -> bool) {
        let mut entries = self.entries();
        if let Some(entry) = entries.get_mut(key) {
            if entry.value.as_ref().is_some_and(is_it) {
                entry.value = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let cache = Arc::new(TokenCache::<u32>::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let cache = cache.clone();
            let calls = calls.clone();
            tasks.push(tokio::spawn(async move {
                cache
                    .get(
                        "p",
                        |_| true,
                        || async {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok(7)
                        },
                    )
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), 7);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // cached now
        let v = cache.get("p", |_| true, || async { Ok(8) }).await.unwrap();
        assert_eq!(v, 7);
        // stale: refetched
        let v = cache.get("p", |_| false, || async { Ok(9) }).await.unwrap();
        assert_eq!(v, 9);
    }

    #[tokio::test]
    async fn failures_are_shared_but_not_cached() {
        let cache = TokenCache::<u32>::new();
        let e = cache
            .get(
                "p",
                |_| true,
                || async {
                    Err(BackendError::Unavailable {
                        message: "down".into(),
                    })
                },
            )
            .await;
        assert!(
            matches!(&e, Err(BackendError::Unavailable { message }) if message == "down"),
            "the fetch's own error: {e:?}"
        );
        let v = cache.get("p", |_| true, || async { Ok(1) }).await.unwrap();
        assert_eq!(v, 1);
    }

    #[tokio::test]
    async fn invalidate_only_forgets_the_value_it_recognises() {
        let cache = TokenCache::<u32>::new();
        cache.get("p", |_| true, || async { Ok(1) }).await.unwrap();
        cache.invalidate("p", |v| *v == 2);
        assert_eq!(
            cache.get("p", |_| true, || async { Ok(3) }).await.unwrap(),
            1
        );
        cache.invalidate("p", |v| *v == 1);
        assert_eq!(
            cache.get("p", |_| true, || async { Ok(3) }).await.unwrap(),
            3
        );
    }
}
