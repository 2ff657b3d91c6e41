//! The instance's boot scripts (`templates/escm/user-data/`): valid bash,
//! every placeholder filled by the template's `str_replace`, and what
//! `deploy-escmserver` does on the instance for the settings the Heat test
//! does not cover (Docker Hub, no proxy, a self-signed certificate, a
//! custom registry without login, a second run), run in dry-run mode.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod support;

use std::collections::{BTreeMap, BTreeSet};

use occi_so_plugin_escm::templates::{APPLICATION_YAML, DEPLOY_ESCMSERVER, HEAT_CONFIG};
use regex::Regex;

fn placeholders(text: &str) -> BTreeSet<String> {
    Regex::new(r"@@[A-Z_]+@@")
        .unwrap()
        .find_iter(text)
        .map(|m| m.as_str().to_string())
        .collect()
}

#[tokio::test]
async fn both_scripts_are_valid_bash() {
    for (name, text) in [
        ("heat-config", HEAT_CONFIG),
        ("deploy-escmserver", DEPLOY_ESCMSERVER),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let out = tokio::process::Command::new("bash")
            .arg("-n")
            .arg(&file)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_placeholder_is_filled_by_the_template() {
    let in_script = placeholders(DEPLOY_ESCMSERVER);
    let in_template = placeholders(APPLICATION_YAML);
    assert_eq!(
        in_script, in_template,
        "deploy-escmserver and application.yaml disagree"
    );
    for p in ["$LOGS_VOLUME_DEV", "$DATA_VOLUME_DEV", "$WAIT_CURL"] {
        assert!(HEAT_CONFIG.contains(p), "{p} not in heat-config");
        assert!(
            APPLICATION_YAML.contains(&format!("{p}:")),
            "{p} not filled by application.yaml"
        );
    }
}

/// `deploy-escmserver` with its placeholders filled as Heat's str_replace
/// would (defaults of the kind, then `overrides`).
fn render(overrides: &[(&str, &str)]) -> String {
    let mut values: BTreeMap<&str, &str> = [
        ("@@FLOATING_IP@@", "172.24.4.10"),
        ("@@HOST_FQDN@@", "172.24.4.10"),
        ("@@TOMEE_DEBUG@@", "false"),
        ("@@DB_SUPERPWD@@", "superpwsuperpwsuperpwsuperpw1234"),
        ("@@KEY_SECRET@@", "keysecretkeysecretkeysecret12345"),
        ("@@DB_PWD_CORE@@", "corepwcorepwcorepwcorepwcorepw12"),
        ("@@DB_PWD_APP@@", "apppwapppwapppwapppwapppwapppw12"),
        ("@@SMTP_HOST@@", "mail.example.com"),
        ("@@SMTP_PORT@@", "25"),
        ("@@SMTP_TLS@@", "false"),
        ("@@SMTP_FROM@@", "escm@example.com"),
        ("@@SMTP_AUTH@@", "false"),
        ("@@SMTP_USER@@", ""),
        ("@@SMTP_PWD@@", ""),
        ("@@DOCKER_REGISTRY_DOCKERHUB@@", "true"),
        ("@@DOCKER_REGISTRY_HOST@@", ""),
        ("@@DOCKER_REGISTRY_PORT@@", "5000"),
        ("@@DOCKER_REGISTRY_ORGANIZATION@@", "servicecatalog"),
        ("@@DOCKER_REGISTRY_AUTH@@", "false"),
        ("@@DOCKER_REGISTRY_USER@@", ""),
        ("@@DOCKER_REGISTRY_PWD@@", ""),
        ("@@DOCKER_TAG@@", "v17.5.0"),
        ("@@IMAGE_PREFIX@@", "servicecatalog"),
        ("@@PROXY_ENABLED@@", "false"),
        ("@@PROXY_HTTP_HOST@@", ""),
        ("@@PROXY_HTTP_PORT@@", "80"),
        ("@@PROXY_HTTPS_HOST@@", ""),
        ("@@PROXY_HTTPS_PORT@@", "80"),
        ("@@PROXY_NOPROXY@@", "localhost,127.0.0.1"),
        ("@@PROXY_AUTH@@", "false"),
        ("@@PROXY_USER@@", ""),
        ("@@PROXY_PWD@@", ""),
        ("@@SSL_GENERATE@@", "true"),
        ("@@SSL_CERT@@", ""),
        ("@@SSL_KEY@@", ""),
        ("@@SSL_CHAIN@@", ""),
    ]
    .into_iter()
    .collect();
    values.extend(overrides.iter().cloned());
    assert_eq!(
        values
            .keys()
            .map(|k| k.to_string())
            .collect::<BTreeSet<_>>(),
        placeholders(DEPLOY_ESCMSERVER)
    );
    let mut text = DEPLOY_ESCMSERVER.to_string();
    for (k, v) in values {
        text = text.replace(k, v);
    }
    text
}

#[tokio::test]
async fn docker_hub_no_proxy_and_a_self_signed_certificate() {
    let Some(run) = support::dry_run(&render(&[])).await else {
        return;
    };
    let env = run.read("docker/.env");
    assert!(
        env.contains("IMAGE_CORE=servicecatalog/oscm-core:v17.5.0\n"),
        "{env}"
    );
    assert!(env.contains("IMAGE_DEPLOYER=servicecatalog/oscm-deployer:v17.5.0\n"));
    assert_eq!(run.var_env("HOST_FQDN"), "172.24.4.10");
    assert_eq!(
        run.var_env("PROXY_NOPROXY"),
        "localhost|127.0.0.1|172.24.4.10|oscm-core"
    );
    assert!(!run.exists("etc/systemd/system/docker.service.d/http-proxy.conf"));
    assert!(!run.exists("root/.docker/config.json"));
    assert!(
        !run.exists("etc/docker/daemon.json"),
        "Docker Hub needs no insecure registry"
    );
    // a self-signed certificate for the floating IP, given to every service
    let out = tokio::process::Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-in"])
        .arg(run.root.path().join("docker/data/ssl/escm.crt"))
        .output()
        .await
        .unwrap();
    let subject = String::from_utf8_lossy(&out.stdout);
    assert!(subject.contains("172.24.4.10"), "{subject}");
    assert!(run
        .read("docker/config/oscm-core/ssl/privkey/escm.key")
        .contains("PRIVATE KEY"));
    assert!(!run.exists("docker/config/oscm-core/ssl/chain/escm.chain"));
    let commands = run.read("docker/dry-run.log");
    assert!(
        commands.contains("-e INITDB=true -e STARTUP=true servicecatalog/oscm-deployer:v17.5.0"),
        "{commands}"
    );
}

#[tokio::test]
async fn a_second_run_keeps_the_databases_and_the_certificate() {
    if occi_so_testkit::require_openssl().is_none() {
        return;
    }
    let script = render(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deploy-escmserver");
    std::fs::write(&file, &script).unwrap();
    let run = |root: std::path::PathBuf| {
        let file = file.clone();
        async move {
            let out = tokio::process::Command::new("bash")
                .arg(&file)
                .env("ESCM_ROOT", &root)
                .env("ESCM_DRY_RUN", "true")
                .output()
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    let root = dir.path().join("instance");
    run(root.clone()).await;
    let cert = std::fs::read_to_string(root.join("docker/data/ssl/escm.crt")).unwrap();
    // A new server (same volumes): the databases exist, the certificate fits.
    std::fs::remove_file(root.join("docker/dry-run.log")).unwrap();
    run(root.clone()).await;
    let commands = std::fs::read_to_string(root.join("docker/dry-run.log")).unwrap();
    assert!(
        commands.contains("-e INITDB=false -e STARTUP=true"),
        "{commands}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("docker/data/ssl/escm.crt")).unwrap(),
        cert
    );
}

#[tokio::test]
async fn a_custom_registry_without_login_is_trusted_without_tls() {
    let Some(run) = support::dry_run(&render(&[
        ("@@DOCKER_REGISTRY_DOCKERHUB@@", "false"),
        ("@@DOCKER_REGISTRY_HOST@@", "registry.example.com"),
        ("@@DOCKER_REGISTRY_PORT@@", "5000"),
        (
            "@@IMAGE_PREFIX@@",
            "registry.example.com:5000/servicecatalog",
        ),
    ]))
    .await
    else {
        return;
    };
    let daemon = run.read("etc/docker/daemon.json");
    assert_eq!(
        daemon.trim(),
        r#"{"insecure-registries": ["registry.example.com:5000"]}"#
    );
    assert!(!run.exists("root/.docker/config.json"));
    assert!(run
        .read("docker/.env")
        .contains("IMAGE_DB=registry.example.com:5000/servicecatalog/oscm-db:v17.5.0\n"));
}
