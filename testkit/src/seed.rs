//! The IMSSO user guide's curl sequence, carried in the tree so that a
//! clone without the shared material replays it too:
//! `testkit/seeds/imsso-guide-requests.txt` is the guide's "Instantiate an
//! IMS instance" section, verbatim from `shared/seeds/002_13fde430f30a2b78.txt`
//! (a test checks that it still is, where the shared material is present).
//! Its four curl commands (init, deploy, update, delete) are replayed
//! against a test server with `$KID` and `$TENANT` set.

use reqwest::Method;

use crate::http::{call, Answer};
use crate::server::Server;

/// The in-tree copy of the guide's requests section.
pub const IMSSO_GUIDE_REQUESTS: &str = include_str!("../seeds/imsso-guide-requests.txt");

/// The seed document the copy comes from, within the shared material.
pub const IMSSO_SEED: &str = "seeds/002_13fde430f30a2b78.txt";

/// The host and port the guide's URLs name.
pub const GUIDE_BASE: &str = "http://127.0.0.1:8051";

/// One curl command: method, URL and headers.
#[derive(Clone, Debug, PartialEq)]
pub struct Curl {
    /// `-X` (GET without it).
    pub method: Method,
    /// The URL as the guide writes it.
    pub url: String,
    /// `-H` headers, split at the first `:` and trimmed.
    pub headers: Vec<(String, String)>,
}

/// Shell words of one command line: single quotes literal, double quotes
/// with `\` escapes, adjacent quoted and bare parts joined into one word.
pub fn shell_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut any = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                any = true;
                cur.extend(chars.by_ref().take_while(|d| *d != '\''));
            }
            '"' => {
                any = true;
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        _ => cur.push(d),
                    }
                }
            }
            c if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                any = true;
                cur.push(c);
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// The curl commands of the fenced blocks of `text` (a block's lines
/// joined into one command), in order, with `$KID` and `$TENANT` set; an
/// error names a word it does not understand.
pub fn curl_commands(text: &str, kid: &str, tenant: &str) -> Result<Vec<Curl>, String> {
    let mut out = Vec::new();
    for block in text.split("```").skip(1).step_by(2) {
        let joined = block
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if !joined.starts_with("curl ") {
            continue;
        }
        let joined = joined.replace("$KID", kid).replace("$TENANT", tenant);
        let mut curl = Curl {
            method: Method::GET,
            url: String::new(),
            headers: Vec::new(),
        };
        let mut words = shell_words(&joined).into_iter().skip(1);
        while let Some(w) = words.next() {
            match w.as_str() {
                "-X" => {
                    let m = words.next().ok_or("-X without a method")?;
                    curl.method = m.parse().map_err(|_| format!("-X {m}: not a method"))?;
                }
                "-H" => {
                    let h = words.next().ok_or("-H without a header")?;
                    let (k, v) = h
                        .split_once(':')
                        .ok_or_else(|| format!("-H {h:?}: not a header"))?;
                    curl.headers.push((k.trim().into(), v.trim().into()));
                }
                "-v" => {}
                u if u.starts_with("http") => curl.url = u.to_string(),
                other => return Err(format!("unexpected curl word {other:?} in {joined:?}")),
            }
        }
        out.push(curl);
    }
    Ok(out)
}

/// The guide's four requests (init, deploy, update, delete) with `$KID`
/// and `$TENANT` set.
pub fn imsso_requests(kid: &str, tenant: &str) -> Vec<Curl> {
    match curl_commands(IMSSO_GUIDE_REQUESTS, kid, tenant) {
        Ok(cmds) => cmds,
        Err(e) => panic!("testkit/seeds/imsso-guide-requests.txt: {e}"),
    }
}

/// Sends one request to `s` (the guide's host and port replaced).
pub async fn replay(c: &reqwest::Client, s: &Server, curl: &Curl) -> Answer {
    let url = curl.url.replace(GUIDE_BASE, &s.base);
    let headers: Vec<(&str, &str)> = curl
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    call(c, curl.method.clone(), &url, &headers, "").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_join_quoted_parts_and_honour_escapes() {
        assert_eq!(
            shell_words(r#"curl -H 'X-Auth-Token: '$KID -H "a: \"b\"" x"#),
            ["curl", "-H", "X-Auth-Token: $KID", "-H", "a: \"b\"", "x"]
        );
        assert_eq!(shell_words("  ''  "), [""]);
    }

    #[test]
    fn the_guide_has_the_four_mcn_calls() {
        let cmds = imsso_requests("k", "t");
        let seen: Vec<(String, String)> = cmds
            .iter()
            .map(|c| (c.method.to_string(), c.url.clone()))
            .collect();
        let at = |p: &str| format!("{GUIDE_BASE}/orchestrator/default{p}");
        assert_eq!(
            seen,
            [
                ("PUT".to_string(), at("")),
                ("POST".to_string(), at("?action=deploy")),
                ("POST".to_string(), at("")),
                ("DELETE".to_string(), at(""))
            ]
        );
        for c in &cmds {
            assert!(
                c.headers.contains(&("X-Auth-Token".into(), "k".into())),
                "{c:?}"
            );
            assert!(
                c.headers.contains(&("X-Tenant-Name".into(), "t".into())),
                "{c:?}"
            );
        }
        assert!(cmds[2].headers.contains(&(
            "X-OCCI-Attribute".into(),
            "mcn.endpoint.maas=\"160.85.4.50\"".into()
        )));
    }

    #[test]
    fn the_in_tree_copy_is_still_the_seeds_text() {
        let Some(path) = crate::require_shared(IMSSO_SEED) else {
            return;
        };
        let seed = std::fs::read_to_string(&path).unwrap();
        assert!(
            seed.contains(IMSSO_GUIDE_REQUESTS),
            "testkit/seeds/imsso-guide-requests.txt is no longer a verbatim part of {}",
            path.display()
        );
        assert_eq!(
            curl_commands(&seed, "k", "t").unwrap(),
            imsso_requests("k", "t"),
            "the seed has no curl command the copy lacks"
        );
    }

    #[test]
    fn a_word_curl_does_not_take_here_is_named() {
        let e = curl_commands("```\ncurl -d x http://h/\n```", "k", "t").unwrap_err();
        assert!(e.contains("unexpected curl word \"-d\""), "{e}");
        let e = curl_commands("```\ncurl -X\n```", "k", "t").unwrap_err();
        assert_eq!(e, "-X without a method");
    }
}
