//! User-defined mixins (OCCI `POST /-/`): tags a tenant defines and
//! attaches to its instances. Each tenant sees only its own; definitions
//! are kept in `mixins.json` in the state directory (the associations live
//! on the instances, in the journal).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dashmap::DashMap;
use serde::{Deserialize, Serialize};

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
#[error("user mixins file {path}: {message}")]
pub struct MixinFileError {
    /// The file.
    pub path: String,
    /// What failed.
    pub message: String,
}

#[derive(Serialize, Deserialize, Default)]
struct File {
    tenants: std::collections::BTreeMap<String, Vec<UserMixin>>,
}

/// Every tenant's user mixins.
pub struct Mixins {
    by_tenant: DashMap<String, Vec<UserMixin>>,
    file: Option<PathBuf>,
    write: tokio::sync::Mutex<()>,
}

impl Mixins {
    /// Definitions kept in memory only.
    pub fn in_memory() -> Self {
        Mixins {
            by_tenant: DashMap::new(),
            file: None,
            write: tokio::sync::Mutex::new(()),
        }
    }

    /// Definitions kept in `dir/mixins.json` (read now).
    pub fn open(dir: &Path) -> Result<Self, MixinFileError> {
        let path = dir.join("mixins.json");
        let err = |message: String| MixinFileError {
            path: path.display().to_string(),
            message,
        };
        let file: File = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::default(),
            Err(e) => return Err(err(e.to_string())),
        };
        let by_tenant = DashMap::new();
        for (t, v) in file.tenants {
            by_tenant.insert(t, v);
        }
        Ok(Mixins {
            by_tenant,
            file: Some(path),
            write: tokio::sync::Mutex::new(()),
        })
    }

    /// The tenant's mixins.
    pub fn of(&self, tenant: &str) -> Vec<UserMixin> {
        self.by_tenant
            .get(tenant)
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    /// Whether the tenant has any.
    pub fn has_any(&self, tenant: &str) -> bool {
        self.by_tenant.get(tenant).is_some_and(|v| !v.is_empty())
    }

    /// The tenant's mixin with collection `location`.
    pub fn by_location(&self, tenant: &str, location: &str) -> Option<UserMixin> {
        self.by_tenant
            .get(tenant)?
            .iter()
            .find(|m| m.location == location)
            .cloned()
    }

    /// The tenant's mixin `id` (`scheme+term`).
    pub fn by_id(&self, tenant: &str, id: &str) -> Option<UserMixin> {
        self.by_tenant
            .get(tenant)?
            .iter()
            .find(|m| m.id() == id)
            .cloned()
    }

    /// Adds the mixins and saves. The caller has checked them against
    /// the provider's categories; a clash with the tenant's own mixins
    /// (say two concurrent definitions) is checked again here, under the
    /// write lock: `Ok(Some(id))` names the clash and nothing is added.
    pub async fn define(
        self: &Arc<Self>,
        tenant: &str,
        mixins: Vec<UserMixin>,
    ) -> Result<Option<String>, MixinFileError> {
        let _w = self.write.lock().await;
        {
            let mut mine = self.by_tenant.entry(tenant.to_string()).or_default();
            if let Some(clash) = mixins.iter().find(|m| {
                mine.iter()
                    .any(|x| x.id() == m.id() || x.location == m.location)
            }) {
                return Ok(Some(clash.id()));
            }
            mine.extend(mixins);
        }
        self.save().await.map(|_| None)
    }

    /// Removes mixin `id` of the tenant and saves; `None` if it had none.
    pub async fn remove(
        self: &Arc<Self>,
        tenant: &str,
        id: &str,
    ) -> Result<Option<UserMixin>, MixinFileError> {
        let _w = self.write.lock().await;
        let removed = self.by_tenant.get_mut(tenant).and_then(|mut v| {
            let i = v.iter().position(|m| m.id() == id)?;
            Some(v.remove(i))
        });
        if removed.is_some() {
            self.save().await?;
        }
        Ok(removed)
    }

    async fn save(self: &Arc<Self>) -> Result<(), MixinFileError> {
        let Some(path) = self.file.clone() else {
            return Ok(());
        };
        let file = File {
            tenants: self
                .by_tenant
                .iter()
                .filter(|e| !e.value().is_empty())
                .map(|e| (e.key().clone(), e.value().clone()))
                .collect(),
        };
        let err = |message: String| MixinFileError {
            path: path.display().to_string(),
            message,
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| err(e.to_string()))?;
        let target = path.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let tmp = target.with_extension("json.tmp");
            std::fs::write(&tmp, &bytes)?;
            std::fs::rename(&tmp, &target)
        })
        .await
        .map_err(|e| err(e.to_string()))?
        .map_err(|e| err(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(term: &str) -> UserMixin {
        UserMixin {
            scheme: "http://example.org/tags#".into(),
            term: term.into(),
            title: None,
            location: format!("/tags/{term}/"),
            rel: vec![],
        }
    }

    #[tokio::test]
    async fn definitions_survive_a_reopen_and_stay_per_tenant() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mixins = Arc::new(Mixins::open(dir.path()).unwrap());
            mixins
                .define("t1", vec![m("blue"), m("red")])
                .await
                .unwrap();
            mixins.define("t2", vec![m("blue")]).await.unwrap();
            let gone = mixins
                .remove("t1", "http://example.org/tags#red")
                .await
                .unwrap();
            assert_eq!(gone, Some(m("red")));
        }
        let mixins = Mixins::open(dir.path()).unwrap();
        assert_eq!(mixins.of("t1"), vec![m("blue")]);
        assert!(mixins.by_location("t2", "/tags/blue/").is_some());
        assert!(mixins.by_location("t3", "/tags/blue/").is_none());
    }
}
