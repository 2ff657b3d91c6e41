//! The ConPaaS orchestrator: the MCN lifecycle and the director's
//! operations on an application's stacks.
//!
//! Stacks, by role: `manager` (the application manager, on the
//! application's cloud) and one agents stack per cloud that has nodes:
//! `agents` on the default cloud, `agents-<cloud>` on a named one.
//!
//! | call | what happens |
//! |---|---|
//! | design | attributes checked, application `INIT` |
//! | deploy | manager stack, then the agents stacks with the services' startup nodes (their manager address still empty), application `RUNNING` |
//! | provision | the services start: the agents stacks are updated with the manager's public address |
//! | update | services added, replaced or removed; every stack re-rendered and updated where its template or parameters changed |
//! | `add_nodes` / `remove_nodes` | the service's nodes on one cloud change: that cloud's agents stack is updated (created, or deleted when it has no nodes left) |
//! | `stop` | the agents stacks, then the manager stack, are deleted; services and nodes are remembered; `STOPPED` |
//! | `start` | the manager stack, then the agents stacks with the remembered nodes (and the new manager address) come back; `RUNNING` |
//! | dispose | every agents stack, then the manager stack, deleted |

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use occi_so_sdk::{
    Attributes, BuildContext, BuildError, InstanceView, LifecycleCtx, Operation, Orchestrator,
    PluginError, PluginInfo, PluginSource, StackInfo, StackRecord, StackSpec, StackUpdate,
    StateReport,
};
use serde_json::{json, Value};

use crate::kind::{
    self, ADD_NODES, ATTR_MANAGER_IP, ATTR_NODES, ATTR_SERVICES, PARAM_CLOUD, PARAM_NODES,
    PARAM_SERVICE, REMOVE_NODES, START, STOP,
};
use crate::service_type::RoleCounts;
use crate::settings::{check_cloud, Settings, DEFAULT_CLOUD};
use crate::state::{AppState, AppStatus};
use crate::template::{node_groups, Rendered, TemplateError, Templates};
use crate::topology::{count_of, parse_services, Placement, Services};

/// The manager stack's role.
pub const MANAGER_ROLE: &str = "manager";
/// The agents stack role on the default cloud; `agents-<cloud>` elsewhere.
pub const AGENTS_ROLE: &str = "agents";
/// Heat's timeout for one stack operation.
const STACK_TIMEOUT_MINS: u32 = 60;

/// The agents stack role of `cloud`.
pub fn agents_role(cloud: &str) -> String {
    if cloud == DEFAULT_CLOUD {
        AGENTS_ROLE.to_string()
    } else {
        format!("{AGENTS_ROLE}-{cloud}")
    }
}

/// The backend cloud of a ConPaaS cloud name (`None`: the default backend).
fn backend_cloud(cloud: &str) -> Option<&str> {
    (cloud != DEFAULT_CLOUD).then_some(cloud)
}

fn is_agents_role(role: &str) -> bool {
    role == AGENTS_ROLE || role.starts_with("agents-")
}

/// The ConPaaS orchestrator plugin (`conpaas`, kind
/// `http://schemas.mobile-cloud-networking.eu/occi/sm#conpaas` at `/conpaas/`).
pub struct Conpaas {
    info: PluginInfo,
    templates: Templates,
    clouds: Option<Vec<String>>,
}

impl std::fmt::Debug for Conpaas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conpaas")
            .field("clouds", &self.clouds)
            .finish_non_exhaustive()
    }
}

impl Conpaas {
    /// The plugin, with `templates/conpaas/` parsed and validated.
    pub fn new() -> Result<Conpaas, TemplateError> {
        Ok(Conpaas {
            info: PluginInfo {
                name: kind::TERM.into(),
                version: env!("CARGO_PKG_VERSION").into(),
                description: Some(
                    "ConPaaS applications: an application manager VM and the agents of php, java, mysql, xtreemfs, generic and helloworld services, on one or more clouds".into(),
                ),
                source: PluginSource::Compiled,
                kind: kind::kind(),
            },
            templates: Templates::load()?,
            clouds: None,
        })
    }

