//! The certificate, key and chain for ESCM's HTTPS listeners, when the
//! caller provides them (`escm.ssl.generate_certs` false).
//!
//! As in the barclamp, the attributes name files on the orchestrator's
//! host ("the OpenStack Control Node"). A caller must not be able to make
//! occi-so read any file it likes, so a path is accepted only below the
//! certificate directory the operator configured ([`crate::EscmConfig`]),
//! symbolic links resolved; the file must be PEM of the expected kind
//! (an unencrypted key: the instance has no passphrase to give).

use std::fmt;
use std::path::{Component, Path, PathBuf};

use occi_so_sdk::{PluginError, Secret};

use crate::catalog::{self, names};
use crate::settings::Settings;

/// The largest PEM file accepted.
pub const MAX_PEM_BYTES: u64 = 64 * 1024;

/// PEM texts for the instance. `Debug` never shows the key.
#[derive(Clone, PartialEq)]
pub struct Certificates {
    /// The certificate (PEM).
    pub cert: String,
    /// The private key (PEM).
    pub key: Secret,
    /// Intermediate certificates (PEM), or empty.
    pub chain: String,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates")
            .field("cert_bytes", &self.cert.len())
            .field("key", &self.key)
            .field("chain_bytes", &self.chain.len())
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PemKind {
    Certificate,
    PrivateKey,
}

/// A path a caller gave that may not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ConfineError {
    /// Not absolute.
    #[error("{0:?} is not an absolute path")]
    NotAbsolute(String),
    /// With `.` or `..`.
    #[error("{0:?} must not contain '.' or '..'")]
    Dots(String),
    /// Not below the certificate directory.
    #[error("{path:?} is not below the ESCM certificate directory {} of this orchestrator", .root.display())]
    Outside {
        /// The path given.
        path: String,
        /// The certificate directory.
        root: PathBuf,
    },
}

/// What is wrong with a PEM file's text (after its path in messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum PemError {
    /// A boundary line is malformed or out of place.
    #[error("is not a well-formed PEM file")]
    Malformed,
    /// A block is opened and never closed.
    #[error("is not a well-formed PEM file (a block is not closed)")]
    Unclosed,
    /// A line that is neither a boundary nor base64 (or text outside a block).
    #[error("is not a PEM file (unexpected text outside or inside a block)")]
    Unexpected,
    /// The key is encrypted.
    #[error("holds an encrypted private key; the instance needs it unencrypted")]
    Encrypted,
    /// A block of another kind.
    #[error("holds a PEM block that is not a {0}")]
    WrongBlock(PemKind),
    /// No block of the wanted kind.
    #[error("holds no PEM {0}")]
    NoBlock(PemKind),
    /// Several keys.
    #[error("holds more than one private key")]
    SeveralKeys,
}

/// As messages name a PEM kind (its block label).
impl fmt::Display for PemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PemKind::Certificate => "CERTIFICATE",
            PemKind::PrivateKey => "PRIVATE KEY",
        })
    }
}

