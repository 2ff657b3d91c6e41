//! Neutron: networks, subnets, ports with fixed addresses, routers and
//! their interfaces, security groups, floating IPs and their associations.
//!
//! Addresses come from a subnet the stack itself creates (lowest free
//! address of its `cidr` or `allocation_pools`, as Neutron hands them out)
//! or, for networks the stack does not create, from the configured private
//! pool (the floating pool for the external network).

use serde_json::{json, Value};
use uuid::Uuid;

use super::{value_text, Apply, Failure, Kind};
use crate::embedded::config::{ip_text, parse_ip, Cidr};
use crate::embedded::ids::{mac_address, new_uuid};
use crate::embedded::pool::{Pool, Pools};
use crate::embedded::state::{
    Data, FixedIp, FloatingIpData, Nic, Physical, PoolKind, PortData, ResourceState,
};
use crate::embedded::view::View;

/// Where addresses on a network come from.
#[derive(Clone, Debug)]
pub(crate) enum AddressSource {
    /// A configured pool.
    Pool(PoolKind),
    /// A subnet created in the stack.
    Subnet {
        /// Its id.
        id: String,
        /// First and last address handed out.
        first: u32,
        /// Last address.
        last: u32,
    },
    /// A network without a subnet: no addresses.
    Nothing,
}

/// A network a port or server is put on.
#[derive(Clone, Debug)]
pub(crate) struct NetTarget {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Where its addresses come from.
    pub source: AddressSource,
}

fn looks_like_uuid(s: &str) -> bool {
    Uuid::parse_str(s).is_ok()
}

/// The physical id of a resource of a UUID-identified kind.
fn phys(r: &ResourceState) -> String {
    r.physical.render("", &r.name)
}

fn json_data(r: &ResourceState) -> Option<&Value> {
    match &r.data {
        Data::Json(v) => Some(v),
        _ => None,
    }
}

/// A Neutron resource's name: its `name` property, else (as Heat names
/// what it creates) its physical name.
fn resource_name(view: &View<'_>, r: &ResourceState) -> String {
    json_data(r)
        .and_then(|p| p.get("name"))
        .filter(|v| !v.is_null())
        .map(value_text)
        .unwrap_or_else(|| crate::embedded::ids::physical_name(view.stack_name, &r.name, r.short))
}

/// Every resource of the stack tree, outermost first.
fn all<'a>(view: &View<'a>) -> Vec<&'a ResourceState> {
    let mut v = Vec::new();
    view.root.walk(&mut |r| v.push(r));
    v
}

/// The network a property names: a net of the stack (by id or name), the
/// external network, or else the tenant's private network.
pub(crate) fn resolve_network(view: &View<'_>, reference: &str) -> NetTarget {
    let resources = all(view);
    let net = resources.iter().find(|r| {
        r.kind == Kind::Net
            && r.exists()
            && (phys(r) == reference || resource_name(view, r) == reference)
    });
    if let Some(net) = net {
        let id = phys(net);
        let name = resource_name(view, net);
        let subnet = resources.iter().find(|s| {
            s.kind == Kind::Subnet
                && s.exists()
                && json_data(s).is_some_and(|p| {
                    ["network", "network_id"].iter().any(|k| {
                        p.get(*k)
                            .map(value_text)
                            .is_some_and(|n| n == id || n == name)
                    })
                })
        });
        let source = match subnet {
            Some(s) => subnet_source(s),
            None => AddressSource::Nothing,
        };
        return NetTarget { id, name, source };
    }
    let pools = view.env.pools;
    if pools.floating.is(reference) {
        return pool_target(&pools.floating, PoolKind::Floating);
    }
    let private = &pools.private;
    if private.is(reference) || looks_like_uuid(reference) || reference.is_empty() {
        let mut t = pool_target(private, PoolKind::Private);
        if looks_like_uuid(reference) {
            t.id = reference.to_string();
        }
        return t;
    }
    // A network the cloud has by that name: on the private pool.
    NetTarget {
        id: crate::embedded::ids::named_uuid(reference).to_string(),
        name: reference.to_string(),
        source: AddressSource::Pool(PoolKind::Private),
    }
}

