//! The ESCM service orchestrator through the OCCI API of the real binary
//! on the real local Heat (Nova, Neutron, Cinder and the wait condition
//! mapped to `OS::Heat::None` by the `openstack:` section of a config
//! file): the MCN curl sequence on `/orchestrator/default` with ESCM as the
//! default service, the two stacks, the parameters Heat received, the
//! outputs as attributes, update, a refused shrink, and dispose.

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::Value;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0+xwYILmv6Zx+/+O5vSh7lGb3/KGp57cRQIsicsat7 escm@example";
const MAIL_PASSWORD: &str = "mail pw, with \\\"quotes\\\" and = signs";
const MAIL_PASSWORD_VALUE: &str = "mail pw, with \"quotes\" and = signs";

/// A config file for `serve` on the local Heat, with its stubs.
fn config_file(dir: &std::path::Path, heat: &str) -> std::path::PathBuf {
    let mut text = format!(
        "backend: openstack\nheat-url: {heat}\nopenstack:\n  poll:\n    initial: 200ms\n    max: 2s\n  resource_registry:\n"
    );
    for (from, to) in occi_so_backend::openstack::LOCAL_HEAT_STUBS {
        text.push_str(&format!("    \"{from}\": \"{to}\"\n"));
    }
    let path = dir.join("occi-so.yaml");
    std::fs::write(&path, text).expect("config file");
    path
}

/// `GET {heat}/stacks/{id}` (Heat redirects to the name/id form).
async fn heat_stack(heat: &str, id: &str) -> Option<Value> {
    let r = reqwest::get(format!("{heat}/stacks/{id}")).await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    let v: Value = r.json().await.ok()?;
    Some(v["stack"].clone())
}

