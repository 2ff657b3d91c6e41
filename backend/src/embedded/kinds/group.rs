//! Nested stacks: `OS::Heat::ResourceGroup` (its members are a nested stack
//! of `count` copies of `resource_def`, named `0`, `1`, ...) and template
//! resources (a nested stack of a template from `files`, its properties as
//! parameters, its outputs as attributes).

use serde_json::{json, Map, Value};

use super::{attribute, known, reference, value_text};
use crate::embedded::state::ResourceState;
use crate::embedded::view::View;

/// `%index%` unless `index_var` says otherwise.
fn index_var(props: &Value) -> String {
    props
        .get("index_var")
        .filter(|v| !v.is_null())
        .map(value_text)
        .unwrap_or_else(|| "%index%".into())
}

/// The member count (`count`, default 1).
pub(crate) fn count(props: &Value) -> usize {
    props
        .get("count")
        .and_then(|c| match c {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
        .unwrap_or(1)
        .min(10_000) as usize
}

/// Names listed in `removal_policies` (never reused for new members).
fn removed(props: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(Value::Array(policies)) = props.get("removal_policies") {
        for p in policies {
            if let Some(Value::Array(list)) = p.get("resource_list") {
                out.extend(list.iter().map(value_text));
            }
        }
    }
    out
}

/// Every string in `v` with `var` replaced by `index`.
fn substitute(v: &Value, var: &str, index: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace(var, index)),
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute(x, var, index)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), substitute(x, var, index)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The nested template of a group: its members as resources `0`, `1`, ...
/// (skipping removed names), each `resource_def` with its index put in.
pub(crate) fn group_template(props: &Value) -> Value {
    let def = props
        .get("resource_def")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let var = index_var(props);
    let skip = removed(props);
    let mut resources = Map::new();
    let mut i = 0usize;
    while resources.len() < count(props) {
        let name = i.to_string();
        i += 1;
        if skip.contains(&name) {
            continue;
        }
        let mut member = Map::new();
        member.insert(
            "type".into(),
            def.get("type")
                .cloned()
                .unwrap_or_else(|| json!("OS::Heat::None")),
        );
        for key in ["properties", "metadata"] {
            if let Some(v) = def.get(key).filter(|v| !v.is_null()) {
                member.insert(key.into(), substitute(v, &var, &name));
            }
        }
        resources.insert(name, Value::Object(member));
    }
    json!({
        "heat_template_version": "2015-04-30",
        "resources": resources,
    })
}

/// Heat's check of a group's `resource_def` before the stack is created:
/// its type must be known.
pub(crate) fn check_group(
    name: &str,
    props: &Value,
    template: &heat::StackTemplate,
) -> Result<(), heat::Error> {
    let Some(ty) = props
        .get("resource_def")
        .and_then(|d| d.get("type"))
        .filter(|t| known(t) && !t.is_null())
    else {
        return Ok(());
    };
    match template.resolve_type(&value_text(ty), None) {
        Ok(_) => Ok(()),
        Err(errors) => Err(errors.into_iter().next().map_or_else(
            || {
                heat::Error::validation(
                    format!("resources.{name}: invalid resource_def"),
                    heat::Path::root(),
                )
            },
            |mut e| {
                e.path = heat::Path::keys(["resources", name, "properties", "resource_def"]);
                e
            },
        )),
    }
}

/// The property type Heat gives a nested template's parameter (a template
/// resource's properties are its parameters).
fn property_type(t: heat::ParamType) -> &'static str {
    match t {
        heat::ParamType::String => "string",
        heat::ParamType::Number => "number",
        heat::ParamType::Boolean => "boolean",
        heat::ParamType::CommaDelimitedList => "list",
        heat::ParamType::Json => "map",
    }
}

/// Heat's message for an error inside a nested stack, placed under
/// `prefix` (`resources.nested<member.yaml>`).
fn nested_error(prefix: &str, mut e: heat::Error) -> heat::Error {
    e.message = match e.message.strip_prefix("Property error: ") {
        Some(rest) => format!("Property error: {prefix}.{rest}"),
        None => format!("{prefix}: {}", e.message),
    };
    e.document = None;
    e.position = None;
    e
}

/// Validates a nested template with the parameter values known before the
/// stack exists (as Heat validates nested stacks at create).
fn validate_nested(
    t: &heat::StackTemplate,
    props: &Value,
    prefix: &str,
) -> Result<(), heat::Error> {
    let mut params = heat::ParameterValues::new();
    if let Value::Object(m) = props {
        for (k, v) in m {
            if known(v) && !v.is_null() {
                params.insert(k.clone(), v.clone());
            }
        }
    }
    match t.validate(&params) {
        Ok(_) => Ok(()),
        Err(errors) => match errors.into_iter().next() {
            Some(e) => Err(nested_error(prefix, e)),
            None => Ok(()),
        },
    }
}

