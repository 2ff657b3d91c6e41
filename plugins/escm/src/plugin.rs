//! The ESCM orchestrator: the barclamp's sequence as the MCN lifecycle.
//!
//! * `deploy`: the volume stack, then the instance stack with the volume
//!   ids from the volume stack's outputs (the barclamp's steps 5 and 6);
//!   the server boots, mounts the volumes and signals the wait condition.
//! * `provision`: an update of the instance stack with `escm_provision`
//!   on: the boot configuration gains `deploy-escmserver` with ESCM's
//!   `var.env`/`.env`, certificates, proxy and registry settings; the new
//!   user data replaces the server, which mounts the same volumes and runs
//!   ESCM's deployer (the barclamp's step 8, without SSH).
//! * `update`: grown volumes update the volume stack; any other change
//!   re-renders and updates the instance stack (Heat leaves unchanged
//!   resources alone, as the barclamp's checksum-gated re-run did).
//! * `dispose`: the instance stack, then the volume stack.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use occi_so_sdk::{
    Attributes, BuildContext, BuildError, InstanceView, KindSpec, LifecycleCtx, Operation,
    Orchestrator, PluginError, PluginInfo, PluginSource, Secret, StackInfo, StateReport,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::{self, names, outputs};
use crate::certificates::{self, Certificates};
use crate::settings::{Checker, Settings};
use crate::templates::{TemplateError, Templates, VolumeIds};

/// The volume stack's role.
pub const VOLUMES: &str = "volumes";
/// The instance stack's role.
pub const INSTANCE: &str = "instance";

/// The scheme of service types (as the MCN service managers register them).
pub const SCHEME: &str = "http://schemas.mobile-cloud-networking.eu/occi/sm#";
/// The kind term.
pub const TERM: &str = "escm";

/// How the operator set the plugin up: the `plugin-config.escm` section.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct EscmConfig {
    /// The directory below which `escm.ssl.certfile`, `keyfile` and
    /// `ca_certs` may point (the barclamp's control-node directory).
    pub certificate_dir: PathBuf,
}

/// The config section this crate reads (`plugin-config.escm`).
pub const CONFIG_SECTION: &str = "escm";

impl Default for EscmConfig {
    fn default() -> Self {
        EscmConfig {
            certificate_dir: PathBuf::from("/etc/escm/ssl"),
        }
    }
}

/// Builds the ESCM plugin as a server registers it, with the
/// `plugin-config.escm` section (or `OCCI_SO_PLUGIN_ESCM_CERTIFICATE_DIR`).
pub fn build(ctx: &BuildContext) -> Result<Vec<Arc<dyn Orchestrator>>, BuildError> {
    let config: EscmConfig = ctx.config(CONFIG_SECTION)?;
    let plugin = EscmPlugin::new(config).map_err(|e| BuildError::new(TERM, e.to_string()))?;
    Ok(vec![Arc::new(plugin)])
}

/// Why the plugin cannot be built (a defect of the build, not of a request).
#[derive(Debug, thiserror::Error)]
pub enum EscmError {
    /// A shipped template does not validate.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A setting's pattern does not compile.
    #[error("a setting's pattern does not compile: {0}")]
    Pattern(#[from] regex::Error),
}

/// What the plugin remembers about an instance (`plugin_state`). `Debug`
/// never shows the passwords.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// Sizes the volume stack was last created or updated with (GB).
    pub logs_size: i64,
    /// Data volume size (GB).
    pub data_size: i64,
    /// ESCM is configured on the instance (`provision` done).
    pub provisioned: bool,
    /// The settings the stacks last received (passwords apart), so that a
    /// failed update can put the attributes back to what Heat has.
    #[serde(default)]
    pub applied: Attributes,
    /// The passwords the stacks last received.
    #[serde(default)]
    pub applied_secrets: BTreeMap<String, Secret>,
}

impl Deployment {
    /// Remembers `attributes` as what the stacks now have.
    fn record(&mut self, attributes: &Attributes) {
        for s in catalog::all() {
            let Some(v) = attributes.get(s.name) else {
                continue;
            };
            if s.secret {
                let text = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                self.applied_secrets
                    .insert(s.name.to_string(), Secret::new(text));
            } else {
                self.applied.insert(s.name.to_string(), v.clone());
            }
        }
    }

