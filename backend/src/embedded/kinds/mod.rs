//! How each resource type is simulated: its checks before a stack is
//! created, how long its actions take and how they end, what it keeps
//! (an id, a random value, an address), and its reference and attributes.
//!
//! * [`heat_internal`]: `OS::Heat::RandomString`, `Value`, `TestResource`, `None`.
//! * [`compute`]: `OS::Nova::Server`, `OS::Nova::KeyPair`.
//! * [`network`]: Neutron nets, subnets, ports, routers, floating IPs, security groups.
//! * [`volume`]: `OS::Cinder::Volume`, `VolumeAttachment`.
//! * [`software`]: software configs, multipart MIME, cloud-config, deployments.
//! * [`signal`]: wait conditions and their handles.
//! * [`group`]: `OS::Heat::ResourceGroup` and template (nested stack) resources.
//!
//! Every other type Heat knows is simulated generically: a UUID, no
//! attributes (`null`, as `OS::Heat::None` gives).

pub(crate) mod compute;
pub(crate) mod group;
pub(crate) mod heat_internal;
pub(crate) mod network;
pub(crate) mod signal;
pub(crate) mod software;
pub(crate) mod volume;

use std::time::Duration;

use heat::{ResolvedType, ResourceTypes};
use occi_so_sdk::StackAction;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::config::EmbeddedConfig;
use super::state::{Data, Physical, ResourceState};
use super::view::{is_unknown, View};

/// How a resource is simulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub(crate) enum Kind {
    None,
    RandomString,
    Value,
    TestResource,
    Server,
    KeyPair,
    Net,
    Subnet,
    Port,
    FloatingIp,
    FloatingIpAssociation,
    Router,
    RouterInterface,
    SecurityGroup,
    Volume,
    VolumeAttachment,
    WaitCondition,
    WaitConditionHandle,
    SoftwareConfig,
    StructuredConfig,
    CloudConfig,
    MultipartMime,
    SoftwareDeployment,
    ResourceGroup,
    /// A nested stack from a template in `files`.
    Template,
    /// Any other type Heat knows.
    Generic,
}

impl Kind {
    /// The simulation for a resolved type.
    pub(crate) fn of(resolved: &ResolvedType) -> Kind {
        match resolved {
            ResolvedType::Template(_) => Kind::Template,
            ResolvedType::Builtin(t) => match t.as_str() {
                "OS::Heat::None" => Kind::None,
                "OS::Heat::RandomString" => Kind::RandomString,
                "OS::Heat::Value" => Kind::Value,
                "OS::Heat::TestResource" => Kind::TestResource,
                "OS::Nova::Server" => Kind::Server,
                "OS::Nova::KeyPair" => Kind::KeyPair,
                "OS::Neutron::Net" | "OS::Neutron::ProviderNet" => Kind::Net,
                "OS::Neutron::Subnet" => Kind::Subnet,
                "OS::Neutron::Port" => Kind::Port,
                "OS::Neutron::FloatingIP" => Kind::FloatingIp,
                "OS::Neutron::FloatingIPAssociation" => Kind::FloatingIpAssociation,
                "OS::Neutron::Router" => Kind::Router,
                "OS::Neutron::RouterInterface" => Kind::RouterInterface,
                "OS::Neutron::SecurityGroup" => Kind::SecurityGroup,
                "OS::Cinder::Volume" => Kind::Volume,
                "OS::Cinder::VolumeAttachment" => Kind::VolumeAttachment,
                "OS::Heat::WaitCondition" => Kind::WaitCondition,
                "OS::Heat::WaitConditionHandle" => Kind::WaitConditionHandle,
                "OS::Heat::SoftwareConfig" => Kind::SoftwareConfig,
                "OS::Heat::StructuredConfig" => Kind::StructuredConfig,
                "OS::Heat::CloudConfig" => Kind::CloudConfig,
                "OS::Heat::MultipartMime" => Kind::MultipartMime,
                "OS::Heat::SoftwareDeployment" | "OS::Heat::StructuredDeployment" => {
                    Kind::SoftwareDeployment
                }
                "OS::Heat::ResourceGroup" => Kind::ResourceGroup,
                _ => Kind::Generic,
            },
        }
    }

    /// Whether it is a nested stack (its actions act on a child stack).
    pub(crate) fn is_nested(self) -> bool {
        matches!(self, Kind::ResourceGroup | Kind::Template)
    }
}

