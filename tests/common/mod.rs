//! Shared harness of the integration tests: the real `occi-so` binary on an
//! ephemeral loopback port with a temporary state directory, driven over
//! real HTTP with reqwest.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};

/// The MCN service scheme.
pub const MCN: &str = "http://schemas.mobile-cloud-networking.eu/occi/service#";
/// The scheme of the sample kinds.
pub const SM: &str = "http://schemas.mobile-cloud-networking.eu/occi/sm#";

/// A running `occi-so serve`.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The state directory (kept across restarts of the same test).
    pub state: Arc<tempfile::TempDir>,
    log: Arc<Mutex<Vec<String>>>,
    args: Vec<String>,
}

/// The real local Heat for tests that need stacks, or `None` (after
/// saying why) when it is not configured; with `OCCI_SO_REQUIRE_HEAT=1`
/// a missing Heat fails the test.
pub fn heat_url(test: &str) -> Option<String> {
    match std::env::var("OCCI_SO_TEST_HEAT_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var("OCCI_SO_REQUIRE_HEAT").as_deref() == Ok("1") {
                panic!("{test}: OCCI_SO_REQUIRE_HEAT=1 but OCCI_SO_TEST_HEAT_URL is not set");
            }
            eprintln!("{test}: skipped: OCCI_SO_TEST_HEAT_URL is not set (scripts/test.sh starts a local Heat)");
            None
        }
    }
}

/// `serve` arguments for a backend on `heat` (a real OpenStack Heat).
pub fn heat_args(heat: &str) -> Vec<String> {
    vec![
        "--backend".into(),
        "openstack".into(),
        "--heat-url".into(),
        heat.into(),
    ]
}

impl Server {
    /// Starts `occi-so serve` with `args` on 127.0.0.1:0 and a fresh state dir.
    pub fn start(args: &[&str]) -> Server {
        let state = Arc::new(tempfile::tempdir().expect("state dir"));
        Self::start_in(state, args.iter().map(|s| s.to_string()).collect())
    }

    /// Starts with owned arguments.
    pub fn start_with(args: Vec<String>) -> Server {
        let state = Arc::new(tempfile::tempdir().expect("state dir"));
        Self::start_in(state, args)
    }

    fn start_in(state: Arc<tempfile::TempDir>, args: Vec<String>) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_occi-so"));
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--state-dir")
            .arg(state.path())
            .arg("--journal-fsync")
            .arg("false")
            .args(&args)
            .env("OCCI_SO_LOG", "info,occi_so=debug")
            .env_remove("OCCI_SO_CONFIG")
            .env_remove("OCCI_SO_AUTH")
            .env_remove("OCCI_SO_BACKEND")
            // These tests drive the sample plugin at /orchestrator/ (the
            // default service is IMS; tests of it pass --default-service).
            .env("OCCI_SO_DEFAULT_SERVICE", "sample")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("occi-so starts");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(a) = line.split("address=").nth(1) {
                        let addr: String = a.chars().take_while(|c| !c.is_whitespace()).collect();
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(addr);
                        }
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "occi-so did not start listening:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Server {
            child: Some(child),
            base: format!("http://{addr}"),
            state,
            log,
            args,
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait for the exit status (at most `within`).
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .expect("kill runs");
        assert!(ok.success());
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = c.try_wait().expect("wait") {
                return s;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!(
                    "occi-so did not exit within {within:?} of SIGTERM:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A new server on the same state directory and arguments (after a
    /// kill or terminate).
    pub fn restart(&mut self) -> Server {
        assert!(self.child.is_none(), "stop the server first");
        Self::start_in(self.state.clone(), self.args.clone())
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The failing test's server log, for whoever reads the failure.
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let from = lines.len().saturating_sub(200);
            eprintln!(
                "--- occi-so log (last {} lines) ---\n{}\n--- end of occi-so log ---",
                lines.len() - from,
                lines[from..].join("\n")
            );
        }
        self.kill();
    }
}

/// A reqwest client (HTTP/1.1, no proxy).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body text.
    pub body: String,
}

impl Answer {
    /// A header as text (`""` when missing); repeated ones joined by ", ".
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `X-OCCI-Attribute` values of a text/occi or text/plain rendering,
    /// as `(name, raw value)` (value as rendered, quotes included).
    pub fn attributes(&self) -> Vec<(String, String)> {
        let mut text = self.header("x-occi-attribute");
        for line in self.body.lines() {
            if let Some(v) = line.strip_prefix("X-OCCI-Attribute: ") {
                if !text.is_empty() {
                    text.push_str(", ");
                }
                text.push_str(v);
            }
        }
        split_attributes(&text)
    }

    /// The value of attribute `name` without quotes, if rendered.
    pub fn attribute(&self, name: &str) -> Option<String> {
        self.attributes()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim_matches('"').to_string())
    }

    /// The action terms of the action links rendered (`?action=term`).
    pub fn actions(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut text = self.header("link");
        text.push('\n');
        text.push_str(&self.body);
        for part in text.split("?action=").skip(1) {
            let term: String = part.chars().take_while(|c| *c != '>').collect();
            out.push(term);
        }
        out
    }
}

/// Splits `a="x, y", b=2` at commas outside quotes.
pub fn split_attributes(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for ch in text.chars() {
        match ch {
            _ if escaped => {
                escaped = false;
                cur.push(ch);
            }
            '\\' if quoted => {
                escaped = true;
                cur.push(ch);
            }
            '"' => {
                quoted = !quoted;
                cur.push(ch);
            }
            ',' if !quoted => {
                push_attr(&mut out, &cur);
                cur.clear();
            }
            _ => cur.push(ch),
        }
    }
    push_attr(&mut out, &cur);
    out
}

fn push_attr(out: &mut Vec<(String, String)>, s: &str) {
    let s = s.trim();
    if let Some((n, v)) = s.split_once('=') {
        out.push((n.trim().to_string(), v.trim().to_string()));
    }
}

/// One request: method, URL, headers, body.
pub async fn call(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut rb = client.request(method, url);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    if !body.is_empty() {
        rb = rb.body(body.to_string());
    }
    let r = rb.send().await.expect("request sent");
    let status = r.status();
    let headers = r.headers().clone();
    let body = r.text().await.unwrap_or_default();
    Answer {
        status,
        headers,
        body,
    }
}

/// The MCN caller's headers for `tenant` (with a token).
pub fn mcn(tenant: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![("X-Auth-Token", "test-token"), ("X-Tenant-Name", tenant)]
}

/// Polls `GET url` (text/plain) until `done` holds, at most `within`.
pub async fn wait_for(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    within: Duration,
    done: impl Fn(&Answer) -> bool,
) -> Answer {
    let deadline = Instant::now() + within;
    loop {
        let a = call(client, Method::GET, url, headers, "").await;
        if done(&a) {
            return a;
        }
        if Instant::now() > deadline {
            panic!("condition not reached within {within:?}; last answer: {a:#?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where the shared material is (`OCCI_SO_SHARED`, or `../shared`).
pub fn shared_dir() -> PathBuf {
    match std::env::var("OCCI_SO_SHARED") {
        Ok(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"),
    }
}