/// Reads the files the settings name, or `None` when the instance
/// generates a self-signed certificate itself.
pub async fn load(root: &Path, settings: &Settings) -> Result<Option<Certificates>, PluginError> {
    if settings.flag(names::SSL_GENERATE) {
        return Ok(None);
    }
    // Every path is checked before any file is opened.
    for attribute in [names::SSL_CERTFILE, names::SSL_KEYFILE, names::SSL_CA_CERTS] {
        let path = settings.text(attribute);
        let optional = attribute == names::SSL_CA_CERTS
            && (path.is_empty() || path == catalog::DEFAULT_CA_CERTS);
        if !optional {
            confine(root, path).map_err(|e| PluginError::attribute(attribute, e.to_string()))?;
        }
    }
    let cert = read_pem(
        root,
        names::SSL_CERTFILE,
        settings.text(names::SSL_CERTFILE),
        PemKind::Certificate,
    )
    .await?;
    let key = read_pem(
        root,
        names::SSL_KEYFILE,
        settings.text(names::SSL_KEYFILE),
        PemKind::PrivateKey,
    )
    .await?;
    let chain_path = settings.text(names::SSL_CA_CERTS);
    let chain = if chain_path.is_empty() {
        String::new()
    } else {
        match read_pem(root, names::SSL_CA_CERTS, chain_path, PemKind::Certificate).await {
            Ok(c) => c,
            // The chain is optional: at its default path it may simply not
            // exist (or lie outside a certificate directory set elsewhere).
            Err(_)
                if chain_path == catalog::DEFAULT_CA_CERTS && !exists(root, chain_path).await =>
            {
                String::new()
            }
            Err(e) => return Err(e),
        }
    };
    Ok(Some(Certificates {
        cert,
        key: Secret::new(key),
        chain,
    }))
}

async fn exists(root: &Path, path: &str) -> bool {
    let Ok(p) = confine(root, path) else {
        return false;
    };
    tokio::fs::try_exists(p).await.unwrap_or(false)
}

/// `path` if it is an absolute, plain path below `root` (no `.` or `..`).
fn confine(root: &Path, path: &str) -> Result<PathBuf, ConfineError> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(ConfineError::NotAbsolute(path.to_string()));
    }
    if p.components()
        .any(|c| !matches!(c, Component::RootDir | Component::Normal(_)))
    {
        return Err(ConfineError::Dots(path.to_string()));
    }
    if !p.starts_with(root) {
        return Err(ConfineError::Outside {
            path: path.to_string(),
            root: root.to_path_buf(),
        });
    }
    Ok(p.to_path_buf())
}

async fn read_pem(
    root: &Path,
    attribute: &str,
    path: &str,
    kind: PemKind,
) -> Result<String, PluginError> {
    let fail = |m: String| PluginError::attribute(attribute, m);
    let hint = "(or set escm.ssl.generate_certs to true for a self-signed certificate)";
    let p = confine(root, path).map_err(|e| fail(e.to_string()))?;
    let real = tokio::fs::canonicalize(&p)
        .await
        .map_err(|e| fail(format!("cannot open {path:?}: {} {hint}", io_reason(&e))))?;
    let real_root = tokio::fs::canonicalize(root).await.map_err(|e| {
        fail(format!(
            "the certificate directory {} cannot be opened: {}",
            root.display(),
            io_reason(&e)
        ))
    })?;
    if !real.starts_with(&real_root) {
        return Err(fail(format!(
            "{path:?} leads outside the ESCM certificate directory {}",
            root.display()
        )));
    }
    use occi_so_sdk::files::{read_regular_async, ReadError};
    let bytes = read_regular_async(real, MAX_PEM_BYTES, READ_WITHIN)
        .await
        .map_err(|e| match e {
            ReadError::Io { source, .. } => {
                fail(format!("cannot read {path:?}: {}", io_reason(&source)))
            }
            ReadError::NotRegular { .. } => fail(format!("{path:?} is not a file")),
            ReadError::TooLarge { .. } => fail(format!(
                "{path:?} is larger than {MAX_PEM_BYTES} bytes; it is not a PEM file"
            )),
            other @ (ReadError::NotText { .. } | ReadError::TimedOut { .. }) => {
                fail(format!("cannot read {path:?}: {}", other))
            }
        })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| fail(format!("{path:?} is not a PEM file (not text)")))?;
    check_pem(&text, kind).map_err(|m| fail(format!("{path:?} {m}")))
}

/// How long reading one certificate file may take.
const READ_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.kind().to_string(),
    }
}

