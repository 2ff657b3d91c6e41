//! The built-in sample orchestrator plugins of occi-so, so a fresh server
//! deploys something real before any service plugin is installed.
//!
//! * [`SampleService`] (`sample`, kind `…/occi/sm#sample` at `/sample/`):
//!   modelled on the hurtle sample service orchestrator. `deploy` creates a
//!   stack from `templates/sample/deployment.yaml`, `provision` updates it
//!   with `templates/sample/provision.yaml` (PUT), `update` re-renders the
//!   changed attributes as parameters (PATCH), the `rotate` action gives
//!   the service a new id, `dispose` deletes the stack. It is the server's
//!   default service type, so `PUT /orchestrator/default` reaches it.
//! * [`SampleDatabase`] (`sample-db`, kind `…/occi/sm#sampledb` at
//!   `/sampledb/`): a required, pattern-checked name and a secret password
//!   passed as a hidden Heat parameter, from
//!   `templates/sample/database.yaml`.
//!
//! The templates use engine-internal resources only (`OS::Heat::RandomString`,
//! `OS::Heat::Value`), so they run on the embedded engine and on a real Heat
//! without a cloud behind it. Every stack output is reported as an
//! attribute (`mcn.endpoint.sample`, `mcn.endpoint.db`, ...).

mod database;
mod service;
mod template;

use std::collections::BTreeMap;
use std::sync::Arc;

use occi_so_sdk::{
    Attributes, BuildContext, BuildError, LifecycleCtx, Orchestrator, PluginError, StackUpdate,
};

pub use database::SampleDatabase;
pub use service::SampleService;
pub use template::{StackTemplate, TemplateError};

/// The scheme the MCN service managers gave their service kinds.
pub const MCN_SM_SCHEME: &str = "http://schemas.mobile-cloud-networking.eu/occi/sm#";

/// The role of the one stack each sample instance has.
pub const MAIN: &str = "main";

/// Every sample plugin, templates loaded and checked.
pub fn plugins() -> Result<Vec<Arc<dyn Orchestrator>>, TemplateError> {
    Ok(vec![
        Arc::new(SampleService::new()?),
        Arc::new(SampleDatabase::new()?),
    ])
}

/// Builds the sample plugins as a server registers them (they take no
/// settings).
pub fn build(_ctx: &BuildContext) -> Result<Vec<Arc<dyn Orchestrator>>, BuildError> {
    plugins().map_err(|e| BuildError::new("sample", e.to_string()))
}

/// A Heat parameter value from an attribute value: strings as they are,
/// numbers and booleans as their text, lists and objects as JSON.
fn parameter_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The Heat parameters for the attributes in `attributes` that `mapping`
/// (attribute name → parameter name) names.
fn parameters(attributes: &Attributes, mapping: &[(&str, &str)]) -> BTreeMap<String, String> {
    mapping
        .iter()
        .filter_map(|(attr, param)| {
            attributes
                .get(*attr)
                .map(|v| (param.to_string(), parameter_text(v)))
        })
        .collect()
}

/// `update`: PATCH the parameters of the changed attributes that
/// `mapping` names (nothing when only `occi.core.title`/`summary` changed).
async fn patch_changed(
    ctx: &mut LifecycleCtx,
    changed: &Attributes,
    mapping: &[(&str, &str)],
) -> Result<(), PluginError> {
    let params = parameters(changed, mapping);
    if !params.is_empty() {
        ctx.stacks
            .update_ready(MAIN, &StackUpdate::Patch { parameters: params })
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_plugin_loads_and_has_its_own_kind() {
        let all = plugins().unwrap();
        let names: Vec<&str> = all.iter().map(|p| p.info().name.as_str()).collect();
        assert_eq!(names, ["sample", "sample-db"]);
        assert_ne!(all[0].info().kind.id(), all[1].info().kind.id());
    }

    #[test]
    fn parameters_follow_the_mapping_and_render_text() {
        let attrs = Attributes::from([
            ("a".to_string(), json!("x")),
            ("n".to_string(), json!(12)),
            ("b".to_string(), json!(true)),
            ("other".to_string(), json!("ignored")),
        ]);
        let p = parameters(
            &attrs,
            &[("a", "pa"), ("n", "pn"), ("b", "pb"), ("missing", "pm")],
        );
        assert_eq!(
            p,
            BTreeMap::from([
                ("pa".to_string(), "x".to_string()),
                ("pb".to_string(), "true".to_string()),
                ("pn".to_string(), "12".to_string()),
            ])
        );
    }
}
