//! Cinder volumes and their attachments. Heat's volume attributes are
//! Python's `str()` of Cinder's fields (`size` is `"1"`, `encrypted` is
//! `"False"`), and are given so.

use serde_json::{json, Value};

use super::{value_text, Kind};
use crate::embedded::ids::{iso_time, physical_name};
use crate::embedded::state::{Data, ResourceState};
use crate::embedded::view::View;

fn props(r: &ResourceState) -> Value {
    match &r.data {
        Data::Json(v) => (**v).clone(),
        _ => Value::Null,
    }
}

/// The attachments of a volume: the attachment resources naming it.
fn attachments(view: &View<'_>, volume_id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    view.root.walk(&mut |r| {
        if r.kind != Kind::VolumeAttachment || !r.exists() {
            return;
        }
        let p = props(r);
        if p.get("volume_id").map(value_text).as_deref() == Some(volume_id) {
            let server = p.get("instance_uuid").map(value_text).unwrap_or_default();
            let device = p
                .get("mountpoint")
                .filter(|v| !v.is_null())
                .map(value_text)
                .unwrap_or_else(|| "/dev/vdb".into());
            out.push(json!({
                "server_id": server,
                "attachment_id": r.physical.render("", &r.name),
                "volume_id": volume_id,
                "device": device,
                "id": volume_id,
            }));
        }
    });
    out
}

/// The attributes of `OS::Cinder::Volume` (attachments have only `show`).
pub(crate) fn attribute(view: &View<'_>, r: &ResourceState, name: &str) -> Value {
    if r.kind != Kind::Volume {
        return Value::Null;
    }
    let p = props(r);
    let prop = |k: &str| p.get(k).filter(|v| !v.is_null()).map(value_text);
    let id = view.physical_id(r);
    let attached = attachments(view, &id);
    let metadata = p
        .get("metadata")
        .cloned()
        .filter(|v| !v.is_null())
        .unwrap_or(json!({}));
    let text = |s: String| Value::String(s);
    match name {
        "size" => text(prop("size").unwrap_or_else(|| "1".into())),
        "status" => text(
            if attached.is_empty() {
                "available"
            } else {
                "in-use"
            }
            .into(),
        ),
        "display_name" => {
            text(prop("name").unwrap_or_else(|| physical_name(view.stack_name, &r.name, r.short)))
        }
        "display_description" => prop("description").map(text).unwrap_or(Value::Null),
        "availability_zone" => text(prop("availability_zone").unwrap_or_else(|| "nova".into())),
        "bootable" => text(
            if prop("image").is_some() {
                "true"
            } else {
                "false"
            }
            .into(),
        ),
        "created_at" => text(iso_time(r.created).replace('Z', ".000000")),
        "encrypted" | "multiattach" => text("False".into()),
        "snapshot_id" => text(prop("snapshot_id").unwrap_or_else(|| "None".into())),
        "source_volid" => text(prop("source_volid").unwrap_or_else(|| "None".into())),
        "volume_type" => text(prop("volume_type").unwrap_or_else(|| "lvmdriver-1".into())),
        "metadata" => text(metadata.to_string()),
        "metadata_values" => metadata,
        "attachments_list" => Value::Array(attached),
        "attachments" => text(heat::pyfmt::py_repr(&Value::Array(attached))),
        _ => Value::Null,
    }
}
