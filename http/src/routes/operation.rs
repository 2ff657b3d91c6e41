//! `/operation/`: every accepted lifecycle request as an OCCI resource of
//! kind `http://schemas.occi-so.org/occi/so#operation`.
//!
//! * `GET /operation/` — the tenant's operations, newest first
//!   (`?instance=/orchestrator/default` for one instance's);
//! * `GET /operation/{id}` — one record: state, queue position, times,
//!   parameters (secrets masked), the error chain;
//! * `POST /operation/{id}?action=cancel` — a queued one leaves its queue,
//!   a running one is cancelled (its stacks' operations too);
//! * `POST /operation/{id}?action=retry` — a failed or cancelled one runs
//!   again as a new operation (`202`, its location in `Operation-Location`).
//!
//! Another tenant's operation is a 404, as an unknown one is.

use std::sync::Arc;

use http::{HeaderValue, Method, Response, StatusCode};
use occi::Resource;
use occi_so_framework::lifecycle::Accepted;
use occi_so_framework::operation::{OpState, OperationRecord, COLLECTION};

use super::{render, App, Body, Call};
use crate::error::ApiError;

/// The header that names an accepted request's operation record.
pub(super) const OPERATION_LOCATION: &str = "operation-location";

impl App {
    /// An operation record as an OCCI resource.
    pub(crate) fn operation_of(&self, r: &OperationRecord) -> Resource {
        let secret = |name: &str| {
            self.lifecycle
                .registry()
                .by_name(&r.plugin)
                .is_some_and(|b| b.schema.is_secret(name))
        };
        render::operation_resource(r, self.lifecycle.position(r), secret)
    }

    /// The answer to an accepted request: the instance rendered (200), or,
    /// when the operation waits behind another, the operation (202); both
    /// name the operation in `Operation-Location`.
    pub(crate) async fn accepted(
        &self,
        c: &Call,
        a: &Accepted,
    ) -> Result<Response<Body>, ApiError> {
        let mut r = if a.queued() {
            let rendered = c
                .renderer
                .resource(c.media, &self.operation_of(&a.operation))?;
            c.respond(StatusCode::ACCEPTED, rendered)
        } else {
            self.show(c, &a.instance).await?
        };
        with_operation(&mut r, c, &a.operation);
        Ok(r)
    }
}

/// Adds `Operation-Location: <url of the record>`.
pub(super) fn with_operation(r: &mut Response<Body>, c: &Call, op: &OperationRecord) {
    if let Ok(v) = HeaderValue::from_str(&c.renderer.url(&op.location())) {
        r.headers_mut().insert(OPERATION_LOCATION, v);
    }
}

/// Routes `/operation/` and `/operation/{id}`.
pub(super) async fn handle(app: &Arc<App>, c: &Call) -> Result<Response<Body>, ApiError> {
    let id = c.path.strip_prefix(COLLECTION).unwrap_or_default();
    let tenant = c.caller.tenant.as_str();
    if id.is_empty() {
        if c.method != Method::GET {
            return Err(ApiError::method_not_allowed(&c.path, "GET, HEAD"));
        }
        let instance = match c.query.instance.as_deref() {
            Some(l) => Some(c.path_of(l)?),
            None => None,
        };
        let records = app.lifecycle.operations(tenant, instance.as_deref());
        let resources: Vec<Resource> = records.iter().map(|r| app.operation_of(r)).collect();
        return Ok(c.respond(StatusCode::OK, c.renderer.collection(c.media, &resources)));
    }
    match (&c.method, c.query.action.as_deref()) {
        (&Method::GET, None) => {
            let r = app.lifecycle.operation(tenant, id)?;
            Ok(c.respond(
                StatusCode::OK,
                c.renderer.resource(c.media, &app.operation_of(&r))?,
            ))
        }
        (&Method::POST, Some("cancel")) => {
            let r = app.lifecycle.cancel(tenant, id).await?;
            let status = if r.state == OpState::Running {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            Ok(c.respond(status, c.renderer.resource(c.media, &app.operation_of(&r))?))
        }
        (&Method::POST, Some("retry")) => {
            let a = app
                .lifecycle
                .retry(tenant, id, c.caller.credentials())
                .await?;
            let mut r = c.respond(
                StatusCode::ACCEPTED,
                c.renderer
                    .resource(c.media, &app.operation_of(&a.operation))?,
            );
            with_operation(&mut r, c, &a.operation);
            Ok(r)
        }
        (&Method::POST, Some(other)) => Err(ApiError::bad_request(format!(
            "?action={other}: an operation's actions are cancel and retry{}",
            occi_so_framework::lifecycle::closest(other, &["cancel".into(), "retry".into()])
                .map(|s| format!(" (did you mean {s}?)"))
                .unwrap_or_default()
        ))),
        (&Method::POST, None) => Err(ApiError::bad_request(
            "an operation is changed only by its actions: POST ?action=cancel or ?action=retry",
        )),
        _ => Err(ApiError::method_not_allowed(&c.path, "GET, HEAD, POST")),
    }
}
