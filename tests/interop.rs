//! What real OCCI clients send: a GET rendering PUT back whole (action
//! links and reported attributes included), JSON bodies, lower-case
//! header names, `Category` without class, HEAD.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;

use common::*;
use reqwest::Method;

const ORCH: &str =
    "orchestrator; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"";

async fn initialised(c: &reqwest::Client, s: &Server) -> String {
    let mut h = mcn("i");
    h.push(("Category", ORCH));
    let a = call(c, Method::PUT, &s.url("/orchestrator/default"), &h, "").await;
    assert_eq!(a.status, 201, "{}", a.body);
    a.header("location")
}

#[tokio::test]
async fn a_get_rendering_put_back_whole_changes_nothing() {
    let s = start(&[]);
    let c = client();
    let url = initialised(&c, &s).await;

    // text/plain body, as the compliance client does.
    let got = call(&c, Method::GET, &url, &mcn("i"), "").await;
    assert!(got.body.contains("?action=deploy"), "{}", got.body);
    let mut h = mcn("i");
    h.push(("Content-Type", "text/plain"));
    let put = call(&c, Method::PUT, &url, &h, &got.body).await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.header("content-type"), "text/plain");
    assert_eq!(put.body, got.body);

    // text/occi headers, lower-case names (MCN clients).
    let mut ho = mcn("i");
    ho.push(("accept", "text/occi"));
    let got = call(&c, Method::GET, &url, &ho, "").await;
    let category = got.header("category");
    let link = got.header("link");
    let attrs = got.header("x-occi-attribute");
    let mut h = mcn("i");
    h.extend([
        ("content-type", "text/occi"),
        ("accept", "text/occi"),
        ("category", category.as_str()),
        ("link", link.as_str()),
        ("x-occi-attribute", attrs.as_str()),
    ]);
    let put = call(&c, Method::PUT, &url, &h, "").await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.header("x-occi-attribute"), attrs);

    // JSON document.
    let mut hj = mcn("i");
    hj.push(("Accept", "application/occi+json"));
    let got = call(&c, Method::GET, &url, &hj, "").await;
    hj.push(("Content-Type", "application/occi+json"));
    let put = call(&c, Method::PUT, &url, &hj, &got.body).await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body, got.body);

    // A changed value among the echoes is applied; a changed report is refused.
    let changed = got.body.replace("\"hello\"", "\"bonjour\"");
    let put = call(&c, Method::PUT, &url, &hj, &changed).await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert!(put.body.contains("\"bonjour\""), "{}", put.body);
    let forged = got
        .body
        .replace("\"uninitialized\"", "\"CREATE_COMPLETE\"")
        .replace("\"hello\"", "\"bonjour\"");
    let put = call(&c, Method::PUT, &url, &hj, &forged).await;
    assert_eq!(put.status, 403, "{}", put.body);
    assert!(put.body.contains("occi.mcn.stack.state"), "{}", put.body);
}

#[tokio::test]
async fn json_create_and_head() {
    let s = start(&[]);
    let c = client();
    let body = serde_json::json!({
        "kind": "http://schemas.mobile-cloud-networking.eu/occi/sm#sample",
        "attributes": {"sample.length": 24, "occi.core.title": "from JSON"}
    })
    .to_string();
    let mut h = mcn("j");
    h.push(("Content-Type", "application/occi+json"));
    h.push(("Accept", "application/occi+json"));
    let a = call(&c, Method::POST, &s.url("/sample/"), &h, &body).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let loc = a.header("location");
    let doc: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(doc["location"], loc);
    let got = call(&c, Method::GET, &loc, &h, "").await;
    let doc: serde_json::Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(doc["attributes"]["sample.length"], 24);
    assert_eq!(doc["title"], "from JSON");

    let head = c
        .head(&loc)
        .header("X-Tenant-Name", "j")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "text/plain");
    assert!(head.text().await.unwrap().is_empty());
}

/// How naive OCCI clients read a Category: split on every `;` (and often
/// on `,`) without honouring quotes. Every piece must still be a whole
/// `key="value"` (an even number of quotes), so no quoted value occi-so
/// renders itself may hold `;` or `,`.
fn naive_pieces(category: &str) -> Vec<&str> {
    category.split([';', ',']).map(str::trim).collect()
}

#[tokio::test]
async fn every_built_in_category_survives_a_naive_splitter() {
    let s = start(&[]);
    let c = client();
    for accept in ["text/plain", "text/occi"] {
        let mut h = mcn("i");
        h.push(("Accept", accept));
        let a = call(&c, Method::GET, &s.url("/-/"), &h, "").await;
        assert_eq!(a.status, 200, "{}", a.body);
        let categories: Vec<String> = if accept == "text/plain" {
            a.body
                .lines()
                .filter_map(|l| l.strip_prefix("Category: "))
                .map(str::to_string)
                .collect()
        } else {
            a.headers
                .get_all("category")
                .iter()
                .flat_map(|v| {
                    // one header, the categories comma-separated: split
                    // as a naive client does
                    v.to_str()
                        .unwrap()
                        .split(',')
                        .map(|c| c.trim().to_string())
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        assert!(
            categories.iter().any(|c| c.starts_with("ims;")),
            "{accept}: the IMS kind is listed: {categories:?}"
        );
        let mut cut = Vec::new();
        for cat in &categories {
            if naive_pieces(cat)
                .iter()
                .any(|piece| piece.matches('"').count() % 2 == 1)
            {
                cut.push(cat.clone());
            }
        }
        assert!(
            cut.is_empty(),
            "{accept}: a naive splitter cuts a quoted value of:\n{}",
            cut.join("\n")
        );
    }
}
