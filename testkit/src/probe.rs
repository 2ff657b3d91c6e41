//! What a backend holds for an instance, read the backend's own way, so
//! that one lifecycle scenario checks the same things on both backends:
//!
//! * [`EmbeddedProbe`]: the embedded engine has no API of its own; its
//!   stacks are read through the server's `GET /admin/stacks` (what the
//!   engine reports: status, parameters with hidden ones masked, outputs,
//!   resources) and its log (the engine's `embedded stack settled` and
//!   `embedded create accepted` lines);
//! * [`HeatProbe`]: a real Heat, read through Heat's own REST API
//!   (`/stacks/{id}`, `/resources`, `/events`, `/software_configs`); the
//!   server's `GET /admin/stacks` only says which stacks (role, cloud,
//!   id) the instance holds.
//!
//! A scenario takes a [`Backend`] (which also says how long operations
//! may take there) and runs once per backend; [`on_both_backends!`]
//! writes the two tests.
//!
//! [`on_both_backends!`]: crate::on_both_backends

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::config::admin_stacks;
use crate::http::{client, settled, Answer};
use crate::require::require_heat;
use crate::server::Server;

/// The status of a stack the instance still records but its backend no
/// longer reports (deleted, or never accepted).
pub const GONE: &str = "GONE";

/// One resource of a stack.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceView {
    /// `resource_name`.
    pub name: String,
    /// `resource_type`.
    pub kind: String,
    /// `physical_resource_id`.
    pub physical_id: String,
    /// `resource_status`.
    pub status: String,
}

/// One stack of an instance as its backend reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct StackView {
    /// The plugin's role for it (`ims`, `volumes`, `agents-edge`...).
    pub role: String,
    /// The cloud it runs on (`default` or a name of `clouds:`).
    pub cloud: String,
    /// The stack's id.
    pub id: String,
    /// The stack's name.
    pub name: String,
    /// `CREATE_COMPLETE`..., or [`GONE`].
    pub status: String,
    /// The status reason (for [`GONE`], why).
    pub status_reason: String,
    /// `creation_time` (ISO 8601, `""` when unknown).
    pub created: String,
    /// Parameter values (hidden ones as `******`).
    pub parameters: BTreeMap<String, String>,
    /// Output values by key.
    pub outputs: BTreeMap<String, Value>,
    /// The resources.
    pub resources: Vec<ResourceView>,
}

impl StackView {
    /// A parameter's value (`""` when the stack has none of that name).
    pub fn parameter(&self, name: &str) -> &str {
        self.parameters.get(name).map(String::as_str).unwrap_or("")
    }

    /// An output's value (`Null` when missing).
    pub fn output(&self, key: &str) -> Value {
        self.outputs.get(key).cloned().unwrap_or(Value::Null)
    }

    /// The names of the resources of `kind` (a resource type), sorted.
    pub fn resources_of(&self, kind: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .resources
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.name.clone())
            .collect();
        names.sort();
        names
    }

    /// How many `OS::Nova::Server` resources the stack has.
    pub fn servers(&self) -> usize {
        self.resources_of("OS::Nova::Server").len()
    }

    /// A resource by name.
    pub fn resource(&self, name: &str) -> Option<&ResourceView> {
        self.resources.iter().find(|r| r.name == name)
    }

    fn gone(role: String, cloud: String, id: String, name: String, why: String) -> StackView {
        StackView {
            role,
            cloud,
            id,
            name,
            status: GONE.into(),
            status_reason: why,
            created: String::new(),
            parameters: BTreeMap::new(),
            outputs: BTreeMap::new(),
            resources: Vec::new(),
        }
    }
}