    /// Tell the plugin the named clouds the server is configured with (the
    /// ones `Stacks::with_clouds` gets), so that an unknown cloud is a 400
    /// when the request arrives rather than a failed operation.
    pub fn with_clouds(mut self, names: Vec<String>) -> Conpaas {
        self.clouds = Some(names);
        self
    }

    /// The parsed templates.
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    fn desired(
        &self,
        attrs: &Attributes,
        known: Option<&[String]>,
    ) -> Result<(Settings, Services), PluginError> {
        let settings = Settings::from_attributes(attrs, known)?;
        let services = parse_services(
            attrs.get(ATTR_SERVICES).unwrap_or(&Value::Null),
            &settings.cloud,
            known,
        )
        .map_err(|m| PluginError::attribute(ATTR_SERVICES, m))?;
        Ok((settings, services))
    }

    /// The manager stack of `settings`.
    pub fn render_manager(&self, settings: &Settings) -> Result<Rendered, PluginError> {
        self.templates
            .manager(settings.stack_parameters(&settings.cloud))
            .map_err(PluginError::Invalid)
    }

    /// The agents stack of `cloud`: its nodes in `placement`, with the
    /// manager's address (empty before the services start).
    pub fn render_agents(
        &self,
        settings: &Settings,
        services: &Services,
        placement: &Placement,
        cloud: &str,
        manager_ip: &str,
    ) -> Result<Rendered, PluginError> {
        let groups = node_groups(services, &placement.on_cloud(cloud));
        let mut params = settings.stack_parameters(cloud);
        params.insert("manager_ip".into(), manager_ip.to_string());
        self.templates
            .agents(cloud, &settings.application, &groups, params)
            .map_err(PluginError::Invalid)
    }

    fn render_all(
        &self,
        settings: &Settings,
        services: &Services,
        placement: &Placement,
    ) -> Result<(), PluginError> {
        self.render_manager(settings)?;
        for cloud in placement.clouds() {
            self.render_agents(settings, services, placement, &cloud, "")?;
        }
        Ok(())
    }

    // ---- stacks ----

    /// Creates the stack of `role` on `cloud`, or updates it when what it
    /// was given changed (or it failed); does not wait. `true` when a
    /// create or update was started.
    async fn put_stack(
        &self,
        ctx: &mut LifecycleCtx,
        st: &mut AppState,
        role: &str,
        cloud: &str,
        rendered: Rendered,
    ) -> Result<bool, PluginError> {
        let digest = rendered.digest();
        let existing = ctx.stacks.get(role).cloned();
        let started = match existing {
            Some(StackRecord {
                stack: Some(_),
                last,
                ..
            }) => {
                let failed = last.as_ref().is_some_and(|l| l.status.is_failed());
                if !failed && st.sent.get(role) == Some(&digest) {
                    false
                } else {
                    let update = StackUpdate::Replace {
                        template: rendered.template,
                        parameters: rendered.parameters,
                        environment: None,
                        files: rendered.files,
                        timeout_mins: Some(STACK_TIMEOUT_MINS),
                    };
                    tracing::info!(role, cloud, "conpaas: updating stack");
                    ctx.stacks.update(role, &update).await?;
                    true
                }
            }
            _ => {
                let spec = StackSpec {
                    name: String::new(),
                    template: rendered.template,
                    parameters: rendered.parameters,
                    environment: None,
                    files: rendered.files,
                    timeout_mins: Some(STACK_TIMEOUT_MINS),
                    disable_rollback: true,
                    tags: vec!["conpaas".into(), format!("conpaas-{role}")],
                };
                ctx.stacks
                    .create_on(backend_cloud(cloud), role, spec)
                    .await?;
                true
            }
        };
        st.sent.insert(role.to_string(), digest);
        Ok(started)
    }

