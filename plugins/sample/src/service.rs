//! `sample`: the hurtle sample service orchestrator, in occi-so.

use std::collections::BTreeMap;

use async_trait::async_trait;
use occi_so_sdk::{
    ActionSpec, AttributeSpec, AttributeType, Attributes, KindSpec, LifecycleCtx, Operation,
    Orchestrator, Phase, PluginError, PluginInfo, PluginSource, StackSpec, StackUpdate,
};

use crate::template::{StackTemplate, TemplateError};
use crate::{parameters, patch_changed, MAIN, MCN_SM_SCHEME};

/// Attribute → Heat parameter.
const MAPPING: &[(&str, &str)] = &[
    ("sample.length", "name_length"),
    ("sample.greeting", "greeting"),
    ("mcn.endpoint.maas", "maas_endpoint"),
];

/// The `rotate` action's scheme.
pub const ACTION_SCHEME: &str = "http://schemas.mobile-cloud-networking.eu/occi/sm/sample/action#";

/// How long Heat may take for one stack operation.
const STACK_TIMEOUT_MINS: u32 = 30;

/// The sample service orchestrator (see the crate docs).
pub struct SampleService {
    info: PluginInfo,
    deployment: StackTemplate,
    provisioning: StackTemplate,
}

impl SampleService {
    /// Loads and checks both templates.
    pub fn new() -> Result<Self, TemplateError> {
        let passed: Vec<&str> = MAPPING.iter().map(|(_, p)| *p).chain(["salt"]).collect();
        let deployment = StackTemplate::load(
            "deployment.yaml",
            include_str!("../../../templates/sample/deployment.yaml"),
            &passed,
        )?;
        let provisioning = StackTemplate::load(
            "provision.yaml",
            include_str!("../../../templates/sample/provision.yaml"),
            &passed,
        )?;
        Ok(SampleService {
            info: info(),
            deployment,
            provisioning,
        })
    }

    fn spec(&self, attributes: &Attributes) -> StackSpec {
        StackSpec {
            name: String::new(),
            template: self.deployment.text.to_string(),
            parameters: parameters(attributes, MAPPING),
            environment: None,
            files: BTreeMap::new(),
            timeout_mins: Some(STACK_TIMEOUT_MINS),
            disable_rollback: true,
            tags: vec!["occi-so".into(), "sample".into()],
        }
    }
}

fn info() -> PluginInfo {
    PluginInfo {
        name: "sample".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        description: Some(
            "Sample service (hurtle sample SO): one stack, deployed then provisioned".into(),
        ),
        source: PluginSource::Compiled,
        kind: KindSpec {
            term: "sample".into(),
            scheme: MCN_SM_SCHEME.into(),
            title: Some("Sample service".into()),
            location: Some("/sample/".into()),
            related: vec![],
            attributes: vec![
                AttributeSpec::new("sample.length", AttributeType::Integer)
                    .default_value(16)
                    .range(Some(8.0), Some(64.0))
                    .describe("Length of the generated service id (8-64)"),
                AttributeSpec::new("sample.greeting", AttributeType::String)
                    .default_value("hello")
                    .pattern(r"[A-Za-z][A-Za-z0-9 ,.!-]{0,63}")
                    .describe("Word the service greets with"),
                AttributeSpec::new("mcn.endpoint.maas", AttributeType::String)
                    .default_value("")
                    .describe("Monitoring (MaaS) endpoint the service reports to"),
            ],
            actions: vec![ActionSpec {
                term: "rotate".into(),
                scheme: ACTION_SCHEME.into(),
                title: Some("Give the service a new id".into()),
                attributes: vec![AttributeSpec::new("sample.salt", AttributeType::String)
                    .describe("Any text; a new one gives a new id (random when left out)")],
                applies_in: vec![Phase::Deployed, Phase::Provisioned],
            }],
        },
    }
}

#[async_trait]
impl Orchestrator for SampleService {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// The attributes, as parameters, must suit both templates (a 400
    /// now rather than a failed stack later).
    async fn validate(&self, op: &Operation, attributes: &Attributes) -> Result<(), PluginError> {
        if matches!(op, Operation::Design | Operation::Update { .. }) {
            let params = parameters(attributes, MAPPING);
            for t in [&self.deployment, &self.provisioning] {
                t.check(&params).map_err(PluginError::Invalid)?;
            }
        }
        Ok(())
    }

    async fn run(&self, op: &Operation, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        match op {
            Operation::Deploy => {
                ctx.stacks
                    .create_ready(MAIN, self.spec(&ctx.attributes))
                    .await?;
            }
            Operation::Provision => {
                let update = StackUpdate::Replace {
                    template: self.provisioning.text.to_string(),
                    parameters: parameters(&ctx.attributes, MAPPING),
                    environment: None,
                    files: BTreeMap::new(),
                    timeout_mins: Some(STACK_TIMEOUT_MINS),
                };
                ctx.stacks.update_ready(MAIN, &update).await?;
            }
            Operation::Update { changed } => patch_changed(ctx, changed, MAPPING).await?,
            Operation::Action { term, parameters } if term == "rotate" => {
                let salt = match parameters.get("sample.salt") {
                    Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
                    _ => uuid::Uuid::new_v4().to_string(),
                };
                let update = StackUpdate::Patch {
                    parameters: BTreeMap::from([("salt".to_string(), salt)]),
                };
                ctx.stacks.update_ready(MAIN, &update).await?;
            }
            other => ctx.default_run(&self.info.name, other).await?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deploy_spec_passes_every_mapped_attribute() {
        let s = SampleService::new().unwrap();
        let attrs = Attributes::from([
            ("sample.length".to_string(), json!(20)),
            ("sample.greeting".to_string(), json!("hi")),
            ("mcn.endpoint.maas".to_string(), json!("160.85.4.50")),
            ("occi.core.title".to_string(), json!("mine")),
        ]);
        let spec = s.spec(&attrs);
        assert_eq!(spec.parameters["name_length"], "20");
        assert_eq!(spec.parameters["maas_endpoint"], "160.85.4.50");
        assert_eq!(spec.parameters.len(), 3);
        assert!(spec.name.is_empty(), "Stacks names the stack per instance");
    }

    #[tokio::test]
    async fn values_heat_would_refuse_are_refused_before_any_stack() {
        let s = SampleService::new().unwrap();
        let ok = Attributes::from([("sample.length".to_string(), json!(20))]);
        s.validate(&Operation::Design, &ok).await.unwrap();
        let bad = Attributes::from([("sample.length".to_string(), json!(100))]);
        let e = s.validate(&Operation::Design, &bad).await.unwrap_err();
        assert!(
            e.to_string().contains("Parameter 'name_length' is invalid"),
            "{e}"
        );
        s.validate(&Operation::Deploy, &bad).await.unwrap();
    }

    #[test]
    fn the_kind_offers_rotate_after_deploy_only() {
        let i = info();
        let rotate = &i.kind.actions[0];
        assert_eq!(rotate.term, "rotate");
        assert!(!rotate.applies_in.contains(&Phase::Initialised));
        assert!(i.kind.attributes.iter().all(|a| !a.required));
    }
}
