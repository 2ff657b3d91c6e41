//! The ESCM service orchestrator through the OCCI API of the real binary
//! on the embedded engine (no `--backend`: the default): the volume stack
//! then the instance stack fed with the volume stack's outputs, as the
//! engine received them (`GET /admin/stacks`); the app server's address
//! and ESCM's URLs as attributes; passwords hidden everywhere; updates
//! (settings, a growing volume); dispose in reverse order.

mod common;
mod embedded_support;

use std::time::Duration;

use common::*;
use embedded_support::*;
use reqwest::Method;
use serde_json::Value;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0+xwYILmv6Zx+/+O5vSh7lGb3/KGp57cRQIsicsat7 escm@example";
/// The three passwords given (mail, Docker registry, proxy).
const SECRETS: [&str; 3] = ["mail-Pw-4471", "docker-Pw-9023", "proxy-Pw-3318"];
const TENANT: &str = "escm-emb";
const WAIT: Duration = Duration::from_secs(40);
/// Slow enough to watch dispose take the stacks one after the other.
const ENGINE: &str = "{resource_delay: 40ms, signal_delay: 20ms}";

async fn settled(c: &reqwest::Client, url: &str) -> Answer {
    wait_for(c, url, &mcn(TENANT), WAIT, |g| {
        g.status == 200 && g.attribute("occi.so.operation").is_none()
    })
    .await
}

fn action_headers(term: &'static str) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "text/occi".to_string()),
        (
            "Category",
            format!(
                "{term}; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"; class=\"action\""
            ),
        ),
    ]
}

async fn act(c: &reqwest::Client, url: &str, term: &'static str) -> Answer {
    let extra = action_headers(term);
    let mut h = mcn(TENANT);
    h.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
    call(c, Method::POST, &format!("{url}?action={term}"), &h, "").await
}

async fn update(c: &reqwest::Client, url: &str, attributes: &str) -> Answer {
    let mut h = mcn(TENANT);
    h.push(("Content-Type", "text/occi"));
    h.push(("X-OCCI-Attribute", attributes));
    call(c, Method::POST, url, &h, "").await
}

/// The volume and instance stacks as the engine reports them now.
async fn escm_stacks(s: &Server, instance: &str) -> (Value, Value) {
    let (status, doc) = admin_stacks(s, TENANT, instance).await;
    assert_eq!(status, 200, "{doc}");
    let list = stacks(&doc);
    let roles: Vec<&str> = list.iter().filter_map(|s| s["role"].as_str()).collect();
    assert_eq!(roles, ["volumes", "instance"], "{doc}");
    for secret in SECRETS {
        assert!(!doc.to_string().contains(secret), "a password in {doc}");
    }
    (
        stack(&list, "volumes").clone(),
        stack(&list, "instance").clone(),
    )
}

/// No password in either OCCI rendering of the instance.
async fn not_rendered(c: &reqwest::Client, url: &str) {
    for accept in ["text/plain", "text/occi", "application/occi+json"] {
        let mut h = mcn(TENANT);
        h.push(("Accept", accept));
        let a = call(c, Method::GET, url, &h, "").await;
        assert_eq!(a.status, 200, "{}", a.body);
        let all = format!("{:?}{}", a.headers, a.body);
        for secret in SECRETS {
            assert!(!all.contains(secret), "{accept}: a password rendered");
        }
        assert!(!all.contains("password="), "{accept}: {all}");
    }
}

/// The instance stack takes the volume ids from the volume stack's outputs.
fn volumes_fed_to_instance(g: &Answer, volumes: &Value, instance: &Value) {
    for key in ["logs_volume_id", "data_volume_id"] {
        let out = output(volumes, key);
        let id = out
            .as_str()
            .unwrap_or_else(|| panic!("{key} output: {volumes}"));
        assert!(!id.is_empty());
        assert_eq!(parameter(instance, key), id, "{key}");
        assert_eq!(g.attribute(key).as_deref(), Some(id), "{key} attribute");
    }
    assert_ne!(
        output(volumes, "logs_volume_id"),
        output(volumes, "data_volume_id")
    );
}

