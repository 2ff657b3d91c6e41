//! Broken variants of a real template are rejected with a message that
//! names the place: a misspelt function, a missing parameter, a cycle, a
//! bad constraint, an unknown version, a removed function, and more.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

use heat::{
    Environment, ErrorKind, Files, Options, ParameterValues, StackIdentity, StackTemplate,
    Strictness,
};

const GOOD: &str = "heat_template_version: 2016-10-14
description: A server with a port and a volume
parameters:
  flavor:
    type: string
    default: m1.small
    constraints:
      - allowed_values: [m1.small, m1.large]
  db_password:
    type: string
    hidden: true
    constraints:
      - length: {min: 8}
resources:
  port:
    type: OS::Neutron::Port
    properties:
      network: private
  volume:
    type: OS::Cinder::Volume
    properties:
      size: 1
  server:
    type: OS::Nova::Server
    properties:
      flavor: {get_param: flavor}
      image: cirros
      networks: [{port: {get_resource: port}}]
      user_data:
        str_replace:
          template: 'echo $pw > /etc/db'
          params: {$pw: {get_param: db_password}}
  attachment:
    type: OS::Cinder::VolumeAttachment
    properties:
      instance_uuid: {get_resource: server}
      volume_id: {get_resource: volume}
outputs:
  ip:
    value: {get_attr: [server, first_address]}
";

fn build(text: &str, strictness: Strictness) -> Result<StackTemplate, heat::Errors> {
    StackTemplate::parse(
        text,
        Environment::new(),
        Files::new(),
        Options {
            strictness,
            ..Options::default()
        },
    )
}

fn values(pw: &str) -> ParameterValues {
    [("db_password", pw)].into_iter().collect()
}

/// The first error of defining `text` with a good password.
fn first_error(text: &str, strictness: Strictness) -> heat::Error {
    let r = build(text, strictness).and_then(|t| {
        t.define(&values("s3cret-pass"), &StackIdentity::default())
            .map(|_| ())
    });
    r.expect_err("must be rejected")
        .first()
        .cloned()
        .expect("an error")
}

#[test]
fn the_good_template_is_fine() {
    let t = build(GOOD, Strictness::Strict).unwrap();
    t.validate(&ParameterValues::new()).unwrap();
    let d = t
        .define(&values("s3cret-pass"), &StackIdentity::default())
        .unwrap();
    assert_eq!(
        d.dependencies().create_levels().unwrap(),
        vec![vec!["port", "volume"], vec!["server"], vec!["attachment"]]
    );
    assert_eq!(
        d.dependencies().delete_levels().unwrap(),
        vec![vec!["attachment"], vec!["volume", "server"], vec!["port"]]
    );
    assert_eq!(d.parameters()["db_password"], "******");
}

#[test]
fn misspelt_function_is_named_with_its_line() {
    let text = GOOD.replace("flavor: {get_param: flavor}", "flavor: {get_parm: flavor}");
    let e = first_error(&text, Strictness::Strict);
    assert_eq!(e.position.map(|p| p.line), Some(26), "{e}");
    assert!(e.to_string().contains("resources.server.properties.flavor.get_parm: unknown function \"get_parm\" (did you mean \"get_param\"?)"), "{e}");
    // Heat itself takes the mapping as data and accepts the template.
    assert!(build(&text, Strictness::Heat)
        .unwrap()
        .validate(&ParameterValues::new())
        .is_ok());
}

#[test]
fn missing_parameter_is_named_with_its_line() {
    let t = build(GOOD, Strictness::Strict).unwrap();
    let e = t
        .define(&ParameterValues::new(), &StackIdentity::default())
        .unwrap_err();
    let e = e.first().unwrap();
    assert_eq!(e.kind, ErrorKind::UserParameterMissing);
    assert_eq!(e.message, "The Parameter (db_password) was not provided.");
    assert_eq!(e.position.map(|p| p.line), Some(9), "{e}");
}

#[test]
fn cycle_is_named() {
    let text = GOOD.replace(
        "      network: private",
        "      network: private\n      device_id: {get_attr: [attachment, show]}",
    );
    let e = first_error(&text, Strictness::Heat);
    assert_eq!(e.kind, ErrorKind::CircularDependencyException);
    assert!(
        e.message.contains("port -> ") || e.message.contains("-> port"),
        "{e}"
    );
    assert!(
        e.message.contains("attachment") && e.message.contains("server"),
        "{e}"
    );
    assert!(e.position.is_some(), "{e}");
}

#[test]
fn bad_constraint_is_named() {
    let text = GOOD.replace("      - length: {min: 8}", "      - range: {min: 8}");
    let e = first_error(&text, Strictness::Heat);
    assert_eq!(e.kind, ErrorKind::InvalidSchemaError);
    assert_eq!(
        e.message,
        "Parameter 'db_password' is invalid: Range constraint invalid for string"
    );
    assert_eq!(e.position.map(|p| p.line), Some(9), "{e}");
}

#[test]
fn bad_value_is_named_and_hidden_values_are_not_echoed() {
    let t = build(GOOD, Strictness::Heat).unwrap();
    let p: ParameterValues = [("db_password", "short"), ("flavor", "m1.huge")]
        .into_iter()
        .collect();
    let errs = t.define(&p, &StackIdentity::default()).unwrap_err();
    let text = errs.to_string();
    assert!(text.contains("line 4:3: parameters.flavor: Parameter 'flavor' is invalid: \"m1.huge\" is not an allowed value [\"m1.small\", \"m1.large\"]"), "{text}");
    assert!(
        text.contains(
            "Parameter 'db_password' is invalid: length (5) is out of range (min: 8, max: None)"
        ),
        "{text}"
    );
    assert!(!text.contains("short"), "{text}");
}

#[test]
fn other_breakages() {
    let cases = [
        (
            GOOD.replace("2016-10-14", "2016-10-15"),
            ErrorKind::InvalidTemplateVersion,
            1,
        ),
        (
            GOOD.replace("type: OS::Cinder::Volume", "type: OS::Cinder::Volum"),
            ErrorKind::StackValidationFailed,
            20,
        ),
        (
            GOOD.replace(
                "volume_id: {get_resource: volume}",
                "volume_id: {get_resource: volumes}",
            ),
            ErrorKind::InvalidTemplateReference,
            37,
        ),
        (
            GOOD.replace(
                "value: {get_attr: [server, first_address]}",
                "value: {get_attr: [server, first_adress]}",
            ),
            ErrorKind::InvalidTemplateAttribute,
            40,
        ),
        (
            GOOD.replace("      size: 1", "      size: 1\n      sise: 2"),
            ErrorKind::StackValidationFailed,
            23,
        ),
        (
            GOOD.replace("str_replace:", "'Fn::Replace':"),
            ErrorKind::StackValidationFailed,
            30,
        ),
        (
            GOOD.replace("outputs:", "output:"),
            ErrorKind::InvalidTemplateSection,
            38,
        ),
    ];
    for (text, kind, line) in cases {
        let e = first_error(&text, Strictness::Heat);
        assert_eq!(e.kind, kind, "{e}");
        assert_eq!(e.position.map(|p| p.line), Some(line), "{e}");
    }
}
