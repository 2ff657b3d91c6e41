//! Every setting of the ESCM deployment guide with a good and a bad value,
//! the rules between settings, and secrets kept out of every message:
//! all through the plugin's `validate`, as the server calls it before it
//! accepts a create, deploy, provision or update.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod support;

use std::collections::BTreeSet;

use occi_so_plugin_escm::catalog::{self, names};
use occi_so_plugin_escm::{EscmConfig, EscmPlugin};
use occi_so_sdk::{Attributes, Operation, Orchestrator, PluginError};
use serde_json::{json, Value};
use support::{attrs, minimal, CertificateDir};

/// One row: the setting, extra attributes a good and a bad case need, the
/// good value, the bad value, and a word the error must contain.
struct Row {
    name: &'static str,
    context: Vec<(&'static str, Value)>,
    good: Value,
    bad: Value,
    says: &'static str,
}

fn row(name: &'static str, good: Value, bad: Value, says: &'static str) -> Row {
    Row {
        name,
        context: vec![],
        good,
        bad,
        says,
    }
}

fn with(mut r: Row, context: &[(&'static str, Value)]) -> Row {
    r.context = context.to_vec();
    r
}

fn table(certs: &CertificateDir) -> Vec<Row> {
    use names::*;
    let file = |rel: &str| json!(certs.path(rel).to_string_lossy());
    let mail_auth = [
        (MAIL_AUTH, json!(true)),
        (MAIL_USER, json!("mailer")),
        (MAIL_PASSWORD, json!("pw")),
    ];
    let docker_auth = [
        (DOCKER_AUTH, json!(true)),
        (DOCKER_USER, json!("puller")),
        (DOCKER_PASSWORD, json!("pw")),
    ];
    let proxy_on = [
        (PROXY_USE, json!(true)),
        (PROXY_HTTP_HOST, json!("proxy.example.com")),
        (PROXY_HTTPS_HOST, json!("proxy.example.com")),
    ];
    let proxy_auth = [
        (PROXY_USE, json!(true)),
        (PROXY_HTTP_HOST, json!("proxy.example.com")),
        (PROXY_HTTPS_HOST, json!("proxy.example.com")),
        (PROXY_AUTH, json!(true)),
        (PROXY_USER, json!("surfer")),
        (PROXY_PASSWORD, json!("pw")),
    ];
    let files = [
        (SSL_GENERATE, json!(false)),
        (SSL_CERTFILE, file("certs/signing_cert.pem")),
        (SSL_KEYFILE, file("private/signing_key.pem")),
        (SSL_CA_CERTS, file("certs/ca.pem")),
    ];
    vec![
        // OpenStack
        row(
            IMAGE,
            json!("sles12-sp3-docker"),
            json!(""),
            "1 to 255 characters",
        ),
        row(
            FLAVOR,
            json!("m1.large"),
            json!("bad\nflavor"),
            "without control characters",
        ),
        row(FLAVOR_CREATE, json!(true), json!("yes"), "true or false"),
        row(FLAVOR_RAM, json!(4096), json!(256), "out of range"),
        row(FLAVOR_VCPUS, json!(2), json!(0), "out of range"),
        row(FLAVOR_DISK, json!(40), json!(0), "out of range"),
        row(
            KEYPAIR_NAME,
            json!("escm-admin"),
            json!("escm/admin"),
            "letters, digits",
        ),
        row(
            PUBLIC_KEY,
            json!(support::RSA_PUBLIC_KEY),
            json!("ssh-rsa not-a-key"),
            "OpenSSH public key",
        ),
        row(
            FLOATING_NETWORK,
            json!("public"),
            json!(""),
            "1 to 255 characters",
        ),
        row(LOGS_SIZE, json!(10), json!(0), "out of range"),
        row(DATA_SIZE, json!(10), json!(0), "out of range"),
        row(WAIT_TIMEOUT, json!(600), json!(10), "out of range"),
        row(DEBUG, json!(true), json!("maybe"), "true or false"),
        // Mail
        row(
            MAIL_HOST,
            json!("10.0.0.25"),
            json!("smtp example.com"),
            "host name",
        ),
        row(MAIL_PORT, json!(587), json!(65536), "out of range"),
        row(MAIL_TLS, json!(true), json!("on"), "true or false"),
        row(
            MAIL_FROM,
            json!("noreply@escm.example.com"),
            json!("noreply"),
            "e-mail address",
        ),
        row(MAIL_AUTH, json!(false), json!("1"), "true or false"),
        with(
            row(MAIL_USER, json!("mailer"), json!("mail\ner"), "line breaks"),
            &mail_auth,
        ),
        with(
            row(
                MAIL_PASSWORD,
                json!("s3cret"),
                json!("s3\ncret"),
                "line breaks",
            ),
            &mail_auth,
        ),
        // Docker registry
        with(
            row(DOCKER_HUB, json!(false), json!("no"), "true or false"),
            &[(DOCKER_HOST, json!("registry.example.com"))],
        ),
        with(
            row(
                DOCKER_HOST,
                json!("registry.example.com"),
                json!("registry example"),
                "host name",
            ),
            &[(DOCKER_HUB, json!(false))],
        ),
        row(DOCKER_PORT, json!(443), json!(70000), "out of range"),
        row(
            DOCKER_ORGANIZATION,
            json!("my-org"),
            json!("My Org"),
            "Docker organization",
        ),
        row(DOCKER_TAG, json!("latest"), json!("-latest"), "Docker tag"),
        with(
            row(DOCKER_AUTH, json!(true), json!("x"), "true or false"),
            &docker_auth[1..],
        ),
        with(
            row(
                DOCKER_USER,
                json!("puller"),
                json!("pul:ler"),
                "cannot contain ':'",
            ),
            &docker_auth,
        ),
        with(
            row(
                DOCKER_PASSWORD,
                json!("s3cret"),
                json!("s3\u{7f}cret"),
                "control characters",
            ),
            &docker_auth,
        ),
        // Proxy
        with(
            row(PROXY_USE, json!(true), json!("y"), "true or false"),
            &proxy_on[1..],
        ),
        with(
            row(
                PROXY_HTTP_HOST,
                json!("proxy.example.com"),
                json!("proxy?"),
                "host name",
            ),
            &proxy_on,
        ),
        row(PROXY_HTTP_PORT, json!(3128), json!(0), "out of range"),
        with(
            row(
                PROXY_HTTPS_HOST,
                json!("10.1.1.1"),
                json!("proxy example"),
                "host name",
            ),
            &proxy_on,
        ),
        row(PROXY_HTTPS_PORT, json!(3129), json!(65536), "out of range"),
        row(
            PROXY_NO_PROXY,
            json!("localhost,127.0.0.1,.corp.example.com,10.0.0.0/8"),
            json!("a b;c"),
            "comma-separated list",
        ),
        with(
            row(PROXY_AUTH, json!(true), json!("t"), "true or false"),
            &[
                proxy_auth[0].clone(),
                proxy_auth[1].clone(),
                proxy_auth[2].clone(),
                proxy_auth[4].clone(),
                proxy_auth[5].clone(),
            ],
        ),
        with(
            row(
                PROXY_USER,
                json!("surfer"),
                json!("surf\ter"),
                "control characters",
            ),
            &proxy_auth,
        ),
        with(
            row(
                PROXY_PASSWORD,
                json!("s3cret"),
                json!("s3\rcret"),
                "control characters",
            ),
            &proxy_auth,
        ),
        // SSL
        row(
            SSL_PROTOCOL,
            json!("https"),
            json!("http"),
            "expected one of https",
        ),
        with(
            row(SSL_GENERATE, json!(false), json!("yes"), "true or false"),
            &files,
        ),
        row(
            SSL_FQDN,
            json!("escm.example.com"),
            json!("escm example.com"),
            "host name",
        ),
        with(
            row(
                SSL_CERTFILE,
                file("certs/signing_cert.pem"),
                json!("/etc/passwd"),
                "not below the ESCM certificate directory",
            ),
            &files,
        ),
        with(
            row(
                SSL_KEYFILE,
                file("private/signing_key.pem"),
                file("certs/signing_cert.pem"),
                "not a PRIVATE KEY",
            ),
            &files,
        ),
        with(
            row(
                SSL_CA_CERTS,
                json!(""),
                file("private/signing_key.pem"),
                "not a CERTIFICATE",
            ),
            &files,
        ),
    ]
}

async fn plugin_and_certs() -> Option<(EscmPlugin, CertificateDir)> {
    let certs = CertificateDir::new(true).await?;
    let plugin = EscmPlugin::new(EscmConfig {
        certificate_dir: certs.root().to_path_buf(),
    })
    .unwrap();
    Some((plugin, certs))
}

fn case(context: &[(&str, Value)], name: &str, value: &Value) -> Attributes {
    let mut a = minimal();
    a.extend(attrs(context));
    a.insert(name.to_string(), value.clone());
    a
}

#[tokio::test]
async fn every_documented_setting_has_a_good_and_a_bad_value() {
    let Some((plugin, certs)) = plugin_and_certs().await else {
        return;
    };
    let rows = table(&certs);
    let covered: BTreeSet<&str> = rows.iter().map(|r| r.name).collect();
    let catalog: BTreeSet<&str> = catalog::settings().iter().map(|s| s.name).collect();
    assert_eq!(covered, catalog, "the table must cover every setting");

    for r in &rows {
        let good = case(&r.context, r.name, &r.good);
        if let Err(e) = plugin.validate(&Operation::Design, &good).await {
            panic!("{} = {} was refused: {e}", r.name, r.good);
        }
        let bad = case(&r.context, r.name, &r.bad);
        match plugin.validate(&Operation::Design, &bad).await {
            Err(PluginError::InvalidAttribute { name, message }) => {
                assert_eq!(
                    name, r.name,
                    "{} = {}: wrong attribute named: {message}",
                    r.name, r.bad
                );
                assert!(
                    message.contains(r.says),
                    "{} = {}: {message:?} should say {:?}",
                    r.name,
                    r.bad,
                    r.says
                );
                let secret = catalog::settings()
                    .iter()
                    .any(|s| s.name == r.name && s.secret);
                if secret {
                    let v = r.bad.as_str().unwrap();
                    assert!(
                        !message.contains(v),
                        "{}: the message shows the secret: {message}",
                        r.name
                    );
                }
            }
            other => panic!(
                "{} = {}: expected a 400 naming it, got {other:?}",
                r.name, r.bad
            ),
        }
        // The same check on every operation that takes attributes.
        let update = Operation::update(attrs(&[(r.name, r.bad.clone())]));
        for op in [Operation::Deploy, Operation::Provision, update] {
            assert!(
                plugin.validate(&op, &bad).await.is_err(),
                "{} on {}",
                r.name,
                op.name()
            );
        }
    }
}

#[tokio::test]
async fn mandatory_settings_are_required() {
    let Some((plugin, _certs)) = plugin_and_certs().await else {
        return;
    };
    for name in [names::PUBLIC_KEY, names::MAIL_HOST, names::MAIL_FROM] {
        let mut a = minimal();
        a.remove(name);
        match plugin.validate(&Operation::Design, &a).await {
            Err(PluginError::InvalidAttribute { name: n, message }) => {
                assert_eq!(n, name);
                assert!(message.starts_with("is required"), "{message}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

/// Extra attributes, the attribute the error must name, what it must say.
type RuleCase = (Vec<(&'static str, Value)>, &'static str, &'static str);

#[tokio::test]
async fn rules_between_settings() {
    use names::*;
    let Some((plugin, _certs)) = plugin_and_certs().await else {
        return;
    };
    let cases: Vec<RuleCase> = vec![
        (
            vec![(MAIL_AUTH, json!(true))],
            MAIL_USER,
            "escm.mail.auth is true",
        ),
        (
            vec![(MAIL_AUTH, json!(true)), (MAIL_USER, json!("u"))],
            MAIL_PASSWORD,
            "escm.mail.auth is true",
        ),
        (
            vec![(DOCKER_HUB, json!(false))],
            DOCKER_HOST,
            "escm.docker.dockerhub is false",
        ),
        (
            vec![(DOCKER_AUTH, json!(true))],
            DOCKER_USER,
            "escm.docker.auth is true",
        ),
        (
            vec![(DOCKER_AUTH, json!(true)), (DOCKER_USER, json!("u"))],
            DOCKER_PASSWORD,
            "escm.docker.auth is true",
        ),
        (
            vec![(PROXY_USE, json!(true))],
            PROXY_HTTP_HOST,
            "escm.proxy.use_proxy is true",
        ),
        (
            vec![(PROXY_USE, json!(true)), (PROXY_HTTP_HOST, json!("p"))],
            PROXY_HTTPS_HOST,
            "escm.proxy.use_proxy is true",
        ),
        (
            vec![
                (PROXY_USE, json!(true)),
                (PROXY_HTTP_HOST, json!("p")),
                (PROXY_HTTPS_HOST, json!("p")),
                (PROXY_AUTH, json!(true)),
            ],
            PROXY_USER,
            "escm.proxy.auth is true",
        ),
        (
            vec![
                (SSL_GENERATE, json!(false)),
                (SSL_CERTFILE, json!("/etc/escm/ssl/none.pem")),
            ],
            SSL_CERTFILE,
            "not below",
        ),
        (
            vec![(
                PUBLIC_KEY,
                json!(support::PUBLIC_KEY.replacen("ssh-ed25519", "ssh-rsa", 1)),
            )],
            PUBLIC_KEY,
            "does not hold a ssh-rsa key",
        ),
    ];
    for (context, attribute, says) in cases {
        let mut a = minimal();
        a.extend(attrs(&context));
        match plugin.validate(&Operation::Design, &a).await {
            Err(PluginError::InvalidAttribute { name, message }) => {
                assert_eq!(name, attribute, "{context:?}: {message}");
                assert!(message.contains(says), "{context:?}: {message}");
            }
            other => panic!("{context:?}: expected {attribute} refused, got {other:?}"),
        }
    }
    // Credentials of a switched-off feature are not asked for.
    let a = case(&[(PROXY_AUTH, json!(true))], PROXY_USE, &json!(false));
    plugin.validate(&Operation::Design, &a).await.unwrap();
    let a = case(&[], DOCKER_AUTH, &json!(false));
    plugin.validate(&Operation::Design, &a).await.unwrap();
}

#[tokio::test]
async fn dispose_never_depends_on_the_settings() {
    let Some((plugin, _certs)) = plugin_and_certs().await else {
        return;
    };
    let broken = attrs(&[(names::MAIL_PORT, json!("nonsense"))]);
    plugin.validate(&Operation::Dispose, &broken).await.unwrap();
    let e = plugin
        .validate(&Operation::Design, &broken)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PluginError::InvalidAttribute { name, message }
            if name == names::PUBLIC_KEY && message.starts_with("is required")),
        "the first mandatory setting missing is named: {e:?}"
    );
    let mut bad_port = minimal();
    bad_port.extend(broken.clone());
    let e = plugin
        .validate(&Operation::Design, &bad_port)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PluginError::InvalidAttribute { name, .. } if name == names::MAIL_PORT),
        "{e:?}"
    );
    let action = Operation::Action {
        term: "scale".into(),
        parameters: Attributes::new(),
    };
    assert!(matches!(
        plugin.validate(&action, &minimal()).await,
        Err(PluginError::NotApplicable { .. })
    ));
    // MCN notify applies to every deployed SO, whatever its settings.
    let notify = Operation::notify(Attributes::new());
    plugin.validate(&notify, &broken).await.unwrap();
}

#[tokio::test]
async fn secrets_never_appear_in_errors() {
    use names::*;
    let Some((plugin, _certs)) = plugin_and_certs().await else {
        return;
    };
    let secret = "Tr0ub4dor&3-never-shown";
    for name in [MAIL_PASSWORD, DOCKER_PASSWORD, PROXY_PASSWORD] {
        // wrong type, wrong shape
        for bad in [json!(12345), json!([secret]), json!(format!("{secret}\n"))] {
            let a = case(&[], name, &bad);
            let e = plugin.validate(&Operation::Design, &a).await.unwrap_err();
            let shown = format!("{e} {e:?}");
            assert!(
                !shown.contains(secret) && !shown.contains("12345"),
                "{name}: {shown}"
            );
        }
    }
    // A good secret with another attribute wrong: the message names only that one.
    let mut a = support::everything();
    a.insert(MAIL_PORT.into(), json!(0));
    let e = plugin.validate(&Operation::Design, &a).await.unwrap_err();
    let shown = format!("{e} {e:?}");
    for s in [
        support::MAIL_PASSWORD,
        support::DOCKER_PASSWORD,
        support::PROXY_PASSWORD,
    ] {
        assert!(!shown.contains(s), "{shown}");
    }
}

#[tokio::test]
async fn certificate_files_are_confined_and_checked() {
    use names::*;
    let Some(certs) = CertificateDir::new(false).await else {
        return;
    };
    let plugin = EscmPlugin::new(EscmConfig {
        certificate_dir: certs.root().to_path_buf(),
    })
    .unwrap();
    let mut a = minimal();
    a.extend(certs.attributes());
    // The chain at its default path may be absent; elsewhere it must exist.
    a.insert(SSL_CA_CERTS.into(), json!(catalog::DEFAULT_CA_CERTS));
    plugin.validate(&Operation::Design, &a).await.unwrap();
    let missing = certs.path("certs/ca.pem");
    a.insert(SSL_CA_CERTS.into(), json!(missing.to_string_lossy()));
    let e = plugin.validate(&Operation::Design, &a).await.unwrap_err();
    assert!(e.to_string().contains("no such file"), "{e}");
    a.insert(SSL_CA_CERTS.into(), json!(""));
    plugin.validate(&Operation::Design, &a).await.unwrap();

    // A symbolic link inside the directory that leads out of it.
    let link = certs.path("certs/escape.pem");
    std::os::unix::fs::symlink("/etc/hostname", &link).unwrap();
    a.insert(SSL_CERTFILE.into(), json!(link.to_string_lossy()));
    let e = plugin.validate(&Operation::Design, &a).await.unwrap_err();
    assert!(e.to_string().contains("leads outside"), "{e}");
    // '..' is refused before anything is opened.
    let dotdot = format!("{}/certs/../../etc/passwd", certs.root().display());
    a.insert(SSL_CERTFILE.into(), json!(dotdot));
    let e = plugin.validate(&Operation::Design, &a).await.unwrap_err();
    assert!(e.to_string().contains("'..'"), "{e}");
    // An encrypted key cannot be used by the instance.
    let enc = certs.path("private/encrypted.pem");
    std::fs::write(
        &enc,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    a.insert(
        SSL_CERTFILE.into(),
        json!(certs.path("certs/signing_cert.pem").to_string_lossy()),
    );
    a.insert(SSL_KEYFILE.into(), json!(enc.to_string_lossy()));
    let e = plugin.validate(&Operation::Design, &a).await.unwrap_err();
    assert!(
        matches!(&e, PluginError::InvalidAttribute { name, .. } if name == SSL_KEYFILE),
        "{e:?}"
    );
    assert!(e.to_string().contains("encrypted"), "{e}");
    // The key's content never shows in a message.
    let key_text = std::fs::read_to_string(certs.path("private/signing_key.pem")).unwrap();
    a.insert(
        SSL_KEYFILE.into(),
        json!(certs.path("private/signing_key.pem").to_string_lossy()),
    );
    a.insert(
        SSL_CERTFILE.into(),
        json!(certs.path("private/signing_key.pem").to_string_lossy()),
    );
    let e = plugin.validate(&Operation::Design, &a).await.unwrap_err();
    let body: String = key_text.lines().nth(1).unwrap().into();
    assert!(!format!("{e} {e:?}").contains(&body));
}
