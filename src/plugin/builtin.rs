//! The compiled plugins built into this binary: one line per plugin crate
//! under `plugins/`. To add one, depend on the crate in the root
//! `Cargo.toml` and add its line to [`BUILTIN`]; the server registers them
//! all at start, in this order.

use std::sync::Arc;

use occi_so_sdk::Orchestrator;

/// What the server tells a compiled plugin when it builds it.
#[derive(Debug, Clone, Default)]
pub struct BuildContext {
    /// The named clouds (`clouds:` in the config file) a plugin may place
    /// stacks on besides the default one.
    pub clouds: Vec<String>,
}

/// Builds the plugins of one crate (templates parsed and checked); the
/// error says why one cannot be built.
pub type Build = fn(&BuildContext) -> Result<Vec<Arc<dyn Orchestrator>>, String>;

/// Every compiled plugin crate: (crate name, build function).
pub const BUILTIN: &[(&str, Build)] = &[
    ("occi-so-plugin-sample", |_| {
        occi_so_plugin_sample::plugins().map_err(|e| e.to_string())
    }),
    ("occi-so-plugin-ims", |_| {
        occi_so_plugin_ims::plugins().map_err(|e| e.to_string())
    }),
    ("occi-so-plugin-escm", |_| {
        let config = occi_so_plugin_escm::EscmConfig::from_env();
        let plugin = occi_so_plugin_escm::EscmPlugin::new(config).map_err(|e| e.to_string())?;
        Ok(vec![Arc::new(plugin) as Arc<dyn Orchestrator>])
    }),
    ("occi-so-plugin-conpaas", |ctx| {
        let plugin = occi_so_plugin_conpaas::Conpaas::new()
            .map_err(|e| e.to_string())?
            .with_clouds(ctx.clouds.clone());
        Ok(vec![Arc::new(plugin) as Arc<dyn Orchestrator>])
    }),
];

/// Builds every compiled plugin; the error names the crate that failed.
pub fn plugins(ctx: &BuildContext) -> Result<Vec<Arc<dyn Orchestrator>>, String> {
    let mut all = Vec::new();
    for (name, build) in BUILTIN {
        all.extend(build(ctx).map_err(|e| format!("{name}: {e}"))?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::BuildContext;

    #[test]
    fn every_builtin_builds_and_names_are_unique() {
        let all = super::plugins(&BuildContext::default()).unwrap();
        let mut names: Vec<&str> = all.iter().map(|p| p.info().name.as_str()).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate plugin names: {names:?}");
        for p in ["sample", "ims", "escm", "conpaas"] {
            assert!(names.contains(&p), "{p} missing from {names:?}");
        }
    }
}
