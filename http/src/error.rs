//! The one place where errors become HTTP statuses.
//!
//! Every failure a request can meet (OCCI parsing, content negotiation,
//! authentication, the lifecycle, plugins, backends, the journal) converts
//! into an [`ApiError`]: a status, a message that names the header,
//! attribute or line at fault, and the headers the status needs
//! (`WWW-Authenticate`, `Allow`, `Retry-After`). The routes render it in
//! the client's media type.

use http::{HeaderName, HeaderValue, StatusCode};
use occi_so_sdk::{BackendError, PluginError, Refusal};

use crate::auth::AuthError;
use occi_so_framework::lifecycle::LifecycleError;
use occi_so_framework::registry::RegistryError;
use occi_so_framework::schema::AttributeError;
use occi_so_framework::store::JournalError;
use occi_so_runtime::SourceError;

/// An error answer: status, message, extra headers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, for the caller (never a secret, never internals).
    pub message: String,
    /// Headers the status needs.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl ApiError {
    /// An error with `status` and `message`.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// 400.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 403.
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 409.
    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 405 with the allowed methods.
    pub(crate) fn method_not_allowed(path: &str, allowed: &'static str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{path} allows {allowed}"),
        )
        .with_header(http::header::ALLOW, HeaderValue::from_static(allowed))
    }

    /// 500 for a failure inside the server; the detail goes to the log only.
    pub(crate) fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error: the server failed while answering; the X-Request-Id header identifies this request in its log",
        )
    }

    /// Adds a header.
    pub(crate) fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl From<occi::RequestError> for ApiError {
    fn from(e: occi::RequestError) -> Self {
        match e {
            occi::RequestError::UnsupportedMediaType(_)
            | occi::RequestError::HeadersUnderUnsupportedType { .. } => {
                Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, e.to_string())
            }
            occi::RequestError::BodyIgnored { .. } | occi::RequestError::HeadersIgnored { .. } => {
                Self::bad_request(e.to_string())
            }
            occi::RequestError::Parse(p) => p.into(),
        }
    }
}

impl From<occi::ParseError> for ApiError {
    fn from(e: occi::ParseError) -> Self {
        Self::bad_request(e.to_string())
    }
}

impl From<occi::RenderError> for ApiError {
    fn from(e: occi::RenderError) -> Self {
        Self::bad_request(e.to_string())
    }
}

impl From<occi::NotAcceptable> for ApiError {
    fn from(e: occi::NotAcceptable) -> Self {
        Self::new(StatusCode::NOT_ACCEPTABLE, format!("header Accept: {e}"))
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let status = match &e {
            AuthError::MissingToken
            | AuthError::MissingTenant
            | AuthError::BadHeader { .. }
            | AuthError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            AuthError::WrongTenant { .. } => StatusCode::FORBIDDEN,
            AuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self::new(status, e.to_string())
    }
}

impl From<AttributeError> for ApiError {
    fn from(e: AttributeError) -> Self {
        match e {
            // OCCI: an attempt to change an immutable attribute is 403.
            AttributeError::Immutable { .. } => Self::forbidden(e.to_string()),
            _ => Self::bad_request(e.to_string()),
        }
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        let status = match &e {
            BackendError::Rejected { .. } => StatusCode::BAD_REQUEST,
            BackendError::NotFound { .. } => StatusCode::NOT_FOUND,
            BackendError::Conflict { .. } => StatusCode::CONFLICT,
            BackendError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            BackendError::Forbidden { .. } => StatusCode::FORBIDDEN,
            BackendError::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            BackendError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            BackendError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            BackendError::StackFailed { .. } => StatusCode::BAD_GATEWAY,
            BackendError::Internal(_) => return Self::internal(e),
        };
        Self::new(status, e.to_string())
    }
}

impl From<PluginError> for ApiError {
    fn from(e: PluginError) -> Self {
        match e {
            PluginError::InvalidAttribute { .. }
            | PluginError::Invalid(_)
            | PluginError::NotApplicable { .. } => Self::bad_request(e.to_string()),
            PluginError::Backend(b) => b.into(),
            PluginError::Refused { refusal, .. } => {
                let status = match refusal {
                    Refusal::Invalid => StatusCode::BAD_REQUEST,
                    Refusal::Unauthenticated => StatusCode::UNAUTHORIZED,
                    Refusal::Forbidden => StatusCode::FORBIDDEN,
                    Refusal::NotFound => StatusCode::NOT_FOUND,
                    Refusal::Conflict => StatusCode::CONFLICT,
                    Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                };
                Self::new(status, e.to_string())
            }
            PluginError::Upstream { .. } => Self::new(StatusCode::BAD_GATEWAY, e.to_string()),
            // The plugin's own account of a run-time failure: worth telling.
            PluginError::Failed(_) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Invalid { .. } => Self::bad_request(e.to_string()),
            RegistryError::NotFound(_) => Self::not_found(e.to_string()),
            RegistryError::NameTaken(_)
            | RegistryError::KindTaken { .. }
            | RegistryError::LocationTaken { .. }
            | RegistryError::InUse { .. } => Self::conflict(e.to_string()),
        }
    }
}

impl From<SourceError> for ApiError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::Load(_) | SourceError::Invalid(_) => Self::bad_request(e.to_string()),
            SourceError::Registry(r) => r.into(),
            SourceError::Plugin(p) => p.into(),
            SourceError::Internal(m) => Self::internal(m),
        }
    }
}

