//! One instance: `GET` (state), `PUT` (create, or update what is given),
//! `POST` (partial update, or `?action=term`), `DELETE` (dispose).
//!
//! The MCN service-orchestrator contract is this module:
//! `PUT /orchestrator/default` → `design` (201 + Location);
//! `POST ...?action=deploy|provision` → started, answered at once (200 +
//! rendering showing `occi.so.operation`); `POST` with attributes →
//! `update`; `GET` → `occi.core.id`, `occi.mcn.stack.id`,
//! `occi.mcn.stack.state`, every stack output, the action links valid now;
//! `DELETE` → `dispose` (200 when done, 202 when it goes on).

use std::sync::Arc;

use http::{Method, Response, StatusCode};
use occi::{Category, CategoryClass, Content, Resource};
use occi_so_sdk::StateReport;
use serde_json::Value;

use super::render::{self, MCN_ACTIONS};
use super::{link, operation, watch, App, Call};
use crate::error::ApiError;
use occi_so_framework::lifecycle::{
    Accepted, CreateRequest, Disposed, LifecycleError, Preview, Updated,
};
use occi_so_framework::registry::{Binding, CORE_RESOURCE};
use occi_so_framework::store::{Instance, InstanceKey};

/// Longest instance id.
const MAX_ID: usize = 128;

/// Whether `id` is a usable last path segment.
pub(super) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The categories of a request, resolved against this server.
#[derive(Debug, Default)]
pub(super) struct Categories {
    /// The kind (type id), if one was named.
    pub kind: Option<String>,
    /// Mixin ids (the tenant's user mixins and the provided ones).
    pub mixins: Vec<String>,
    /// Action categories.
    pub actions: Vec<Category>,
}

/// Sorts a request's categories into kind, mixins and actions; any
/// category this server does not know is a 400 naming it.
pub(super) fn classify(app: &App, tenant: &str, content: &Content) -> Result<Categories, ApiError> {
    let registry = app.lifecycle.registry();
    let mut out = Categories::default();
    for c in &content.categories {
        let id = c.type_id();
        let is_kind = registry.by_kind(&id).is_some()
            || matches!(id.as_str(), occi::ENTITY | occi::RESOURCE | occi::LINK);
        let is_mixin = app.mixins.by_id(tenant, &id).is_some()
            || registry.provided_mixin(tenant, &id).is_some();
        let is_action = MCN_ACTIONS
            .iter()
            .any(|(t, _)| c.scheme == occi_so_sdk::MCN_SERVICE_SCHEME && c.term == *t)
            || app.query_cache.is_provider(app, &id) && !is_kind;
        let class = match c.class {
            Some(k) => k,
            None if is_kind => CategoryClass::Kind,
            None if is_mixin => CategoryClass::Mixin,
            None if is_action => CategoryClass::Action,
            None => {
                return Err(ApiError::bad_request(format!(
                    "Category {id}: this server has no kind, mixin or action with that scheme and term (GET /-/ lists them)"
                )))
            }
        };
        match class {
            CategoryClass::Kind => {
                if !is_kind {
                    return Err(LifecycleError::UnknownKind(format!(
                        "{id} (GET /-/ lists the kinds)"
                    ))
                    .into());
                }
                if let Some(k) = &out.kind {
                    if *k != id {
                        return Err(ApiError::bad_request(format!(
                            "Category: an entity has exactly one kind; the request names {k} and {id}"
                        )));
                    }
                }
                out.kind = Some(id);
            }
            CategoryClass::Mixin => {
                if !is_mixin {
                    return Err(ApiError::bad_request(format!(
                        "Category {id}: no such mixin (define it with POST /-/)"
                    )));
                }
                if !out.mixins.contains(&id) {
                    out.mixins.push(id);
                }
            }
            CategoryClass::Action => out.actions.push(c.clone()),
        }
    }
    Ok(out)
}

/// The request's attributes as (name, JSON value) pairs, in order.
pub(super) fn given_attributes(content: &Content) -> Vec<(String, Value)> {
    content
        .attributes
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_json()))
        .collect()
}

