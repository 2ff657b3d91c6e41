//! The plugin registry: which orchestrator plugin owns which OCCI kind and
//! collection location. A dashmap keyed by kind id; plugins come and go
//! while the server runs, and every change bumps a generation so cached
//! query-interface renderings know to refresh.
//!
//! The MCN kind `orchestrator` (`/orchestrator/`) is an alias bound to the
//! default service type's plugin, so `PUT /orchestrator/default` reaches it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use dashmap::DashMap;
use occi_so_sdk::{
    AttributeSpec, AttributeType, KindSpec, MixinProvider, MixinSpec, Orchestrator, PluginInfo,
    MCN_SERVICE_SCHEME,
};

use crate::schema::Schema;

/// The MCN orchestrator kind's term.
pub const ORCHESTRATOR_TERM: &str = "orchestrator";
/// `http://schemas.ogf.org/occi/core#resource`.
pub const CORE_RESOURCE: &str = "http://schemas.ogf.org/occi/core#resource";

/// Paths no plugin may claim.
const RESERVED: &[&str] = &[
    "/-/",
    "/.well-known/",
    "/healthz/",
    "/metrics/",
    "/admin/",
    "/link/",
    crate::operation::COLLECTION,
];

/// A plugin bound to a kind.
pub struct Binding {
    /// The plugin.
    pub plugin: Arc<dyn Orchestrator>,
    /// The kind as served (the plugin's own, or the `orchestrator` alias).
    pub schema: Schema,
    /// Registry generation when bound.
    pub generation: u64,
}

impl std::fmt::Debug for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Binding")
            .field("plugin", &self.plugin.info().name)
            .field("kind", &self.kind().id())
            .field("generation", &self.generation)
            .finish()
    }
}

impl Binding {
    /// The kind served.
    pub fn kind(&self) -> &KindSpec {
        self.schema.kind()
    }
    /// The plugin's registry name.
    pub fn name(&self) -> &str {
        &self.plugin.info().name
    }
}

/// Why a registry change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The plugin's kind definition is broken.
    #[error("plugin '{plugin}': {message}")]
    Invalid {
        /// Plugin name.
        plugin: String,
        /// What is wrong.
        message: String,
    },
    /// Another plugin has the name.
    #[error("a plugin named '{0}' is already registered")]
    NameTaken(String),
    /// Another plugin owns the kind.
    #[error("kind {kind} is already served by plugin '{by}'")]
    KindTaken {
        /// Kind id.
        kind: String,
        /// Owner.
        by: String,
    },
    /// Another plugin owns the location.
    #[error("location {location} is already used by plugin '{by}'")]
    LocationTaken {
        /// Location.
        location: String,
        /// Owner.
        by: String,
    },
    /// No plugin of that name.
    #[error("no plugin named '{0}'")]
    NotFound(String),
    /// The plugin still owns live instances.
    #[error("plugin '{name}' still has {instances} live instance(s); dispose them or unregister with force")]
    InUse {
        /// Plugin name.
        name: String,
        /// How many.
        instances: usize,
    },
}

/// All registered plugins.
#[derive(Default)]
pub struct Registry {
    by_kind: DashMap<String, Arc<Binding>>,
    /// location → kind id
    by_location: DashMap<String, String>,
    /// plugin name → its own kind id
    by_name: DashMap<String, String>,
    default_plugin: RwLock<Option<String>>,
    generation: AtomicU64,
    providers: RwLock<Vec<Arc<dyn MixinProvider>>>,
}

fn invalid(info: &PluginInfo, message: impl Into<String>) -> RegistryError {
    RegistryError::Invalid {
        plugin: info.name.clone(),
        message: message.into(),
    }
}

