//! Checks Heat makes at validation that need more than the template's
//! shape (issue 13): each with the template that triggers it and Heat's
//! message (the agreement test sends the same templates to a real Heat).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

use heat::{
    Environment, ErrorKind, Files, Options, ParameterValues, StackIdentity, StackTemplate,
    Strictness,
};

fn both() -> [Options; 2] {
    [
        Options::heat(),
        Options {
            strictness: Strictness::Strict,
            ..Options::default()
        },
    ]
}

fn build(text: &str, options: Options) -> StackTemplate {
    StackTemplate::parse(text, Environment::new(), Files::new(), options).unwrap()
}

const NETWORKS: &str = "heat_template_version: 2016-10-14
parameters:
  net: {type: string}
resources:
  server: {type: OS::Nova::Server, properties: {image: i, flavor: f}}
outputs:
  ip:
    value: {get_attr: [server, networks, {get_param: net}, 0]}
";

/// Heat lists a resource's attributes at validation from the `get_attr`s
/// whose path it can compute: with no value for `net`, `networks` is
/// unknown.
#[test]
fn get_attr_path_with_a_parameter_without_value_is_refused_at_validation() {
    for options in both() {
        let errors = build(NETWORKS, options)
            .validate(&ParameterValues::new())
            .unwrap_err();
        let e = &errors.0[0];
        assert_eq!(e.kind, ErrorKind::InvalidTemplateAttribute);
        assert!(
            e.message
                .ends_with("The Referenced Attribute (server networks) is incorrect."),
            "{}",
            e.message
        );
        assert_eq!(e.path.to_string(), "outputs.ip.value.get_attr");
    }
}

#[test]
fn get_attr_path_is_accepted_once_the_parameter_has_a_value() {
    let with_default = NETWORKS.replace("{type: string}", "{type: string, default: private}");
    for options in both() {
        build(&with_default, options.clone())
            .validate(&ParameterValues::new())
            .unwrap();
        // A value given at validation or creation does as well.
        let t = build(NETWORKS, options);
        let values: ParameterValues = [("net", "private")].into_iter().collect();
        t.validate(&values).unwrap();
        t.define(&values, &StackIdentity::default()).unwrap();
    }
}

#[test]
fn get_attr_path_is_accepted_when_another_reference_lists_the_attribute() {
    let also = format!("{NETWORKS}  all:\n    value: {{get_attr: [server, networks]}}\n");
    for options in both() {
        build(&also, options)
            .validate(&ParameterValues::new())
            .unwrap();
    }
}

fn snapshot_on(ty: &str) -> String {
    format!("heat_template_version: 2016-10-14\nresources:\n  r: {{type: {ty}, deletion_policy: Snapshot}}\n")
}

/// Heat's `validate_deletion_policy`: only types whose resource class can
/// snapshot (servers, volumes) take `deletion_policy: Snapshot`.
#[test]
fn snapshot_deletion_policy_is_refused_where_heat_cannot_snapshot() {
    for options in both() {
        let errors = build(&snapshot_on("OS::Heat::None"), options)
            .validate(&ParameterValues::new())
            .unwrap_err();
        let e = &errors.0[0];
        assert_eq!(e.kind, ErrorKind::StackValidationFailed);
        assert_eq!(
            e.message,
            "resources.r.deletion_policy: \"Snapshot\" deletion policy not supported"
        );
        assert_eq!(e.path.to_string(), "resources.r.deletion_policy");
    }
    let lowercase = snapshot_on("OS::Heat::RandomString").replace("Snapshot", "snapshot");
    let e = build(&lowercase, Options::heat())
        .validate(&ParameterValues::new())
        .unwrap_err();
    assert_eq!(
        e.0[0].message,
        "resources.r.deletion_policy: \"Snapshot\" deletion policy not supported"
    );
}

#[test]
fn snapshot_deletion_policy_is_accepted_where_heat_can_snapshot() {
    let server = "heat_template_version: 2016-10-14\nresources:\n  r: {type: OS::Nova::Server, deletion_policy: Snapshot, properties: {image: i, flavor: f}}\n";
    let volume = "heat_template_version: 2016-10-14\nresources:\n  r: {type: OS::Cinder::Volume, deletion_policy: Snapshot, properties: {size: 1}}\n";
    for options in both() {
        for text in [server, volume] {
            let t = build(text, options.clone());
            t.validate(&ParameterValues::new()).unwrap();
            t.define(&ParameterValues::new(), &StackIdentity::default())
                .unwrap();
        }
    }
}

/// At stack creation Heat validates an `OS::Heat::None` by doing nothing,
/// so it accepts the policy there; strict validation still refuses it.
#[test]
fn snapshot_on_none_is_accepted_at_creation_by_heat_only() {
    let text = snapshot_on("OS::Heat::None");
    build(&text, Options::heat())
        .define(&ParameterValues::new(), &StackIdentity::default())
        .unwrap();
    let strict = Options {
        strictness: Strictness::Strict,
        ..Options::default()
    };
    let e = build(&text, strict)
        .define(&ParameterValues::new(), &StackIdentity::default())
        .unwrap_err();
    assert_eq!(
        e.0[0].message,
        "resources.r.deletion_policy: \"Snapshot\" deletion policy not supported"
    );
}

/// A path part that is only known once the stack runs (another
/// resource's attribute) is computable for Heat (it resolves to None).
#[test]
fn get_attr_path_through_another_attribute_is_accepted() {
    let text = "heat_template_version: 2016-10-14
resources:
  net: {type: OS::Neutron::Net}
  server: {type: OS::Nova::Server, properties: {image: i, flavor: f}}
outputs:
  ip:
    value: {get_attr: [server, networks, {get_attr: [net, name]}, 0]}
";
    for options in both() {
        build(text, options)
            .validate(&ParameterValues::new())
            .unwrap();
    }
}

/// A hidden parameter without value is no more computable than another.
#[test]
fn get_attr_path_with_a_hidden_parameter_without_value_is_refused() {
    let hidden = NETWORKS.replace("{type: string}", "{type: string, hidden: true}");
    for options in both() {
        let errors = build(&hidden, options.clone())
            .validate(&ParameterValues::new())
            .unwrap_err();
        assert!(
            errors.0[0]
                .message
                .ends_with("The Referenced Attribute (server networks) is incorrect."),
            "{}",
            errors.0[0].message
        );
        let values: ParameterValues = [("net", "private")].into_iter().collect();
        build(&hidden, options).validate(&values).unwrap();
    }
}
