//! Who is calling: `X-Auth-Token` and `X-Tenant-Name` checked by the
//! configured mode, giving the tenant every request acts in.
//!
//! * `none` (development): no token check. The tenant is `X-Tenant-Name`,
//!   or the default tenant when the header is missing; a token, if sent,
//!   is passed on to the backend.
//! * `static`: tokens from a file, each valid for listed tenants (or `*`).
//! * `keystone`: Keystone v3 validation (`GET /v3/auth/tokens` with
//!   `X-Subject-Token`), cached until the token expires (at most the
//!   configured cache time); the token's project name (or id) must be the
//!   tenant.
//!
//! Tokens never appear in logs or messages (they travel as
//! [`occi_so_sdk::Secret`]).

mod keystone;
mod tokens;

use http::{HeaderMap, HeaderName, HeaderValue};
use occi_so_sdk::{Credentials, Secret};

pub(crate) use keystone::Keystone;
pub(crate) use tokens::StaticTokens;
pub use tokens::TokenFileError;

use crate::AuthSettings;

/// `X-Auth-Token`.
pub(crate) const X_AUTH_TOKEN: HeaderName = HeaderName::from_static("x-auth-token");
/// `X-Tenant-Name`.
pub(crate) const X_TENANT_NAME: HeaderName = HeaderName::from_static("x-tenant-name");

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The tenant the request acts in.
    pub tenant: String,
    /// The caller's token, passed on to the backend.
    pub token: Option<Secret>,
}

impl Caller {
    /// Credentials for lifecycle calls.
    pub(crate) fn credentials(&self) -> Credentials {
        Credentials::new(self.tenant.clone(), self.token.clone())
    }
}

/// Why a request is not let in. The HTTP mapping is in `crate::error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthError {
    /// No `X-Auth-Token`.
    #[error("X-Auth-Token required: send the caller's token in the X-Auth-Token header")]
    MissingToken,
    /// No `X-Tenant-Name`.
    #[error("X-Tenant-Name required: send the tenant (project) name in the X-Tenant-Name header")]
    MissingTenant,
    /// The header is not a usable value.
    #[error("header {header}: {message}")]
    BadHeader {
        /// Header name.
        header: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The token is unknown, expired or revoked.
    #[error("X-Auth-Token: {0}")]
    InvalidToken(String),
    /// The token is valid but not for this tenant.
    #[error("X-Tenant-Name: the token is not valid for tenant '{tenant}'{detail}")]
    WrongTenant {
        /// The tenant asked for.
        tenant: String,
        /// More detail (`""` or `"; it is scoped to project 'x'"`).
        detail: String,
    },
    /// The identity service could not answer.
    #[error("cannot validate the token now: {0}")]
    Unavailable(String),
}

enum Mode {
    None { default_tenant: String },
    Static(StaticTokens),
    Keystone(Keystone),
}

/// Checks callers according to the configured mode.
pub struct Authenticator {
    mode: Mode,
    challenge: HeaderValue,
}

/// What a token looks like on the wire; anything else is refused before
/// any lookup (no control characters, bounded length).
fn header_text<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
    label: &'static str,
    max: usize,
) -> Result<Option<&'a str>, AuthError> {
    let Some(v) = headers.get(name) else {
        return Ok(None);
    };
    let s = v.to_str().map_err(|_| AuthError::BadHeader {
        header: label,
        message: "must be visible ASCII".into(),
    })?;
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if s.len() > max {
        return Err(AuthError::BadHeader {
            header: label,
            message: format!("longer than {max} characters"),
        });
    }
    Ok(Some(s))
}

fn tenant_of(headers: &HeaderMap) -> Result<Option<String>, AuthError> {
    let t = header_text(headers, &X_TENANT_NAME, "X-Tenant-Name", 255)?;
    if let Some(t) = t {
        if let Some(problem) = occi_so_sdk::tenant_name_problem(t) {
            return Err(AuthError::BadHeader {
                header: "X-Tenant-Name",
                message: problem,
            });
        }
    }
    Ok(t.map(str::to_string))
}

impl Authenticator {
    /// An authenticator for `settings` (reads the token file now).
    pub fn new(settings: &AuthSettings) -> Result<Self, TokenFileError> {
        let (mode, challenge) = match settings {
            AuthSettings::None { default_tenant } => (
                Mode::None {
                    default_tenant: default_tenant.clone(),
                },
                HeaderValue::from_static("Token realm=\"occi-so\""),
            ),
            AuthSettings::Static { token_file } => (
                Mode::Static(StaticTokens::load(token_file)?),
                HeaderValue::from_static("Token realm=\"occi-so\""),
            ),
            AuthSettings::Keystone { url, cache } => {
                let challenge = HeaderValue::from_str(&format!("Keystone uri=\"{url}\""))
                    .unwrap_or_else(|_| HeaderValue::from_static("Keystone"));
                (
                    Mode::Keystone(Keystone::new(url.clone(), *cache)),
                    challenge,
                )
            }
        };
        Ok(Authenticator { mode, challenge })
    }