impl App {
    /// The plugin's state report for `inst` (stack snapshots only when
    /// its plugin is gone).
    pub(crate) async fn report(&self, inst: &Instance) -> Result<StateReport, ApiError> {
        match self.lifecycle.state(inst).await {
            Ok(r) => Ok(r),
            Err(LifecycleError::PluginGone(_)) => Ok(StateReport::from_stacks(&inst.stacks)),
            Err(e) => Err(e.into()),
        }
    }

    /// An instance as an OCCI resource, with the actions valid now.
    pub(crate) async fn resource_of(&self, inst: &Instance) -> Result<Resource, ApiError> {
        let report = self.report(inst).await?;
        let binding = self.lifecycle.binding_of(inst).ok();
        let actions = binding
            .as_ref()
            .map(|b| self.lifecycle.applicable(inst, b))
            .unwrap_or_default();
        Ok(render::resource(
            inst,
            binding.as_deref(),
            &report,
            &actions,
        ))
    }

    /// `200` with the instance's current rendering.
    pub(crate) async fn show(
        &self,
        c: &Call,
        inst: &Instance,
    ) -> Result<Response<super::Body>, ApiError> {
        let r = self.resource_of(inst).await?;
        Ok(c.respond(StatusCode::OK, c.renderer.resource(c.media, &r)?))
    }
}

/// Routes a request for the instance `id` in the collection of `binding`.
pub(super) async fn handle(
    app: &Arc<App>,
    c: &Call,
    binding: Arc<Binding>,
    id: &str,
) -> Result<Response<super::Body>, ApiError> {
    if !valid_id(id) {
        return Err(ApiError::not_found(format!(
            "{}: an instance id is 1-{MAX_ID} letters, digits, '-', '_' or '.'",
            c.path
        )));
    }
    let key = c.key(&c.path);
    match c.method {
        Method::GET if c.query.watch => watch::stream(app, c, key),
        Method::GET => {
            let inst = app.lifecycle.get(&key)?;
            app.show(c, &inst).await
        }
        Method::PUT => put(app, c, &binding, key).await,
        Method::POST => match &c.query.action {
            Some(term) => action(app, c, key, term).await,
            None => update(app, c, key).await,
        },
        Method::DELETE => dispose(app, c, key).await,
        _ => Err(ApiError::method_not_allowed(
            &c.path,
            "GET, HEAD, PUT, POST, DELETE",
        )),
    }
}

/// `PUT`: create the instance (201 + Location), or update the attributes
/// given (200 + rendering) when it exists. Action links in the body (a
/// GET rendering put back) are ignored; echoed values change nothing.
async fn put(
    app: &Arc<App>,
    c: &Call,
    binding: &Binding,
    key: InstanceKey,
) -> Result<Response<super::Body>, ApiError> {
    let content = c.content()?;
    let cats = classify(app, &c.caller.tenant, &content)?;
    if let Some(a) = cats.actions.first() {
        return Err(ApiError::bad_request(format!(
            "Category {}: actions are invoked with POST {}?action={}",
            a.type_id(),
            c.path,
            a.term
        )));
    }
    let here = binding.kind().id();
    let kind = cats.kind.clone().unwrap_or_else(|| here.clone());
    match app.lifecycle.get(&key) {
        Err(LifecycleError::NotFound(_)) => {
            if kind != here {
                return Err(wrong_collection(app, &kind, &c.path));
            }
            let links = link::records(app, c, &content.links)?;
            let (inst, record) = app
                .lifecycle
                .create(
                    CreateRequest {
                        key: key.clone(),
                        kind,
                        attributes: given_attributes(&content),
                        mixins: cats.mixins,
                    },
                    c.caller.credentials(),
                )
                .await?;
            link::attach(app, &inst.key, links).await?;
            tracing::info!(location = %inst.key.location, plugin = %inst.plugin, "instance created");
            let mut r = c.respond(
                StatusCode::CREATED,
                c.renderer.created(c.media, &inst.key.location),
            );
            operation::with_operation(&mut r, c, &record);
            Ok(r)
        }
        Err(e) => Err(e.into()),
        Ok(inst) => {
            if cats.kind.is_some() && kind != inst.kind {
                return Err(LifecycleError::KindMismatch {
                    location: c.path.clone(),
                    existing: inst.kind.clone(),
                    requested: kind,
                }
                .into());
            }
            let (inst, accepted) = change(app, c, &inst, &content, &cats).await?;
            changed(app, c, inst, accepted).await
        }
    }
}