    /// The manager stack as `settings` want it, complete; its public address.
    async fn ensure_manager(
        &self,
        ctx: &mut LifecycleCtx,
        st: &mut AppState,
        settings: &Settings,
        stage: &str,
    ) -> Result<Option<String>, PluginError> {
        let rendered = self.render_manager(settings)?;
        let started = self
            .put_stack(ctx, st, MANAGER_ROLE, &settings.cloud, rendered)
            .await;
        let started = match started {
            Ok(s) => s,
            Err(e) => {
                st.sent.remove(MANAGER_ROLE);
                return Err(e);
            }
        };
        tracing::debug!(stage, started, "conpaas: the manager stack");
        let info = if started {
            ctx.stacks.wait_ready(MANAGER_ROLE).await?
        } else {
            ctx.stacks.refresh(MANAGER_ROLE).await?
        };
        Ok(manager_address(&info))
    }

    /// Every cloud's agents stack as `st.placement` wants it: created,
    /// updated, or deleted when the cloud has no nodes left; then waited for.
    async fn apply_agents(
        &self,
        ctx: &mut LifecycleCtx,
        st: &mut AppState,
        settings: &Settings,
        stage: &str,
    ) -> Result<(), PluginError> {
        let manager_ip = if st.services_started {
            st.manager_ip.clone().unwrap_or_default()
        } else {
            String::new()
        };
        let clouds = st.placement.clouds();
        let wanted: BTreeSet<String> = clouds.iter().map(|c| agents_role(c)).collect();
        let services = st.services.clone();
        let placement = st.placement.clone();
        let mut started = Vec::new();
        for cloud in &clouds {
            let role = agents_role(cloud);
            let rendered =
                self.render_agents(settings, &services, &placement, cloud, &manager_ip)?;
            match self.put_stack(ctx, st, &role, cloud, rendered).await {
                Ok(true) => started.push(role),
                Ok(false) => {}
                Err(e) => {
                    st.sent.remove(&role);
                    return Err(e);
                }
            }
        }
        let unwanted: Vec<String> = ctx
            .stacks
            .records()
            .iter()
            .map(|r| r.role.clone())
            .filter(|r| is_agents_role(r) && !wanted.contains(r))
            .collect();
        for role in &started {
            tracing::debug!(stage, role = %role, "conpaas: waiting for an agents stack");
            ctx.stacks.wait_ready(role).await?;
        }
        for role in unwanted {
            tracing::info!(role = %role, "conpaas: deleting the stack of a cloud without nodes");
            ctx.stacks.delete(&role).await?;
            st.sent.remove(&role);
        }
        Ok(())
    }

    /// Deletes every agents stack, then the manager stack.
    async fn delete_stacks(ctx: &mut LifecycleCtx, st: &mut AppState) -> Result<(), PluginError> {
        let roles: Vec<String> = ctx
            .stacks
            .records()
            .iter()
            .map(|r| r.role.clone())
            .collect();
        let (agents, others): (Vec<String>, Vec<String>) =
            roles.into_iter().partition(|r| is_agents_role(r));
        for role in agents
            .iter()
            .chain(others.iter().filter(|r| *r != MANAGER_ROLE))
        {
            ctx.stacks.delete(role).await?;
            st.sent.remove(role);
        }
        ctx.stacks.delete(MANAGER_ROLE).await?;
        st.sent.remove(MANAGER_ROLE);
        Ok(())
    }

    /// Stores the application's state and its mirror in the context,
    /// whatever the outcome of the call.
    fn commit(ctx: &mut LifecycleCtx, st: &AppState) -> Result<(), PluginError> {
        st.mirror(&mut ctx.attributes);
        ctx.state.set(st)
    }

    // ---- planning (shared by validate and the calls) ----