impl From<JournalError> for ApiError {
    fn from(e: JournalError) -> Self {
        Self::internal(format!("journal: {e}"))
    }
}

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::NotFound(_) => Self::not_found(e.to_string()),
            LifecycleError::Exists(_) | LifecycleError::KindMismatch { .. } => {
                Self::conflict(e.to_string())
            }
            LifecycleError::UnknownKind(_) => Self::bad_request(e.to_string()),
            LifecycleError::PluginGone(_) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            LifecycleError::Attribute(a) => a.into(),
            LifecycleError::NotApplicable { .. } | LifecycleError::NoSuchAction { .. } => {
                Self::bad_request(e.to_string())
            }
            LifecycleError::Busy { .. } | LifecycleError::OperationState { .. } => {
                Self::conflict(e.to_string())
            }
            LifecycleError::NoSuchOperation(_) => Self::not_found(e.to_string()),
            LifecycleError::Plugin(p) => p.into(),
            LifecycleError::Journal(j) => j.into(),
            LifecycleError::ShuttingDown => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
                    .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("5"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_errors_map_to_the_documented_statuses() {
        let s = |e: LifecycleError| ApiError::from(e).status.as_u16();
        assert_eq!(s(LifecycleError::NotFound("/x".into())), 404);
        assert_eq!(
            s(LifecycleError::Busy {
                running: "deploy".into(),
                location: "/operation/1".into(),
                since: "2026-12-03T10:00:00Z".into(),
                queued: 16,
            }),
            409
        );
        assert_eq!(
            s(LifecycleError::NotApplicable {
                action: "provision".into(),
                phase: "initialised",
                applicable: vec!["deploy".into()]
            }),
            400
        );
        assert_eq!(
            s(LifecycleError::Attribute(AttributeError::Immutable {
                name: "a".into(),
                why: String::new()
            })),
            403
        );
        assert_eq!(s(LifecycleError::UnknownKind("k".into())), 400);
        assert_eq!(
            s(LifecycleError::Plugin(PluginError::Backend(
                BackendError::Unavailable {
                    message: "down".into()
                }
            ))),
            503
        );
        assert_eq!(s(LifecycleError::ShuttingDown), 503);
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let e = ApiError::from(JournalError::Io {
            path: "/secret/place".into(),
            message: "disk full".into(),
        });
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message.contains("/secret/place"));
    }

    #[test]
    fn auth_errors_are_401_403_or_503() {
        assert_eq!(ApiError::from(AuthError::MissingToken).status, 401);
        assert_eq!(
            ApiError::from(AuthError::WrongTenant {
                tenant: "t".into(),
                detail: String::new()
            })
            .status,
            403
        );
        assert_eq!(
            ApiError::from(AuthError::Unavailable("x".into())).status,
            503
        );
    }
}