/// A simulated failure: Heat's exception class and message (the engine
/// puts the resource's path between them, as Heat's `ResourceFailure`
/// does: `ValueError: resources.boom: Test Resource failed boom`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The exception class (`ValueError`, `WaitConditionTimeout`).
    pub class: String,
    /// Its message.
    pub message: String,
}

impl Failure {
    /// A failure of `class` saying `message`.
    pub(crate) fn new(class: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure {
            class: class.into(),
            message: message.into(),
        }
    }

    /// A Neutron or Nova error (the service's message, with its class).
    pub(crate) fn service(message: impl std::fmt::Display) -> Failure {
        let text = message.to_string();
        match text.split_once(": ") {
            Some((class, rest)) if !class.contains(' ') => Failure::new(class, rest),
            _ => Failure::new("Error", text),
        }
    }
}

/// How long an action takes and whether it fails at the end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Effort {
    /// The simulated time it takes.
    pub wait: Duration,
    /// Its failure, when its properties doom it.
    pub failure: Option<Failure>,
}

/// How long `action` on a resource with these (resolved) properties takes.
pub(crate) fn effort(
    kind: Kind,
    action: StackAction,
    name: &str,
    props: &Value,
    previous: Option<&ResourceState>,
    config: &EmbeddedConfig,
) -> Effort {
    match kind {
        Kind::TestResource => heat_internal::test_resource_effort(action, name, props, previous),
        Kind::WaitCondition => signal::wait_condition_effort(action, props, config),
        Kind::SoftwareDeployment => software::deployment_effort(action, props, config),
        _ => Effort {
            wait: config.resource_delay,
            failure: None,
        },
    }
}

/// What an action works with: the stack as it is, and the resource's
/// resolved properties.
pub(crate) struct Apply<'a> {
    /// The stack (before this action's change).
    pub view: View<'a>,
    /// Its resolved properties.
    pub props: &'a Value,
    /// Its physical resource name (`<stack>-<name>-<short id>`), the
    /// default name of the cloud resources it stands for.
    pub physical_name: String,
    /// The resource as it is (for updates: what it keeps so far).
    pub current: Option<&'a ResourceState>,
}

impl Apply<'_> {
    /// Property `key`, when given and not null.
    pub(crate) fn prop(&self, key: &str) -> Option<&Value> {
        self.props.get(key).filter(|v| !v.is_null())
    }

    /// Property `key` as text (numbers and booleans written out).
    pub(crate) fn text(&self, key: &str) -> Option<String> {
        self.prop(key).map(value_text)
    }
}

/// A scalar as Heat writes it into a string property.
pub(crate) fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => heat::pyfmt::py_str(other),
    }
}

/// Whether Heat can check the resource (`handle_check`): the types backed
/// by a service, and the TestResource; Heat's own others cannot.
pub(crate) fn checkable(kind: Kind) -> bool {
    !matches!(
        kind,
        Kind::None
            | Kind::RandomString
            | Kind::Value
            | Kind::WaitCondition
            | Kind::WaitConditionHandle
            | Kind::SoftwareConfig
            | Kind::StructuredConfig
            | Kind::CloudConfig
            | Kind::MultipartMime
            | Kind::SoftwareDeployment
            | Kind::ResourceGroup
            | Kind::Template
            | Kind::Generic
    )
}