    /// The placement after `add_nodes` / `remove_nodes` with `params`.
    pub fn plan_scaling(
        term: &str,
        params: &Attributes,
        services: &Services,
        placement: &Placement,
        known: Option<&[String]>,
    ) -> Result<(Placement, Vec<String>), PluginError> {
        let service = match params.get(PARAM_SERVICE) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(PluginError::attribute(
                    PARAM_SERVICE,
                    format!("expected a service name, got {other}"),
                ))
            }
            None => match services.keys().collect::<Vec<_>>()[..] {
                [one] => one.clone(),
                [] => {
                    return Err(PluginError::attribute(
                        PARAM_SERVICE,
                        "the application has no services (add one to conpaas.services)",
                    ))
                }
                _ => {
                    return Err(PluginError::attribute(
                        PARAM_SERVICE,
                        format!(
                            "required: the application has several services ({})",
                            services.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ))
                }
            },
        };
        let Some(spec) = services.get(&service) else {
            return Err(PluginError::attribute(
                PARAM_SERVICE,
                format!(
                    "unknown service '{service}' (services: {})",
                    if services.is_empty() {
                        "none".to_string()
                    } else {
                        services.keys().cloned().collect::<Vec<_>>().join(", ")
                    }
                ),
            ));
        };
        let t = spec.service_type;
        let nodes = match params.get(PARAM_NODES) {
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(PluginError::attribute(
                    PARAM_NODES,
                    format!(
                        "expected an object of counts by role, e.g. {{\"web\": 2}}, got {other}"
                    ),
                ))
            }
            None => {
                return Err(PluginError::attribute(
                    PARAM_NODES,
                    "required: counts by role, e.g. {\"web\": 2}",
                ))
            }
        };
        let mut counts = RoleCounts::new();
        for (role, n) in nodes {
            let Some(r) = t.role(role) else {
                return Err(PluginError::attribute(
                    PARAM_NODES,
                    format!(
                        "unknown role '{role}' for service type '{t}' (roles {term} takes: {})",
                        t.scalable_role_names()
                    ),
                ));
            };
            if !r.scalable {
                return Err(PluginError::attribute(
                    PARAM_NODES,
                    format!(
                        "role '{role}' is the {t} service's starting node; {term} takes the roles {}",
                        t.scalable_role_names()
                    ),
                ));
            }
            if term == REMOVE_NODES && !r.removable {
                return Err(PluginError::attribute(
                    PARAM_NODES,
                    format!("the '{role}' node of a {t} service cannot be removed"),
                ));
            }
            let Some(n) = count_of(n) else {
                return Err(PluginError::attribute(
                    PARAM_NODES,
                    format!("the count of role '{role}' must be a whole number >= 0, got {n}"),
                ));
            };
            if n > 0 {
                counts.insert(role.clone(), n);
            }
        }
        if counts.is_empty() {
            return Err(PluginError::attribute(
                PARAM_NODES,
                format!(
                    "give a positive count for at least one role ({})",
                    t.scalable_role_names()
                ),
            ));
        }
        let cloud = match params.get(PARAM_CLOUD) {
            Some(Value::String(c)) => {
                check_cloud(PARAM_CLOUD, c, known)?;
                Some(c.clone())
            }
            Some(other) => {
                return Err(PluginError::attribute(
                    PARAM_CLOUD,
                    format!("expected a cloud name, got {other}"),
                ))
            }
            None => None,
        };
        let mut next = placement.clone();
        let touched = if term == ADD_NODES {
            let target = cloud.unwrap_or_else(|| spec.cloud.clone());
            next.add(&service, &target, &counts);
            vec![target]
        } else {
            let before = placement.0.get(&service).cloned().unwrap_or_default();
            next.remove(&service, cloud.as_deref(), &spec.cloud, &counts)
                .map_err(|m| PluginError::attribute(PARAM_NODES, m))?;
            let after = next.0.get(&service).cloned().unwrap_or_default();
            before
                .keys()
                .filter(|c| before.get(*c) != after.get(*c))
                .cloned()
                .collect()
        };
        next.check(services)
            .map_err(|m| PluginError::attribute(PARAM_NODES, m))?;
        Ok((next, touched))
    }

    /// The placement after the services changed from `old` to `new`:
    /// added services with their startup nodes, removed ones gone, changed
    /// ones replaced by their startup nodes, the others as they are.
    pub fn plan_services(old: &Services, new: &Services, placement: &Placement) -> Placement {
        let mut next = placement.clone();
        for name in old.keys() {
            if !new.contains_key(name) {
                next.remove_service(name);
            }
        }
        for (name, spec) in new {
            if old.get(name) != Some(spec) {
                next.remove_service(name);
                next.add(name, &spec.cloud, &spec.startup);
            }
        }
        next
    }

    fn state_of(attrs: &Attributes) -> AppStatus {
        AppStatus::from_attributes(attrs)
    }
}

