//! The admin API and the `occi-so plugins` CLI against a running server:
//! register by path and by upload, invalid plugins refused with file and
//! line, unregister (refused with live instances unless forced), the
//! admin token, and registrations that survive a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;
mod plugin_support;

use std::process::Command;
use std::time::Duration;

use common::*;
use plugin_support::*;
use reqwest::Method;
use serde_json::{json, Value};

const WITHIN: Duration = Duration::from_secs(10);

fn upload_body(dir: &std::path::Path) -> Value {
    let mut files = serde_json::Map::new();
    for rel in [
        "templates/database.yaml",
        "templates/web.yaml",
        "environments/common.yaml",
        "environments/live.yaml",
    ] {
        files.insert(
            rel.into(),
            json!(std::fs::read_to_string(dir.join(rel)).unwrap()),
        );
    }
    json!({
        "manifest": std::fs::read_to_string(dir.join("plugin.yaml")).unwrap(),
        "files": files,
    })
}

#[tokio::test]
async fn register_by_upload_and_path_unregister_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let token = admin_token_file(dir.path());
    let mut s = start_with(vec![
        "--admin-token-file".into(),
        token.display().to_string(),
    ]);
    let c = client();

    // The admin token is required.
    let a = call(&c, Method::GET, &s.url("/admin/plugins"), &[], "").await;
    assert_eq!(a.status, 401);
    assert!(a.header("www-authenticate").starts_with("Bearer"), "{a:?}");
    let a = call(
        &c,
        Method::GET,
        &s.url("/admin/plugins"),
        &[("Authorization", "Bearer nope")],
        "",
    )
    .await;
    assert_eq!(a.status, 401);

    // An invalid upload: 400 naming the file and line; nothing registered.
    let mut body = upload_body(&example());
    let broken = body["files"]["templates/web.yaml"]
        .as_str()
        .unwrap()
        .replace(
            "allowed_values: [deployed, live, maintenance]",
            "allowed_values: deployed",
        );
    body["files"]["templates/web.yaml"] = json!(broken);
    let a = admin(&s, Method::POST, "/admin/plugins", Some(&body)).await;
    assert_eq!(a.status, 400, "{a:?}");
    let line = line_of(&example().join("templates/web.yaml"), "allowed_values");
    assert!(
        a.body
            .contains(&format!("webapp/templates/web.yaml:{line}:")),
        "{}",
        a.body
    );
    assert!(kind_line(&query(&c, &s).await, "webapp").is_none());

    // A good upload: 201, in /-/ at once.
    let a = admin(
        &s,
        Method::POST,
        "/admin/plugins",
        Some(&upload_body(&example())),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.header("location"), "/admin/plugins/webapp");
    let v: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(v["kind"]["location"], "/webapp/");
    assert!(kind_line(&query(&c, &s).await, "webapp").is_some());

    // By path: a folder on the server's machine, watched for changes.
    let folder = dir.path().join("shop");
    copy_dir(&example(), &folder);
    let manifest = folder.join("plugin.yaml");
    edit(&manifest, "name: webapp", "name: shop");
    edit(&manifest, "term: webapp", "term: shop");
    edit(&manifest, "location: /webapp/", "location: /shop/");
    let a = admin(
        &s,
        Method::POST,
        "/admin/plugins",
        Some(&json!({ "path": folder.display().to_string() })),
    )
    .await;
    assert_eq!(a.status, 201, "{a:?}");
    edit(&manifest, "title: Two-tier web application", "title: Shop");
    until_served(&s, WITHIN, |q| {
        kind_line(q, "shop").is_some_and(|l| l.contains("title=\"Shop\""))
    })
    .await;

    // Name and kind conflicts are 409.
    let a = admin(
        &s,
        Method::POST,
        "/admin/plugins",
        Some(&json!({ "path": example().display().to_string() })),
    )
    .await;
    assert_eq!(a.status, 409, "{a:?}");

    // Show and list.
    let a = admin(&s, Method::GET, "/admin/plugins/shop", None).await;
    assert_eq!(a.status, 200);
    let v: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(v["source"]["type"], "declarative");
    assert_eq!(v["folder"]["origin"], "registered");
    let secret = v["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "webapp.db.password")
        .unwrap();
    assert_eq!(secret["secret"], true);
    assert_eq!(
        admin(&s, Method::GET, "/admin/plugins/nope", None)
            .await
            .status,
        404
    );

    // Unregister: refused with a live instance, forced, or once it is gone.
    let mut create = mcn("t1");
    create.push((
        "Category",
        "shop; scheme=\"http://schemas.occi-so.org/occi/webapp#\"",
    ));
    create.push(("X-OCCI-Attribute", "webapp.site.name=\"shop\""));
    let a = call(&c, Method::PUT, &s.url("/shop/one"), &create, "").await;
    assert_eq!(a.status, 201, "{a:?}");
    let a = admin(&s, Method::DELETE, "/admin/plugins/shop", None).await;
    assert_eq!(a.status, 409, "{a:?}");
    assert!(a.body.contains("1 live instance"), "{}", a.body);

    // Both registrations survive a restart.
    s.terminate(Duration::from_secs(20));
    let s = s.restart();
    let q = query(&c, &s).await;
    assert!(kind_line(&q, "webapp").is_some(), "{q}");
    assert!(
        kind_line(&q, "shop").is_some_and(|l| l.contains("title=\"Shop\"")),
        "{q}"
    );
    let a = call(&c, Method::GET, &s.url("/shop/one"), &mcn("t1"), "").await;
    assert_eq!(a.status, 200, "{a:?}");

    let a = admin(&s, Method::DELETE, "/admin/plugins/shop?force=true", None).await;
    assert_eq!(a.status, 204, "{a:?}");
    let a = admin(&s, Method::DELETE, "/admin/plugins/webapp", None).await;
    assert_eq!(a.status, 204, "{a:?}");
    let q = query(&c, &s).await;
    assert!(
        kind_line(&q, "shop").is_none() && kind_line(&q, "webapp").is_none(),
        "{q}"
    );
    // The forced one's instance stays (its plugin is gone: 503 on operations).
    let a = call(
        &c,
        Method::POST,
        &s.url("/shop/one?action=deploy"),
        &mcn("t1"),
        "",
    )
    .await;
    assert!(a.status == 404 || a.status == 503, "{a:?}");
}