/// Creates the simulated resource: its physical id and what it keeps.
pub(crate) fn create(kind: Kind, a: &Apply<'_>) -> Result<(Physical, Data), Failure> {
    let uuid = || Physical::Uuid(super::ids::new_uuid());
    let named = |short: u64| Physical::Name(short);
    let short = a.current.map(|c| c.short).unwrap_or(0);
    Ok(match kind {
        Kind::RandomString => (named(short), heat_internal::random_string(a)?),
        Kind::Value => (named(short), heat_internal::value(a)),
        Kind::TestResource => (named(short), heat_internal::test_resource(a)),
        Kind::None | Kind::Generic => (uuid(), Data::None),
        Kind::Server => compute::create_server(a)?,
        Kind::KeyPair => compute::create_key_pair(a)?,
        Kind::Port => network::create_port(a)?,
        Kind::FloatingIp => network::create_floating_ip(a)?,
        Kind::RouterInterface => network::create_router_interface(a),
        Kind::FloatingIpAssociation => network::create_association(a),
        Kind::Net | Kind::Subnet | Kind::Router | Kind::SecurityGroup => {
            (uuid(), Data::Json(Box::new(a.props.clone())))
        }
        Kind::Volume | Kind::VolumeAttachment => (uuid(), Data::Json(Box::new(a.props.clone()))),
        Kind::WaitConditionHandle => (uuid(), signal::create_handle()),
        Kind::WaitCondition => (named(short), signal::wait_condition_data(a)),
        Kind::SoftwareConfig | Kind::StructuredConfig | Kind::CloudConfig | Kind::MultipartMime => {
            (uuid(), software::config(kind, a))
        }
        Kind::SoftwareDeployment => (uuid(), Data::Json(Box::new(a.props.clone()))),
        // Nested stacks are made by the engine before their members.
        Kind::ResourceGroup | Kind::Template => (uuid(), Data::None),
    })
}

/// Updates the simulated resource in place: what it keeps now. Addresses
/// it still needs are kept; those it no longer needs are given back.
pub(crate) fn update(kind: Kind, a: &Apply<'_>) -> Result<Data, Failure> {
    let current = a.current.map(|c| &c.data);
    Ok(match kind {
        Kind::Value => heat_internal::value(a),
        Kind::TestResource => heat_internal::test_resource(a),
        Kind::Server => compute::update_server(a)?,
        Kind::Port => network::update_port(a)?,
        Kind::FloatingIp => network::update_floating_ip(a),
        Kind::FloatingIpAssociation => network::create_association(a).1,
        Kind::Net
        | Kind::Subnet
        | Kind::Router
        | Kind::SecurityGroup
        | Kind::Volume
        | Kind::VolumeAttachment
        | Kind::SoftwareDeployment => Data::Json(Box::new(a.props.clone())),
        Kind::WaitCondition => signal::wait_condition_data(a),
        _ => current.cloned().unwrap_or(Data::None),
    })
}

/// Gives back what a deleted resource held (addresses).
pub(crate) fn release(r: &ResourceState, view: &View<'_>) {
    match &r.data {
        Data::Port(p) => network::release_port(p, view.env.pools),
        Data::Server(s) => compute::release_server(s, view.env.pools),
        Data::FloatingIp(f) => network::release_floating_ip(f, view.env.pools),
        _ => {}
    }
}

/// Takes back the addresses of a resource read from the state dir.
pub(crate) fn restore(r: &ResourceState, pools: &super::pool::Pools) {
    match &r.data {
        Data::Port(p) => network::reserve_port(p, pools),
        Data::Server(s) => compute::reserve_server(s, pools),
        Data::FloatingIp(f) if f.pooled => {
            let _ = pools.floating.reserve(f.ip);
        }
        _ => {}
    }
}

/// `get_resource`: the resource's reference id.
pub(crate) fn reference(view: &View<'_>, r: &ResourceState) -> Value {
    match (&r.kind, &r.data) {
        (Kind::RandomString, Data::Text(v)) => Value::String(v.to_string()),
        (Kind::Template, Data::Nested(n)) => {
            Value::String(super::ids::stack_arn(view.project, &n.name, &n.id))
        }
        _ => Value::String(view.physical_id(r)),
    }
}

/// `get_attr`: attribute `name` of an existing resource, with the rest of
/// the `get_attr` path.
pub(crate) fn attribute(view: &View<'_>, r: &ResourceState, name: &str, path: &[Value]) -> Value {
    let value = match r.kind {
        Kind::ResourceGroup => return group::group_attribute(view, r, name, path),
        Kind::Template => return group::template_attribute(view, r, name, path),
        Kind::None | Kind::Generic => Value::Null,
        Kind::RandomString | Kind::Value | Kind::TestResource => heat_internal::attribute(r, name),
        Kind::Server => compute::server_attribute(view, r, name),
        Kind::KeyPair => compute::key_pair_attribute(r, name),
        Kind::Net
        | Kind::Subnet
        | Kind::Port
        | Kind::FloatingIp
        | Kind::FloatingIpAssociation
        | Kind::Router
        | Kind::RouterInterface
        | Kind::SecurityGroup => network::attribute(view, r, name),
        Kind::Volume | Kind::VolumeAttachment => volume::attribute(view, r, name),
        Kind::WaitCondition | Kind::WaitConditionHandle => signal::attribute(view, r, name),
        Kind::SoftwareConfig
        | Kind::StructuredConfig
        | Kind::CloudConfig
        | Kind::MultipartMime
        | Kind::SoftwareDeployment => software::attribute(r, name),
    };
    if value.is_null() && name == "show" {
        return show(view, r, path);
    }
    heat::eval::select_attr_path(value, path)
}

