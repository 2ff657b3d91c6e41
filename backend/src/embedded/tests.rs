//! The engine's behaviour through the `StackBackend` trait: state
//! transitions, rollback, update diffing, the simulated types' attributes
//! and addresses, rejections worded as Heat's, the state dir and restarts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use occi_so_sdk::{
    BackendError, Credentials, StackBackend, StackInfo, StackRef, StackSpec, StackUpdate,
    WaitOptions,
};
use serde_json::{json, Value};

use super::{EmbeddedBackend, EmbeddedConfig};

fn backend(delay_ms: u64) -> EmbeddedBackend {
    EmbeddedBackend::new(EmbeddedConfig {
        resource_delay: Duration::from_millis(delay_ms),
        signal_delay: Duration::from_millis(delay_ms * 2),
        ..EmbeddedConfig::default()
    })
    .unwrap()
}

fn creds() -> Credentials {
    Credentials::new("t1", None)
}

fn spec(name: &str, template: &str) -> StackSpec {
    StackSpec {
        name: name.into(),
        template: template.into(),
        parameters: BTreeMap::new(),
        environment: None,
        files: BTreeMap::new(),
        timeout_mins: None,
        disable_rollback: true,
        tags: vec![],
    }
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn wait(b: &EmbeddedBackend, s: &StackRef) -> StackInfo {
    let w = WaitOptions {
        timeout: Duration::from_secs(30),
    };
    b.wait(&creds(), s, &w).await.unwrap()
}

async fn run(b: &EmbeddedBackend, spec: StackSpec) -> (StackRef, StackInfo) {
    let s = b.create(&creds(), &spec).await.unwrap();
    let info = wait(b, &s).await;
    (s, info)
}

fn out(info: &StackInfo, key: &str) -> Value {
    info.output(key).cloned().unwrap_or(Value::Null)
}

async fn event_list(b: &EmbeddedBackend, s: &StackRef) -> Vec<(String, String, String)> {
    b.events(&creds(), s)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.resource_name, e.resource_status, e.resource_status_reason))
        .collect()
}