fn valid_term(t: &str) -> bool {
    let mut chars = t.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Check a kind definition the way the server relies on it.
pub fn check_kind(info: &PluginInfo) -> Result<(), RegistryError> {
    let k = &info.kind;
    if !valid_term(&info.name) {
        return Err(invalid(
            info,
            format!(
                "name {:?} must be a term ([A-Za-z0-9][A-Za-z0-9._-]*)",
                info.name
            ),
        ));
    }
    if !valid_term(&k.term) {
        return Err(invalid(
            info,
            format!("kind term {:?} is not a valid OCCI term", k.term),
        ));
    }
    if !k.scheme.ends_with('#') || !k.scheme.contains("://") {
        return Err(invalid(
            info,
            format!(
                "kind scheme {:?} must be an absolute URI ending in '#'",
                k.scheme
            ),
        ));
    }
    let loc = k.location();
    if loc.len() < 3 || loc.contains("//") || loc.contains(' ') || loc.contains('?') {
        return Err(invalid(
            info,
            format!("location {loc:?} is not a collection path like /name/"),
        ));
    }
    if let Some(r) = RESERVED.iter().find(|r| loc.starts_with(**r)) {
        return Err(invalid(info, format!("location {loc:?} is reserved ({r})")));
    }
    let mut seen = std::collections::BTreeSet::new();
    for a in &k.attributes {
        if !valid_term(&a.name) {
            return Err(invalid(
                info,
                format!("attribute name {:?} is not valid", a.name),
            ));
        }
        if !seen.insert(a.name.as_str()) {
            return Err(invalid(
                info,
                format!("attribute {:?} is defined twice", a.name),
            ));
        }
    }
    let mut actions = std::collections::BTreeSet::new();
    for a in &k.actions {
        if !valid_term(&a.term) {
            return Err(invalid(
                info,
                format!("action term {:?} is not valid", a.term),
            ));
        }
        if matches!(a.term.as_str(), "deploy" | "provision") && a.scheme == MCN_SERVICE_SCHEME {
            return Err(invalid(info, format!("action {} is built in", a.term)));
        }
        if !actions.insert(a.term.as_str()) {
            return Err(invalid(
                info,
                format!("action {:?} is defined twice", a.term),
            ));
        }
    }
    Ok(())
}

/// The attributes the server reports on every SO kind: the MCN stack
/// state, and the instance's lifecycle (`occi.so.*`).
fn mcn_state_attributes() -> Vec<AttributeSpec> {
    vec![
        AttributeSpec::new("occi.mcn.stack.id", AttributeType::String)
            .output()
            .describe("Heat stack id (role:id pairs joined by ',' when several)"),
        AttributeSpec::new("occi.mcn.stack.state", AttributeType::String)
            .output()
            .describe("Heat's raw stack status"),
        AttributeSpec::new(
            "occi.so.phase",
            AttributeType::Enum(vec![
                "initialised".into(),
                "deployed".into(),
                "provisioned".into(),
            ]),
        )
        .output()
        .describe("How far the lifecycle has come"),
        AttributeSpec::new("occi.so.operation", AttributeType::String)
            .output()
            .describe("The lifecycle operation running now (absent when none runs)"),
        AttributeSpec::new("occi.so.queued", AttributeType::Integer)
            .output()
            .describe("How many operations wait behind the running one (absent when none)"),
        AttributeSpec::new("occi.so.error", AttributeType::String)
            .output()
            .describe("Why the last operation failed (absent once one succeeds)"),
        AttributeSpec::new("occi.so.error.operation", AttributeType::String)
            .output()
            .describe("The operation that failed"),
        AttributeSpec::new(crate::outbox::CALLBACK, AttributeType::String)
            .pattern("https?://[^ ]+")
            .describe("A URL that is POSTed every event of the instance (JSON), at least once, retried with backoff"),
    ]
}

/// The kind a plugin serves under its own name, with the MCN state
/// attributes added.
fn own_kind(info: &PluginInfo) -> KindSpec {
    let mut k = info.kind.clone();
    if k.related.is_empty() {
        k.related.push(CORE_RESOURCE.into());
    }
    for a in mcn_state_attributes() {
        if k.attribute(&a.name).is_none() {
            k.attributes.push(a);
        }
    }
    k
}

/// The `orchestrator` alias kind for the default plugin.
fn orchestrator_kind(info: &PluginInfo) -> KindSpec {
    let own = own_kind(info);
    KindSpec {
        term: ORCHESTRATOR_TERM.into(),
        scheme: MCN_SERVICE_SCHEME.into(),
        title: Some(format!(
            "Service orchestrator ({})",
            own.title.clone().unwrap_or_else(|| info.name.clone())
        )),
        location: Some("/orchestrator/".into()),
        related: vec![CORE_RESOURCE.into()],
        attributes: own.attributes,
        actions: own.actions,
    }
}

/// The id of the MCN orchestrator kind.
pub fn orchestrator_kind_id() -> String {
    format!("{MCN_SERVICE_SCHEME}{ORCHESTRATOR_TERM}")
}

impl Registry {
    /// Adds a source of provided mixins (`os_tpl`, `resource_tpl`, ...).
    pub fn add_provider(&self, provider: Arc<dyn MixinProvider>) {
        tracing::info!(provider = provider.name(), "mixin provider registered");
        self.providers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(provider);
    }

    /// Every mixin the providers offer `tenant` now.
    pub fn provided_mixins(&self, tenant: &str) -> Vec<MixinSpec> {
        let providers = self
            .providers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        providers.iter().flat_map(|p| p.mixins(tenant)).collect()
    }

    /// The provided mixin `id` for `tenant`, if there is one.
    pub fn provided_mixin(&self, tenant: &str, id: &str) -> Option<MixinSpec> {
        self.provided_mixins(tenant)
            .into_iter()
            .find(|m| m.id() == id)
    }

    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Bumped on every change.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn bump(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    fn binding(
        &self,
        plugin: Arc<dyn Orchestrator>,
        kind: KindSpec,
    ) -> Result<Arc<Binding>, RegistryError> {
        let schema = Schema::new(kind).map_err(|e| invalid(plugin.info(), e.to_string()))?;
        Ok(Arc::new(Binding {
            plugin,
            schema,
            generation: self.generation() + 1,
        }))
    }

    /// Add a plugin. Its kind and location must be free.
    pub fn register(&self, plugin: Arc<dyn Orchestrator>) -> Result<Arc<Binding>, RegistryError> {
        let info = plugin.info().clone();
        check_kind(&info)?;
        let kind = own_kind(&info);
        let id = kind.id();
        let location = kind.location();
        if self.by_name.contains_key(&info.name) {
            return Err(RegistryError::NameTaken(info.name));
        }
        if let Some(b) = self.by_kind.get(&id) {
            return Err(RegistryError::KindTaken {
                kind: id,
                by: b.name().to_string(),
            });
        }
        if let Some(k) = self.by_location.get(&location) {
            let by = self
                .by_kind
                .get(k.value())
                .map(|b| b.name().to_string())
                .unwrap_or_default();
            return Err(RegistryError::LocationTaken { location, by });
        }
        let binding = self.binding(plugin.clone(), kind)?;
        self.by_location.insert(location, id.clone());
        self.by_kind.insert(id.clone(), binding.clone());
        self.by_name.insert(info.name.clone(), id);
        self.rebind_default_if(&info.name, plugin)?;
        self.bump();
        Ok(binding)
    }

    /// Swap in a new version of a registered plugin (hot reload). The kind
    /// id and location may not change; existing instances stay.
    pub fn replace(&self, plugin: Arc<dyn Orchestrator>) -> Result<Arc<Binding>, RegistryError> {
        let info = plugin.info().clone();
        check_kind(&info)?;
        let old_id = self
            .by_name
            .get(&info.name)
            .map(|v| v.clone())
            .ok_or_else(|| RegistryError::NotFound(info.name.clone()))?;
        let kind = own_kind(&info);
        let new_id = kind.id();
        if new_id != old_id {
            return Err(invalid(&info, format!("a reload may not change the kind ({old_id} → {new_id}); unregister and register instead")));
        }
        let old_location = self.by_kind.get(&old_id).map(|b| b.kind().location());
        if old_location.as_deref() != Some(kind.location().as_str()) {
            return Err(invalid(&info, "a reload may not change the location"));
        }
        let binding = self.binding(plugin.clone(), kind)?;
        self.by_kind.insert(new_id, binding.clone());
        self.rebind_default_if(&info.name, plugin)?;
        self.bump();
        Ok(binding)
    }

    /// Remove a plugin. With live instances (as counted by the caller) it
    /// is refused unless `force`.
    pub fn unregister(
        &self,
        name: &str,
        live_instances: usize,
        force: bool,
    ) -> Result<(), RegistryError> {
        let id = self
            .by_name
            .get(name)
            .map(|v| v.clone())
            .ok_or_else(|| RegistryError::NotFound(name.to_string()))?;
        if live_instances > 0 && !force {
            return Err(RegistryError::InUse {
                name: name.to_string(),
                instances: live_instances,
            });
        }
        if let Some((_, b)) = self.by_kind.remove(&id) {
            self.by_location.remove(&b.kind().location());
        }
        self.by_name.remove(name);
        let is_default = self.default_name().as_deref() == Some(name);
        if is_default {
            let alias = orchestrator_kind_id();
            if let Some((_, b)) = self.by_kind.remove(&alias) {
                self.by_location.remove(&b.kind().location());
            }
        }
        self.bump();
        Ok(())
    }

    /// Bind the MCN `orchestrator` kind (`/orchestrator/`) to plugin `name`.
    /// The binding is remembered, so a plugin registered later under that
    /// name is bound when it arrives.
    pub fn set_default(&self, name: &str) -> Result<(), RegistryError> {
        if let Ok(mut d) = self.default_plugin.write() {
            *d = Some(name.to_string());
        }
        let plugin = self
            .by_name
            .get(name)
            .and_then(|id| self.by_kind.get(id.value()).map(|b| b.plugin.clone()));
        if let Some(p) = plugin {
            self.rebind_default_if(name, p)?;
            self.bump();
        }
        Ok(())
    }

    /// The name bound to `orchestrator`, if any.
    pub fn default_name(&self) -> Option<String> {
        self.default_plugin.read().ok().and_then(|d| d.clone())
    }

    fn rebind_default_if(
        &self,
        name: &str,
        plugin: Arc<dyn Orchestrator>,
    ) -> Result<(), RegistryError> {
        if self.default_name().as_deref() != Some(name) {
            return Ok(());
        }
        let own_id = own_kind(plugin.info()).id();
        let alias = orchestrator_kind_id();
        if own_id == alias {
            return Ok(()); // the plugin's own kind is `orchestrator`
        }
        if let Some(b) = self.by_kind.get(&alias) {
            if b.name() != name && self.by_name.get(b.name()).is_some_and(|k| *k == alias) {
                return Err(RegistryError::KindTaken {
                    kind: alias,
                    by: b.name().to_string(),
                });
            }
        }
        let kind = orchestrator_kind(plugin.info());
        let location = kind.location();
        let binding = self.binding(plugin, kind)?;
        self.by_location.insert(location, alias.clone());
        self.by_kind.insert(alias, binding);
        Ok(())
    }

    /// The binding serving kind id `scheme+term`.
    pub fn by_kind(&self, id: &str) -> Option<Arc<Binding>> {
        self.by_kind.get(id).map(|b| b.clone())
    }

    /// The binding whose collection is `location` (e.g. `/ims/`).
    pub fn by_location(&self, location: &str) -> Option<Arc<Binding>> {
        let id = self.by_location.get(location)?.clone();
        self.by_kind(&id)
    }

    /// The binding of plugin `name` under its own kind.
    pub fn by_name(&self, name: &str) -> Option<Arc<Binding>> {
        let id = self.by_name.get(name)?.clone();
        self.by_kind(&id)
    }

    /// Every binding (aliases included), sorted by kind id.
    pub fn bindings(&self) -> Vec<Arc<Binding>> {
        let mut v: Vec<Arc<Binding>> = self.by_kind.iter().map(|b| b.clone()).collect();
        v.sort_by_key(|b| b.kind().id());
        v
    }

    /// Every plugin once (no aliases), sorted by name.
    pub fn plugins(&self) -> Vec<Arc<Binding>> {
        let mut v: Vec<Arc<Binding>> = self
            .by_name
            .iter()
            .filter_map(|e| self.by_kind(e.value()))
            .collect();
        v.sort_by(|a, b| a.name().cmp(b.name()));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use occi_so_sdk::{LifecycleCtx, Operation, PluginError, PluginSource};

    struct P(PluginInfo);

    struct Images;

    impl MixinProvider for Images {
        fn name(&self) -> &str {
            "images"
        }
        fn mixins(&self, tenant: &str) -> Vec<MixinSpec> {
            if tenant != "demo" {
                return Vec::new();
            }
            vec![MixinSpec {
                term: "ubuntu".into(),
                scheme: "http://example.org/os#".into(),
                title: Some("Ubuntu".into()),
                related: vec!["http://schemas.ogf.org/occi/infrastructure#os_tpl".into()],
                location: None,
                attributes: Vec::new(),
                data: serde_json::Value::Null,
            }]
        }
    }

    #[test]
    fn provided_mixins_are_per_tenant() {
        let r = Registry::new();
        assert!(r.provided_mixins("demo").is_empty());
        r.add_provider(Arc::new(Images));
        let m = r
            .provided_mixin("demo", "http://example.org/os#ubuntu")
            .unwrap();
        assert!(m.is_a("http://schemas.ogf.org/occi/infrastructure#os_tpl"));
        assert!(r
            .provided_mixin("other", "http://example.org/os#ubuntu")
            .is_none());
        assert!(r
            .provided_mixin("demo", "http://example.org/os#debian")
            .is_none());
    }

    #[async_trait]
    impl Orchestrator for P {
        fn info(&self) -> &PluginInfo {
            &self.0
        }
        async fn run(&self, _: &Operation, _: &mut LifecycleCtx) -> Result<(), PluginError> {
            Ok(())
        }
    }

    fn plugin(name: &str, term: &str) -> Arc<dyn Orchestrator> {
        Arc::new(P(PluginInfo {
            name: name.into(),
            version: "1".into(),
            description: None,
            source: PluginSource::Compiled,
            kind: KindSpec {
                term: term.into(),
                scheme: "http://schemas.mobile-cloud-networking.eu/occi/sm#".into(),
                title: Some(format!("{term} service")),
                location: None,
                related: vec![],
                attributes: vec![AttributeSpec::new("x", AttributeType::String)],
                actions: vec![],
            },
        }))
    }

    #[test]
    fn register_lookup_and_unregister() {
        let r = Registry::new();
        let g0 = r.generation();
        r.register(plugin("ims", "ims")).unwrap();
        assert!(r.generation() > g0);
        let b = r.by_location("/ims/").unwrap();
        assert_eq!(b.name(), "ims");
        assert!(b.kind().attribute("occi.mcn.stack.state").is_some());
        assert!(matches!(
            r.register(plugin("ims", "other")),
            Err(RegistryError::NameTaken(_))
        ));
        assert!(matches!(
            r.register(plugin("ims2", "ims")),
            Err(RegistryError::KindTaken { .. })
        ));
        assert!(matches!(
            r.unregister("ims", 2, false),
            Err(RegistryError::InUse { instances: 2, .. })
        ));
        r.unregister("ims", 2, true).unwrap();
        assert!(r.by_location("/ims/").is_none());
    }

    #[test]
    fn default_plugin_serves_the_orchestrator_kind() {
        let r = Registry::new();
        r.set_default("ims").unwrap();
        assert!(r.by_location("/orchestrator/").is_none());
        r.register(plugin("ims", "ims")).unwrap();
        let b = r.by_kind(&orchestrator_kind_id()).unwrap();
        assert_eq!(b.name(), "ims");
        assert_eq!(b.kind().location(), "/orchestrator/");
        assert!(b.kind().attribute("x").is_some());
        r.register(plugin("escm", "escm")).unwrap();
        r.set_default("escm").unwrap();
        assert_eq!(r.by_location("/orchestrator/").unwrap().name(), "escm");
        assert_eq!(r.plugins().len(), 2);
        r.unregister("escm", 0, false).unwrap();
        assert!(r.by_location("/orchestrator/").is_none());
    }

    #[test]
    fn broken_kinds_are_refused_with_the_reason() {
        let r = Registry::new();
        let e = r.register(plugin("bad name", "x")).unwrap_err();
        assert!(e.to_string().contains("bad name"), "{e}");
        let e = r.register(plugin("ok", "-x")).unwrap_err();
        assert!(e.to_string().contains("kind term"), "{e}");
        let p = plugin("meta", "metrics");
        let e = r.register(p).unwrap_err();
        assert!(e.to_string().contains("reserved"), "{e}");
    }

    #[test]
    fn reload_keeps_kind_and_location() {
        let r = Registry::new();
        r.register(plugin("ims", "ims")).unwrap();
        r.replace(plugin("ims", "ims")).unwrap();
        let e = r.replace(plugin("ims", "imz")).unwrap_err();
        assert!(e.to_string().contains("may not change the kind"), "{e}");
        assert!(matches!(
            r.replace(plugin("nope", "nope")),
            Err(RegistryError::NotFound(_))
        ));
    }
}
