//! User-defined mixins (OCCI `POST /-/`): tags a tenant defines and
//! attaches to its instances. Each tenant sees only its own. Definitions
//! are documents of the store (space `mixins`, one per tenant), so they go
//! through the same persistence as the instances (the associations live on
//! the instances) and are visible only once durable.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::store::{DocKey, JournalError, Store};

/// The store space of the definitions.
const SPACE: &str = "mixins";

/// One user-defined mixin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserMixin {
    /// Scheme (ends with `#`).
    pub scheme: String,
    /// Term.
    pub term: String,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Collection path, e.g. `/my_stuff/blue/`.
    pub location: String,
    /// Related (depended-on) mixin ids.
    #[serde(default)]
    pub rel: Vec<String>,
}

impl UserMixin {
    /// `scheme + term`.
    pub fn id(&self) -> String {
        format!("{}{}", self.scheme, self.term)
    }
}

/// Why the definitions could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MixinError {
    /// The store could not keep the change.
    #[error(transparent)]
    Store(#[from] JournalError),
    /// The file of an earlier version could not be imported.
    #[error("user mixins file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
}

/// Every tenant's user mixins.
pub struct Mixins {
    store: Arc<Store>,
}

impl Mixins {
    /// The definitions kept in `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Mixins { store }
    }

    /// The definitions of `store`, after importing the `mixins.json` an
    /// earlier version kept in `dir` (imported once, then renamed
    /// `mixins.json.imported`).
    pub async fn open(store: Arc<Store>, dir: &Path) -> Result<Self, MixinError> {
        let mixins = Mixins::new(store);
        let path = dir.join("mixins.json");
        let err = |message: String| MixinError::File {
            path: path.display().to_string(),
            message,
        };
        let read = {
            let path = path.clone();
            occi_so_sdk::files::read_regular_async(
                path,
                64 << 20,
                std::time::Duration::from_secs(30),
            )
            .await
        };
        let bytes = match read {
            Ok(b) => b,
            Err(occi_so_sdk::files::ReadError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(mixins)
            }
            Err(e) => return Err(err(e.to_string())),
        };
        #[derive(Deserialize)]
        struct OldFile {
            tenants: std::collections::BTreeMap<String, Vec<UserMixin>>,
        }
        let old: OldFile = serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))?;
        for (tenant, defined) in old.tenants {
            if mixins.has_any(&tenant) {
                continue;
            }
            mixins.define(&tenant, defined).await?;
        }
        let done = path.with_extension("json.imported");
        tokio::task::spawn_blocking(move || std::fs::rename(&path, &done))
            .await
            .map_err(|e| MixinError::File {
                path: "mixins.json".into(),
                message: e.to_string(),
            })?
            .map_err(|e| MixinError::File {
                path: "mixins.json".into(),
                message: e.to_string(),
            })?;
        tracing::info!("user mixins imported from mixins.json into the journal");
        Ok(mixins)
    }

    /// The tenant's mixins.
    pub fn of(&self, tenant: &str) -> Vec<UserMixin> {
        self.store
            .document(&DocKey::new(SPACE, tenant))
            .and_then(|v| serde_json::from_value(v.as_ref().clone()).ok())
            .unwrap_or_default()
    }

    /// Whether the tenant has any.
    pub fn has_any(&self, tenant: &str) -> bool {
        self.store
            .document(&DocKey::new(SPACE, tenant))
            .is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty()))
    }

    /// The tenant's mixin with collection `location`.
    pub fn by_location(&self, tenant: &str, location: &str) -> Option<UserMixin> {
        self.of(tenant).into_iter().find(|m| m.location == location)
    }

    /// The tenant's mixin `id` (`scheme+term`).
    pub fn by_id(&self, tenant: &str, id: &str) -> Option<UserMixin> {
        self.of(tenant).into_iter().find(|m| m.id() == id)
    }

    /// Adds the mixins, durably. The caller has checked them against the
    /// provider's categories; a clash with the tenant's own mixins (say two
    /// concurrent definitions) is checked again here, atomically:
    /// `Ok(Some(id))` names the clash and nothing is added.
    pub async fn define(
        &self,
        tenant: &str,
        mixins: Vec<UserMixin>,
    ) -> Result<Option<String>, MixinError> {
        let written = self
            .store
            .update_document(&DocKey::new(SPACE, tenant), |current| {
                let mut mine = parse(current);
                if let Some(clash) = mixins.iter().find(|m| {
                    mine.iter()
                        .any(|x| x.id() == m.id() || x.location == m.location)
                }) {
                    return Err(clash.id());
                }
                mine.extend(mixins);
                Ok(Some(to_value(&mine)))
            });
        match written {
            Ok(durable) => {
                durable.wait().await?;
                Ok(None)
            }
            Err(clash) => Ok(Some(clash)),
        }
    }

    /// Removes mixin `id` of the tenant, durably; `None` if it had none.
    pub async fn remove(&self, tenant: &str, id: &str) -> Result<Option<UserMixin>, MixinError> {
        let mut removed = None;
        let written = self
            .store
            .update_document(&DocKey::new(SPACE, tenant), |current| {
                let mut mine = parse(current);
                let Some(i) = mine.iter().position(|m| m.id() == id) else {
                    return Err(());
                };
                removed = Some(mine.remove(i));
                Ok((!mine.is_empty()).then(|| to_value(&mine)))
            });
        match written {
            Ok(durable) => {
                durable.wait().await?;
                Ok(removed)
            }
            Err(()) => Ok(None),
        }
    }
}

