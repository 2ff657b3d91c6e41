//! `--auth static`: a token file, one `TOKEN TENANT [TENANT...]` per line
//! (`*` = any tenant; `#` starts a comment line).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::AuthError;

/// Why the token file cannot be used (the message names file and line,
/// never a token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token file {path}: {message}")]
pub struct TokenFileError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// What is wrong inside a token file (never names a token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Malformed {
    /// A token without tenants.
    #[error("line {0}: a token needs at least one tenant (or *)")]
    NoTenant(usize),
    /// A token listed on two lines.
    #[error("line {0}: this token is listed twice")]
    Twice(usize),
    /// Only blank and comment lines.
    #[error("no tokens")]
    Empty,
    /// A tenant no request could name.
    #[error("line {line}: tenant {tenant:?} {problem}")]
    BadTenant {
        /// Line number.
        line: usize,
        /// The tenant as written.
        tenant: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// Which tenants a token may act in.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tenants {
    Any,
    Listed(HashSet<String>),
}

/// The tokens of a token file.
#[derive(Debug, Clone)]
pub(crate) struct StaticTokens {
    tokens: HashMap<String, Tenants>,
}

impl StaticTokens {
    /// Reads and checks the file.
    pub(crate) fn load(path: &Path) -> Result<Self, TokenFileError> {
        let err = |message: String| TokenFileError {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = std::fs::metadata(path) {
                if m.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(file = %path.display(), "the token file is readable by other users; chmod 600 it");
                }
            }
        }
        let tokens = Self::parse(&text).map_err(|e| err(e.to_string()))?;
        Ok(tokens)
    }

    fn parse(text: &str) -> Result<Self, Malformed> {
        let mut tokens = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let Some(token) = words.next() else { continue };
            let tenants: Vec<&str> = words.collect();
            if tenants.is_empty() {
                return Err(Malformed::NoTenant(n + 1));
            }
            if let Some((tenant, problem)) = tenants.iter().find_map(|t| {
                (*t != "*")
                    .then(|| occi_so_sdk::tenant_name_problem(t))
                    .flatten()
                    .map(|p| (t.to_string(), p))
            }) {
                return Err(Malformed::BadTenant {
                    line: n + 1,
                    tenant,
                    problem,
                });
            }
            let entry = if tenants.contains(&"*") {
                Tenants::Any
            } else {
                Tenants::Listed(tenants.iter().map(|t| t.to_string()).collect())
            };
            if tokens.insert(token.to_string(), entry).is_some() {
                return Err(Malformed::Twice(n + 1));
            }
        }
        if tokens.is_empty() {
            return Err(Malformed::Empty);
        }
        Ok(StaticTokens { tokens })
    }

    /// Whether `token` may act in `tenant`.
    pub(crate) fn check(&self, token: &str, tenant: &str) -> Result<(), AuthError> {
        match self.tokens.get(token) {
            None => Err(AuthError::InvalidToken("the token is not valid".into())),
            Some(Tenants::Any) => Ok(()),
            Some(Tenants::Listed(t)) if t.contains(tenant) => Ok(()),
            Some(Tenants::Listed(_)) => Err(AuthError::WrongTenant {
                tenant: tenant.to_string(),
                detail: String::new(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_name_the_line_and_never_the_token() {
        let e = StaticTokens::parse("ok t1\nlonely\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("line 2"), "{e}");
        assert!(!e.contains("lonely"));
        let e = StaticTokens::parse("a t\na u\n").unwrap_err().to_string();
        assert!(e.contains("twice"), "{e}");
        let e = StaticTokens::parse("# only comments\n").unwrap_err();
        assert_eq!(e, Malformed::Empty);
        assert_eq!(e.to_string(), "no tokens");
        let e = StaticTokens::parse("s3cret t1 ..\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "line 1: tenant \"..\" \"..\" is not a project name");
        assert!(!e.contains("s3cret"));
    }
}
