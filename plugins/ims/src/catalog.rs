//! The topologies a plugin offers, with their scripts: the built-in ones
//! from `templates/ims/` (compiled in), or a directory of the same layout
//! (`topologies/*.yaml|yml|json`, `scripts/*`). Every topology is parsed,
//! checked, and its template generated at its defaults and validated with
//! the heat engine when the catalog is built, so a broken file stops the
//! plugin at start with the file and field at fault.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::settings::Settings;
use crate::template;
use crate::topology::{Topology, TopologyError};

/// The topology used when `mcn.topology.type` is not given.
pub const DEFAULT_TOPOLOGY: &str = "openims";

/// The files under `templates/ims/`, compiled in.
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    (
        "topologies/openims.yaml",
        include_str!("../../../templates/ims/topologies/openims.yaml"),
    ),
    (
        "topologies/clearwater.yaml",
        include_str!("../../../templates/ims/topologies/clearwater.yaml"),
    ),
    (
        "scripts/openims-boot.sh",
        include_str!("../../../templates/ims/scripts/openims-boot.sh"),
    ),
    (
        "scripts/openims-configure.sh",
        include_str!("../../../templates/ims/scripts/openims-configure.sh"),
    ),
    (
        "scripts/clearwater-boot.sh",
        include_str!("../../../templates/ims/scripts/clearwater-boot.sh"),
    ),
    (
        "scripts/clearwater-configure.sh",
        include_str!("../../../templates/ims/scripts/clearwater-configure.sh"),
    ),
];

/// A checked topology with the texts of its scripts.
#[derive(Clone, Debug)]
pub struct LoadedTopology {
    /// The file it came from (`topologies/openims.yaml`).
    pub file: String,
    /// The topology.
    pub topology: Topology,
    /// The first-boot script's text.
    pub boot_script: String,
    /// The configuration script's text.
    pub configure_script: String,
}

/// The topologies of a plugin, by name.
#[derive(Clone, Debug)]
pub struct Catalog {
    topologies: BTreeMap<String, Arc<LoadedTopology>>,
    default: String,
}

fn is_topology_file(path: &str) -> bool {
    path.starts_with("topologies/") && [".yaml", ".yml", ".json"].iter().any(|e| path.ends_with(e))
}

impl Catalog {
    /// The built-in topologies (OpenIMS, the default, and Clearwater).
    pub fn builtin() -> Result<Catalog, TopologyError> {
        let files: Vec<(String, String)> = BUILTIN_FILES
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect();
        Catalog::from_files(&files, DEFAULT_TOPOLOGY)
    }

    /// Topologies from `(path, text)` pairs laid out as `templates/ims/`:
    /// `topologies/<name>.yaml` and `scripts/<file>`. `default` must be
    /// one of them.
    pub fn from_files(files: &[(String, String)], default: &str) -> Result<Catalog, TopologyError> {
        let scripts: BTreeMap<String, String> = files
            .iter()
            .filter_map(|(p, t)| {
                p.strip_prefix("scripts/")
                    .map(|n| (n.to_string(), t.clone()))
            })
            .collect();
        let mut topologies = BTreeMap::new();
        for (path, text) in files.iter().filter(|(p, _)| is_topology_file(p)) {
            let topology = Topology::parse(path, text)?;
            topology.check(path, &scripts)?;
            if let Some(other) = topologies.get(&topology.name) {
                let other: &Arc<LoadedTopology> = other;
                return Err(TopologyError {
                    file: path.clone(),
                    field: "name".into(),
                    message: format!(
                        "topology {:?} is also defined by {}",
                        topology.name, other.file
                    ),
                });
            }
            let loaded = LoadedTopology {
                file: path.clone(),
                boot_script: scripts
                    .get(&topology.boot_script)
                    .cloned()
                    .unwrap_or_default(),
                configure_script: scripts
                    .get(&topology.configure_script)
                    .cloned()
                    .unwrap_or_default(),
                topology,
            };
            // The templates at the topology's default and largest sizes
            // must be ones Heat takes.
            let mut settings = Settings::defaults(&loaded.topology);
            for at_max in [false, true] {
                if at_max {
                    for si in &loaded.topology.service_instances {
                        settings.sizes.insert(si.name.clone(), si.size.max);
                    }
                }
                let generated = template::generate(&loaded, &settings);
                generated.check(&loaded).map_err(|e| TopologyError {
                    file: path.clone(),
                    field: format!(
                        "(generated template, {} sizes)",
                        if at_max { "maximum" } else { "default" }
                    ),
                    message: e.to_string(),
                })?;
            }
            topologies.insert(loaded.topology.name.clone(), Arc::new(loaded));
        }
        if !topologies.contains_key(default) {
            return Err(TopologyError {
                file: format!("topologies/{default}.yaml"),
                field: "name".into(),
                message: format!(
                    "the default topology {default:?} is not defined (defined: {})",
                    topologies.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        Ok(Catalog {
            topologies,
            default: default.to_string(),
        })
    }

    /// The largest topology or script file read from a directory.
    pub const MAX_FILE: u64 = 4 << 20;

    /// Topologies from a directory laid out as `templates/ims/`. Reads the
    /// files now (call it at start, not on a request path).
    pub fn from_dir(dir: &Path, default: &str) -> Result<Catalog, TopologyError> {
        let io = |p: &Path, e: std::io::Error| TopologyError {
            file: p.display().to_string(),
            field: "(file)".into(),
            message: e.to_string(),
        };
        let mut files = Vec::new();
        for sub in ["topologies", "scripts"] {
            let d = dir.join(sub);
            let entries = std::fs::read_dir(&d).map_err(|e| io(&d, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| io(&d, e))?;
                let path = entry.path();
                if !path.is_file() {
                    continue;
                }
                let text =
                    occi_so_sdk::files::read_regular_text(&path, Self::MAX_FILE).map_err(|e| {
                        TopologyError {
                            file: path.display().to_string(),
                            field: "(file)".into(),
                            message: e.to_string(),
                        }
                    })?;
                let name = entry.file_name().to_string_lossy().into_owned();
                files.push((format!("{sub}/{name}"), text));
            }
        }
        files.sort();
        Catalog::from_files(&files, default)
    }

    /// The topology named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<LoadedTopology>> {
        self.topologies.get(name)
    }

    /// The default topology's name.
    pub fn default_name(&self) -> &str {
        &self.default
    }

    /// Every topology, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<LoadedTopology>> {
        self.topologies.values()
    }

    /// The topology names.
    pub fn names(&self) -> Vec<String> {
        self.topologies.keys().cloned().collect()
    }
}
