//! Nova: servers (on the networks and ports their properties name, with
//! fixed and floating addresses as Nova and Heat report them) and key pairs.

use base64::Engine as _;
use rand::RngCore;
use serde_json::{json, Map, Value};

use super::network::{self, resolve_network, AddressSource};
use super::{value_text, Apply, Failure};
use crate::embedded::config::{ip_text, parse_ip};
use crate::embedded::ids::{mac_address, new_uuid};
use crate::embedded::pool::Pools;
use crate::embedded::state::{
    Data, KeyPairData, Nic, Physical, PortData, ResourceState, ServerData,
};
use crate::embedded::view::View;

/// One entry of a server's `networks`.
struct Wanted {
    port: Option<String>,
    network: Option<String>,
    subnet: Option<String>,
    fixed_ip: Option<u32>,
}

fn wanted(a: &Apply<'_>) -> Vec<Wanted> {
    let entries = a.prop("networks").and_then(Value::as_array);
    let text = |e: &Value, k: &str| e.get(k).filter(|v| !v.is_null()).map(value_text);
    match entries {
        Some(list) if !list.is_empty() => list
            .iter()
            .map(|e| Wanted {
                port: text(e, "port"),
                network: text(e, "network").or_else(|| text(e, "uuid")),
                subnet: text(e, "subnet"),
                fixed_ip: text(e, "fixed_ip").and_then(|s| parse_ip(&s)),
            })
            .collect(),
        // No networks: Nova puts the server on the tenant's network.
        _ => vec![Wanted {
            port: None,
            network: None,
            subnet: None,
            fixed_ip: None,
        }],
    }
}

/// The server's attachments, reusing the ports it already has on the same
/// networks (an update) and giving back those it no longer needs.
fn nics(a: &Apply<'_>, current: &[Nic]) -> Result<Vec<Nic>, Failure> {
    let mut spare: Vec<&PortData> = current
        .iter()
        .filter_map(|n| match n {
            Nic::Own(p) => Some(p),
            Nic::Port(_) => None,
        })
        .collect();
    let mut made: Vec<PortData> = Vec::new();
    let mut out = Vec::new();
    for w in wanted(a) {
        if let Some(port) = w.port {
            out.push(Nic::Port(port.into()));
            continue;
        }
        let reference = w
            .network
            .clone()
            .or_else(|| w.subnet.clone())
            .unwrap_or_default();
        let net = resolve_network(&a.view, &reference);
        if let Some(i) = spare.iter().position(|p| *p.network_id == *net.id) {
            out.push(Nic::Own(spare.remove(i).clone()));
            continue;
        }
        let fixed = match network::allocate(&a.view, &net, &net.source, w.fixed_ip) {
            Ok(f) => f,
            Err(e) => {
                for p in &made {
                    network::release_port(p, a.view.env.pools);
                }
                return Err(e);
            }
        };
        let port = PortData {
            id: new_uuid(),
            name: "".into(),
            network_id: net.id.clone().into(),
            network_name: net.name.clone().into(),
            fixed_ips: fixed.into_iter().collect(),
        };
        made.push(port.clone());
        out.push(Nic::Own(port));
        if matches!(net.source, AddressSource::Nothing) {
            tracing::debug!(network = %net.name, "server on a network without a subnet: no address");
        }
    }
    for p in spare {
        network::release_port(p, a.view.env.pools);
    }
    Ok(out)
}

fn server_data(a: &Apply<'_>, current: &[Nic]) -> Result<ServerData, Failure> {
    Ok(ServerData {
        name: a
            .text("name")
            .unwrap_or_else(|| a.physical_name.clone())
            .into(),
        nics: nics(a, current)?,
        image: a.text("image").unwrap_or_default().into(),
        flavor: a.text("flavor").unwrap_or_default().into(),
    })
}

/// `OS::Nova::Server` at create.
pub(crate) fn create_server(a: &Apply<'_>) -> Result<(Physical, Data), Failure> {
    let data = server_data(a, &[])?;
    Ok((Physical::Uuid(new_uuid()), Data::Server(Box::new(data))))
}

/// `OS::Nova::Server` updated in place (name, networks, flavor, image).
pub(crate) fn update_server(a: &Apply<'_>) -> Result<Data, Failure> {
    let current = match a.current.map(|c| &c.data) {
        Some(Data::Server(s)) => s.nics.clone(),
        _ => Vec::new(),
    };
    Ok(Data::Server(Box::new(server_data(a, &current)?)))
}

/// Gives back the addresses of the ports Nova made for the server.
pub(crate) fn release_server(s: &ServerData, pools: &Pools) {
    for n in &s.nics {
        if let Nic::Own(p) = n {
            network::release_port(p, pools);
        }
    }
}

/// Takes back those addresses (state read back at start).
pub(crate) fn reserve_server(s: &ServerData, pools: &Pools) {
    for n in &s.nics {
        if let Nic::Own(p) = n {
            network::reserve_port(p, pools);
        }
    }
}

/// A server's ports, resolved.
fn ports<'a>(view: &View<'a>, s: &'a ServerData) -> Vec<&'a PortData> {
    s.nics
        .iter()
        .filter_map(|n| match n {
            Nic::Own(p) => Some(p),
            Nic::Port(id) => network::port_by_id(view, id),
        })
        .collect()
}

/// Nova's `networks`: network name → fixed then floating addresses.
fn nova_networks(view: &View<'_>, s: &ServerData) -> Map<String, Value> {
    let mut nets: Map<String, Value> = Map::new();
    for p in ports(view, s) {
        let entry = nets
            .entry(p.network_name.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            for f in &p.fixed_ips {
                list.push(Value::String(ip_text(f.ip)));
            }
            for fip in network::floating_ips_of(view, &p.id.to_string()) {
                list.push(Value::String(ip_text(fip)));
            }
        }
    }
    nets
}

