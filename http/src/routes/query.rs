//! The query interface (`/-/`, mirrored at `/.well-known/org/ogf/occi/-/`):
//! every kind, mixin and action, filtered by the request's Categories;
//! user-defined mixins are added with `POST` and removed with `DELETE`.
//!
//! The provider's categories change only when the registry does, so they
//! and their renderings are cached per registry generation; a request
//! without a filter from a tenant without mixins is answered from the
//! cache (no rendering work).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use http::{Method, Response, StatusCode};
use occi::{Category, CategoryClass, MediaType, Rendered};

use super::render;
use super::{App, Call};
use crate::error::ApiError;
use crate::server::layers::Body;
use occi_so_framework::mixins::UserMixin;

/// The query interface path.
pub(crate) const PATH: &str = "/-/";
/// Its well-known mirror.
pub(crate) const WELL_KNOWN_PATH: &str = "/.well-known/org/ogf/occi/-/";

struct Snapshot {
    generation: u64,
    categories: Arc<Vec<Category>>,
    ids: HashSet<String>,
    rendered: RwLock<HashMap<(MediaType, String), Rendered>>,
}

/// The provider's categories and their renderings, per registry generation.
#[derive(Default)]
pub struct QueryCache {
    snapshot: RwLock<Option<Arc<Snapshot>>>,
}

/// Every category the provider defines: the core kinds, the MCN actions,
/// and each plugin's kind (and the `orchestrator` alias) with its actions.
fn provider_categories(app: &App) -> Vec<Category> {
    let mut out = vec![
        Category::core_entity(),
        Category::core_resource(),
        Category::core_link(),
    ];
    out.extend(render::mcn_action_categories());
    out.push(render::operation_kind_category());
    out.push(render::operation_link_category());
    out.extend(render::operation_action_categories());
    let mut seen: HashSet<String> = out.iter().map(Category::type_id).collect();
    for b in app.lifecycle.registry().bindings() {
        let kind = render::kind_category(&b);
        if seen.insert(kind.type_id()) {
            out.push(kind);
        }
        for a in render::action_categories(&b) {
            if seen.insert(a.type_id()) {
                out.push(a);
            }
        }
    }
    out
}

impl QueryCache {
    fn current(&self, app: &App) -> Arc<Snapshot> {
        let generation = app.lifecycle.registry().generation();
        if let Some(s) = self
            .snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|s| s.generation == generation)
        {
            return s.clone();
        }
        let categories = provider_categories(app);
        let snap = Arc::new(Snapshot {
            generation,
            ids: categories.iter().map(Category::type_id).collect(),
            categories: Arc::new(categories),
            rendered: RwLock::new(HashMap::new()),
        });
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Some(snap.clone());
        snap
    }

    /// The provider's categories now.
    pub(crate) fn categories(&self, app: &App) -> Arc<Vec<Category>> {
        self.current(app).categories.clone()
    }

    /// Whether `id` is a provider category (kind, action, core).
    pub(crate) fn is_provider(&self, app: &App, id: &str) -> bool {
        self.current(app).ids.contains(id)
    }

    /// The unfiltered rendering of the provider's categories, cached.
    fn rendered(&self, app: &App, c: &Call) -> Result<Rendered, ApiError> {
        let s = self.current(app);
        let key = (c.media, c.renderer.base().to_string());
        if let Some(r) = s
            .rendered
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(r.clone());
        }
        let r = c.renderer.query_interface(c.media, &s.categories)?;
        let mut cache = s.rendered.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 64 {
            cache.clear(); // many Host spellings: keep it bounded
        }
        cache.insert(key, r.clone());
        Ok(r)
    }
}

/// `GET`, `POST` and `DELETE` on the query interface.
pub(crate) async fn handle(app: &Arc<App>, c: &Call) -> Result<Response<Body>, ApiError> {
    match c.method {
        Method::GET => get(app, c),
        Method::POST => define(app, c).await,
        Method::DELETE => remove(app, c).await,
        _ => Err(ApiError::method_not_allowed(
            &c.path,
            "GET, HEAD, POST, DELETE",
        )),
    }
}

fn get(app: &Arc<App>, c: &Call) -> Result<Response<Body>, ApiError> {
    let tenant = &c.caller.tenant;
    let filter = c.content()?.categories;
    let provided = app.lifecycle.registry().provided_mixins(tenant);
    if filter.is_empty() && provided.is_empty() && !app.mixins.has_any(tenant) {
        return Ok(c.respond(StatusCode::OK, app.query_cache.rendered(app, c)?));
    }
    let provider = app.query_cache.categories(app);
    let mixins: Vec<Category> = provided
        .iter()
        .map(render::provided_mixin_category)
        .chain(app.mixins.of(tenant).iter().map(render::mixin_category))
        .collect();
    let wanted = |cat: &Category| {
        filter.is_empty()
            || filter
                .iter()
                .any(|f| f.same_type(cat) && f.class.is_none_or(|k| Some(k) == cat.class))
    };
    let selected: Vec<Category> = provider
        .iter()
        .chain(mixins.iter())
        .filter(|cat| wanted(cat))
        .cloned()
        .collect();
    Ok(c.respond(
        StatusCode::OK,
        c.renderer.query_interface(c.media, &selected)?,
    ))
}

