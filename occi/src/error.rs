//! Typed errors: where the input is wrong and what was expected there.

use std::borrow::Cow;
use std::fmt;

/// Where a parse error is: which header value, body line or JSON position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The `index`-th (0-based) line of header `name` in the request.
    Header {
        /// Canonical header name (`Category`, `X-OCCI-Attribute`, ...).
        name: &'static str,
        /// Which of the repeated header lines.
        index: usize,
    },
    /// A line of a `text/plain` or `text/uri-list` body (1-based; a folded
    /// line counts from its first physical line).
    BodyLine {
        /// Line number.
        line: usize,
    },
    /// An `application/occi+json` body (1-based line and column; 0 when the
    /// document parsed as JSON but its content is wrong).
    Json {
        /// Line.
        line: usize,
        /// Column.
        column: usize,
    },
    /// A single value given to a parse function directly.
    Value,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Header { name, index: 0 } => write!(f, "header {name}"),
            Origin::Header { name, index } => write!(f, "header {name} (line {})", index + 1),
            Origin::BodyLine { line } => write!(f, "body line {line}"),
            Origin::Json { line: 0, .. } => f.write_str("JSON body"),
            Origin::Json { line, column } => write!(f, "JSON body line {line} column {column}"),
            Origin::Value => f.write_str("value"),
        }
    }
}

/// A request part that is not valid OCCI: where, at which byte, what was
/// expected there and what was found. Maps to `400 Bad Request`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// The header value, body line or JSON body at fault.
    pub origin: Origin,
    /// Byte offset within that header value or body line (0 for JSON; see
    /// the origin's line/column).
    pub position: usize,
    /// What the grammar expected at that point.
    pub expected: Cow<'static, str>,
    /// The start of what was found there (at most 32 characters), if any.
    pub found: Option<String>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.origin {
            Origin::Json { .. } => write!(f, "{}: expected {}", self.origin, self.expected)?,
            _ => write!(
                f,
                "{} at byte {}: expected {}",
                self.origin, self.position, self.expected
            )?,
        }
        match (&self.found, &self.origin) {
            (Some(found), _) => write!(f, ", found {found:?}"),
            (None, Origin::Json { .. }) => Ok(()),
            (None, _) => f.write_str(", found the end"),
        }
    }
}

impl ParseError {
    /// An error at `position` in `input` (a header value or body line).
    pub(crate) fn at(
        origin: Origin,
        input: &str,
        position: usize,
        expected: impl Into<Cow<'static, str>>,
    ) -> Self {
        let position = position.min(input.len());
        let rest = input.get(position..).unwrap_or("");
        let found = if rest.is_empty() {
            None
        } else {
            let mut s: String = rest.chars().take(32).collect();
            if s.len() < rest.len() {
                s.push('…');
            }
            Some(s)
        };
        ParseError {
            origin,
            position,
            expected: expected.into(),
            found,
        }
    }
}

/// Why a request could not be read. The server maps `UnsupportedMediaType`
/// to 415 and `Parse` to 400.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The `Content-Type` is none of the OCCI renderings.
    #[error("unsupported Content-Type '{0}': send text/plain, text/occi, text/uri-list or application/occi+json")]
    UnsupportedMediaType(String),
    /// OCCI headers came under a `Content-Type` the server does not read
    /// headers for (`text/html`, a form...): 415, nothing read.
    #[error("OCCI headers ({headers}) under Content-Type '{content_type}': send them as text/occi (or in a text/plain or application/occi+json body)")]
    HeadersUnderUnsupportedType {
        /// The type sent.
        content_type: String,
        /// The OCCI header names present.
        headers: String,
    },
    /// A `text/occi` request carried a body: OCCI is read from its headers
    /// only, so the body would be ignored (400).
    #[error("a text/occi request carries OCCI in its headers: its body ({bytes} bytes) would be ignored; send the body as text/plain or application/occi+json, or leave it out")]
    BodyIgnored {
        /// The body's size.
        bytes: usize,
    },
    /// A JSON request without a body carried OCCI headers, which a JSON
    /// request does not read (400).
    #[error("an application/occi+json request without a body: its OCCI headers ({headers}) would be ignored; put them in the JSON body, or send them as text/occi")]
    HeadersIgnored {
        /// The OCCI header names present.
        headers: String,
    },
    /// The content is not valid OCCI.
    #[error(transparent)]
    Parse(#[from] ParseError),
}

/// Why a response could not be rendered in the asked type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// `text/uri-list` was asked for something that is not a listing
    /// (OCCI: 400 Bad Request).
    #[error("text/uri-list renders only collections (lists of locations); ask for text/plain, text/occi or application/occi+json")]
    UriListNotApplicable,
}

/// No rendering this crate offers is acceptable (406 Not Acceptable).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("none of the accepted types '{0}' is offered: text/plain, text/occi, text/uri-list, application/occi+json")]
pub struct NotAcceptable(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_origin_byte_expectation_and_found_text() {
        let e = ParseError::at(
            Origin::Header {
                name: "Category",
                index: 1,
            },
            "foo; sheme=\"x\"",
            5,
            "a category parameter",
        );
        assert_eq!(
            e.to_string(),
            "header Category (line 2) at byte 5: expected a category parameter, found \"sheme=\\\"x\\\"\""
        );
        let e = ParseError::at(Origin::BodyLine { line: 3 }, "abc", 3, "'='");
        assert_eq!(
            e.to_string(),
            "body line 3 at byte 3: expected '=', found the end"
        );
    }
}
