//! Property tests: what we write, we read back unchanged.
//! - any JSON-like value written as YAML (by serde_yaml) loads back equal,
//!   key order included;
//! - a rendered template, parsed and rendered again, is unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

use heat::{Environment, Files, Limits, Options, ParameterValues, RenderOptions, StackTemplate};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| Value::Number(i.into())),
        (-1e12f64..1e12).prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        "[ -~]{0,12}".prop_map(Value::String),
        "\\PC{0,8}".prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,8}", inner), 0..6).prop_map(|kv| {
                let mut m = Map::new();
                for (k, v) in kv {
                    if k != "<<" {
                        m.insert(k, v);
                    }
                }
                Value::Object(m)
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn yaml_written_loads_back(v in value()) {
        let text = serde_yaml::to_string(&v).unwrap();
        let back = heat::yaml::load(&text, &Limits::default()).unwrap();
        prop_assert_eq!(back, v);
    }

    #[test]
    fn render_is_stable(name in "[a-z]{1,10}", size in 1u32..100, flag in any::<bool>()) {
        let text = "heat_template_version: 2021-04-16
parameters:
  name: {type: string}
  size: {type: number}
  flag: {type: boolean}
conditions:
  on: {get_param: flag}
resources:
  a:
    type: OS::Heat::Value
    properties:
      value:
        str_replace:
          template: $n-$s
          params: {$n: {get_param: name}, $s: {get_param: size}}
  b:
    type: OS::Heat::Value
    condition: on
    properties:
      value: {list_join: ['-', [{get_attr: [a, value]}, {if: [on, yes, no]}]]}
outputs:
  v: {value: {get_attr: [a, value]}}
";
        let t = StackTemplate::parse(text, Environment::new(), Files::new(), Options::heat()).unwrap();
        let mut p = ParameterValues::new();
        p.insert("name", name.clone());
        p.insert("size", size.to_string());
        p.insert("flag", flag.to_string());
        let once = t.render(&p, &RenderOptions::default()).unwrap();
        prop_assert_eq!(&once.template["resources"]["a"]["properties"]["value"], &Value::String(format!("{name}-{size}")));
        prop_assert_eq!(once.template["resources"].get("b").is_some(), flag);
        let again = StackTemplate::parse(&once.to_yaml(), Environment::new(), Files::new(), Options::heat()).unwrap();
        let twice = again.render(&ParameterValues::new(), &RenderOptions::default()).unwrap();
        prop_assert_eq!(twice.template["resources"].clone(), once.template["resources"].clone());
        prop_assert_eq!(twice.template["outputs"].clone(), once.template["outputs"].clone());
    }
}
