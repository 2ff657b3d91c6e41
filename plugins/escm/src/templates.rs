//! The two HOT templates of `templates/escm/` (the barclamp's
//! `volumes.yaml` and `application.yaml`, with the instance's boot scripts
//! as `get_file` targets), parsed and validated once, and the parameters
//! each stack receives.

use std::collections::BTreeMap;

use heat::{Environment, Files, Options, ParameterValues, StackIdentity, StackTemplate};
use occi_so_sdk::{PluginError, StackSpec, StackUpdate};

use crate::catalog::{names, Param, Setting, Stack};
use crate::certificates::Certificates;
use crate::settings::{self, Settings};

/// `templates/escm/volumes.yaml`: the logs and data volumes.
pub const VOLUMES_YAML: &str = include_str!("../../../templates/escm/volumes.yaml");
/// `templates/escm/application.yaml`: network, security group, server, boot configuration.
pub const APPLICATION_YAML: &str = include_str!("../../../templates/escm/application.yaml");
/// `templates/escm/user-data/heat-config`: mounts the volumes, signals the wait condition.
pub const HEAT_CONFIG: &str = include_str!("../../../templates/escm/user-data/heat-config");
/// `templates/escm/user-data/deploy-escmserver`: writes ESCM's configuration, runs its deployer.
pub const DEPLOY_ESCMSERVER: &str =
    include_str!("../../../templates/escm/user-data/deploy-escmserver");

/// The `files` map of the instance stack (`get_file` targets by name).
pub fn instance_files() -> BTreeMap<String, String> {
    [
        ("user-data/heat-config", HEAT_CONFIG),
        ("user-data/deploy-escmserver", DEPLOY_ESCMSERVER),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Stack tags, so operators can find ESCM's stacks in Heat.
const TAGS: &[&str] = &["occi-so", "escm"];

/// The Cinder ids the volume stack gives the instance stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeIds {
    /// `logs_volume_id`.
    pub logs: String,
    /// `data_volume_id`.
    pub data: String,
}

impl VolumeIds {
    /// Stand-ins for checking the instance template before the volumes exist.
    pub fn placeholder() -> Self {
        VolumeIds {
            logs: "00000000-0000-0000-0000-00000000000a".into(),
            data: "00000000-0000-0000-0000-00000000000b".into(),
        }
    }
}

/// Both templates, parsed once.
#[derive(Clone, Debug)]
pub struct Templates {
    volumes: StackTemplate,
    application: StackTemplate,
}

/// Why the shipped templates do not load (a build defect, not a request's).
#[derive(Debug, thiserror::Error)]
#[error("templates/escm/{template}: {errors}")]
pub struct TemplateError {
    /// Which template.
    pub template: &'static str,
    /// Heat's messages.
    pub errors: String,
}

fn load(name: &'static str, text: &str, files: Files) -> Result<StackTemplate, TemplateError> {
    let fail = |e: heat::Errors| TemplateError {
        template: name,
        errors: e
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; "),
    };
    let t =
        StackTemplate::parse(text, Environment::new(), files, Options::default()).map_err(fail)?;
    t.validate(&ParameterValues::new()).map_err(fail)?;
    Ok(t)
}

impl Templates {
    /// Parses and validates both templates (as Heat's `POST /validate`, strictly).
    pub fn load() -> Result<Self, TemplateError> {
        Ok(Templates {
            volumes: load("volumes.yaml", VOLUMES_YAML, Files::new())?,
            application: load("application.yaml", APPLICATION_YAML, instance_files())?,
        })
    }

    /// The volume stack's parameters.
    pub fn volumes_parameters(&self, s: &Settings) -> BTreeMap<String, String> {
        let mut p = BTreeMap::new();
        for setting in crate::catalog::all() {
            if let Param::Value(Stack::Volumes, name) = setting.param {
                if let Some(v) = s.get(setting.name) {
                    p.insert(name.to_string(), v.heat_value());
                }
            }
        }
        p
    }

    /// The instance stack's parameters: every setting, the certificate
    /// files' contents, the volume ids and whether to provision ESCM.
    pub fn instance_parameters(
        &self,
        s: &Settings,
        certificates: Option<&Certificates>,
        volumes: &VolumeIds,
        provision: bool,
    ) -> BTreeMap<String, String> {
        let mut p = BTreeMap::new();
        for setting in crate::catalog::all() {
            match setting.param {
                Param::Value(Stack::Instance, name) => {
                    if let Some(v) = s.get(setting.name) {
                        p.insert(name.to_string(), v.heat_value());
                    }
                }
                Param::FileContent(name) => {
                    let text = match (certificates, setting.name) {
                        (Some(c), names::SSL_CERTFILE) => c.cert.clone(),
                        (Some(c), names::SSL_KEYFILE) => c.key.expose().to_string(),
                        (Some(c), names::SSL_CA_CERTS) => c.chain.clone(),
                        _ => String::new(),
                    };
                    p.insert(name.to_string(), text);
                }
                Param::Value(Stack::Volumes, _) | Param::None => {}
            }
        }
        p.insert(
            "proxy_no_proxy".into(),
            settings::no_proxy(s.text(names::PROXY_NO_PROXY)),
        );
        p.insert("logs_volume_id".into(), volumes.logs.clone());
        p.insert("data_volume_id".into(), volumes.data.clone());
        p.insert("escm_provision".into(), provision.to_string());
        p
    }

    /// Checks the volume stack's parameters as Heat does at create.
    pub fn check_volumes(&self, params: &BTreeMap<String, String>) -> Result<(), PluginError> {
        check(&self.volumes, params)
    }

    /// Checks the instance stack's parameters as Heat does at create.
    pub fn check_instance(&self, params: &BTreeMap<String, String>) -> Result<(), PluginError> {
        check(&self.application, params)
    }

    /// The volume stack to create (the name is chosen by `Stacks`).
    pub fn volumes_spec(&self, parameters: BTreeMap<String, String>) -> StackSpec {
        spec(VOLUMES_YAML, parameters, BTreeMap::new())
    }

    /// The instance stack to create.
    pub fn instance_spec(&self, parameters: BTreeMap<String, String>) -> StackSpec {
        spec(APPLICATION_YAML, parameters, instance_files())
    }

    /// A full update (PUT) of the volume stack.
    pub fn volumes_update(&self, parameters: BTreeMap<String, String>) -> StackUpdate {
        update(VOLUMES_YAML, parameters, BTreeMap::new())
    }

    /// A full update (PUT) of the instance stack.
    pub fn instance_update(&self, parameters: BTreeMap<String, String>) -> StackUpdate {
        update(APPLICATION_YAML, parameters, instance_files())
    }

    /// The parsed volume template.
    pub fn volumes(&self) -> &StackTemplate {
        &self.volumes
    }

    /// The parsed instance template.
    pub fn application(&self) -> &StackTemplate {
        &self.application
    }
}

fn spec(
    template: &str,
    parameters: BTreeMap<String, String>,
    files: BTreeMap<String, String>,
) -> StackSpec {
    StackSpec {
        name: String::new(),
        template: template.to_string(),
        parameters,
        environment: None,
        files,
        timeout_mins: None,
        disable_rollback: false,
        tags: TAGS.iter().map(|t| t.to_string()).collect(),
    }
}

fn update(
    template: &str,
    parameters: BTreeMap<String, String>,
    files: BTreeMap<String, String>,
) -> StackUpdate {
    StackUpdate::Replace {
        template: template.to_string(),
        parameters,
        environment: None,
        files,
        timeout_mins: None,
    }
}

/// The attribute behind a Heat parameter, for messages.
fn attribute_of(parameter: &str) -> Option<&'static str> {
    crate::catalog::all()
        .iter()
        .find(|s: &&Setting| match s.param {
            Param::Value(_, p) | Param::FileContent(p) => p == parameter,
            Param::None => false,
        })
        .map(|s| s.name)
}