fn pool_target(pool: &Pool, kind: PoolKind) -> NetTarget {
    NetTarget {
        id: pool.network_id.to_string(),
        name: pool.name.clone(),
        source: AddressSource::Pool(kind),
    }
}

/// Where a stack subnet hands out addresses.
fn subnet_source(s: &ResourceState) -> AddressSource {
    let props = json_data(s);
    let cidr: Option<Cidr> = props
        .and_then(|p| p.get("cidr"))
        .and_then(|c| c.as_str())
        .and_then(|c| c.parse().ok());
    let Some(cidr) = cidr else {
        return AddressSource::Nothing;
    };
    let pool = props
        .and_then(|p| p.get("allocation_pools"))
        .and_then(|a| a.get(0))
        .and_then(|p| {
            let start = parse_ip(&value_text(p.get("start")?))?;
            let end = parse_ip(&value_text(p.get("end")?))?;
            Some((start, end))
        });
    let (first, last) = pool.unwrap_or((cidr.first_host(), cidr.last_host()));
    AddressSource::Subnet {
        id: phys(s),
        first,
        last,
    }
}

/// The subnet a `fixed_ips` entry names, if the stack made it.
fn stack_subnet(view: &View<'_>, reference: &str) -> Option<(NetTarget, AddressSource)> {
    let resources = all(view);
    let s = resources.iter().find(|s| {
        s.kind == Kind::Subnet
            && s.exists()
            && (phys(s) == reference || resource_name(view, s) == reference)
    })?;
    let net_ref = json_data(s)
        .and_then(|p| p.get("network").or_else(|| p.get("network_id")))
        .map(value_text)
        .unwrap_or_default();
    let mut net = resolve_network(view, &net_ref);
    let source = subnet_source(s);
    net.source = source.clone();
    Some((net, source))
}

/// Addresses already used on a stack subnet.
fn used_on(view: &View<'_>, subnet: &str) -> Vec<u32> {
    let mut used = Vec::new();
    let mut note = |p: &PortData| {
        used.extend(
            p.fixed_ips
                .iter()
                .filter(|f| &*f.subnet_id == subnet)
                .map(|f| f.ip),
        )
    };
    view.root.walk(&mut |r| match &r.data {
        Data::Port(p) => note(p),
        Data::Server(s) => {
            for n in &s.nics {
                if let Nic::Own(p) = n {
                    note(p);
                }
            }
        }
        _ => {}
    });
    used
}

fn pool_of(pools: &Pools, kind: PoolKind) -> &Pool {
    match kind {
        PoolKind::Private => &pools.private,
        PoolKind::Floating => &pools.floating,
    }
}

/// One fixed address from `source` (`explicit` when the template gives one).
pub(crate) fn allocate(
    view: &View<'_>,
    net: &NetTarget,
    source: &AddressSource,
    explicit: Option<u32>,
) -> Result<Option<FixedIp>, Failure> {
    match source {
        AddressSource::Nothing => Ok(None),
        AddressSource::Pool(kind) => {
            let pool = pool_of(view.env.pools, *kind);
            let subnet_id = pool.subnet_id.to_string().into();
            match explicit {
                Some(ip) if pool.cidr.contains(ip) => {
                    pool.reserve(ip).map_err(Failure::service)?;
                    Ok(Some(FixedIp {
                        subnet_id,
                        ip,
                        pooled: Some(*kind),
                    }))
                }
                Some(ip) => Ok(Some(FixedIp {
                    subnet_id,
                    ip,
                    pooled: None,
                })),
                None => Ok(Some(FixedIp {
                    subnet_id,
                    ip: pool.allocate().map_err(Failure::service)?,
                    pooled: Some(*kind),
                })),
            }
        }
        AddressSource::Subnet { id, first, last } => {
            let used = used_on(view, id);
            let ip = match explicit {
                Some(ip) if used.contains(&ip) => {
                    return Err(Failure::new(
                        "IpAddressAlreadyAllocated",
                        format!(
                            "IP address {} already allocated in subnet {id}",
                            ip_text(ip)
                        ),
                    ))
                }
                Some(ip) => ip,
                None => (*first..=*last)
                    .find(|ip| !used.contains(ip))
                    .ok_or_else(|| {
                        Failure::new(
                            "IpAddressGenerationFailure",
                            format!("No more IP addresses available on network {}.", net.id),
                        )
                    })?,
            };
            Ok(Some(FixedIp {
                subnet_id: id.clone().into(),
                ip,
                pooled: None,
            }))
        }
    }
}

