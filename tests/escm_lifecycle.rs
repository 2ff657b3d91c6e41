//! The ESCM service orchestrator through the OCCI API of the real binary,
//! run on the embedded engine (the default backend) and on the real local
//! Heat (Nova, Neutron, Cinder and the wait condition stubbed there), with
//! what the backend received read through the testkit's probe: the volume
//! stack, then the instance stack fed with the volume stack's outputs; the
//! app server's address and ESCM's URLs as attributes where the backend
//! gives servers addresses; passwords hidden everywhere, and the mail
//! password reaching the boot configuration as typed; updates (settings, a
//! growing volume, a refused shrink); a notification; dispose in reverse
//! order. The embedded run names the kind `escm` at `/escm/catalog`; the
//! Heat run drives the MCN `orchestrator` kind at `/orchestrator/default`
//! with ESCM as the default service.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;

use common::*;
use reqwest::Method;
use serde_json::Value;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0+xwYILmv6Zx+/+O5vSh7lGb3/KGp57cRQIsicsat7 escm@example";
/// The mail password as written in the header (quotes escaped) and as
/// typed.
const MAIL_PASSWORD: &str = "mail pw, with \\\"quotes\\\" and = signs";
const MAIL_PASSWORD_VALUE: &str = "mail pw, with \"quotes\" and = signs";
/// What of each password given (mail, Docker registry, proxy) must never
/// show.
const SECRETS: [&str; 3] = ["mail pw", "docker-Pw-9023", "proxy-Pw-3318"];
const TENANT: &str = "escm";
/// The embedded engine slow enough to watch dispose take the stacks one
/// after the other.
const ENGINE: &str = "{resource_delay: 40ms, signal_delay: 20ms}";

fn action_headers(term: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "text/occi".to_string()),
        (
            "Category",
            format!("{term}; scheme=\"{MCN}\"; class=\"action\""),
        ),
    ]
}

async fn act(c: &reqwest::Client, url: &str, term: &str, attributes: &str) -> Answer {
    let extra = action_headers(term);
    let mut h = mcn(TENANT);
    h.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
    if !attributes.is_empty() {
        h.push(("X-OCCI-Attribute", attributes));
    }
    call(c, Method::POST, &format!("{url}?action={term}"), &h, "").await
}

async fn update(c: &reqwest::Client, url: &str, attributes: &str) -> Answer {
    let mut h = mcn(TENANT);
    h.push(("Content-Type", "text/occi"));
    h.push(("X-OCCI-Attribute", attributes));
    call(c, Method::POST, url, &h, "").await
}

/// The volume and instance stacks as the backend reports them now, with
/// no password in them.
async fn escm_stacks(backend: &Backend, s: &Server, instance: &str) -> (StackView, StackView) {
    let list = backend.probe().held(s, TENANT, instance).await;
    let roles: Vec<&str> = list.iter().map(|s| s.role.as_str()).collect();
    assert_eq!(roles, ["volumes", "instance"], "{list:?}");
    let (_, doc) = admin_stacks(s, TENANT, instance).await;
    let seen = format!("{list:?}{doc}");
    for secret in SECRETS {
        assert!(!seen.contains(secret), "a password in {seen}");
    }
    (
        by_role(&list, "volumes").clone(),
        by_role(&list, "instance").clone(),
    )
}

/// No password in any OCCI rendering of the instance.
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

/// The instance stack takes the volume ids from the volume stack's
/// outputs, and they are the instance's attributes.
fn volumes_fed_to_instance(g: &Answer, volumes: &StackView, instance: &StackView) {
    for key in ["logs_volume_id", "data_volume_id"] {
        let out = volumes.output(key);
        let id = out
            .as_str()
            .unwrap_or_else(|| panic!("{key} output: {volumes}"));
        assert!(!id.is_empty());
        assert_eq!(instance.parameter(key), id, "{key}");
        assert_eq!(g.attribute(key).as_deref(), Some(id), "{key} attribute");
    }
    assert_ne!(
        volumes.output("logs_volume_id"),
        volumes.output("data_volume_id")
    );
}

