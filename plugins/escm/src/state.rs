//! What `GET` shows of an ESCM instance: the MCN stack id and state of
//! both stacks, each stack's own id and state, the outputs worth showing
//! (the server's floating IP and the volume ids) and, once provisioned,
//! ESCM's URLs on its real ports.
//!
//! Only the outputs in [`SHOWN_OUTPUTS`] become attributes: the real
//! template's RandomString outputs (`db_password`, `db_core_password`,
//! `db_app_password`, `key_secret`) are not outputs of ours at all (the
//! secrets go from Heat straight into the instance's `var.env`), and any
//! other output a stack may carry is dropped rather than risk showing one.

use occi_so_sdk::{InstanceView, PluginError, StateReport};
use serde_json::Value;

use crate::catalog::{names, outputs, SHOWN_OUTPUTS};
use crate::plugin::{Deployment, INSTANCE, VOLUMES};

/// ESCM's services by attribute: port and path (the security group's ports).
pub const SERVICES: &[(&str, u16, &str)] = &[
    (outputs::URL_PORTAL, 8081, "/oscm-portal"),
    (outputs::URL_MARKETPLACE, 8081, "/oscm-portal/marketplace"),
    (outputs::URL_APP, 8881, "/oscm-app"),
    (outputs::URL_REPORTS, 8681, "/birt"),
    (outputs::URL_BRANDING, 8443, "/"),
    (outputs::URL_HELP, 8543, "/"),
];