/// A port's addresses as its properties ask (`fixed_ips`, else one on the
/// network's subnet), keeping those it already has that still fit.
fn port_addresses(
    a: &Apply<'_>,
    net: &NetTarget,
    keep: &[FixedIp],
) -> Result<Vec<FixedIp>, Failure> {
    if a.prop("no_fixed_ips").is_some_and(heat::parameter::truthy) {
        return Ok(Vec::new());
    }
    let mut wanted: Vec<(AddressSource, NetTarget, Option<u32>)> = Vec::new();
    match a.prop("fixed_ips").and_then(Value::as_array) {
        Some(entries) if !entries.is_empty() => {
            for e in entries {
                let ip = e
                    .get("ip_address")
                    .map(value_text)
                    .and_then(|s| parse_ip(&s));
                let subnet = e
                    .get("subnet")
                    .or_else(|| e.get("subnet_id"))
                    .filter(|v| !v.is_null())
                    .map(value_text);
                match subnet.and_then(|s| stack_subnet(&a.view, &s)) {
                    Some((n, source)) => wanted.push((source, n, ip)),
                    None => wanted.push((net.source.clone(), net.clone(), ip)),
                }
            }
        }
        _ => wanted.push((net.source.clone(), net.clone(), None)),
    }
    let mut out: Vec<FixedIp> = Vec::new();
    let mut kept: Vec<&FixedIp> = keep.iter().collect();
    for (source, n, explicit) in wanted {
        let reuse = kept.iter().position(|f| match (explicit, &source) {
            (Some(ip), _) => f.ip == ip,
            (None, AddressSource::Subnet { id, .. }) => &*f.subnet_id == id,
            (None, AddressSource::Pool(k)) => f.pooled == Some(*k),
            (None, AddressSource::Nothing) => false,
        });
        if let Some(i) = reuse {
            out.push(kept.remove(i).clone());
            continue;
        }
        match allocate(&a.view, &n, &source, explicit) {
            Ok(Some(f)) => out.push(f),
            Ok(None) => {}
            Err(e) => {
                for f in &out {
                    if !keep.contains(f) {
                        release_fixed(f, a.view.env.pools);
                    }
                }
                return Err(e);
            }
        }
    }
    for f in kept {
        release_fixed(f, a.view.env.pools);
    }
    Ok(out)
}

fn release_fixed(f: &FixedIp, pools: &Pools) {
    if let Some(k) = f.pooled {
        pool_of(pools, k).release(f.ip);
    }
}

/// Gives back a port's pooled addresses.
pub(crate) fn release_port(p: &PortData, pools: &Pools) {
    for f in &p.fixed_ips {
        release_fixed(f, pools);
    }
}

/// Takes back a port's pooled addresses (state read back at start).
pub(crate) fn reserve_port(p: &PortData, pools: &Pools) {
    for f in &p.fixed_ips {
        if let Some(k) = f.pooled {
            let _ = pool_of(pools, k).reserve(f.ip);
        }
    }
}

/// A port on the network its properties name.
pub(crate) fn port_on(
    a: &Apply<'_>,
    reference: &str,
    keep: &[FixedIp],
) -> Result<PortData, Failure> {
    let net = resolve_network(&a.view, reference);
    let fixed_ips = port_addresses(a, &net, keep)?;
    Ok(PortData {
        id: new_uuid(),
        name: a.text("name").unwrap_or_default().into(),
        network_id: net.id.into(),
        network_name: net.name.into(),
        fixed_ips,
    })
}

fn network_ref(a: &Apply<'_>) -> String {
    a.text("network")
        .or_else(|| a.text("network_id"))
        .unwrap_or_default()
}

/// `OS::Neutron::Port` at create.
pub(crate) fn create_port(a: &Apply<'_>) -> Result<(Physical, Data), Failure> {
    let port = port_on(a, &network_ref(a), &[])?;
    Ok((Physical::Uuid(port.id), Data::Port(Box::new(port))))
}

