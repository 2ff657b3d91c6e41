//! The example plugin of docs/plugins.md (`plugins/webapp`) on a real
//! Heat: two stacks created in order (the web tier takes the database's
//! output), attributes checked against the templates, a secret passed as
//! a hidden parameter and never shown, update patches what changed,
//! provision switches the site live with another environment, dispose
//! deletes both stacks. The same lifecycle runs on the embedded engine
//! (the default backend).

mod common;
mod plugin_support;

use std::time::Duration;

use common::*;
use plugin_support::*;
use reqwest::Method;

#[tokio::test]
async fn the_webapp_example_runs_its_whole_lifecycle_on_heat() {
    let Some(heat) = require_heat() else {
        return;
    };
    webapp_lifecycle(heat_args(&heat), Some(&heat)).await;
}

#[tokio::test]
async fn the_webapp_example_runs_its_whole_lifecycle_on_the_embedded_engine() {
    webapp_lifecycle(Vec::new(), None).await;
}

/// The whole lifecycle on the server started with `args`; `heat` is the
/// real Heat's URL when the backend is one (its stack list is checked).
async fn webapp_lifecycle(mut args: Vec<String>, heat: Option<&str>) {
    args.extend(["--plugins".into(), example().display().to_string()]);
    let s = start_with(args);
    let c = client();
    let h = mcn("webapp-test");
    let url = s.url("/webapp/shop");

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
    create.push((
        "X-OCCI-Attribute",
        "webapp.site.name=\"shop\", webapp.db.password=\"s3cret-pw\", webapp.web.replicas=2",
    ));
    assert_eq!(call(&c, Method::PUT, &url, &create, "").await.status, 201);

    // deploy: database, then web with the database's URL.
    let a = call(&c, Method::POST, &format!("{url}?action=deploy"), &h, "").await;
    assert_eq!(a.status, 200, "{a:?}");
    let g = wait_for(&c, &url, &h, Duration::from_secs(120), |g| {
        g.attribute("occi.so.operation").is_none()
    })
    .await;
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
    let ids = g.attribute("occi.mcn.stack.id").unwrap();
    assert!(
        ids.starts_with("database:") && ids.contains(",web:"),
        "{ids}"
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
    assert!(
        g.attribute("webapp.web.nodes")
            .unwrap()
            .starts_with("2 node(s)"),
        "{}",
        g.body
    );
    assert_eq!(g.attribute("webapp.mode").as_deref(), Some("deployed"));
    assert!(
        !g.body.contains("s3cret-pw"),
        "a secret is never rendered: {}",
        g.body
    );
    assert!(!s.log().contains("s3cret-pw"), "nor logged");

    // update: the changed attribute is patched into the web stack.
    let mut up = h.clone();
    up.push(("X-OCCI-Attribute", "webapp.web.replicas=3"));
    assert_eq!(call(&c, Method::POST, &url, &up, "").await.status, 200);
    let g = wait_for(&c, &url, &h, Duration::from_secs(120), |g| {
        g.attribute("occi.so.operation").is_none()
    })
    .await;
    assert_eq!(g.attribute("occi.so.error"), None, "{}", g.body);
    assert!(
        g.attribute("webapp.web.nodes")
            .unwrap()
            .starts_with("3 node(s)"),
        "{}",
        g.body
    );
    assert_eq!(
        g.attribute("mcn.endpoint.db").as_deref(),
        Some(db.as_str()),
        "the database is untouched"
    );

    // provision: a full update of web with the live environment.
    let a = call(&c, Method::POST, &format!("{url}?action=provision"), &h, "").await;
    assert_eq!(a.status, 200, "{a:?}");
    let g = wait_for(&c, &url, &h, Duration::from_secs(120), |g| {
        g.attribute("occi.so.operation").is_none()
    })
    .await;
    assert_eq!(
        g.attribute("occi.so.phase").as_deref(),
        Some("provisioned"),
        "{}",
        g.body
    );
    assert_eq!(g.attribute("webapp.mode").as_deref(), Some("live"));
    assert!(
        g.attribute("webapp.web.nodes")
            .unwrap()
            .starts_with("3 node(s)"),
        "{}",
        g.body
    );
    assert!(
        g.actions().contains(&"restart".to_string()),
        "{:?}",
        g.actions()
    );

    // dispose: both stacks deleted.
    let a = call(&c, Method::DELETE, &url, &h, "").await;
    assert!(a.status == 200 || a.status == 204, "{a:?}");
    assert_eq!(call(&c, Method::GET, &url, &h, "").await.status, 404);
    let Some(heat) = heat else {
        return;
    };
    let stacks = reqwest::get(format!("{heat}/stacks"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = ids
        .split(',')
        .map(|p| p.split(':').nth(1).unwrap().to_string())
        .collect::<Vec<_>>();
    for id in prefix {
        assert!(!stacks.contains(&id), "stack {id} still listed: {stacks}");
    }
}