/// Heat's `networks`: Nova's, also keyed by network id.
fn networks(view: &View<'_>, s: &ServerData) -> Value {
    let mut nets = nova_networks(view, s);
    for p in ports(view, s) {
        if let Some(v) = nets.get(&*p.network_name).cloned() {
            nets.insert(p.network_id.to_string(), v);
        }
    }
    Value::Object(nets)
}

/// Heat's `addresses`: per network, each port's fixed address (with its
/// port, subnets and network) after its floating addresses.
fn addresses(view: &View<'_>, s: &ServerData) -> Value {
    let mut nets: Map<String, Value> = Map::new();
    let mut ids: Vec<(String, String)> = Vec::new();
    for p in ports(view, s) {
        ids.push((p.network_name.to_string(), p.network_id.to_string()));
        let entry = nets
            .entry(p.network_name.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        let Value::Array(list) = entry else { continue };
        let mac = mac_address(&p.id);
        for f in &p.fixed_ips {
            // Heat writes `version` as a one-element list (a stray comma
            // in its code makes it a tuple); shown as Heat shows it.
            for fip in network::floating_ips_of(view, &p.id.to_string()) {
                list.push(json!({
                    "addr": ip_text(fip),
                    "version": [4],
                    "OS-EXT-IPS-MAC:mac_addr": mac,
                    "OS-EXT-IPS:type": "floating",
                    "port": null,
                }));
            }
            list.push(json!({
                "addr": ip_text(f.ip),
                "OS-EXT-IPS-MAC:mac_addr": mac,
                "OS-EXT-IPS:type": "fixed",
                "port": p.id.to_string(),
                "version": [4],
                "subnets": [{"id": &*f.subnet_id, "network_id": &*p.network_id, "ip_version": 4}],
                "network": {"id": &*p.network_id, "name": &*p.network_name},
            }));
        }
    }
    for (name, id) in ids {
        if let Some(v) = nets.get(&name).cloned() {
            nets.insert(id, v);
        }
    }
    Value::Object(nets)
}

/// The attributes of `OS::Nova::Server`.
pub(crate) fn server_attribute(view: &View<'_>, r: &ResourceState, name: &str) -> Value {
    let Data::Server(s) = &r.data else {
        return Value::Null;
    };
    let id = view.physical_id(r);
    match name {
        "name" => Value::String(s.name.to_string()),
        "first_address" => {
            // Nova's networks, by name in reverse order, first address.
            let nets = nova_networks(view, s);
            let mut names: Vec<&String> = nets.keys().collect();
            names.sort_unstable_by(|a, b| b.cmp(a));
            names
                .into_iter()
                .find_map(|n| nets[n].get(0).cloned())
                .unwrap_or_else(|| Value::String(String::new()))
        }
        "addresses" => addresses(view, s),
        "networks" => networks(view, s),
        "accessIPv4" | "accessIPv6" => Value::String(String::new()),
        "instance_name" => {
            let n = uuid::Uuid::parse_str(&id)
                .map(|u| u.as_u64_pair().1 & 0xffff_ffff)
                .unwrap_or(0);
            Value::String(format!("instance-{n:08x}"))
        }
        "os_collect_config" => json!({}),
        "console_urls" => json!({
            "novnc": format!("http://127.0.0.1:6080/vnc_auto.html?path=%3Ftoken%3D{}", new_uuid())
        }),
        "tags" => json!([]),
        _ => Value::Null,
    }
}

/// `OS::Nova::KeyPair` at create: the public key given, or a new pair.
pub(crate) fn create_key_pair(a: &Apply<'_>) -> Result<(Physical, Data), Failure> {
    let name = a.text("name").unwrap_or_else(|| a.physical_name.clone());
    let given = a.text("public_key").filter(|k| !k.trim().is_empty());
    let save = a
        .prop("save_private_key")
        .is_some_and(heat::parameter::truthy);
    let (public_key, private_key) = match given {
        Some(k) => (k, None),
        None => {
            let (public, private) = new_key_pair(&name);
            (public, save.then_some(private))
        }
    };
    Ok((
        Physical::Text(name.into()),
        Data::KeyPair(Box::new(KeyPairData {
            public_key: public_key.into(),
            private_key: private_key.map(Into::into),
        })),
    ))
}

/// An ed25519 key pair in OpenSSH's formats. The simulated cloud never
/// runs a server to log in to, so the key material is random bytes in the
/// right containers, not a usable key.
fn new_key_pair(comment: &str) -> (String, String) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let mut blob = Vec::new();
    for part in [b"ssh-ed25519".as_slice(), &key] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    let public = format!("ssh-ed25519 {} {comment}", b64.encode(&blob));
    let mut secret = vec![0u8; 160];
    rand::rng().fill_bytes(&mut secret);
    let mut body = b"openssh-key-v1\0".to_vec();
    body.extend_from_slice(&secret);
    let text = b64.encode(&body);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(70)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    let private = format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
        lines.join("\n")
    );
    (public, private)
}

/// The attributes of `OS::Nova::KeyPair`.
pub(crate) fn key_pair_attribute(r: &ResourceState, name: &str) -> Value {
    let Data::KeyPair(k) = &r.data else {
        return Value::Null;
    };
    match name {
        "public_key" => Value::String(k.public_key.to_string()),
        "private_key" => Value::String(k.private_key.as_deref().unwrap_or("").to_string()),
        _ => Value::Null,
    }
}