/// `OS::Neutron::Port` updated in place (`fixed_ips` may change).
pub(crate) fn update_port(a: &Apply<'_>) -> Result<Data, Failure> {
    let Some(Data::Port(old)) = a.current.map(|c| &c.data) else {
        return create_port(a).map(|(_, d)| d);
    };
    let mut port = port_on(a, &network_ref(a), &old.fixed_ips)?;
    port.id = old.id;
    Ok(Data::Port(Box::new(port)))
}

/// `OS::Neutron::FloatingIP` at create: an address of the external network.
pub(crate) fn create_floating_ip(a: &Apply<'_>) -> Result<(Physical, Data), Failure> {
    let network = a
        .text("floating_network")
        .or_else(|| a.text("floating_network_id"))
        .unwrap_or_default();
    let target = resolve_network(&a.view, &network);
    let explicit = a.text("floating_ip_address").and_then(|s| parse_ip(&s));
    let pools = a.view.env.pools;
    let (ip, pooled) = match explicit {
        Some(ip) if pools.floating.cidr.contains(ip) => {
            pools.floating.reserve(ip).map_err(Failure::service)?;
            (ip, true)
        }
        Some(ip) => (ip, false),
        None => (pools.floating.allocate().map_err(Failure::service)?, true),
    };
    let data = FloatingIpData {
        ip,
        pooled,
        network_id: target.id.into(),
        port_id: a.text("port_id").map(Into::into),
    };
    Ok((Physical::Uuid(new_uuid()), Data::FloatingIp(Box::new(data))))
}

/// `OS::Neutron::FloatingIP` updated in place (its port may change).
pub(crate) fn update_floating_ip(a: &Apply<'_>) -> Data {
    match a.current.map(|c| &c.data) {
        Some(Data::FloatingIp(f)) => {
            let mut f = (**f).clone();
            f.port_id = a.text("port_id").map(Into::into);
            Data::FloatingIp(Box::new(f))
        }
        other => other.cloned().unwrap_or(Data::None),
    }
}

/// Gives back a floating IP's address.
pub(crate) fn release_floating_ip(f: &FloatingIpData, pools: &Pools) {
    if f.pooled {
        pools.floating.release(f.ip);
    }
}

/// `OS::Neutron::RouterInterface`: Heat's id is `<router>:subnet_id=<subnet>`.
pub(crate) fn create_router_interface(a: &Apply<'_>) -> (Physical, Data) {
    let router = a
        .text("router")
        .or_else(|| a.text("router_id"))
        .unwrap_or_default();
    let (key, value) = match a.text("subnet").or_else(|| a.text("subnet_id")) {
        Some(s) => ("subnet_id", s),
        None => (
            "port_id",
            a.text("port")
                .or_else(|| a.text("port_id"))
                .unwrap_or_default(),
        ),
    };
    (
        Physical::Text(format!("{router}:{key}={value}").into()),
        Data::Json(Box::new(a.props.clone())),
    )
}

/// `OS::Neutron::FloatingIPAssociation`: `<floating ip>:<port>`.
pub(crate) fn create_association(a: &Apply<'_>) -> (Physical, Data) {
    let fip = a.text("floatingip_id").unwrap_or_default();
    let port = a.text("port_id").unwrap_or_default();
    (
        Physical::Text(format!("{fip}:{port}").into()),
        Data::Json(Box::new(a.props.clone())),
    )
}

/// The floating addresses associated with a port.
pub(crate) fn floating_ips_of(view: &View<'_>, port_id: &str) -> Vec<u32> {
    let resources = all(view);
    let mut out = Vec::new();
    for r in &resources {
        match (&r.kind, &r.data) {
            (Kind::FloatingIp, Data::FloatingIp(f))
                if r.exists() && f.port_id.as_deref() == Some(port_id) =>
            {
                out.push(f.ip);
            }
            (Kind::FloatingIpAssociation, Data::Json(p)) if r.exists() => {
                let fip = p.get("floatingip_id").map(value_text);
                let port = p.get("port_id").map(value_text);
                if port.as_deref() == Some(port_id) {
                    let found = resources.iter().find_map(|x| match &x.data {
                        Data::FloatingIp(f) if Some(phys(x)) == fip => Some(f.ip),
                        _ => None,
                    });
                    out.extend(found);
                }
            }
            _ => {}
        }
    }
    out
}