impl fmt::Display for StackView {
    /// Role, status and parameters: enough for an assertion message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} stack {} ({}) on {}: {} {:?}; parameters {:?}; outputs {:?}; resources {:?}",
            self.role,
            self.name,
            self.id,
            self.cloud,
            self.status,
            self.status_reason,
            self.parameters,
            self.outputs,
            self.resources
                .iter()
                .map(|r| format!("{} {} {}", r.name, r.kind, r.status))
                .collect::<Vec<_>>()
        )
    }
}

/// The stack of `role` in `list` (fails naming the roles there are).
pub fn by_role<'a>(list: &'a [StackView], role: &str) -> &'a StackView {
    match list.iter().find(|s| s.role == role) {
        Some(s) => s,
        None => panic!(
            "no stack with role {role}: roles {:?}",
            list.iter().map(|s| &s.role).collect::<Vec<_>>()
        ),
    }
}

/// What a backend holds for an instance, read the backend's own way.
#[async_trait]
pub trait Probe: Send + Sync {
    /// `embedded` or `heat`.
    fn name(&self) -> &'static str;

    /// The stacks the instance at `instance` (a path, `/kind/id`) of
    /// `tenant` on `s` holds, in the order it holds them, as the backend
    /// reports each now ([`GONE`] for one it no longer reports); `None`
    /// when the server has no such instance.
    async fn stacks(&self, s: &Server, tenant: &str, instance: &str) -> Option<Vec<StackView>>;

    /// How many updates of `stack` the backend completed (compare two
    /// readings: only the difference is meaningful).
    async fn updates(&self, s: &Server, tenant: &str, stack: &StackView) -> usize;

    /// Whether every stack of `ids` is deleted: on Heat, each answers 404
    /// or `DELETE_COMPLETE`; on the embedded engine (which answers for
    /// the stacks an instance holds only), the instance holds none of
    /// them any more.
    async fn gone(&self, s: &Server, tenant: &str, instance: &str, ids: &[String]) -> bool;

    /// Whether `first` had settled `CREATE_COMPLETE` before `second` was
    /// asked for.
    async fn settled_before_created(
        &self,
        s: &Server,
        tenant: &str,
        first: &StackView,
        second: &StackView,
    ) -> bool;

    /// The text of the software config that resource `resource` of
    /// `stack` made, where the backend serves it (Heat's
    /// `/software_configs`; the embedded engine has no such API: `None`).
    async fn software_config(&self, stack: &StackView, resource: &str) -> Option<String>;

    /// The instance's stacks, every one reported by its backend (fails
    /// when the instance is missing or a stack is [`GONE`]).
    async fn held(&self, s: &Server, tenant: &str, instance: &str) -> Vec<StackView> {
        let Some(list) = self.stacks(s, tenant, instance).await else {
            panic!(
                "{}: tenant {tenant} has no instance {instance}",
                self.name()
            );
        };
        for stack in &list {
            assert_ne!(
                stack.status,
                GONE,
                "{}: the backend does not report {stack}",
                self.name()
            );
        }
        list
    }
}

