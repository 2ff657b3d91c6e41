//! The real `occi-so serve` on an ephemeral loopback port with a fresh
//! state directory, started from the binary its caller names (Cargo sets
//! `CARGO_BIN_EXE_occi-so` in the root package's tests only):
//!
//! ```no_run
//! # use occi_so_testkit::Server;
//! let s = Server::builder("target/debug/occi-so")
//!     .args(["--default-service", "ims"])
//!     .start();
//! assert!(s.base.starts_with("http://127.0.0.1:"));
//! ```
//!
//! The server can be stopped (SIGTERM with its exit status, or SIGKILL)
//! and started again on the same state directory; its log is kept, and
//! printed when the test fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How a server is started; [`Server::builder`].
#[derive(Clone, Debug)]
pub struct ServerBuilder {
    bin: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl ServerBuilder {
    /// One more `serve` argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// More `serve` arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    /// An environment variable of the server process (after the
    /// harness's own: `OCCI_SO_DEFAULT_SERVICE=sample` and the log level).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Starts it on `127.0.0.1:0` with a fresh state directory; fails the
    /// test when it does not listen within a minute.
    pub fn start(self) -> Server {
        let state =
            tempfile::tempdir().unwrap_or_else(|e| panic!("a state directory for occi-so: {e}"));
        Server::start_in(self, Arc::new(state))
    }
}

/// A running `occi-so serve`.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The state directory (kept across restarts of the same test).
    pub state: Arc<tempfile::TempDir>,
    log: Arc<Mutex<Vec<String>>>,
    how: ServerBuilder,
}

impl Server {
    /// A server of the `occi-so` binary at `bin` (in the root package's
    /// tests, `env!("CARGO_BIN_EXE_occi-so")`).
    pub fn builder(bin: impl Into<PathBuf>) -> ServerBuilder {
        ServerBuilder {
            bin: bin.into(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    fn start_in(how: ServerBuilder, state: Arc<tempfile::TempDir>) -> Server {
        let mut cmd = Command::new(&how.bin);
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--state-dir")
            .arg(state.path())
            .arg("--journal-fsync")
            .arg("false")
            .args(&how.args)
            .env("OCCI_SO_LOG", "info,occi_so=debug")
            .env_remove("OCCI_SO_CONFIG")
            .env_remove("OCCI_SO_AUTH")
            .env_remove("OCCI_SO_BACKEND")
            // The tests drive the sample plugin at /orchestrator/ unless
            // they say otherwise (the binary's default service is IMS).
            .env("OCCI_SO_DEFAULT_SERVICE", "sample")
            .envs(how.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", how.bin.display()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(stderr) = child.stderr.take() {
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
                    log.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(line);
                }
            });
        }
        let mut server = Server {
            child: Some(child),
            base: String::new(),
            state,
            log,
            how,
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => server.base = format!("http://{addr}"),
            Err(_) => {
                server.kill();
                panic!("occi-so did not start listening:\n{}", server.log());
            }
        }
        server
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .join("\n")
    }

    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `url` as a path on this server (`/kind/id`).
    pub fn path_of(&self, url: &str) -> String {
        match url.strip_prefix(&self.base) {
            Some(path) => path.to_string(),
            None => panic!("{url} is not a location on this server ({})", self.base),
        }
    }

    /// The process id (0 once stopped).
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

    /// SIGTERM, then the exit status (fails the test when it takes longer
    /// than `within`).
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let Some(mut c) = self.child.take() else {
            panic!("terminate: the server is not running");
        };
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        if !sent.as_ref().is_ok_and(|s| s.success()) {
            let _ = c.kill();
            panic!("kill -TERM {}: {sent:?}", c.id());
        }
        let deadline = Instant::now() + within;
        loop {
            match c.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() <= deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                waited => {
                    let _ = c.kill();
                    panic!(
                        "occi-so did not exit within {within:?} of SIGTERM ({waited:?}):\n{}",
                        self.log()
                    );
                }
            }
        }
    }

    /// A new server on the same state directory, binary, arguments and
    /// environment (after [`kill`](Self::kill) or
    /// [`terminate`](Self::terminate)).
    pub fn restart(&mut self) -> Server {
        assert!(self.child.is_none(), "stop the server before restarting it");
        Self::start_in(self.how.clone(), self.state.clone())
    }

    /// [`restart`](Self::restart) without the environment variable `name`
    /// (e.g. a fault-injection switch).
    pub fn restart_without(&mut self, name: &str) -> Server {
        assert!(self.child.is_none(), "stop the server before restarting it");
        let mut how = self.how.clone();
        how.env.retain(|(k, _)| k != name);
        Self::start_in(how, self.state.clone())
    }

    /// Whether the process is not running (it exited by itself, or was
    /// stopped).
    pub fn exited(&mut self) -> bool {
        let gone = self
            .child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some());
        if gone {
            self.child = None;
        }
        gone
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
