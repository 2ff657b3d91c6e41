//! What the IMS plugin's integration tests share: a lifecycle context over
//! any backend, and Heat's view of a stack.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use occi_so_sdk::{
    Attributes, Credentials, LifecycleCtx, NullSink, ResourceInfo, StackBackend, StackInfo, Stacks,
};

/// The credentials of the test project.
pub fn creds() -> Credentials {
    Credentials::new("admin", None)
}

/// A stack-name prefix no other test (or earlier run) uses.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "so-ims-{tag}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A lifecycle context for a new instance with `attributes`.
pub fn ctx(backend: Arc<dyn StackBackend>, tag: &str, attributes: Attributes) -> LifecycleCtx {
    LifecycleCtx {
        instance_id: tag.to_string(),
        location: format!("/ims/{tag}"),
        credentials: creds(),
        attributes,
        state: Default::default(),
        mixins: Vec::new(),
        stacks: Stacks::new(
            backend,
            creds(),
            Arc::new(NullSink),
            unique(tag),
            Vec::new(),
        ),
    }
}

/// Heat's current view of the instance's stack.
pub async fn heat_view(backend: &Arc<dyn StackBackend>, ctx: &LifecycleCtx) -> StackInfo {
    let stack = ctx
        .stacks
        .get(occi_so_plugin_ims::STACK_ROLE)
        .and_then(|r| r.stack.clone())
        .expect("the instance has a stack");
    backend.get(&creds(), &stack).await.expect("stack readable")
}

/// The stack's resources as Heat lists them.
pub async fn resources(backend: &Arc<dyn StackBackend>, ctx: &LifecycleCtx) -> Vec<ResourceInfo> {
    let stack = ctx
        .stacks
        .get(occi_so_plugin_ims::STACK_ROLE)
        .and_then(|r| r.stack.clone())
        .expect("the instance has a stack");
    backend
        .resources(&creds(), &stack)
        .await
        .expect("resources readable")
}

/// The names of the stack's resources.
pub async fn resource_names(
    backend: &Arc<dyn StackBackend>,
    ctx: &LifecycleCtx,
) -> BTreeSet<String> {
    resources(backend, ctx)
        .await
        .into_iter()
        .map(|r| r.resource_name)
        .collect()
}

/// How many times the stack itself reached `status` (stack events).
pub async fn stack_events(
    backend: &Arc<dyn StackBackend>,
    ctx: &LifecycleCtx,
    status: &str,
) -> usize {
    let stack = ctx
        .stacks
        .get(occi_so_plugin_ims::STACK_ROLE)
        .and_then(|r| r.stack.clone())
        .expect("the instance has a stack");
    backend
        .events(&creds(), &stack)
        .await
        .expect("events readable")
        .iter()
        .filter(|e| e.resource_name == stack.name && e.resource_status == status)
        .count()
}
