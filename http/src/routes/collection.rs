//! Collections: a kind's (`/sample/`: list, create, act on all, dispose
//! all), a user mixin's (`/tags/blue/`: list, associate, replace,
//! dissociate), and the tenant's whole namespace (`/`).
//!
//! Listings are filtered by the request's Categories (kind or mixin) and
//! `X-OCCI-Attribute`s (an instance matches when each named attribute has
//! that value, compared as text). Text renderings list locations; JSON
//! renders the full resources.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::future::join_all;
use http::{Method, Response, StatusCode};
use occi::{CategoryClass, Content, Resource};

use super::entity::{classify, given_attributes, valid_id};
use super::{link, render, App, Call};
use crate::error::ApiError;
use occi_so_framework::lifecycle::{CreateRequest, Disposed};
use occi_so_framework::mixins::UserMixin;
use occi_so_framework::registry::Binding;
use occi_so_framework::schema::CORE_ID;
use occi_so_framework::store::Instance;

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Instances matching the request's category and attribute filters.
async fn filtered(
    app: &Arc<App>,
    c: &Call,
    content: &Content,
    mut instances: Vec<Arc<Instance>>,
) -> Result<Vec<Arc<Instance>>, ApiError> {
    let cats = classify(app, &c.caller.tenant, content)?;
    if let Some(k) = &cats.kind {
        if !matches!(k.as_str(), occi::ENTITY | occi::RESOURCE) {
            instances.retain(|i| &i.kind == k);
        }
    }
    for m in &cats.mixins {
        instances.retain(|i| i.mixins.contains(m));
    }
    if content.attributes.is_empty() {
        return Ok(instances);
    }
    let wanted: Vec<(String, String)> = content
        .attributes
        .iter()
        .map(|(n, v)| (n.to_string(), text(&v.to_json())))
        .collect();
    let mut out = Vec::with_capacity(instances.len());
    for inst in instances {
        let own = |name: &str| -> Option<String> {
            if name == CORE_ID {
                return Some(inst.id.clone());
            }
            inst.attributes.get(name).map(text)
        };
        let mut reported = None;
        let mut all = true;
        for (name, value) in &wanted {
            let have = match own(name) {
                Some(v) => Some(v),
                None => {
                    if reported.is_none() {
                        let report = app.report(&inst).await?;
                        reported = Some(render::reported(&inst, &report));
                    }
                    reported.as_ref().and_then(|r| r.get(name)).map(text)
                }
            };
            if have.as_deref() != Some(value.as_str()) {
                all = false;
                break;
            }
        }
        if all {
            out.push(inst);
        }
    }
    Ok(out)
}

/// Renders a listing: locations, or full resources for JSON.
async fn listing(
    app: &Arc<App>,
    c: &Call,
    instances: &[Arc<Instance>],
) -> Result<Response<super::Body>, ApiError> {
    if c.media == occi::MediaType::OcciJson {
        let mut resources: Vec<Resource> = Vec::with_capacity(instances.len());
        for i in instances {
            resources.push(app.resource_of(i).await?);
        }
        return Ok(c.respond(StatusCode::OK, c.renderer.collection(c.media, &resources)));
    }
    Ok(c.respond(
        StatusCode::OK,
        c.renderer
            .locations(c.media, instances.iter().map(|i| i.key.location.as_str())),
    ))
}

/// `GET /`: every instance of the tenant.
pub(super) async fn namespace(app: &Arc<App>, c: &Call) -> Result<Response<super::Body>, ApiError> {
    if c.method != Method::GET {
        return Err(ApiError::method_not_allowed("/", "GET, HEAD"));
    }
    let content = c.content()?;
    let all = app.lifecycle.store().list(&c.caller.tenant, None);
    let found = filtered(app, c, &content, all).await?;
    listing(app, c, &found).await
}