fn check(t: &StackTemplate, params: &BTreeMap<String, String>) -> Result<(), PluginError> {
    let values = ParameterValues::from(params);
    let identity = StackIdentity {
        stack_name: Some("so-escm-check".into()),
        ..StackIdentity::default()
    };
    match t.define(&values, &identity) {
        Ok(_) => Ok(()),
        Err(errors) => {
            let Some(first) = errors.first() else {
                return Err(PluginError::Invalid("the template was refused".into()));
            };
            let message = first.message.clone();
            let attribute = message
                .strip_prefix("Parameter '")
                .and_then(|rest| rest.split('\'').next())
                .and_then(attribute_of);
            Err(match attribute {
                Some(a) => PluginError::attribute(a, message),
                None => PluginError::Invalid(format!(
                    "the ESCM template refused the settings: {message}"
                )),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::tests::minimal;
    use crate::settings::Checker;

    #[test]
    fn both_templates_load_and_validate() {
        let t = Templates::load().unwrap();
        let report = t.application().validate(&ParameterValues::new()).unwrap();
        for hidden in [
            "mail_password",
            "docker_password",
            "proxy_password",
            "ssl_key",
        ] {
            assert_eq!(
                report.parameters[hidden]["NoEcho"], "true",
                "{hidden} must be a hidden parameter"
            );
        }
        assert_eq!(report.parameters["mail_host"]["NoEcho"], "false");
        let v = t.volumes().validate(&ParameterValues::new()).unwrap();
        assert_eq!(v.parameters["logs_size"]["Default"], 2);
        assert_eq!(v.parameters["data_size"]["Default"], 2);
    }

    #[test]
    fn every_parameter_has_a_setting_and_back() {
        let t = Templates::load().unwrap();
        let s = Checker::new().unwrap().check(&minimal()).unwrap();
        let p = t.instance_parameters(&s, None, &VolumeIds::placeholder(), false);
        let declared: Vec<&String> = t.application().template().parameters.keys().collect();
        for name in &declared {
            assert!(
                p.contains_key(name.as_str()),
                "no value for parameter {name}"
            );
        }
        for name in p.keys() {
            assert!(
                declared.contains(&name),
                "{name} is not a template parameter"
            );
        }
        t.check_instance(&p).unwrap();
        let v = t.volumes_parameters(&s);
        assert_eq!(v.len(), 2);
        t.check_volumes(&v).unwrap();
    }

    #[test]
    fn every_branch_of_the_instance_template_defines() {
        let t = Templates::load().unwrap();
        let mut a = minimal();
        a.insert(names::FLAVOR_CREATE.into(), serde_json::json!(true));
        a.insert(names::DOCKER_HUB.into(), serde_json::json!(false));
        a.insert(
            names::DOCKER_HOST.into(),
            serde_json::json!("registry.example.com"),
        );
        a.insert(
            names::SSL_FQDN.into(),
            serde_json::json!("escm.example.com"),
        );
        let s = Checker::new().unwrap().check(&a).unwrap();
        let p = t.instance_parameters(&s, None, &VolumeIds::placeholder(), true);
        let def = t
            .application()
            .define(&ParameterValues::from(&p), &StackIdentity::default())
            .unwrap();
        for r in [
            "escm_flavor",
            "escm_config",
            "userdata_appserver",
            "appserver",
        ] {
            assert!(def.resource(r).is_some(), "{r} is enabled");
        }
        let rendered = t
            .application()
            .render(&ParameterValues::from(&p), &heat::RenderOptions::default())
            .unwrap();
        let server = &rendered.template["resources"]["appserver"]["properties"];
        assert_eq!(
            server["flavor"],
            serde_json::json!({"get_resource": "escm_flavor"})
        );
        assert_eq!(server["user_data_update_policy"], "REPLACE");
        let parts = &rendered.template["resources"]["userdata_appserver"]["properties"]["parts"];
        assert_eq!(parts.as_array().map(Vec::len), Some(2), "{parts}");
        let params = &rendered.template["resources"]["escm_config"]["properties"]["config"]
            ["str_replace"]["params"];
        assert_eq!(
            params["@@IMAGE_PREFIX@@"],
            "registry.example.com:5000/servicecatalog"
        );
        assert_eq!(params["@@HOST_FQDN@@"], "escm.example.com");
        // Not provisioned, no flavor: the boot configuration only mounts.
        let p = t.instance_parameters(
            &Checker::new().unwrap().check(&minimal()).unwrap(),
            None,
            &VolumeIds::placeholder(),
            false,
        );
        let def = t
            .application()
            .define(&ParameterValues::from(&p), &StackIdentity::default())
            .unwrap();
        assert!(def.resource("escm_config").is_none());
        assert!(def.resource("escm_flavor").is_none());
    }

    #[test]
    fn heat_errors_name_the_attribute() {
        let t = Templates::load().unwrap();
        let s = Checker::new().unwrap().check(&minimal()).unwrap();
        let mut p = t.instance_parameters(&s, None, &VolumeIds::placeholder(), false);
        p.insert("mail_port".into(), "70000".into());
        match t.check_instance(&p).unwrap_err() {
            PluginError::InvalidAttribute { name, message } => {
                assert_eq!(name, names::MAIL_PORT);
                assert!(message.contains("mail_port"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn security_group_opens_escms_ports() {
        let t = Templates::load().unwrap();
        let mut a = minimal();
        a.insert(names::MAIL_AUTH.into(), serde_json::json!(true));
        a.insert(names::MAIL_USER.into(), serde_json::json!("mailer"));
        a.insert(
            names::MAIL_PASSWORD.into(),
            serde_json::json!("pw-in-render"),
        );
        let s = Checker::new().unwrap().check(&a).unwrap();
        let p = t.instance_parameters(&s, None, &VolumeIds::placeholder(), false);
        let rendered = t
            .application()
            .render(&ParameterValues::from(&p), &heat::RenderOptions::default())
            .unwrap();
        let rules = rendered.template["resources"]["allow_inbound"]["properties"]["rules"]
            .as_array()
            .unwrap()
            .clone();
        let ingress: Vec<i64> = rules
            .iter()
            .filter(|r| r["direction"] == "ingress")
            .map(|r| {
                assert_eq!(r["port_range_min"], r["port_range_max"]);
                assert_eq!(r["remote_ip_prefix"], "0.0.0.0/0");
                r["port_range_min"].as_i64().unwrap()
            })
            .collect();
        assert_eq!(ingress, vec![22, 8081, 8443, 8543, 8681, 8881]);
        // a hidden parameter's value never enters the rendered text
        assert!(!rendered.to_yaml().contains("pw-in-render"));
        assert_eq!(
            rendered.hidden_parameters.0.get("mail_password"),
            Some(&serde_json::json!("pw-in-render"))
        );
        assert_eq!(
            rendered.template["parameters"]["mail_user"]["default"],
            "mailer"
        );
    }
}
