//! What the ESCM plugin costs per request: checking a create's attributes
//! (every setting, the rules, both templates defined with the parameters
//! by the heat engine), and building the instance stack's parameters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

use criterion::{criterion_group, criterion_main, Criterion};
use occi_so_plugin_escm::catalog::names;
use occi_so_plugin_escm::templates::VolumeIds;
use occi_so_plugin_escm::{EscmConfig, EscmPlugin};
use occi_so_sdk::{Attributes, Operation, Orchestrator};
use serde_json::json;

fn attributes() -> Attributes {
    [
        (names::PUBLIC_KEY, json!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0+xwYILmv6Zx+/+O5vSh7lGb3/KGp57cRQIsicsat7 escm@example")),
        (names::MAIL_HOST, json!("mail.example.com")),
        (names::MAIL_FROM, json!("escm@example.com")),
        (names::MAIL_USER, json!("mailer")),
        (names::MAIL_PASSWORD, json!("secret")),
        (names::PROXY_USE, json!(true)),
        (names::PROXY_HTTP_HOST, json!("proxy.example.com")),
        (names::PROXY_HTTPS_HOST, json!("proxy.example.com")),
        (names::SSL_GENERATE, json!(true)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let plugin = EscmPlugin::new(EscmConfig::default()).expect("plugin");
    let a = attributes();
    c.bench_function("escm/new (parse + validate both templates)", |b| {
        b.iter(|| EscmPlugin::new(EscmConfig::default()).expect("plugin"))
    });
    c.bench_function("escm/validate design", |b| {
        b.iter(|| {
            rt.block_on(plugin.validate(&Operation::Design, &a))
                .expect("valid")
        })
    });
    let (settings, certs) = rt.block_on(plugin.check(&a)).expect("valid");
    c.bench_function("escm/instance parameters", |b| {
        b.iter(|| {
            plugin.templates().instance_parameters(
                &settings,
                certs.as_ref(),
                &VolumeIds::placeholder(),
                true,
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
