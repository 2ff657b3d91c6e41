//! Hostile input gets a clear error within bounded time and memory:
//! malformed YAML, a 50 MB template, deep nesting, YAML alias bombs.
//! (The limits are `heat::Limits`; timings live in the benchmarks.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

use heat::{Environment, ErrorKind, Limits, Template};

fn first_kind(text: &str) -> (ErrorKind, String) {
    let e = Template::parse(text).expect_err("must be rejected");
    let first = e.first().expect("one error").clone();
    (first.kind, first.to_string())
}

#[test]
fn malformed_yaml_names_the_line() {
    let (kind, msg) = first_kind(
        "heat_template_version: 2015-04-30\nresources:\n  a: {type: OS::Heat::None\n  b: 1\n",
    );
    assert_eq!(kind, ErrorKind::HttpBadRequest);
    assert!(msg.starts_with("line "), "{msg}");
    let (kind, msg) = first_kind("heat_template_version: 2015-04-30\n\tresources: {}\n");
    assert_eq!(kind, ErrorKind::HttpBadRequest, "{msg}");
    let (kind, _) = first_kind("just a string");
    assert_eq!(kind, ErrorKind::HttpBadRequest);
    let (kind, _) = first_kind("");
    assert_eq!(kind, ErrorKind::HttpBadRequest);
}

#[test]
fn fifty_megabytes_is_refused_before_parsing() {
    let mut text = String::from("heat_template_version: 2015-04-30\nresources:\n");
    let line = "  r0000000: {type: OS::Heat::None, properties: {a: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx}}\n";
    while text.len() < 50 * 1024 * 1024 {
        text.push_str(line);
    }
    let (kind, msg) = first_kind(&text);
    assert_eq!(kind, ErrorKind::RequestLimitExceeded);
    assert!(
        msg.contains("exceeds maximum allowed size (524288 bytes)"),
        "{msg}"
    );
    // The environment has the same bound.
    let env = format!("parameters:\n  a: {}\n", "x".repeat(600_000));
    assert_eq!(
        Environment::parse(&env).unwrap_err().kind,
        ErrorKind::RequestLimitExceeded
    );
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    for depth in [101, 1_000, 100_000] {
        let text = format!(
            "heat_template_version: 2015-04-30\nx: {}1{}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let (kind, msg) = first_kind(&text);
        assert_eq!(
            kind,
            ErrorKind::RequestLimitExceeded,
            "depth {depth}: {msg}"
        );
        let text = format!(
            "heat_template_version: 2015-04-30\nx: {}1{}\n",
            "{a: ".repeat(depth),
            "}".repeat(depth)
        );
        let (kind, msg) = first_kind(&text);
        assert_eq!(
            kind,
            ErrorKind::RequestLimitExceeded,
            "depth {depth}: {msg}"
        );
    }
    // Under the limit is fine, functions nested deep (90 levels) included.
    let mut v = String::from("x");
    for _ in 0..30 {
        v = format!("{{list_join: ['', [{v}]]}}");
    }
    let text = format!("heat_template_version: 2016-10-14\nresources:\n  r: {{type: OS::Heat::Value, properties: {{value: {v}}}}}\n");
    let t = heat::StackTemplate::parse(
        &text,
        Environment::new(),
        Default::default(),
        heat::Options::heat(),
    )
    .unwrap();
    let r = t.render(&Default::default(), &Default::default()).unwrap();
    assert_eq!(r.template["resources"]["r"]["properties"]["value"], "x");
}

#[test]
fn alias_bombs_are_refused() {
    // The classic "billion laughs": 9 levels of 9 aliases each.
    let mut text = String::from("heat_template_version: 2015-04-30\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let (kind, msg) = first_kind(&text);
    assert_eq!(kind, ErrorKind::RequestLimitExceeded, "{msg}");
    // Mapping aliases too, in an environment.
    let mut env =
        String::from("parameters:\n  m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8}\n");
    for i in 1..9 {
        let p = i - 1;
        env.push_str(&format!("  m{i}: &m{i} {{a: *m{p}, b: *m{p}, c: *m{p}, d: *m{p}, e: *m{p}, f: *m{p}, g: *m{p}, h: *m{p}}}\n"));
    }
    assert_eq!(
        Environment::parse(&env).unwrap_err().kind,
        ErrorKind::RequestLimitExceeded
    );
    // A few honest aliases are fine.
    let ok =
        "heat_template_version: 2015-04-30\nresources:\n  a: &r {type: OS::Heat::None}\n  b: *r\n";
    assert!(Template::parse(ok).is_ok());
}

#[test]
fn limits_are_adjustable() {
    let limits = Limits {
        max_bytes: 64,
        ..Limits::default()
    };
    let e = Template::parse_with(
        "heat_template_version: 2015-04-30\nresources: {a: {type: OS::Heat::None}}\n",
        None,
        &limits,
    )
    .unwrap_err();
    assert_eq!(e.first().unwrap().kind, ErrorKind::RequestLimitExceeded);
    let limits = Limits {
        max_resources: 1,
        ..Limits::default()
    };
    let e = Template::parse_with("heat_template_version: 2015-04-30\nresources: {a: {type: OS::Heat::None}, b: {type: OS::Heat::None}}\n", None, &limits).unwrap_err();
    assert!(e
        .first()
        .unwrap()
        .message
        .contains("Maximum resources per stack exceeded"));
}
