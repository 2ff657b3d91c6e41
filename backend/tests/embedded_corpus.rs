//! The embedded engine over the shared corpus of real public HOT templates
//! (`$OCCI_SO_SHARED/heat-corpus/hot`): every template the heat crate
//! loads is created with sample parameter values and must complete (the
//! few refused are refused by the template checks Heat makes, not by the
//! simulation), then delete cleanly, giving every address back. Skipped,
//! saying so, without the corpus; a failure then with
//! `OCCI_SO_REQUIRE_SHARED=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

#[path = "../../heat/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use occi_so_backend::{EmbeddedBackend, EmbeddedConfig};
use occi_so_sdk::{BackendError, Credentials, StackBackend, StackSpec, WaitOptions};

/// Time is virtual (Tokio's paused clock): a TestResource's 60 s
/// `wait_secs` passes at once, and so does the stack timeout if nothing
/// else moves.
#[tokio::test(start_paused = true)]
async fn every_corpus_template_settles() {
    let Some(root) = occi_so_testkit::require_shared("heat-corpus/hot") else {
        return;
    };
    let cases = common::corpus_cases(&root);
    assert!(cases.len() > 50, "corpus found but nearly empty");
    let b = EmbeddedBackend::new(EmbeddedConfig::instant()).unwrap();
    let creds = Credentials::new("corpus", None);
    let wait = WaitOptions {
        timeout: Duration::from_secs(7200),
    };
    let mut complete = Vec::new();
    let mut failed = Vec::new();
    let mut refused = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        if case.load_error.is_some() {
            continue;
        }
        let Ok(t) = heat::Template::parse(&case.text) else {
            continue;
        };
        let parameters: BTreeMap<String, String> = common::sample_values(&t)
            .0
            .into_iter()
            .map(|(k, v)| (k, heat::pyfmt::py_str(&v)))
            .collect();
        let env = case.environment.to_value();
        let spec = StackSpec {
            name: format!("corpus{i}"),
            template: case.text.clone(),
            parameters,
            environment: (!env.as_object().is_some_and(|m| m.is_empty())).then(|| env.to_string()),
            files: case.files.clone(),
            timeout_mins: None,
            disable_rollback: true,
            tags: vec![],
        };
        let stack = match b.create(&creds, &spec).await {
            Ok(s) => s,
            Err(BackendError::Rejected { kind, message }) => {
                // Refused by the heat crate's own checks (Heat's), or by
                // the engine's checks of the simulated types?
                let by_heat = heat::StackTemplate::parse(
                    &case.text,
                    case.environment.clone(),
                    case.files.clone(),
                    heat::Options::heat(),
                )
                .and_then(|t| {
                    let params: heat::ParameterValues = (&spec.parameters).into();
                    t.define(&params, &heat::StackIdentity::default())
                })
                .is_err();
                refused.push((by_heat, format!("{}: {kind}: {message}", case.name)));
                continue;
            }
            Err(e) => panic!("{}: {e}", case.name),
        };
        let info = b
            .wait(&creds, &stack, &wait)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        match info.status.to_string().as_str() {
            "CREATE_COMPLETE" => complete.push(case.name.clone()),
            _ => failed.push(format!(
                "{}: {} {}",
                case.name, info.status, info.status_reason
            )),
        }
        b.delete(&creds, &stack).await.unwrap();
        let gone = b.wait(&creds, &stack, &wait).await.unwrap();
        assert_eq!(gone.status.to_string(), "DELETE_COMPLETE", "{}", case.name);
    }
    eprintln!(
        "corpus: {} created, {} failed at run time, {} refused",
        complete.len(),
        failed.len(),
        refused.len()
    );
    for f in &failed {
        eprintln!("  failed: {f}");
    }
    for (by_heat, r) in &refused {
        eprintln!(
            "  refused ({}): {r}",
            if *by_heat { "template" } else { "engine" }
        );
    }
    assert!(failed.is_empty(), "every accepted corpus stack completes");
    assert!(
        refused.iter().all(|(by_heat, _)| *by_heat),
        "the engine's own checks refuse nothing the template checks accept"
    );
    assert!(complete.len() > 80, "{} created", complete.len());
    let stats = b.stats();
    assert_eq!(stats.in_progress, 0);
    assert_eq!((stats.private_addresses, stats.floating_addresses), (0, 0));
}
