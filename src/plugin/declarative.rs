//! The generic orchestrator that runs any declarative manifest: its
//! stacks created, updated and deleted in the order the manifest gives,
//! parameters computed from attributes, literals and earlier stacks'
//! outputs, and every request checked against the templates' parameter
//! constraints before it is accepted (a 400 naming the attribute).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use heat::ParamType;
use indexmap::IndexMap;
use occi_so_sdk::{
    Attributes, InstanceView, LifecycleCtx, Operation, Orchestrator, PluginError, PluginInfo,
    StackRecord, StackSpec, StackUpdate, StateReport,
};
use serde_json::Value;

/// A template with its environment and `files`, parsed and validated once.
#[derive(Debug)]
pub struct TemplateDef {
    /// Path inside the plugin folder.
    pub file: String,
    /// Path as shown in messages (folder joined).
    pub shown: String,
    /// The text sent to Heat.
    pub text: String,
    /// The parsed form (parameter schemas, outputs).
    pub parsed: heat::StackTemplate,
    /// `get_file` targets and nested templates.
    pub files: heat::Files,
    /// The merged environment (JSON text), if the manifest gives one.
    pub environment: Option<String>,
}

/// What an instance field source gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceField {
    /// The instance id (last path segment).
    Id,
    /// The instance path.
    Location,
    /// The caller's tenant.
    Tenant,
}

/// Where a Heat parameter's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// An OCCI attribute of the instance (or a parameter of the action).
    Attribute(String),
    /// An output of another stack of the instance.
    Output {
        /// Its role.
        role: String,
        /// The output key.
        key: String,
    },
    /// A fixed value (as Heat receives it: text).
    Literal(String),
    /// A field of the instance.
    Instance(InstanceField),
    /// A fresh UUID on every use.
    Uuid,
}

/// Create, update or delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepVerb {
    /// Create the stack and wait.
    Create,
    /// Update it (PATCH, or PUT with a new template) and wait.
    Update,
    /// Delete it and wait.
    Delete,
}

/// One step of a phase or action, resolved.
#[derive(Clone, Debug)]
pub struct Step {
    /// What it does.
    pub verb: StepVerb,
    /// The stack role.
    pub role: String,
    /// A full update (PUT with template, environment, files).
    pub replace: bool,
    /// The template (and environment) it runs with.
    pub template: Arc<TemplateDef>,
    /// Heat stack timeout.
    pub timeout_mins: u32,
    /// Parameter sources (the stack's, then the step's).
    pub parameters: IndexMap<String, Source>,
}

/// One stack role.
#[derive(Clone, Debug)]
pub struct StackDef {
    /// Its template and default environment.
    pub template: Arc<TemplateDef>,
    /// Its parameter sources.
    pub parameters: IndexMap<String, Source>,
    /// Heat stack timeout.
    pub timeout_mins: u32,
}

/// A stack output shown as an attribute.
#[derive(Clone, Debug)]
pub struct OutputMap {
    /// Attribute name.
    pub attribute: String,
    /// Stack role.
    pub role: String,
    /// Output key.
    pub key: String,
}

/// A loaded manifest: the plugin the registry holds.
#[derive(Debug)]
pub struct Definition {
    /// Name, version, source, kind.
    pub info: PluginInfo,
    /// The folder it was loaded from.
    pub folder: PathBuf,
    /// Digest of every file read (a reload with the same digest changes nothing).
    pub fingerprint: String,
    /// Stacks by role, in manifest order.
    pub stacks: IndexMap<String, StackDef>,
    /// Deploy steps.
    pub deploy: Vec<Step>,
    /// Provision steps.
    pub provision: Vec<Step>,
    /// Update steps (`None`: patch what changed).
    pub update: Option<Vec<Step>>,
    /// Dispose steps (`None`: delete every stack, last first).
    pub dispose: Option<Vec<Step>>,
    /// Action steps by term.
    pub actions: BTreeMap<String, Vec<Step>>,
    /// Outputs shown as attributes (`None`: every output under its key).
    pub outputs: Option<Vec<OutputMap>>,
    /// Secret attribute names.
    pub secrets: BTreeSet<String>,
    /// `example` values of attributes (for `plugins validate`).
    pub examples: Attributes,
}

