//! [`ImsPlugin`]: the IMS service type as an [`Orchestrator`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use occi_so_sdk::{
    Attributes, InstanceView, KindSpec, LifecycleCtx, Operation, Orchestrator, Phase, PluginError,
    PluginInfo, PluginSource, StackSpec, StackUpdate, StateReport,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::catalog::{Catalog, LoadedTopology};
use crate::settings::{self, kind_attributes, Patterns, Settings};
use crate::template::{self, Generated, NodeLifecycle};
use crate::topology::{ServiceInstance, TopologyError};
use crate::{MCN_SM_SCHEME, STACK_ROLE};

/// The `notify` parameter naming the scaling policy whose alarm fired:
/// `<service instance>.<policy>`, e.g. `hss.msg_scaleup`.
pub const POLICY_ATTRIBUTE: &str = "ims.policy";

/// The IMS orchestrator plugin (registry name `ims`, kind
/// `http://schemas.mobile-cloud-networking.eu/occi/sm#ims` at `/ims/`).
pub struct ImsPlugin {
    info: PluginInfo,
    catalog: Catalog,
    patterns: Patterns,
}

impl std::fmt::Debug for ImsPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImsPlugin")
            .field("topologies", &self.catalog.names())
            .finish()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What the plugin remembers about an instance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct ImsState {
    /// The topology the instance was designed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    topology: Option<String>,
    /// How far the instance's lifecycle has come, as the plugin saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lifecycle: Option<Phase>,
    /// When each scaling policy last acted (Unix ms), by `<unit>.<policy>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    cooldown: BTreeMap<String, u64>,
}

impl ImsState {
    /// The nodes' lifecycle as the template's `lifecycle` parameter wants it.
    fn node_lifecycle(&self) -> NodeLifecycle {
        match self.lifecycle {
            Some(Phase::Provisioned) => NodeLifecycle::Provisioned,
            _ => NodeLifecycle::Deployed,
        }
    }
}

impl ImsPlugin {
    /// The plugin with the built-in topologies (`openims`, `clearwater`).
    pub fn new() -> Result<ImsPlugin, TopologyError> {
        ImsPlugin::with_catalog(Catalog::builtin()?)
    }

    /// The plugin with the topologies of `catalog` (e.g.
    /// [`Catalog::from_dir`] for an operator's own).
    pub fn with_catalog(catalog: Catalog) -> Result<ImsPlugin, TopologyError> {
        let attributes = kind_attributes(&catalog);
        let patterns = Patterns::new(&attributes).map_err(|e| TopologyError {
            file: "(ims kind)".into(),
            field: "attributes".into(),
            message: e.to_string(),
        })?;
        let kind = KindSpec {
            term: "ims".into(),
            scheme: MCN_SM_SCHEME.into(),
            title: Some(format!(
                "IMS as a Service (MCN IMSSO with the topologies {})",
                catalog.names().join(" and ")
            )),
            location: None,
            related: Vec::new(),
            attributes,
            actions: Vec::new(),
        };
        Ok(ImsPlugin {
            info: PluginInfo {
                name: "ims".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                description: Some(
                    "IMS core (OpenIMS or Clearwater) on OpenStack: HOT generated from the topology, as the MCN IMSSO".into(),
                ),
                source: PluginSource::Compiled,
                kind,
            },
            catalog,
            patterns,
        })
    }

    /// The topologies.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The topology, settings and generated template for `attributes`,
    /// checked as Heat would check them (what `validate` runs).
    pub fn render(
        &self,
        attributes: &Attributes,
    ) -> Result<(Arc<LoadedTopology>, Settings, Generated), PluginError> {
        let (loaded, settings) =
            Settings::from_attributes(&self.catalog, &self.patterns, attributes)?;
        let generated = template::generate(&loaded, &settings);
        generated.check_for_caller()?;
        Ok((loaded, settings, generated))
    }

