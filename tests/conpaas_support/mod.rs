//! What the ConPaaS integration tests share beyond `tests/common`: a
//! Neutron stand-in for the local Heat (floating IPs from a provider
//! template served on loopback) and the server configuration using it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use occi_so_backend::openstack::LOCAL_HEAT_STUBS;
use occi_so_backend::OpenStackConfig;
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::{call, client, Answer};

/// The ConPaaS actions' scheme.
pub const ACTIONS: &str = "http://schemas.mobile-cloud-networking.eu/occi/sm/conpaas/action#";

/// `OS::Neutron::FloatingIP` for a Heat without Neutron: every attribute
/// as an output, an address from TEST-NET-2.
pub const FLOATING_IP_PROVIDER: &str =
    include_str!("../../plugins/conpaas/tests/fixtures/floating-ip-provider.yaml");

/// Serves [`FLOATING_IP_PROVIDER`] on loopback while the test runs; its URL.
pub async fn serve_floating_ip_provider() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65536 {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = FLOATING_IP_PROVIDER.as_bytes();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-yaml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(body).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    format!("http://{addr}/floating-ip.yaml")
}

/// A config file for `serve` on the local Heat at `heat`, its cloud types
/// stubbed as `OpenStackConfig::local_heat` does, floating IPs from
/// `provider`. Written into `dir`.
pub fn local_heat_config(dir: &Path, heat: &str, provider: &str) -> PathBuf {
    let mut os = OpenStackConfig::local_heat(heat);
    os.resource_registry = LOCAL_HEAT_STUBS
        .iter()
        .filter(|(k, _)| *k != "OS::Neutron::*")
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for t in ["OS::Neutron::Port", "OS::Neutron::SecurityGroup"] {
        os.resource_registry
            .insert(t.into(), "OS::Heat::None".into());
    }
    os.resource_registry
        .insert("OS::Neutron::FloatingIP".into(), provider.into());
    let doc = serde_json::json!({
        "backend": "openstack",
        "heat-url": heat,
        "openstack": serde_json::to_value(&os).expect("config as data"),
    });
    let path = dir.join("occi-so-conpaas.yaml");
    std::fs::write(&path, serde_yaml::to_string(&doc).expect("yaml")).expect("config written");
    path
}

/// GET as `application/occi+json`: the rendering as JSON.
pub async fn get_json(url: &str, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let mut h = headers.to_vec();
    h.push(("Accept", "application/occi+json"));
    let a = call(&client(), Method::GET, url, &h, "").await;
    let v = serde_json::from_str(&a.body).unwrap_or(serde_json::Value::Null);
    (a.status.as_u16(), v)
}

/// `POST <instance>?action=<term>` with the action's Category and
/// `X-OCCI-Attribute` parameters.
pub async fn action(url: &str, headers: &[(&str, &str)], term: &str, params: &str) -> Answer {
    let category = format!("{term}; scheme=\"{ACTIONS}\"; class=\"action\"");
    let mut h = headers.to_vec();
    h.push(("Category", category.as_str()));
    if !params.is_empty() {
        h.push(("X-OCCI-Attribute", params));
    }
    call(
        &client(),
        Method::POST,
        &format!("{url}?action={term}"),
        &h,
        "",
    )
    .await
}

/// The Heat stack ids by role from `occi.mcn.stack.id` (`role:id,...`).
pub fn stack_ids(attributes: &serde_json::Value) -> Vec<(String, String)> {
    attributes["occi.mcn.stack.id"]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .filter_map(|p| p.split_once(':'))
        .map(|(r, i)| (r.to_string(), i.to_string()))
        .collect()
}

/// A stack as the local Heat shows it (`None` once gone).
pub async fn heat_stack(heat: &str, id: &str) -> Option<serde_json::Value> {
    let r = client()
        .get(format!("{heat}/stacks/{id}"))
        .send()
        .await
        .ok()?;
    if r.status() == 404 {
        return None;
    }
    let v: serde_json::Value = r.json().await.ok()?;
    let stack = v["stack"].clone();
    (stack["stack_status"] != "DELETE_COMPLETE").then_some(stack)
}

/// How many `OS::Nova::Server` resources the stack has in Heat.
pub async fn heat_servers(heat: &str, stack: &serde_json::Value) -> usize {
    let url = format!(
        "{heat}/stacks/{}/{}/resources",
        stack["stack_name"].as_str().unwrap_or_default(),
        stack["id"].as_str().unwrap_or_default()
    );
    let v: serde_json::Value = client()
        .get(url)
        .send()
        .await
        .expect("resources")
        .json()
        .await
        .expect("resources json");
    v["resources"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter(|r| r["resource_type"] == "OS::Nova::Server")
                .count()
        })
        .unwrap_or(0)
}

/// Polls the instance until no operation runs (at most `within`, reading
/// every `every`); its rendering as JSON.
pub async fn settled_within(
    url: &str,
    h: &[(&str, &str)],
    within: std::time::Duration,
    every: std::time::Duration,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let (status, doc) = get_json(url, h).await;
        assert_eq!(status, 200, "{doc}");
        if doc["attributes"].get("occi.so.operation").is_none() {
            return doc;
        }
        assert!(std::time::Instant::now() < deadline, "still running: {doc}");
        tokio::time::sleep(every).await;
    }
}

/// Fails the test when the instance's last operation failed.
pub fn no_error(doc: &serde_json::Value) {
    let a = &doc["attributes"];
    assert!(
        a.get("occi.so.error").is_none() && a.get("occi.so.last_error").is_none(),
        "the last operation failed: {doc}"
    );
}

/// Invokes action `term` with `params`, expects it accepted (200), waits
/// until the instance settles and its operation succeeded; the rendering.
pub async fn act_and_settle(
    url: &str,
    h: &[(&str, &str)],
    term: &str,
    params: &str,
    within: std::time::Duration,
    every: std::time::Duration,
) -> serde_json::Value {
    let a = action(url, h, term, params).await;
    assert_eq!(a.status, 200, "{term}: {}", a.body);
    let doc = settled_within(url, h, within, every).await;
    no_error(&doc);
    doc
}
