//! Links between instances (OCCI core `link`), kept on their source
//! instance: created inline (a `Link` in a resource's `PUT`/`POST`) or with
//! `POST /link/` (`occi.core.source`, `occi.core.target`), read with
//! `GET /link/{id}`, removed with `DELETE /link/{id}`.
//!
//! A target is another instance of the tenant (by path or absolute URL) or
//! an external absolute URL.

use std::sync::Arc;

use http::{Method, Response, StatusCode};
use occi::Link;

use super::entity::{classify, valid_id};
use super::{render, App, Call};
use crate::error::ApiError;
use occi_so_framework::schema::AttributeError;
use occi_so_framework::store::{Instance, LinkRecord};

/// The link collection.
pub(super) const COLLECTION: &str = "/link/";

const SOURCE: &str = "occi.core.source";
const TARGET: &str = "occi.core.target";

/// Where `target` points and that resource's kind, checked: a path (or a
/// URL on this server) must be an instance of the tenant.
fn resolve_target(app: &App, c: &Call, target: &str) -> Result<(String, Option<String>), ApiError> {
    let t = target.trim();
    let external = (t.starts_with("http://") || t.starts_with("https://"))
        && !t.starts_with(c.renderer.base());
    if external {
        return Ok((t.to_string(), None));
    }
    let path = c.path_of(t)?;
    match app.lifecycle.store().get(&c.key(&path)) {
        Some(inst) => Ok((path, Some(inst.kind.clone()))),
        None => Err(ApiError::bad_request(format!(
            "link target {t}: no instance there"
        ))),
    }
}

/// A link the server reports itself (an instance's links to its
/// operations): put back by a client, it is an echo and changes nothing.
fn reported(l: &Link) -> bool {
    l.kind
        .strip_prefix(render::SO_SCHEME)
        .is_some_and(|t| t == render::OPERATION_LINK_TERM)
}

fn record(app: &App, c: &Call, l: &Link) -> Result<LinkRecord, ApiError> {
    if l.kind != occi::LINK {
        return Err(ApiError::bad_request(format!(
            "Link category {}: this server has only the core link kind",
            l.kind
        )));
    }
    let (target, target_kind) = resolve_target(app, c, &l.target)?;
    let id = uuid::Uuid::new_v4().to_string();
    let attributes = l
        .attributes
        .iter()
        .filter(|(n, _)| !matches!(*n, SOURCE | TARGET | occi_so_framework::schema::CORE_ID))
        .map(|(n, v)| (n.to_string(), v.to_json()))
        .collect();
    Ok(LinkRecord {
        location: format!("{COLLECTION}{id}"),
        id,
        kind: occi::LINK.to_string(),
        mixins: l.mixins.clone(),
        target,
        target_kind: target_kind.or_else(|| l.rel.first().cloned()),
        attributes,
    })
}

/// Checks inline links of a create request (before the instance exists)
/// and builds their records.
pub(super) fn records(app: &App, c: &Call, links: &[Link]) -> Result<Vec<LinkRecord>, ApiError> {
    let mut out: Vec<LinkRecord> = Vec::new();
    for l in links.iter().filter(|l| !reported(l)) {
        let r = record(app, c, l)?;
        if !out.iter().any(|x| x.target == r.target && x.kind == r.kind) {
            out.push(r);
        }
    }
    Ok(out)
}

/// Adds checked link records to the instance at `key`.
pub(super) async fn attach(
    app: &Arc<App>,
    key: &occi_so_framework::store::InstanceKey,
    new: Vec<LinkRecord>,
) -> Result<Arc<Instance>, ApiError> {
    if new.is_empty() {
        return app.lifecycle.get(key).map_err(Into::into);
    }
    let (inst, durable) = app
        .lifecycle
        .store()
        .update(key, |i| {
            i.links.extend(new);
            Ok::<(), ()>(())
        })
        .map_err(|_| ApiError::not_found(format!("no instance at {}", key.location)))?;
    durable.wait().await?;
    Ok(inst)
}