/// The roles, clouds and ids of the instance's stacks per
/// `GET /admin/stacks`, with the entries themselves; `None` on 404.
async fn held_records(s: &Server, tenant: &str, instance: &str) -> Option<Vec<Value>> {
    let (status, doc) = admin_stacks(s, tenant, instance).await;
    if status == 404 {
        return None;
    }
    assert_eq!(status, 200, "GET /admin/stacks of {instance}: {doc}");
    assert_eq!(doc["instance"], instance, "{doc}");
    Some(doc["stacks"].as_array().cloned().unwrap_or_default())
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// `(output_key, output_value)` of a Heat-shaped `outputs` list.
fn outputs(v: &Value) -> BTreeMap<String, Value> {
    v.as_array()
        .map(|os| {
            os.iter()
                .map(|o| (text(&o["output_key"]), o["output_value"].clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn parameters(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), String::from),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Heat-shaped resource rows (`resource_name`, `resource_type`...).
fn resources(v: &Value) -> Vec<ResourceView> {
    v.as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| ResourceView {
                    name: text(&r["resource_name"]),
                    kind: text(&r["resource_type"]),
                    physical_id: text(&r["physical_resource_id"]),
                    status: text(&r["resource_status"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Where a record names its stack: role, cloud, id, name.
fn record_names(entry: &Value) -> (String, String, String, String) {
    (
        text(&entry["role"]),
        entry["cloud"].as_str().unwrap_or("default").to_string(),
        text(&entry["id"]),
        text(&entry["name"]),
    )
}

/// The embedded engine, through `GET /admin/stacks` and the server log.
#[derive(Clone, Debug, Default)]
pub struct EmbeddedProbe;

impl EmbeddedProbe {
    fn view(entry: &Value) -> StackView {
        let (role, cloud, id, name) = record_names(entry);
        if let Some(why) = entry.get("error").or(entry.get("resources_error")) {
            return StackView::gone(role, cloud, id, name, why.to_string());
        }
        let stack = &entry["stack"];
        StackView {
            role,
            cloud,
            id,
            name,
            status: text(&stack["status"]),
            status_reason: text(&stack["status_reason"]),
            created: text(&stack["creation_time"]),
            parameters: parameters(&stack["parameters"]),
            outputs: outputs(&stack["outputs"]),
            resources: resources(&entry["resources"]),
        }
    }

    /// The log lines of the engine's `event` (e.g. `embedded stack
    /// settled`) for stack `name` of project `tenant` (with `status`,
    /// when given), as line numbers.
    fn lines(log: &str, event: &str, tenant: &str, name: &str, status: Option<&str>) -> Vec<usize> {
        let fields = [
            Some(format!("project={tenant}")),
            Some(format!("stack={name}")),
            status.map(|s| format!("status={s}")),
        ];
        log.lines()
            .enumerate()
            .filter(|(_, l)| {
                let words: Vec<&str> = l.split_whitespace().collect();
                l.contains(event) && fields.iter().flatten().all(|f| words.contains(&f.as_str()))
            })
            .map(|(i, _)| i)
            .collect()
    }
}

#[async_trait]
impl Probe for EmbeddedProbe {
    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn stacks(&self, s: &Server, tenant: &str, instance: &str) -> Option<Vec<StackView>> {
        let records = held_records(s, tenant, instance).await?;
        Some(records.iter().map(Self::view).collect())
    }

    async fn updates(&self, s: &Server, tenant: &str, stack: &StackView) -> usize {
        let log = s.log();
        Self::lines(
            &log,
            "embedded stack settled",
            tenant,
            &stack.name,
            Some("UPDATE_COMPLETE"),
        )
        .len()
    }

    async fn gone(&self, s: &Server, tenant: &str, instance: &str, ids: &[String]) -> bool {
        match self.stacks(s, tenant, instance).await {
            None => true,
            Some(list) => !list.iter().any(|v| ids.contains(&v.id)),
        }
    }

    async fn settled_before_created(
        &self,
        s: &Server,
        tenant: &str,
        first: &StackView,
        second: &StackView,
    ) -> bool {
        let log = s.log();
        let settled = Self::lines(
            &log,
            "embedded stack settled",
            tenant,
            &first.name,
            Some("CREATE_COMPLETE"),
        );
        let asked = Self::lines(&log, "embedded create accepted", tenant, &second.name, None);
        match (settled.first(), asked.first()) {
            (Some(settled), Some(asked)) => settled < asked,
            _ => panic!(
                "the log has no settling of {} ({settled:?}) or no create of {} ({asked:?})",
                first.name, second.name
            ),
        }
    }

    async fn software_config(&self, _stack: &StackView, _resource: &str) -> Option<String> {
        None
    }
}

/// A real Heat at `url` (`http://HOST:PORT/v1/PROJECT`), through its REST
/// API.
#[derive(Clone, Debug)]
pub struct HeatProbe {
    url: String,
}

impl HeatProbe {
    /// The Heat at `url`.
    pub fn new(url: impl Into<String>) -> HeatProbe {
        HeatProbe {
            url: url.into().trim_end_matches('/').to_string(),
        }
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `GET {url}{path}`: `None` on 404, the JSON body otherwise (fails
    /// the test on any other answer).
    pub async fn get(&self, path: &str) -> Option<Value> {
        let url = format!("{}{path}", self.url);
        let r = client()
            .get(&url)
            .header("X-Auth-Token", "test-token")
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = r.status();
        if status == 404 {
            return None;
        }
        let body = r.text().await.unwrap_or_default();
        assert!(status.is_success(), "GET {url}: {status} {body}");
        match serde_json::from_str(&body) {
            Ok(v) => Some(v),
            Err(e) => panic!("GET {url}: not JSON ({e}): {body}"),
        }
    }

    /// Heat's own `stack` object for `id` (`None` once Heat has no such
    /// stack).
    pub async fn stack(&self, id: &str) -> Option<Value> {
        self.get(&format!("/stacks/{id}"))
            .await
            .map(|v| v["stack"].clone())
    }

    /// The stack's own events (`resource_name` = the stack's name) with
    /// `status`, oldest first, as event times.
    async fn stack_events(&self, stack: &StackView, status: &str) -> Vec<String> {
        let name = &stack.name;
        let path = format!("/stacks/{name}/{}/events?resource_name={name}", stack.id);
        let doc = self.get(&path).await.unwrap_or(Value::Null);
        let mut times: Vec<String> = doc["events"]
            .as_array()
            .map(|es| {
                es.iter()
                    .filter(|e| {
                        e["resource_name"] == name.as_str() && e["resource_status"] == status
                    })
                    .map(|e| text(&e["event_time"]))
                    .collect()
            })
            .unwrap_or_default();
        times.sort();
        times
    }

    async fn view(&self, entry: &Value) -> StackView {
        let (role, cloud, id, name) = record_names(entry);
        if id.is_empty() {
            return StackView::gone(role, cloud, id, name, text(&entry["error"]));
        }
        let Some(stack) = self.stack(&id).await else {
            return StackView::gone(role, cloud, id, name, "Heat answers 404".into());
        };
        let name = text(&stack["stack_name"]);
        let listed = self
            .get(&format!("/stacks/{name}/{id}/resources"))
            .await
            .unwrap_or(Value::Null);
        StackView {
            role,
            cloud,
            status: text(&stack["stack_status"]),
            status_reason: text(&stack["stack_status_reason"]),
            created: text(&stack["creation_time"]),
            parameters: parameters(&stack["parameters"]),
            outputs: outputs(&stack["outputs"]),
            resources: resources(&listed["resources"]),
            id,
            name,
        }
    }
}

#[async_trait]
impl Probe for HeatProbe {
    fn name(&self) -> &'static str {
        "heat"
    }

    async fn stacks(&self, s: &Server, tenant: &str, instance: &str) -> Option<Vec<StackView>> {
        let records = held_records(s, tenant, instance).await?;
        let mut views = Vec::with_capacity(records.len());
        for entry in &records {
            views.push(self.view(entry).await);
        }
        Some(views)
    }

    async fn updates(&self, _s: &Server, _tenant: &str, stack: &StackView) -> usize {
        self.stack_events(stack, "UPDATE_COMPLETE").await.len()
    }

    async fn gone(&self, _s: &Server, _tenant: &str, _instance: &str, ids: &[String]) -> bool {
        for id in ids {
            if let Some(stack) = self.stack(id).await {
                if stack["stack_status"] != "DELETE_COMPLETE" {
                    return false;
                }
            }
        }
        true
    }

    async fn settled_before_created(
        &self,
        _s: &Server,
        _tenant: &str,
        first: &StackView,
        second: &StackView,
    ) -> bool {
        // Heat's times have one-second steps: "not after" is what they show.
        let settled = self.stack_events(first, "CREATE_COMPLETE").await;
        match settled.first() {
            Some(settled) => !second.created.is_empty() && *settled <= second.created,
            None => panic!("Heat has no CREATE_COMPLETE event of {first}"),
        }
    }

    async fn software_config(&self, stack: &StackView, resource: &str) -> Option<String> {
        let Some(r) = stack.resource(resource) else {
            panic!("no resource {resource} in {stack}");
        };
        let doc = self
            .get(&format!("/software_configs/{}", r.physical_id))
            .await?;
        Some(text(&doc["software_config"]["config"]))
    }
}

/// The backend a scenario runs on: which probe reads it, and how long its
/// operations may take.
#[derive(Clone, Debug)]
pub enum Backend {
    /// The embedded engine (the server's default backend).
    Embedded(EmbeddedProbe),
    /// A real Heat.
    Heat(HeatProbe),
}

impl Backend {
    /// The embedded engine.
    pub fn embedded() -> Backend {
        Backend::Embedded(EmbeddedProbe)
    }

    /// The real Heat of [`require_heat`], or `None` (the test skipped,
    /// after saying why; a failure under `OCCI_SO_REQUIRE_HEAT=1`).
    pub fn heat() -> Option<Backend> {
        require_heat().map(|url| Backend::Heat(HeatProbe::new(url)))
    }

    /// The probe reading it.
    pub fn probe(&self) -> &dyn Probe {
        match self {
            Backend::Embedded(p) => p,
            Backend::Heat(p) => p,
        }
    }

    /// Heat's URL, for the real Heat.
    pub fn heat_url(&self) -> Option<&str> {
        match self {
            Backend::Embedded(_) => None,
            Backend::Heat(p) => Some(p.url()),
        }
    }

    /// Whether it is the embedded engine.
    pub fn is_embedded(&self) -> bool {
        matches!(self, Backend::Embedded(_))
    }

    /// How long one operation (a create, an update...) may take.
    pub fn within(&self) -> Duration {
        match self {
            Backend::Embedded(_) => Duration::from_secs(40),
            Backend::Heat(_) => Duration::from_secs(300),
        }
    }

    /// How often to poll while one runs.
    pub fn every(&self) -> Duration {
        match self {
            Backend::Embedded(_) => Duration::from_millis(50),
            Backend::Heat(_) => Duration::from_millis(300),
        }
    }

    /// Polls the instance at `url` until it is there and no operation
    /// runs on it ([`settled`]), within [`within`](Self::within).
    pub async fn settled(&self, c: &reqwest::Client, url: &str, h: &[(&str, &str)]) -> Answer {
        settled(c, url, h, self.within(), self.every()).await
    }

    /// [`settled`](Self::settled), failing when its last operation failed
    /// (`occi.so.error` or `occi.so.last_error` rendered).
    pub async fn succeeded(&self, c: &reqwest::Client, url: &str, h: &[(&str, &str)]) -> Answer {
        let a = self.settled(c, url, h).await;
        for error in ["occi.so.error", "occi.so.last_error"] {
            assert_eq!(
                a.attribute(error),
                None,
                "{}: the last operation on {url} failed: {}",
                self.probe().name(),
                a.body
            );
        }
        a
    }
}

/// Whether `value` is an IPv4 address starting with `prefix` (`172.24.`).
pub fn is_address_in(value: &str, prefix: &str) -> bool {
    value.starts_with(prefix) && value.parse::<std::net::Ipv4Addr>().is_ok()
}

/// Two tests for `async fn scenario(backend: Backend)` (which must be in
/// scope): `scenario::on_the_embedded_engine` and `scenario::on_heat`
/// (skipped without a Heat unless `OCCI_SO_REQUIRE_HEAT=1`). The caller
/// depends on tokio (macros, multi-threaded runtime).
#[macro_export]
macro_rules! on_both_backends {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_the_embedded_engine() {
                super::$scenario($crate::Backend::embedded()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_heat() {
                if let Some(backend) = $crate::Backend::heat() {
                    super::$scenario(backend).await;
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_admin_entry_is_read_as_the_engine_reports_it() {
        let entry = json!({
            "role": "agents", "cloud": "edge", "name": "p-agents", "id": "i-1",
            "stack": {
                "name": "p-agents", "id": "i-1", "status": "UPDATE_COMPLETE",
                "status_reason": "done", "creation_time": "2026-01-01T00:00:00Z",
                "parameters": {"flavor": "m1.micro", "secret": "******"},
                "outputs": [{"output_key": "ip", "output_value": "10.0.0.5"}]
            },
            "resources": [
                {"resource_name": "b", "resource_type": "OS::Nova::Server",
                 "physical_resource_id": "s-2", "resource_status": "CREATE_COMPLETE"},
                {"resource_name": "a", "resource_type": "OS::Nova::Server",
                 "physical_resource_id": "s-1", "resource_status": "CREATE_COMPLETE"},
                {"resource_name": "ip", "resource_type": "OS::Neutron::FloatingIP",
                 "physical_resource_id": "f-1", "resource_status": "CREATE_COMPLETE"}
            ]
        });
        let v = EmbeddedProbe::view(&entry);
        assert_eq!(
            (
                v.role.as_str(),
                v.cloud.as_str(),
                v.id.as_str(),
                v.status.as_str()
            ),
            ("agents", "edge", "i-1", "UPDATE_COMPLETE")
        );
        assert_eq!(v.parameter("flavor"), "m1.micro");
        assert_eq!(v.parameter("missing"), "");
        assert_eq!(v.output("ip"), json!("10.0.0.5"));
        assert_eq!(v.output("missing"), Value::Null);
        assert_eq!(v.resources_of("OS::Nova::Server"), ["a", "b"]);
        assert_eq!(v.servers(), 2);
        assert_eq!(
            v.resource("ip").map(|r| r.physical_id.as_str()),
            Some("f-1")
        );
    }

    #[test]
    fn an_entry_the_backend_does_not_report_is_gone() {
        let entry = json!({"role": "volumes", "cloud": "default", "name": "p-volumes",
                           "id": "i-9", "error": "Stack not found"});
        let v = EmbeddedProbe::view(&entry);
        assert_eq!(v.status, GONE);
        assert!(v.status_reason.contains("Stack not found"), "{v}");
        let list = [v];
        assert_eq!(by_role(&list, "volumes").id, "i-9");
    }

    #[test]
    #[should_panic(expected = "no stack with role web: roles [\"volumes\"]")]
    fn a_missing_role_is_named() {
        let v = StackView::gone(
            "volumes".into(),
            "default".into(),
            "i".into(),
            "n".into(),
            "x".into(),
        );
        by_role(&[v], "web");
    }

    #[test]
    fn the_engines_log_lines_are_found_by_project_stack_and_status() {
        let log = "\
            x embedded create accepted project=t stack=p-b \n\
            x embedded stack settled project=t stack=p-a status=CREATE_COMPLETE \n\
            x embedded stack settled project=u stack=p-a status=UPDATE_COMPLETE \n\
            x embedded stack settled project=t stack=p-a status=UPDATE_COMPLETE \n\
            x embedded create accepted stack=p-c id=1 project=t\n";
        let settled = "embedded stack settled";
        assert_eq!(
            EmbeddedProbe::lines(log, settled, "t", "p-a", Some("UPDATE_COMPLETE")),
            [3]
        );
        assert_eq!(EmbeddedProbe::lines(log, settled, "t", "p-a", None), [1, 3]);
        assert_eq!(
            EmbeddedProbe::lines(log, "embedded create accepted", "t", "p-c", None),
            [4]
        );
    }
}
