//! One HTTP exchange with Heat or Keystone: headers, the body with a
//! `Content-Length` (the local Heat's wsgiref cannot read chunked bodies),
//! bounded retries of what is safe to repeat, a tracing span and counters.
//! Redirects are never followed (Heat's `302` from a lookup by name is an
//! answer, not a detour), so a token never travels to another host.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use occi_so_sdk::{BackendError, Secret};
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use tracing::Instrument;

use super::config::{ConfigError, OpenStackConfig, RetryConfig};

/// Who answers a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Service {
    Heat,
    Keystone,
}

impl Service {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Service::Heat => "Heat",
            Service::Keystone => "Keystone",
        }
    }
}

/// Whether a request may be sent again after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resend {
    /// Idempotent (GET, DELETE, validate, a token request): resend after
    /// connection failures, timeouts and 502/503/504.
    Always,
    /// Not idempotent, or not provably so (create, PATCH, PUT): resend only
    /// when the connection could not even be made.
    IfUndelivered,
}

/// One request to send.
pub(crate) struct Request<'a> {
    pub service: Service,
    pub method: Method,
    pub url: Url,
    pub token: Option<&'a Secret>,
    /// `X-Auth-Project`, which a noauth Heat takes as the caller's project.
    pub project_header: Option<&'a str>,
    pub body: Option<Bytes>,
    pub resend: Resend,
}

/// What came back (any status: the caller decides what it means).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub elapsed: Duration,
    /// An earlier attempt failed in a way that may have reached the server,
    /// so this answer may describe a repeat (a DELETE's 404, say).
    pub repeated: bool,
}

/// A request that got no usable answer.
#[derive(Debug)]
pub(crate) struct SendError {
    pub error: BackendError,
    /// The server may have received and acted on the request.
    pub maybe_delivered: bool,
}

impl From<SendError> for BackendError {
    fn from(e: SendError) -> Self {
        e.error
    }
}

/// Request counters, for tests and metrics.
#[derive(Default)]
pub(crate) struct Counters {
    pub heat: AtomicU64,
    pub heat_get: AtomicU64,
    pub keystone: AtomicU64,
}

/// The HTTP client with its retry policy.
pub(crate) struct Rest {
    http: reqwest::Client,
    retry: RetryConfig,
    request_timeout: Duration,
    pub counters: Counters,
}

