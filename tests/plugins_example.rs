//! The example plugin of docs/plugins.md (`plugins/webapp`), its whole
//! lifecycle written once and run on the embedded engine (the default
//! backend, its default timings) and on the real local Heat, with the
//! stacks read through the testkit's probe: two stacks created in order
//! (the web tier takes the database's output), attributes checked against
//! the templates, a secret passed as a hidden parameter and never shown,
//! update patches what changed (the database untouched), provision
//! switches the site live with another environment, dispose deletes both
//! stacks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;
mod plugin_support;

use common::*;
use plugin_support::*;
use reqwest::Method;

fn nodes(g: &Answer) -> String {
    g.attribute("webapp.web.nodes").unwrap_or_default()
}

async fn the_webapp_example_runs_its_whole_lifecycle(backend: Backend) {
    const SECRET: &str = "s3cret-pw";
    let probe = backend.probe();
    let dir = tempfile::tempdir().unwrap();
    let mut args = backend_args(&backend, dir.path());
    args.extend(["--plugins".into(), example().display().to_string()]);
    let s = start_with(args);
    let c = client();
    let tenant = "webapp-test";
    let h = mcn(tenant);
    let instance = "/webapp/shop";
    let url = s.url(instance);

    // A value Heat would refuse is a 400 naming the attribute; nothing is created.
    let mut bad = h.clone();
    bad.push(("Category", WEBAPP));
    bad.push((
        "X-OCCI-Attribute",
        "webapp.site.name=\"shop\", webapp.db.name=\"Bad-Name\"",
    ));
    let a = call(&c, Method::PUT, &url, &bad, "").await;
    assert_eq!(a.status, 400, "{a:?}");
    assert!(
        a.body.contains("webapp.db.name") && a.body.contains("db_name"),
        "{}",
        a.body
    );
    assert_eq!(call(&c, Method::GET, &url, &h, "").await.status, 404);

    let mut create = h.clone();
    create.push(("Category", WEBAPP));
    let attributes = format!(
        "webapp.site.name=\"shop\", webapp.db.password=\"{SECRET}\", webapp.web.replicas=2"
    );
    create.push(("X-OCCI-Attribute", &attributes));
    assert_eq!(call(&c, Method::PUT, &url, &create, "").await.status, 201);

    // deploy: database, then web with the database's URL.
    let a = call(&c, Method::POST, &format!("{url}?action=deploy"), &h, "").await;
    assert_eq!(a.status, 200, "{a:?}");
    let g = backend.succeeded(&c, &url, &h).await;
    assert_eq!(
        g.attribute("occi.so.phase").as_deref(),
        Some("deployed"),
        "{}",
        g.body
    );
    assert_eq!(
        g.attribute("occi.mcn.stack.state").as_deref(),
        Some("CREATE_COMPLETE")
    );
    let list = probe.held(&s, tenant, instance).await;
    let roles: Vec<&str> = list.iter().map(|s| s.role.as_str()).collect();
    assert_eq!(roles, ["database", "web"]);
    let (database, web) = (by_role(&list, "database"), by_role(&list, "web"));
    assert_eq!(
        g.attribute("occi.mcn.stack.id"),
        Some(format!("database:{},web:{}", database.id, web.id))
    );
    assert_eq!(
        g.attribute("mcn.endpoint.webapp").as_deref(),
        Some("http://shop.webapp.local/")
    );
    let db = g.attribute("mcn.endpoint.db").unwrap();
    assert!(
        db.starts_with("postgres://db-") && db.ends_with(".webapp.local:5432/app"),
        "{db}"
    );
    assert_eq!(database.output("url"), serde_json::json!(db));
    assert_eq!(web.parameter("db_url"), db, "the database's output");
    assert_eq!(database.parameter("db_password"), "******", "passed hidden");
    assert_eq!(web.parameter("replicas"), "2");
    assert!(nodes(&g).starts_with("2 node(s)"), "{}", g.body);
    assert_eq!(g.attribute("webapp.mode").as_deref(), Some("deployed"));
    assert!(
        !g.body.contains(SECRET),
        "a secret is never rendered: {}",
        g.body
    );
    assert!(!format!("{list:?}").contains(SECRET), "nor reported");
    assert!(!s.log().contains(SECRET), "nor logged");

    // update: the changed attribute is patched into the web stack; the
    // database is untouched.
    let (db_updates, web_updates) = (
        probe.updates(&s, tenant, database).await,
        probe.updates(&s, tenant, web).await,
    );
    let mut up = h.clone();
    up.push(("X-OCCI-Attribute", "webapp.web.replicas=3"));
    assert_eq!(call(&c, Method::POST, &url, &up, "").await.status, 200);
    let g = backend.succeeded(&c, &url, &h).await;
    assert!(nodes(&g).starts_with("3 node(s)"), "{}", g.body);
    assert_eq!(
        g.attribute("mcn.endpoint.db").as_deref(),
        Some(db.as_str()),
        "the database is untouched"
    );
    let list = probe.held(&s, tenant, instance).await;
    let (database, web) = (by_role(&list, "database"), by_role(&list, "web"));
    assert_eq!(web.parameter("replicas"), "3");
    assert_eq!(web.status, "UPDATE_COMPLETE");
    assert_eq!(probe.updates(&s, tenant, web).await, web_updates + 1);
    assert_eq!(database.status, "CREATE_COMPLETE");
    assert_eq!(probe.updates(&s, tenant, database).await, db_updates);

    // provision: a full update of web with the live environment.
    let a = call(&c, Method::POST, &format!("{url}?action=provision"), &h, "").await;
    assert_eq!(a.status, 200, "{a:?}");
    let g = backend.succeeded(&c, &url, &h).await;
    assert_eq!(
        g.attribute("occi.so.phase").as_deref(),
        Some("provisioned"),
        "{}",
        g.body
    );
    assert_eq!(g.attribute("webapp.mode").as_deref(), Some("live"));
    assert!(nodes(&g).starts_with("3 node(s)"), "{}", g.body);
    assert!(
        g.actions().contains(&"restart".to_string()),
        "{:?}",
        g.actions()
    );
    let list = probe.held(&s, tenant, instance).await;
    assert_eq!(by_role(&list, "web").parameter("replicas"), "3");
    assert_eq!(probe.updates(&s, tenant, web).await, web_updates + 2);

    // dispose: both stacks deleted.
    let ids: Vec<String> = list.iter().map(|s| s.id.clone()).collect();
    let a = call(&c, Method::DELETE, &url, &h, "").await;
    assert!(a.status == 200 || a.status == 204, "{a:?}");
    assert_eq!(call(&c, Method::GET, &url, &h, "").await.status, 404);
    assert_eq!(probe.stacks(&s, tenant, instance).await, None);
    assert!(
        probe.gone(&s, tenant, instance, &ids).await,
        "{ids:?} deleted"
    );
}
on_both_backends!(the_webapp_example_runs_its_whole_lifecycle);
