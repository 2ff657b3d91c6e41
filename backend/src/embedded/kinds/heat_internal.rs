//! The resources Heat implements itself: `OS::Heat::RandomString` (really
//! random, from the OS-seeded CSPRNG, honouring `length`,
//! `character_classes`, `character_sequences` and the old `sequence`),
//! `OS::Heat::Value` (its value, as given) and `OS::Heat::TestResource`
//! (`value`, `fail`, `wait_secs`, `action_wait_secs`, `update_replace`).

use std::time::Duration;

use occi_so_sdk::StackAction;
use rand::seq::{IndexedRandom, SliceRandom};
use serde_json::Value;

use super::{known, value_text, Apply, Effort, Failure};
use crate::embedded::state::{Data, ResourceState};

/// Heat's character classes (`heat.common.password_gen`).
const CLASSES: &[(&str, &str)] = &[
    (
        "lettersdigits",
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    ),
    (
        "letters",
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    ),
    ("lowercase", "abcdefghijklmnopqrstuvwxyz"),
    ("uppercase", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    ("digits", "0123456789"),
    ("hexdigits", "0123456789ABCDEF"),
    ("octdigits", "01234567"),
];

fn class_chars(name: &str) -> Option<&'static str> {
    CLASSES.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

fn allowed_classes() -> String {
    let names: Vec<String> = CLASSES.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    format!("[{}]", names.join(", "))
}

/// An integer property value (Heat accepts `"12"` for an integer).
fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// One pool of characters and how many must come from it.
struct CharClass {
    chars: Vec<char>,
    min: usize,
}

/// The classes and sequences a RandomString's properties ask for, in
/// Heat's order (sequences first), and its length.
fn random_spec(props: &Value) -> (usize, Vec<CharClass>) {
    let length = props
        .get("length")
        .and_then(int)
        .map(|l| l.clamp(1, 512) as usize)
        .unwrap_or(32);
    let min_of = |m: &Value| -> usize {
        m.get("min")
            .and_then(int)
            .map(|n| n.clamp(0, 512) as usize)
            .unwrap_or(1)
    };
    let mut out = Vec::new();
    if let Some(Value::Array(seqs)) = props.get("character_sequences") {
        for s in seqs {
            let chars: Vec<char> = s
                .get("sequence")
                .map(value_text)
                .unwrap_or_default()
                .chars()
                .collect();
            out.push(CharClass {
                chars,
                min: min_of(s),
            });
        }
    }
    let mut classes: Vec<Value> = match props.get("character_classes") {
        Some(Value::Array(c)) => c.clone(),
        Some(v) if !v.is_null() => Vec::new(),
        _ => vec![serde_json::json!({"class": "lettersdigits", "min": 1})],
    };
    if let Some(seq) = props.get("sequence").filter(|v| !v.is_null()) {
        // Heat's translation: the old `sequence` becomes a class.
        classes = vec![serde_json::json!({"class": seq, "min": 1})];
    }
    for c in &classes {
        let name = c
            .get("class")
            .map(value_text)
            .unwrap_or_else(|| "lettersdigits".into());
        if let Some(chars) = class_chars(&name) {
            out.push(CharClass {
                chars: chars.chars().collect(),
                min: min_of(c),
            });
        }
    }
    (length, out)
}

/// A random string as Heat's `generate_password` makes it: each class's
/// minimum first, the rest from all classes together, then shuffled.
pub(crate) fn generate(props: &Value) -> String {
    let (length, classes) = random_spec(props);
    let mut rng = rand::rng();
    let mut out: Vec<char> = Vec::with_capacity(length);
    let mut all: Vec<char> = Vec::new();
    for c in &classes {
        for ch in &c.chars {
            if !all.contains(ch) {
                all.push(*ch);
            }
        }
        for _ in 0..c.min {
            if let Some(ch) = c.chars.choose(&mut rng) {
                out.push(*ch);
            }
        }
    }
    if all.is_empty() {
        all = CLASSES[0].1.chars().collect();
    }
    while out.len() < length {
        if let Some(ch) = all.choose(&mut rng) {
            out.push(*ch);
        }
    }
    out.shuffle(&mut rng);
    out.truncate(length);
    out.into_iter().collect()
}

/// `OS::Heat::RandomString` at create.
pub(crate) fn random_string(a: &Apply<'_>) -> Result<Data, Failure> {
    Ok(Data::Text(generate(a.props).into()))
}

/// Heat's validation of a RandomString's properties.
pub(crate) fn check_random_string(
    prefix: &str,
    props: &Value,
    at: &dyn Fn(&str) -> heat::Path,
) -> Result<(), heat::Error> {
    let err = |path: String, key: &str, msg: String| {
        heat::Error::validation(format!("{prefix}.{path}: {msg}"), at(key))
    };
    let range = |v: &Value| -> Option<String> {
        let n = int(v)?;
        (!(1..=512).contains(&n)).then(|| format!("{n} is out of range (min: 1, max: 512)"))
    };
    if let Some(l) = props.get("length").filter(|v| known(v)) {
        if let Some(m) = range(l) {
            return Err(err("length".into(), "length", m));
        }
    }
    if let Some(s) = props.get("sequence").filter(|v| known(v) && !v.is_null()) {
        let name = value_text(s);
        if class_chars(&name).is_none() {
            return Err(err(
                "sequence".into(),
                "sequence",
                format!("\"{name}\" is not an allowed value {}", allowed_classes()),
            ));
        }
    }
    let mut total: i64 = 0;
    let mut all_known = true;
    if let Some(Value::Array(seqs)) = props.get("character_sequences") {
        for (i, s) in seqs.iter().enumerate() {
            let here = format!("character_sequences[{i}]");
            if s.get("sequence").is_none_or(Value::is_null) {
                return Err(err(
                    here,
                    "character_sequences",
                    "Property sequence not assigned".into(),
                ));
            }
            match s.get("min") {
                Some(m) if known(m) => {
                    if let Some(msg) = range(m) {
                        return Err(err(format!("{here}.min"), "character_sequences", msg));
                    }
                    total += int(m).unwrap_or(1);
                }
                Some(_) => all_known = false,
                None => total += 1,
            }
        }
    }
    match props.get("character_classes") {
        Some(Value::Array(classes)) => {
            for (i, c) in classes.iter().enumerate() {
                let here = format!("character_classes[{i}]");
                if let Some(name) = c.get("class").filter(|v| known(v)) {
                    let name = value_text(name);
                    if class_chars(&name).is_none() {
                        return Err(err(
                            format!("{here}.class"),
                            "character_classes",
                            format!("\"{name}\" is not an allowed value {}", allowed_classes()),
                        ));
                    }
                }
                match c.get("min") {
                    Some(m) if known(m) => {
                        if let Some(msg) = range(m) {
                            return Err(err(format!("{here}.min"), "character_classes", msg));
                        }
                        total += int(m).unwrap_or(1);
                    }
                    Some(_) => all_known = false,
                    None => total += 1,
                }
            }
        }
        Some(v) if !known(v) => all_known = false,
        _ => total += 1,
    }
    let length = match props.get("length") {
        Some(v) if !known(v) => None,
        Some(v) => int(v),
        None => Some(32),
    };
    if let (true, Some(length)) = (all_known, length) {
        if total > length {
            return Err(heat::Error::validation(
                "Length property cannot be smaller than combined character class and character sequence minimums",
                at("length"),
            ));
        }
    }
    Ok(())
}

/// `OS::Heat::Value`: its value, as given.
pub(crate) fn value(a: &Apply<'_>) -> Data {
    let v = a.props.get("value").unwrap_or(&Value::Null);
    Data::JsonText(serde_json::to_string(v).unwrap_or_default().into())
}

/// Heat's validation of a Value's `type` and of its value against it.
pub(crate) fn check_value(
    prefix: &str,
    props: &Value,
    at: &dyn Fn(&str) -> heat::Path,
) -> Result<(), heat::Error> {
    const TYPES: &[(&str, &str)] = &[
        ("string", "string"),
        ("number", "number"),
        ("comma_delimited_list", "list"),
        ("json", "map"),
        ("boolean", "boolean"),
    ];
    let Some(ty) = props.get("type").filter(|v| known(v) && !v.is_null()) else {
        return Ok(());
    };
    let ty = value_text(ty);
    let Some((_, prop_type)) = TYPES.iter().find(|(n, _)| *n == ty) else {
        let names: Vec<String> = TYPES.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        return Err(heat::Error::validation(
            format!(
                "{prefix}.type: \"{ty}\" is not an allowed value [{}]",
                names.join(", ")
            ),
            at("type"),
        ));
    };
    let Some(v) = props.get("value").filter(|v| known(v)) else {
        return Ok(());
    };
    let convertible = *prop_type == "list"
        || (*prop_type == "map"
            && v.as_str()
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
                .is_some_and(|j| j.is_object()));
    match heat::stack::property_value_error(prop_type, convertible, v) {
        Some(m) => Err(heat::Error::validation(
            format!("{prefix}.value: {m}"),
            at("value"),
        )),
        None => Ok(()),
    }
}

/// `OS::Heat::TestResource`: its `value` is its `output`.
pub(crate) fn test_resource(a: &Apply<'_>) -> Data {
    let v = a
        .prop("value")
        .map(value_text)
        .unwrap_or_else(|| "test_string".into());
    Data::Text(v.into())
}

fn truthy(v: Option<&Value>) -> bool {
    v.is_some_and(heat::parameter::truthy)
}

fn wait_secs(action: StackAction, props: &Value) -> Duration {
    let key = match action {
        StackAction::Create => "create",
        StackAction::Update => "update",
        StackAction::Delete => "delete",
        _ => "",
    };
    let per_action = props
        .get("action_wait_secs")
        .and_then(|m| m.get(key))
        .filter(|v| !v.is_null());
    let secs = per_action
        .or_else(|| props.get("wait_secs"))
        .and_then(|v| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
        .unwrap_or(0.0);
    if secs < 0.0 {
        // Heat waits forever; the stack timeout ends it.
        Duration::from_secs(86_400 * 365)
    } else {
        Duration::from_secs_f64(secs.min(86_400.0 * 365.0))
    }
}

/// How a TestResource action goes: `wait_secs` (per action, as Heat's
/// `action_wait_secs`), then `fail` (never on delete).
pub(crate) fn test_resource_effort(
    action: StackAction,
    name: &str,
    props: &Value,
    previous: Option<&ResourceState>,
) -> Effort {
    let fail = truthy(props.get("fail")) && action != StackAction::Delete;
    let wait = match (action, previous) {
        (StackAction::Update, Some(p)) => {
            let new = props
                .get("value")
                .map(value_text)
                .unwrap_or_else(|| "test_string".into());
            let changed = !matches!(&p.data, Data::Text(old) if **old == *new);
            if changed {
                wait_secs(action, props)
            } else {
                Duration::ZERO
            }
        }
        _ => wait_secs(action, props),
    };
    Effort {
        wait,
        failure: fail.then(|| Failure::new("ValueError", format!("Test Resource failed {name}"))),
    }
}

/// A TestResource with `update_replace` is replaced when its value changes.
pub(crate) fn test_resource_replaces(current: &ResourceState, new: &Value) -> bool {
    let value = new
        .get("value")
        .map(value_text)
        .unwrap_or_else(|| "test_string".into());
    truthy(new.get("update_replace"))
        && !matches!(&current.data, Data::Text(old) if **old == *value)
}

/// Their attributes: `value` (RandomString, Value) and `output` (TestResource).
pub(crate) fn attribute(r: &ResourceState, name: &str) -> Value {
    use super::Kind;
    match (r.kind, name, &r.data) {
        (Kind::RandomString, "value", Data::Text(v)) => Value::String(v.to_string()),
        (Kind::Value, "value", Data::JsonText(v)) => serde_json::from_str(v).unwrap_or(Value::Null),
        (Kind::TestResource, "output", Data::Text(v)) => Value::String(v.to_string()),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashSet;

    #[test]
    fn random_strings_are_random_of_the_asked_length_and_classes() {
        let plain = generate(&json!({}));
        assert_eq!(plain.len(), 32);
        assert!(plain.chars().all(|c| c.is_ascii_alphanumeric()));
        let many: HashSet<String> = (0..200).map(|_| generate(&json!({"length": 12}))).collect();
        assert_eq!(many.len(), 200, "no repeats among 200 strings of 12");
        for _ in 0..50 {
            let s = generate(&json!({
                "length": 20,
                "character_classes": [{"class": "digits", "min": 5}, {"class": "uppercase", "min": 2}],
                "character_sequences": [{"sequence": "!@", "min": 3}],
            }));
            assert_eq!(s.chars().count(), 20);
            assert!(s.chars().filter(char::is_ascii_digit).count() >= 5, "{s}");
            assert!(
                s.chars().filter(char::is_ascii_uppercase).count() >= 2,
                "{s}"
            );
            assert!(s.chars().filter(|c| "!@".contains(*c)).count() >= 3, "{s}");
            assert!(s
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || "!@".contains(c)));
        }
        let oct = generate(&json!({"length": 64, "sequence": "octdigits"}));
        assert!(oct.chars().all(|c| ('0'..='7').contains(&c)), "{oct}");
        // Characters are spread over the whole class (a broken generator
        // that always picks the same one fails this).
        let spread: HashSet<char> = generate(&json!({"length": 512})).chars().collect();
        assert!(spread.len() > 40, "{}", spread.len());
    }

    fn check(props: Value) -> Result<(), heat::Error> {
        let at = |k: &str| heat::Path::keys(["resources", "r", "properties", k]);
        check_random_string("Property error: resources.r.properties", &props, &at)
    }

    #[test]
    fn random_string_checks_word_errors_as_heat() {
        assert_eq!(
            check(json!({"length": 2000})).unwrap_err().message,
            "Property error: resources.r.properties.length: 2000 is out of range (min: 1, max: 512)"
        );
        assert_eq!(
            check(json!({"character_classes": [{"class": "nope"}]})).unwrap_err().message,
            "Property error: resources.r.properties.character_classes[0].class: \"nope\" is not an allowed value [\"lettersdigits\", \"letters\", \"lowercase\", \"uppercase\", \"digits\", \"hexdigits\", \"octdigits\"]"
        );
        assert_eq!(
            check(json!({"length": 2, "character_classes": [{"class": "digits", "min": 2}, {"class": "uppercase", "min": 2}]}))
                .unwrap_err()
                .message,
            "Length property cannot be smaller than combined character class and character sequence minimums"
        );
        assert!(check(json!({"length": crate::embedded::view::UNKNOWN})).is_ok());
        assert!(
            check(json!({"length": 4, "character_sequences": [{"sequence": "ab", "min": 3}]}))
                .is_ok()
        );
    }

    #[test]
    fn value_type_checks_word_errors_as_heat() {
        let at = |k: &str| heat::Path::keys(["resources", "v", "properties", k]);
        let p = "Property error: resources.v.properties";
        let e = check_value(p, &json!({"value": "abc", "type": "number"}), &at).unwrap_err();
        assert_eq!(e.message, "Property error: resources.v.properties.value: could not convert string to float: 'abc'");
        let e = check_value(p, &json!({"value": "[1,2", "type": "json"}), &at).unwrap_err();
        assert_eq!(
            e.message,
            "Property error: resources.v.properties.value: \"[1,2\" is not a map"
        );
        assert!(check_value(p, &json!({"value": "42", "type": "number"}), &at).is_ok());
        assert!(check_value(
            p,
            &json!({"value": "a,b", "type": "comma_delimited_list"}),
            &at
        )
        .is_ok());
    }

    #[test]
    fn test_resource_fails_after_waiting_and_never_on_delete() {
        let props = json!({"value": "x", "fail": true, "wait_secs": 1.5});
        let e = test_resource_effort(StackAction::Create, "boom", &props, None);
        assert_eq!(e.wait, Duration::from_millis(1500));
        assert_eq!(e.failure.unwrap().message, "Test Resource failed boom");
        assert!(
            test_resource_effort(StackAction::Delete, "boom", &props, None)
                .failure
                .is_none()
        );
        let props = json!({"wait_secs": 5, "action_wait_secs": {"delete": 0}});
        assert_eq!(
            test_resource_effort(StackAction::Delete, "t", &props, None).wait,
            Duration::ZERO
        );
    }
}
