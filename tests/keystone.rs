//! `--auth keystone` against a REAL Keystone (`scripts/keystone-local.sh`;
//! found by the testkit's `require_keystone`: its v3 URL in
//! `OCCI_SO_TEST_KEYSTONE_URL`, admin password in
//! `OCCI_SO_TEST_KEYSTONE_PASSWORD`, default `occi-so-admin`). Skipped,
//! with the reason printed, when no Keystone is configured (a failure with
//! `OCCI_SO_REQUIRE_KEYSTONE=1`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

/// A token of user admin scoped to project admin.
async fn admin_token(url: &str, password: &str) -> String {
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
    let r = client()
        .post(format!("{url}/auth/tokens"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "Keystone gives a token");
    r.headers()["X-Subject-Token"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn keystone_tokens_are_validated_and_scoped_to_the_tenant() {
    let Some(url) = require_keystone() else {
        return;
    };
    let password = keystone_password();
    let token = admin_token(&url, &password).await;
    let s = start(&["--auth", "keystone", "--keystone-url", &url]);
    let c = client();
    let base = url.trim_end_matches("/v3");

    let a = call(
        &c,
        Method::GET,
        &s.url("/-/"),
        &[("X-Tenant-Name", "admin")],
        "",
    )
    .await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.header("www-authenticate"),
        format!("Keystone uri=\"{base}\"")
    );

    let ok = [("X-Auth-Token", token.as_str()), ("X-Tenant-Name", "admin")];
    let mut h = ok.to_vec();
    h.push((
        "Category",
        "orchestrator; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"",
    ));
    assert_eq!(
        call(&c, Method::PUT, &s.url("/orchestrator/default"), &h, "")
            .await
            .status,
        201
    );
    assert_eq!(
        call(&c, Method::GET, &s.url("/orchestrator/default"), &ok, "")
            .await
            .status,
        200
    );

    // The token is not valid for another tenant.
    let other = [("X-Auth-Token", token.as_str()), ("X-Tenant-Name", "demo")];
    let a = call(&c, Method::GET, &s.url("/orchestrator/default"), &other, "").await;
    assert_eq!(a.status, 403);
    assert!(a.body.contains("scoped to project 'admin'"), "{}", a.body);

    // An invented token is refused.
    let bad = [
        ("X-Auth-Token", "gAAAAABinvented"),
        ("X-Tenant-Name", "admin"),
    ];
    assert_eq!(
        call(&c, Method::GET, &s.url("/-/"), &bad, "").await.status,
        401
    );

    // Validations are cached: many requests, one Keystone validation.
    for _ in 0..20 {
        assert_eq!(
            call(&c, Method::GET, &s.url("/-/"), &ok, "").await.status,
            200
        );
    }
    let validations = s.log().matches("keystone token validation").count();
    assert!(validations <= 3, "{validations} validations:\n{}", s.log());
    assert!(!s.log().contains(&token), "the token is never logged");
}
