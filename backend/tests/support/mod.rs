//! What the integration tests share beyond the testkit (which finds the
//! test Heat and Keystone, or skips): starting a private Heat of their own.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

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
