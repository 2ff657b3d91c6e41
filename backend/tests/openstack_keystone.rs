//! Keystone v3 auth against a REAL Keystone (`scripts/keystone-local.sh`,
//! URL in `OCCI_SO_TEST_KEYSTONE_URL`, admin password in
//! `OCCI_SO_TEST_KEYSTONE_PASSWORD`, default `occi-so-admin`), whose catalog
//! lists the real local Heat as `orchestration` (start it with
//! `KEYSTONE_HEAT_ENDPOINT=http://127.0.0.1:PORT/v1/%(tenant_id)s`). The
//! Heat is the noauth one: it ignores the token, so these tests prove the
//! Keystone side (token, scope, catalog, caching), not Heat's token checks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod conformance;

use std::sync::Arc;

use conformance::{spec, Harness, BASIC};
use occi_so_backend::{AuthConfig, OpenStackBackend, OpenStackConfig};
use occi_so_sdk::{BackendError, Credentials, Secret, StackBackend};
use serde_json::{json, Value};

struct Keystone {
    url: String,
    password: String,
}

fn keystone() -> Option<Keystone> {
    occi_so_testkit::require_heat()?;
    let url = occi_so_testkit::require_keystone()?;
    let password = occi_so_testkit::keystone_password();
    Some(Keystone { url, password })
}

/// A project-scoped admin token and its body, straight from Keystone.
async fn admin_token(ks: &Keystone) -> (String, Value) {
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": ks.password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
    let r = reqwest::Client::new()
        .post(format!("{}/auth/tokens", ks.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let token = r.headers()["X-Subject-Token"].to_str().unwrap().to_string();
    (token, r.json().await.unwrap())
}

fn password_config(ks: &Keystone, password: &str) -> OpenStackConfig {
    OpenStackConfig {
        heat_url: None,
        auth: AuthConfig::Password {
            auth_url: ks.url.clone(),
            username: "admin".into(),
            password: Secret::new(password),
            user_domain_name: "Default".into(),
            project_name: Some("admin".into()),
            project_id: None,
            project_domain_name: "Default".into(),
        },
        ..OpenStackConfig::local_heat("unused")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_auth_finds_heat_in_the_catalog_and_runs_a_stack() {
    let Some(ks) = keystone() else { return };
    let backend = Arc::new(OpenStackBackend::new(password_config(&ks, &ks.password)).unwrap());
    let h = Harness::new(
        backend.clone(),
        Credentials::new("ignored-with-a-fixed-project", None),
    );
    let (stack, _) = h
        .settled_as(&spec(h.name("ks-password"), BASIC), "CREATE_COMPLETE")
        .await;
    h.cleanup(&stack).await;
    let stats = backend.stats();
    assert!(stats.heat_requests >= 4, "{stats:?}");
    assert_eq!(
        stats.keystone_requests, 1,
        "one token for every call: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_unauthorized() {
    let Some(ks) = keystone() else { return };
    let backend = OpenStackBackend::new(password_config(&ks, "not-the-password")).unwrap();
    let e = backend
        .find(&Credentials::new("admin", None), "anything")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, BackendError::Unauthorized { message } if message.contains("Keystone")),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_credentials_work() {
    let Some(ks) = keystone() else { return };
    let (token, body) = admin_token(&ks).await;
    let user = body["token"]["user"]["id"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();
    let name = format!("occi-so-test-{}", std::process::id());
    let r = http
        .post(format!("{}/users/{user}/application_credentials", ks.url))
        .header("X-Auth-Token", &token)
        .json(&json!({"application_credential": {"name": name}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let cred: Value = r.json().await.unwrap();
    let id = cred["application_credential"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = cred["application_credential"]["secret"]
        .as_str()
        .unwrap()
        .to_string();

    let by_id = OpenStackBackend::new(OpenStackConfig {
        auth: AuthConfig::ApplicationCredential {
            auth_url: ks.url.clone(),
            id: Some(id.clone()),
            name: None,
            username: None,
            user_domain_name: "Default".into(),
            secret: Secret::new(secret.clone()),
        },
        ..password_config(&ks, "")
    })
    .unwrap();
    let creds = Credentials::new("admin", None);
    assert_eq!(by_id.find(&creds, "no-such-stack").await.unwrap(), None);
    let by_name = OpenStackBackend::new(OpenStackConfig {
        auth: AuthConfig::ApplicationCredential {
            auth_url: ks.url.clone(),
            id: None,
            name: Some(name),
            username: Some("admin".into()),
            user_domain_name: "Default".into(),
            secret: Secret::new(secret),
        },
        ..password_config(&ks, "")
    })
    .unwrap();
    assert_eq!(by_name.find(&creds, "no-such-stack").await.unwrap(), None);
    assert_eq!(by_name.stats().keystone_requests, 1);

    let _ = http
        .delete(format!(
            "{}/users/{user}/application_credentials/{id}",
            ks.url
        ))
        .header("X-Auth-Token", &token)
        .send()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_through_finds_heat_with_the_callers_token() {
    let Some(ks) = keystone() else { return };
    let (token, _) = admin_token(&ks).await;
    let backend = OpenStackBackend::new(OpenStackConfig {
        auth: AuthConfig::PassThrough {
            auth_url: Some(ks.url.clone()),
            project_domain_name: "Default".into(),
        },
        ..password_config(&ks, "")
    })
    .unwrap();
    let creds = Credentials::new("admin", Some(Secret::new(token)));
    assert_eq!(backend.find(&creds, "no-such-stack").await.unwrap(), None);
    assert_eq!(backend.find(&creds, "still-none").await.unwrap(), None);
    assert_eq!(
        backend.stats().keystone_requests,
        1,
        "catalog cached per project"
    );
    let forged = Credentials::new("admin-2", Some(Secret::new("gAAAA-forged")));
    let e = backend.find(&forged, "x").await.unwrap_err();
    assert!(matches!(e, BackendError::Unauthorized { .. }), "{e}");
}
