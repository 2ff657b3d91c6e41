//! Helpers of the plugin-framework tests: the example plugin, folders to
//! edit, the query interface and the log as they change.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::Method;

use crate::common::{call, client, Server};

/// The example plugin folder of the repository.
pub fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/webapp")
}

/// Copies a folder tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Replaces `from` by `to` in a file (the text must contain it).
pub fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{from:?} is not in {}", file.display());
    std::fs::write(file, text.replace(from, to)).unwrap();
}

/// The query interface as text/plain.
pub async fn query(c: &reqwest::Client, s: &Server) -> String {
    call(c, Method::GET, &s.url("/-/"), &[], "").await.body
}

/// Polls `/-/` until `done` holds; returns how long it took.
pub async fn until_served(s: &Server, within: Duration, done: impl Fn(&str) -> bool) -> Duration {
    let c = client();
    let start = Instant::now();
    loop {
        let q = query(&c, s).await;
        if done(&q) {
            return start.elapsed();
        }
        if start.elapsed() > within {
            panic!(
                "/-/ did not reach the expected state within {within:?}:\n{q}\n--- server log ---\n{}",
                s.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls the server log until it contains `needle`; returns the line.
pub async fn until_logged(s: &Server, within: Duration, needle: &str) -> String {
    until_logged_times(s, within, needle, 1).await
}

/// Polls the server log until `n` lines contain `needle`; returns the last.
pub async fn until_logged_times(s: &Server, within: Duration, needle: &str, n: usize) -> String {
    let start = Instant::now();
    loop {
        let log = s.log();
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(needle)).collect();
        if lines.len() >= n {
            return lines[n - 1].to_string();
        }
        if start.elapsed() > within {
            panic!("{needle:?} not logged within {within:?}:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The kind line of `term` in a text/plain query interface.
pub fn kind_line<'a>(q: &'a str, term: &str) -> Option<&'a str> {
    let prefix = format!("Category: {term}; ");
    q.lines()
        .find(|l| l.starts_with(&prefix) && l.contains("class=\"kind\""))
}

/// The webapp kind's Category header value.
pub const WEBAPP: &str =
    "webapp; scheme=\"http://schemas.occi-so.org/occi/webapp#\"; class=\"kind\"";

/// The 1-based line of the first line of `file` containing `needle`.
pub fn line_of(file: &Path, needle: &str) -> usize {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in {}", file.display()))
        + 1
}
