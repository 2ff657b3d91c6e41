//! `sample-db`: a named database with a secret password, to show required,
//! pattern-checked, immutable and secret attributes end to end.

use std::collections::BTreeMap;

use async_trait::async_trait;
use occi_so_sdk::{
    AttributeSpec, AttributeType, Attributes, KindSpec, LifecycleCtx, Operation, Orchestrator,
    PluginError, PluginInfo, PluginSource, StackSpec,
};

use crate::template::{StackTemplate, TemplateError};
use crate::{parameters, patch_changed, MAIN, MCN_SM_SCHEME};

/// Attribute → Heat parameter.
const MAPPING: &[(&str, &str)] = &[
    ("sampledb.name", "db_name"),
    ("sampledb.password", "db_password"),
];

/// The sample database service (see the crate docs).
pub struct SampleDatabase {
    info: PluginInfo,
    template: StackTemplate,
}

impl SampleDatabase {
    /// Loads and checks the template.
    pub fn new() -> Result<Self, TemplateError> {
        let passed: Vec<&str> = MAPPING.iter().map(|(_, p)| *p).collect();
        let template = StackTemplate::load(
            "database.yaml",
            include_str!("../../../templates/sample/database.yaml"),
            &passed,
        )?;
        Ok(SampleDatabase {
            info: info(),
            template,
        })
    }
}

fn info() -> PluginInfo {
    PluginInfo {
        name: "sample-db".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        description: Some("Sample database: a required name and a secret password".into()),
        source: PluginSource::Compiled,
        kind: KindSpec {
            term: "sampledb".into(),
            scheme: MCN_SM_SCHEME.into(),
            title: Some("Sample database".into()),
            location: Some("/sampledb/".into()),
            related: vec![],
            attributes: vec![
                AttributeSpec::new("sampledb.name", AttributeType::String)
                    .required()
                    .immutable()
                    .pattern("[a-z][a-z0-9_]{0,62}")
                    .describe("Database name (lower case, digits, _)"),
                AttributeSpec::new("sampledb.password", AttributeType::String)
                    .secret()
                    .describe("Password; generated when left out; never rendered"),
            ],
            actions: vec![],
        },
    }
}

#[async_trait]
impl Orchestrator for SampleDatabase {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    async fn validate(&self, op: &Operation, attributes: &Attributes) -> Result<(), PluginError> {
        if matches!(op, Operation::Design | Operation::Update { .. }) {
            self.template
                .check(&parameters(attributes, MAPPING))
                .map_err(PluginError::Invalid)?;
        }
        Ok(())
    }

    async fn run(&self, op: &Operation, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        match op {
            Operation::Deploy => {
                let spec = StackSpec {
                    name: String::new(),
                    template: self.template.text.to_string(),
                    parameters: parameters(&ctx.attributes, MAPPING),
                    environment: None,
                    files: BTreeMap::new(),
                    timeout_mins: Some(30),
                    disable_rollback: true,
                    tags: vec!["occi-so".into(), "sample-db".into()],
                };
                ctx.stacks.create_ready(MAIN, spec).await?;
                Ok(())
            }
            Operation::Update { changed } => patch_changed(ctx, changed, MAPPING).await,
            other => ctx.default_run(&self.info.name, other).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_is_required_and_password_secret() {
        let i = info();
        let name = i.kind.attribute("sampledb.name").unwrap();
        assert!(name.required && !name.mutable && name.default.is_none());
        assert!(i.kind.attribute("sampledb.password").unwrap().secret);
        SampleDatabase::new().unwrap();
    }
}
