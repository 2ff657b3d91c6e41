//! The IMSSO user guide's curl sequence (`shared/seeds/002_*.txt`) as
//! requests the IMS tests replay verbatim against a server.
#![allow(dead_code)]

use reqwest::Method;

use crate::common::{call, shared_dir, Answer, Server};

/// One request of the seed: method, URL and headers, `$KID`/`$TENANT` set.
pub struct Curl {
    /// `-X`.
    pub method: Method,
    /// The URL as the guide writes it (`http://127.0.0.1:8051/...`).
    pub url: String,
    /// `-H` headers.
    pub headers: Vec<(String, String)>,
}

/// Shell words of one command: quotes removed, adjacent parts joined.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for ch in line.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(ch);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// The seed's curl commands, in order.
pub fn seed(kid: &str, tenant: &str) -> Vec<Curl> {
    let path = shared_dir().join("seeds/002_13fde430f30a2b78.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.split("```")
        .skip(1)
        .step_by(2)
        .map(|block| block.lines().map(str::trim).collect::<Vec<_>>().join(" "))
        .filter(|cmd| cmd.trim_start().starts_with("curl "))
        .map(|cmd| {
            let words = shell_words(&cmd.replace("$KID", kid).replace("$TENANT", tenant));
            let mut curl = Curl {
                method: Method::GET,
                url: String::new(),
                headers: Vec::new(),
            };
            let mut it = words.into_iter().skip(1);
            while let Some(w) = it.next() {
                match w.as_str() {
                    "-X" => curl.method = it.next().unwrap().parse().unwrap(),
                    "-H" => {
                        let h = it.next().unwrap();
                        let (k, v) = h.split_once(':').unwrap();
                        curl.headers.push((k.trim().into(), v.trim().into()));
                    }
                    "-v" => {}
                    url => curl.url = url.to_string(),
                }
            }
            curl
        })
        .collect()
}

/// Sends one seed request to `s` (the guide's host and port replaced).
pub async fn replay(c: &reqwest::Client, s: &Server, curl: &Curl) -> Answer {
    let url = curl.url.replace("http://127.0.0.1:8051", &s.base);
    let headers: Vec<(&str, &str)> = curl
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    call(c, curl.method.clone(), &url, &headers, "").await
}