/// The port a floating IP is associated with (its own `port_id`, or an
/// association resource's).
fn port_of_floating_ip(view: &View<'_>, r: &ResourceState, f: &FloatingIpData) -> Option<String> {
    if let Some(p) = &f.port_id {
        return Some(p.to_string());
    }
    let me = phys(r);
    all(view)
        .into_iter()
        .find_map(|x| match (&x.kind, &x.data) {
            (Kind::FloatingIpAssociation, Data::Json(p)) if x.exists() => {
                (p.get("floatingip_id").map(value_text)? == me)
                    .then(|| p.get("port_id").map(value_text))?
            }
            _ => None,
        })
}

/// The port data behind a port id (a Neutron port resource, or a port a
/// server made for itself).
pub(crate) fn port_by_id<'a>(view: &View<'a>, id: &str) -> Option<&'a PortData> {
    let mut found = None;
    view.root.walk(&mut |r| {
        if found.is_some() || !r.exists() {
            return;
        }
        match &r.data {
            Data::Port(p) if p.id.to_string() == id => found = Some(&**p),
            Data::Server(s) => {
                for n in &s.nics {
                    if let Nic::Own(p) = n {
                        if p.id.to_string() == id {
                            found = Some(p);
                        }
                    }
                }
            }
            _ => {}
        }
    });
    found
}

/// The server a port is plugged into.
fn device_of(view: &View<'_>, port_id: &str) -> Option<String> {
    all(view).into_iter().find_map(|r| match &r.data {
        Data::Server(s) if r.exists() => s
            .nics
            .iter()
            .any(|n| matches!(n, Nic::Port(p) if &**p == port_id))
            .then(|| phys(r)),
        _ => None,
    })
}

/// `fixed_ips` as Neutron shows them.
pub(crate) fn fixed_ips_json(p: &PortData) -> Value {
    Value::Array(
        p.fixed_ips
            .iter()
            .map(|f| json!({"subnet_id": &*f.subnet_id, "ip_address": ip_text(f.ip)}))
            .collect(),
    )
}

