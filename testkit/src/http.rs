//! HTTP as the tests speak it: one request read whole ([`call`]), the
//! answer's OCCI attributes and actions in any rendering ([`Answer`]),
//! polling until a condition holds ([`wait_for`], [`settled`]), and a
//! static file served on loopback ([`serve_static`]).

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The MCN service scheme.
pub const MCN: &str = "http://schemas.mobile-cloud-networking.eu/occi/service#";
/// The scheme of the service-manager kinds (`sample`, `ims`, `escm`...).
pub const SM: &str = "http://schemas.mobile-cloud-networking.eu/occi/sm#";

/// A reqwest client (no proxy, 60 s per request).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        // Below the server's idle timeout (30 s by default), so a pooled
        // connection is never reused just as the server closes it.
        .pool_idle_timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_else(|e| panic!("a reqwest client: {e}"))
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
            .map(|v| v.to_str().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether the body is an `application/occi+json` rendering.
    fn is_json(&self) -> bool {
        self.header("content-type")
            .starts_with("application/occi+json")
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// `X-OCCI-Attribute` values of a text/occi or text/plain rendering,
    /// as `(name, raw value)` (value as rendered, quotes included); of a
    /// JSON rendering, each attribute's JSON text.
    pub fn attributes(&self) -> Vec<(String, String)> {
        if self.is_json() {
            let doc = self.json();
            return doc["attributes"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect())
                .unwrap_or_default();
        }
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

    /// The value of attribute `name` without quotes, if rendered (a JSON
    /// string as its text, any other JSON value as its JSON text).
    pub fn attribute(&self, name: &str) -> Option<String> {
        if self.is_json() {
            return match &self.json()["attributes"][name] {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            };
        }
        self.attributes()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim_matches('"').to_string())
    }

    /// The action terms of the action links rendered (`?action=term`), or
    /// of a JSON rendering's `actions` (the term after `#`).
    pub fn actions(&self) -> Vec<String> {
        if self.is_json() {
            return self.json()["actions"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(|a| a.rsplit('#').next().unwrap_or(a).to_string())
                        .collect()
                })
                .unwrap_or_default();
        }
        let mut text = self.header("link");
        text.push('\n');
        text.push_str(&self.body);
        text.split("?action=")
            .skip(1)
            .map(|part| part.chars().take_while(|c| *c != '>').collect())
            .collect()
    }
}

/// Splits `a="x, y", b=2` at commas outside quotes into `(name, value)`.
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
    if let Some((n, v)) = s.trim().split_once('=') {
        out.push((n.trim().to_string(), v.trim().to_string()));
    }
}

/// One request: method, URL, headers, body (none when empty). Fails the
/// test when it cannot be sent.
pub async fn call(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut rb = client.request(method.clone(), url);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    if !body.is_empty() {
        rb = rb.body(body.to_string());
    }
    let r = rb
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url} was not answered: {e}"));
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
pub fn mcn(tenant: &str) -> Vec<(&str, &str)> {
    vec![("X-Auth-Token", "test-token"), ("X-Tenant-Name", tenant)]
}

/// Polls `GET url` with `headers` until `done` holds, at most `within`
/// (every 200 ms); the answer that satisfied it. Fails the test with the
/// last answer when time runs out.
pub async fn wait_for(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    within: Duration,
    done: impl Fn(&Answer) -> bool,
) -> Answer {
    poll(
        client,
        url,
        headers,
        within,
        Duration::from_millis(200),
        done,
    )
    .await
}

/// [`wait_for`] reading every `every`.
pub async fn poll(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    within: Duration,
    every: Duration,
    done: impl Fn(&Answer) -> bool,
) -> Answer {
    let deadline = Instant::now() + within;
    loop {
        let a = call(client, Method::GET, url, headers, "").await;
        if done(&a) {
            return a;
        }
        if Instant::now() > deadline {
            panic!("GET {url}: condition not reached within {within:?}; last answer: {a:#?}");
        }
        tokio::time::sleep(every).await;
    }
}

/// Polls the instance at `url` until it is there (200) and no operation
/// runs on it (no `occi.so.operation`), at most `within`, every `every`.
pub async fn settled(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    within: Duration,
    every: Duration,
) -> Answer {
    poll(client, url, headers, within, every, |a| {
        a.status == StatusCode::OK && a.attribute("occi.so.operation").is_none()
    })
    .await
}

/// Serves `body` as `content_type` to every request on a loopback port
/// for as long as the test's runtime lives; the URL (`http://ADDR/name`).
pub async fn serve_static(name: &str, content_type: &'static str, body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("a loopback port to serve {name}: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("the address serving {name}: {e}"));
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65536 {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(body.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    format!("http://{addr}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(content_type: &str, headers: &[(&'static str, &str)], body: &str) -> Answer {
        let mut h = HeaderMap::new();
        h.insert("content-type", content_type.parse().unwrap());
        for (k, v) in headers {
            h.append(*k, v.parse().unwrap());
        }
        Answer {
            status: StatusCode::OK,
            headers: h,
            body: body.into(),
        }
    }

    #[test]
    fn attributes_split_at_commas_outside_quotes() {
        assert_eq!(
            split_attributes(r#"a="x, \"y\"", b=2,c = "3""#),
            [
                ("a".to_string(), r#""x, \"y\"""#.to_string()),
                ("b".to_string(), "2".to_string()),
                ("c".to_string(), "\"3\"".to_string()),
            ]
        );
    }

    #[test]
    fn attributes_and_actions_are_read_from_every_rendering() {
        let occi = answer(
            "text/occi",
            &[
                ("x-occi-attribute", "occi.core.id=\"default\", n=3"),
                ("link", "</x/y?action=deploy>; rel=\"a#deploy\""),
            ],
            "",
        );
        let plain = answer(
            "text/plain",
            &[],
            "X-OCCI-Attribute: occi.core.id=\"default\"\nX-OCCI-Attribute: n=3\n\
             Link: </x/y?action=deploy>; rel=\"a#deploy\"\n",
        );
        let json = answer(
            "application/occi+json",
            &[],
            r#"{"attributes": {"occi.core.id": "default", "n": 3}, "actions": ["http://s#deploy"]}"#,
        );
        for a in [&occi, &plain, &json] {
            assert_eq!(a.attribute("occi.core.id").as_deref(), Some("default"));
            assert_eq!(a.attribute("n").as_deref(), Some("3"));
            assert_eq!(a.attribute("missing"), None);
            assert_eq!(a.actions(), ["deploy"], "{a:?}");
        }
    }

    #[tokio::test]
    async fn a_static_file_is_served_to_every_request() {
        let url = serve_static("f.yaml", "application/x-yaml", "a: 1\n").await;
        for _ in 0..2 {
            let a = call(&client(), Method::GET, &url, &[], "").await;
            assert_eq!(a.status, 200);
            assert_eq!(a.header("content-type"), "application/x-yaml");
            assert_eq!(a.body, "a: 1\n");
        }
    }
}
