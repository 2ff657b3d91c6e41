//! Wait conditions and their handles. Nothing boots in the embedded cloud,
//! so the engine plays the booted server: each wait condition is signalled
//! (`count` times, with no data) once `signal_delay` has passed, and times
//! out as Heat's does when its `timeout` is shorter.

use std::time::Duration;

use base64::Engine as _;
use occi_so_sdk::StackAction;
use rand::RngCore;
use serde_json::{json, Map, Value};

use super::{value_text, Apply, Effort, Failure, Kind};
use crate::embedded::config::EmbeddedConfig;
use crate::embedded::state::{Data, ResourceState};
use crate::embedded::view::View;

/// A Keystone-token-looking random token (what Heat stores for the
/// handle's `TOKEN_SIGNAL` transport).
fn new_token() -> String {
    let mut bytes = [0u8; 132];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "gAAAAA{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// `OS::Heat::WaitConditionHandle` at create: its token.
pub(crate) fn create_handle() -> Data {
    Data::Text(new_token().into())
}

fn count(props: &Value) -> u64 {
    props
        .get("count")
        .and_then(|c| match c {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
        .unwrap_or(1)
        .max(1)
}

fn timeout(props: &Value) -> Option<Duration> {
    let secs = match props.get("timeout")? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs.clamp(0.0, 86_400.0 * 365.0)))
}

/// A wait condition takes `signal_delay`, or fails at its `timeout` when
/// that comes first (`WaitConditionTimeout: ... 0 of 1 received`).
pub(crate) fn wait_condition_effort(
    action: StackAction,
    props: &Value,
    config: &EmbeddedConfig,
) -> Effort {
    if action == StackAction::Delete {
        return Effort {
            wait: config.resource_delay,
            failure: None,
        };
    }
    let delay = config.signal_delay;
    match timeout(props) {
        Some(t) if t < delay => Effort {
            wait: t,
            failure: Some(Failure::new(
                "WaitConditionTimeout",
                format!("0 of {} received", count(props)),
            )),
        },
        _ => Effort {
            wait: delay,
            failure: None,
        },
    }
}

/// The handle a wait condition names (`handle: {get_resource: ...}`).
fn handle_of<'a>(view: &View<'a>, props: &Value) -> Option<&'a ResourceState> {
    let reference = props.get("handle").map(value_text)?;
    view.tree
        .resources
        .iter()
        .find(|r| r.exists() && (view.physical_id(r) == reference || *r.name == reference))
}

/// A wait condition's `data` once signalled: Heat's JSON text of the
/// signals by id (`{"1": null}` for one signal without data).
pub(crate) fn wait_condition_data(a: &Apply<'_>) -> Data {
    let mut m = Map::new();
    for i in 1..=count(a.props) {
        m.insert(i.to_string(), Value::Null);
    }
    Data::Text(heat::pyfmt::py_json(&Value::Object(m), false).into())
}

/// Heat's check when a wait condition starts: its handle must be one.
pub(crate) fn check_handle(a: &Apply<'_>) -> Result<(), Failure> {
    match handle_of(&a.view, a.props) {
        Some(h) if h.kind == Kind::WaitConditionHandle => Ok(()),
        Some(h) => Err(Failure::new(
            "ValueError",
            format!("{} is not a valid wait condition handle.", h.name),
        )),
        None => Err(Failure::new(
            "ValueError",
            format!(
                "{} is not a valid wait condition handle.",
                a.props.get("handle").map(value_text).unwrap_or_default()
            ),
        )),
    }
}

/// The attributes of wait conditions and their handles.
pub(crate) fn attribute(view: &View<'_>, r: &ResourceState, name: &str) -> Value {
    match (r.kind, name, &r.data) {
        (Kind::WaitCondition, "data", Data::Text(d)) => Value::String(d.to_string()),
        (Kind::WaitConditionHandle, _, Data::Text(token)) => {
            let endpoint = format!(
                "{}/{}/stacks/{}/{}/resources/{}/signal",
                view.env.config.heat_url.trim_end_matches('/'),
                view.project,
                view.stack_name,
                view.stack_id,
                r.name
            );
            match name {
                "token" => Value::String(token.to_string()),
                "endpoint" => Value::String(endpoint),
                "curl_cli" => Value::String(format!(
                    "curl -i -X POST -H 'X-Auth-Token: {token}' -H 'Content-Type: application/json' -H 'Accept: application/json' {endpoint}"
                )),
                // Heat's own answer for its default (token) transport.
                "signal" => json!("null"),
                _ => Value::Null,
            }
        }
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_timeout_fails_as_heat_words_it() {
        let config = EmbeddedConfig {
            signal_delay: Duration::from_secs(5),
            ..EmbeddedConfig::default()
        };
        let e = wait_condition_effort(
            StackAction::Create,
            &json!({"timeout": 1, "count": 2}),
            &config,
        );
        assert_eq!(e.wait, Duration::from_secs(1));
        let f = e.failure.unwrap();
        assert_eq!(
            (f.class.as_str(), f.message.as_str()),
            ("WaitConditionTimeout", "0 of 2 received")
        );
        let e = wait_condition_effort(StackAction::Create, &json!({"timeout": 600}), &config);
        assert_eq!(e.wait, Duration::from_secs(5));
        assert!(e.failure.is_none());
        assert!(new_token().starts_with("gAAAAA"));
    }
}
