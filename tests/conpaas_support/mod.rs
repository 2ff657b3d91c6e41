//! What the ConPaaS integration tests share beyond `tests/common`: the
//! actions' scheme, a Neutron stand-in for the local Heat (floating IPs
//! from a provider template served on loopback), and JSON renderings.
#![allow(dead_code, unused_imports)]

#[path = "../../plugins/conpaas/tests/support/local_heat.rs"]
mod local_heat;

use reqwest::Method;

use crate::common::{call, client, serve_static, Answer};

pub use local_heat::{FLOATING_IP_PREFIX, FLOATING_IP_PROVIDER};

/// The ConPaaS actions' scheme.
pub const ACTIONS: &str = "http://schemas.mobile-cloud-networking.eu/occi/sm/conpaas/action#";

/// The server config (YAML) of a backend on the local Heat at `heat` whose
/// floating IPs come from [`FLOATING_IP_PROVIDER`], served on loopback for
/// as long as the test's runtime lives.
pub async fn local_heat_with_floating_ips(heat: &str) -> String {
    let provider = serve_static(
        "floating-ip.yaml",
        "application/x-yaml",
        FLOATING_IP_PROVIDER,
    )
    .await;
    crate::common::local_heat_yaml(&local_heat::with_floating_ips(heat, &provider))
}

/// GET as `application/occi+json`: the status and the rendering as JSON.
pub async fn get_json(url: &str, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let mut h = headers.to_vec();
    h.push(("Accept", "application/occi+json"));
    let a = call(&client(), Method::GET, url, &h, "").await;
    (a.status.as_u16(), a.json())
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

/// The stack ids by role from `occi.mcn.stack.id` (`role:id,...`).
pub fn stack_ids(attributes: &serde_json::Value) -> Vec<(String, String)> {
    attributes["occi.mcn.stack.id"]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .filter_map(|p| p.split_once(':'))
        .map(|(r, i)| (r.to_string(), i.to_string()))
        .collect()
}