/// A kind named at another kind's collection: say where it lives.
fn wrong_collection(app: &App, kind: &str, path: &str) -> ApiError {
    if matches!(kind, occi::ENTITY | occi::LINK) || kind == CORE_RESOURCE {
        return ApiError::bad_request(format!(
            "Category {kind}: the core kinds cannot be instantiated; use a service kind (GET /-/ lists them)"
        ));
    }
    match app.lifecycle.registry().by_kind(kind) {
        Some(b) => ApiError::bad_request(format!(
            "Category {kind}: instances of this kind live under {}, not {path}",
            b.kind().location()
        )),
        None => LifecycleError::UnknownKind(kind.to_string()).into(),
    }
}

/// Applies what a `PUT` on an existing instance or a `POST` carries:
/// attributes (checked; echoes dropped), mixins and links.
async fn change(
    app: &Arc<App>,
    c: &Call,
    inst: &Instance,
    content: &Content,
    cats: &Categories,
) -> Result<(Arc<Instance>, Option<Accepted>), ApiError> {
    let given = given_attributes(content);
    let mut current = app.lifecycle.get(&inst.key)?;
    let mut accepted = None;
    if !given.is_empty() {
        let report = app.report(inst).await?;
        let reported = render::reported(inst, &report);
        match app
            .lifecycle
            .update(&inst.key, &given, &reported, c.caller.credentials())
            .await?
        {
            Updated::Unchanged(i) | Updated::Stored(i) => current = i,
            Updated::Accepted(a) => {
                current = a.instance.clone();
                accepted = Some(a);
            }
        }
    }
    let new_mixins: Vec<String> = cats
        .mixins
        .iter()
        .filter(|m| !current.mixins.contains(m))
        .cloned()
        .collect();
    if !new_mixins.is_empty() {
        let (updated, durable) = app
            .lifecycle
            .store()
            .update(&inst.key, |i| {
                for m in &new_mixins {
                    if !i.mixins.contains(m) {
                        i.mixins.push(m.clone());
                    }
                }
                Ok::<(), ()>(())
            })
            .map_err(|_| ApiError::not_found(format!("no instance at {}", c.path)))?;
        durable.wait().await?;
        current = updated;
    }
    if !content.links.is_empty() {
        current = link::add_inline(app, c, &current, &content.links).await?;
    }
    Ok((current, accepted))
}

/// The answer to a change: the instance, or the accepted update.
async fn changed(
    app: &Arc<App>,
    c: &Call,
    current: Arc<Instance>,
    accepted: Option<Accepted>,
) -> Result<Response<super::Body>, ApiError> {
    match accepted {
        Some(mut a) => {
            a.instance = current;
            app.accepted(c, &a).await
        }
        None => app.show(c, &current).await,
    }
}

/// `POST` without `?action`: partial update.
async fn update(
    app: &Arc<App>,
    c: &Call,
    key: InstanceKey,
) -> Result<Response<super::Body>, ApiError> {
    let content = c.content()?;
    let inst = app.lifecycle.get(&key)?;
    let cats = classify(app, &c.caller.tenant, &content)?;
    if let Some(k) = &cats.kind {
        if *k != inst.kind {
            return Err(ApiError::bad_request(format!(
                "Category {k}: the kind of an entity cannot change (it is {})",
                inst.kind
            )));
        }
    }
    if let Some(a) = cats.actions.first() {
        return Err(ApiError::bad_request(format!(
            "Category {}: to invoke an action, POST {}?action={}",
            a.type_id(),
            c.path,
            a.term
        )));
    }
    if c.query.preview {
        let report = app.report(&inst).await?;
        let reported = render::reported(&inst, &report);
        let p = app
            .lifecycle
            .preview(
                &key,
                None,
                None,
                &given_attributes(&content),
                &reported,
                c.caller.credentials(),
            )
            .await?;
        return Ok(preview_answer(&p));
    }
    let (inst, accepted) = change(app, c, &inst, &content, &cats).await?;
    changed(app, c, inst, accepted).await
}

