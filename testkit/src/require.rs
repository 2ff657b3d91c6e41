//! What a test needs from outside the tree, and one rule for all of it: a
//! test whose material is missing is skipped with a printed reason, unless
//! the matching `OCCI_SO_REQUIRE_*=1` switch is set, in which case it
//! fails. `scripts/test.sh` sets every switch, so in CI nothing skips
//! silently; a fresh clone without the material still passes, saying what
//! it skipped.
//!
//! | need | where it is found | switch |
//! | --- | --- | --- |
//! | a real Heat | `OCCI_SO_TEST_HEAT_URL` | `OCCI_SO_REQUIRE_HEAT` |
//! | a real Keystone | `OCCI_SO_TEST_KEYSTONE_URL` | `OCCI_SO_REQUIRE_KEYSTONE` |
//! | the shared material | `OCCI_SO_SHARED`, else `<workspace>/../shared` | `OCCI_SO_REQUIRE_SHARED` |
//! | the `openssl` command | `PATH` | `OCCI_SO_REQUIRE_OPENSSL` |

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The switch that makes a missing Heat a failure.
pub const REQUIRE_HEAT: &str = "OCCI_SO_REQUIRE_HEAT";
/// The switch that makes a missing Keystone a failure.
pub const REQUIRE_KEYSTONE: &str = "OCCI_SO_REQUIRE_KEYSTONE";
/// The switch that makes missing shared material a failure.
pub const REQUIRE_SHARED: &str = "OCCI_SO_REQUIRE_SHARED";
/// The switch that makes a missing `openssl` command a failure.
pub const REQUIRE_OPENSSL: &str = "OCCI_SO_REQUIRE_OPENSSL";

/// The name of the running test (libtest names its thread after it), for
/// the skip and failure messages.
pub fn test_name() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => "this test".to_string(),
    }
}

/// Whether `switch` is set to `1`.
pub fn required(switch: &str) -> bool {
    std::env::var(switch).as_deref() == Ok("1")
}

/// What a missing need means: `None` after printing why the test is
/// skipped, or a failure naming `switch` when it is set.
fn missing<T>(switch: &str, why: &str) -> Option<T> {
    missing_when(required(switch), switch, why)
}

fn missing_when<T>(required: bool, switch: &str, why: &str) -> Option<T> {
    let test = test_name();
    if required {
        panic!("{test}: {switch}=1 but {why}");
    }
    // Straight to the process's stderr: libtest captures `eprintln!` of a
    // passing test, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "{test}: skipped: {why}; {switch}=1 makes this a failure"
    );
    None
}

/// A URL from `var`, trimmed and without a trailing `/`.
fn url_from(var: &str, switch: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().trim_end_matches('/').to_string()),
        _ => missing(switch, &format!("{var} is not set; it needs {what}")),
    }
}

/// The real Heat's URL (`http://127.0.0.1:PORT/v1/admin`) from
/// `OCCI_SO_TEST_HEAT_URL`; `None` after printing why the test is skipped,
/// a failure when `OCCI_SO_REQUIRE_HEAT=1`.
pub fn require_heat() -> Option<String> {
    url_from(
        "OCCI_SO_TEST_HEAT_URL",
        REQUIRE_HEAT,
        "a real Heat (scripts/test.sh starts one with scripts/heat-local.sh)",
    )
}

/// The real Keystone's v3 URL (`http://127.0.0.1:PORT/v3`) from
/// `OCCI_SO_TEST_KEYSTONE_URL`; `None` after printing why the test is
/// skipped, a failure when `OCCI_SO_REQUIRE_KEYSTONE=1`. The admin's
/// password is [`keystone_password`].
pub fn require_keystone() -> Option<String> {
    url_from(
        "OCCI_SO_TEST_KEYSTONE_URL",
        REQUIRE_KEYSTONE,
        "a real Keystone (scripts/test.sh starts one with scripts/keystone-local.sh)",
    )
}

/// The password of the test Keystone's `admin` user
/// (`OCCI_SO_TEST_KEYSTONE_PASSWORD`, by default scripts/keystone-local.sh's
/// `occi-so-admin`).
pub fn keystone_password() -> String {
    std::env::var("OCCI_SO_TEST_KEYSTONE_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "occi-so-admin".into())
}

/// Where the shared material is: `OCCI_SO_SHARED`, else `../shared` next
/// to the workspace.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("OCCI_SO_SHARED") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    }
}

/// `part` of the shared material (e.g. `heat-corpus/hot`), if it is
/// there; `None` after printing why the test is skipped, a failure when
/// `OCCI_SO_REQUIRE_SHARED=1`.
pub fn require_shared(part: &str) -> Option<PathBuf> {
    let path = shared_dir().join(part);
    if path.exists() {
        return Some(path.canonicalize().unwrap_or(path));
    }
    missing(
        REQUIRE_SHARED,
        &format!(
            "{} is missing (the shared material next to the workspace, or where OCCI_SO_SHARED says)",
            path.display()
        ),
    )
}

/// The `openssl` command, for tests that make certificates.
#[derive(Clone, Debug)]
pub struct OpenSsl {
    _found: (),
}

/// The `openssl` command if `openssl version` runs; `None` after printing
/// why the test is skipped, a failure when `OCCI_SO_REQUIRE_OPENSSL=1`.
pub fn require_openssl() -> Option<OpenSsl> {
    let runs = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if runs {
        return Some(OpenSsl { _found: () });
    }
    missing(
        REQUIRE_OPENSSL,
        "the openssl command does not run (it makes this test's certificates)",
    )
}

impl OpenSsl {
    /// Runs `openssl ARGS` in `dir`; its stderr when it fails.
    pub fn run(&self, dir: &Path, args: &[&str]) -> Result<(), String> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("openssl {}: {e}", args.join(" ")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "openssl {}: {}: {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// A fresh self-signed certificate for `subject` (e.g.
    /// `/CN=localhost`) with the given extensions (`-addext` values, e.g.
    /// `subjectAltName=IP:127.0.0.1`), valid for two days: the key written
    /// to `key`, the certificate to `cert`. Fails the test when openssl
    /// refuses.
    pub fn self_signed(&self, key: &Path, cert: &Path, subject: &str, extensions: &[&str]) {
        let dir = key.parent().unwrap_or(Path::new("."));
        let (key, cert) = (key.to_string_lossy(), cert.to_string_lossy());
        let mut args = vec![
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject,
        ];
        for e in extensions {
            args.extend(["-addext", e]);
        }
        args.extend(["-keyout", &key, "-out", &cert]);
        if let Err(e) = self.run(dir, &args) {
            panic!("a self-signed certificate for {subject}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_name_is_the_threads() {
        assert_eq!(
            test_name(),
            "require::tests::the_test_name_is_the_threads",
            "libtest names the thread after the test"
        );
    }

    #[test]
    fn without_the_switch_a_missing_need_skips() {
        assert_eq!(
            missing_when::<()>(false, REQUIRE_HEAT, "(the testkit's own test of a skip)"),
            None
        );
    }

    #[test]
    #[should_panic(
        expected = "a_missing_need_fails_under_the_switch: OCCI_SO_REQUIRE_HEAT=1 but no Heat here"
    )]
    fn a_missing_need_fails_under_the_switch() {
        missing_when::<()>(true, REQUIRE_HEAT, "no Heat here");
    }
}