    /// Puts the `changed` attributes back to what the stacks have.
    fn restore(&self, attributes: &mut Attributes, changed: &Attributes) {
        for name in changed.keys() {
            if let Some(v) = self.applied.get(name) {
                attributes.insert(name.clone(), v.clone());
            } else if let Some(s) = self.applied_secrets.get(name) {
                attributes.insert(name.clone(), Value::String(s.expose().to_string()));
            }
        }
    }
}

/// The ESCM service orchestrator plugin.
#[derive(Debug)]
pub struct EscmPlugin {
    info: PluginInfo,
    templates: Templates,
    checker: Checker,
    config: EscmConfig,
}

impl EscmPlugin {
    /// Parses and validates the templates and compiles the checks.
    pub fn new(config: EscmConfig) -> Result<Self, EscmError> {
        let checker = Checker::new()?;
        let templates = Templates::load()?;
        let mut attributes: Vec<_> = checker.settings().iter().map(|s| s.spec()).collect();
        attributes.extend(catalog::output_specs());
        let info = PluginInfo {
            name: TERM.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: Some(
                "FUJITSU Enterprise Service Catalog Manager: a volume stack and an instance stack running ESCM's Docker containers, as the crowbar barclamp deploys it".into(),
            ),
            source: PluginSource::Compiled,
            kind: KindSpec {
                term: TERM.into(),
                scheme: SCHEME.into(),
                title: Some("ESCM service orchestrator".into()),
                location: Some("/escm/".into()),
                related: vec![],
                attributes,
                actions: vec![],
            },
        };
        Ok(EscmPlugin {
            info,
            templates,
            checker,
            config,
        })
    }

    /// The parsed templates.
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// Checks attributes as `validate` does (settings, rules, certificate
    /// files, both templates) and gives the settings and certificates.
    pub async fn check(
        &self,
        attributes: &Attributes,
    ) -> Result<(Settings, Option<Certificates>), PluginError> {
        let settings = self.checker.check(attributes)?;
        let certificates = certificates::load(&self.config.certificate_dir, &settings).await?;
        self.templates
            .check_volumes(&self.templates.volumes_parameters(&settings))?;
        self.templates
            .check_instance(&self.templates.instance_parameters(
                &settings,
                certificates.as_ref(),
                &VolumeIds::placeholder(),
                false,
            ))?;
        Ok((settings, certificates))
    }

    async fn instance_update(
        &self,
        ctx: &mut LifecycleCtx,
        settings: &Settings,
        certificates: Option<&Certificates>,
        provision: bool,
    ) -> Result<StackInfo, PluginError> {
        let volumes = volume_ids(&ctx.stacks)?;
        let params =
            self.templates
                .instance_parameters(settings, certificates, &volumes, provision);
        self.templates.check_instance(&params)?;
        Ok(ctx
            .stacks
            .update_ready(INSTANCE, &self.templates.instance_update(params))
            .await?)
    }
}

impl EscmPlugin {
    /// An update: grown volumes first (the volume stack), then every other
    /// change (the instance stack).
    async fn apply(
        &self,
        ctx: &mut LifecycleCtx,
        changed: &Attributes,
        deployment: &mut Deployment,
    ) -> Result<(), PluginError> {
        // Cinder volumes grow but never shrink: refuse before touching anything.
        for (name, deployed) in [
            (names::LOGS_SIZE, deployment.logs_size),
            (names::DATA_SIZE, deployment.data_size),
        ] {
            if let Some(wanted) = changed.get(name).and_then(Value::as_i64) {
                if deployed > 0 && wanted < deployed {
                    return Err(PluginError::attribute(
                        name,
                        format!("a volume cannot shrink: it has {deployed} GB, {wanted} GB were asked for"),
                    ));
                }
            }
        }
        let (settings, certificates) = self.check(&ctx.attributes).await?;
        let (logs, data) = (
            settings.int(names::LOGS_SIZE),
            settings.int(names::DATA_SIZE),
        );
        if (logs, data) != (deployment.logs_size, deployment.data_size) {
            let params = self.templates.volumes_parameters(&settings);
            ctx.stacks
                .update_ready(VOLUMES, &self.templates.volumes_update(params))
                .await?;
            deployment.logs_size = logs;
            deployment.data_size = data;
            let sizes: Attributes = [names::LOGS_SIZE, names::DATA_SIZE]
                .iter()
                .filter_map(|n| ctx.attributes.get(*n).map(|v| (n.to_string(), v.clone())))
                .collect();
            deployment.record(&sizes);
        }
        let volume_only = changed
            .keys()
            .all(|k| k == names::LOGS_SIZE || k == names::DATA_SIZE);
        if !volume_only {
            let provisioned = deployment.provisioned;
            self.instance_update(ctx, &settings, certificates.as_ref(), provisioned)
                .await?;
        }
        Ok(())
    }
}