/// The manager's public address in its stack's outputs, if it is one.
fn manager_address(info: &StackInfo) -> Option<String> {
    let ip = info.output(ATTR_MANAGER_IP)?.as_str()?;
    let ok = !ip.is_empty()
        && ip.len() <= 255
        && ip
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-'));
    ok.then(|| ip.to_string())
}

/// Builds the ConPaaS plugin as a server registers it, told the server's
/// named clouds.
pub fn build(ctx: &BuildContext) -> Result<Vec<Arc<dyn Orchestrator>>, BuildError> {
    let plugin = Conpaas::new()
        .map_err(|e| BuildError::new(kind::TERM, e.to_string()))?
        .with_clouds(ctx.clouds().to_vec());
    Ok(vec![Arc::new(plugin)])
}

fn not_applicable(action: &str, message: impl Into<String>) -> PluginError {
    PluginError::NotApplicable {
        action: action.to_string(),
        message: message.into(),
    }
}

#[async_trait]
impl Orchestrator for Conpaas {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    async fn validate(&self, op: &Operation, attributes: &Attributes) -> Result<(), PluginError> {
        let known = self.clouds.as_deref();
        match op {
            Operation::Design | Operation::Deploy | Operation::Update { .. } => {
                let (settings, services) = self.desired(attributes, known)?;
                let placement = Placement::startup(&services);
                placement
                    .check(&services)
                    .map_err(|m| PluginError::attribute(ATTR_SERVICES, m))?;
                self.render_all(&settings, &services, &placement)
            }
            Operation::Action { term, parameters } => {
                let status = Self::state_of(attributes);
                match term.as_str() {
                    ADD_NODES | REMOVE_NODES => {
                        if status != AppStatus::Running {
                            return Err(not_applicable(
                                term,
                                format!("the application is {}; start it first", status.as_str()),
                            ));
                        }
                        let (settings, services) = self.desired(attributes, known)?;
                        let placement = Placement::from_value(
                            attributes.get(ATTR_NODES).unwrap_or(&Value::Null),
                        );
                        let (next, touched) =
                            Self::plan_scaling(term, parameters, &services, &placement, known)?;
                        for cloud in touched {
                            if !next.on_cloud(&cloud).is_empty() {
                                self.render_agents(&settings, &services, &next, &cloud, "")?;
                            }
                        }
                        Ok(())
                    }
                    START => {
                        if status != AppStatus::Stopped {
                            return Err(not_applicable(
                                term,
                                format!("the application is {}, not STOPPED", status.as_str()),
                            ));
                        }
                        let (settings, services) = self.desired(attributes, known)?;
                        let placement = Placement::from_value(
                            attributes.get(ATTR_NODES).unwrap_or(&Value::Null),
                        );
                        self.render_all(&settings, &services, &placement)
                    }
                    STOP => {
                        if status != AppStatus::Running {
                            return Err(not_applicable(
                                term,
                                format!("the application is {}, not RUNNING", status.as_str()),
                            ));
                        }
                        Ok(())
                    }
                    _ => Ok(()),
                }
            }
            Operation::Provision | Operation::Notify { .. } | Operation::Dispose => Ok(()),
        }
    }

