//! Secrets at rest: sealing what occi-so writes to disk.
//!
//! Instance attributes may hold secrets (passwords, keys) and stacks hold
//! their parameters, so the server's journal and the embedded engine's
//! stack files may too. Without a key they are written as plain JSON in
//! files of mode 0600 (the zero-setup default). With a key
//! (`--secret-key-file`, or `OCCI_SO_SECRET_KEY`) every record is sealed
//! with XChaCha20-Poly1305 (a random 192-bit nonce per record, so no nonce
//! bookkeeping survives a crash) and written as one line of text:
//! `occi-so-sealed:v1:` + base64(nonce ‖ ciphertext ‖ tag).
//!
//! Reading is tolerant in one direction only: plain records are still read
//! when a key is configured (a journal written before the key was set
//! turns sealed as it is rewritten), but a sealed record without the key,
//! or one the key cannot open, is an error, never skipped.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// What every sealed record starts with.
pub const SEALED_PREFIX: &[u8] = b"occi-so-sealed:v1:";
/// Bound to every record, so that nothing sealed elsewhere with the same
/// key opens as ours.
const AAD: &[u8] = b"occi-so state v1";
const NONCE_LEN: usize = 24;

/// Why a key could not be read or a record opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The key text is not 32 bytes in base64 (or 64 hex digits).
    #[error("{origin}: the secret key must be 32 bytes written as base64 (44 characters, e.g. from `head -c 32 /dev/urandom | base64`) or as 64 hex digits")]
    BadKey {
        /// Where the key came from (file path or variable name).
        origin: String,
    },
    /// The key file could not be read.
    #[error("{0}")]
    KeyFile(String),
    /// A sealed record was found but no key is configured.
    #[error("the record is sealed (occi-so-sealed:v1) and no secret key is configured: start with the --secret-key-file (or OCCI_SO_SECRET_KEY) it was written with")]
    KeyNeeded,
    /// The record is damaged, or was sealed with another key.
    #[error("a sealed record does not open with the configured secret key (another key, or a damaged record)")]
    WrongKeyOrDamaged,
    /// The plaintext was too large to seal (never in practice).
    #[error("the record is too large to seal")]
    TooLarge,
}

/// The sealing key and its cipher. `Debug` never shows the key.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(******)")
    }
}

impl Sealer {
    /// A sealer from the key's text: 32 bytes as base64 or as 64 hex
    /// digits, white space around it ignored. `origin` names where the
    /// text came from in errors (never the text).
    pub fn from_key_text(text: &str, origin: &str) -> Result<Sealer, SealError> {
        let text = text.trim();
        let bad = || SealError::BadKey {
            origin: origin.to_string(),
        };
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad()))
                .collect::<Result<Vec<u8>, _>>()?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| bad())?
        };
        let key: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
        Ok(Sealer {
            cipher: XChaCha20Poly1305::new(&key.into()),
        })
    }

    /// A sealer from the first line of a key file (a regular file of at
    /// most 4 KiB; a file others may read is refused, as ssh refuses keys).
    pub fn from_file(path: &Path) -> Result<Sealer, SealError> {
        let origin = path.display().to_string();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(path)
                .map_err(|e| SealError::KeyFile(format!("secret key file {origin}: {e}")))?;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(SealError::KeyFile(format!(
                    "secret key file {origin}: group or others may read it (mode {:o}); chmod 600 it",
                    meta.permissions().mode() & 0o777
                )));
            }
        }
        let text = crate::files::read_regular_text(path, 4096)
            .map_err(|e| SealError::KeyFile(format!("secret key file: {e}")))?;
        Sealer::from_key_text(text.lines().next().unwrap_or_default(), &origin)
    }

    /// Seals `plain` into one line of text (no newline in it).
    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: AAD,
                },
            )
            .map_err(|_| SealError::TooLarge)?;
        let mut raw = Vec::with_capacity(NONCE_LEN + sealed.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&sealed);
        let mut out = SEALED_PREFIX.to_vec();
        out.extend_from_slice(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .encode(raw)
                .as_bytes(),
        );
        Ok(out)
    }

    fn open_sealed(&self, body: &[u8]) -> Result<Vec<u8>, SealError> {
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(body.trim_ascii())
            .map_err(|_| SealError::WrongKeyOrDamaged)?;
        if raw.len() < NONCE_LEN {
            return Err(SealError::WrongKeyOrDamaged);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: AAD,
                },
            )
            .map_err(|_| SealError::WrongKeyOrDamaged)
    }
}