/// A preview as JSON: each stack and resource with what would happen.
fn preview_answer(p: &Preview) -> Response<super::Body> {
    let body = serde_json::json!({
        "operation": p.operation,
        "stacks": p.stacks,
        "incomplete": p.incomplete,
    });
    let mut r = Response::new(super::full(bytes::Bytes::from(
        serde_json::to_vec_pretty(&body).unwrap_or_default(),
    )));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// `POST ?action=term`: start the action; answered as soon as it is
/// accepted.
async fn action(
    app: &Arc<App>,
    c: &Call,
    key: InstanceKey,
    term: &str,
) -> Result<Response<super::Body>, ApiError> {
    let content = c.content()?;
    let actions: Vec<&Category> = content
        .categories
        .iter()
        .filter(|cat| render::class_is(cat, CategoryClass::Action) && cat.term == term)
        .collect();
    let registry = app.lifecycle.registry();
    let others: Vec<&Category> = content
        .categories
        .iter()
        .filter(|cat| match cat.class {
            Some(CategoryClass::Action) => cat.term != term,
            // MCN callers leave the class out; a kind named along is fine.
            None => cat.term != term && registry.by_kind(&cat.type_id()).is_none(),
            Some(_) => false,
        })
        .collect();
    if let Some(o) = others.first() {
        return Err(ApiError::bad_request(format!(
            "Category {}: the request's action Category must be the one in ?action={term}",
            o.type_id()
        )));
    }
    let scheme = match actions.as_slice() {
        [] => None,
        [one] => Some(one.scheme.as_str()),
        [first, rest @ ..] => {
            if rest.iter().any(|r| r.scheme != first.scheme) {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("Category: several actions named {term} with different schemes"),
                ));
            }
            Some(first.scheme.as_str())
        }
    };
    let params = given_attributes(&content);
    if c.query.preview {
        let p = app
            .lifecycle
            .preview(
                &key,
                scheme,
                Some(term),
                &params,
                &Default::default(),
                c.caller.credentials(),
            )
            .await?;
        return Ok(preview_answer(&p));
    }
    let accepted = app
        .lifecycle
        .start(&key, scheme, term, &params, c.caller.credentials())
        .await?;
    app.accepted(c, &accepted).await
}

/// `DELETE`: dispose (200 when done; 202 when it goes on in the background).
async fn dispose(
    app: &Arc<App>,
    c: &Call,
    key: InstanceKey,
) -> Result<Response<super::Body>, ApiError> {
    if c.query.preview {
        let p = app
            .lifecycle
            .preview(
                &key,
                None,
                Some("dispose"),
                &[],
                &Default::default(),
                c.caller.credentials(),
            )
            .await?;
        return Ok(preview_answer(&p));
    }
    match app.lifecycle.dispose(&key, c.caller.credentials()).await? {
        Disposed::Done(record) => {
            tracing::info!(location = %key.location, "instance disposed");
            let mut r = c.respond(StatusCode::OK, c.renderer.message(c.media, "OK"));
            operation::with_operation(&mut r, c, &record);
            Ok(r)
        }
        Disposed::Continuing(record) => {
            let mut r = c.respond(
                StatusCode::ACCEPTED,
                c.renderer.message(
                    c.media,
                    &format!(
                        "dispose goes on in the background ({}); GET {} shows its progress until it is gone",
                        record.location(),
                        key.location
                    ),
                ),
            );
            operation::with_operation(&mut r, c, &record);
            Ok(r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(valid_id("default"));
        assert!(valid_id("3f2c-aa_b.c"));
        assert!(!valid_id(""));
        assert!(!valid_id("-x"));
        assert!(!valid_id("a b"));
        assert!(!valid_id(&"a".repeat(129)));
    }
}
