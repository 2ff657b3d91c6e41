//! The `conpaas` kind through the OCCI API of the real binary: the query
//! interface shows it, every attribute is accepted with a good value and
//! refused with a 400 naming it with a bad one, and what the service sets
//! cannot be set by a caller. No stack is needed for any of it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;
mod conpaas_support;

use common::*;
use conpaas_support::*;
use reqwest::Method;

const KIND: &str =
    "conpaas; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/sm#\"; class=\"kind\"";

async fn create(s: &Server, attrs: &str) -> Answer {
    let mut h = mcn("attrs");
    h.push(("Category", KIND));
    if !attrs.is_empty() {
        h.push(("X-OCCI-Attribute", attrs));
    }
    call(&client(), Method::POST, &s.url("/conpaas/"), &h, "").await
}

#[tokio::test]
async fn the_query_interface_shows_the_conpaas_kind_and_actions() {
    let s = start(&[]);
    let mut h = mcn("q");
    h.push(("Accept", "text/plain"));
    let a = call(&client(), Method::GET, &s.url("/-/"), &h, "").await;
    assert_eq!(a.status, 200);
    let kind = a
        .body
        .lines()
        .find(|l| l.contains("Category: conpaas;"))
        .unwrap_or_else(|| panic!("no conpaas kind in:\n{}", a.body));
    assert!(
        kind.contains("location=\"/conpaas/\"") || kind.contains("/conpaas/"),
        "{kind}"
    );
    for attr in [
        "conpaas.application.name",
        "conpaas.services",
        "conpaas.cloud{immutable}",
        "conpaas.image",
        "conpaas.flavor",
        "conpaas.nodes{immutable}",
    ] {
        assert!(kind.contains(attr), "{attr} in {kind}");
    }
    for action in ["add_nodes", "remove_nodes", "start", "stop"] {
        assert!(
            kind.contains(&format!("{ACTIONS}{action}")),
            "{action} in {kind}"
        );
    }
}

#[tokio::test]
async fn every_attribute_good_and_bad_through_the_api() {
    let s = start(&[]);
    let long = format!("\"{}\"", "k".repeat(256));
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "conpaas.application.name",
            r#""MediaWiki""#,
            r#""""#,
            "must not be empty",
        ),
        (
            "conpaas.services",
            r#""{\"wiki\": {\"type\": \"php\", \"nodes\": {\"proxy\": 1, \"web\": 2, \"backend\": 1}}}""#,
            r#""{\"wiki\": {\"type\": \"php\", \"nodes\": {\"web\": 2}}}""#,
            "needs at least one node doing 'proxy'",
        ),
        (
            "conpaas.services",
            r#""{}""#,
            r#""not json""#,
            "conpaas.services",
        ),
        (
            "conpaas.cloud",
            r#""default""#,
            r#""azure""#,
            "unknown cloud 'azure'",
        ),
        ("conpaas.cloud", r#""default""#, r#""-x""#, "pattern"),
        (
            "conpaas.clouds",
            r#""{}""#,
            r#""{\"default\": {}}""#,
            "top-level",
        ),
        (
            "conpaas.image",
            r#""conpaas-2.1.0""#,
            r#""""#,
            "must not be empty",
        ),
        (
            "conpaas.flavor",
            r#""m1.micro""#,
            r#""""#,
            "must not be empty",
        ),
        (
            "conpaas.key_name",
            r#""test-key""#,
            &long,
            "longer than 255 characters",
        ),
        (
            "conpaas.security_group",
            r#""default""#,
            &long,
            "longer than 255 characters",
        ),
        (
            "conpaas.network",
            r#""conpaas-net""#,
            r#""""#,
            "must not be empty",
        ),
        (
            "conpaas.floating_network",
            r#""ext-net""#,
            r#""""#,
            "must not be empty",
        ),
        (
            "conpaas.auto_assign_floating_ip",
            r#""true""#,
            r#""maybe""#,
            "expected true or false",
        ),
        (
            "conpaas.director_url",
            r#""https://director.example.org:5555""#,
            r#""ftp://x""#,
            "not an http:// or https:// URL",
        ),
        ("conpaas.nodes", "", r#""{}""#, "immutable"),
        ("conpaas.application.state", "", r#""RUNNING""#, "immutable"),
        ("conpaas.manager.ip", "", r#""10.0.0.1""#, "immutable"),
    ];
    for (name, good, bad, words) in cases {
        if !good.is_empty() {
            let a = create(&s, &format!("{name}={good}")).await;
            assert_eq!(a.status, 201, "{name}={good}: {}", a.body);
            let url = a.header("location");
            assert_eq!(
                call(&client(), Method::DELETE, &url, &mcn("attrs"), "")
                    .await
                    .status,
                200
            );
        }
        let a = create(&s, &format!("{name}={bad}")).await;
        let expected = if *words == "immutable" { 403 } else { 400 };
        assert_eq!(a.status, expected, "{name}={bad}: {}", a.body);
        assert!(a.body.contains(name), "{name}={bad}: {}", a.body);
        assert!(a.body.contains(words), "{name}={bad}: {}", a.body);
    }
    let list = call(
        &client(),
        Method::GET,
        &s.url("/conpaas/"),
        &mcn("attrs"),
        "",
    )
    .await;
    assert_eq!(list.body, "", "refused creates leave nothing");
}

#[tokio::test]
async fn an_update_before_deploy_is_checked_and_the_cloud_is_fixed() {
    let s = start(&[]);
    let a = create(&s, r#"conpaas.services="{\"db\": {\"type\": \"mysql\"}}""#).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let url = a.header("location");
    let h = mcn("attrs");
    let update = |attr: &'static str| {
        let mut h = h.clone();
        h.push(("X-OCCI-Attribute", attr));
        h
    };
    let a = call(&client(), Method::POST, &url, &update(r#"conpaas.services="{\"db\": {\"type\": \"mysql\", \"nodes\": {\"mysql\": 3, \"glb\": 1}}}""#), "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let (_, doc) = get_json(&url, &h).await;
    assert_eq!(
        doc["attributes"]["conpaas.services"]["db"]["nodes"]["mysql"], 3,
        "{doc}"
    );
    let a = call(
        &client(),
        Method::POST,
        &url,
        &update(r#"conpaas.services="{\"db\": {\"type\": \"mysql\", \"nodes\": {\"glb\": 1}}}""#),
        "",
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.body.contains("at least one node doing 'mysql'"),
        "{}",
        a.body
    );
    let a = call(
        &client(),
        Method::POST,
        &url,
        &update(r#"conpaas.cloud="elsewhere""#),
        "",
    )
    .await;
    assert_eq!(a.status, 403, "an immutable attribute: {}", a.body);
    assert!(
        a.body.contains("conpaas.cloud") && a.body.contains("immutable"),
        "{}",
        a.body
    );
    let a = call(
        &client(),
        Method::POST,
        &format!("{url}?action=add_nodes"),
        &update(r#"conpaas.nodes="{\"mysql\": 1}""#),
        "",
    )
    .await;
    assert_eq!(a.status, 400, "not deployed yet: {}", a.body);
}
