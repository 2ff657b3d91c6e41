//! Mixins that plugins provide: templates a caller applies to an instance
//! (OCCI Infrastructure's `os_tpl` images and `resource_tpl` flavors, a
//! Cloudkeeper appliance), per tenant, shown in the tenant's query
//! interface and handed to the plugin that serves the instance.

use serde::{Deserialize, Serialize};

use crate::AttributeSpec;

/// One provided mixin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MixinSpec {
    /// Mixin term (unique within the scheme).
    pub term: String,
    /// Mixin scheme, ending in `#`.
    pub scheme: String,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// The mixins it depends on (`rel`, e.g. the `os_tpl` mixin's id).
    #[serde(default)]
    pub related: Vec<String>,
    /// Its collection, e.g. `/os_tpl/ubuntu-22.04/`; defaults to none.
    #[serde(default)]
    pub location: Option<String>,
    /// Attributes it adds to the entities it is applied to.
    #[serde(default)]
    pub attributes: Vec<AttributeSpec>,
    /// What the consuming plugin needs to use it (an image's id, a
    /// flavor's size), never shown to callers.
    #[serde(default)]
    pub data: serde_json::Value,
}

impl MixinSpec {
    /// `scheme + term`.
    pub fn id(&self) -> String {
        format!("{}{}", self.scheme, self.term)
    }

    /// Whether it depends on (is a kind of) mixin `id`.
    pub fn is_a(&self, id: &str) -> bool {
        self.related.iter().any(|r| r == id)
    }
}

/// A source of mixins (a compiled plugin registers it through
/// `BuildContext::provide`). Must be cheap: it is asked on every query
/// interface request of the tenant.
pub trait MixinProvider: Send + Sync + 'static {
    /// A name for logs.
    fn name(&self) -> &str;
    /// The mixins `tenant` may apply now.
    fn mixins(&self, tenant: &str) -> Vec<MixinSpec>;
}