fn valid_location(l: &str) -> bool {
    l.len() >= 3
        && l.starts_with('/')
        && l.ends_with('/')
        && !l.contains("//")
        && l.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'))
}

/// `POST /-/`: define user mixins (all or none).
async fn define(app: &Arc<App>, c: &Call) -> Result<Response<Body>, ApiError> {
    let content = c.content()?;
    if content.categories.is_empty() {
        return Err(ApiError::bad_request(
            "header Category: give the mixin to define, e.g. Category: blue; scheme=\"http://example.org/tags#\"; class=\"mixin\"; location=\"/tags/blue/\"",
        ));
    }
    let tenant = &c.caller.tenant;
    let registry = app.lifecycle.registry();
    let mut new: Vec<UserMixin> = Vec::new();
    for cat in &content.categories {
        let id = cat.type_id();
        if cat.class.is_some_and(|k| k != CategoryClass::Mixin) {
            return Err(ApiError::bad_request(format!(
                "Category {id}: only mixins can be defined (class=\"mixin\")"
            )));
        }
        if !cat.scheme.ends_with('#') || !cat.scheme.contains(':') {
            return Err(ApiError::bad_request(format!(
                "Category {}: scheme {:?} must be an absolute URI ending in '#'",
                cat.term, cat.scheme
            )));
        }
        let Some(location) = cat.location.as_deref() else {
            return Err(ApiError::bad_request(format!(
                "Category {id}: location is required (a path like /tags/blue/)"
            )));
        };
        let location = super::path_of(location)?;
        if !valid_location(&location) {
            return Err(ApiError::bad_request(format!(
                "Category {id}: location {location:?} must be a path like /tags/blue/ (letters, digits, - _ .)"
            )));
        }
        if app.query_cache.is_provider(app, &id) || registry.provided_mixin(tenant, &id).is_some() {
            return Err(ApiError::conflict(format!(
                "Category {id}: the provider defines this category"
            )));
        }
        if app.mixins.by_id(tenant, &id).is_some() || new.iter().any(|m| m.id() == id) {
            return Err(ApiError::conflict(format!(
                "Category {id}: this mixin is already defined"
            )));
        }
        let taken = registry.by_location(&location).is_some()
            || app.mixins.by_location(tenant, &location).is_some()
            || new.iter().any(|m| m.location == location)
            || location == PATH
            || location.starts_with("/.well-known/")
            || location.starts_with(super::link::COLLECTION)
            || location == "/healthz/"
            || location == "/metrics/";
        if taken {
            return Err(ApiError::conflict(format!(
                "Category {id}: location {location} is already in use"
            )));
        }
        new.push(UserMixin {
            scheme: cat.scheme.clone(),
            term: cat.term.clone(),
            title: cat.title.clone(),
            location,
            rel: cat.rel.clone(),
        });
    }
    let n = new.len();
    if let Some(clash) = app
        .mixins
        .define(tenant, new)
        .await
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::conflict(format!(
            "Category {clash}: this mixin (or its location) is already defined"
        )));
    }
    tracing::info!(mixins = n, "user mixins defined");
    Ok(c.respond(StatusCode::OK, c.renderer.message(c.media, "OK")))
}

/// `DELETE /-/`: remove user mixins and every association with them.
async fn remove(app: &Arc<App>, c: &Call) -> Result<Response<Body>, ApiError> {
    let content = c.content()?;
    if content.categories.is_empty() {
        return Err(ApiError::bad_request(
            "header Category: give the mixin to delete",
        ));
    }
    let tenant = &c.caller.tenant;
    for cat in &content.categories {
        let id = cat.type_id();
        if app.query_cache.is_provider(app, &id) {
            return Err(ApiError::forbidden(format!(
                "Category {id}: provider-defined categories cannot be deleted"
            )));
        }
        if app.mixins.by_id(tenant, &id).is_none() {
            return Err(ApiError::not_found(format!(
                "Category {id}: no such user mixin"
            )));
        }
    }
    for cat in &content.categories {
        let id = cat.type_id();
        for inst in app.lifecycle.store().list(tenant, None) {
            if inst.mixins.contains(&id) {
                let r = app.lifecycle.store().update(&inst.key, |i| {
                    i.mixins.retain(|m| *m != id);
                    Ok::<(), ()>(())
                });
                if let Ok((_, durable)) = r {
                    durable.wait().await?;
                }
            }
        }
        app.mixins
            .remove(tenant, &id)
            .await
            .map_err(ApiError::internal)?;
    }
    Ok(c.respond(StatusCode::OK, c.renderer.message(c.media, "OK")))
}