/// Heat's checks of nested stacks before the stack is created: a template
/// resource's properties against the nested parameters' types, the nested
/// template itself, and a group's member definition (as member `0`).
pub(crate) fn check_nested(
    kind: super::Kind,
    name: &str,
    type_name: &str,
    nested: Option<&heat::StackTemplate>,
    props: &Value,
    parent: &heat::StackTemplate,
) -> Result<(), heat::Error> {
    match kind {
        super::Kind::Template => {
            let Some(t) = nested else { return Ok(()) };
            if let Value::Object(m) = props {
                for (k, v) in m {
                    let Some(schema) = t.template().parameters.get(k) else {
                        continue;
                    };
                    if !known(v) || v.is_null() {
                        continue;
                    }
                    let ty = property_type(schema.ty);
                    let convertible = matches!(ty, "list" | "map");
                    if let Some(m) = heat::stack::property_value_error(ty, convertible, v) {
                        return Err(heat::Error::validation(
                            format!("Property error: resources.{name}.properties.{k}: {m}"),
                            heat::Path::keys(["resources", name, "properties", k.as_str()]),
                        ));
                    }
                }
            }
            validate_nested(t, props, &format!("resources.{name}<{type_name}>"))
        }
        super::Kind::ResourceGroup => {
            let Some(def) = props.get("resource_def") else {
                return Ok(());
            };
            let Some(ty) = def.get("type").filter(|t| known(t)).map(value_text) else {
                return Ok(());
            };
            let member = substitute(
                def.get("properties").unwrap_or(&Value::Null),
                &index_var(props),
                "0",
            );
            let prefix = format!("resources.{name}<nested_stack>.resources.0");
            let Ok((resolved, nested)) = parent.resolve_type(&ty, None) else {
                return Ok(());
            };
            // A member of Heat's own types is checked when the group's nested
            // stack is made (`engine::action::members_checked`), as Heat does.
            match nested {
                Some(t) => validate_nested(&t, &member, &format!("{prefix}<{}>", resolved.name())),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// The members of a group, in index order.
fn members<'a>(view: &View<'a>) -> Vec<&'a ResourceState> {
    let mut m: Vec<&ResourceState> = view.tree.resources.iter().filter(|r| r.exists()).collect();
    m.sort_by_key(|r| r.name.parse::<u64>().unwrap_or(u64::MAX));
    m
}

fn member_attribute(view: &View<'_>, member: &ResourceState, path: &[Value]) -> Value {
    match path.split_first() {
        None => reference(view, member),
        Some((attr, rest)) => attribute(view, member, &value_text(attr), rest),
    }
}

/// A group's attributes: `refs`, `refs_map`, `removed_rsrc_list`,
/// `attributes` (with a member attribute name), `resource.<n>` (a member's
/// id, or with a path its attribute), and any other name (that attribute
/// of every member, as a list).
pub(crate) fn group_attribute(
    view: &View<'_>,
    r: &ResourceState,
    name: &str,
    path: &[Value],
) -> Value {
    let Some(nested) = view.nested(r) else {
        return Value::Null;
    };
    let all = members(&nested);
    let select = heat::eval::select_attr_path;
    if let Some(rest) = name.strip_prefix("resource.") {
        let (index, attr) = match rest.split_once('.') {
            Some((i, a)) => (i, Some(a)),
            None => (rest, None),
        };
        let Some(m) = all.iter().find(|m| &*m.name == index) else {
            return Value::Null;
        };
        return match attr {
            Some(a) => attribute(&nested, m, a, path),
            None => member_attribute(&nested, m, path),
        };
    }
    match name {
        "refs" => select(
            Value::Array(all.iter().map(|m| reference(&nested, m)).collect()),
            path,
        ),
        "refs_map" => select(
            Value::Object(
                all.iter()
                    .map(|m| (m.name.to_string(), reference(&nested, m)))
                    .collect(),
            ),
            path,
        ),
        "removed_rsrc_list" => select(json!([]), path),
        "attributes" => match path.split_first() {
            None => Value::Null,
            Some((attr, rest)) => {
                let attr = value_text(attr);
                Value::Object(
                    all.iter()
                        .map(|m| (m.name.to_string(), attribute(&nested, m, &attr, rest)))
                        .collect(),
                )
            }
        },
        _ => Value::Array(
            all.iter()
                .map(|m| attribute(&nested, m, name, path))
                .collect(),
        ),
    }
}

/// A template resource's attributes: the nested stack's outputs (and
/// `resource.<name>.<attribute>` of its resources).
pub(crate) fn template_attribute(
    view: &View<'_>,
    r: &ResourceState,
    name: &str,
    path: &[Value],
) -> Value {
    let (Some(nested), Some(n)) = (view.nested(r), r.nested()) else {
        return Value::Null;
    };
    if let Some(rest) = name.strip_prefix("resource.") {
        let (res, attr) = match rest.split_once('.') {
            Some((res, attr)) => (res, Some(attr)),
            None => (rest, None),
        };
        let Some(m) = nested.tree.get(res).filter(|m| m.exists()) else {
            return Value::Null;
        };
        return match attr {
            Some(a) => attribute(&nested, m, a, path),
            None => member_attribute(&nested, m, path),
        };
    }
    if name == "OS::stack_id" {
        return Value::String(n.id.to_string());
    }
    heat::eval::select_attr_path(n.outputs.get(name).cloned().unwrap_or(Value::Null), path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_get_their_index_and_skip_removed_names() {
        let t = group_template(&json!({
            "count": 3,
            "index_var": "__i__",
            "removal_policies": [{"resource_list": ["1"]}],
            "resource_def": {"type": "OS::Heat::Value", "properties": {"value": "v__i__", "list": ["__i__"]}},
        }));
        let r = &t["resources"];
        let names: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert_eq!(names, ["0", "2", "3"]);
        assert_eq!(r["2"]["properties"]["value"], "v2");
        assert_eq!(r["3"]["properties"]["list"][0], "3");
        assert_eq!(
            group_template(&json!({"resource_def": {"type": "X"}}))["resources"]
                .as_object()
                .unwrap()
                .len(),
            1
        );
    }
}