/// Adds `links` (from a resource's request) to `source`; a link that
/// repeats one it has (same target and kind, e.g. a GET rendering put
/// back) is skipped. All are checked before any is added.
pub(super) async fn add_inline(
    app: &Arc<App>,
    c: &Call,
    source: &Instance,
    links: &[Link],
) -> Result<Arc<Instance>, ApiError> {
    let mut new = Vec::new();
    for l in links.iter().filter(|l| !reported(l)) {
        if let Some(loc) = &l.location {
            if source.links.iter().any(|x| &x.location == loc) {
                continue;
            }
        }
        let r = record(app, c, l)?;
        let repeat = source
            .links
            .iter()
            .chain(new.iter())
            .any(|x: &LinkRecord| x.target == r.target && x.kind == r.kind);
        if !repeat {
            new.push(r);
        }
    }
    attach(app, &source.key, new).await
}

/// The instance holding link `location`, and the link.
fn find(app: &App, tenant: &str, location: &str) -> Option<(Arc<Instance>, LinkRecord)> {
    app.lifecycle
        .store()
        .list(tenant, None)
        .into_iter()
        .find_map(|i| {
            let l = i.links.iter().find(|l| l.location == location)?.clone();
            Some((i, l))
        })
}

/// `GET /link/` (every link location) and `POST /link/` (create).
pub(super) async fn collection(
    app: &Arc<App>,
    c: &Call,
) -> Result<Response<super::Body>, ApiError> {
    match c.method {
        Method::GET => {
            let locations: Vec<String> = app
                .lifecycle
                .store()
                .list(&c.caller.tenant, None)
                .iter()
                .flat_map(|i| i.links.iter().map(|l| l.location.clone()))
                .collect();
            Ok(c.respond(
                StatusCode::OK,
                c.renderer
                    .locations(c.media, locations.iter().map(String::as_str)),
            ))
        }
        Method::POST => create(app, c).await,
        _ => Err(ApiError::method_not_allowed(&c.path, "GET, HEAD, POST")),
    }
}

async fn create(app: &Arc<App>, c: &Call) -> Result<Response<super::Body>, ApiError> {
    let content = c.content()?;
    let cats = classify(app, &c.caller.tenant, &content)?;
    if let Some(k) = &cats.kind {
        if k != occi::LINK {
            return Err(ApiError::bad_request(format!(
                "Category {k}: POST {COLLECTION} creates links (kind {})",
                occi::LINK
            )));
        }
    }
    let text = |name: &str| -> Result<String, ApiError> {
        match content.attributes.get(name) {
            Some(v) => Ok(v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())),
            None => Err(AttributeError::Missing {
                name: name.to_string(),
                kind: "link".into(),
            }
            .into()),
        }
    };
    let source = c.path_of(&text(SOURCE)?)?;
    let target = text(TARGET)?;
    let inst = app.lifecycle.store().get(&c.key(&source)).ok_or_else(|| {
        ApiError::bad_request(format!("attribute {SOURCE}: no instance at {source}"))
    })?;
    let mut link = Link::new(target, occi::RESOURCE);
    link.rel.clear();
    link.mixins = cats.mixins;
    link.attributes = content.attributes.clone();
    let r = record(app, c, &link)?;
    let location = r.location.clone();
    let (_, durable) = app
        .lifecycle
        .store()
        .update(&inst.key, |i| {
            i.links.push(r);
            Ok::<(), ()>(())
        })
        .map_err(|_| ApiError::not_found(format!("no instance at {source}")))?;
    durable.wait().await?;
    Ok(c.respond(StatusCode::CREATED, c.renderer.created(c.media, &location)))
}

/// `GET` and `DELETE /link/{id}`.
pub(super) async fn entity(
    app: &Arc<App>,
    c: &Call,
    id: &str,
) -> Result<Response<super::Body>, ApiError> {
    if !valid_id(id) {
        return Err(ApiError::not_found(format!("no link at {}", c.path)));
    }
    let (inst, l) = find(app, &c.caller.tenant, &c.path)
        .ok_or_else(|| ApiError::not_found(format!("no link at {}", c.path)))?;
    match c.method {
        Method::GET => Ok(c.respond(
            StatusCode::OK,
            c.renderer.link(c.media, &render::link(&inst, &l))?,
        )),
        Method::DELETE => {
            let location = l.location.clone();
            let (_, durable) = app
                .lifecycle
                .store()
                .update(&inst.key, |i| {
                    i.links.retain(|x| x.location != location);
                    Ok::<(), ()>(())
                })
                .map_err(|_| ApiError::not_found(format!("no link at {}", c.path)))?;
            durable.wait().await?;
            Ok(c.respond(StatusCode::OK, c.renderer.message(c.media, "OK")))
        }
        _ => Err(ApiError::method_not_allowed(&c.path, "GET, HEAD, DELETE")),
    }
}
