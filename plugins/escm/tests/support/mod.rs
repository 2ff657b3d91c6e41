//! What the ESCM plugin's integration tests share: attribute sets,
//! certificate files, and running the instance's boot configuration in
//! dry-run mode (both need the openssl command: without it they skip,
//! saying so, unless `OCCI_SO_REQUIRE_OPENSSL=1`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use occi_so_plugin_escm::catalog::names;
use occi_so_sdk::Attributes;
use occi_so_testkit::require_openssl;
use serde_json::{json, Value};

/// A real ed25519 public key line.
pub const PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0+xwYILmv6Zx+/+O5vSh7lGb3/KGp57cRQIsicsat7 escm@example";
/// A real RSA public key line.
pub const RSA_PUBLIC_KEY: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCaZ0432+Me5yMUkdv5GYYfPFA0SFDpDJL3B7Z6taZhzVjg/KeOhA+tRiJzxmR1Fhq2nNcCra+BCdOLhSeQVZMBASHUZh8zCgu1JIABqExuxkj9gBqbqo8qazNuqZ1Sc20s/fBkZvewkKd7zq4KRuafTYyaCMHNBDwGhDS0MQjExQYqcwnQhbLiQBIMEQUyCEz6Q2YTbVfcsQV/VOeo42h4MVB9lSb+TfzlZe3j1tDuqnjW/sWRMZXilVPmMFiw/+V6kCx4uWGUaD5I9qYQMYe93lufT+3rZCBD/bfztZInuQf/zCRLaESDOdN/vfl2pXzY7puBFyakeyHkkHm0d6Ml ops@example";

/// Passwords with every character a shell or a URL could trip on.
pub const MAIL_PASSWORD: &str = "m@il:pw'\"$(reboot)`x`%20\\";
pub const DOCKER_PASSWORD: &str = "d0cker pw;&|<>";
pub const PROXY_PASSWORD: &str = "pr@xy:p%w'd";

pub fn attrs(pairs: &[(&str, Value)]) -> Attributes {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// The fewest attributes an instance needs (self-signed certificates, no
/// mail authentication).
pub fn minimal() -> Attributes {
    attrs(&[
        (names::PUBLIC_KEY, json!(PUBLIC_KEY)),
        (names::MAIL_HOST, json!("mail.example.com")),
        (names::MAIL_FROM, json!("escm@example.com")),
        (names::MAIL_AUTH, json!(false)),
        (names::SSL_GENERATE, json!(true)),
    ])
}

/// Everything switched on: mail, registry and proxy authentication, a
/// custom registry, the proxy, certificate files, an FQDN.
pub fn everything() -> Attributes {
    let mut a = minimal();
    a.extend(attrs(&[
        (names::MAIL_AUTH, json!(true)),
        (names::MAIL_USER, json!("mailer")),
        (names::MAIL_PASSWORD, json!(MAIL_PASSWORD)),
        (names::MAIL_PORT, json!(587)),
        (names::MAIL_TLS, json!(true)),
        (names::DOCKER_HUB, json!(false)),
        (names::DOCKER_HOST, json!("registry.example.com")),
        (names::DOCKER_PORT, json!(5443)),
        (names::DOCKER_AUTH, json!(true)),
        (names::DOCKER_USER, json!("puller")),
        (names::DOCKER_PASSWORD, json!(DOCKER_PASSWORD)),
        (names::DOCKER_TAG, json!("v17.5.0")),
        (names::PROXY_USE, json!(true)),
        (names::PROXY_HTTP_HOST, json!("proxy.example.com")),
        (names::PROXY_HTTP_PORT, json!(3128)),
        (names::PROXY_HTTPS_HOST, json!("proxy.example.com")),
        (names::PROXY_HTTPS_PORT, json!(3129)),
        (
            names::PROXY_NO_PROXY,
            json!("intranet.example.com,10.0.0.0/8"),
        ),
        (names::PROXY_AUTH, json!(true)),
        (names::PROXY_USER, json!("surfer")),
        (names::PROXY_PASSWORD, json!(PROXY_PASSWORD)),
        (names::SSL_GENERATE, json!(false)),
        (names::SSL_FQDN, json!("escm.example.com")),
        (names::LOGS_SIZE, json!(3)),
        (names::DATA_SIZE, json!(4)),
    ]));
    a
}

/// A certificate directory laid out as the barclamp's defaults expect
/// (`certs/signing_cert.pem`, `private/signing_key.pem`, `certs/ca.pem`),
/// with a fresh self-signed certificate made by the `openssl` command.
pub struct CertificateDir {
    pub dir: tempfile::TempDir,
}

impl CertificateDir {
    /// `None` (the test skipped) without the openssl command.
    pub async fn new(with_chain: bool) -> Option<CertificateDir> {
        let openssl = require_openssl()?;
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("certs")).expect("certs dir");
        std::fs::create_dir_all(root.join("private")).expect("private dir");
        openssl.self_signed(
            &root.join("private/signing_key.pem"),
            &root.join("certs/signing_cert.pem"),
            "/CN=escm.example.com",
            &[],
        );
        if with_chain {
            std::fs::copy(
                root.join("certs/signing_cert.pem"),
                root.join("certs/ca.pem"),
            )
            .expect("chain");
        }
        Some(CertificateDir { dir })
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The attributes pointing at this directory's files.
    pub fn attributes(&self) -> Attributes {
        let p = |rel: &str| json!(self.path(rel).to_string_lossy());
        attrs(&[
            (names::SSL_GENERATE, json!(false)),
            (names::SSL_CERTFILE, p("certs/signing_cert.pem")),
            (names::SSL_KEYFILE, p("private/signing_key.pem")),
            (names::SSL_CA_CERTS, p("certs/ca.pem")),
        ])
    }
}

/// What running the instance's `deploy-escmserver` in dry-run mode left.
pub struct DryRun {
    pub root: tempfile::TempDir,
    pub stdout: String,
    pub stderr: String,
}

impl DryRun {
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.path().join(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}\nstderr: {}", self.stderr))
    }
    pub fn exists(&self, rel: &str) -> bool {
        self.root.path().join(rel).exists()
    }
    /// The value of `KEY=` in `/docker/var.env`.
    pub fn var_env(&self, key: &str) -> String {
        let text = self.read("docker/var.env");
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in var.env:\n{text}"))
            .to_string()
    }
}

/// Runs a rendered `deploy-escmserver` with `ESCM_ROOT` in a fresh
/// directory and `ESCM_DRY_RUN=true` (files written, commands recorded);
/// `None` (the test skipped) without the openssl command the script makes
/// its certificates with.
pub async fn dry_run(script: &str) -> Option<DryRun> {
    require_openssl()?;
    let root = tempfile::tempdir().expect("temp dir");
    let file = root.path().join("deploy-escmserver");
    std::fs::write(&file, script).expect("script");
    let out = tokio::process::Command::new("bash")
        .arg(&file)
        .env("ESCM_ROOT", root.path())
        .env("ESCM_DRY_RUN", "true")
        .output()
        .await
        .expect("bash");
    let run = DryRun {
        root,
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    };
    assert!(
        out.status.success(),
        "deploy-escmserver failed: {}",
        run.stderr
    );
    Some(run)
}