#[tokio::test]
async fn the_admin_api_is_off_without_a_token_file() {
    let s = start(&[]);
    let a = admin(&s, Method::GET, "/admin/plugins", None).await;
    assert_eq!(a.status, 403, "{a:?}");
    assert!(a.body.contains("--admin-token-file"), "{}", a.body);
}

fn occi_so(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_occi-so"))
        .args(args)
        .env_remove("OCCI_SO_ADMIN_TOKEN")
        .env_remove("OCCI_SO_ADMIN_TOKEN_FILE")
        .env_remove("OCCI_SO_SERVER")
        .output()
        .expect("occi-so runs")
}

#[test]
fn plugins_validate_checks_the_example_and_names_file_and_line() {
    let ex = example();
    let out = occi_so(&["plugins", "validate", ex.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(": valid"), "{stdout}");
    assert!(
        stdout.contains("deploy: create database: templates/database.yaml"),
        "{stdout}"
    );

    // A sample value Heat would refuse is named with its attribute.
    let out = occi_so(&[
        "plugins",
        "validate",
        ex.to_str().unwrap(),
        "-a",
        "webapp.db.name=Bad",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("webapp.db.name") && stderr.contains("db_name"),
        "{stderr}"
    );

    // A broken template: file and line.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("webapp");
    copy_dir(&ex, &copy);
    edit(
        &copy.join("templates/database.yaml"),
        "get_attr: [host, value]",
        "get_attr: [hots, value]",
    );
    let line = line_of(&copy.join("templates/database.yaml"), "[hots, value]");
    let out = occi_so(&["plugins", "validate", copy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("templates/database.yaml:{line}:")),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_cli_registers_lists_and_unregisters() {
    let dir = tempfile::tempdir().unwrap();
    let token = admin_token_file(dir.path());
    let s = start_with(vec![
        "--admin-token-file".into(),
        token.display().to_string(),
    ]);
    let server = s.base.clone();
    let tf = token.display().to_string();
    let ex = example().display().to_string();
    let run = move |args: Vec<String>| {
        let mut all = args;
        all.extend([
            "--server".to_string(),
            server.clone(),
            "--admin-token-file".into(),
            tf.clone(),
        ]);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        occi_so(&refs)
    };
    let r = run.clone();
    let out = tokio::task::spawn_blocking(move || {
        r(vec![
            "plugins".into(),
            "register".into(),
            ex,
            "--upload".into(),
        ])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("registered webapp 1.0.0"), "{stdout}");
    assert!(kind_line(&query(&client(), &s).await, "webapp").is_some());

    let r = run.clone();
    let out = tokio::task::spawn_blocking(move || r(vec!["plugins".into(), "list".into()]))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success());
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("webapp") && l.contains("/webapp/")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("sample ") && l.contains("(default)")),
        "{stdout}"
    );

    let r = run.clone();
    let out = tokio::task::spawn_blocking(move || {
        r(vec!["plugins".into(), "unregister".into(), "webapp".into()])
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(kind_line(&query(&client(), &s).await, "webapp").is_none());

    let r = run.clone();
    let out = tokio::task::spawn_blocking(move || {
        r(vec!["plugins".into(), "unregister".into(), "webapp".into()])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 404"));
}
