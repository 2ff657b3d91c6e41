//! The ESCM plugin's whole lifecycle through `Stacks` against a real
//! OpenStack Heat (`scripts/heat-local.sh`, URL in `OCCI_SO_TEST_HEAT_URL`;
//! Nova, Neutron and Cinder mapped to `OS::Heat::None`, the software-config
//! resources real): the two stacks in order, the volume ids passed across,
//! the parameters Heat received (hidden ones as `******`), the boot
//! configuration Heat rendered (and what it writes on the instance, run in
//! dry-run mode), the outputs as attributes, updates, and dispose in
//! reverse order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod support;

use std::sync::Arc;

use occi_so_backend::{OpenStackBackend, OpenStackConfig};
use occi_so_plugin_escm::catalog::{names, outputs};
use occi_so_plugin_escm::{EscmConfig, EscmPlugin, INSTANCE, VOLUMES};
use occi_so_sdk::{
    Attributes, Credentials, LifecycleCtx, Operation, Orchestrator, PluginError, StackBackend,
    Stacks,
};
use occi_so_testkit::RecordingSink;
use serde_json::{json, Value};
use support::CertificateDir;

/// The software config Heat stored for a resource of the instance stack.
async fn software_config(
    heat: &str,
    backend: &dyn StackBackend,
    ctx: &LifecycleCtx,
    resource: &str,
) -> (String, String) {
    let stack = ctx
        .stacks
        .get(INSTANCE)
        .and_then(|r| r.stack.clone())
        .unwrap();
    let resources = backend
        .resources(ctx.stacks.credentials(), &stack)
        .await
        .unwrap();
    let r = resources
        .iter()
        .find(|r| r.resource_name == resource)
        .unwrap_or_else(|| panic!("no resource {resource}"));
    assert_eq!(
        r.resource_status.as_str(),
        "CREATE_COMPLETE",
        "{resource}: {}",
        r.resource_status_reason
    );
    let id = r.physical_resource_id.clone();
    let body: Value = reqwest::get(format!("{heat}/software_configs/{id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let config = body["software_config"]["config"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (id, config)
}

fn resource_names(resources: &[occi_so_sdk::ResourceInfo]) -> Vec<&str> {
    resources.iter().map(|r| r.resource_name.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_lifecycle_on_the_local_heat() {
    let Some(heat) = occi_so_testkit::require_heat() else {
        return;
    };
    let backend = Arc::new(OpenStackBackend::new(OpenStackConfig::local_heat(&heat)).unwrap());
    let Some(certs) = CertificateDir::new(true).await else {
        return;
    };
    let plugin = EscmPlugin::new(EscmConfig {
        certificate_dir: certs.root().to_path_buf(),
    })
    .unwrap();
    let mut attributes = support::everything();
    attributes.extend(certs.attributes());
    plugin
        .validate(&Operation::Design, &attributes)
        .await
        .unwrap();

    let sink = Arc::new(RecordingSink::default());
    let creds = Credentials::new("admin", None);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let prefix = format!("so-escm-{nanos:08x}");
    let mut ctx = LifecycleCtx {
        instance_id: "default".into(),
        location: "/escm/default".into(),
        credentials: creds.clone(),
        attributes,
        state: Default::default(),
        mixins: Vec::new(),
        stacks: Stacks::new(
            backend.clone(),
            creds.clone(),
            sink.clone(),
            prefix.clone(),
            vec![],
        ),
    };

    // --- deploy: the volume stack, then the instance stack ---
    plugin
        .validate(&Operation::Deploy, &ctx.attributes)
        .await
        .unwrap();
    plugin.run(&Operation::Deploy, &mut ctx).await.unwrap();
    let events = sink.events();
    let last_volumes = events
        .iter()
        .rposition(|e| e.contains(" volumes "))
        .unwrap();
    let first_instance = events
        .iter()
        .position(|e| e.contains(" instance "))
        .unwrap();
    assert!(
        last_volumes < first_instance,
        "the volume stack completes before the instance stack starts: {events:?}"
    );
    assert_eq!(events[last_volumes], "changed volumes CREATE_COMPLETE");
    let roles: Vec<&str> = ctx
        .stacks
        .records()
        .iter()
        .map(|r| r.role.as_str())
        .collect();
    assert_eq!(roles, [VOLUMES, INSTANCE]);
    assert_eq!(
        ctx.stacks.get(VOLUMES).unwrap().name,
        format!("{prefix}-volumes")
    );

    let volumes = ctx.stacks.refresh(VOLUMES).await.unwrap();
    assert_eq!(volumes.status.to_string(), "CREATE_COMPLETE");
    assert_eq!(volumes.parameters["logs_size"], "3");
    assert_eq!(volumes.parameters["data_size"], "4");
    let logs_id = volumes
        .output("logs_volume_id")
        .and_then(Value::as_str)
        .unwrap()
        .to_string();
    let data_id = volumes
        .output("data_volume_id")
        .and_then(Value::as_str)
        .unwrap()
        .to_string();
    assert!(!logs_id.is_empty() && logs_id != data_id);

    let instance = ctx.stacks.refresh(INSTANCE).await.unwrap();
    assert_eq!(
        instance.status.to_string(),
        "CREATE_COMPLETE",
        "{}",
        instance.status_reason
    );
    let p = &instance.parameters;
    assert_eq!(p["logs_volume_id"], logs_id, "the volume ids pass across");
    assert_eq!(p["data_volume_id"], data_id);
    for hidden in [
        "mail_password",
        "docker_password",
        "proxy_password",
        "ssl_key",
    ] {
        assert_eq!(p[hidden], "******", "{hidden} is a hidden parameter");
    }
    assert_eq!(p["mail_host"], "mail.example.com");
    assert_eq!(p["mail_port"], "587");
    assert_eq!(p["mail_auth"], "true");
    assert_eq!(p["mail_user"], "mailer");
    assert_eq!(p["mail_from"], "escm@example.com");
    assert_eq!(p["docker_dockerhub"], "false");
    assert_eq!(p["docker_host"], "registry.example.com");
    assert_eq!(p["docker_port"], "5443");
    assert_eq!(p["proxy_enabled"], "true");
    assert_eq!(
        p["proxy_no_proxy"],
        "localhost,127.0.0.1,intranet.example.com,10.0.0.0/8"
    );
    assert_eq!(p["image"], "sles12-sp3");
    assert_eq!(p["flavor"], "escm.small");
    assert_eq!(p["floating_network"], "floating");
    assert_eq!(p["public_key"], support::PUBLIC_KEY);
    assert_eq!(p["ssl_fqdn"], "escm.example.com");
    let cert = std::fs::read_to_string(certs.path("certs/signing_cert.pem")).unwrap();
    assert_eq!(p["ssl_cert"], cert.trim_end());
    assert_eq!(p["escm_provision"], "false");
    let resources = backend.resources(&creds, &instance.stack).await.unwrap();
    let names_seen = resource_names(&resources);
    for r in [
        "escm_network",
        "escm_subnet",
        "router",
        "router_interface",
        "allow_inbound",
        "port_appserver",
        "ip_appserver",
        "keypair",
        "appserver",
        "logs_volume_attachment",
        "data_volume_attachment",
        "wait_handle",
        "wait_condition",
        "user_data_params",
        "userdata_appserver",
        "db_password",
        "key_secret",
        "db_core_password",
        "db_app_password",
    ] {
        assert!(names_seen.contains(&r), "{r} missing: {names_seen:?}");
    }
    assert!(
        !names_seen.contains(&"escm_config"),
        "ESCM is configured only at provision"
    );
    assert!(
        !names_seen.contains(&"escm_flavor"),
        "no flavor unless asked for"
    );
    // The boot script Heat rendered mounts the volumes by id.
    let (_, boot) = software_config(&heat, backend.as_ref(), &ctx, "user_data_params").await;
    assert!(
        boot.contains(&format!("logs_dev='/dev/disk/by-id/virtio-{logs_id}'")),
        "{boot}"
    );
    assert!(boot.contains(&format!("data_dev='/dev/disk/by-id/virtio-{data_id}'")));

    // --- state after deploy ---
    let report = plugin
        .state(occi_so_sdk::InstanceView {
            attributes: &ctx.attributes,
            stacks: ctx.stacks.records(),
            state: &ctx.state,
        })
        .await
        .unwrap();
    let a = &report.attributes;
    let vid = ctx.stacks.get(VOLUMES).unwrap().stack.clone().unwrap().id;
    let iid = ctx.stacks.get(INSTANCE).unwrap().stack.clone().unwrap().id;
    assert_eq!(
        a["occi.mcn.stack.id"],
        format!("volumes:{vid},instance:{iid}")
    );
    assert_eq!(a["occi.mcn.stack.state"], "CREATE_COMPLETE");
    assert_eq!(a[outputs::LOGS_VOLUME_ID], logs_id.as_str());
    assert_eq!(a[outputs::DATA_VOLUME_ID], data_id.as_str());
    assert_eq!(a[outputs::VOLUMES_STACK_ID], vid.as_str());
    assert_eq!(a[outputs::INSTANCE_STACK_STATE], "CREATE_COMPLETE");
    // OS::Heat::None has no address: no ip_appserver, and no URLs before provision.
    assert!(!a.contains_key(outputs::URL_PORTAL));
    assert_no_secrets(&format!("{report:?}"));

    // --- provision: the instance stack updated with ESCM's configuration ---
    plugin
        .validate(&Operation::Provision, &ctx.attributes)
        .await
        .unwrap();
    plugin.run(&Operation::Provision, &mut ctx).await.unwrap();
    let instance = ctx.stacks.refresh(INSTANCE).await.unwrap();
    assert_eq!(
        instance.status.to_string(),
        "UPDATE_COMPLETE",
        "{}",
        instance.status_reason
    );
    assert_eq!(instance.stack.id, iid, "provision updates, never recreates");
    assert_eq!(instance.parameters["escm_provision"], "true");
    assert_eq!(instance.parameters["mail_password"], "******");
    let (config_id, config) = software_config(&heat, backend.as_ref(), &ctx, "escm_config").await;
    assert!(
        config.contains(&format!("SMTP_PWD={}\n", support::MAIL_PASSWORD)),
        "the hidden password reaches the instance"
    );
    let (_, mime) = software_config(&heat, backend.as_ref(), &ctx, "userdata_appserver").await;
    assert!(mime.starts_with("Content-Type: multipart/mixed"), "{mime}");
    assert!(
        mime.contains("mount_volume") && mime.contains("ESCM_VAR_ENV_END"),
        "both parts are in the user data"
    );

    // What the instance does with it (files written, commands recorded).
    let Some(run) = support::dry_run(&config).await else {
        return;
    };
    check_instance_files(&run, &cert);
    let report = plugin
        .state(occi_so_sdk::InstanceView {
            attributes: &ctx.attributes,
            stacks: ctx.stacks.records(),
            state: &ctx.state,
        })
        .await
        .unwrap();
    // Both complete: the MCN state is the first stack's; each stack has its own.
    assert_eq!(report.attributes["occi.mcn.stack.state"], "CREATE_COMPLETE");
    assert_eq!(
        report.attributes[outputs::INSTANCE_STACK_STATE],
        "UPDATE_COMPLETE"
    );
    assert_no_secrets(&format!("{report:?}"));

    // --- update: a new mail host re-renders the configuration ---
    let changed: Attributes = [(names::MAIL_HOST.to_string(), json!("smtp2.example.com"))].into();
    ctx.attributes.extend(changed.clone());
    plugin
        .validate(&Operation::update(changed.clone()), &ctx.attributes)
        .await
        .unwrap();
    let volumes_before = ctx.stacks.refresh(VOLUMES).await.unwrap();
    plugin
        .run(
            &Operation::Update {
                changed: changed.clone(),
            },
            &mut ctx,
        )
        .await
        .unwrap();
    let instance = ctx.stacks.refresh(INSTANCE).await.unwrap();
    assert_eq!(instance.status.to_string(), "UPDATE_COMPLETE");
    assert_eq!(instance.parameters["mail_host"], "smtp2.example.com");
    assert_eq!(
        instance.parameters["escm_provision"], "true",
        "still provisioned"
    );
    let (new_id, config) = software_config(&heat, backend.as_ref(), &ctx, "escm_config").await;
    assert_ne!(
        new_id, config_id,
        "a new configuration replaces the old one"
    );
    assert!(config.contains("SMTP_HOST=smtp2.example.com\n"));
    assert_eq!(
        ctx.stacks.refresh(VOLUMES).await.unwrap().updated_time,
        volumes_before.updated_time,
        "the volume stack is left alone"
    );

    // --- update: the data volume grows; the instance stack is left alone ---
    let instance_before = instance.updated_time.clone();
    let changed: Attributes = [(names::DATA_SIZE.to_string(), json!(6))].into();
    ctx.attributes.extend(changed.clone());
    plugin
        .run(
            &Operation::Update {
                changed: changed.clone(),
            },
            &mut ctx,
        )
        .await
        .unwrap();
    let volumes = ctx.stacks.refresh(VOLUMES).await.unwrap();
    assert_eq!(volumes.status.to_string(), "UPDATE_COMPLETE");
    assert_eq!(volumes.parameters["data_size"], "6");
    assert_eq!(
        volumes.output("data_volume_id").and_then(Value::as_str),
        Some(data_id.as_str()),
        "the same volume, grown"
    );
    assert_eq!(
        ctx.stacks.refresh(INSTANCE).await.unwrap().updated_time,
        instance_before
    );

    // --- update: a volume cannot shrink; nothing changes ---
    let changed: Attributes = [(names::DATA_SIZE.to_string(), json!(5))].into();
    ctx.attributes.extend(changed.clone());
    match plugin
        .run(
            &Operation::Update {
                changed: changed.clone(),
            },
            &mut ctx,
        )
        .await
    {
        Err(PluginError::InvalidAttribute { name, message }) => {
            assert_eq!(name, names::DATA_SIZE);
            assert!(message.contains("cannot shrink"), "{message}");
        }
        other => panic!("shrinking was not refused: {other:?}"),
    }
    assert_eq!(
        ctx.attributes[names::DATA_SIZE],
        json!(6),
        "the deployed size is kept"
    );
    assert_eq!(
        ctx.stacks.refresh(VOLUMES).await.unwrap().parameters["data_size"],
        "6"
    );

    // --- dispose: the instance stack, then the volume stack ---
    let names_before: Vec<String> = ctx
        .stacks
        .records()
        .iter()
        .map(|r| r.name.clone())
        .collect();
    let before = sink.events().len();
    plugin.run(&Operation::Dispose, &mut ctx).await.unwrap();
    let events = sink.events()[before..].to_vec();
    let removed: Vec<&String> = events.iter().filter(|e| e.starts_with("removed")).collect();
    assert_eq!(
        removed,
        ["removed instance", "removed volumes"],
        "{events:?}"
    );
    let first_volumes = events.iter().position(|e| e.contains(" volumes")).unwrap();
    let instance_gone = events.iter().position(|e| e == "removed instance").unwrap();
    assert!(
        instance_gone < first_volumes,
        "the volume stack is deleted only after the instance stack is gone: {events:?}"
    );
    assert!(ctx.stacks.records().is_empty());
    for name in names_before {
        assert_eq!(
            backend.find(&creds, &name).await.unwrap(),
            None,
            "{name} is gone"
        );
    }
}

fn assert_no_secrets(text: &str) {
    for s in [
        support::MAIL_PASSWORD,
        support::DOCKER_PASSWORD,
        support::PROXY_PASSWORD,
        "PRIVATE KEY",
    ] {
        assert!(!text.contains(s), "a secret shows: {text}");
    }
}

/// The files `deploy-escmserver` writes on the instance, and the commands it runs.
fn check_instance_files(run: &support::DryRun, cert: &str) {
    // var.env, verbatim values
    assert_eq!(run.var_env("SMTP_HOST"), "mail.example.com");
    assert_eq!(run.var_env("SMTP_PORT"), "587");
    assert_eq!(run.var_env("SMTP_PWD"), support::MAIL_PASSWORD);
    assert_eq!(run.var_env("SMTP_AUTH"), "true");
    assert_eq!(run.var_env("SMTP_TLS"), "true");
    assert_eq!(run.var_env("SMTP_FROM"), "escm@example.com");
    assert_eq!(run.var_env("APP_ADMIN_MAIL_ADDRESS"), "escm@example.com");
    assert_eq!(run.var_env("HOST_FQDN"), "escm.example.com");
    assert_eq!(run.var_env("DOCKER_REGISTRY_PWD"), support::DOCKER_PASSWORD);
    assert_eq!(run.var_env("PROXY_PWD"), support::PROXY_PASSWORD);
    assert_eq!(
        run.var_env("PROXY_NOPROXY"),
        "localhost|127.0.0.1|intranet.example.com|10.0.0.0/8|oscm-core"
    );
    for generated in ["DB_PWD_CORE", "DB_PWD_APP", "DB_SUPERPWD", "KEY_SECRET"] {
        let v = run.var_env(generated);
        assert!(
            v.len() == 32 && v.chars().all(|c| c.is_ascii_alphanumeric()),
            "{generated}={v}"
        );
    }
    assert_ne!(run.var_env("DB_PWD_CORE"), run.var_env("DB_PWD_APP"));
    assert!(run
        .var_env("REPORT_ENGINEURL")
        .starts_with("https://escm.example.com:8681/birt/frameset?__report=${reportname}"));
    // .env: the custom registry's images
    let env = run.read("docker/.env");
    assert!(
        env.contains("IMAGE_CORE=registry.example.com:5443/servicecatalog/oscm-core:v17.5.0\n"),
        "{env}"
    );
    assert!(env.contains("DOCKER_PATH=/docker\n"));
    // Docker's proxy, with the credentials percent-encoded (and % doubled for systemd)
    let dropin = run.read("etc/systemd/system/docker.service.d/http-proxy.conf");
    assert!(
        dropin.contains("HTTP_PROXY=http://surfer:pr%%40xy%%3Ap%%25w%%27d@proxy.example.com:3128"),
        "{dropin}"
    );
    assert!(
        dropin.contains("HTTPS_PROXY=http://surfer:pr%%40xy%%3Ap%%25w%%27d@proxy.example.com:3129")
    );
    assert!(
        dropin.contains("NO_PROXY=localhost,127.0.0.1,intranet.example.com,10.0.0.0/8,oscm-core")
    );
    // the registry login
    let login = run.read("root/.docker/config.json");
    let auth = base64_of(&format!("puller:{}", support::DOCKER_PASSWORD));
    assert!(
        login.contains(&format!(
            "\"registry.example.com:5443\": {{\"auth\": \"{auth}\"}}"
        )),
        "{login}"
    );
    // certificates for every service
    for service in [
        "oscm-core",
        "oscm-app",
        "oscm-birt",
        "oscm-branding",
        "oscm-help",
    ] {
        assert_eq!(
            run.read(&format!("docker/config/{service}/ssl/cert/escm.crt"))
                .trim_end(),
            cert.trim_end()
        );
        assert!(run
            .read(&format!("docker/config/{service}/ssl/privkey/escm.key"))
            .contains("PRIVATE KEY"));
        assert_eq!(
            run.read(&format!("docker/config/{service}/ssl/chain/escm.chain"))
                .trim_end(),
            cert.trim_end()
        );
    }
    // the deployer, with the database initialised on this first run
    let commands = run.read("docker/dry-run.log");
    assert!(commands.contains("systemctl restart docker"), "{commands}");
    assert!(commands
        .contains("docker pull registry.example.com:5443/servicecatalog/oscm-deployer:v17.5.0"));
    assert!(commands.contains("-e INITDB=true -e STARTUP=true registry.example.com:5443/servicecatalog/oscm-deployer:v17.5.0"), "{commands}");
    assert!(run.exists("docker/data/.escm-initdb-done"));
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}
