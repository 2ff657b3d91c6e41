//! The root package's way into `occi-so-testkit`: all of it, and servers
//! of the `occi-so` binary this package builds (Cargo names it to the
//! root package's tests only).
#![allow(dead_code, unused_imports)]

pub use occi_so_testkit::*;

/// A server of this package's `occi-so` binary.
pub fn server() -> ServerBuilder {
    Server::builder(env!("CARGO_BIN_EXE_occi-so"))
}

/// `occi-so serve ARGS` on an ephemeral port with a fresh state dir.
pub fn start(args: &[&str]) -> Server {
    server().args(args).start()
}

/// [`start`] with owned arguments.
pub fn start_with(args: Vec<String>) -> Server {
    server().args(args).start()
}

/// `serve` arguments for a backend on `heat` (a real OpenStack Heat).
pub fn heat_args(heat: &str) -> Vec<String> {
    vec![
        "--backend".into(),
        "openstack".into(),
        "--heat-url".into(),
        heat.into(),
    ]
}

/// The server config (YAML) of a backend on the local test Heat with the
/// OpenStack settings `os` (from `OpenStackConfig::local_heat`: Nova,
/// Neutron, Cinder... stubbed, as that Heat has none of them).
pub fn local_heat_yaml(os: &occi_so_backend::OpenStackConfig) -> String {
    let doc = serde_json::json!({"backend": "openstack", "openstack": os});
    match serde_yaml::to_string(&doc) {
        Ok(yaml) => yaml,
        Err(e) => panic!("the local Heat's config as YAML: {e}"),
    }
}

/// `serve` arguments for a plugin's lifecycle on `backend` (admin API
/// on): the embedded engine with the `embedded:` settings `engine`, or
/// the local Heat with its stubs.
pub fn lifecycle_args(backend: &Backend, dir: &std::path::Path, engine: &str) -> Vec<String> {
    match backend.heat_url() {
        None => embedded_args(dir, engine, ""),
        Some(heat) => config_args(
            dir,
            &local_heat_yaml(&occi_so_backend::OpenStackConfig::local_heat(heat)),
        ),
    }
}

/// `serve` arguments for `backend` as the server's defaults have it
/// (admin API on): the embedded engine with its own timings, or the Heat
/// at its URL with no stubs.
pub fn backend_args(backend: &Backend, dir: &std::path::Path) -> Vec<String> {
    let yaml = match backend.heat_url() {
        None => String::new(),
        Some(heat) => format!("backend: openstack\nheat-url: {heat}\n"),
    };
    config_args(dir, &yaml)
}

/// The seed's update (its third request: `mcn.endpoint.maas` set) replayed
/// against the instance at `url` of `tenant` (the seed's
/// `/orchestrator/default`), whose one stack is `id`: accepted as an
/// update, settled `UPDATE_COMPLETE` on the same stack. The settled
/// rendering.
pub async fn seed_update(
    backend: &Backend,
    c: &reqwest::Client,
    s: &Server,
    tenant: &str,
    id: &str,
) -> Answer {
    let update = &seed::imsso_requests("test-token", tenant)[2];
    let a = seed::replay(c, s, update).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.attribute("occi.so.operation").as_deref(), Some("update"));
    assert_eq!(
        a.attribute("mcn.endpoint.maas").as_deref(),
        Some("160.85.4.50")
    );
    let url = s.url("/orchestrator/default");
    let g = backend.succeeded(c, &url, &mcn(tenant)).await;
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("UPDATE_COMPLETE"),
        "{}",
        g.body
    );
    assert_eq!(
        g.attribute("occi.mcn.stack.id").as_deref(),
        Some(id),
        "same stack"
    );
    assert_eq!(
        g.attribute("mcn.endpoint.maas").as_deref(),
        Some("160.85.4.50")
    );
    g
}

/// Heat's status of stack `id` (`None` once Heat has no such stack).
pub async fn heat_stack_status(heat: &str, id: &str) -> Option<String> {
    let stack = HeatProbe::new(heat).stack(id).await?;
    stack["stack_status"].as_str().map(str::to_string)
}