/// The `escm_config` software config Heat stored for the instance stack.
async fn boot_configuration(heat: &str, stack: &Value) -> String {
    let name = stack["stack_name"].as_str().unwrap();
    let id = stack["id"].as_str().unwrap();
    let r: Value = reqwest::get(format!("{heat}/stacks/{name}/{id}/resources"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let config_id = r["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource_name"] == "escm_config")
        .and_then(|r| r["physical_resource_id"].as_str())
        .expect("escm_config resource")
        .to_string();
    let c: Value = reqwest::get(format!("{heat}/software_configs/{config_id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    c["software_config"]["config"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn stack_ids(mcn_id: &str) -> (String, String) {
    let mut volumes = None;
    let mut instance = None;
    for pair in mcn_id.split(',') {
        match pair.split_once(':') {
            Some(("volumes", id)) => volumes = Some(id.to_string()),
            Some(("instance", id)) => instance = Some(id.to_string()),
            _ => panic!("unexpected stack id {mcn_id}"),
        }
    }
    (volumes.expect("volumes"), instance.expect("instance"))
}

async fn settled(c: &reqwest::Client, url: &str, tenant: &'static str) -> Answer {
    wait_for(c, url, &mcn(tenant), Duration::from_secs(180), |g| {
        g.status == 200 && g.attribute("occi.so.operation").is_none()
    })
    .await
}

#[tokio::test]
async fn escm_lifecycle_through_the_api_on_the_local_heat() {
    let Some(heat) = require_heat() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &heat);
    let s = start(&[
        "--config",
        config.to_str().unwrap(),
        "--default-service",
        "escm",
    ]);
    let c = client();
    let url = s.url("/orchestrator/default");
    let tenant = "escm-heat";

    // init: the MCN orchestrator kind is ESCM here.
    let mut h = mcn(tenant);
    h.push(("Content-Type", "text/occi"));
    h.push((
        "Category",
        "orchestrator; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"; class=\"kind\"",
    ));
    let attributes = format!(
        "escm.openstack.keypair.publickey=\"{KEY}\", escm.mail.host=\"mail.example.com\", \
         escm.mail.from=\"escm@example.com\", escm.mail.user=\"mailer\", \
         escm.mail.password=\"{MAIL_PASSWORD}\", escm.ssl.generate_certs=true, \
         escm.openstack.volume_stack.data_volume_size=3"
    );
    h.push(("X-OCCI-Attribute", &attributes));
    let a = call(&c, Method::PUT, &url, &h, "").await;
    assert_eq!(a.status, 201, "{}", a.body);
    let g = call(&c, Method::GET, &url, &mcn(tenant), "").await;
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("uninitialized")
    );
    assert_eq!(
        g.attribute("escm.mail.host").as_deref(),
        Some("mail.example.com")
    );
    assert_eq!(g.attribute("escm.mail.port").as_deref(), Some("25"));
    assert!(!g.body.contains("mail pw") && !format!("{:?}", g.headers).contains("mail pw"));

    // deploy: the volume stack, then the instance stack.
    let mut h = mcn(tenant);
    h.push(("Content-Type", "text/occi"));
    h.push(("Category", "deploy; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"; class=\"action\""));
    let a = call(&c, Method::POST, &format!("{url}?action=deploy"), &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = settled(&c, &url, tenant).await;
    assert_eq!(
        g.attribute("occi.so.phase").as_deref(),
        Some("deployed"),
        "{}",
        g.body
    );
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("CREATE_COMPLETE")
    );
    assert_eq!(
        g.attribute("escm.stack.volumes.state").as_deref(),
        Some("CREATE_COMPLETE")
    );
    assert_eq!(
        g.attribute("escm.stack.instance.state").as_deref(),
        Some("CREATE_COMPLETE")
    );
    let (volumes_id, instance_id) = stack_ids(&g.attribute("occi.mcn.stack.id").unwrap());
    assert_eq!(
        g.attribute("escm.stack.volumes.id"),
        Some(volumes_id.clone())
    );
    let logs = g
        .attribute("logs_volume_id")
        .expect("volume ids are attributes");
    let data = g
        .attribute("data_volume_id")
        .expect("volume ids are attributes");
    assert_eq!(g.actions(), ["provision", "notify"]);

    let volumes = heat_stack(&heat, &volumes_id)
        .await
        .expect("volume stack in Heat");
    assert_eq!(volumes["stack_status"], "CREATE_COMPLETE");
    assert_eq!(volumes["parameters"]["data_size"], "3");
    assert_eq!(volumes["parameters"]["logs_size"], "2");
    let instance = heat_stack(&heat, &instance_id)
        .await
        .expect("instance stack in Heat");
    let p = &instance["parameters"];
    assert_eq!(p["logs_volume_id"], logs.as_str());
    assert_eq!(p["data_volume_id"], data.as_str());
    assert_eq!(p["mail_password"], "******");
    assert_eq!(p["mail_user"], "mailer");
    assert_eq!(p["mail_auth"], "true");
    assert_eq!(p["public_key"], KEY);
    assert_eq!(p["escm_provision"], "false");
    assert!(instance["stack_name"]
        .as_str()
        .unwrap()
        .ends_with("-instance"));
    assert!(volumes["stack_name"]
        .as_str()
        .unwrap()
        .ends_with("-volumes"));

    // provision: the instance stack is updated with ESCM's configuration.
    let mut h = mcn(tenant);
    h.push(("Content-Type", "text/occi"));
    h.push(("Category", "provision; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"; class=\"action\""));
    let a = call(&c, Method::POST, &format!("{url}?action=provision"), &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = settled(&c, &url, tenant).await;
    assert_eq!(
        g.attribute("occi.so.phase").as_deref(),
        Some("provisioned"),
        "{}",
        g.body
    );
    assert_eq!(
        g.attribute("escm.stack.instance.state").as_deref(),
        Some("UPDATE_COMPLETE")
    );
    let instance = heat_stack(&heat, &instance_id).await.unwrap();
    assert_eq!(instance["parameters"]["escm_provision"], "true");
    // The password, given in a header, reaches the instance's var.env as
    // it was typed (Heat's software config of the boot configuration).
    let config = boot_configuration(&heat, &instance).await;
    assert!(
        config.contains(&format!("SMTP_PWD={MAIL_PASSWORD_VALUE}\n")),
        "the password reaches var.env"
    );
    assert!(config.contains("SMTP_USER=mailer\n"));
    // The stub server has no address: no ip_appserver, hence no URLs here
    // (the embedded engine's tests see them).
    assert_eq!(g.attribute("ip_appserver"), None);

    // notify (a runtime event): accepted, changes nothing.
    let mut h = mcn(tenant);
    h.push(("Content-Type", "text/occi"));
    h.push(("Category", "notify; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"; class=\"action\""));
    h.push(("X-OCCI-Attribute", "alarm=\"cpu\""));
    let a = call(&c, Method::POST, &format!("{url}?action=notify"), &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = settled(&c, &url, tenant).await;
    assert_eq!(g.attribute("occi.so.error"), None, "{}", g.body);
    assert_eq!(
        g.attribute("escm.stack.instance.state").as_deref(),
        Some("UPDATE_COMPLETE")
    );

    // update: a changed setting reaches Heat.
    let mut h = mcn(tenant);
    h.push(("Content-Type", "text/occi"));
    h.push((
        "X-OCCI-Attribute",
        "escm.mail.host=\"smtp2.example.com\", escm.mail.port=587",
    ));
    let a = call(&c, Method::POST, &url, &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = settled(&c, &url, tenant).await;
    assert_eq!(g.attribute("occi.so.error"), None, "{}", g.body);
    let instance = heat_stack(&heat, &instance_id).await.unwrap();
    assert_eq!(instance["parameters"]["mail_host"], "smtp2.example.com");
    assert_eq!(instance["parameters"]["mail_port"], "587");
    assert_eq!(instance["parameters"]["mail_password"], "******");
    assert_eq!(
        g.attribute("occi.mcn.stack.id").map(|i| stack_ids(&i)),
        Some((volumes_id.clone(), instance_id.clone())),
        "same stacks"
    );

    // update: a volume cannot shrink; the operation fails, nothing changes.
    let mut h = mcn(tenant);
    h.push(("Content-Type", "text/occi"));
    h.push((
        "X-OCCI-Attribute",
        "escm.openstack.volume_stack.data_volume_size=1, escm.mail.port=2525",
    ));
    let a = call(&c, Method::POST, &url, &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = settled(&c, &url, tenant).await;
    let error = g
        .attribute("occi.so.error")
        .expect("the failed update is reported");
    assert!(
        error.contains("escm.openstack.volume_stack.data_volume_size")
            && error.contains("cannot shrink"),
        "{error}"
    );
    assert_eq!(
        g.attribute("escm.openstack.volume_stack.data_volume_size")
            .as_deref(),
        Some("3")
    );
    assert_eq!(
        g.attribute("escm.mail.port").as_deref(),
        Some("587"),
        "the whole update is refused"
    );
    let volumes = heat_stack(&heat, &volumes_id).await.unwrap();
    assert_eq!(volumes["parameters"]["data_size"], "3");
    assert_eq!(volumes["stack_status"], "CREATE_COMPLETE");

    // dispose: both stacks deleted, the instance gone.
    let a = call(&c, Method::DELETE, &url, &mcn(tenant), "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        call(&c, Method::GET, &url, &mcn(tenant), "").await.status,
        404
    );
    for id in [&instance_id, &volumes_id] {
        let st = heat_stack(&heat, id).await;
        assert!(
            st.is_none()
                || st.as_ref().map(|s| s["stack_status"] == "DELETE_COMPLETE") == Some(true),
            "{st:?}"
        );
    }
    assert!(!s.log().contains("mail pw"), "a password is in the log");
}