/// Whether `data` is a sealed record.
pub fn is_sealed(data: &[u8]) -> bool {
    data.starts_with(SEALED_PREFIX)
}

/// Seals `plain` with `sealer`, or passes it through without one.
pub fn seal_with<'a>(sealer: Option<&Sealer>, plain: &'a [u8]) -> Result<Cow<'a, [u8]>, SealError> {
    match sealer {
        Some(s) => s.seal(plain).map(Cow::Owned),
        None => Ok(Cow::Borrowed(plain)),
    }
}

/// Opens a stored record: a sealed one with `sealer` (an error without
/// one, or when it does not open), a plain one as it is.
pub fn open_with<'a>(sealer: Option<&Sealer>, data: &'a [u8]) -> Result<Cow<'a, [u8]>, SealError> {
    match data.strip_prefix(SEALED_PREFIX) {
        None => Ok(Cow::Borrowed(data)),
        Some(body) => match sealer {
            None => Err(SealError::KeyNeeded),
            Some(s) => s.open_sealed(body).map(Cow::Owned),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    #[test]
    fn a_sealed_record_opens_with_its_key_only() {
        let s = Sealer::from_key_text(KEY, "test").unwrap();
        let plain = br#"{"escm.mail.password":"hunter2"}"#;
        let sealed = s.seal(plain).unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains(&b'\n'));
        let text = String::from_utf8(sealed.clone()).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(open_with(Some(&s), &sealed).unwrap().as_ref(), plain);
        // Two seals of the same record differ (random nonce).
        assert_ne!(s.seal(plain).unwrap(), sealed);
        // Another key, no key, a damaged record: errors, never plaintext.
        let other = Sealer::from_key_text(&"ab".repeat(32), "hex").unwrap();
        assert_eq!(
            open_with(Some(&other), &sealed).unwrap_err(),
            SealError::WrongKeyOrDamaged
        );
        assert_eq!(open_with(None, &sealed).unwrap_err(), SealError::KeyNeeded);
        let mut damaged = sealed.clone();
        let last = damaged.len() - 3;
        damaged[last] = if damaged[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            open_with(Some(&s), &damaged).unwrap_err(),
            SealError::WrongKeyOrDamaged
        );
        // Plain records still read, with or without a key.
        assert_eq!(open_with(Some(&s), b"{}").unwrap().as_ref(), b"{}");
        assert_eq!(seal_with(None, b"{}").unwrap().as_ref(), b"{}");
    }

    #[test]
    fn bad_keys_are_named_by_origin_never_shown() {
        for text in ["", "short", "c2VjcmV0", &"g".repeat(64)] {
            let e = Sealer::from_key_text(text, "OCCI_SO_SECRET_KEY").unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("OCCI_SO_SECRET_KEY: the secret key must be 32 bytes"),
                "{e}"
            );
        }
        let s = Sealer::from_key_text(KEY, "x").unwrap();
        assert_eq!(format!("{s:?}"), "Sealer(******)");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        std::fs::write(&p, format!("{KEY}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Sealer::from_file(&p).unwrap_err();
        assert!(
            e.to_string()
                .contains("group or others may read it (mode 644); chmod 600 it"),
            "{e}"
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Sealer::from_file(&p).is_ok());
    }
}