fn rejected(r: Result<StackRef, BackendError>) -> (String, String) {
    match r {
        Err(BackendError::Rejected { kind, message }) => (kind, message),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

const CHAIN: &str = r#"
heat_template_version: 2018-08-31
parameters:
  v: {type: string, default: a}
  salt: {type: string, default: s1}
resources:
  word:
    type: OS::Heat::RandomString
    properties: {length: 16, salt: {get_param: salt}}
  echo:
    type: OS::Heat::Value
    properties: {value: {get_param: v}}
  both:
    type: OS::Heat::Value
    properties: {value: {list_join: ["/", [{get_attr: [word, value]}, {get_attr: [echo, value]}]]}}
outputs:
  word: {value: {get_attr: [word, value]}}
  echo: {value: {get_attr: [echo, value]}}
  both: {value: {get_attr: [both, value]}}
"#;

#[tokio::test]
async fn a_create_is_seen_in_progress_then_complete() {
    let b = backend(40);
    let s = b.create(&creds(), &spec("walk", CHAIN)).await.unwrap();
    let first = b.get(&creds(), &s).await.unwrap();
    assert_eq!(first.status.to_string(), "CREATE_IN_PROGRESS");
    assert_eq!(first.status_reason, "Stack CREATE started");
    let mut rx = b.watch(&creds(), &s).await.unwrap();
    let mut seen = vec![rx.borrow_and_update().status.to_string()];
    while rx.changed().await.is_ok() {
        let st = rx.borrow_and_update().status.to_string();
        if seen.last() != Some(&st) {
            seen.push(st.clone());
        }
        if st == "CREATE_COMPLETE" {
            break;
        }
    }
    assert_eq!(seen, ["CREATE_IN_PROGRESS", "CREATE_COMPLETE"]);
    let info = b.get(&creds(), &s).await.unwrap();
    assert_eq!(info.status_reason, "Stack CREATE completed successfully");
    assert_eq!(
        out(&info, "both"),
        json!(format!("{}/a", out(&info, "word").as_str().unwrap()))
    );
    // Levels: word and echo together, then both.
    let ev = event_list(&b, &s).await;
    let pos = |r: &str, st: &str| ev.iter().position(|e| e.0 == r && e.1 == st).unwrap();
    assert!(pos("both", "CREATE_IN_PROGRESS") > pos("word", "CREATE_COMPLETE"));
    assert!(pos("both", "CREATE_IN_PROGRESS") > pos("echo", "CREATE_COMPLETE"));
    assert!(pos("echo", "CREATE_IN_PROGRESS") < pos("word", "CREATE_COMPLETE"));
    let resources = b.resources(&creds(), &s).await.unwrap();
    let word = resources
        .iter()
        .find(|r| r.resource_name == "word")
        .unwrap();
    assert_eq!(word.required_by, ["both"]);
    assert!(word.physical_resource_id.starts_with("walk-word-"));
}

#[tokio::test]
async fn updates_touch_only_what_changed() {
    let b = backend(1);
    let (s, before) = run(&b, spec("diff", CHAIN)).await;
    let n = event_list(&b, &s).await.len();
    // v changes echo (in place) and, through it, both; word stays.
    b.update(
        &creds(),
        &s,
        &StackUpdate::Patch {
            parameters: params(&[("v", "b")]),
        },
    )
    .await
    .unwrap();
    let after = wait(&b, &s).await;
    assert_eq!(after.status.to_string(), "UPDATE_COMPLETE");
    assert_eq!(out(&after, "word"), out(&before, "word"));
    assert_eq!(out(&after, "echo"), json!("b"));
    let ev = event_list(&b, &s).await;
    let touched: Vec<&str> = ev[n..]
        .iter()
        .filter(|e| e.1 == "UPDATE_COMPLETE" && e.0 != "diff")
        .map(|e| e.0.as_str())
        .collect();
    assert_eq!(touched, ["echo", "both"]);
    assert!(!ev[n..].iter().any(|e| e.0 == "word"));
    // salt cannot change in place: word is replaced (a new string), the
    // old one deleted after the update.
    let n = ev.len();
    b.update(
        &creds(),
        &s,
        &StackUpdate::Patch {
            parameters: params(&[("salt", "s2")]),
        },
    )
    .await
    .unwrap();
    let replaced = wait(&b, &s).await;
    assert_ne!(out(&replaced, "word"), out(&before, "word"));
    assert_eq!(out(&replaced, "echo"), json!("b"), "PATCH kept v");
    let ev = event_list(&b, &s).await;
    let word: Vec<(&str, &str)> = ev[n..]
        .iter()
        .filter(|e| e.0 == "word")
        .map(|e| (e.1.as_str(), e.2.as_str()))
        .collect();
    assert_eq!(
        word,
        [
            ("UPDATE_IN_PROGRESS", "state changed"),
            ("UPDATE_COMPLETE", "The Resource word requires replacement."),
            ("CREATE_IN_PROGRESS", "state changed"),
            ("CREATE_COMPLETE", "state changed"),
            ("DELETE_IN_PROGRESS", "state changed"),
            ("DELETE_COMPLETE", "state changed"),
        ]
    );
    // PUT: a resource removed, one added; parameters not given fall back.
    let put = CHAIN.replace(
        "  both:\n    type: OS::Heat::Value\n    properties: {value: {list_join: [\"/\", [{get_attr: [word, value]}, {get_attr: [echo, value]}]]}}\n",
        "  other:\n    type: OS::Heat::None\n",
    )
    .replace("  both: {value: {get_attr: [both, value]}}\n", "");
    b.update(
        &creds(),
        &s,
        &StackUpdate::Replace {
            template: put,
            parameters: BTreeMap::new(),
            environment: None,
            files: BTreeMap::new(),
            timeout_mins: None,
        },
    )
    .await
    .unwrap();
    let last = wait(&b, &s).await;
    assert_eq!(out(&last, "echo"), json!("a"), "default again after PUT");
    let names: Vec<String> = b
        .resources(&creds(), &s)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.resource_name)
        .collect();
    assert_eq!(names, ["word", "echo", "other"]);
    assert!(last.output("both").is_none());
}

const FAILS: &str = r#"
heat_template_version: 2018-08-31
resources:
  fine: {type: OS::Heat::None}
  boom:
    type: OS::Heat::TestResource
    depends_on: fine
    properties: {value: doomed, fail: true}
"#;

#[tokio::test]
async fn a_failed_create_rolls_back_unless_told_not_to() {
    let b = backend(1);
    let (s, info) = run(&b, spec("kept", FAILS)).await;
    assert_eq!(info.status.to_string(), "CREATE_FAILED");
    assert_eq!(
        info.status_reason,
        "Resource CREATE failed: ValueError: resources.boom: Test Resource failed boom"
    );
    assert_eq!(b.resources(&creds(), &s).await.unwrap().len(), 2);
    let mut rolled = spec("rolled", FAILS);
    rolled.disable_rollback = false;
    let (s, info) = run(&b, rolled).await;
    assert_eq!(info.status.to_string(), "ROLLBACK_COMPLETE");
    assert_eq!(info.status_reason, "Stack ROLLBACK completed successfully");
    assert!(info.status.is_failed());
    assert!(b.resources(&creds(), &s).await.unwrap().is_empty());
    let stack_events: Vec<(String, String)> = event_list(&b, &s)
        .await
        .into_iter()
        .filter(|e| e.0 == "rolled")
        .map(|e| (e.1, e.2))
        .collect();
    assert_eq!(
        stack_events,
        [
            ("CREATE_IN_PROGRESS".into(), "Stack CREATE started".into()),
            (
                "CREATE_FAILED".into(),
                "Resource CREATE failed: ValueError: resources.boom: Test Resource failed boom"
                    .into()
            ),
            (
                "ROLLBACK_IN_PROGRESS".into(),
                "Stack ROLLBACK started".into()
            ),
            (
                "ROLLBACK_COMPLETE".into(),
                "Stack ROLLBACK completed successfully".into()
            ),
        ]
    );
}

const UPDATE_FAILS: &str = r#"
heat_template_version: 2018-08-31
parameters:
  fail: {type: boolean, default: false}
  v: {type: string, default: a}
resources:
  word:
    type: OS::Heat::RandomString
    properties: {salt: {get_param: v}}
  echo:
    type: OS::Heat::Value
    properties: {value: {get_param: v}}
  t:
    type: OS::Heat::TestResource
    depends_on: [word, echo]
    properties: {value: {get_param: v}, fail: {get_param: fail}}
outputs:
  word: {value: {get_attr: [word, value]}}
  echo: {value: {get_attr: [echo, value]}}
"#;

#[tokio::test]
async fn a_failed_update_rolls_back_to_what_was() {
    let b = backend(1);
    let mut s = spec("undo", UPDATE_FAILS);
    s.disable_rollback = false;
    let (s, before) = run(&b, s).await;
    b.update(
        &creds(),
        &s,
        &StackUpdate::Patch {
            parameters: params(&[("fail", "true"), ("v", "b")]),
        },
    )
    .await
    .unwrap();
    let after = wait(&b, &s).await;
    assert_eq!(
        after.status.to_string(),
        "ROLLBACK_COMPLETE",
        "{}",
        after.status_reason
    );
    assert_eq!(
        out(&after, "word"),
        out(&before, "word"),
        "the replaced string came back"
    );
    assert_eq!(out(&after, "echo"), json!("a"));
    assert_eq!(after.parameters["v"], "a");
    assert_eq!(after.parameters["fail"], "False");
    let ev = event_list(&b, &s).await;
    let stack: Vec<&str> = ev
        .iter()
        .filter(|e| e.0 == "undo")
        .map(|e| e.1.as_str())
        .collect();
    assert_eq!(
        stack,
        [
            "CREATE_IN_PROGRESS",
            "CREATE_COMPLETE",
            "UPDATE_IN_PROGRESS",
            "UPDATE_FAILED",
            "ROLLBACK_IN_PROGRESS",
            "ROLLBACK_COMPLETE"
        ]
    );
    let resources = b.resources(&creds(), &s).await.unwrap();
    assert!(
        resources
            .iter()
            .all(|r| r.resource_status.ends_with("_COMPLETE")),
        "{resources:?}"
    );
    // A failed stack can be updated again (failed resources are replaced).
    b.update(
        &creds(),
        &s,
        &StackUpdate::Patch {
            parameters: params(&[("v", "c")]),
        },
    )
    .await
    .unwrap();
    assert_eq!(wait(&b, &s).await.status.to_string(), "UPDATE_COMPLETE");
}

#[tokio::test]
async fn rejections_are_worded_as_heats() {
    let b = backend(0);
    let c = creds();
    let t = |body: &str| format!("heat_template_version: 2018-08-31\nresources:\n{body}");
    let cases = [
        (
            t("  r: {type: OS::Heat::Nope}\n"),
            "StackValidationFailed",
            "The Resource Type (OS::Heat::Nope) could not be found.",
        ),
        (
            t("  v: {type: OS::Heat::Value}\n"),
            "StackValidationFailed",
            "Property error: resources.v.properties: Property value not assigned",
        ),
        (
            t("  v: {type: OS::Heat::Value, properties: {value: abc, type: number}}\n"),
            "StackValidationFailed",
            "Property error: resources.v.properties.value: could not convert string to float: 'abc'",
        ),
        (
            t("  r: {type: OS::Heat::RandomString, properties: {length: 2000}}\n"),
            "StackValidationFailed",
            "Property error: resources.r.properties.length: 2000 is out of range (min: 1, max: 512)",
        ),
        (
            t("  w: {type: OS::Heat::WaitCondition, properties: {timeout: 10}}\n"),
            "StackValidationFailed",
            "Property error: resources.w.properties: Property handle not assigned",
        ),
        (
            t("  g: {type: OS::Heat::ResourceGroup, properties: {count: 1, resource_def: {type: OS::Heat::Nope}}}\n"),
            "StackValidationFailed",
            "The Resource Type (OS::Heat::Nope) could not be found.",
        ),
        (
            t("  s: {type: OS::Nova::Server, properties: {image: cirros}}\n"),
            "StackValidationFailed",
            "Property error: resources.s.properties: Property flavor not assigned",
        ),
        (
            "heat_template_version: 1999-01-01\n".to_string(),
            "InvalidTemplateVersion",
            "The template version is invalid",
        ),
    ];
    for (i, (template, kind, message)) in cases.iter().enumerate() {
        let (k, m) = rejected(b.create(&c, &spec(&format!("bad{i}"), template)).await);
        assert_eq!(&k, kind, "{template}");
        assert!(m.starts_with(message), "{m}");
        assert_eq!(
            b.find(&c, &format!("bad{i}")).await.unwrap(),
            None,
            "nothing created"
        );
    }
    let (k, m) = rejected(
        b.create(&c, &spec("1bad", &t("  a: {type: OS::Heat::None}\n")))
            .await,
    );
    assert_eq!(k, "StackValidationFailed");
    assert!(m.starts_with("Invalid stack name 1bad"), "{m}");
    let mut p = spec("params", &t("  a: {type: OS::Heat::None}\n"));
    p.parameters = params(&[("nope", "1")]);
    let (k, m) = rejected(b.create(&c, &p).await);
    assert_eq!(
        (k.as_str(), m.as_str()),
        (
            "UnknownUserParameter",
            "The Parameter (nope) was not defined in template."
        )
    );
    // A refused update changes nothing.
    let (s, _) = run(&b, spec("kept", CHAIN)).await;
    let e = b
        .update(
            &c,
            &s,
            &StackUpdate::Patch {
                parameters: params(&[("nope", "x")]),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, BackendError::Rejected { .. }), "{e:?}");
    assert_eq!(
        b.get(&c, &s).await.unwrap().status.to_string(),
        "CREATE_COMPLETE"
    );
}

const CLOUD: &str = r#"
heat_template_version: 2018-08-31
resources:
  net:
    type: OS::Neutron::Net
    properties: {name: mgmt}
  subnet:
    type: OS::Neutron::Subnet
    properties: {network: {get_resource: net}, cidr: 192.168.10.0/24}
  port:
    type: OS::Neutron::Port
    properties: {network: {get_resource: net}}
  server:
    type: OS::Nova::Server
    properties:
      name: vm1
      image: cirros
      flavor: m1.tiny
      networks: [{port: {get_resource: port}}]
  fip:
    type: OS::Neutron::FloatingIP
    properties: {floating_network: public, port_id: {get_resource: port}}
  plain:
    type: OS::Nova::Server
    properties: {image: cirros, flavor: m1.tiny}
  volume:
    type: OS::Cinder::Volume
    properties: {size: 2}
  attach:
    type: OS::Cinder::VolumeAttachment
    properties: {instance_uuid: {get_resource: server}, volume_id: {get_resource: volume}}
  key:
    type: OS::Nova::KeyPair
    properties: {name: ops-key}
  router:
    type: OS::Neutron::Router
    properties: {external_gateway_info: {network: public}}
  interface:
    type: OS::Neutron::RouterInterface
    properties: {router: {get_resource: router}, subnet: {get_resource: subnet}}
  group:
    type: OS::Neutron::SecurityGroup
    properties: {rules: [{protocol: tcp, port_range_min: 22, port_range_max: 22}]}
outputs:
  first: {value: {get_attr: [server, first_address]}}
  networks: {value: {get_attr: [server, networks]}}
  private_ip: {value: {get_attr: [server, networks, mgmt, 0]}}
  public_ip: {value: {get_attr: [server, networks, mgmt, 1]}}
  addresses: {value: {get_attr: [server, addresses]}}
  port_ip: {value: {get_attr: [port, fixed_ips, 0, ip_address]}}
  mac: {value: {get_attr: [port, mac_address]}}
  floating: {value: {get_attr: [fip, floating_ip_address]}}
  fip_fixed: {value: {get_attr: [fip, fixed_ip_address]}}
  plain_ip: {value: {get_attr: [plain, first_address]}}
  name: {value: {get_attr: [server, name]}}
  plain_name: {value: {get_attr: [plain, name]}}
  volume_status: {value: {get_attr: [volume, status]}}
  volume_size: {value: {get_attr: [volume, size]}}
  subnets: {value: {get_attr: [net, subnets]}}
  key_ref: {value: {get_resource: key}}
  public_key: {value: {get_attr: [key, public_key]}}
  private_key: {value: {get_attr: [key, private_key]}}
  interface_ref: {value: {get_resource: interface}}
  router_ref: {value: {get_resource: router}}
  subnet_ref: {value: {get_resource: subnet}}
  gateway: {value: {get_attr: [router, external_gateway_info, network_id]}}
  group_ref: {value: {get_resource: group}}
"#;

#[tokio::test]
async fn servers_get_addresses_from_their_networks_and_pools() {
    let b = backend(1);
    let (s, info) = run(&b, spec("cloud", CLOUD)).await;
    assert_eq!(
        info.status.to_string(),
        "CREATE_COMPLETE",
        "{}",
        info.status_reason
    );
    assert_eq!(out(&info, "first"), json!("192.168.10.2"));
    assert_eq!(out(&info, "port_ip"), json!("192.168.10.2"));
    assert_eq!(out(&info, "private_ip"), json!("192.168.10.2"));
    let public = out(&info, "public_ip");
    assert!(
        public.as_str().unwrap().starts_with("172.24.4."),
        "{public}"
    );
    assert_eq!(out(&info, "floating"), public);
    assert_eq!(out(&info, "fip_fixed"), json!("192.168.10.2"));
    let networks = out(&info, "networks");
    assert_eq!(networks["mgmt"], json!(["192.168.10.2", public]));
    let fixed = &out(&info, "addresses")["mgmt"];
    assert_eq!(fixed[0]["OS-EXT-IPS:type"], "floating");
    assert_eq!(fixed[1]["OS-EXT-IPS:type"], "fixed");
    assert!(out(&info, "mac").as_str().unwrap().starts_with("fa:16:3e:"));
    assert!(out(&info, "plain_ip")
        .as_str()
        .unwrap()
        .starts_with("10.0."));
    assert_eq!(out(&info, "name"), json!("vm1"));
    assert!(out(&info, "plain_name")
        .as_str()
        .unwrap()
        .starts_with("cloud-plain-"));
    assert_eq!(out(&info, "volume_status"), json!("in-use"));
    assert_eq!(out(&info, "volume_size"), json!("2"));
    assert_eq!(out(&info, "subnets").as_array().map(Vec::len), Some(1));
    assert_eq!(
        out(&info, "key_ref"),
        json!("ops-key"),
        "a key pair's id is its name"
    );
    assert!(out(&info, "public_key")
        .as_str()
        .unwrap()
        .starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"));
    assert_eq!(
        out(&info, "private_key"),
        json!(""),
        "kept only with save_private_key"
    );
    assert_eq!(
        out(&info, "interface_ref"),
        json!(format!(
            "{}:subnet_id={}",
            out(&info, "router_ref").as_str().unwrap(),
            out(&info, "subnet_ref").as_str().unwrap()
        ))
    );
    assert!(uuid::Uuid::parse_str(out(&info, "gateway").as_str().unwrap()).is_ok());
    assert!(uuid::Uuid::parse_str(out(&info, "group_ref").as_str().unwrap()).is_ok());
    let stats = b.stats();
    assert_eq!((stats.private_addresses, stats.floating_addresses), (1, 1));
    // A second stack gets other addresses from the shared pools.
    let (s2, info2) = run(&b, spec("cloud2", CLOUD)).await;
    assert_ne!(out(&info2, "plain_ip"), out(&info, "plain_ip"));
    assert_ne!(out(&info2, "floating"), out(&info, "floating"));
    assert_eq!(
        out(&info2, "first"),
        json!("192.168.10.2"),
        "its own subnet"
    );
    // Deleting gives the pooled addresses back.
    for s in [&s, &s2] {
        b.delete(&creds(), s).await.unwrap();
        assert_eq!(wait(&b, s).await.status.to_string(), "DELETE_COMPLETE");
    }
    let stats = b.stats();
    assert_eq!((stats.private_addresses, stats.floating_addresses), (0, 0));
}

#[tokio::test]
async fn an_exhausted_pool_fails_the_resource_as_neutron_would() {
    let b = EmbeddedBackend::new(EmbeddedConfig {
        resource_delay: Duration::ZERO,
        private_network: super::NetworkConfig {
            name: "private".into(),
            cidr: "10.1.0.0/29".into(),
        },
        ..EmbeddedConfig::default()
    })
    .unwrap();
    let t = "heat_template_version: 2018-08-31\nresources:\n  s:\n    type: OS::Nova::Server\n    properties: {image: i, flavor: f, networks: [{network: private}, {network: private}, {network: private}]}\n";
    let (_, a) = run(&b, spec("a", t)).await;
    assert_eq!(a.status.to_string(), "CREATE_COMPLETE");
    let (_, c) = run(&b, spec("c", t)).await;
    assert_eq!(c.status.to_string(), "CREATE_FAILED");
    assert!(
        c.status_reason.starts_with("Resource CREATE failed: IpAddressGenerationFailure: resources.s: No more IP addresses available on network"),
        "{}",
        c.status_reason
    );
    assert_eq!(
        b.stats().private_addresses,
        3,
        "the failed server gave its addresses back"
    );
}

const SIGNALS: &str = r##"
heat_template_version: 2018-08-31
parameters:
  timeout: {type: number, default: 600}
resources:
  handle:
    type: OS::Heat::WaitConditionHandle
  wait:
    type: OS::Heat::WaitCondition
    properties: {handle: {get_resource: handle}, timeout: {get_param: timeout}, count: 2}
  script:
    type: OS::Heat::SoftwareConfig
    properties: {group: script, config: "#!/bin/sh\necho hi\n"}
  cloud:
    type: OS::Heat::CloudConfig
    properties: {cloud_config: {package_update: true}}
  mime:
    type: OS::Heat::MultipartMime
    properties:
      parts:
        - config: {get_resource: cloud}
        - config: {get_resource: script}
          subtype: x-shellscript
  server:
    type: OS::Nova::Server
    properties: {image: i, flavor: f, user_data: {get_resource: mime}, user_data_format: RAW}
  deploy:
    type: OS::Heat::SoftwareDeployment
    properties: {config: {get_resource: script}, server: {get_resource: server}}
outputs:
  curl: {value: {get_attr: [handle, curl_cli]}}
  data: {value: {get_attr: [wait, data]}}
  mime: {value: {get_attr: [mime, config]}}
  cloud: {value: {get_attr: [cloud, config]}}
  code: {value: {get_attr: [deploy, deploy_status_code]}}
"##;

#[tokio::test]
async fn wait_conditions_are_signalled_or_time_out() {
    let b = backend(1);
    let (s, info) = run(&b, spec("signals", SIGNALS)).await;
    assert_eq!(
        info.status.to_string(),
        "CREATE_COMPLETE",
        "{}",
        info.status_reason
    );
    let curl = out(&info, "curl");
    let curl = curl.as_str().unwrap();
    assert!(
        curl.starts_with("curl -i -X POST -H 'X-Auth-Token: gAAAAA"),
        "{curl}"
    );
    assert!(
        curl.ends_with(&format!(
            "/v1/t1/stacks/signals/{}/resources/handle/signal",
            s.id
        )),
        "{curl}"
    );
    assert_eq!(out(&info, "data"), json!("{\"1\": null, \"2\": null}"));
    let mime = out(&info, "mime");
    let mime = mime.as_str().unwrap();
    assert!(
        mime.starts_with("Content-Type: multipart/mixed; boundary=\""),
        "{mime}"
    );
    assert!(
        mime.contains("#cloud-config\npackage_update: true"),
        "{mime}"
    );
    assert!(
        mime.contains("Content-Type: text/x-shellscript; charset=\"us-ascii\""),
        "{mime}"
    );
    assert!(mime.contains("echo hi"), "{mime}");
    assert_eq!(out(&info, "code"), json!(0));
    // A timeout shorter than the boot: Heat's WaitConditionTimeout.
    let slow = EmbeddedBackend::new(EmbeddedConfig {
        resource_delay: Duration::ZERO,
        signal_delay: Duration::from_secs(5),
        ..EmbeddedConfig::default()
    })
    .unwrap();
    let mut short = spec("short", SIGNALS);
    short.parameters = params(&[("timeout", "0.2")]);
    let (_, info) = run(&slow, short).await;
    assert_eq!(info.status.to_string(), "CREATE_FAILED");
    assert_eq!(
        info.status_reason,
        "Resource CREATE failed: WaitConditionTimeout: resources.wait: 0 of 2 received"
    );
}

const MEMBER: &str = r#"
heat_template_version: 2018-08-31
parameters:
  idx: {type: string, default: "x"}
  fail: {type: boolean, default: false}
resources:
  inner:
    type: OS::Heat::TestResource
    properties:
      value: {list_join: ["-", [m, {get_param: idx}]]}
      fail: {get_param: fail}
outputs:
  out: {value: {get_attr: [inner, output]}}
"#;

const GROUPS: &str = r#"
heat_template_version: 2018-08-31
parameters:
  count: {type: number, default: 2}
  fail: {type: boolean, default: false}
resources:
  nested:
    type: member.yaml
    properties: {idx: "n"}
  group:
    type: OS::Heat::ResourceGroup
    properties:
      count: {get_param: count}
      resource_def:
        type: member.yaml
        properties: {idx: "%index%", fail: {get_param: fail}}
outputs:
  nested_out: {value: {get_attr: [nested, out]}}
  nested_ref: {value: {get_resource: nested}}
  outs: {value: {get_attr: [group, out]}}
  attrs: {value: {get_attr: [group, attributes, out]}}
  r1: {value: {get_attr: [group, resource.1, out]}}
  r1_ref: {value: {get_attr: [group, resource.1]}}
  refs: {value: {get_attr: [group, refs]}}
"#;

#[tokio::test]
async fn groups_and_nested_templates() {
    let b = backend(1);
    let mut s = spec("groups", GROUPS);
    s.files = [("member.yaml".to_string(), MEMBER.to_string())].into();
    let (st, info) = run(&b, s.clone()).await;
    assert_eq!(
        info.status.to_string(),
        "CREATE_COMPLETE",
        "{}",
        info.status_reason
    );
    assert_eq!(out(&info, "nested_out"), json!("m-n"));
    assert!(out(&info, "nested_ref")
        .as_str()
        .unwrap()
        .starts_with("arn:openstack:heat::t1:stacks/groups-nested-"));
    assert_eq!(out(&info, "outs"), json!(["m-0", "m-1"]));
    assert_eq!(out(&info, "attrs"), json!({"0": "m-0", "1": "m-1"}));
    assert_eq!(out(&info, "r1"), json!("m-1"));
    assert_eq!(out(&info, "refs").as_array().map(Vec::len), Some(2));
    assert_eq!(out(&info, "r1_ref"), out(&info, "refs")[1]);
    b.update(
        &creds(),
        &st,
        &StackUpdate::Patch {
            parameters: params(&[("count", "3")]),
        },
    )
    .await
    .unwrap();
    let grown = wait(&b, &st).await;
    assert_eq!(out(&grown, "outs"), json!(["m-0", "m-1", "m-2"]));
    assert_eq!(
        out(&grown, "refs")[0],
        out(&info, "refs")[0],
        "members kept"
    );
    b.update(
        &creds(),
        &st,
        &StackUpdate::Patch {
            parameters: params(&[("count", "1")]),
        },
    )
    .await
    .unwrap();
    assert_eq!(out(&wait(&b, &st).await, "outs"), json!(["m-0"]));
    // A member failing fails the group with Heat's nested path.
    s.name = "broken".into();
    s.parameters = params(&[("fail", "true")]);
    let (_, info) = run(&b, s).await;
    assert_eq!(info.status.to_string(), "CREATE_FAILED");
    // Both members fail; whichever is first names it.
    let reason = |i: u32| {
        format!("Resource CREATE failed: ValueError: resources.group.resources[{i}].resources.inner: Test Resource failed inner")
    };
    assert!(
        info.status_reason == reason(0) || info.status_reason == reason(1),
        "{}",
        info.status_reason
    );
}

#[tokio::test]
async fn nested_templates_are_checked_before_anything_runs() {
    let b = backend(0);
    let bad_type = "heat_template_version: 2018-08-31\nparameters:\n  idx: {type: string, default: x}\nresources:\n  inner: {type: OS::Heat::Nope}\n";
    let bad_prop = "heat_template_version: 2018-08-31\nparameters:\n  idx: {type: number}\nresources:\n  inner:\n    type: OS::Heat::RandomString\n    properties: {lenght: 3}\n";
    let nested = "heat_template_version: 2018-08-31\nresources:\n  nested:\n    type: member.yaml\n    properties: {idx: \"n\"}\n";
    let group = "heat_template_version: 2018-08-31\nresources:\n  g:\n    type: OS::Heat::ResourceGroup\n    properties:\n      count: 2\n      resource_def: {type: member.yaml, properties: {idx: \"%index%\"}}\n";
    let by_attr = "heat_template_version: 2018-08-31\nresources:\n  r: {type: OS::Heat::RandomString}\n  nested:\n    type: member.yaml\n    properties: {idx: {get_attr: [r, value]}}\n";
    // The messages the local Heat 27 gives for these (probed).
    let cases = [
        (nested, bad_type, "resources.nested<member.yaml>: The Resource Type (OS::Heat::Nope) could not be found."),
        (group, bad_type, "resources.g<nested_stack>.resources.0<member.yaml>: The Resource Type (OS::Heat::Nope) could not be found."),
        (by_attr, bad_type, "resources.nested<member.yaml>: The Resource Type (OS::Heat::Nope) could not be found."),
        (nested, bad_prop, "Property error: resources.nested.properties.idx: could not convert string to float: 'n'"),
        (group, bad_prop, "Property error: resources.g<nested_stack>.resources.0<member.yaml>.resources.inner.properties: Unknown Property lenght"),
        (by_attr, bad_prop, "Property error: resources.nested<member.yaml>.resources.inner.properties: Unknown Property lenght"),
    ];
    for (i, (parent, member, message)) in cases.iter().enumerate() {
        let mut s = spec(&format!("n{i}"), parent);
        s.files = [("member.yaml".to_string(), member.to_string())].into();
        let (kind, m) = rejected(b.create(&creds(), &s).await);
        assert_eq!(
            (kind.as_str(), m.as_str()),
            ("StackValidationFailed", *message),
            "case {i}"
        );
    }
    // Members of Heat's own types are checked only when the group runs.
    let rs = "heat_template_version: 2018-08-31\nresources:\n  g:\n    type: OS::Heat::ResourceGroup\n    properties: {resource_def: {type: OS::Heat::RandomString, properties: {length: 999}}}\n";
    let (_, info) = run(&b, spec("rsg", rs)).await;
    assert_eq!(
        info.status_reason,
        "Resource CREATE failed: StackValidationFailed: resources.g: Property error: g.resources[0].properties.length: 999 is out of range (min: 1, max: 512)"
    );
    let value = "heat_template_version: 2018-08-31\nresources:\n  g:\n    type: OS::Heat::ResourceGroup\n    properties: {resource_def: {type: OS::Heat::Value}}\n";
    let (_, info) = run(&b, spec("vg", value)).await;
    assert_eq!(
        info.status_reason,
        "Resource CREATE failed: StackValidationFailed: resources.g: Property error: g.resources[0].properties: Property value not assigned"
    );
}

#[tokio::test]
async fn random_strings_honour_their_properties() {
    let b = backend(0);
    let t = r#"
heat_template_version: 2018-08-31
resources:
  a: {type: OS::Heat::RandomString}
  b: {type: OS::Heat::RandomString, properties: {length: 40, character_classes: [{class: hexdigits, min: 40}]}}
  c: {type: OS::Heat::RandomString, properties: {length: 12, character_sequences: [{sequence: "!#", min: 4}], character_classes: [{class: lowercase, min: 2}]}}
outputs:
  a: {value: {get_attr: [a, value]}}
  a_ref: {value: {get_resource: a}}
  b: {value: {get_attr: [b, value]}}
  c: {value: {get_attr: [c, value]}}
"#;
    let (_, x) = run(&b, spec("rs1", t)).await;
    let (_, y) = run(&b, spec("rs2", t)).await;
    let text = |i: &StackInfo, k: &str| out(i, k).as_str().unwrap().to_string();
    assert_eq!(text(&x, "a").len(), 32);
    assert_eq!(
        text(&x, "a"),
        text(&x, "a_ref"),
        "its reference is its value, as in Heat"
    );
    assert_ne!(text(&x, "a"), text(&y, "a"));
    assert!(text(&x, "b")
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()));
    let c = text(&x, "c");
    assert_eq!(c.len(), 12);
    assert!(
        c.chars().filter(|ch| "!#".contains(*ch)).count() >= 4,
        "{c}"
    );
    assert!(
        c.chars()
            .all(|ch| "!#".contains(ch) || ch.is_ascii_lowercase()),
        "{c}"
    );
}

#[tokio::test]
async fn deleted_stacks_stay_readable_by_id_and_free_their_name() {
    let b = backend(0);
    let (s, _) = run(&b, spec("gone", CHAIN)).await;
    b.delete(&creds(), &s).await.unwrap();
    let info = wait(&b, &s).await;
    assert_eq!(info.status.to_string(), "DELETE_COMPLETE");
    assert!(info.outputs.is_empty());
    assert_eq!(
        b.get(&creds(), &s).await.unwrap().status.to_string(),
        "DELETE_COMPLETE"
    );
    assert!(b.resources(&creds(), &s).await.unwrap().is_empty());
    assert!(!b.events(&creds(), &s).await.unwrap().is_empty());
    assert_eq!(b.find(&creds(), "gone").await.unwrap(), None);
    let e = b.delete(&creds(), &s).await.unwrap_err();
    assert_eq!(e.to_string(), "The Stack (gone) could not be found.");
    let again = b.create(&creds(), &spec("gone", CHAIN)).await.unwrap();
    assert_ne!(again.id, s.id);
    // Another project sees none of it.
    let other = Credentials::new("t2", None);
    assert_eq!(b.find(&other, "gone").await.unwrap(), None);
    assert!(matches!(
        b.get(&other, &again).await,
        Err(BackendError::NotFound { .. })
    ));
    b.create(&other, &spec("gone", CHAIN)).await.unwrap();
}

#[tokio::test]
async fn watchers_share_one_channel_that_goes_when_they_do() {
    let b = Arc::new(backend(20));
    let s = b.create(&creds(), &spec("watched", CHAIN)).await.unwrap();
    let mut all = Vec::new();
    for _ in 0..8 {
        let (b, s) = (b.clone(), s.clone());
        all.push(tokio::spawn(async move { wait(&b, &s).await }));
    }
    for w in all {
        assert_eq!(w.await.unwrap().status.to_string(), "CREATE_COMPLETE");
    }
    // One rendering per change, not per watcher.
    assert!(b.stats().watch_updates < 12, "{:?}", b.stats());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let cell = b.cell(&creds(), &s).unwrap();
    assert!(
        cell.lock().watch.is_none(),
        "the channel is dropped once nobody watches"
    );
}

#[tokio::test]
async fn a_delete_cancels_a_running_create() {
    let b = backend(1);
    let t = "heat_template_version: 2018-08-31\nresources:\n  slow:\n    type: OS::Heat::TestResource\n    properties: {wait_secs: 30}\n";
    let s = b.create(&creds(), &spec("cancelled", t)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    b.delete(&creds(), &s).await.unwrap();
    let info = tokio::time::timeout(Duration::from_secs(5), wait(&b, &s))
        .await
        .unwrap();
    assert_eq!(info.status.to_string(), "DELETE_COMPLETE");
    let ev = event_list(&b, &s).await;
    assert!(ev.contains(&(
        "cancelled".into(),
        "CREATE_FAILED".into(),
        "Stack CREATE cancelled".into()
    )));
    assert!(ev.contains(&(
        "slow".into(),
        "CREATE_FAILED".into(),
        "CREATE aborted (user triggered cancel)".into()
    )));
}

#[tokio::test(start_paused = true)]
async fn a_stack_that_outlasts_its_timeout_fails() {
    let b = backend(0);
    let t = "heat_template_version: 2018-08-31\nresources:\n  slow:\n    type: OS::Heat::TestResource\n    properties: {wait_secs: 600}\n";
    let mut s = spec("late", t);
    s.timeout_mins = Some(1);
    let s = b.create(&creds(), &s).await.unwrap();
    let long = WaitOptions {
        timeout: Duration::from_secs(3600),
    };
    let info = b.wait(&creds(), &s, &long).await.unwrap();
    assert_eq!(info.status.to_string(), "CREATE_FAILED");
    assert_eq!(info.status_reason, "Timed out");
}

#[test]
fn the_state_dir_keeps_stacks_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let config = EmbeddedConfig {
        resource_delay: Duration::from_millis(1),
        state_dir: Some(dir.path().to_path_buf()),
        ..EmbeddedConfig::default()
    };
    let slow = "heat_template_version: 2018-08-31\nresources:\n  slow:\n    type: OS::Heat::TestResource\n    properties: {wait_secs: 60}\n  net:\n    type: OS::Nova::Server\n    properties: {image: i, flavor: f}\n    depends_on: slow\n";
    // First life: one stack done, one cut short by the "crash" (the
    // runtime goes away with the create running).
    let (done, before, interrupted) = {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let b = EmbeddedBackend::new(config.clone()).unwrap();
            let (done, before) = run(&b, spec("done", CLOUD)).await;
            let interrupted = b.create(&creds(), &spec("cut", slow)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            b.flush().await;
            (done, before, interrupted)
        })
    };
    // Second life.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let b = EmbeddedBackend::new(config.clone()).unwrap();
        let info = b.get(&creds(), &done).await.unwrap();
        assert_eq!(info.status.to_string(), "CREATE_COMPLETE");
        assert_eq!(
            info.outputs, before.outputs,
            "ids, addresses and outputs survive"
        );
        assert_eq!(b.find(&creds(), "done").await.unwrap(), Some(done.clone()));
        assert_eq!(b.stats().floating_addresses, 1, "addresses are taken back");
        let cut = b.get(&creds(), &interrupted).await.unwrap();
        assert_eq!(cut.status.to_string(), "CREATE_FAILED");
        assert_eq!(cut.status_reason, "Engine went down during stack CREATE");
        let res = b.resources(&creds(), &interrupted).await.unwrap();
        let slow = res.iter().find(|r| r.resource_name == "slow").unwrap();
        assert_eq!(slow.resource_status, "CREATE_FAILED");
        assert_eq!(
            slow.resource_status_reason,
            "Engine went down during stack CREATE"
        );
        // Both can be worked with: the done one updated, the cut one deleted.
        b.update(
            &creds(),
            &done,
            &StackUpdate::Patch {
                parameters: BTreeMap::new(),
            },
        )
        .await
        .unwrap();
        assert_eq!(wait(&b, &done).await.status.to_string(), "UPDATE_COMPLETE");
        b.delete(&creds(), &interrupted).await.unwrap();
        assert_eq!(
            wait(&b, &interrupted).await.status.to_string(),
            "DELETE_COMPLETE"
        );
        b.flush().await;
    });
    drop(rt);
    // Third life: the deleted stack is gone, the other is as it was.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let b = EmbeddedBackend::new(config).unwrap();
        assert_eq!(b.find(&creds(), "cut").await.unwrap(), None);
        assert_eq!(
            b.get(&creds(), &done).await.unwrap().status.to_string(),
            "UPDATE_COMPLETE"
        );
        assert_eq!(b.stats().stacks, 1);
    });
    let files: Vec<_> = std::fs::read_dir(dir.path().join("embedded/stacks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "stack files hold secrets: owner only");
    }
}

