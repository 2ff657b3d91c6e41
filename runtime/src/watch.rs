//! File watching for hot reload: `notify` (inotify on Linux) reports every
//! change under the plugin directories; the paths are sent to the plugin
//! sources' task, which debounces them (a quiet period, see
//! [`DEBOUNCE`]) and reloads each plugin folder touched once.
//!
//! Why notify and not a polling loop: a change is seen in microseconds
//! rather than after a poll interval, nothing is read while nothing
//! changes, and new sub-folders are watched as they appear. Reads are not
//! reported (our own loads would otherwise wake us), and an overflowing
//! event queue asks for a full rescan.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

/// How long the files must stay quiet before a folder is reloaded: an
/// editor's save (write, rename, chmod) and `cp -r` of a folder settle well
/// within it.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(60);

/// The longest a stream of changes can delay a reload.
pub(crate) const MAX_DELAY: Duration = Duration::from_millis(600);

/// What the watcher reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// Something changed at this path.
    Path(PathBuf),
    /// Events were lost: look at everything again.
    Rescan,
}

/// The watcher cannot be made, or a directory cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The file watcher cannot be made.
    #[error("file watcher: {0}")]
    Watcher(notify::Error),
    /// `dir` cannot be watched.
    #[error("cannot watch {}: {source}", .dir.display())]
    Watch {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: notify::Error,
    },
}

/// Watches directories recursively and reports changed paths.
pub(crate) struct FolderWatcher {
    inner: RecommendedWatcher,
}

impl FolderWatcher {
    /// A watcher that sends what changes to `tx`.
    pub(crate) fn new(tx: UnboundedSender<Change>) -> Result<Self, WatchError> {
        let inner = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            match event {
                Ok(e) if e.need_rescan() => {
                    let _ = tx.send(Change::Rescan);
                }
                Ok(e) => {
                    let relevant = match e.kind {
                        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
                        EventKind::Access(_) => false,
                        _ => true,
                    };
                    if relevant {
                        for p in e.paths {
                            let _ = tx.send(Change::Path(p));
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "plugin file watcher: events may be lost; rescanning");
                    let _ = tx.send(Change::Rescan);
                }
            }
        })
        .map_err(WatchError::Watcher)?;
        Ok(FolderWatcher { inner })
    }

    /// Watch `dir` and everything below it.
    pub(crate) fn watch(&mut self, dir: &Path) -> Result<(), WatchError> {
        self.inner
            .watch(dir, RecursiveMode::Recursive)
            .map_err(|source| WatchError::Watch {
                dir: dir.to_path_buf(),
                source,
            })
    }

    /// Stop watching `dir` (no error when it was not watched or is gone).
    pub(crate) fn unwatch(&mut self, dir: &Path) {
        let _ = self.inner.unwatch(dir);
    }
}