impl Rest {
    /// A client per the TLS, timeout and retry settings of `config`. Reads
    /// the CA file (once, at start-up).
    pub(crate) fn new(config: &OpenStackConfig) -> Result<Self, ConfigError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("occi-so/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_file {
            let ca_error = |message: String| ConfigError::CaFile {
                path: path.clone(),
                message,
            };
            let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ca_error(format!("not a PEM certificate bundle: {e}")))?;
            if certs.is_empty() {
                return Err(ca_error("holds no PEM certificate".into()));
            }
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if config.insecure {
            tracing::warn!("TLS certificate verification is off (insecure = true)");
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| ConfigError::Client(e.to_string()))?;
        Ok(Rest {
            http,
            retry: config.retry.clone(),
            request_timeout: config.request_timeout,
            counters: Counters::default(),
        })
    }

    /// Send `req`, resending it as its [`Resend`] allows.
    pub(crate) async fn send(&self, req: &Request<'_>) -> Result<Answer, SendError> {
        let span = tracing::info_span!(
            "openstack_call",
            service = req.service.name(),
            method = %req.method,
            path = %req.url.path(),
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
            attempts = tracing::field::Empty,
        );
        self.send_with_retries(req).instrument(span).await
    }

    async fn send_with_retries(&self, req: &Request<'_>) -> Result<Answer, SendError> {
        let attempts = self.retry.attempts.max(1);
        let mut repeated = false;
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            let outcome = self.send_once(req).await;
            let elapsed = started.elapsed();
            let last = attempt >= attempts;
            match outcome {
                Ok((status, headers, body)) => {
                    let retryable = req.resend == Resend::Always
                        && (matches!(status.as_u16(), 502..=504)
                            || (status.as_u16() == 404 && internal_not_found(&body)));
                    if retryable && !last {
                        tracing::warn!(
                            status = status.as_u16(),
                            attempt,
                            "retrying after a gateway error or a transient Heat 404"
                        );
                        repeated = true;
                    } else {
                        let span = tracing::Span::current();
                        span.record("status", status.as_u16());
                        span.record("latency_ms", elapsed.as_secs_f64() * 1e3);
                        span.record("attempts", attempt);
                        tracing::debug!(
                            status = status.as_u16(),
                            latency_ms = elapsed.as_secs_f64() * 1e3,
                            attempt,
                            "answered"
                        );
                        return Ok(Answer {
                            status,
                            headers,
                            body,
                            elapsed,
                            repeated,
                        });
                    }
                }
                Err(e) => {
                    let failure = self.transport_failure(req, &e, elapsed);
                    let retryable = !failure.maybe_delivered || req.resend == Resend::Always;
                    if !retryable || last {
                        tracing::Span::current().record("attempts", attempt);
                        tracing::warn!(attempt, error = %failure.error, "no answer");
                        return Err(SendError {
                            error: failure.error,
                            maybe_delivered: failure.maybe_delivered || repeated,
                        });
                    }
                    tracing::warn!(attempt, error = %failure.error, "retrying");
                    repeated |= failure.maybe_delivered;
                }
            }
            tokio::time::sleep(self.backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// Full jitter: a random delay up to `initial · 2^(attempt-1)`, capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .retry
            .initial_backoff
            .saturating_mul(1u32 << (attempt - 1).min(16))
            .min(self.retry.max_backoff);
        let ms = cap.as_millis() as u64;
        Duration::from_millis(if ms == 0 {
            0
        } else {
            rand::rng().random_range(ms / 4..=ms)
        })
    }

    async fn send_once(
        &self,
        req: &Request<'_>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), reqwest::Error> {
        match req.service {
            Service::Heat => {
                self.counters.heat.fetch_add(1, Ordering::Relaxed);
                if req.method == Method::GET {
                    self.counters.heat_get.fetch_add(1, Ordering::Relaxed);
                }
            }
            Service::Keystone => {
                self.counters.keystone.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut builder = self
            .http
            .request(req.method.clone(), req.url.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(token) = req.token {
            if let Ok(mut value) = HeaderValue::from_str(token.expose()) {
                value.set_sensitive(true);
                builder = builder.header("X-Auth-Token", value);
            }
        }
        if let Some(project) = req.project_header {
            if let Ok(value) = HeaderValue::from_str(project) {
                builder = builder.header("X-Auth-Project", value);
            }
        }
        if let Some(body) = &req.body {
            // A `Bytes` body has a known length, so reqwest sends
            // Content-Length rather than chunked encoding.
            builder = builder
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body.clone());
        }
        let response = builder.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        Ok((status, headers, body))
    }

    fn transport_failure(
        &self,
        req: &Request<'_>,
        e: &reqwest::Error,
        elapsed: Duration,
    ) -> SendError {
        let service = req.service.name();
        let host = match (req.url.host_str(), req.url.port_or_known_default()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => "?".into(),
        };
        if e.is_timeout() {
            return SendError {
                error: BackendError::Timeout {
                    what: format!(
                        "{service} at {host} to answer {} {}",
                        req.method,
                        req.url.path()
                    ),
                    after: if elapsed < self.request_timeout {
                        elapsed
                    } else {
                        self.request_timeout
                    },
                },
                maybe_delivered: true,
            };
        }
        if e.is_connect() {
            return SendError {
                error: BackendError::Unavailable {
                    message: format!("cannot connect to {service} at {host}: {}", root_cause(e)),
                },
                maybe_delivered: false,
            };
        }
        SendError {
            error: BackendError::Unavailable {
                message: format!(
                    "{service} at {host} dropped the connection: {}",
                    root_cause(e)
                ),
            },
            maybe_delivered: true,
        }
    }
}

/// The innermost cause of an error, which is what tells a user what broke
/// ("Connection refused"), without reqwest's URL-bearing outer message.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// Whether a 404 body is Heat's transient internal miss
/// ([`super::fault::INTERNAL_MISS`]), which a repeated read does not meet.
fn internal_not_found(body: &[u8]) -> bool {
    let mark = super::fault::INTERNAL_MISS.as_bytes();
    body.windows(mark.len()).any(|w| w == mark)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_heats_internal_row_misses_are_transient() {
        let race = br#"{"code": 404, "error": {"message": "ResourcePropertiesData with id {} not found", "type": "NotFound"}, "title": "Not Found"}"#;
        assert!(internal_not_found(race));
        let gone = br#"{"code": 404, "error": {"message": "The Stack (s) could not be found.", "type": "EntityNotFound"}, "title": "Not Found"}"#;
        assert!(!internal_not_found(gone));
        assert!(!internal_not_found(b""));
    }
    use std::io::BufRead;
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};

    /// An HTTPS server on loopback (python3's http.server) with a
    /// certificate from a throw-away CA made with the openssl CLI.
    struct TlsServer {
        child: Child,
        port: u16,
        ca: PathBuf,
    }

    impl Drop for TlsServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// The CA, the server's key and its certificate (signed by the CA) in
    /// `dir`, made with the openssl command.
    fn certificates(
        openssl: &occi_so_testkit::OpenSsl,
        dir: &std::path::Path,
    ) -> Result<(), String> {
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .map_err(|e| format!("ext.cnf: {e}"))?;
        openssl.run(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "1",
                "-subj",
                "/CN=occi-so test CA",
            ],
        )?;
        openssl.run(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "srv.key",
                "-out",
                "srv.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        )?;
        openssl.run(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "srv.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "srv.pem",
                "-days",
                "1",
                "-extfile",
                "ext.cnf",
            ],
        )
    }

    /// The HTTPS server (python3, which the test suite needs anyway),
    /// or why it did not start.
    fn tls_server(openssl: &occi_so_testkit::OpenSsl) -> Result<TlsServer, String> {
        let dir = std::env::temp_dir().join(format!("occi-so-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        certificates(openssl, &dir)?;
        let script = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain('srv.pem', 'srv.key')
srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;
        let mut child = Command::new("python3")
            .args(["-c", script])
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("python3: {e}"))?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or("python3 has no stdout")?;
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("python3's port: {e}"))?;
        let port = line
            .trim()
            .parse()
            .map_err(|e| format!("python3's port {line:?}: {e}"))?;
        Ok(TlsServer {
            child,
            port,
            ca: dir.join("ca.pem"),
        })
    }

    async fn get(rest: &Rest, port: u16) -> Result<Answer, SendError> {
        rest.send(&Request {
            service: Service::Heat,
            method: Method::GET,
            url: Url::parse(&format!("https://127.0.0.1:{port}/v1/admin/stacks")).unwrap(),
            token: None,
            project_header: None,
            body: None,
            resend: Resend::Always,
        })
        .await
    }

    #[tokio::test]
    async fn tls_trusts_the_configured_ca_and_only_it() {
        let Some(openssl) = occi_so_testkit::require_openssl() else {
            return;
        };
        let server = tls_server(&openssl).unwrap_or_else(|e| panic!("the HTTPS server: {e}"));
        let config = |ca: Option<PathBuf>, insecure: bool| OpenStackConfig {
            ca_file: ca,
            insecure,
            retry: RetryConfig {
                attempts: 1,
                ..RetryConfig::default()
            },
            ..OpenStackConfig::default()
        };
        let with_ca = Rest::new(&config(Some(server.ca.clone()), false)).unwrap();
        let answer = get(&with_ca, server.port).await.unwrap();
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(&answer.body[..], br#"{"ok": true}"#);

        let built_in_roots = Rest::new(&config(None, false)).unwrap();
        let refused = get(&built_in_roots, server.port).await.unwrap_err();
        assert!(
            matches!(&refused.error, BackendError::Unavailable { message }
                if message.to_lowercase().contains("certificate") || message.contains("UnknownIssuer")),
            "{:?}",
            refused.error
        );
        assert!(!refused.maybe_delivered);

        let insecure = Rest::new(&config(None, true)).unwrap();
        assert_eq!(
            get(&insecure, server.port).await.unwrap().status,
            StatusCode::OK
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let path = std::env::temp_dir().join(format!("occi-so-notpem-{}", std::process::id()));
        std::fs::write(&path, "not a certificate").unwrap();
        let e = Rest::new(&OpenStackConfig {
            ca_file: Some(path.clone()),
            ..OpenStackConfig::default()
        })
        .err()
        .expect("refused");
        assert!(matches!(e, ConfigError::CaFile { .. }), "{e}");
        let _ = std::fs::remove_file(path);
    }
}