fn parse(v: Option<&serde_json::Value>) -> Vec<UserMixin> {
    v.and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

fn to_value(mixins: &[UserMixin]) -> serde_json::Value {
    serde_json::Value::Array(
        mixins
            .iter()
            .filter_map(|m| serde_json::to_value(m).ok())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::JournalOptions;

    fn m(term: &str) -> UserMixin {
        UserMixin {
            scheme: "http://example.org/tags#".into(),
            term: term.into(),
            title: None,
            location: format!("/tags/{term}/"),
            rel: vec![],
        }
    }

    fn opts() -> JournalOptions {
        JournalOptions {
            fsync: false,
            compact_after: 1000,
            sealer: None,
        }
    }

    #[tokio::test]
    async fn definitions_survive_a_reopen_and_stay_per_tenant() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, _) = Store::open(dir.path(), opts()).unwrap();
            let store = Arc::new(store);
            let mixins = Mixins::open(store.clone(), dir.path()).await.unwrap();
            mixins
                .define("t1", vec![m("blue"), m("red")])
                .await
                .unwrap();
            mixins.define("t2", vec![m("blue")]).await.unwrap();
            assert_eq!(
                mixins.define("t2", vec![m("blue")]).await.unwrap(),
                Some("http://example.org/tags#blue".into()),
                "a clash names the mixin and adds nothing"
            );
            let gone = mixins
                .remove("t1", "http://example.org/tags#red")
                .await
                .unwrap();
            assert_eq!(gone, Some(m("red")));
            assert_eq!(mixins.remove("t1", "nope").await.unwrap(), None);
            store.close();
        }
        let (store, _) = Store::open(dir.path(), opts()).unwrap();
        let mixins = Mixins::open(Arc::new(store), dir.path()).await.unwrap();
        assert_eq!(mixins.of("t1"), vec![m("blue")]);
        assert_eq!(mixins.of("t2"), vec![m("blue")]);
        assert!(mixins.by_location("t2", "/tags/blue/").is_some());
        assert!(mixins.by_location("t3", "/tags/blue/").is_none());
    }

    #[tokio::test]
    async fn the_file_of_an_earlier_version_is_imported_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mixins.json"),
            serde_json::json!({"tenants": {"t1": [m("green")]}}).to_string(),
        )
        .unwrap();
        let (store, _) = Store::open(dir.path(), opts()).unwrap();
        let mixins = Mixins::open(Arc::new(store), dir.path()).await.unwrap();
        assert_eq!(mixins.of("t1"), vec![m("green")]);
        assert!(!dir.path().join("mixins.json").exists());
        assert!(dir.path().join("mixins.json.imported").exists());
    }
}
