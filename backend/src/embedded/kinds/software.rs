//! Software configuration: `SoftwareConfig` and `StructuredConfig` (their
//! config, stored), `CloudConfig` (`#cloud-config` YAML), `MultipartMime`
//! (a MIME multipart document of its parts, as Python's `email` writes
//! it), and `SoftwareDeployment`, which completes when the (simulated)
//! server reports back.

use base64::Engine as _;
use occi_so_sdk::StackAction;
use rand::Rng;
use serde_json::{json, Value};

use super::{value_text, Apply, Effort, Kind};
use crate::embedded::config::EmbeddedConfig;
use crate::embedded::state::{Data, ResourceState};

/// The config a software-config resource stores.
pub(crate) fn config(kind: Kind, a: &Apply<'_>) -> Data {
    match kind {
        Kind::StructuredConfig => Data::Json(Box::new(
            a.prop("config").cloned().unwrap_or_else(|| json!({})),
        )),
        Kind::CloudConfig => {
            let body = a
                .prop("cloud_config")
                .map(|c| serde_yaml::to_string(c).unwrap_or_default())
                .unwrap_or_else(|| "{}\n".into());
            Data::Text(format!("#cloud-config\n{body}").into())
        }
        Kind::MultipartMime => Data::Text(multipart(a).into()),
        _ => Data::Text(a.text("config").unwrap_or_default().into()),
    }
}

/// The text of the config with id `reference` in the stack, if it is one.
fn config_text(a: &Apply<'_>, reference: &str) -> Option<String> {
    let mut found = None;
    a.view.root.walk(&mut |r| {
        if found.is_none()
            && matches!(
                r.kind,
                Kind::SoftwareConfig
                    | Kind::CloudConfig
                    | Kind::MultipartMime
                    | Kind::StructuredConfig
            )
            && r.exists()
            && r.physical.render("", &r.name) == reference
        {
            found = Some(match &r.data {
                Data::Text(t) => t.to_string(),
                Data::Json(v) => v.to_string(),
                _ => String::new(),
            });
        }
    });
    found
}

/// One MIME part as Python's `MIMEText` writes it.
fn mime_part(out: &mut String, boundary: &str, text: &str, subtype: &str, filename: &str) {
    let ascii = text.is_ascii();
    out.push_str(&format!("--{boundary}\n"));
    out.push_str(&format!(
        "Content-Type: text/{}; charset=\"{}\"\n",
        if subtype.is_empty() { "plain" } else { subtype },
        if ascii { "us-ascii" } else { "utf-8" }
    ));
    out.push_str("MIME-Version: 1.0\n");
    if ascii {
        out.push_str("Content-Transfer-Encoding: 7bit\n");
    } else {
        out.push_str("Content-Transfer-Encoding: base64\n");
    }
    if !filename.is_empty() {
        out.push_str(&format!(
            "Content-Disposition: attachment; filename=\"{filename}\"\n"
        ));
    }
    out.push('\n');
    if ascii {
        out.push_str(text);
    } else {
        let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
        for line in b64.as_bytes().chunks(76) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
    }
    out.push('\n');
}

/// `OS::Heat::MultipartMime`: each part's config (a config resource's text
/// when the part names one by id) as a `text/*` part.
fn multipart(a: &Apply<'_>) -> String {
    let boundary = format!(
        "==============={:019}==",
        rand::rng().random_range(0..9_999_999_999_999_999_999u64)
    );
    let mut out =
        format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\nMIME-Version: 1.0\n\n");
    let parts = a
        .prop("parts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for p in &parts {
        let config = p.get("config").map(value_text).unwrap_or_default();
        let text = config_text(a, &config).unwrap_or(config);
        let filename = p.get("filename").map(value_text).unwrap_or_default();
        let mut subtype = p.get("subtype").map(value_text).unwrap_or_default();
        if subtype.is_empty() && !filename.is_empty() {
            subtype = filename
                .rsplit_once('.')
                .map(|(stem, _)| stem.to_string())
                .unwrap_or_else(|| filename.clone());
        }
        mime_part(&mut out, &boundary, &text, &subtype, &filename);
    }
    // Python's generator ends the last part without its blank line.
    if out.ends_with("\n\n") {
        out.pop();
    }
    out.push_str(&format!("--{boundary}--\n"));
    out
}

/// A deployment completes when the server reports back (`signal_delay`),
/// at once with `NO_SIGNAL`.
pub(crate) fn deployment_effort(
    action: StackAction,
    props: &Value,
    config: &EmbeddedConfig,
) -> Effort {
    let no_signal = props
        .get("signal_transport")
        .map(value_text)
        .is_some_and(|t| t == "NO_SIGNAL");
    let wait = if action == StackAction::Delete || no_signal {
        config.resource_delay
    } else {
        config.signal_delay
    };
    Effort {
        wait,
        failure: None,
    }
}

/// The attributes of configs (`config`) and deployments (what the server
/// reported: exit status 0 and empty output; `null` without a signal).
pub(crate) fn attribute(r: &ResourceState, name: &str) -> Value {
    match (r.kind, name, &r.data) {
        (Kind::SoftwareDeployment, _, Data::Json(props)) => {
            let signalled = props
                .get("signal_transport")
                .map(value_text)
                .is_none_or(|t| t != "NO_SIGNAL");
            match (signalled, name) {
                (true, "deploy_status_code") => json!(0),
                (true, "deploy_stdout" | "deploy_stderr") => json!(""),
                _ => Value::Null,
            }
        }
        (_, "config", Data::Text(t)) => Value::String(t.to_string()),
        (_, "config", Data::Json(v)) => (**v).clone(),
        _ => Value::Null,
    }
}