/// The state report of an ESCM instance.
pub fn report(instance: InstanceView<'_>) -> Result<StateReport, PluginError> {
    let InstanceView {
        attributes,
        stacks,
        state,
    } = instance;
    let mut r = StateReport::from_stacks(stacks);
    r.attributes
        .retain(|k, _| k.starts_with("occi.mcn.") || SHOWN_OUTPUTS.contains(&k.as_str()));
    for (role, id_attr, state_attr) in [
        (
            VOLUMES,
            outputs::VOLUMES_STACK_ID,
            outputs::VOLUMES_STACK_STATE,
        ),
        (
            INSTANCE,
            outputs::INSTANCE_STACK_ID,
            outputs::INSTANCE_STACK_STATE,
        ),
    ] {
        if let Some(rec) = stacks.iter().find(|s| s.role == role) {
            if let Some(s) = &rec.stack {
                r.attributes.insert(id_attr.into(), s.id.clone().into());
            }
            let state = match &rec.last {
                Some(info) => info.status.to_string(),
                None => "CREATE_IN_PROGRESS".into(),
            };
            r.attributes.insert(state_attr.into(), state.into());
        }
    }
    let provisioned = state.get::<Deployment>()?.provisioned;
    let ip = r
        .attributes
        .get(outputs::IP_APPSERVER)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let fqdn = attributes
        .get(names::SSL_FQDN)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    if let (true, Some(host)) = (provisioned, fqdn.or(ip)) {
        for (attr, port, path) in SERVICES {
            r.attributes.insert(
                (*attr).into(),
                format!("https://{host}:{port}{path}").into(),
            );
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use occi_so_sdk::{
        Attributes, PluginState, StackInfo, StackOutput, StackRecord, StackRef, StackStatus,
    };

    fn report_of(attributes: &Attributes, stacks: &[StackRecord], state: Value) -> StateReport {
        report(InstanceView {
            attributes,
            stacks,
            state: &PluginState::from(state),
        })
        .unwrap()
    }
    use serde_json::json;

    fn record(role: &str, id: &str, status: &str, outputs: &[(&str, Value)]) -> StackRecord {
        let stack = StackRef {
            name: format!("so-escm-1-{role}"),
            id: id.into(),
        };
        StackRecord {
            role: role.into(),
            name: stack.name.clone(),
            stack: Some(stack.clone()),
            last: Some(StackInfo {
                stack,
                status: status.parse::<StackStatus>().unwrap(),
                status_reason: String::new(),
                outputs: outputs
                    .iter()
                    .map(|(k, v)| StackOutput {
                        output_key: k.to_string(),
                        output_value: v.clone(),
                        description: None,
                        output_error: None,
                    })
                    .collect(),
                parameters: Default::default(),
                creation_time: None,
                updated_time: None,
                description: None,
                tags: vec![],
            }),
            cloud: None,
        }
    }

    fn stacks() -> Vec<StackRecord> {
        vec![
            record(
                VOLUMES,
                "v-1",
                "CREATE_COMPLETE",
                &[
                    ("logs_volume_id", json!("L")),
                    ("data_volume_id", json!("D")),
                ],
            ),
            record(
                INSTANCE,
                "i-1",
                "UPDATE_COMPLETE",
                &[
                    ("ip_appserver", json!("172.24.4.10")),
                    // as the real template had them: never shown
                    ("db_password", json!("hunter2-db")),
                    ("key_secret", json!("hunter2-key")),
                ],
            ),
        ]
    }

    #[test]
    fn both_stacks_and_the_shown_outputs() {
        let r = report_of(
            &Attributes::new(),
            &stacks(),
            json!({"provisioned": false, "logs_size": 2, "data_size": 2}),
        );
        let a = &r.attributes;
        assert_eq!(a["occi.mcn.stack.id"], "volumes:v-1,instance:i-1");
        assert_eq!(a["occi.mcn.stack.state"], "CREATE_COMPLETE");
        assert_eq!(a[outputs::VOLUMES_STACK_STATE], "CREATE_COMPLETE");
        assert_eq!(a[outputs::INSTANCE_STACK_STATE], "UPDATE_COMPLETE");
        assert_eq!(a[outputs::INSTANCE_STACK_ID], "i-1");
        assert_eq!(a[outputs::IP_APPSERVER], "172.24.4.10");
        assert_eq!(a[outputs::LOGS_VOLUME_ID], "L");
        assert!(
            !a.contains_key(outputs::URL_PORTAL),
            "no URLs before provision"
        );
        let text = format!("{a:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!a.contains_key("db_password"));
    }

    #[test]
    fn urls_once_provisioned_on_the_fqdn_or_the_ip() {
        let state = json!({"provisioned": true, "logs_size": 2, "data_size": 2});
        let r = report_of(&Attributes::new(), &stacks(), state.clone());
        assert_eq!(
            r.attributes[outputs::URL_PORTAL],
            "https://172.24.4.10:8081/oscm-portal"
        );
        assert_eq!(
            r.attributes[outputs::URL_APP],
            "https://172.24.4.10:8881/oscm-app"
        );
        assert_eq!(
            r.attributes[outputs::URL_REPORTS],
            "https://172.24.4.10:8681/birt"
        );
        assert_eq!(
            r.attributes[outputs::URL_BRANDING],
            "https://172.24.4.10:8443/"
        );
        assert_eq!(r.attributes[outputs::URL_HELP], "https://172.24.4.10:8543/");
        let mut attrs = Attributes::new();
        attrs.insert(names::SSL_FQDN.into(), json!("escm.example.com"));
        let r = report_of(&attrs, &stacks(), state.clone());
        assert_eq!(
            r.attributes[outputs::URL_PORTAL],
            "https://escm.example.com:8081/oscm-portal"
        );
    }

    #[test]
    fn the_least_successful_state_wins() {
        let mut s = stacks();
        s[1] = record(INSTANCE, "i-1", "UPDATE_FAILED", &[]);
        let r = report_of(&Attributes::new(), &s, Value::Null);
        assert_eq!(r.attributes["occi.mcn.stack.state"], "UPDATE_FAILED");
        assert_eq!(
            r.attributes[outputs::VOLUMES_STACK_STATE],
            "CREATE_COMPLETE"
        );
    }

    #[test]
    fn before_deploy() {
        let r = report_of(&Attributes::new(), &[], Value::Null);
        assert_eq!(r.attributes["occi.mcn.stack.state"], "uninitialized");
        assert_eq!(r.attributes["occi.mcn.stack.id"], "N/A");
        assert_eq!(r.attributes.len(), 2);
    }
}
