//! Errors as Heat reports them: a Heat error type name (`StackValidationFailed`,
//! `InvalidTemplateVersion`, ...), Heat's message, and where in which
//! document the fault is (a path such as `resources.server.properties.flavor`
//! and, when the source text is known, `line:column`).

use std::fmt;

/// The Heat exception class an error corresponds to. A backend answers
/// `{"error": {"type": kind.heat_type(), "message": error.message}}` with
/// HTTP status [`ErrorKind::http_status`], as Heat's API does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The document is not YAML/JSON, not a mapping, or has no version key
    /// (Heat's API answers these as `HTTPBadRequest`).
    HttpBadRequest,
    /// A size, depth or node-count limit was exceeded (`RequestLimitExceeded`).
    RequestLimitExceeded,
    /// The `heat_template_version` is missing, unknown, or a function is not
    /// supported by it.
    InvalidTemplateVersion,
    /// A top-level key that is not a section of this template version.
    InvalidTemplateSection,
    /// A parameter schema that is not valid (bad type, bad constraint).
    InvalidSchemaError,
    /// A reference to a resource that does not exist.
    InvalidTemplateReference,
    /// A `get_attr` on an attribute the resource type does not have.
    InvalidTemplateAttribute,
    /// A required parameter was given no value.
    UserParameterMissing,
    /// A parameter value was given for a parameter the template lacks.
    UnknownUserParameter,
    /// `depends_on`/references form a cycle.
    CircularDependencyException,
    /// A bad `hooks` entry in an environment's resource registry.
    InvalidBreakPointHook,
    /// A bad `restricted_actions` entry in an environment's resource registry.
    InvalidRestrictedAction,
    /// An immutable parameter was changed on update.
    ImmutableParameterModified,
    /// Everything else Heat reports while validating a stack.
    StackValidationFailed,
}

impl ErrorKind {
    /// Heat's exception class name, the `error.type` of its API answers.
    pub fn heat_type(self) -> &'static str {
        match self {
            ErrorKind::HttpBadRequest => "HTTPBadRequest",
            ErrorKind::RequestLimitExceeded => "RequestLimitExceeded",
            ErrorKind::InvalidTemplateVersion => "InvalidTemplateVersion",
            ErrorKind::InvalidTemplateSection => "InvalidTemplateSection",
            ErrorKind::InvalidSchemaError => "InvalidSchemaError",
            ErrorKind::InvalidTemplateReference => "InvalidTemplateReference",
            ErrorKind::InvalidTemplateAttribute => "InvalidTemplateAttribute",
            ErrorKind::UserParameterMissing => "UserParameterMissing",
            ErrorKind::UnknownUserParameter => "UnknownUserParameter",
            ErrorKind::CircularDependencyException => "CircularDependencyException",
            ErrorKind::InvalidBreakPointHook => "InvalidBreakPointHook",
            ErrorKind::InvalidRestrictedAction => "InvalidRestrictedAction",
            ErrorKind::ImmutableParameterModified => "ImmutableParameterModified",
            ErrorKind::StackValidationFailed => "StackValidationFailed",
        }
    }

    /// The HTTP status Heat's API gives this error (all are caller mistakes).
    pub fn http_status(self) -> u16 {
        400
    }

    /// Heat's `HTTPBadRequest` title, as in `{"code":400,"title":"Bad Request"}`.
    pub fn http_title(self) -> &'static str {
        "Bad Request"
    }
}

/// One step of a path into a document.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// Where in a document something is: `resources.server.properties.networks[0]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Path(pub Vec<Segment>);

impl Path {
    /// The empty path (the document root).
    pub fn root() -> Self {
        Path(Vec::new())
    }

    /// A path of mapping keys.
    pub fn keys<I, S>(keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Path(keys.into_iter().map(|k| Segment::Key(k.into())).collect())
    }

    /// This path with one more key.
    pub fn key(&self, k: impl Into<String>) -> Path {
        let mut p = self.clone();
        p.0.push(Segment::Key(k.into()));
        p
    }

    /// This path with one more index.
    pub fn index(&self, i: usize) -> Path {
        let mut p = self.clone();
        p.0.push(Segment::Index(i));
        p
    }