    /// The `WWW-Authenticate` value sent with every 401
    /// (`Keystone uri="..."` in Keystone mode).
    pub(crate) fn challenge(&self) -> &HeaderValue {
        &self.challenge
    }

    /// The mode's name, for the start-up log.
    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            Mode::None { .. } => "none",
            Mode::Static(_) => "static",
            Mode::Keystone(_) => "keystone",
        }
    }

    /// Checks a request's headers and returns the caller.
    pub(crate) async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        let token = header_text(headers, &X_AUTH_TOKEN, "X-Auth-Token", 8192)?;
        let tenant = tenant_of(headers)?;
        match &self.mode {
            Mode::None { default_tenant } => Ok(Caller {
                tenant: tenant.unwrap_or_else(|| default_tenant.clone()),
                token: token.map(Secret::from),
            }),
            Mode::Static(tokens) => {
                let token = token.ok_or(AuthError::MissingToken)?;
                let tenant = tenant.ok_or(AuthError::MissingTenant)?;
                tokens.check(token, &tenant)?;
                Ok(Caller {
                    tenant,
                    token: Some(Secret::from(token)),
                })
            }
            Mode::Keystone(ks) => {
                let token = token.ok_or(AuthError::MissingToken)?;
                let tenant = tenant.ok_or(AuthError::MissingTenant)?;
                ks.check(token, &tenant).await?;
                Ok(Caller {
                    tenant,
                    token: Some(Secret::from(token)),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[tokio::test]
    async fn none_mode_defaults_the_tenant_and_passes_the_token_on() {
        let a = Authenticator::new(&AuthSettings::None {
            default_tenant: "dev".into(),
        })
        .unwrap();
        let c = a.authenticate(&HeaderMap::new()).await.unwrap();
        assert_eq!(c.tenant, "dev");
        assert!(c.token.is_none());
        let c = a
            .authenticate(&headers(&[
                ("x-tenant-name", "t1"),
                ("x-auth-token", "abc"),
            ]))
            .await
            .unwrap();
        assert_eq!(c.tenant, "t1");
        assert_eq!(c.token.unwrap().expose(), "abc");
        let e = a
            .authenticate(&headers(&[("x-tenant-name", "a/b")]))
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("header X-Tenant-Name"), "{e}");
        for bad in ["..", "a\\b", "a:b"] {
            let e = a
                .authenticate(&headers(&[("x-tenant-name", bad)]))
                .await
                .unwrap_err();
            assert!(e.to_string().starts_with("header X-Tenant-Name: "), "{e}");
        }
    }

    #[tokio::test]
    async fn static_mode_needs_both_headers_and_a_listed_token() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, "# comment\ns3cret t1 t2\nroot *\n").unwrap();
        let a = Authenticator::new(&AuthSettings::Static { token_file: file }).unwrap();
        assert_eq!(
            a.authenticate(&headers(&[("x-tenant-name", "t1")]))
                .await
                .unwrap_err(),
            AuthError::MissingToken
        );
        assert_eq!(
            a.authenticate(&headers(&[("x-auth-token", "s3cret")]))
                .await
                .unwrap_err(),
            AuthError::MissingTenant
        );
        let ok = a
            .authenticate(&headers(&[
                ("x-auth-token", "s3cret"),
                ("x-tenant-name", "t2"),
            ]))
            .await
            .unwrap();
        assert_eq!(ok.tenant, "t2");
        let e = a
            .authenticate(&headers(&[
                ("x-auth-token", "s3cret"),
                ("x-tenant-name", "t3"),
            ]))
            .await
            .unwrap_err();
        assert!(matches!(e, AuthError::WrongTenant { .. }));
        assert!(!e.to_string().contains("s3cret"));
        let e = a
            .authenticate(&headers(&[
                ("x-auth-token", "guess"),
                ("x-tenant-name", "t1"),
            ]))
            .await
            .unwrap_err();
        assert!(matches!(e, AuthError::InvalidToken(_)));
        assert!(!e.to_string().contains("guess"));
        a.authenticate(&headers(&[
            ("x-auth-token", "root"),
            ("x-tenant-name", "any"),
        ]))
        .await
        .unwrap();
    }
}