/// A parameter value as Heat's API receives it: text. Lists become
/// `a,b` for a `comma_delimited_list`, JSON otherwise.
fn parameter_text(v: &Value, ty: Option<ParamType>) -> String {
    match (v, ty) {
        (Value::String(s), _) => s.clone(),
        (Value::Array(items), Some(ParamType::CommaDelimitedList)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        (other, _) => other.to_string(),
    }
}

fn output_of(records: &[StackRecord], role: &str, key: &str) -> Option<Value> {
    records
        .iter()
        .find(|r| r.role == role)
        .and_then(|r| r.last.as_ref())
        .and_then(|i| i.outputs.iter().find(|o| o.output_key == key))
        .map(|o| o.output_value.clone())
        .filter(|v| !v.is_null())
}

impl Definition {
    /// The name of the template file a step uses (for messages).
    fn param_type(step: &Step, name: &str) -> Option<ParamType> {
        step.template
            .parsed
            .template()
            .parameters
            .get(name)
            .map(|s| s.ty)
    }

    /// The parameter values of `step` for this instance now.
    fn parameters(
        &self,
        ctx: &LifecycleCtx,
        step: &Step,
        action: Option<&Attributes>,
        only: Option<&BTreeSet<String>>,
    ) -> Result<BTreeMap<String, String>, PluginError> {
        let mut out = BTreeMap::new();
        for (name, source) in &step.parameters {
            if only.is_some_and(|o| !o.contains(name)) {
                continue;
            }
            let ty = Self::param_type(step, name);
            let value = match source {
                Source::Attribute(a) => action
                    .and_then(|p| p.get(a))
                    .or_else(|| ctx.attributes.get(a))
                    .map(|v| parameter_text(v, ty)),
                Source::Output { role, key } => {
                    let v = output_of(ctx.stacks.records(), role, key).ok_or_else(|| {
                        PluginError::Failed(format!(
                            "parameter {name} of stack {}: stack {role} has no output {key} (is it complete?)",
                            step.role
                        ))
                    })?;
                    Some(parameter_text(&v, ty))
                }
                Source::Literal(s) => Some(s.clone()),
                Source::Instance(InstanceField::Id) => Some(ctx.instance_id.clone()),
                Source::Instance(InstanceField::Location) => Some(ctx.location.clone()),
                Source::Instance(InstanceField::Tenant) => Some(ctx.credentials.project.clone()),
                Source::Uuid => Some(uuid::Uuid::new_v4().to_string()),
            };
            if let Some(v) = value {
                out.insert(name.clone(), v);
            }
        }
        Ok(out)
    }

    fn stack_spec(&self, step: &Step, parameters: BTreeMap<String, String>) -> StackSpec {
        StackSpec {
            name: String::new(),
            template: step.template.text.clone(),
            parameters,
            environment: step.template.environment.clone(),
            files: step.template.files.clone(),
            timeout_mins: Some(step.timeout_mins),
            disable_rollback: true,
            tags: vec!["occi-so".into(), self.info.name.clone()],
        }
    }

    async fn run_steps(
        &self,
        ctx: &mut LifecycleCtx,
        steps: &[Step],
        what: &str,
        action: Option<&Attributes>,
    ) -> Result<(), PluginError> {
        for step in steps {
            tracing::debug!(
                step = %format!("{what} ({} {})", verb_word(step.verb), step.role),
                "declarative step"
            );
            match step.verb {
                StepVerb::Create => {
                    let done = ctx
                        .stacks
                        .get(&step.role)
                        .and_then(|r| r.last.as_ref())
                        .is_some_and(|i| i.status.is_ready());
                    if done {
                        continue; // done by an earlier, interrupted attempt
                    }
                    let params = self.parameters(ctx, step, action, None)?;
                    ctx.stacks
                        .create_ready(&step.role, self.stack_spec(step, params))
                        .await?;
                }
                StepVerb::Update => {
                    let params = self.parameters(ctx, step, action, None)?;
                    let update = if step.replace {
                        StackUpdate::Replace {
                            template: step.template.text.clone(),
                            parameters: params,
                            environment: step.template.environment.clone(),
                            files: step.template.files.clone(),
                            timeout_mins: Some(step.timeout_mins),
                        }
                    } else {
                        StackUpdate::Patch { parameters: params }
                    };
                    ctx.stacks.update_ready(&step.role, &update).await?;
                }
                StepVerb::Delete => ctx.stacks.delete(&step.role).await?,
            }
        }
        Ok(())
    }

    /// The default update: in stack order, PATCH the parameters whose
    /// sources changed (an attribute in `changed`, or an output of a stack
    /// whose outputs this update changed).
    async fn patch_changed(
        &self,
        ctx: &mut LifecycleCtx,
        changed: &Attributes,
    ) -> Result<(), PluginError> {
        let mut moved: BTreeSet<String> = BTreeSet::new();
        for (role, stack) in &self.stacks {
            if ctx
                .stacks
                .get(role)
                .and_then(|r| r.stack.as_ref())
                .is_none()
            {
                continue;
            }
            let affected: BTreeSet<String> = stack
                .parameters
                .iter()
                .filter(|(_, s)| match s {
                    Source::Attribute(a) => changed.contains_key(a),
                    Source::Output { role, .. } => moved.contains(role),
                    _ => false,
                })
                .map(|(n, _)| n.clone())
                .collect();
            if affected.is_empty() {
                continue;
            }
            let step = Step {
                verb: StepVerb::Update,
                role: role.clone(),
                replace: false,
                template: stack.template.clone(),
                timeout_mins: stack.timeout_mins,
                parameters: stack.parameters.clone(),
            };
            let params = self.parameters(ctx, &step, None, Some(&affected))?;
            let before = ctx
                .stacks
                .get(role)
                .and_then(|r| r.last.as_ref())
                .map(|i| i.outputs.clone());
            let info = ctx
                .stacks
                .update_ready(role, &StackUpdate::Patch { parameters: params })
                .await?;
            if before.as_ref() != Some(&info.outputs) {
                moved.insert(role.clone());
            }
        }
        Ok(())
    }

    /// Checks the attribute-sourced parameters of `steps` against the
    /// templates' parameter schemas.
    fn check(
        &self,
        steps: &[&Step],
        attributes: &Attributes,
        action: Option<&Attributes>,
        only: Option<&Attributes>,
    ) -> Result<(), PluginError> {
        for step in steps {
            let declared = &step.template.parsed.template().parameters;
            for (param, source) in &step.parameters {
                let Source::Attribute(a) = source else {
                    continue;
                };
                if only.is_some_and(|o| !o.contains_key(a)) {
                    continue;
                }
                let Some(schema) = declared.get(param) else {
                    continue;
                };
                let value = action.and_then(|p| p.get(a)).or_else(|| attributes.get(a));
                let Some(value) = value else {
                    let needs_value = (step.verb == StepVerb::Create || step.replace)
                        && schema.default.is_none()
                        && !step
                            .template
                            .parsed
                            .environment()
                            .parameters
                            .contains_key(param)
                        && !step
                            .template
                            .parsed
                            .environment()
                            .parameter_defaults
                            .contains_key(param);
                    if needs_value {
                        return Err(PluginError::attribute(
                            a.clone(),
                            format!(
                                "a value is needed: it is Heat parameter '{param}' of {}, which has no default",
                                step.template.file
                            ),
                        ));
                    }
                    continue;
                };
                let text = parameter_text(value, Some(schema.ty));
                if let Err(e) = schema.coerce(&Value::String(text)) {
                    let message = if self.secrets.contains(a) {
                        format!(
                            "the value does not meet the constraints of hidden Heat parameter '{param}' of {}",
                            step.template.file
                        )
                    } else {
                        format!("Heat parameter '{param}' of {}: {e}", step.template.file)
                    };
                    return Err(PluginError::attribute(a.clone(), message));
                }
            }
        }
        Ok(())
    }

    fn lifecycle_steps(&self) -> Vec<&Step> {
        let mut v: Vec<&Step> = self.deploy.iter().chain(self.provision.iter()).collect();
        if let Some(u) = &self.update {
            v.extend(u.iter());
        }
        v
    }

    /// Attributes a validation run uses: each attribute's default, else
    /// its `example`; `Err` names a required attribute that has neither.
    pub fn sample_attributes(&self) -> Result<Attributes, String> {
        let mut out = Attributes::new();
        for a in self.info.kind.attributes.iter().filter(|a| !a.output) {
            match a.default.as_ref().or_else(|| self.examples.get(&a.name)) {
                Some(v) => {
                    out.insert(a.name.clone(), v.clone());
                }
                None if a.required => {
                    return Err(format!(
                        "attribute {} is required and has neither a default nor an example",
                        a.name
                    ))
                }
                None => {}
            }
        }
        Ok(out)
    }
}

fn verb_word(v: StepVerb) -> &'static str {
    match v {
        StepVerb::Create => "create",
        StepVerb::Update => "update",
        StepVerb::Delete => "delete",
    }
}

