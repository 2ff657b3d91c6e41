//! The settings the HTTP edge takes from `serve`'s configuration (the
//! binary resolves flags, environment and file into these).

use std::path::PathBuf;
use std::time::Duration;

/// How callers are authenticated, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthSettings {
    /// No token check.
    None {
        /// Tenant when `X-Tenant-Name` is missing.
        default_tenant: String,
    },
    /// A token file.
    Static {
        /// The file.
        token_file: PathBuf,
    },
    /// Keystone v3.
    Keystone {
        /// Base URL without `/v3`.
        url: String,
        /// Longest trust in one validation.
        cache: Duration,
    },
}

/// Request limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body in bytes.
    pub max_body: usize,
    /// Longest time for one request.
    pub request_timeout: Duration,
    /// How long a connection may stay open with no request in flight
    /// (never sent a byte, or idle between keep-alive requests).
    pub idle_timeout: Duration,
    /// How long a client may take to send a request head once begun (then
    /// 408), and to finish a TLS handshake.
    pub header_timeout: Duration,
    /// Open connections served in full (`None`: 10 000, or the open-files
    /// limit less 256); beyond it a connection gets `/healthz` or a 503.
    pub max_connections: Option<usize>,
    /// Log every answered request at INFO (`--access-log`); otherwise only
    /// 5xx answers are logged per request (WARN), the rest at DEBUG.
    pub access_log: bool,
}

/// TLS files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}
