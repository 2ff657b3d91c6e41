//! A complete compiled orchestrator plugin in one file, and its lifecycle
//! run on the embedded engine: `cargo run -p occi-so-sdk --example
//! minimal_plugin`.
//!
//! The `greeting` service deploys one stack whose output is a greeting;
//! `greeting.text` may change after deploy (a PATCH of the stack). To make
//! it a built-in plugin of the server, put the plugin part in a crate
//! `plugins/greeting/` named `occi-so-plugin-greeting`, export [`build`],
//! and add that one line to the root `Cargo.toml`'s `[dependencies]`
//! (docs/plugins.md §6).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // an example's main may fail loudly

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use occi_so_sdk::{
    AttributeSpec, AttributeType, Attributes, BuildContext, BuildError, Credentials, KindSpec,
    LifecycleCtx, NullSink, Operation, Orchestrator, PluginError, PluginInfo, PluginSource,
    StackSpec, StackUpdate, Stacks,
};

/// The one template, sent to Heat as written (engine-internal resources
/// only, so it runs on the embedded engine and on any Heat).
const TEMPLATE: &str = r#"heat_template_version: 2018-08-31
parameters:
  text:
    type: string
    constraints:
      - length: {min: 1, max: 64}
resources:
  greeting:
    type: OS::Heat::Value
    properties:
      value: {list_join: [", ", [{get_param: text}, "world"]]}
outputs:
  greeting.said:
    value: {get_attr: [greeting, value]}
"#;

/// The plugin's settings (`plugin-config.greeting` in the server's config
/// file, or `OCCI_SO_PLUGIN_GREETING_TIMEOUT_MINS=10`).
#[derive(Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct GreetingConfig {
    timeout_mins: u32,
}

impl Default for GreetingConfig {
    fn default() -> Self {
        GreetingConfig { timeout_mins: 30 }
    }
}

/// What the plugin remembers of an instance (any serde type).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Said {
    times: u32,
}

struct Greeting {
    info: PluginInfo,
    template: heat::StackTemplate,
    config: GreetingConfig,
}

/// What the server calls to build the crate's plugins.
pub fn build(ctx: &BuildContext) -> Result<Vec<Arc<dyn Orchestrator>>, BuildError> {
    let config: GreetingConfig = ctx.config("greeting")?;
    // Parsed and validated once, when the plugin is built: a broken
    // template stops the server at start with Heat's message and line.
    let template = heat::StackTemplate::parse(
        TEMPLATE,
        heat::Environment::new(),
        heat::Files::new(),
        heat::Options::default(),
    )
    .map_err(|e| BuildError::new("greeting", e.to_string()))?;
    let info = PluginInfo {
        name: "greeting".into(),
        version: "1.0.0".into(),
        description: Some("A stack that says hello".into()),
        source: PluginSource::Compiled,
        kind: KindSpec {
            term: "greeting".into(),
            scheme: "http://example.org/occi/greeting#".into(),
            title: Some("Greeting service".into()),
            location: None,
            related: vec![],
            attributes: vec![AttributeSpec::new("greeting.text", AttributeType::String)
                .default_value("hello")
                .describe("What to say")],
            actions: vec![],
        },
    };
    Ok(vec![Arc::new(Greeting {
        info,
        template,
        config,
    })])
}

fn parameters(attributes: &Attributes) -> BTreeMap<String, String> {
    attributes
        .get("greeting.text")
        .and_then(|v| v.as_str())
        .map(|t| BTreeMap::from([("text".to_string(), t.to_string())]))
        .unwrap_or_default()
}

#[async_trait]
impl Orchestrator for Greeting {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// A value Heat would refuse is a 400 now, not a failed stack later.
    async fn validate(&self, op: &Operation, attributes: &Attributes) -> Result<(), PluginError> {
        if matches!(op, Operation::Design | Operation::Update { .. }) {
            let values = parameters(attributes).into_iter().collect();
            self.template
                .define(&values, &heat::StackIdentity::default())
                .map_err(|e| PluginError::attribute("greeting.text", e.to_string()))?;
        }
        Ok(())
    }

    async fn run(&self, op: &Operation, ctx: &mut LifecycleCtx) -> Result<(), PluginError> {
        match op {
            Operation::Deploy => {
                let spec = StackSpec {
                    name: String::new(),
                    template: TEMPLATE.into(),
                    parameters: parameters(&ctx.attributes),
                    environment: None,
                    files: BTreeMap::new(),
                    timeout_mins: Some(self.config.timeout_mins),
                    disable_rollback: true,
                    tags: vec!["greeting".into()],
                };
                // Waits until CREATE_COMPLETE; CREATE_FAILED is an error
                // with Heat's reason.
                ctx.stacks.create_ready("main", spec).await?;
            }
            Operation::Update { changed } => {
                let patch = StackUpdate::Patch {
                    parameters: parameters(changed),
                };
                ctx.stacks.update_ready("main", &patch).await?;
            }
            // design, provision, notify, dispose (every stack deleted) and
            // undeclared actions: the defaults.
            other => return ctx.default_run(&self.info.name, other).await,
        }
        let mut said: Said = ctx.state.get()?;
        said.times += 1;
        ctx.state.set(&said)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let plugins = build(&BuildContext::default()).expect("the plugin builds");
    let plugin = plugins[0].clone();
    let backend = Arc::new(
        occi_so_backend::EmbeddedBackend::new(occi_so_backend::EmbeddedConfig::default())
            .expect("the embedded engine starts"),
    );
    let creds = Credentials::new("demo", None);
    let mut attributes = Attributes::new();
    attributes.insert("greeting.text".into(), serde_json::json!("hello"));
    plugin
        .validate(&Operation::Design, &attributes)
        .await
        .expect("valid");
    let mut ctx = LifecycleCtx {
        instance_id: "default".into(),
        location: "/greeting/default".into(),
        credentials: creds.clone(),
        attributes,
        state: Default::default(),
        mixins: Vec::new(),
        stacks: Stacks::new(backend, creds, Arc::new(NullSink), "so-greeting", vec![]),
    };
    for op in [
        Operation::Design,
        Operation::Deploy,
        Operation::update(Attributes::from([(
            "greeting.text".to_string(),
            serde_json::json!("bonjour"),
        )])),
    ] {
        if let Operation::Update { changed } = &op {
            ctx.attributes.extend(changed.clone());
        }
        plugin
            .run(&op, &mut ctx)
            .await
            .expect("the operation succeeds");
        let info = ctx.stacks.refresh("main").await.ok();
        println!(
            "{:<8} stack {} said {}",
            op.name(),
            info.as_ref()
                .map_or("-".to_string(), |i| i.status.to_string()),
            info.and_then(|i| i.output("greeting.said").cloned())
                .unwrap_or_default()
        );
    }
    plugin
        .run(&Operation::Dispose, &mut ctx)
        .await
        .expect("disposed");
    println!(
        "dispose  {} stacks left; state {:?}",
        ctx.stacks.records().len(),
        ctx.state
    );
}