#[async_trait]
impl Orchestrator for Definition {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    async fn validate(&self, op: &Operation, attributes: &Attributes) -> Result<(), PluginError> {
        match op {
            Operation::Design => self.check(&self.lifecycle_steps(), attributes, None, None),
            Operation::Update { changed } => {
                let mut steps = self.lifecycle_steps();
                let patched: Vec<Step>;
                if self.update.is_none() {
                    patched = self
                        .stacks
                        .iter()
                        .map(|(role, s)| Step {
                            verb: StepVerb::Update,
                            role: role.clone(),
                            replace: false,
                            template: s.template.clone(),
                            timeout_mins: s.timeout_mins,
                            parameters: s.parameters.clone(),
                        })
                        .collect();
                    steps.extend(patched.iter());
                }
                self.check(&steps, attributes, None, Some(changed))
            }
            Operation::Action { term, parameters } => match self.actions.get(term) {
                Some(steps) => {
                    let steps: Vec<&Step> = steps.iter().collect();
                    self.check(&steps, attributes, Some(parameters), None)
                }
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    async fn run(&self, op: &Operation, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        match op {
            Operation::Deploy => self.run_steps(ctx, &self.deploy, "deploy", None).await,
            Operation::Provision => {
                self.run_steps(ctx, &self.provision, "provision", None)
                    .await
            }
            Operation::Update { changed } => match &self.update {
                Some(steps) => self.run_steps(ctx, steps, "update", None).await,
                None => self.patch_changed(ctx, changed).await,
            },
            Operation::Action { term, parameters } => match self.actions.get(term) {
                Some(steps) => self.run_steps(ctx, steps, term, Some(parameters)).await,
                None => ctx.default_run(&self.info.name, op).await,
            },
            Operation::Dispose => {
                if let Some(steps) = &self.dispose {
                    self.run_steps(ctx, steps, "dispose", None).await?;
                }
                // Whatever the steps left: nothing may be orphaned.
                ctx.stacks.delete_all().await?;
                Ok(())
            }
            Operation::Design | Operation::Notify { .. } => {
                ctx.default_run(&self.info.name, op).await
            }
        }
    }

    async fn state(&self, instance: InstanceView<'_>) -> Result<StateReport, PluginError> {
        let stacks = instance.stacks;
        let mut report = StateReport::from_stacks(stacks);
        if let Some(outputs) = &self.outputs {
            report
                .attributes
                .retain(|k, _| k == "occi.mcn.stack.id" || k == "occi.mcn.stack.state");
            for o in outputs {
                let settled = stacks
                    .iter()
                    .find(|r| r.role == o.role)
                    .and_then(|r| r.last.as_ref())
                    .is_some_and(|i| !i.status.in_progress());
                if settled {
                    if let Some(v) = output_of(stacks, &o.role, &o.key) {
                        report.attributes.insert(o.attribute.clone(), v);
                    }
                }
            }
        }
        Ok(report)
    }
}