    /// True for the document root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Path {
    /// Heat's notation: keys joined by `.`, indices as `[n]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Segment::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// A place in a source text: 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One error: what Heat would say, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The Heat error type.
    pub kind: ErrorKind,
    /// The message exactly as Heat words it (it may itself start with
    /// Heat's dotted path, e.g. `resources.server: ...`).
    pub message: String,
    /// The document the error is in: the template's name (file name or
    /// `files` key) or `environment`; `None` for the root template when it
    /// has no name.
    pub document: Option<String>,
    /// Where in the document.
    pub path: Path,
    /// `line:column` of `path` in the document's source, when known.
    pub position: Option<Position>,
}

impl Error {
    /// An error of `kind` with `message` at `path`.
    pub fn new(kind: ErrorKind, message: impl Into<String>, path: Path) -> Self {
        Error {
            kind,
            message: message.into(),
            document: None,
            path,
            position: None,
        }
    }

    /// A `StackValidationFailed` at `path`.
    pub fn validation(message: impl Into<String>, path: Path) -> Self {
        Error::new(ErrorKind::StackValidationFailed, message, path)
    }

    /// Heat's `{"error": {"type", "message"}}` body for this error.
    pub fn to_heat_json(&self) -> serde_json::Value {
        serde_json::json!({
            "code": self.kind.http_status(),
            "title": self.kind.http_title(),
            "explanation": "The server could not comply with the request since it is either malformed or otherwise incorrect.",
            "error": {
                "type": self.kind.heat_type(),
                "message": self.message,
                "traceback": null,
            }
        })
    }
}

impl fmt::Display for Error {
    /// `document:line:column: path: message`, leaving out what is unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut wrote = false;
        if let Some(d) = &self.document {
            f.write_str(d)?;
            wrote = true;
        }
        if let Some(p) = self.position {
            if wrote {
                f.write_str(":")?;
            } else {
                f.write_str("line ")?;
            }
            write!(f, "{p}")?;
            wrote = true;
        }
        if !self.path.is_root() {
            let path = self.path.to_string();
            if !self.message.starts_with(&path) {
                if wrote {
                    f.write_str(": ")?;
                }
                f.write_str(&path)?;
                wrote = true;
            }
        }
        if wrote {
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Every error found, in the order Heat would check them: `first()` is the
/// one Heat itself would report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Errors(pub Vec<Error>);

impl Errors {
    /// No errors yet.
    pub fn new() -> Self {
        Errors(Vec::new())
    }
    /// Adds one.
    pub fn push(&mut self, e: Error) {
        self.0.push(e);
    }
    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// The error Heat would report (the first in Heat's order of checks).
    pub fn first(&self) -> Option<&Error> {
        self.0.first()
    }
    /// Iterates over them.
    pub fn iter(&self) -> std::slice::Iter<'_, Error> {
        self.0.iter()
    }
    /// `Ok(v)` when empty, else `Err(self)`.
    pub fn into_result<T>(self, v: T) -> Result<T, Errors> {
        if self.0.is_empty() {
            Ok(v)
        } else {
            Err(self)
        }
    }
}

impl From<Error> for Errors {
    fn from(e: Error) -> Self {
        Errors(vec![e])
    }
}

impl IntoIterator for Errors {
    type Item = Error;
    type IntoIter = std::vec::IntoIter<Error>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Errors {
    type Item = &'a Error;
    type IntoIter = std::slice::Iter<'a, Error>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Errors {
    /// One error per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_renders_like_heat() {
        let p = Path::keys(["resources", "server", "properties", "networks"])
            .index(0)
            .key("port");
        assert_eq!(
            p.to_string(),
            "resources.server.properties.networks[0].port"
        );
    }

    #[test]
    fn display_names_document_line_and_path() {
        let mut e = Error::validation("boom", Path::keys(["outputs", "ip"]));
        e.document = Some("t.yaml".into());
        e.position = Some(Position { line: 3, column: 5 });
        assert_eq!(e.to_string(), "t.yaml:3:5: outputs.ip: boom");
        e.message = "outputs.ip: boom".into();
        assert_eq!(e.to_string(), "t.yaml:3:5: outputs.ip: boom");
    }
}