    /// The service instance and policy a `notify` names.
    fn policy<'a>(
        &self,
        loaded: &'a LoadedTopology,
        event: &Attributes,
    ) -> Result<(&'a ServiceInstance, &'a crate::topology::Policy), PluginError> {
        let named = event
            .get(POLICY_ATTRIBUTE)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                PluginError::attribute(
                    POLICY_ATTRIBUTE,
                    "a notification names the scaling policy whose alarm fired, as <service instance>.<policy>",
                )
            })?;
        let t = &loaded.topology;
        let all = || {
            let v: Vec<String> = t
                .service_instances
                .iter()
                .flat_map(|si| {
                    si.policies
                        .iter()
                        .map(move |p| format!("{}.{}", si.name, p.name))
                })
                .collect();
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        named
            .split_once('.')
            .and_then(|(si, p)| {
                let si = t.service_instance(si)?;
                let policy = si.policies.iter().find(|x| x.name == p)?;
                Some((si, policy))
            })
            .ok_or_else(|| {
                PluginError::attribute(
                    POLICY_ATTRIBUTE,
                    format!(
                        "topology {} has no scaling policy {named:?} (policies: {})",
                        t.name,
                        all()
                    ),
                )
            })
    }

    /// Regenerate and update the stack (one PUT) with these settings.
    async fn apply(
        &self,
        ctx: &mut LifecycleCtx,
        generated: &Generated,
        step: &str,
    ) -> Result<(), PluginError> {
        let state: ImsState = ctx.state.get()?;
        let mut parameters = generated.parameters.clone();
        parameters.insert("lifecycle".into(), state.node_lifecycle().as_str().into());
        let update = StackUpdate::Replace {
            template: generated.text(),
            parameters,
            environment: None,
            files: BTreeMap::new(),
            timeout_mins: None,
        };
        ctx.stacks.update_ready(STACK_ROLE, &update).await?;
        tracing::debug!(step, "the IMS stack is updated");
        Ok(())
    }

    /// `design`: the attributes render a valid template.
    fn design(&self, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        let (loaded, _, _) = self.render(&ctx.attributes)?;
        ctx.state.set(&ImsState {
            topology: Some(loaded.topology.name.clone()),
            lifecycle: Some(Phase::Initialised),
            cooldown: BTreeMap::new(),
        })
    }

    /// `deploy`: generate, create the stack, wait until it is complete.
    async fn deploy(&self, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        let (loaded, _, generated) = self.render(&ctx.attributes)?;
        // Deploying again after a failed deploy starts from a clean slate.
        let failed = ctx
            .stacks
            .get(STACK_ROLE)
            .and_then(|r| r.last.as_ref())
            .is_some_and(|info| info.status.is_failed());
        if failed {
            ctx.stacks.delete(STACK_ROLE).await?;
        }
        let mut parameters = generated.parameters.clone();
        parameters.insert("lifecycle".into(), NodeLifecycle::Deployed.as_str().into());
        let spec = StackSpec {
            name: String::new(),
            template: generated.text(),
            parameters,
            environment: None,
            files: BTreeMap::new(),
            timeout_mins: None,
            disable_rollback: true,
            tags: vec![
                "occi-so".into(),
                "ims".into(),
                format!("topology={}", loaded.topology.name),
            ],
        };
        tracing::info!(
            topology = %loaded.topology.name,
            units = generated.hosts.len(),
            "deploying the IMS stack"
        );
        ctx.stacks.create_ready(STACK_ROLE, spec).await?;
        let mut state: ImsState = ctx.state.get()?;
        state.topology = Some(loaded.topology.name.clone());
        state.lifecycle = Some(Phase::Deployed);
        ctx.state.set(&state)
    }

    /// `provision`: PATCH the MCN endpoints in and start the services.
    async fn provision(&self, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        let (_, settings, _) = self.render(&ctx.attributes)?;
        let parameters = BTreeMap::from([
            ("maas_endpoint".to_string(), settings.maas.clone()),
            ("dnsaas_api".to_string(), settings.dnsaas_api.clone()),
            ("dns_forwarder".to_string(), settings.forwarder.clone()),
            (
                "lifecycle".to_string(),
                NodeLifecycle::Provisioned.as_str().to_string(),
            ),
        ]);
        ctx.stacks
            .update_ready(STACK_ROLE, &StackUpdate::Patch { parameters })
            .await?;
        let mut state: ImsState = ctx.state.get()?;
        state.lifecycle = Some(Phase::Provisioned);
        ctx.state.set(&state)
    }

    /// `update`: regenerate with the new attributes, one PUT.
    async fn update(
        &self,
        ctx: &mut LifecycleCtx,
        changed: &Attributes,
    ) -> Result<(), PluginError> {
        let (loaded, settings, generated) = self.render(&ctx.attributes)?;
        tracing::info!(
            topology = %loaded.topology.name,
            changed = ?changed.keys().collect::<Vec<_>>(),
            units = generated.hosts.len(),
            sizes = ?settings.sizes,
            "updating the IMS stack"
        );
        self.apply(ctx, &generated, "update").await
    }

    /// `notify`: a scaling alarm scales within the bounds, after the cooldown.
    async fn notify(&self, ctx: &mut LifecycleCtx, event: &Attributes) -> Result<(), PluginError> {
        let (loaded, settings, _) = self.render(&ctx.attributes)?;
        let (si, policy) = self.policy(&loaded, event)?;
        let key = format!("{}.{}", si.name, policy.name);
        let now = now_ms();
        let mut state: ImsState = ctx.state.get()?;
        let last = state.cooldown.get(&key).copied().unwrap_or(0);
        if now.saturating_sub(last) < u64::from(policy.action.cooldown) * 1000 {
            tracing::info!(policy = %key, "scaling alarm ignored: the policy is cooling down");
            return Ok(());
        }
        let current = settings.sizes.get(&si.name).copied().unwrap_or(si.size.def);
        let wanted = match policy.action.adjustment_type.as_str() {
            "ExactCapacity" => i64::from(policy.action.scaling_adjustment),
            _ => i64::from(current) + i64::from(policy.action.scaling_adjustment),
        };
        let new = wanted.clamp(i64::from(si.size.min), i64::from(si.size.max)) as u32;
        if new == current {
            tracing::info!(policy = %key, size = current, "scaling alarm: already at the bound");
            return Ok(());
        }
        let attr = format!("{}{}", settings::SIZE_PREFIX, si.name);
        let mut attributes = ctx.attributes.clone();
        attributes.insert(attr.clone(), json!(new));
        let (_, _, generated) = self.render(&attributes)?;
        tracing::info!(policy = %key, from = current, to = new, "scaling on alarm");
        self.apply(ctx, &generated, &format!("scaling policy {key}"))
            .await?;
        ctx.attributes = attributes;
        state.cooldown.insert(key, now);
        ctx.state.set(&state)
    }
}