/// `show`: the resource as its service would describe it (for the
/// types with a service behind them), or `null`.
fn show(view: &View<'_>, r: &ResourceState, path: &[Value]) -> Value {
    if matches!(
        r.kind,
        Kind::None
            | Kind::Generic
            | Kind::RandomString
            | Kind::Value
            | Kind::TestResource
            | Kind::WaitCondition
            | Kind::WaitConditionHandle
    ) {
        return Value::Null;
    }
    let mut m = match all_attributes(view, r) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    m.insert("id".into(), Value::String(view.physical_id(r)));
    heat::eval::select_attr_path(Value::Object(m), path)
}

/// `get_attr: [resource]`: every attribute of the type but `show`.
pub(crate) fn all_attributes(view: &View<'_>, r: &ResourceState) -> Value {
    let mut m = Map::new();
    match r.kind {
        Kind::Template => {
            if let Some(n) = r.nested() {
                m = n.outputs.clone();
            }
        }
        _ => {
            let names = ResourceTypes::heat()
                .schema(&r.type_name)
                .and_then(|s| s.attributes.as_ref());
            for a in names.into_iter().flatten() {
                if a != "show" {
                    m.insert(a.clone(), attribute(view, r, a, &[]));
                }
            }
        }
    }
    Value::Object(m)
}

/// Heat's checks of a resource's properties before the stack is created
/// (beyond property names and value types, which the heat crate checks):
/// required properties, and the constraints of the simulated types.
/// `props` come from [`super::view::Probe`]: run-time values are unknown.
pub(crate) fn check(
    kind: Kind,
    name: &str,
    props: &Value,
    template: &heat::StackTemplate,
) -> Result<(), heat::Error> {
    let prefix = format!("Property error: resources.{name}.properties");
    let missing = |key: &str| {
        heat::Error::validation(
            format!("{prefix}: Property {key} not assigned"),
            heat::Path::keys(["resources", name, "properties"]),
        )
    };
    let given = |key: &str| props.get(key).is_some_and(|v| !v.is_null());
    // Required properties, with the deprecated names Heat translates.
    let required: &[(&str, &[&str])] = match kind {
        Kind::Value => &[("value", &[])],
        Kind::Server => &[("flavor", &[])],
        Kind::KeyPair => &[("name", &[])],
        Kind::Port | Kind::Subnet => &[("network", &["network_id"])],
        Kind::FloatingIp => &[("floating_network", &["floating_network_id"])],
        Kind::FloatingIpAssociation => &[("floatingip_id", &[]), ("port_id", &[])],
        Kind::RouterInterface => &[("router", &["router_id"])],
        Kind::VolumeAttachment => &[("instance_uuid", &[]), ("volume_id", &[])],
        Kind::WaitCondition => &[("handle", &[]), ("timeout", &[])],
        Kind::SoftwareDeployment => &[("server", &[])],
        Kind::ResourceGroup => &[("resource_def", &[])],
        _ => &[],
    };
    for (key, aliases) in required {
        if !given(key) && !aliases.iter().any(|a| given(a)) {
            return Err(missing(key));
        }
    }
    let at = |key: &str| heat::Path::keys(["resources", name, "properties", key]);
    match kind {
        Kind::RandomString => heat_internal::check_random_string(&prefix, props, &at),
        Kind::Value => heat_internal::check_value(&prefix, props, &at),
        Kind::ResourceGroup => group::check_group(name, props, template),
        _ => Ok(()),
    }
}

/// Whether a property value can be checked now (no run-time part).
pub(crate) fn known(v: &Value) -> bool {
    !is_unknown(v)
}