/// The app server's address where the backend's servers have one (the
/// embedded engine's floating pool), and ESCM's URLs on it after
/// provision; the local Heat's stub server has none, hence no URLs.
fn app_server(backend: &Backend, g: &Answer, instance: &StackView, provisioned: bool) {
    let ip = g.attribute("ip_appserver");
    if !backend.is_embedded() {
        assert_eq!(ip, None, "a stub server has no address");
        assert_eq!(g.attribute("escm.url.portal"), None);
        return;
    }
    let ip = ip.expect("ip_appserver");
    assert!(is_address_in(&ip, "172.24."), "{ip}");
    assert_eq!(instance.output("ip_appserver"), Value::String(ip.clone()));
    if !provisioned {
        assert_eq!(g.attribute("escm.url.portal"), None, "not before provision");
        return;
    }
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
}

/// Deletes the instance while watching its stacks: the instance stack
/// goes first, the volume stack once it is gone. The `(volumes,
/// instance)` states seen, in order.
async fn dispose_watching(backend: &Backend, s: &Server, url: &str, instance: &str) {
    let c = client();
    let deleting = {
        let (c, url) = (c.clone(), url.to_string());
        tokio::spawn(async move {
            let a = call(&c, Method::DELETE, &url, &mcn(TENANT), "").await;
            (a.status.as_u16(), a.body)
        })
    };
    let mut seen: Vec<(String, String)> = Vec::new();
    let deadline = std::time::Instant::now() + backend.within();
    while let Some(list) = backend.probe().stacks(s, TENANT, instance).await {
        let state = |role: &str| {
            list.iter()
                .find(|s| s.role == role)
                .map_or(GONE.to_string(), |s| s.status.clone())
        };
        let pair = (state("volumes"), state("instance"));
        if seen.last() != Some(&pair) {
            seen.push(pair);
        }
        assert!(std::time::Instant::now() < deadline, "dispose: {seen:?}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (status, body) = deleting.await.unwrap();
    assert!(status == 200 || status == 202, "{status} {body}");
    wait_for(&c, url, &mcn(TENANT), backend.within(), |g| g.status == 404).await;
    let gone = |state: &str| state.starts_with("DELETE") || state == GONE;
    for (volumes, instance) in &seen {
        if gone(volumes) {
            assert!(
                instance == "DELETE_COMPLETE" || instance == GONE,
                "the volumes went before the instance: {seen:?}"
            );
        }
    }
    assert!(
        seen.iter()
            .any(|(v, i)| i == "DELETE_IN_PROGRESS" && !gone(v)),
        "the instance stack is deleted while the volumes stay: {seen:?}"
    );
}

async fn escm_lifecycle(backend: Backend) {
    let probe = backend.probe();
    let dir = tempfile::tempdir().unwrap();
    let mut args = lifecycle_args(&backend, dir.path(), ENGINE);
    let (instance, kind) = if backend.is_embedded() {
        (
            "/escm/catalog",
            format!("escm; scheme=\"{SM}\"; class=\"kind\""),
        )
    } else {
        args.extend(["--default-service".to_string(), "escm".to_string()]);
        (
            "/orchestrator/default",
            format!("orchestrator; scheme=\"{MCN}\"; class=\"kind\""),
        )
    };
    let s = start_with(args);
    let c = client();
    let url = s.url(instance);

    // create, with every password the guide documents
    let attributes = format!(
        "escm.openstack.keypair.publickey=\"{KEY}\", escm.mail.host=\"mail.example.com\", \
         escm.mail.from=\"escm@example.com\", escm.mail.user=\"mailer\", \
         escm.mail.password=\"{MAIL_PASSWORD}\", escm.docker.auth=true, escm.docker.user=\"puller\", \
         escm.docker.password=\"{}\", escm.proxy.use_proxy=true, \
         escm.proxy.http_host=\"proxy.example.com\", escm.proxy.https_host=\"proxy.example.com\", \
         escm.proxy.auth=true, escm.proxy.user=\"px\", escm.proxy.password=\"{}\", \
         escm.ssl.generate_certs=true, escm.openstack.volume_stack.data_volume_size=3",
        SECRETS[1], SECRETS[2]
    );
    let mut h = mcn(TENANT);
    h.push(("Content-Type", "text/occi"));
    h.push(("Category", &kind));
    h.push(("X-OCCI-Attribute", &attributes));
    let a = call(&c, Method::PUT, &url, &h, "").await;
    assert_eq!(a.status, 201, "{}", a.body);
    let g = call(&c, Method::GET, &url, &mcn(TENANT), "").await;
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("uninitialized")
    );
    assert_eq!(
        g.attribute("escm.mail.host").as_deref(),
        Some("mail.example.com")
    );
    assert_eq!(g.attribute("escm.mail.port").as_deref(), Some("25"));
    not_rendered(&c, &url).await;
    assert_eq!(probe.stacks(&s, TENANT, instance).await, Some(vec![]));

    // deploy: the volume stack, then the instance stack fed with its
    // outputs
    let a = act(&c, &url, "deploy", "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = backend.succeeded(&c, &url, &mcn(TENANT)).await;
    assert_eq!(g.attribute("occi.so.phase").as_deref(), Some("deployed"));
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("CREATE_COMPLETE")
    );
    assert_eq!(g.actions(), ["provision", "notify"]);
    let (volumes, inst) = escm_stacks(&backend, &s, instance).await;
    assert_eq!(volumes.status, "CREATE_COMPLETE");
    assert_eq!(inst.status, "CREATE_COMPLETE");
    assert!(volumes.name.ends_with("-volumes"), "{volumes}");
    assert!(inst.name.ends_with("-instance"), "{inst}");
    assert_eq!(
        g.attribute("occi.mcn.stack.id"),
        Some(format!("volumes:{},instance:{}", volumes.id, inst.id))
    );
    assert_eq!(
        g.attribute("escm.stack.volumes.id"),
        Some(volumes.id.clone())
    );
    assert_eq!(g.attribute("escm.stack.instance.id"), Some(inst.id.clone()));
    for role in ["volumes", "instance"] {
        assert_eq!(
            g.attribute(&format!("escm.stack.{role}.state")).as_deref(),
            Some("CREATE_COMPLETE"),
            "{role}"
        );
    }
    volumes_fed_to_instance(&g, &volumes, &inst);
    assert_eq!(volumes.parameter("logs_size"), "2");
    assert_eq!(volumes.parameter("data_size"), "3");
    assert_eq!(volumes.resources_of("OS::Cinder::Volume").len(), 2);
    assert_eq!(
        inst.resources_of("OS::Cinder::VolumeAttachment").len(),
        2,
        "{inst}"
    );
    assert_eq!(inst.servers(), 1);
    assert!(
        probe
            .settled_before_created(&s, TENANT, &volumes, &inst)
            .await,
        "the volume stack was complete before the instance stack was asked for"
    );
    // Hidden parameters for every password; the others as given.
    for p in ["mail_password", "docker_password", "proxy_password"] {
        assert_eq!(inst.parameter(p), "******", "{p}");
    }
    assert_eq!(inst.parameter("mail_user"), "mailer");
    assert_eq!(inst.parameter("mail_auth"), "true");
    assert_eq!(inst.parameter("docker_user"), "puller");
    assert_eq!(inst.parameter("proxy_user"), "px");
    assert_eq!(inst.parameter("public_key"), KEY);
    assert_eq!(inst.parameter("escm_provision"), "false");
    app_server(&backend, &g, &inst, false);
    not_rendered(&c, &url).await;

    // provision: ESCM's configuration; the mail password, given in a
    // header, reaches the instance's var.env as it was typed (where the
    // backend serves the boot configuration)
    let a = act(&c, &url, "provision", "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = backend.succeeded(&c, &url, &mcn(TENANT)).await;
    assert_eq!(g.attribute("occi.so.phase").as_deref(), Some("provisioned"));
    assert_eq!(
        g.attribute("escm.stack.instance.state").as_deref(),
        Some("UPDATE_COMPLETE")
    );
    let (volumes, inst) = escm_stacks(&backend, &s, instance).await;
    assert_eq!(inst.status, "UPDATE_COMPLETE");
    assert_eq!(volumes.status, "CREATE_COMPLETE", "volumes kept");
    assert_eq!(inst.parameter("escm_provision"), "true");
    volumes_fed_to_instance(&g, &volumes, &inst);
    app_server(&backend, &g, &inst, true);
    if let Some(config) = probe.software_config(&inst, "escm_config").await {
        assert!(
            config.contains(&format!("SMTP_PWD={MAIL_PASSWORD_VALUE}\n")),
            "the password reaches var.env"
        );
        assert!(config.contains("SMTP_USER=mailer\n"));
    }

    // notify (a runtime event): accepted, changes nothing
    let updates = probe.updates(&s, TENANT, &inst).await;
    let a = act(&c, &url, "notify", "alarm=\"cpu\"").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = backend.succeeded(&c, &url, &mcn(TENANT)).await;
    assert_eq!(
        g.attribute("escm.stack.instance.state").as_deref(),
        Some("UPDATE_COMPLETE")
    );
    assert_eq!(probe.updates(&s, TENANT, &inst).await, updates, "no update");

    // update: settings reach the instance stack; the URLs follow the FQDN
    let a = update(
        &c,
        &url,
        "escm.mail.host=\"smtp2.example.com\", escm.mail.port=587, escm.ssl.fqdn=\"escm.example.com\"",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = backend.succeeded(&c, &url, &mcn(TENANT)).await;
    let (volumes, inst) = escm_stacks(&backend, &s, instance).await;
    assert_eq!(inst.status, "UPDATE_COMPLETE");
    assert_eq!(inst.parameter("mail_host"), "smtp2.example.com");
    assert_eq!(inst.parameter("mail_port"), "587");
    assert_eq!(inst.parameter("ssl_fqdn"), "escm.example.com");
    assert_eq!(inst.parameter("mail_password"), "******");
    assert_eq!(inst.parameter("escm_provision"), "true");
    assert_eq!(volumes.status, "CREATE_COMPLETE");
    assert_eq!(
        g.attribute("occi.mcn.stack.id"),
        Some(format!("volumes:{},instance:{}", volumes.id, inst.id)),
        "same stacks"
    );
    assert_eq!(
        g.attribute("escm.url.portal").as_deref(),
        Some("https://escm.example.com:8081/oscm-portal"),
        "on the FQDN, with or without an address"
    );

    // update: the data volume grows; the instance follows the volume ids
    let a = update(&c, &url, "escm.openstack.volume_stack.data_volume_size=5").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = backend.succeeded(&c, &url, &mcn(TENANT)).await;
    let (volumes, inst) = escm_stacks(&backend, &s, instance).await;
    assert_eq!(volumes.status, "UPDATE_COMPLETE");
    assert_eq!(volumes.parameter("data_size"), "5");
    assert_eq!(volumes.parameter("logs_size"), "2");
    volumes_fed_to_instance(&g, &volumes, &inst);
    not_rendered(&c, &url).await;

    // update: a volume cannot shrink; the whole update is refused, the
    // operation fails and no stack changes
    let updates = (
        probe.updates(&s, TENANT, &volumes).await,
        probe.updates(&s, TENANT, &inst).await,
    );
    let a = update(
        &c,
        &url,
        "escm.openstack.volume_stack.data_volume_size=4, escm.mail.port=2525",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let g = backend.settled(&c, &url, &mcn(TENANT)).await;
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
    assert_eq!(
        g.attribute("escm.mail.port").as_deref(),
        Some("587"),
        "the whole update is refused"
    );
    let (volumes, inst) = escm_stacks(&backend, &s, instance).await;
    assert_eq!(volumes.parameter("data_size"), "5");
    assert_eq!(inst.parameter("mail_port"), "587");
    let now = (
        probe.updates(&s, TENANT, &volumes).await,
        probe.updates(&s, TENANT, &inst).await,
    );
    assert_eq!(now, updates, "no stack update");

    // dispose: the instance stack first, the volume stack once it is gone
    let ids = [volumes.id.clone(), inst.id.clone()];
    dispose_watching(&backend, &s, &url, instance).await;
    assert!(probe.gone(&s, TENANT, instance, &ids).await, "{ids:?}");
    for secret in SECRETS {
        assert!(!s.log().contains(secret), "a password in the log");
    }
}
on_both_backends!(escm_lifecycle);