/// A kind collection.
pub(super) async fn kind(
    app: &Arc<App>,
    c: &Call,
    binding: Arc<Binding>,
) -> Result<Response<super::Body>, ApiError> {
    let kind_id = binding.kind().id();
    match (&c.method, &c.query.action) {
        (&Method::GET, _) => {
            let content = c.content()?;
            let members = app.lifecycle.store().list(&c.caller.tenant, Some(&kind_id));
            let found = filtered(app, c, &content, members).await?;
            listing(app, c, &found).await
        }
        (&Method::POST, None) => create(app, c, &binding).await,
        (&Method::POST, Some(term)) => act_on_all(app, c, &kind_id, term).await,
        (&Method::DELETE, _) => dispose_all(app, c, &kind_id).await,
        _ => Err(ApiError::method_not_allowed(
            &c.path,
            "GET, HEAD, POST, DELETE",
        )),
    }
}

/// `POST` on a kind collection: a new instance with a fresh id (or the
/// `occi.core.id` given) → 201 + Location.
async fn create(
    app: &Arc<App>,
    c: &Call,
    binding: &Binding,
) -> Result<Response<super::Body>, ApiError> {
    let content = c.content()?;
    let cats = classify(app, &c.caller.tenant, &content)?;
    let here = binding.kind().id();
    match &cats.kind {
        Some(k) if *k != here => {
            return Err(ApiError::bad_request(format!(
                "Category {k}: this collection creates instances of {here}"
            )))
        }
        _ => {}
    }
    if let Some(a) = cats.actions.first() {
        return Err(ApiError::bad_request(format!(
            "Category {}: actions are invoked with POST ...?action={}",
            a.type_id(),
            a.term
        )));
    }
    let id = match content.attributes.get(CORE_ID) {
        Some(v) => {
            let id = v.as_str().unwrap_or_default().to_string();
            if !valid_id(&id) {
                return Err(ApiError::bad_request(format!(
                    "attribute {CORE_ID}: {id:?} is not a usable id (letters, digits, '-', '_', '.'; at most 128)"
                )));
            }
            id
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let location = format!("{}{id}", binding.kind().location());
    let links = link::records(app, c, &content.links)?;
    let (inst, record) = app
        .lifecycle
        .create(
            CreateRequest {
                key: c.key(&location),
                kind: here,
                attributes: given_attributes(&content),
                mixins: cats.mixins,
            },
            c.caller.credentials(),
        )
        .await?;
    link::attach(app, &inst.key, links).await?;
    tracing::info!(location = %location, plugin = %inst.plugin, "instance created");
    let mut r = c.respond(StatusCode::CREATED, c.renderer.created(c.media, &location));
    super::operation::with_operation(&mut r, c, &record);
    Ok(r)
}

/// `POST ?action=term` on a kind collection: the action on every member,
/// all checked first (one that cannot take it → nothing starts).
async fn act_on_all(
    app: &Arc<App>,
    c: &Call,
    kind_id: &str,
    term: &str,
) -> Result<Response<super::Body>, ApiError> {
    let content = c.content()?;
    let scheme = content
        .categories
        .iter()
        .find(|cat| render::class_is(cat, CategoryClass::Action) && cat.term == term)
        .map(|cat| cat.scheme.clone());
    let members = app.lifecycle.store().list(&c.caller.tenant, Some(kind_id));
    for inst in &members {
        let binding = app.lifecycle.binding_of(inst)?;
        let ok = app
            .lifecycle
            .applicable(inst, &binding)
            .iter()
            .any(|a| a.term == term && scheme.as_deref().is_none_or(|s| s == a.scheme));
        if !ok {
            return Err(ApiError::bad_request(format!(
                "{}: action '{term}' does not apply to it now (it is {}{}); nothing was started",
                inst.key.location,
                inst.phase.as_str(),
                if inst.queue.len() >= app.lifecycle.options().queue_limit {
                    ", and its queue is full"
                } else {
                    ""
                }
            )));
        }
    }
    let params = given_attributes(&content);
    let mut started = Vec::with_capacity(members.len());
    for inst in &members {
        app.lifecycle
            .start(
                &inst.key,
                scheme.as_deref(),
                term,
                &params,
                c.caller.credentials(),
            )
            .await?;
        started.push(inst.key.location.clone());
    }
    Ok(c.respond(
        StatusCode::OK,
        c.renderer
            .locations(c.media, started.iter().map(String::as_str)),
    ))
}

/// `DELETE` on a kind collection: dispose every member of the tenant.
async fn dispose_all(
    app: &Arc<App>,
    c: &Call,
    kind_id: &str,
) -> Result<Response<super::Body>, ApiError> {
    let members = app.lifecycle.store().list(&c.caller.tenant, Some(kind_id));
    let results = join_all(
        members
            .iter()
            .map(|i| app.lifecycle.dispose(&i.key, c.caller.credentials())),
    )
    .await;
    let mut continuing = false;
    let mut failures = Vec::new();
    for (inst, r) in members.iter().zip(results) {
        match r {
            Ok(Disposed::Done(_)) => {}
            Ok(Disposed::Continuing(_)) => continuing = true,
            Err(e) => failures.push((inst.key.location.clone(), ApiError::from(e))),
        }
    }
    if let Some((first_loc, first)) = failures.first() {
        let mut e = first.clone();
        e.message = format!(
            "{} of {} instances could not be disposed; {first_loc}: {}",
            failures.len(),
            members.len(),
            first.message
        );
        return Err(e);
    }
    if continuing {
        return Ok(c.respond(
            StatusCode::ACCEPTED,
            c.renderer.message(
                c.media,
                "dispose goes on in the background for some instances",
            ),
        ));
    }
    Ok(c.respond(StatusCode::OK, c.renderer.message(c.media, "OK")))
}

/// A user mixin's collection.
pub(super) async fn mixin(
    app: &Arc<App>,
    c: &Call,
    mixin: UserMixin,
) -> Result<Response<super::Body>, ApiError> {
    let id = mixin.id();
    let tenant = &c.caller.tenant;
    let store = app.lifecycle.store();
    if c.method == Method::GET {
        let content = c.content()?;
        let members: Vec<Arc<Instance>> = store
            .list(tenant, None)
            .into_iter()
            .filter(|i| i.mixins.contains(&id))
            .collect();
        let found = filtered(app, c, &content, members).await?;
        return listing(app, c, &found).await;
    }
    if !matches!(c.method, Method::POST | Method::PUT | Method::DELETE) {
        return Err(ApiError::method_not_allowed(
            &c.path,
            "GET, HEAD, POST, PUT, DELETE",
        ));
    }
    let content = c.content()?;
    let mut named = HashSet::new();
    for l in &content.locations {
        let path = c.path_of(l)?;
        if store.get(&c.key(&path)).is_none() {
            return Err(ApiError::not_found(format!(
                "X-OCCI-Location {l}: no instance there"
            )));
        }
        named.insert(path);
    }
    let everyone = c.method == Method::DELETE && named.is_empty();
    for inst in store.list(tenant, None) {
        let has = inst.mixins.contains(&id);
        let listed = named.contains(&inst.key.location);
        let want = match c.method {
            Method::POST => has || listed,
            Method::PUT => listed,
            _ => has && !(listed || everyone),
        };
        if want == has {
            continue;
        }
        let id = id.clone();
        if let Ok((_, durable)) = store.update(&inst.key, move |i| {
            if want {
                if !i.mixins.contains(&id) {
                    i.mixins.push(id);
                }
            } else {
                i.mixins.retain(|m| *m != id);
            }
            Ok::<(), ()>(())
        }) {
            durable.wait().await?;
        }
    }
    Ok(c.respond(StatusCode::OK, c.renderer.message(c.media, "OK")))
}
