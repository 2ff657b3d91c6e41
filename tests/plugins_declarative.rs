//! Declarative plugins against a running server: a folder in `--plugins`
//! registers its kind, edits hot-reload it, a broken edit is refused with
//! the file and line while the previous version keeps serving, a fix is
//! taken, and a removed folder unregisters once its last instance is gone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;
mod plugin_support;

use std::time::Duration;

use common::*;
use plugin_support::*;
use reqwest::Method;

const WITHIN: Duration = Duration::from_secs(10);

#[tokio::test]
async fn register_hot_reload_break_fix_and_remove_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let token = admin_token_file(dir.path());
    let s = start_with(vec![
        "--plugins".into(),
        plugins.display().to_string(),
        "--admin-token-file".into(),
        token.display().to_string(),
    ]);
    let c = client();
    assert!(kind_line(&query(&c, &s).await, "webapp").is_none());

    // A new folder registers a new kind.
    copy_dir(&example(), &plugins.join("webapp"));
    until_served(&s, WITHIN, |q| kind_line(q, "webapp").is_some()).await;
    let h = mcn("t1");
    let mut create = h.clone();
    create.push(("Category", WEBAPP));
    create.push(("X-OCCI-Attribute", "webapp.site.name=\"shop\""));
    let a = call(&c, Method::PUT, &s.url("/webapp/one"), &create, "").await;
    assert_eq!(a.status, 201, "{a:?}");

    // An edited manifest re-registers it; the instance stays.
    let manifest = plugins.join("webapp/plugin.yaml");
    edit(
        &manifest,
        "title: Two-tier web application",
        "title: Shop front",
    );
    until_served(&s, WITHIN, |q| {
        kind_line(q, "webapp").is_some_and(|l| l.contains("title=\"Shop front\""))
    })
    .await;
    let a = call(&c, Method::GET, &s.url("/webapp/one"), &h, "").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.attribute("webapp.site.name").as_deref(), Some("shop"));

    // An edited template too: a new constraint is enforced at once.
    let web = plugins.join("webapp/templates/web.yaml");
    edit(&web, "range: {min: 1, max: 5}", "range: {min: 1, max: 4}");
    until_logged_times(&s, WITHIN, "plugin reloaded", 2).await;
    let mut up = h.clone();
    up.push(("X-OCCI-Attribute", "webapp.web.replicas=5"));
    let mut create5 = create.clone();
    create5.push(("X-OCCI-Attribute", "webapp.web.replicas=5"));
    let a = call(&c, Method::PUT, &s.url("/webapp/five"), &create5, "").await;
    assert_eq!(a.status, 400, "{a:?}");
    assert!(
        a.body.contains("webapp.web.replicas") && a.body.contains("replicas"),
        "{}",
        a.body
    );

    // A broken edit is refused with file and line; the previous version serves.
    edit(
        &web,
        "type: OS::Heat::RandomString",
        "type: OS::Heat::RandomStrng",
    );
    edit(&manifest, "title: Shop front", "title: Broken shop");
    let at = format!(
        "templates/web.yaml:{}:",
        line_of(&web, "OS::Heat::RandomStrng")
    );
    let line = until_logged(&s, WITHIN, "plugin rejected").await;
    assert!(line.contains(&at), "{at} in {line}");
    assert!(line.contains("OS::Heat::RandomStrng"), "{line}");
    let q = query(&c, &s).await;
    assert!(
        kind_line(&q, "webapp")
            .unwrap()
            .contains("title=\"Shop front\""),
        "{q}"
    );
    let list = admin(&s, Method::GET, "/admin/plugins", None).await;
    let v: serde_json::Value = serde_json::from_str(&list.body).unwrap();
    let webapp = v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "webapp")
        .unwrap();
    assert!(webapp["error"].as_str().unwrap().contains(&at), "{webapp}");
    let a = call(&c, Method::PUT, &s.url("/webapp/two"), &create, "").await;
    assert_eq!(a.status, 201, "the previous version keeps serving: {a:?}");

    // The fix is taken.
    edit(
        &web,
        "type: OS::Heat::RandomStrng",
        "type: OS::Heat::RandomString",
    );
    until_served(&s, WITHIN, |q| {
        kind_line(q, "webapp").is_some_and(|l| l.contains("title=\"Broken shop\""))
    })
    .await;
    let list = admin(&s, Method::GET, "/admin/plugins", None).await;
    let v: serde_json::Value = serde_json::from_str(&list.body).unwrap();
    let webapp = v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "webapp")
        .unwrap();
    assert!(webapp["error"].is_null(), "{webapp}");

    // A removed folder: the kind serves its live instances only...
    std::fs::remove_dir_all(plugins.join("webapp")).unwrap();
    until_logged(&s, WITHIN, "plugin folder removed").await;
    assert!(kind_line(&query(&c, &s).await, "webapp").is_some());
    let a = call(&c, Method::PUT, &s.url("/webapp/three"), &create, "").await;
    assert_eq!(a.status, 400, "{a:?}");
    assert!(a.body.contains("being removed"), "{}", a.body);
    let a = call(&c, Method::GET, &s.url("/webapp/one"), &h, "").await;
    assert_eq!(a.status, 200);
    // ... and goes when the last one is disposed.
    for id in ["one", "two"] {
        let a = call(&c, Method::DELETE, &s.url(&format!("/webapp/{id}")), &h, "").await;
        assert!(a.status.is_success(), "{a:?}");
    }
    until_served(&s, WITHIN, |q| kind_line(q, "webapp").is_none()).await;
    let a = call(&c, Method::GET, &s.url("/webapp/"), &h, "").await;
    assert_eq!(a.status, 404);
}