/// Normalises a PEM text (LF line ends, no trailing blank lines) after
/// checking that every line is a PEM boundary or base64, so the text can
/// travel in a here-document on the instance.
fn check_pem(text: &str, kind: PemKind) -> Result<String, PemError> {
    let text = text.replace("\r\n", "\n");
    let mut blocks = 0;
    let mut open: Option<&str> = None;
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            if open.is_some() || !label.chars().all(|c| c.is_ascii_uppercase() || c == ' ') {
                return Err(PemError::Malformed);
            }
            open = Some(label);
        } else if let Some(label) = line
            .strip_prefix("-----END ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            if open != Some(label) {
                return Err(PemError::Malformed);
            }
            let wanted = match kind {
                PemKind::Certificate => label == "CERTIFICATE",
                PemKind::PrivateKey => {
                    if label.contains("ENCRYPTED") {
                        return Err(PemError::Encrypted);
                    }
                    label.ends_with("PRIVATE KEY")
                }
            };
            if !wanted {
                return Err(PemError::WrongBlock(kind));
            }
            blocks += 1;
            open = None;
        } else {
            let base64 = line
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='));
            let fits = if open.is_some() {
                base64
            } else {
                line.is_empty()
            };
            if !fits {
                return Err(PemError::Unexpected);
            }
        }
    }
    if open.is_some() {
        return Err(PemError::Unclosed);
    }
    if blocks == 0 {
        return Err(PemError::NoBlock(kind));
    }
    if kind == PemKind::PrivateKey && blocks > 1 {
        return Err(PemError::SeveralKeys);
    }
    Ok(text.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str =
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2l0eQ==\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";

    #[test]
    fn pem_kinds_are_told_apart() {
        assert!(check_pem(CERT, PemKind::Certificate).is_ok());
        assert!(check_pem(KEY, PemKind::PrivateKey).is_ok());
        assert_eq!(
            check_pem(KEY, PemKind::Certificate)
                .unwrap_err()
                .to_string(),
            "holds a PEM block that is not a CERTIFICATE"
        );
        assert_eq!(
            check_pem(CERT, PemKind::PrivateKey)
                .unwrap_err()
                .to_string(),
            "holds a PEM block that is not a PRIVATE KEY"
        );
        let chain = format!("{CERT}\n{CERT}");
        assert!(check_pem(&chain, PemKind::Certificate).is_ok());
        let enc = KEY.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY");
        let e = check_pem(&enc, PemKind::PrivateKey).unwrap_err();
        assert_eq!(e, PemError::Encrypted);
        assert!(e.to_string().contains("encrypted"));
        let outside = "is not a PEM file (unexpected text outside or inside a block)";
        assert_eq!(
            check_pem("hello", PemKind::Certificate)
                .unwrap_err()
                .to_string(),
            outside
        );
        assert_eq!(
            check_pem(
                "-----BEGIN CERTIFICATE-----\nESCM_PEM_END; rm -rf /\n-----END CERTIFICATE-----",
                PemKind::Certificate
            )
            .unwrap_err()
            .to_string(),
            outside,
            "nothing but base64 travels in the here-document"
        );
        assert_eq!(
            check_pem(&CERT.replace('\n', "\r\n"), PemKind::Certificate).unwrap(),
            CERT.trim_end()
        );
    }

    #[test]
    fn paths_are_confined_to_the_directory() {
        let root = Path::new("/etc/escm/ssl");
        assert!(confine(root, "/etc/escm/ssl/certs/a.pem").is_ok());
        assert_eq!(
            confine(root, "/etc/escm/ssl/../../shadow")
                .unwrap_err()
                .to_string(),
            "\"/etc/escm/ssl/../../shadow\" must not contain '.' or '..'"
        );
        assert_eq!(
            confine(root, "/etc/shadow")
                .unwrap_err()
                .to_string(),
            "\"/etc/shadow\" is not below the ESCM certificate directory /etc/escm/ssl of this orchestrator"
        );
        assert_eq!(
            confine(root, "certs/a.pem").unwrap_err().to_string(),
            "\"certs/a.pem\" is not an absolute path"
        );
    }
}
