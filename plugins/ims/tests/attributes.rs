//! Every attribute of the `ims` kind: its definition (type, default,
//! bounds, secret), a good value accepted and a bad one refused by
//! `validate` with an error that names the attribute — before any stack.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

use occi_so_plugin_ims::ImsPlugin;
use occi_so_sdk::{AttributeType, Attributes, Operation, Orchestrator, PluginError};
use serde_json::{json, Value};

/// One plugin for every test (building it checks every topology).
fn plugin() -> &'static ImsPlugin {
    static PLUGIN: std::sync::OnceLock<ImsPlugin> = std::sync::OnceLock::new();
    PLUGIN.get_or_init(|| ImsPlugin::new().unwrap())
}

fn attrs(pairs: &[(&str, Value)]) -> Attributes {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

async fn check(pairs: &[(&str, Value)]) -> Result<(), PluginError> {
    let a = attrs(pairs);
    plugin().validate(&Operation::Design, &a).await?;
    plugin().validate(&Operation::update(a.clone()), &a).await
}

/// `value` is refused with an error naming `name` (and containing `words`).
async fn refused(pairs: &[(&str, Value)], name: &str, words: &str) {
    match check(pairs).await {
        Err(PluginError::InvalidAttribute { name: n, message }) => {
            assert_eq!(n, name, "{message}");
            assert!(
                message.contains(words),
                "{name}: {message:?} lacks {words:?}"
            );
        }
        other => panic!("{pairs:?}: expected an error naming {name}, got {other:?}"),
    }
}

async fn accepted(pairs: &[(&str, Value)]) {
    if let Err(e) = check(pairs).await {
        panic!("{pairs:?} refused: {e}");
    }
}

#[test]
fn the_kind_declares_every_attribute() {
    let p = plugin();
    let kind = &p.info().kind;
    assert_eq!(kind.term, "ims");
    assert_eq!(
        kind.scheme,
        "http://schemas.mobile-cloud-networking.eu/occi/sm#"
    );
    assert_eq!(kind.location(), "/ims/");
    let a = |n: &str| kind.attribute(n).unwrap_or_else(|| panic!("{n} missing"));
    let t = a("mcn.topology.type");
    assert_eq!(
        t.ty,
        AttributeType::Enum(vec!["clearwater".into(), "openims".into()])
    );
    assert_eq!(t.default, Some(json!("openims")));
    assert!(!t.mutable);
    for e in [
        "mcn.endpoint.maas",
        "mcn.endpoint.api",
        "mcn.endpoint.forwarder",
    ] {
        assert!(a(e).mutable, "{e} is mutable, as in the IMSSO's manifest");
        assert_eq!(a(e).default, Some(json!("")));
    }
    for s in ["ims.dns.tsig_key", "ims.clearwater.signup_key"] {
        assert!(a(s).secret, "{s} is a secret");
    }
    for n in [
        "ims.image",
        "ims.flavor",
        "ims.key_name",
        "ims.network.private",
        "ims.network.private_subnet",
        "ims.network.public",
        "ims.dns.zone",
    ] {
        assert_eq!(a(n).ty, AttributeType::String);
        assert!(a(n).default.is_none(), "{n}: the topology's value applies");
    }
    let sizes: Vec<(&str, f64, f64)> = vec![
        ("cscfs", 1.0, 5.0),
        ("db", 1.0, 1.0),
        ("hss", 1.0, 3.0),
        ("slf", 1.0, 1.0),
        ("dns", 1.0, 1.0),
        ("bono", 1.0, 5.0),
        ("sprout", 1.0, 5.0),
        ("homer", 1.0, 3.0),
        ("homestead", 1.0, 3.0),
        ("ellis", 1.0, 1.0),
        ("ralf", 0.0, 3.0),
    ];
    for (si, min, max) in sizes {
        let s = a(&format!("ims.size.{si}"));
        assert_eq!(s.ty, AttributeType::Integer);
        assert_eq!((s.min, s.max), (Some(min), Some(max)), "{si}");
        assert!(s.mutable);
    }
    assert!(
        kind.attributes.iter().all(|a| !a.required),
        "an IMS starts from defaults alone"
    );
}

#[tokio::test]
async fn no_attributes_at_all_is_the_openims_default() {
    accepted(&[]).await;
}

#[tokio::test]
async fn topology_type() {
    accepted(&[("mcn.topology.type", json!("clearwater"))]).await;
    accepted(&[("mcn.topology.type", json!("openims"))]).await;
    refused(
        &[("mcn.topology.type", json!("bern-no-dns"))],
        "mcn.topology.type",
        "clearwater, openims",
    )
    .await;
}

/// `name` accepts each of `good` and refuses each of `bad` with an error
/// naming it ("does not match" its pattern).
async fn pattern(name: &str, good: &[&str], bad: &[&str]) {
    for v in good {
        accepted(&[(name, json!(v))]).await;
    }
    for v in bad {
        refused(&[(name, json!(v))], name, "does not match").await;
    }
}

#[tokio::test]
async fn maas_endpoint() {
    let good = ["160.85.4.50", "zabbix.example.org:10051", ""];
    pattern("mcn.endpoint.maas", &good, &["160.85.4.50; reboot"]).await;
}

#[tokio::test]
async fn dnsaas_api_endpoint() {
    let good = ["http://160.85.4.51:8080/dnsaas", "dnsaas.example.org"];
    pattern("mcn.endpoint.api", &good, &["http://x/$(reboot)"]).await;
}

#[tokio::test]
async fn forwarder_endpoint() {
    let bad = ["8.8.8.256", "dns.example.org"];
    pattern("mcn.endpoint.forwarder", &["8.8.8.8"], &bad).await;
}

#[tokio::test]
async fn image_flavor_and_key() {
    let bad = [" leading-space", "two\nlines"];
    pattern("ims.image", &["Ubuntu 14.04 LTS"], &bad).await;
    pattern("ims.flavor", &["m1.large"], &[&"x".repeat(256)]).await;
    pattern("ims.key_name", &["operator-key"], &["key$name"]).await;
}

#[tokio::test]
async fn networks() {
    let private = "367d1aba-c539-46e1-8047-65c28283d9c9";
    let subnet = "fe3ca710-133d-496c-af44-83028bbc4c5d";
    accepted(&[
        ("ims.network.private", json!(private)),
        ("ims.network.private_subnet", json!(subnet)),
        ("ims.network.public", json!("ext-net")),
    ])
    .await;
    pattern("ims.network.private", &[private], &["bad\u{7}net"]).await;
    pattern("ims.network.private_subnet", &[subnet], &["\tsubnet"]).await;
    pattern("ims.network.public", &["ext-net"], &[" public"]).await;
}

#[tokio::test]
async fn dns_zone() {
    let bad = ["localhost", "bad_label.example.com"];
    pattern("ims.dns.zone", &["ims.example.net"], &bad).await;
}

#[tokio::test]
async fn secrets_are_checked_without_showing_them() {
    let cw = ("mcn.topology.type", json!("clearwater"));
    accepted(&[
        cw.clone(),
        (
            "ims.dns.tsig_key",
            json!("c2VjcmV0LXRzaWcta2V5LWZvci10ZXN0cw=="),
        ),
    ])
    .await;
    accepted(&[
        cw.clone(),
        ("ims.clearwater.signup_key", json!("s3cr3t-signup")),
    ])
    .await;
    for (name, bad) in [
        ("ims.dns.tsig_key", "not base64 at all!"),
        ("ims.clearwater.signup_key", "has spaces in it"),
    ] {
        match check(&[cw.clone(), (name, json!(bad))]).await {
            Err(PluginError::InvalidAttribute { name: n, message }) => {
                assert_eq!(n, name);
                assert!(!message.contains(bad), "the secret leaked: {message}");
            }
            other => panic!("{other:?}"),
        }
    }
    // OpenIMS takes neither: a clear refusal, not a silently ignored secret.
    refused(
        &[("ims.clearwater.signup_key", json!("s3cr3t-signup"))],
        "ims.clearwater.signup_key",
        "topology openims does not use it",
    )
    .await;
}

#[tokio::test]
async fn sizes_within_the_topologys_bounds() {
    accepted(&[("ims.size.cscfs", json!(3))]).await;
    accepted(&[("ims.size.hss", json!("2"))]).await;
    accepted(&[
        ("mcn.topology.type", json!("clearwater")),
        ("ims.size.ralf", json!(0)),
        ("ims.size.sprout", json!(5)),
    ])
    .await;
    let clearwater = ("mcn.topology.type", json!("clearwater"));
    for (given, name, words) in [
        (
            vec![("ims.size.cscfs", json!(6))],
            "ims.size.cscfs",
            "min 1, max 5",
        ),
        (
            vec![("ims.size.cscfs", json!(0))],
            "ims.size.cscfs",
            "min 1, max 5",
        ),
        (
            vec![("ims.size.hss", json!(4))],
            "ims.size.hss",
            "in topology openims: min 1, max 3",
        ),
        (
            vec![("ims.size.db", json!(2))],
            "ims.size.db",
            "min 1, max 1",
        ),
        (
            vec![("ims.size.cscfs", json!(-1))],
            "ims.size.cscfs",
            "outside the bounds",
        ),
        (
            vec![("ims.size.cscfs", json!("two"))],
            "ims.size.cscfs",
            "whole number",
        ),
        (
            vec![("ims.size.bono", json!(1))],
            "ims.size.bono",
            "topology openims has no service instance \"bono\"",
        ),
        (
            vec![clearwater, ("ims.size.cscfs", json!(1))],
            "ims.size.cscfs",
            "topology clearwater has no service instance",
        ),
    ] {
        refused(&given, name, words).await;
    }
}

#[tokio::test]
async fn notify_names_a_scaling_policy() {
    let p = plugin();
    let ok = Operation::notify(attrs(&[("ims.policy", json!("hss.msg_scaleup"))]));
    p.validate(&ok, &Attributes::new()).await.unwrap();
    let none = Operation::notify(Attributes::new());
    match p.validate(&none, &Attributes::new()).await {
        Err(PluginError::InvalidAttribute { name, .. }) => assert_eq!(name, "ims.policy"),
        other => panic!("{other:?}"),
    }
    let bad = Operation::notify(attrs(&[("ims.policy", json!("cscfs.nope"))]));
    match p.validate(&bad, &Attributes::new()).await {
        Err(PluginError::InvalidAttribute { name, message }) => {
            assert_eq!(name, "ims.policy");
            assert!(
                message.contains("hss.msg_scaleup, hss.msg_scaledown"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}