#[tokio::test]
async fn a_broken_folder_at_start_is_listed_with_file_and_line_and_others_serve() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    copy_dir(&example(), &plugins.join("webapp"));
    copy_dir(&example(), &plugins.join("broken"));
    let broken = plugins.join("broken/plugin.yaml");
    edit(&broken, "name: webapp", "name: broken");
    edit(&broken, "term: webapp", "term: broken");
    edit(&broken, "location: /webapp/", "location: /broken/");
    edit(
        &broken,
        "db_url: {output: database.url}",
        "db_url: {output: database.uri}",
    );
    let at = format!("broken/plugin.yaml:{}:7", line_of(&broken, "database.uri"));
    let token = admin_token_file(dir.path());
    let s = start_with(vec![
        "--plugins".into(),
        plugins.display().to_string(),
        "--admin-token-file".into(),
        token.display().to_string(),
    ]);
    let c = client();
    let q = query(&c, &s).await;
    assert!(kind_line(&q, "webapp").is_some(), "{q}");
    assert!(kind_line(&q, "broken").is_none(), "{q}");
    let log = s.log();
    let line = log
        .lines()
        .find(|l| l.contains("plugin rejected"))
        .expect("logged");
    assert!(line.contains(&at), "{at} in {line}");
    assert!(line.contains("has no output \"uri\""), "{line}");
    let list = admin(&s, Method::GET, "/admin/plugins", None).await;
    let v: serde_json::Value = serde_json::from_str(&list.body).unwrap();
    let rejected = &v["rejected"][0];
    assert!(
        rejected["path"].as_str().unwrap().ends_with("broken"),
        "{v}"
    );
    assert!(rejected["error"].as_str().unwrap().contains(&at), "{v}");
}

#[tokio::test]
async fn a_kind_changes_on_reload_only_while_it_has_no_instance() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    copy_dir(&example(), &plugins.join("webapp"));
    let s = start_with(vec!["--plugins".into(), plugins.display().to_string()]);
    let c = client();
    assert!(kind_line(&query(&c, &s).await, "webapp").is_some());
    let manifest = plugins.join("webapp/plugin.yaml");

    // No instance: the new kind replaces the old one.
    edit(&manifest, "term: webapp", "term: shop");
    edit(&manifest, "location: /webapp/", "location: /shop/");
    until_served(&s, WITHIN, |q| {
        kind_line(q, "shop").is_some() && kind_line(q, "webapp").is_none()
    })
    .await;

    // With an instance, the kind stays and the change is refused (and said).
    let mut create = mcn("t1");
    create.push((
        "Category",
        "shop; scheme=\"http://schemas.occi-so.org/occi/webapp#\"",
    ));
    create.push(("X-OCCI-Attribute", "webapp.site.name=\"shop\""));
    assert_eq!(
        call(&c, Method::PUT, &s.url("/shop/one"), &create, "")
            .await
            .status,
        201
    );
    edit(&manifest, "term: shop", "term: store");
    edit(&manifest, "location: /shop/", "location: /store/");
    let line = until_logged(&s, WITHIN, "plugin rejected by the registry").await;
    assert!(line.contains("1 live instance"), "{line}");
    let q = query(&c, &s).await;
    assert!(
        kind_line(&q, "shop").is_some() && kind_line(&q, "store").is_none(),
        "{q}"
    );
    assert_eq!(
        call(&c, Method::GET, &s.url("/shop/one"), &mcn("t1"), "")
            .await
            .status,
        200
    );
}