/// The volume ids from the volume stack's outputs.
fn volume_ids(stacks: &occi_so_sdk::Stacks) -> Result<VolumeIds, PluginError> {
    let info = stacks
        .get(VOLUMES)
        .and_then(|r| r.last.as_ref())
        .ok_or_else(|| PluginError::Failed("the ESCM volume stack is missing".into()))?;
    volume_ids_of(info)
}

fn volume_ids_of(info: &StackInfo) -> Result<VolumeIds, PluginError> {
    let get = |key: &str| match info.output(key) {
        Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
        _ => Err(PluginError::Failed(format!(
            "the ESCM volume stack {} has no output {key}",
            info.stack.name
        ))),
    };
    Ok(VolumeIds {
        logs: get(outputs::LOGS_VOLUME_ID)?,
        data: get(outputs::DATA_VOLUME_ID)?,
    })
}

impl EscmPlugin {
    /// `deploy`: the volume stack, then the instance stack fed with the
    /// volume ids.
    async fn deploy(&self, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        let (settings, certificates) = self.check(&ctx.attributes).await?;
        let volume_params = self.templates.volumes_parameters(&settings);
        let info = ctx
            .stacks
            .create_ready(VOLUMES, self.templates.volumes_spec(volume_params))
            .await?;
        let volumes = volume_ids_of(&info)?;
        tracing::info!(stack = %info.stack.id, logs = %volumes.logs, data = %volumes.data, "ESCM volume stack complete");
        let mut deployment = Deployment {
            logs_size: settings.int(names::LOGS_SIZE),
            data_size: settings.int(names::DATA_SIZE),
            ..Deployment::default()
        };
        ctx.state.set(&deployment)?;
        let params =
            self.templates
                .instance_parameters(&settings, certificates.as_ref(), &volumes, false);
        let info = ctx
            .stacks
            .create_ready(INSTANCE, self.templates.instance_spec(params))
            .await?;
        deployment.record(&ctx.attributes);
        ctx.state.set(&deployment)?;
        tracing::info!(stack = %info.stack.id, "ESCM instance stack complete");
        Ok(())
    }

    /// `provision`: the configuration applied to the instance stack.
    async fn provision(&self, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        let (settings, certificates) = self.check(&ctx.attributes).await?;
        self.instance_update(ctx, &settings, certificates.as_ref(), true)
            .await?;
        let mut deployment: Deployment = ctx.state.get()?;
        deployment.provisioned = true;
        deployment.record(&ctx.attributes);
        ctx.state.set(&deployment)?;
        tracing::info!("ESCM configuration applied to the instance stack");
        Ok(())
    }

    /// `update`: nothing half-applied; on failure the attributes say what
    /// the stacks have.
    async fn update(
        &self,
        ctx: &mut LifecycleCtx,
        changed: &Attributes,
    ) -> Result<(), PluginError> {
        let mut deployment: Deployment = ctx.state.get()?;
        let result = self.apply(ctx, changed, &mut deployment).await;
        if result.is_err() {
            // A grown volume stays grown; Heat rolled a failed update back.
            deployment.restore(&mut ctx.attributes, changed);
        } else {
            deployment.record(&ctx.attributes);
        }
        ctx.state.set(&deployment)?;
        result
    }