#[async_trait]
impl Orchestrator for ImsPlugin {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    async fn validate(&self, op: &Operation, attributes: &Attributes) -> Result<(), PluginError> {
        match op {
            Operation::Dispose => Ok(()),
            Operation::Notify { event } => {
                let (loaded, _) =
                    Settings::from_attributes(&self.catalog, &self.patterns, attributes)?;
                // The only notifications an IMS acts on are scaling alarms.
                self.policy(&loaded, event).map(|_| ())
            }
            _ => self.render(attributes).map(|_| ()),
        }
    }

    async fn run(&self, op: &Operation, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        match op {
            Operation::Design => self.design(ctx),
            Operation::Deploy => self.deploy(ctx).await,
            Operation::Provision => self.provision(ctx).await,
            Operation::Update { changed } => self.update(ctx, changed).await,
            Operation::Notify { event } => self.notify(ctx, event).await,
            Operation::Action { .. } | Operation::Dispose => {
                ctx.default_run(&self.info.name, op).await
            }
        }
    }

    async fn state(&self, instance: InstanceView<'_>) -> Result<StateReport, PluginError> {
        let mut report = StateReport::from_stacks(instance.stacks);
        if let Ok((_, settings)) =
            Settings::from_attributes(&self.catalog, &self.patterns, instance.attributes)
        {
            for (si, n) in settings.sizes {
                report
                    .attributes
                    .insert(format!("{}{si}", settings::SIZE_PREFIX), json!(n));
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    //! Lifecycle rules that need a stack to fail: a minimal in-memory
    //! backend double (the real backends are exercised in `tests/`).

    use std::sync::Mutex;

    use async_trait::async_trait;
    use occi_so_sdk::{
        BackendError, Credentials, EventInfo, NullSink, ResourceInfo, StackBackend, StackInfo,
        StackRef, Stacks, ValidateInfo, ValidateRequest,
    };
    use tokio::sync::watch;

    use super::*;

    /// Creates fail until `fail_creates` reaches 0; every stack settles at once.
    #[derive(Default)]
    struct Flaky {
        fail_creates: Mutex<u32>,
        stacks: Mutex<Vec<(StackRef, watch::Sender<StackInfo>)>>,
        deleted: Mutex<Vec<String>>,
    }

    fn info(stack: &StackRef, status: &str) -> StackInfo {
        StackInfo {
            stack: stack.clone(),
            status: status.parse().unwrap(),
            status_reason: format!("{status} (test double)"),
            outputs: vec![],
            parameters: BTreeMap::new(),
            creation_time: None,
            updated_time: None,
            description: None,
            tags: vec![],
        }
    }

    impl Flaky {
        fn sender(&self, s: &StackRef) -> Result<watch::Sender<StackInfo>, BackendError> {
            self.stacks
                .lock()
                .unwrap()
                .iter()
                .find(|(r, _)| r.id == s.id)
                .map(|(_, tx)| tx.clone())
                .ok_or(BackendError::NotFound {
                    message: "no such stack".into(),
                })
        }
    }

    #[async_trait]
    impl StackBackend for Flaky {
        fn kind(&self) -> &'static str {
            "flaky"
        }
        async fn create(
            &self,
            _: &Credentials,
            spec: &StackSpec,
        ) -> Result<StackRef, BackendError> {
            let mut stacks = self.stacks.lock().unwrap();
            let r = StackRef {
                name: spec.name.clone(),
                id: format!("id-{}", stacks.len()),
            };
            let mut fail = self.fail_creates.lock().unwrap();
            let status = if *fail > 0 {
                *fail -= 1;
                "CREATE_FAILED"
            } else {
                "CREATE_COMPLETE"
            };
            stacks.push((r.clone(), watch::channel(info(&r, status)).0));
            Ok(r)
        }
        async fn get(&self, _: &Credentials, s: &StackRef) -> Result<StackInfo, BackendError> {
            Ok(self.sender(s)?.borrow().clone())
        }
        async fn find(&self, _: &Credentials, _: &str) -> Result<Option<StackRef>, BackendError> {
            Ok(None)
        }
        async fn update(
            &self,
            _: &Credentials,
            s: &StackRef,
            _: &StackUpdate,
        ) -> Result<(), BackendError> {
            self.sender(s)?.send_replace(info(s, "UPDATE_COMPLETE"));
            Ok(())
        }
        async fn delete(&self, _: &Credentials, s: &StackRef) -> Result<(), BackendError> {
            self.sender(s)?.send_replace(info(s, "DELETE_COMPLETE"));
            self.deleted.lock().unwrap().push(s.id.clone());
            Ok(())
        }
        async fn cancel(&self, _: &Credentials, _: &StackRef) -> Result<(), BackendError> {
            Err(BackendError::Conflict {
                kind: "NotSupported".into(),
                message: "this test double runs no operation long enough to cancel".into(),
            })
        }
        async fn preview_create(
            &self,
            _: &Credentials,
            _: &StackSpec,
        ) -> Result<occi_so_sdk::StackPreview, BackendError> {
            Ok(Default::default())
        }
        async fn preview_update(
            &self,
            _: &Credentials,
            _: &StackRef,
            _: &StackUpdate,
        ) -> Result<occi_so_sdk::StackPreview, BackendError> {
            Ok(Default::default())
        }
        async fn resources(
            &self,
            _: &Credentials,
            _: &StackRef,
        ) -> Result<Vec<ResourceInfo>, BackendError> {
            Ok(vec![])
        }
        async fn events(
            &self,
            _: &Credentials,
            _: &StackRef,
        ) -> Result<Vec<EventInfo>, BackendError> {
            Ok(vec![])
        }
        async fn validate(
            &self,
            _: &Credentials,
            _: &ValidateRequest,
        ) -> Result<ValidateInfo, BackendError> {
            Ok(ValidateInfo {
                description: None,
                parameters: BTreeMap::new(),
            })
        }
        async fn watch(
            &self,
            _: &Credentials,
            s: &StackRef,
        ) -> Result<watch::Receiver<StackInfo>, BackendError> {
            Ok(self.sender(s)?.subscribe())
        }
    }

    #[tokio::test]
    async fn a_failed_deploy_is_reported_and_the_next_deploy_starts_clean() {
        let backend = Arc::new(Flaky::default());
        *backend.fail_creates.lock().unwrap() = 1;
        let creds = Credentials::new("t", None);
        let mut ctx = LifecycleCtx {
            instance_id: "default".into(),
            location: "/orchestrator/default".into(),
            credentials: creds.clone(),
            attributes: Attributes::new(),
            state: Default::default(),
            mixins: Vec::new(),
            stacks: Stacks::new(
                backend.clone(),
                creds,
                Arc::new(NullSink),
                "so-ims-x",
                vec![],
            ),
        };
        let plugin = ImsPlugin::new().unwrap();
        plugin.run(&Operation::Design, &mut ctx).await.unwrap();
        let e = plugin.run(&Operation::Deploy, &mut ctx).await.unwrap_err();
        match &e {
            PluginError::Backend(BackendError::StackFailed {
                stack,
                status,
                reason,
            }) => {
                assert_eq!(stack, "so-ims-x-ims");
                assert_eq!(status.to_string(), "CREATE_FAILED");
                assert_eq!(reason, "CREATE_FAILED (test double)");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            e.to_string(),
            "stack so-ims-x-ims ended CREATE_FAILED: CREATE_FAILED (test double)"
        );
        let report = plugin
            .state(InstanceView {
                attributes: &ctx.attributes,
                stacks: ctx.stacks.records(),
                state: &ctx.state,
            })
            .await
            .unwrap();
        assert_eq!(report.attributes["occi.mcn.stack.state"], "CREATE_FAILED");
        // Deploying again deletes the failed stack and creates a new one.
        plugin.run(&Operation::Deploy, &mut ctx).await.unwrap();
        assert_eq!(*backend.deleted.lock().unwrap(), ["id-0"]);
        let record = ctx.stacks.get(crate::STACK_ROLE).unwrap();
        assert_eq!(record.stack.as_ref().unwrap().id, "id-1");
        assert_eq!(ctx.state.as_json()["lifecycle"], "deployed");
        assert_eq!(ctx.state.as_json()["topology"], "openims");
    }

    #[test]
    fn the_node_lifecycle_follows_the_plugin_state() {
        assert_eq!(
            ImsState::default().node_lifecycle(),
            NodeLifecycle::Deployed
        );
        let journaled: ImsState = occi_so_sdk::PluginState::from(
            json!({"topology": "openims", "lifecycle": "provisioned", "cooldown": {"hss.up": 5}}),
        )
        .get()
        .unwrap();
        assert_eq!(journaled.node_lifecycle(), NodeLifecycle::Provisioned);
        assert_eq!(journaled.cooldown["hss.up"], 5);
    }
}
