//! Reading files that a caller, a plugin folder or a template names:
//! regular files only, bounded by the bytes actually read.
//!
//! A file's reported length is no bound: it is 0 for `/dev/zero`, FIFOs
//! and `/proc` files, and a file may grow while it is read. So
//! [`read_regular`] opens without blocking (a FIFO with no writer would
//! otherwise hang the open), refuses anything but a regular file (checked
//! on the opened handle, so a swap after the check cannot slip through),
//! and reads at most `limit + 1` bytes to tell "too large" from "fits".
//! [`read_regular_async`] runs it off the async runtime with a deadline.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A device, FIFO, socket or directory.
    #[error("{path}: not a regular file ({kind})")]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// More bytes than allowed.
    #[error("{path}: larger than {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// Not valid UTF-8 (for [`read_regular_text`]).
    #[error("{path}: not UTF-8 text")]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// The read did not finish in time.
    #[error("{path}: not read within {}", humantime::format_duration(*.within))]
    TimedOut {
        /// The file.
        path: PathBuf,
        /// The deadline.
        within: Duration,
    },
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// The bytes of the regular file `path`, at most `limit` of them.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(&meta),
        });
    }
    read_bounded(file, limit).map_err(|e| match e {
        Bounded::Io(source) => ReadError::Io {
            path: path.to_path_buf(),
            source,
        },
        Bounded::TooLarge => ReadError::TooLarge {
            path: path.to_path_buf(),
            limit,
        },
    })
}

enum Bounded {
    Io(std::io::Error),
    TooLarge,
}

fn read_bounded(file: File, limit: u64) -> Result<Vec<u8>, Bounded> {
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(Bounded::Io)?;
    if bytes.len() as u64 > limit {
        return Err(Bounded::TooLarge);
    }
    Ok(bytes)
}

/// [`read_regular`] as UTF-8 text.
pub fn read_regular_text(path: &Path, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read_regular(path, limit)?).map_err(|_| ReadError::NotText {
        path: path.to_path_buf(),
    })
}

/// [`read_regular`] on a blocking thread, given up after `within` (a
/// file on a hung network mount cannot stall the caller).
pub async fn read_regular_async(
    path: PathBuf,
    limit: u64,
    within: Duration,
) -> Result<Vec<u8>, ReadError> {
    let shown = path.clone();
    let task = tokio::task::spawn_blocking(move || read_regular(&path, limit));
    match tokio::time::timeout(within, task).await {
        Ok(Ok(r)) => r,
        Ok(Err(join)) => Err(ReadError::Io {
            path: shown,
            source: std::io::Error::other(join.to_string()),
        }),
        Err(_) => Err(ReadError::TimedOut {
            path: shown,
            within,
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn regular_files_are_read_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.yaml");
        std::fs::write(&f, "x".repeat(10)).unwrap();
        assert_eq!(read_regular(&f, 10).unwrap().len(), 10);
        let e = read_regular(&f, 9).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { limit: 9, .. }), "{e}");
        assert!(
            e.to_string().ends_with("a.yaml: larger than 9 bytes"),
            "{e}"
        );
    }

    #[test]
    fn devices_fifos_and_directories_are_refused_without_reading() {
        let e = read_regular(Path::new("/dev/zero"), 1 << 30).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/dev/zero: not a regular file (a character device)"
        );
        let dir = tempfile::tempdir().unwrap();
        let e = read_regular(dir.path(), 10).unwrap_err();
        assert!(
            e.to_string().ends_with("not a regular file (a directory)"),
            "{e}"
        );
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            // No writer: a blocking open would hang here for good.
            let e = read_regular(&fifo, 10).unwrap_err();
            assert!(
                e.to_string().ends_with("not a regular file (a FIFO)"),
                "{e}"
            );
        }
    }

    #[test]
    fn proc_files_report_no_length_and_are_still_bounded() {
        let p = Path::new("/proc/self/status");
        if p.exists() {
            let e = read_regular(p, 16).unwrap_err();
            assert!(matches!(e, ReadError::TooLarge { .. }), "{e}");
            assert!(!read_regular(p, 1 << 20).unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn the_async_read_has_a_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("b");
        std::fs::write(&f, "hello").unwrap();
        let got = read_regular_async(f, 100, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(got, b"hello");
    }
}
