//! Who a backend call acts for.

use std::fmt;

/// The characters Keystone refuses in project names when
/// `[resource] project_name_url_safe = strict` (URL-reserved, RFC 3986).
pub const TENANT_RESERVED_CHARS: &str = ":/?#[]@!$&'()*+,;=";

/// The longest tenant (project) name, as Keystone's schema allows.
pub const TENANT_MAX_LEN: usize = 64;

/// Why `name` cannot be a tenant (project) name, or `None` when it can.
///
/// The rule is Keystone's for URL-safe project names (1 to 64
/// characters, not only blanks, none of [`TENANT_RESERVED_CHARS`]), plus
/// what keeps a name safe as a path segment and a file name: no control
/// characters, no `\`, not `.` or `..`, no leading or trailing blanks.
/// Every auth mode applies it to every tenant a request names.
pub fn tenant_name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some("must not be empty".into());
    }
    if name.chars().count() > TENANT_MAX_LEN {
        return Some(format!("longer than {TENANT_MAX_LEN} characters"));
    }
    if name.trim() != name {
        return Some("must not begin or end with blanks".into());
    }
    if name == "." || name == ".." {
        return Some(format!("{name:?} is not a project name"));
    }
    let bad: String = name
        .chars()
        .filter(|c| TENANT_RESERVED_CHARS.contains(*c) || *c == '\\')
        .collect();
    if !bad.is_empty() {
        return Some(format!(
            "must not contain the reserved characters {bad:?} (Keystone's URL-safe project names)"
        ));
    }
    if name.chars().any(char::is_control) {
        return Some("must not contain control characters".into());
    }
    None
}

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

#[cfg(test)]
mod tenant_tests {
    use super::tenant_name_problem;

    #[test]
    fn keystone_names_pass_and_unsafe_ones_are_named() {
        for ok in ["demo", "EGI_dteam", "My Project", "t-1.x", "é"] {
            assert_eq!(tenant_name_problem(ok), None, "{ok}");
        }
        let cases = [
            ("", "must not be empty"),
            ("..", "\"..\" is not a project name"),
            (".", "\".\" is not a project name"),
            ("a\\b", "reserved characters \"\\\\\""),
            ("a/b", "reserved characters \"/\""),
            ("a:b@c", "reserved characters \":@\""),
            (" a", "blanks"),
            ("a\tb", "control characters"),
        ];
        for (name, want) in cases {
            let got = tenant_name_problem(name).unwrap_or_default();
            assert!(got.contains(want), "{name:?}: {got}");
        }
        assert!(tenant_name_problem(&"x".repeat(65))
            .unwrap()
            .contains("longer than 64"));
    }
}