    /// `dispose`: the instance first (its server holds the volumes), then
    /// the volumes, then anything else recorded.
    async fn dispose(&self, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        ctx.stacks.delete(INSTANCE).await?;
        ctx.stacks.delete(VOLUMES).await?;
        ctx.stacks.delete_all().await?;
        Ok(())
    }
}

#[async_trait]
impl Orchestrator for EscmPlugin {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    async fn validate(&self, op: &Operation, attributes: &Attributes) -> Result<(), PluginError> {
        match op {
            // Tearing down never depends on the settings, nor does a
            // runtime notification (MCN `notify`, a no-op for ESCM).
            Operation::Dispose | Operation::Notify { .. } => Ok(()),
            Operation::Action { term, .. } => Err(PluginError::NotApplicable {
                action: term.clone(),
                message: "ESCM has no actions besides deploy and provision".into(),
            }),
            Operation::Design
            | Operation::Deploy
            | Operation::Provision
            | Operation::Update { .. } => self.check(attributes).await.map(|_| ()),
        }
    }

    async fn run(&self, op: &Operation, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        match op {
            Operation::Deploy => self.deploy(ctx).await,
            Operation::Provision => self.provision(ctx).await,
            Operation::Update { changed } => self.update(ctx, changed).await,
            Operation::Dispose => self.dispose(ctx).await,
            Operation::Design | Operation::Notify { .. } | Operation::Action { .. } => {
                ctx.default_run(&self.info.name, op).await
            }
        }
    }

    async fn state(&self, instance: InstanceView<'_>) -> Result<StateReport, PluginError> {
        crate::state::report(instance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_declares_every_setting_and_output() {
        let p = EscmPlugin::new(EscmConfig::default()).unwrap();
        let k = &p.info().kind;
        assert_eq!(
            k.id(),
            "http://schemas.mobile-cloud-networking.eu/occi/sm#escm"
        );
        assert_eq!(k.location(), "/escm/");
        let key = k.attribute(names::PUBLIC_KEY).unwrap();
        assert!(key.required && key.default.is_none());
        for secret in [
            names::MAIL_PASSWORD,
            names::DOCKER_PASSWORD,
            names::PROXY_PASSWORD,
        ] {
            assert!(k.attribute(secret).unwrap().secret, "{secret}");
        }
        let port = k.attribute(names::MAIL_PORT).unwrap();
        assert_eq!((port.min, port.max), (Some(1.0), Some(65535.0)));
        assert!(k.attribute(outputs::IP_APPSERVER).unwrap().output);
        assert!(k.attribute(outputs::URL_PORTAL).unwrap().output);
    }

    #[test]
    fn deployment_state_round_trips_and_tolerates_null() {
        let mut d = Deployment {
            logs_size: 3,
            data_size: 5,
            provisioned: true,
            ..Deployment::default()
        };
        let attributes: Attributes = [
            (
                names::MAIL_HOST.to_string(),
                serde_json::json!("mail.example.com"),
            ),
            (
                names::MAIL_PASSWORD.to_string(),
                serde_json::json!("pw-kept"),
            ),
            (
                "occi.core.title".to_string(),
                serde_json::json!("not a setting"),
            ),
        ]
        .into();
        d.record(&attributes);
        let mut state = occi_so_sdk::PluginState::default();
        assert_eq!(state.get::<Deployment>().unwrap(), Deployment::default());
        state.set(&d).unwrap();
        assert_eq!(state.get::<Deployment>().unwrap(), d);
        assert!(!format!("{d:?}").contains("pw-kept"), "{d:?}");
        assert_eq!(
            d.applied.len(),
            1,
            "passwords are kept apart, other keys ignored"
        );
        // A failed update puts the changed attributes back.
        let mut now = attributes.clone();
        let changed: Attributes = [
            (
                names::MAIL_HOST.to_string(),
                serde_json::json!("other.example.com"),
            ),
            (
                names::MAIL_PASSWORD.to_string(),
                serde_json::json!("pw-new"),
            ),
        ]
        .into();
        now.extend(changed.clone());
        d.restore(&mut now, &changed);
        assert_eq!(now, attributes);
    }
}
