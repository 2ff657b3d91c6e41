//! The ESCM plugin through the OCCI API of the real binary, without stacks:
//! its kind in the query interface, every documented setting with a good
//! and a bad value (a 400 naming the attribute, nothing created), the
//! mandatory settings, the rules between settings, and passwords that are
//! accepted but never rendered back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const KIND: &str = "http://schemas.mobile-cloud-networking.eu/occi/sm#escm";
const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0+xwYILmv6Zx+/+O5vSh7lGb3/KGp57cRQIsicsat7 escm@example";

fn minimal() -> serde_json::Map<String, Value> {
    json!({
        "escm.openstack.keypair.publickey": KEY,
        "escm.mail.host": "mail.example.com",
        "escm.mail.from": "escm@example.com",
        "escm.mail.auth": false,
        "escm.ssl.generate_certs": true,
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

fn json_headers() -> Vec<(&'static str, &'static str)> {
    let mut h = mcn("escm-api");
    h.push(("Content-Type", "application/occi+json"));
    h.push(("Accept", "application/occi+json"));
    h
}

async fn create(
    c: &reqwest::Client,
    s: &Server,
    path: &str,
    attributes: &serde_json::Map<String, Value>,
) -> Answer {
    let body = json!({"kind": KIND, "attributes": attributes}).to_string();
    call(c, Method::PUT, &s.url(path), &json_headers(), &body).await
}

/// (attribute, extra attributes, good value, bad value)
fn table() -> Vec<(&'static str, Value, Value, Value)> {
    let none = json!({});
    let mail_auth =
        json!({"escm.mail.auth": true, "escm.mail.user": "u", "escm.mail.password": "p"});
    let docker_auth =
        json!({"escm.docker.auth": true, "escm.docker.user": "u", "escm.docker.password": "p"});
    let proxy = json!({"escm.proxy.use_proxy": true, "escm.proxy.http_host": "proxy", "escm.proxy.https_host": "proxy",
                       "escm.proxy.user": "u", "escm.proxy.password": "p"});
    vec![
        (
            "escm.openstack.image",
            none.clone(),
            json!("sles12-sp3"),
            json!(""),
        ),
        (
            "escm.openstack.flavor.name",
            none.clone(),
            json!("m1.large"),
            json!(""),
        ),
        (
            "escm.openstack.flavor.create",
            none.clone(),
            json!(true),
            json!("yes"),
        ),
        (
            "escm.openstack.flavor.ram",
            none.clone(),
            json!(4096),
            json!(100),
        ),
        (
            "escm.openstack.flavor.vcpus",
            none.clone(),
            json!(8),
            json!(0),
        ),
        (
            "escm.openstack.flavor.disk",
            none.clone(),
            json!(40),
            json!(-1),
        ),
        (
            "escm.openstack.keypair.name",
            none.clone(),
            json!("ops"),
            json!("o/p"),
        ),
        (
            "escm.openstack.keypair.publickey",
            none.clone(),
            json!(KEY),
            json!("ssh-rsa AAAAnot-really"),
        ),
        (
            "escm.openstack.floating_network",
            none.clone(),
            json!("public"),
            json!(""),
        ),
        (
            "escm.openstack.volume_stack.logs_volume_size",
            none.clone(),
            json!(5),
            json!(0),
        ),
        (
            "escm.openstack.volume_stack.data_volume_size",
            none.clone(),
            json!(5),
            json!(0),
        ),
        (
            "escm.openstack.wait_condition_timeout",
            none.clone(),
            json!(900),
            json!(5),
        ),
        ("escm.debug", none.clone(), json!(true), json!("debug")),
        (
            "escm.mail.host",
            none.clone(),
            json!("smtp.example.com"),
            json!("smtp example.com"),
        ),
        ("escm.mail.port", none.clone(), json!(465), json!(0)),
        ("escm.mail.tls", none.clone(), json!(true), json!("tls")),
        (
            "escm.mail.from",
            none.clone(),
            json!("ops@example.com"),
            json!("ops"),
        ),
        (
            "escm.mail.auth",
            mail_auth.clone(),
            json!(true),
            json!("auth"),
        ),
        (
            "escm.mail.user",
            mail_auth.clone(),
            json!("mailer"),
            json!("mail\u{1}er"),
        ),
        (
            "escm.mail.password",
            mail_auth.clone(),
            json!("pw"),
            json!("p\u{1}w"),
        ),
        (
            "escm.docker.dockerhub",
            json!({"escm.docker.host": "registry"}),
            json!(false),
            json!("hub"),
        ),
        (
            "escm.docker.host",
            json!({"escm.docker.dockerhub": false}),
            json!("registry.example.com"),
            json!("registry/x"),
        ),
        ("escm.docker.port", none.clone(), json!(5000), json!(65536)),
        (
            "escm.docker.organization",
            none.clone(),
            json!("servicecatalog"),
            json!("Service Catalog"),
        ),
        (
            "escm.docker.tag",
            none.clone(),
            json!("v17.5.0"),
            json!(".tag"),
        ),
        (
            "escm.docker.auth",
            docker_auth.clone(),
            json!(true),
            json!("auth"),
        ),
        (
            "escm.docker.user",
            docker_auth.clone(),
            json!("puller"),
            json!("pul:ler"),
        ),
        (
            "escm.docker.password",
            docker_auth.clone(),
            json!("pw"),
            json!("p\u{1}w"),
        ),
        (
            "escm.proxy.use_proxy",
            proxy.clone(),
            json!(true),
            json!("proxy"),
        ),
        (
            "escm.proxy.http_host",
            proxy.clone(),
            json!("proxy.example.com"),
            json!("proxy example"),
        ),
        ("escm.proxy.http_port", none.clone(), json!(8080), json!(0)),
        (
            "escm.proxy.https_host",
            proxy.clone(),
            json!("proxy.example.com"),
            json!("proxy example"),
        ),
        (
            "escm.proxy.https_port",
            none.clone(),
            json!(8443),
            json!(70000),
        ),
        (
            "escm.proxy.no_proxy",
            none.clone(),
            json!("localhost,127.0.0.1,.example.com"),
            json!("a b"),
        ),
        ("escm.proxy.auth", proxy.clone(), json!(true), json!("auth")),
        (
            "escm.proxy.user",
            json!({"escm.proxy.use_proxy": true, "escm.proxy.http_host": "p", "escm.proxy.https_host": "p", "escm.proxy.auth": true, "escm.proxy.password": "p"}),
            json!("surfer"),
            json!(""),
        ),
        (
            "escm.proxy.password",
            json!({"escm.proxy.use_proxy": true, "escm.proxy.http_host": "p", "escm.proxy.https_host": "p", "escm.proxy.auth": true, "escm.proxy.user": "u"}),
            json!("pw"),
            json!(""),
        ),
        (
            "escm.ssl.protocol",
            none.clone(),
            json!("https"),
            json!("http"),
        ),
        // the barclamp's default files do not exist on this host
        (
            "escm.ssl.generate_certs",
            none.clone(),
            json!(true),
            json!(false),
        ),
        (
            "escm.ssl.fqdn",
            none.clone(),
            json!("escm.example.com"),
            json!("escm example"),
        ),
        (
            "escm.ssl.certfile",
            json!({"escm.ssl.generate_certs": false}),
            json!(null),
            json!("/etc/passwd"),
        ),
        (
            "escm.ssl.keyfile",
            json!({"escm.ssl.generate_certs": false}),
            json!(null),
            json!("/etc/shadow"),
        ),
        (
            "escm.ssl.ca_certs",
            json!({"escm.ssl.generate_certs": false}),
            json!(null),
            json!("relative/ca.pem"),
        ),
    ]
}

#[tokio::test]
async fn the_escm_kind_is_in_the_query_interface() {
    let s = start(&[]);
    let c = client();
    let mut h = mcn("escm-api");
    h.push(("Accept", "application/occi+json"));
    let a = call(&c, Method::GET, &s.url("/-/"), &h, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let doc: Value = serde_json::from_str(&a.body).unwrap();
    let kind = doc["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["term"] == "escm")
        .unwrap_or_else(|| panic!("no escm kind: {}", a.body));
    assert_eq!(
        kind["scheme"],
        "http://schemas.mobile-cloud-networking.eu/occi/sm#"
    );
    assert_eq!(kind["location"], "/escm/");
    let attrs = &kind["attributes"];
    assert_eq!(attrs["escm.mail.port"]["default"], 25);
    assert_eq!(attrs["escm.openstack.image"]["default"], "sles12-sp3");
    assert_eq!(
        attrs["escm.proxy.no_proxy"]["default"],
        "localhost,127.0.0.1"
    );
    assert_eq!(attrs["escm.openstack.keypair.publickey"]["required"], true);
    assert_eq!(attrs["escm.mail.from"]["required"], true);
    for name in [
        "escm.mail.password",
        "escm.docker.password",
        "escm.proxy.password",
        "ip_appserver",
        "escm.url.portal",
    ] {
        assert!(attrs.get(name).is_some(), "{name} missing");
    }
}

#[tokio::test]
async fn every_documented_setting_has_a_good_and_a_bad_value_through_the_api() {
    let s = start(&[]);
    let c = client();
    for (i, (name, extra, good, bad)) in table().into_iter().enumerate() {
        let mut attributes = minimal();
        attributes.extend(extra.as_object().cloned().unwrap_or_default());
        if !good.is_null() {
            let mut a = attributes.clone();
            a.insert(name.into(), good.clone());
            let path = format!("/escm/good-{i}");
            let r = create(&c, &s, &path, &a).await;
            assert_eq!(r.status, 201, "{name} = {good}: {}", r.body);
            let d = call(&c, Method::DELETE, &s.url(&path), &mcn("escm-api"), "").await;
            assert!(d.status.is_success(), "{}", d.body);
        }
        let mut a = attributes;
        a.insert(name.into(), bad.clone());
        let path = format!("/escm/bad-{i}");
        let r = create(&c, &s, &path, &a).await;
        assert_eq!(r.status, 400, "{name} = {bad}: {}", r.body);
        assert!(
            r.body.contains(name),
            "{name} = {bad}: the message must name it: {}",
            r.body
        );
        let g = call(&c, Method::GET, &s.url(&path), &mcn("escm-api"), "").await;
        assert_eq!(g.status, 404, "nothing was created for {name} = {bad}");
    }
}

#[tokio::test]
async fn mandatory_settings_and_rules_are_400s_naming_the_attribute() {
    let s = start(&[]);
    let c = client();
    for name in [
        "escm.openstack.keypair.publickey",
        "escm.mail.host",
        "escm.mail.from",
    ] {
        let mut a = minimal();
        a.remove(name);
        let r = create(&c, &s, "/escm/x", &a).await;
        assert_eq!(r.status, 400, "{name}: {}", r.body);
        assert!(r.body.contains(name), "{}", r.body);
    }
    let cases = [
        (json!({"escm.mail.auth": true}), "escm.mail.user"),
        (json!({"escm.docker.dockerhub": false}), "escm.docker.host"),
        (
            json!({"escm.proxy.use_proxy": true}),
            "escm.proxy.http_host",
        ),
        (
            json!({"escm.docker.auth": true, "escm.docker.user": "u"}),
            "escm.docker.password",
        ),
    ];
    for (extra, named) in cases {
        let mut a = minimal();
        a.extend(extra.as_object().cloned().unwrap_or_default());
        let r = create(&c, &s, "/escm/x", &a).await;
        assert_eq!(r.status, 400, "{extra}: {}", r.body);
        assert!(r.body.contains(named), "{extra}: {}", r.body);
        assert!(r.body.contains("is required when"), "{}", r.body);
    }
    // An update that breaks a rule is refused and changes nothing.
    let r = create(&c, &s, "/escm/y", &minimal()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mut h = mcn("escm-api");
    h.push(("Content-Type", "text/occi"));
    h.push(("X-OCCI-Attribute", "escm.mail.auth=true"));
    let u = call(&c, Method::POST, &s.url("/escm/y"), &h, "").await;
    assert_eq!(u.status, 400, "{}", u.body);
    assert!(u.body.contains("escm.mail.user"), "{}", u.body);
    let g = call(&c, Method::GET, &s.url("/escm/y"), &json_headers(), "").await;
    let doc: Value = serde_json::from_str(&g.body).unwrap();
    assert_eq!(doc["attributes"]["escm.mail.auth"], false);
}

#[tokio::test]
async fn passwords_are_accepted_and_never_rendered() {
    let s = start(&[]);
    let c = client();
    let mut a = minimal();
    let secrets = ["mail-S3cret!", "docker-S3cret!", "proxy-S3cret!"];
    a.extend(
        json!({
            "escm.mail.auth": true, "escm.mail.user": "mailer", "escm.mail.password": secrets[0],
            "escm.docker.auth": true, "escm.docker.user": "puller", "escm.docker.password": secrets[1],
            "escm.proxy.use_proxy": true, "escm.proxy.http_host": "proxy.example.com",
            "escm.proxy.https_host": "proxy.example.com", "escm.proxy.auth": true,
            "escm.proxy.user": "surfer", "escm.proxy.password": secrets[2],
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    );
    let r = create(&c, &s, "/escm/secrets", &a).await;
    assert_eq!(r.status, 201, "{}", r.body);
    for accept in ["text/occi", "text/plain", "application/occi+json"] {
        let mut h = mcn("escm-api");
        h.push(("Accept", accept));
        let g = call(&c, Method::GET, &s.url("/escm/secrets"), &h, "").await;
        assert_eq!(g.status, 200);
        let all = format!("{:?}{}", g.headers, g.body);
        assert!(all.contains("mailer"), "{all}");
        for secret in secrets {
            assert!(!all.contains(secret), "{accept} shows a password: {all}");
        }
        assert!(!all.contains("escm.mail.password"), "{accept}: {all}");
    }
    let coll = call(&c, Method::GET, &s.url("/escm/"), &json_headers(), "").await;
    for secret in secrets {
        assert!(!coll.body.contains(secret));
    }
    // An update of a password is accepted like any other change.
    let mut h = mcn("escm-api");
    h.push(("Content-Type", "text/occi"));
    h.push(("X-OCCI-Attribute", "escm.mail.password=\"new-S3cret!\""));
    let u = call(&c, Method::POST, &s.url("/escm/secrets"), &h, "").await;
    assert_eq!(u.status, 200, "{}", u.body);
    assert!(!u.body.contains("new-S3cret!") && !format!("{:?}", u.headers).contains("new-S3cret!"));
    assert!(!s.log().contains("S3cret!"), "a password is in the log");
}
