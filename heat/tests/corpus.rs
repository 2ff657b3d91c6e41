//! The real HOT templates of the shared corpus: every one Heat accepts is
//! accepted here (as Heat's `POST /validate` sees it), renders with its
//! required parameters supplied, and its broken variants are rejected with
//! messages that name the place.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;

use common::sample_values;
use heat::{
    Options, ParameterValues, RenderOptions, StackIdentity, StackTemplate, Strictness, Template,
};

/// Templates a stock Heat 27 itself rejects, and why (checked against the
/// real Heat by the agreement test).
const HEAT_REJECTS: &[(&str, &str)] = &[(
    "octavia/servers_with_octavia.yaml",
    "Heat 27's OS::Octavia::HealthMonitor has no max_retries_down property (Unknown Property)",
)];

/// Templates Heat accepts at validation but whose stack create it rejects,
/// whatever the parameter values, and why.
const HEAT_REJECTS_AT_CREATE: &[(&str, &str)] = &[
    (
        "software-config/example-templates/example-chef-template.yaml",
        "OS::Heat::StructuredConfig's config is a map, the template gives a list",
    ),
    (
        "mistral/templates/autoscaling_using_mistral.yaml",
        "the autoscaling group's member (NovaNetwork::Server, server_with_ip.yaml) has no security_group parameter (Unknown Property; the real Heat says so too)",
    ),
];

#[test]
fn corpus_templates_validate_and_render() {
    let Some(root) = common::corpus_dir() else {
        println!("SKIP corpus: no heat-corpus/hot under $OCCI_SO_SHARED or <workspace>/../shared");
        return;
    };
    let cases = common::corpus_cases(&root);
    assert!(
        cases.len() > 50,
        "only {} corpus templates found under {}",
        cases.len(),
        root.display()
    );
    let mut failures = Vec::new();
    let mut strict_notes = Vec::new();
    let (mut accepted, mut rendered) = (0, 0);
    let mut unloadable = Vec::new();
    for case in &cases {
        if let Some(e) = &case.load_error {
            unloadable.push(format!("{}: {e}", case.name));
            continue;
        }
        let expected_reject = HEAT_REJECTS.iter().find(|(n, _)| *n == case.name);
        let built = StackTemplate::parse(
            &case.text,
            case.environment.clone(),
            case.files.clone(),
            Options::heat(),
        );
        let verdict = built.and_then(|st| st.validate(&ParameterValues::new()).map(|_| st));
        match (verdict, expected_reject) {
            (Ok(st), None) => {
                accepted += 1;
                let params = sample_values(st.template());
                match st.render(&params, &RenderOptions::default()) {
                    Ok(r) => {
                        rendered += 1;
                        // The rendered template is itself a valid template.
                        let again = Template::from_value(r.template.clone(), None);
                        if let Err(e) = again {
                            failures.push(format!(
                                "{}: rendered template does not parse: {e}",
                                case.name
                            ));
                        }
                    }
                    Err(_) if HEAT_REJECTS_AT_CREATE.iter().any(|(n, _)| *n == case.name) => {}
                    Err(e) => {
                        failures.push(format!("{}: render failed with {params:?}: {e}", case.name))
                    }
                }
                let strict = StackTemplate::parse(
                    &case.text,
                    case.environment.clone(),
                    case.files.clone(),
                    Options {
                        strictness: Strictness::Strict,
                        ..Options::default()
                    },
                )
                .and_then(|s| s.define(&params, &StackIdentity::default()).map(|_| ()));
                if let Err(e) = strict {
                    strict_notes.push(format!("{}: {e}", case.name));
                }
            }
            (Ok(_), Some((_, why))) => failures.push(format!(
                "{}: accepted, but Heat rejects it ({why})",
                case.name
            )),
            (Err(e), None) => failures.push(format!("{}: rejected: {e}", case.name)),
            (Err(_), Some(_)) => {}
        }
    }
    println!(
        "corpus: {} templates, {accepted} accepted, {rendered} rendered, {} rejected as Heat rejects them, {} not loadable",
        cases.len(),
        HEAT_REJECTS.len(),
        unloadable.len()
    );
    for n in &unloadable {
        println!("not loadable (a file it needs is missing from the corpus): {n}");
    }
    for n in &strict_notes {
        println!("strict finding: {n}");
    }
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