    async fn run(&self, op: &Operation, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        match op {
            Operation::Design => Self::design(ctx),
            Operation::Deploy => self.deploy(ctx).await,
            Operation::Provision => self.provision(ctx).await,
            Operation::Update { .. } => self.update(ctx).await,
            Operation::Action { term, parameters } => self.action(ctx, term, parameters).await,
            Operation::Dispose => self.dispose(ctx).await,
            Operation::Notify { .. } => ctx.default_run(&self.info.name, op).await,
        }
    }

    async fn state(&self, instance: InstanceView<'_>) -> Result<StateReport, PluginError> {
        self.report(instance)
    }
}

impl Conpaas {
    // ---- the operations ----

    fn design(ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        Self::commit(ctx, &AppState::default())
    }

    async fn deploy(&self, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        let known = ctx.stacks.cloud_names();
        let (settings, services) = self.desired(&ctx.attributes, Some(&known))?;
        let placement = Placement::startup(&services);
        placement
            .check(&services)
            .map_err(|m| PluginError::attribute(ATTR_SERVICES, m))?;
        let mut st = ctx.state.get::<AppState>()?;
        st.services = services;
        st.placement = placement;
        st.services_started = false;
        let result = async {
            let ip = self
                .ensure_manager(ctx, &mut st, &settings, "deploy")
                .await?;
            st.manager_ip = ip;
            st.status = AppStatus::Running;
            self.apply_agents(ctx, &mut st, &settings, "deploy").await
        }
        .await;
        Self::commit(ctx, &st)?;
        result
    }

    async fn provision(&self, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        let known = ctx.stacks.cloud_names();
        let (settings, _) = self.desired(&ctx.attributes, Some(&known))?;
        let mut st = ctx.state.get::<AppState>()?;
        let result = async {
            let info = ctx.stacks.refresh(MANAGER_ROLE).await?;
            let Some(ip) = manager_address(&info) else {
                return Err(PluginError::Failed(format!(
                    "provision: the manager stack {} reports no public address (output {ATTR_MANAGER_IP} is {}); the agents cannot reach their manager. Is a floating IP available on '{}' (or conpaas.auto_assign_floating_ip right for this cloud)?",
                    info.stack.name,
                    info.output(ATTR_MANAGER_IP).cloned().unwrap_or(Value::Null),
                    settings.for_cloud(&settings.cloud).floating_network,
                )));
            };
            st.manager_ip = Some(ip);
            st.services_started = true;
            self.apply_agents(ctx, &mut st, &settings, "provision").await
        }
        .await;
        Self::commit(ctx, &st)?;
        result
    }

    async fn update(&self, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        let known = ctx.stacks.cloud_names();
        let (settings, services) = self.desired(&ctx.attributes, Some(&known))?;
        let mut st = ctx.state.get::<AppState>()?;
        let placement = Self::plan_services(&st.services, &services, &st.placement);
        placement
            .check(&services)
            .map_err(|m| PluginError::attribute(ATTR_SERVICES, m))?;
        st.services = services;
        st.placement = placement;
        let result = async {
            if st.status == AppStatus::Stopped {
                return Ok(()); // applies at start
            }
            let ip = self
                .ensure_manager(ctx, &mut st, &settings, "update")
                .await?;
            if st.services_started {
                st.manager_ip = ip;
            }
            self.apply_agents(ctx, &mut st, &settings, "update").await
        }
        .await;
        Self::commit(ctx, &st)?;
        result
    }

