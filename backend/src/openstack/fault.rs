//! Heat's and Keystone's error answers, turned into [`BackendError`]s.
//!
//! Heat answers `{"code":400,"title":"Bad Request","explanation":"…",
//! "error":{"type":"StackValidationFailed","message":"…","traceback":null}}`;
//! Keystone `{"error":{"code":401,"title":"Unauthorized","message":"…"}}`.

use std::time::Duration;

use occi_so_sdk::BackendError;
use reqwest::StatusCode;
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct Envelope {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    explanation: Option<String>,
    #[serde(default)]
    error: Option<Inner>,
}

#[derive(Deserialize, Default)]
struct Inner {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Heat's error type and message from an error body, with fallbacks for
/// bodies that are not Heat's JSON (a proxy's HTML page, say).
pub(crate) fn describe(status: StatusCode, body: &[u8]) -> (String, String) {
    let env: Envelope = serde_json::from_slice(body).unwrap_or_default();
    let inner = env.error.unwrap_or_default();
    let kind = inner
        .kind
        .or(inner.title)
        .or(env.title)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").to_string());
    let message = inner
        .message
        .filter(|m| !m.trim().is_empty())
        .or(env.explanation)
        .unwrap_or_else(|| snippet(body));
    (kind, message)
}

/// The start of a body, as text, for error messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    const MAX: usize = 300;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The mark of Heat's transient miss of one of its own internal rows: its
/// convergence engine replaces a resource's properties while the stack or
/// its events are read (`NotFound`, "ResourcePropertiesData with id ...
/// not found"). A repeated read does not meet it; it never means the stack
/// or resource asked for is absent.
pub(crate) const INTERNAL_MISS: &str = "ResourcePropertiesData with id";

/// Whether a 404's message is Heat's transient internal miss.
pub(crate) fn is_internal_miss(message: &str) -> bool {
    message.contains(INTERNAL_MISS)
}

/// The error for a non-success answer of `service` ("Heat", "Keystone")
/// that took `elapsed`.
pub(crate) fn from_status(
    service: &str,
    status: StatusCode,
    body: &[u8],
    elapsed: Duration,
) -> BackendError {
    let (kind, message) = describe(status, body);
    match status.as_u16() {
        401 => BackendError::Unauthorized {
            message: format!("{service} refused the credentials: {message}"),
        },
        403 => BackendError::Forbidden { message },
        404 => BackendError::NotFound { message },
        409 => BackendError::Conflict { kind, message },
        503 => BackendError::Unavailable {
            message: format!("{service} answered 503 ({kind}): {message}"),
        },
        504 => BackendError::Timeout {
            what: format!("{service} (a gateway answered 504: {message})"),
            after: elapsed,
        },
        400..=499 => BackendError::Rejected { kind, message },
        code => BackendError::BadGateway {
            status: code,
            message: format!("{service} answered {code} ({kind}): {message}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(code: u16, body: &str) -> BackendError {
        from_status(
            "Heat",
            StatusCode::from_u16(code).unwrap(),
            body.as_bytes(),
            Duration::from_secs(1),
        )
    }

    #[test]
    fn heat_validation_errors_keep_type_and_message() {
        let body = r#"{"code":400,"title":"Bad Request","explanation":"The server could not comply with the request since it is either malformed or otherwise incorrect.","error":{"type":"StackValidationFailed","message":"Parameter 'length' is invalid: 2 is out of range (min: 4, max: 64)","traceback":null}}"#;
        assert_eq!(
            e(400, body),
            BackendError::Rejected {
                kind: "StackValidationFailed".into(),
                message: "Parameter 'length' is invalid: 2 is out of range (min: 4, max: 64)"
                    .into()
            }
        );
    }

    #[test]
    fn statuses_map_to_their_kinds() {
        let body = r#"{"error":{"type":"StackExists","message":"The Stack (a) already exists."}}"#;
        assert!(
            matches!(e(409, body), BackendError::Conflict { kind, .. } if kind == "StackExists")
        );
        assert!(matches!(e(404, body), BackendError::NotFound { .. }));
        assert!(matches!(e(401, "{}"), BackendError::Unauthorized { .. }));
        assert!(matches!(e(403, "{}"), BackendError::Forbidden { .. }));
        assert!(
            matches!(e(503, "<html>busy</html>"), BackendError::Unavailable { message } if message.contains("busy"))
        );
        assert!(matches!(e(504, ""), BackendError::Timeout { .. }));
        assert!(
            matches!(e(500, r#"{"error":{"type":"MessagingTimeout","message":"x"}}"#),
            BackendError::BadGateway { status: 500, message } if message.contains("MessagingTimeout"))
        );
    }

    #[test]
    fn keystone_errors_use_the_title() {
        let body = r#"{"error":{"code":401,"title":"Unauthorized","message":"The request you have made requires authentication."}}"#;
        let err = from_status(
            "Keystone",
            StatusCode::UNAUTHORIZED,
            body.as_bytes(),
            Duration::ZERO,
        );
        assert!(err.to_string().contains("requires authentication"), "{err}");
    }

    #[test]
    fn long_bodies_are_cut_on_a_char_boundary() {
        let body = "é".repeat(400);
        let s = snippet(body.as_bytes());
        assert!(s.ends_with('…'));
        assert!(s.len() <= 304);
    }
}