#[tokio::test]
async fn immutable_parameters_cannot_change() {
    let b = backend(0);
    let t = "heat_template_version: 2018-08-31\nparameters:\n  fixed: {type: string, default: a, immutable: true}\n  free: {type: string, default: a}\nresources:\n  v:\n    type: OS::Heat::Value\n    properties: {value: {get_param: fixed}}\n";
    let (s, _) = run(&b, spec("imm", t)).await;
    let e = b
        .update(
            &creds(),
            &s,
            &StackUpdate::Patch {
                parameters: params(&[("fixed", "b")]),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        e,
        BackendError::Rejected {
            kind: "ImmutableParameterModified".into(),
            message: "The following parameters are immutable and may not be updated: fixed".into(),
        }
    );
    b.update(
        &creds(),
        &s,
        &StackUpdate::Patch {
            parameters: params(&[("free", "b")]),
        },
    )
    .await
    .unwrap();
    assert_eq!(wait(&b, &s).await.status.to_string(), "UPDATE_COMPLETE");
}

#[tokio::test]
async fn external_resources_are_adopted_and_checked() {
    let b = backend(0);
    let t = "heat_template_version: newton\nresources:\n  n:\n    type: OS::Heat::None\n    external_id: def\n  s:\n    type: OS::Nova::Server\n    external_id: 2f1e0c7e-7d4a-4d0e-9d1e-1b2c3d4e5f60\noutputs:\n  id: {value: {get_resource: n}}\n";
    let (s, info) = run(&b, spec("ext", t)).await;
    assert_eq!(
        info.status.to_string(),
        "CREATE_COMPLETE",
        "{}",
        info.status_reason
    );
    assert_eq!(out(&info, "id"), json!("def"));
    let n: Vec<(String, String)> = event_list(&b, &s)
        .await
        .into_iter()
        .filter(|e| e.0 == "n")
        .map(|e| (e.1, e.2))
        .collect();
    assert_eq!(
        n,
        [
            ("ADOPT_IN_PROGRESS".to_string(), "state changed".to_string()),
            ("ADOPT_COMPLETE".into(), "state changed".into()),
            (
                "CHECK_COMPLETE".into(),
                "CHECK not supported for OS::Heat::None".into()
            ),
        ]
    );
    let res = b.resources(&creds(), &s).await.unwrap();
    let server = res.iter().find(|r| r.resource_name == "s").unwrap();
    assert_eq!(
        (
            server.resource_status.as_str(),
            server.physical_resource_id.as_str()
        ),
        ("CHECK_COMPLETE", "2f1e0c7e-7d4a-4d0e-9d1e-1b2c3d4e5f60")
    );
    b.update(
        &creds(),
        &s,
        &StackUpdate::Patch {
            parameters: BTreeMap::new(),
        },
    )
    .await
    .unwrap();
    assert_eq!(wait(&b, &s).await.status.to_string(), "UPDATE_COMPLETE");
    b.delete(&creds(), &s).await.unwrap();
    assert_eq!(wait(&b, &s).await.status.to_string(), "DELETE_COMPLETE");
}