    async fn action(
        &self,
        ctx: &mut LifecycleCtx,
        term: &str,
        parameters: &Attributes,
    ) -> Result<(), PluginError> {
        let known = ctx.stacks.cloud_names();
        let (settings, _) = self.desired(&ctx.attributes, Some(&known))?;
        let mut st = ctx.state.get::<AppState>()?;
        let result = match term {
            ADD_NODES | REMOVE_NODES => {
                if st.status != AppStatus::Running {
                    return Err(not_applicable(
                        term,
                        format!("the application is {}; start it first", st.status.as_str()),
                    ));
                }
                let (next, _) =
                    Self::plan_scaling(term, parameters, &st.services, &st.placement, Some(&known))?;
                st.placement = next;
                self.apply_agents(ctx, &mut st, &settings, term).await
            }
            STOP => {
                if st.status != AppStatus::Running {
                    return Err(not_applicable(
                        term,
                        format!("the application is {}, not RUNNING", st.status.as_str()),
                    ));
                }
                let r = Self::delete_stacks(ctx, &mut st).await;
                if r.is_ok() {
                    st.status = AppStatus::Stopped;
                    st.manager_ip = None;
                }
                r
            }
            START => {
                if st.status != AppStatus::Stopped {
                    return Err(not_applicable(
                        term,
                        format!("the application is {}, not STOPPED", st.status.as_str()),
                    ));
                }
                async {
                    let ip = self.ensure_manager(ctx, &mut st, &settings, "start").await?;
                    if st.services_started {
                        st.manager_ip = Some(ip.ok_or_else(|| {
                            PluginError::Failed(format!(
                                "start: the new manager reports no public address (output {ATTR_MANAGER_IP}); the agents cannot reach it"
                            ))
                        })?);
                    } else {
                        st.manager_ip = ip;
                    }
                    st.status = AppStatus::Running;
                    self.apply_agents(ctx, &mut st, &settings, "start").await
                }
                .await
            }
            other => Err(not_applicable(
                other,
                format!("conpaas has no action '{other}' (actions: {ADD_NODES}, {REMOVE_NODES}, {START}, {STOP})"),
            )),
        };
        Self::commit(ctx, &st)?;
        result
    }

    async fn dispose(&self, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        let mut st = ctx.state.get::<AppState>()?;
        let result = Self::delete_stacks(ctx, &mut st).await;
        Self::commit(ctx, &st)?;
        result
    }

    fn report(&self, instance: InstanceView<'_>) -> Result<StateReport, PluginError> {
        let attributes = instance.attributes;
        let st = instance.state.get::<AppState>().unwrap_or_default();
        let mut report = StateReport::from_stacks(instance.stacks);
        let a = &mut report.attributes;
        a.insert(kind::ATTR_STATE.into(), json!(st.status.as_str()));
        a.insert(ATTR_NODES.into(), st.placement.to_value());
        let services = parse_services(
            attributes.get(ATTR_SERVICES).unwrap_or(&Value::Null),
            DEFAULT_CLOUD,
            None,
        )
        .unwrap_or_else(|_| st.services.clone());
        let mut names: BTreeMap<String, &'static str> = BTreeMap::new();
        for (name, spec) in st.services.iter().chain(services.iter()) {
            names.insert(name.clone(), spec.service_type.name());
        }
        for (name, type_name) in names {
            let service_state = match st.status {
                AppStatus::Stopped => "STOPPED",
                AppStatus::Running if st.services_started && st.services.contains_key(&name) => {
                    "RUNNING"
                }
                _ => "INIT",
            };
            a.insert(format!("conpaas.service.{name}.type"), json!(type_name));
            a.insert(
                format!("conpaas.service.{name}.state"),
                json!(service_state),
            );
            for (role, n) in st.placement.totals(&name) {
                a.insert(format!("conpaas.nodes.{name}.{role}"), json!(n));
            }
        }
        if let Some(ip) = &st.manager_ip {
            a.entry(ATTR_MANAGER_IP.to_string())
                .or_insert_with(|| json!(ip));
        }
        Ok(report)
    }
}
