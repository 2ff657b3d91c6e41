//! What the integration tests share: finding the test Heat (or skipping),
//! and starting a private Heat or Keystone of their own.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// `OCCI_SO_TEST_HEAT_URL`, or `None` after saying why the test is skipped
/// (a failure instead when `OCCI_SO_REQUIRE_HEAT=1`).
pub fn heat_url() -> Option<String> {
    required_env(
        "OCCI_SO_TEST_HEAT_URL",
        "OCCI_SO_REQUIRE_HEAT",
        "a real Heat",
    )
}

/// `OCCI_SO_TEST_KEYSTONE_URL` (e.g. `http://127.0.0.1:5000/v3`), or `None`
/// after saying why (a failure when `OCCI_SO_REQUIRE_KEYSTONE=1`).
pub fn keystone_url() -> Option<String> {
    required_env(
        "OCCI_SO_TEST_KEYSTONE_URL",
        "OCCI_SO_REQUIRE_KEYSTONE",
        "a real Keystone (scripts/keystone-local.sh)",
    )
}

fn required_env(var: &str, require: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().trim_end_matches('/').to_string()),
        _ => {
            if std::env::var(require).as_deref() == Ok("1") {
                panic!("{var} is not set but {require}=1");
            }
            eprintln!("skipped: {var} is not set (this test needs {what})");
            None
        }
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("backend/ has a parent")
        .to_path_buf()
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A Heat of this test's own (its own HEAT_HOME and port, the shared cached
/// venv), stopped when dropped.
pub struct PrivateHeat {
    pub home: PathBuf,
    pub port: u16,
}

impl PrivateHeat {
    pub fn new(tag: &str) -> Self {
        let home = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("heat-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).expect("private HEAT_HOME");
        PrivateHeat {
            home,
            port: free_port(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/admin", self.port)
    }

    fn script(&self, action: &str) -> bool {
        let status = Command::new(repo_root().join("scripts/heat-local.sh"))
            .arg(action)
            .env("HEAT_HOME", &self.home)
            .env("HEAT_PORT", self.port.to_string())
            .status();
        matches!(status, Ok(s) if s.success())
    }

    /// Start (blocking; run it in `spawn_blocking` from async code).
    pub fn start(&self) {
        assert!(
            self.script("start"),
            "private Heat did not start (see {:?})",
            self.home
        );
    }

    pub fn stop(&self) {
        assert!(self.script("stop"), "private Heat did not stop");
    }
}

impl Drop for PrivateHeat {
    fn drop(&mut self) {
        let _ = self.script("stop");
    }
}