/// The attributes of the Neutron types.
pub(crate) fn attribute(view: &View<'_>, r: &ResourceState, name: &str) -> Value {
    let props = json_data(r).cloned().unwrap_or(Value::Null);
    let prop = |k: &str| props.get(k).cloned().filter(|v| !v.is_null());
    let tenant = || Value::String(view.project.to_string());
    let id = phys(r);
    match (r.kind, name) {
        (_, "tenant_id") => tenant(),
        (Kind::Net | Kind::Subnet | Kind::Router, "name") => Value::String(resource_name(view, r)),
        (Kind::Net | Kind::Router, "status") => json!("ACTIVE"),
        (Kind::Net | Kind::Router, "admin_state_up") => {
            prop("admin_state_up").unwrap_or(json!(true))
        }
        (Kind::Net, "subnets") => {
            let me = resource_name(view, r);
            let subnets: Vec<Value> = all(view)
                .into_iter()
                .filter(|s| {
                    s.kind == Kind::Subnet
                        && s.exists()
                        && json_data(s).is_some_and(|p| {
                            ["network", "network_id"].iter().any(|k| {
                                p.get(*k)
                                    .map(value_text)
                                    .is_some_and(|n| n == id || n == me)
                            })
                        })
                })
                .map(|s| Value::String(phys(s)))
                .collect();
            Value::Array(subnets)
        }
        (Kind::Net, "mtu") => json!(1450),
        (Kind::Net, "port_security_enabled") => {
            prop("port_security_enabled").unwrap_or(json!(true))
        }
        (Kind::Net, "segments") => json!([]),
        (Kind::Net, "l2_adjacency") => json!(true),
        (Kind::Subnet, "cidr") => prop("cidr").unwrap_or(Value::Null),
        (Kind::Subnet, "gateway_ip") => prop("gateway_ip").unwrap_or_else(|| {
            props
                .get("cidr")
                .and_then(Value::as_str)
                .and_then(|c| c.parse::<Cidr>().ok())
                .map(|c| Value::String(ip_text(c.gateway())))
                .unwrap_or(Value::Null)
        }),
        (Kind::Subnet, "allocation_pools") => {
            prop("allocation_pools").unwrap_or_else(|| {
                match props
                    .get("cidr")
                    .and_then(Value::as_str)
                    .and_then(|c| c.parse::<Cidr>().ok())
                {
                    Some(c) => {
                        json!([{"start": ip_text(c.first_host()), "end": ip_text(c.last_host())}])
                    }
                    None => json!([]),
                }
            })
        }
        (Kind::Subnet, "ip_version") => prop("ip_version").unwrap_or(json!(4)),
        (Kind::Subnet, "enable_dhcp") => prop("enable_dhcp").unwrap_or(json!(true)),
        (Kind::Subnet, "dns_nameservers") => prop("dns_nameservers").unwrap_or(json!([])),
        (Kind::Subnet, "host_routes") => prop("host_routes").unwrap_or(json!([])),
        (Kind::Subnet, "network_id") => {
            let net = prop("network")
                .or_else(|| prop("network_id"))
                .map(|v| value_text(&v));
            Value::String(resolve_network(view, &net.unwrap_or_default()).id)
        }
        (Kind::Router, "external_gateway_info") => match prop("external_gateway_info") {
            Some(g) => {
                let net = g.get("network").map(value_text).unwrap_or_default();
                json!({
                    "network_id": resolve_network(view, &net).id,
                    "enable_snat": g.get("enable_snat").cloned().unwrap_or(json!(true)),
                    "external_fixed_ips": [],
                })
            }
            None => Value::Null,
        },
        (Kind::Port, _) => match &r.data {
            Data::Port(p) => port_attribute(view, r, p, &id, name),
            _ => Value::Null,
        },
        (Kind::FloatingIp, _) => match &r.data {
            Data::FloatingIp(f) => {
                let port = port_of_floating_ip(view, r, f);
                match name {
                    "floating_ip_address" => Value::String(ip_text(f.ip)),
                    "floating_network_id" => Value::String(f.network_id.to_string()),
                    "port_id" => port.map(Value::String).unwrap_or(Value::Null),
                    "fixed_ip_address" => port
                        .and_then(|p| port_by_id(view, &p))
                        .and_then(|p| p.fixed_ips.first())
                        .map(|f| Value::String(ip_text(f.ip)))
                        .unwrap_or(Value::Null),
                    "router_id" => Value::Null,
                    _ => Value::Null,
                }
            }
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

fn port_attribute(view: &View<'_>, r: &ResourceState, p: &PortData, id: &str, name: &str) -> Value {
    let device = device_of(view, id);
    match name {
        "fixed_ips" => fixed_ips_json(p),
        "mac_address" => Value::String(mac_address(&p.id)),
        "network_id" => Value::String(p.network_id.to_string()),
        "network" => json!({"id": &*p.network_id, "name": &*p.network_name}),
        "name" => Value::String(if p.name.is_empty() {
            crate::embedded::ids::physical_name(view.stack_name, &r.name, r.short)
        } else {
            p.name.to_string()
        }),
        "status" => json!(if device.is_some() { "ACTIVE" } else { "DOWN" }),
        "admin_state_up" => json!(true),
        "device_id" => Value::String(device.clone().unwrap_or_default()),
        "device_owner" => json!(if device.is_some() { "compute:nova" } else { "" }),
        "security_groups" => json!([]),
        "allowed_address_pairs" => json!([]),
        "port_security_enabled" => json!(true),
        "propagate_uplink_status" => json!(false),
        "qos_policy_id" => Value::Null,
        "subnets" => Value::Array(
            p.fixed_ips
                .iter()
                .map(|f| json!({"id": &*f.subnet_id, "network_id": &*p.network_id}))
                .collect(),
        ),
        "dns_assignment" => Value::Array(
            p.fixed_ips
                .iter()
                .map(|f| {
                    let host = format!("host-{}", ip_text(f.ip).replace('.', "-"));
                    json!({"hostname": host, "ip_address": ip_text(f.ip), "fqdn": format!("{host}.openstacklocal.")})
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}