/// Line number of the first log line holding every part.
fn line_of(log: &str, parts: &[&str]) -> Option<usize> {
    log.lines()
        .position(|l| parts.iter().all(|p| l.contains(p)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escm_lifecycle_through_the_api_on_the_embedded_engine() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_with(embedded_args_with(dir.path(), ENGINE, ""));
    let c = client();
    let url = s.url("/escm/catalog");
    let instance = "/escm/catalog";

    // create, with every password the guide documents
    let category = format!("escm; scheme=\"{SM}\"; class=\"kind\"");
    let attributes = format!(
        "escm.openstack.keypair.publickey=\"{KEY}\", escm.mail.host=\"mail.example.com\", \
         escm.mail.from=\"escm@example.com\", escm.mail.user=\"mailer\", \
         escm.mail.password=\"{}\", escm.docker.auth=true, escm.docker.user=\"puller\", \
         escm.docker.password=\"{}\", escm.proxy.use_proxy=true, \
         escm.proxy.http_host=\"proxy.example.com\", escm.proxy.https_host=\"proxy.example.com\", \
         escm.proxy.auth=true, escm.proxy.user=\"px\", escm.proxy.password=\"{}\", \
         escm.ssl.generate_certs=true",
        SECRETS[0], SECRETS[1], SECRETS[2]
    );
    let mut h = mcn(TENANT);
    h.push(("Content-Type", "text/occi"));
    h.push(("Category", &category));
    h.push(("X-OCCI-Attribute", &attributes));
    let a = call(&c, Method::PUT, &url, &h, "").await;
    assert_eq!(a.status, 201, "{}", a.body);
    not_rendered(&c, &url).await;
    let (status, doc) = admin_stacks(&s, TENANT, instance).await;
    assert_eq!((status, &doc["stacks"]), (200, &serde_json::json!([])));

    // deploy: the volume stack, then the instance stack fed with its outputs
    let a = act(&c, &url, "deploy").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = settled(&c, &url).await;
    assert_eq!(g.attribute("occi.so.error"), None, "{}", g.body);
    assert_eq!(g.attribute("occi.so.phase").as_deref(), Some("deployed"));
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("CREATE_COMPLETE")
    );
    let (volumes, inst) = escm_stacks(&s, instance).await;
    assert_eq!(stack_status(&volumes), "CREATE_COMPLETE");
    assert_eq!(stack_status(&inst), "CREATE_COMPLETE");
    assert_eq!(
        g.attribute("occi.mcn.stack.id"),
        Some(format!(
            "volumes:{},instance:{}",
            volumes["id"].as_str().unwrap(),
            inst["id"].as_str().unwrap()
        ))
    );
    assert_eq!(
        g.attribute("escm.stack.volumes.state").as_deref(),
        Some("CREATE_COMPLETE")
    );
    assert_eq!(
        g.attribute("escm.stack.instance.state").as_deref(),
        Some("CREATE_COMPLETE")
    );
    volumes_fed_to_instance(&g, &volumes, &inst);
    assert_eq!(parameter(&volumes, "logs_size"), "2");
    assert_eq!(parameter(&volumes, "data_size"), "2");
    assert_eq!(resources_of(&volumes, "OS::Cinder::Volume").len(), 2);
    assert_eq!(
        resources_of(&inst, "OS::Cinder::VolumeAttachment").len(),
        2,
        "{inst}"
    );
    assert_eq!(resources_of(&inst, "OS::Nova::Server").len(), 1);
    // The volume stack was complete before the instance stack was asked for.
    let log = s.log();
    let volumes_name = volumes["name"].as_str().unwrap();
    let instance_name = inst["name"].as_str().unwrap();
    let volumes_done = line_of(
        &log,
        &[
            "embedded stack settled",
            &format!(" stack={volumes_name} "),
            "CREATE_COMPLETE",
        ],
    )
    .expect("the volume stack settled");
    let instance_asked = line_of(
        &log,
        &[
            "embedded create accepted",
            &format!(" stack={instance_name} "),
        ],
    )
    .expect("the instance stack was created");
    assert!(volumes_done < instance_asked, "volumes first");
    // Hidden parameters for every password; the others as given.
    for p in ["mail_password", "docker_password", "proxy_password"] {
        assert_eq!(parameter(&inst, p), "******", "{p}");
    }
    assert_eq!(parameter(&inst, "mail_user"), "mailer");
    assert_eq!(parameter(&inst, "docker_user"), "puller");
    assert_eq!(parameter(&inst, "proxy_user"), "px");
    assert_eq!(parameter(&inst, "public_key"), KEY);
    assert_eq!(parameter(&inst, "escm_provision"), "false");
    // The app server's address: a floating IP of the engine's pool.
    let ip = g.attribute("ip_appserver").expect("ip_appserver");
    assert!(is_address_in(&ip, "172.24."), "{ip}");
    assert_eq!(output(&inst, "ip_appserver"), Value::String(ip.clone()));
    assert_eq!(g.attribute("escm.url.portal"), None, "not before provision");
    not_rendered(&c, &url).await;

    // provision: ESCM's configuration, then the URLs on the real address
    let a = act(&c, &url, "provision").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = settled(&c, &url).await;
    assert_eq!(g.attribute("occi.so.error"), None, "{}", g.body);
    assert_eq!(g.attribute("occi.so.phase").as_deref(), Some("provisioned"));
    let (volumes, inst) = escm_stacks(&s, instance).await;
    assert_eq!(stack_status(&inst), "UPDATE_COMPLETE");
    assert_eq!(stack_status(&volumes), "CREATE_COMPLETE", "volumes kept");
    assert_eq!(parameter(&inst, "escm_provision"), "true");
    volumes_fed_to_instance(&g, &volumes, &inst);
    let ip = g.attribute("ip_appserver").expect("ip_appserver");
    assert!(is_address_in(&ip, "172.24."), "{ip}");
    for (attribute, rest) in [
        ("escm.url.portal", ":8081/oscm-portal"),
        ("escm.url.marketplace", ":8081/oscm-portal/marketplace"),
        ("escm.url.app", ":8881/oscm-app"),
        ("escm.url.reports", ":8681/birt"),
        ("escm.url.branding", ":8443/"),
        ("escm.url.help", ":8543/"),
    ] {
        assert_eq!(
            g.attribute(attribute),
            Some(format!("https://{ip}{rest}")),
            "{attribute}"
        );
    }

    // update: settings reach the instance stack; the URLs follow the FQDN
    let a = update(
        &c,
        &url,
        "escm.mail.host=\"smtp2.example.com\", escm.mail.port=587, escm.ssl.fqdn=\"escm.example.com\"",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = settled(&c, &url).await;
    assert_eq!(g.attribute("occi.so.error"), None, "{}", g.body);
    let (volumes, inst) = escm_stacks(&s, instance).await;
    assert_eq!(stack_status(&inst), "UPDATE_COMPLETE");
    assert_eq!(parameter(&inst, "mail_host"), "smtp2.example.com");
    assert_eq!(parameter(&inst, "mail_port"), "587");
    assert_eq!(parameter(&inst, "ssl_fqdn"), "escm.example.com");
    assert_eq!(parameter(&inst, "mail_password"), "******");
    assert_eq!(parameter(&inst, "escm_provision"), "true");
    assert_eq!(stack_status(&volumes), "CREATE_COMPLETE");
    assert_eq!(
        g.attribute("escm.url.portal").as_deref(),
        Some("https://escm.example.com:8081/oscm-portal")
    );

    // update: the data volume grows; the instance follows the volume ids
    let a = update(&c, &url, "escm.openstack.volume_stack.data_volume_size=5").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = settled(&c, &url).await;
    assert_eq!(g.attribute("occi.so.error"), None, "{}", g.body);
    let (volumes, inst) = escm_stacks(&s, instance).await;
    assert_eq!(stack_status(&volumes), "UPDATE_COMPLETE");
    assert_eq!(parameter(&volumes, "data_size"), "5");
    assert_eq!(parameter(&volumes, "logs_size"), "2");
    volumes_fed_to_instance(&g, &volumes, &inst);
    not_rendered(&c, &url).await;

    // update: a volume cannot shrink; the whole update is refused and no
    // stack changes
    let log_updates = |s: &Server| {
        let log = s.log();
        (
            settled_count(&log, TENANT, volumes_name, "UPDATE_COMPLETE"),
            settled_count(&log, TENANT, instance_name, "UPDATE_COMPLETE"),
        )
    };
    let updates = log_updates(&s);
    let a = update(
        &c,
        &url,
        "escm.openstack.volume_stack.data_volume_size=4, escm.mail.port=2525",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = settled(&c, &url).await;
    let error = g
        .attribute("occi.so.error")
        .expect("the refusal is reported");
    assert!(
        error.contains("escm.openstack.volume_stack.data_volume_size")
            && error.contains("cannot shrink"),
        "{error}"
    );
    assert_eq!(
        g.attribute("escm.openstack.volume_stack.data_volume_size")
            .as_deref(),
        Some("5")
    );
    assert_eq!(g.attribute("escm.mail.port").as_deref(), Some("587"));
    let (volumes, inst) = escm_stacks(&s, instance).await;
    assert_eq!(parameter(&volumes, "data_size"), "5");
    assert_eq!(parameter(&inst, "mail_port"), "587");
    assert_eq!(log_updates(&s), updates, "no stack update");

    // dispose: the instance stack first, the volume stack once it is gone
    let watcher = {
        let c = c.clone();
        let url = url.clone();
        tokio::spawn(async move {
            let a = call(&c, Method::DELETE, &url, &mcn(TENANT), "").await;
            (a.status.as_u16(), a.body)
        })
    };
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (status, doc) = admin_stacks(&s, TENANT, instance).await;
        if status == 404 {
            break;
        }
        assert_eq!(status, 200, "{doc}");
        let list = doc["stacks"].as_array().cloned().unwrap_or_default();
        let state = |role: &str| {
            list.iter()
                .find(|s| s["role"] == role)
                .map(stack_status)
                .unwrap_or_else(|| "gone".into())
        };
        let pair = (state("volumes"), state("instance"));
        if seen.last() != Some(&pair) {
            seen.push(pair);
        }
        assert!(std::time::Instant::now() < deadline, "dispose: {seen:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, body) = watcher.await.unwrap();
    assert!(status == 200 || status == 202, "{status} {body}");
    wait_for(&c, &url, &mcn(TENANT), WAIT, |g| g.status == 404).await;
    for (volumes, instance) in &seen {
        if volumes.starts_with("DELETE") || volumes == "gone" {
            assert!(
                instance == "DELETE_COMPLETE" || instance == "gone",
                "the volumes went before the instance: {seen:?}"
            );
        }
    }
    assert!(
        seen.iter()
            .any(|(v, i)| i == "DELETE_IN_PROGRESS" && !v.starts_with("DELETE")),
        "the instance stack is deleted while the volumes stay: {seen:?}"
    );
    for secret in SECRETS {
        assert!(!s.log().contains(secret), "a password in the log");
    }
}
