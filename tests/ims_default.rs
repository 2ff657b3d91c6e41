//! IMS is the default service type: `occi-so serve` with no
//! `--default-service` (and no `OCCI_SO_DEFAULT_SERVICE`) binds the MCN
//! `orchestrator` kind to it, so the IMSSO seed's `PUT /orchestrator/default`
//! creates an IMS; and the `ims` kind has its own collection. No stack is
//! involved, so this runs on any backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test target: failing loudly is its job

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{call, client, mcn};
use reqwest::Method;

/// `occi-so serve` with only the settings a plain start has, killed on drop.
struct Plain(Child);

impl Drop for Plain {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_plain(state: &std::path::Path) -> (Plain, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_occi-so"));
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--journal-fsync",
        "false",
        "--state-dir",
    ])
    .arg(state)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    for var in [
        "OCCI_SO_DEFAULT_SERVICE",
        "OCCI_SO_CONFIG",
        "OCCI_SO_BACKEND",
        "OCCI_SO_AUTH",
        "OCCI_SO_PLUGIN_IMS_TOPOLOGIES",
    ] {
        cmd.env_remove(var);
    }
    let mut child = cmd.spawn().expect("occi-so starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(a) = line.split("address=").nth(1) {
                let addr: String = a.chars().take_while(|c| !c.is_whitespace()).collect();
                if let Some(tx) = tx.take() {
                    let _ = tx.send(addr);
                }
            }
        }
    });
    let child = Plain(child);
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("occi-so listens");
    (child, format!("http://{addr}"))
}

#[tokio::test]
async fn the_orchestrator_kind_is_the_ims_so_by_default() {
    let state = tempfile::tempdir().unwrap();
    let (_server, base) = start_plain(state.path());
    let c = client();

    let q = call(&c, Method::GET, &format!("{base}/-/"), &mcn("t"), "").await;
    assert_eq!(q.status, 200);
    let orchestrator = q
        .body
        .lines()
        .find(|l| l.starts_with("Category: orchestrator;"))
        .expect("the MCN orchestrator kind");
    for attr in [
        "mcn.topology.type",
        "mcn.endpoint.maas",
        "ims.size.cscfs",
        "ims.size.hss",
    ] {
        assert!(
            orchestrator.contains(attr),
            "{attr} missing: {orchestrator}"
        );
    }
    let ims = q
        .body
        .lines()
        .find(|l| l.starts_with("Category: ims;"))
        .expect("the ims kind");
    assert!(
        ims.contains("scheme=\"http://schemas.mobile-cloud-networking.eu/occi/sm#\""),
        "{ims}"
    );
    assert!(ims.contains("location=\"/ims/\""), "{ims}");

    // The seed's init, as in the user guide: an IMS with its defaults.
    let mut h = mcn("t");
    h.push(("Content-Type", "text/occi"));
    h.push((
        "Category",
        "orchestrator; scheme=\"http://schemas.mobile-cloud-networking.eu/occi/service#\"",
    ));
    let a = call(
        &c,
        Method::PUT,
        &format!("{base}/orchestrator/default"),
        &h,
        "",
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let g = call(
        &c,
        Method::GET,
        &format!("{base}/orchestrator/default"),
        &mcn("t"),
        "",
    )
    .await;
    assert_eq!(
        g.attribute("mcn.topology.type").as_deref(),
        Some("openims"),
        "{}",
        g.body
    );
    assert_eq!(g.attribute("ims.size.hss").as_deref(), Some("1"));
}
