//! Who a backend call acts for.

use std::fmt;

/// A string that must never be logged or rendered: tokens, passwords.
///
/// `Debug` and `Display` print `******`; call [`Secret::expose`] at the one
/// place that needs the value (an HTTP header, a Heat parameter).
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value itself; use only where it leaves the process.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(******)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("******")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret::new(s)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret::new(s)
    }
}

/// The caller's identity as MCN service orchestrators receive it:
/// `X-Auth-Token` and `X-Tenant-Name`.
///
/// A backend in pass-through mode forwards `token` and uses `project` as
/// the Heat project; a backend with its own Keystone credentials still uses
/// `project` to keep tenants' stacks apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The caller's Keystone token, if any (absent with `--auth none`).
    pub token: Option<Secret>,
    /// The tenant (project) name or id the caller acts in.
    pub project: String,
}

impl Credentials {
    /// Credentials for `project` with an optional token.
    pub fn new(project: impl Into<String>, token: Option<Secret>) -> Self {
        Credentials {
            project: project.into(),
            token,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), "******");
        assert!(!format!("{s:?}").contains("hunter2"));
        let c = Credentials::new("t1", Some(s));
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.token.as_ref().map(Secret::expose), Some("hunter2"));
    }
}