/// The two digests an update compares: of every property and the
/// metadata, and of the properties that cannot change in place.
pub(crate) fn digests(kind: Kind, builtin: &str, props: &Value, metadata: &Value) -> (u64, u64) {
    let all = digest(&[props, metadata]);
    let schema = ResourceTypes::heat()
        .schema(builtin)
        .and_then(|s| s.properties.as_ref());
    let fixed: Vec<&Value> = match (kind, schema, props) {
        (Kind::Template | Kind::ResourceGroup, _, _) => Vec::new(),
        (_, Some(schema), Value::Object(m)) => m
            .iter()
            .filter(|(k, _)| schema.get(*k).is_some_and(|p| !p.update_allowed))
            .map(|(_, v)| v)
            .collect(),
        _ => Vec::new(),
    };
    let mut keys: Vec<&str> = match (schema, props) {
        (Some(schema), Value::Object(m)) => m
            .keys()
            .filter(|k| schema.get(*k).is_some_and(|p| !p.update_allowed))
            .map(String::as_str)
            .collect(),
        _ => Vec::new(),
    };
    keys.sort_unstable();
    let names: Vec<Value> = keys.into_iter().map(|k| Value::String(k.into())).collect();
    let names = Value::Array(names);
    let mut parts = fixed;
    parts.push(&names);
    (all, digest(&parts))
}

/// Whether an update with `new` properties replaces the resource rather
/// than changing it in place, beyond a changed non-updatable property.
pub(crate) fn replaces_anyway(kind: Kind, current: &ResourceState, new: &Value) -> bool {
    match kind {
        Kind::TestResource => heat_internal::test_resource_replaces(current, new),
        _ => false,
    }
}

/// A stable 64-bit digest of JSON values (FNV-1a over a canonical walk:
/// mapping keys sorted), the same across runs and releases.
pub(crate) fn digest(values: &[&Value]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    fn walk(v: &Value, eat: &mut dyn FnMut(&[u8])) {
        match v {
            Value::Null => eat(b"n"),
            Value::Bool(b) => eat(if *b { b"t" } else { b"f" }),
            Value::Number(n) => {
                eat(b"#");
                eat(n.to_string().as_bytes());
            }
            Value::String(s) => {
                eat(b"\"");
                eat(&(s.len() as u64).to_le_bytes());
                eat(s.as_bytes());
            }
            Value::Array(a) => {
                eat(b"[");
                eat(&(a.len() as u64).to_le_bytes());
                for x in a {
                    walk(x, eat);
                }
            }
            Value::Object(m) => {
                eat(b"{");
                eat(&(m.len() as u64).to_le_bytes());
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort_unstable();
                for k in keys {
                    eat(&(k.len() as u64).to_le_bytes());
                    eat(k.as_bytes());
                    walk(&m[k], eat);
                }
            }
        }
    }
    for v in values {
        walk(v, &mut eat);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn digest_ignores_key_order_only() {
        let a = json!({"a": 1, "b": [1, "x"]});
        let b: Value = serde_json::from_str(r#"{"b": [1, "x"], "a": 1}"#).unwrap();
        assert_eq!(digest(&[&a]), digest(&[&b]));
        assert_ne!(digest(&[&a]), digest(&[&json!({"a": 1, "b": [1, "y"]})]));
        assert_ne!(digest(&[&json!("1")]), digest(&[&json!(1)]));
    }

    #[test]
    fn fixed_digest_moves_only_with_properties_that_cannot_update() {
        let ty = "OS::Heat::RandomString";
        let m = json!({});
        let (a1, f1) = digests(Kind::RandomString, ty, &json!({"length": 8}), &m);
        let (a2, f2) = digests(Kind::RandomString, ty, &json!({"length": 9}), &m);
        assert_ne!((a1, f1), (a2, f2));
        let ty = "OS::Heat::Value";
        let (a1, f1) = digests(Kind::Value, ty, &json!({"value": "a"}), &m);
        let (a2, f2) = digests(Kind::Value, ty, &json!({"value": "b"}), &m);
        assert_ne!(a1, a2);
        assert_eq!(f1, f2);
    }

    #[test]
    fn kinds_follow_the_registry_resolution() {
        assert_eq!(
            Kind::of(&ResolvedType::Builtin("OS::Nova::Server".into())),
            Kind::Server
        );
        assert_eq!(
            Kind::of(&ResolvedType::Builtin("OS::Trove::Instance".into())),
            Kind::Generic
        );
        assert_eq!(
            Kind::of(&ResolvedType::Template("a.yaml".into())),
            Kind::Template
        );
    }
}
