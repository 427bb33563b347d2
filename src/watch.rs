//! Watches files that may change under a running sidecar: credentials (a projected
//! service-account token, a client secret), the configuration file and its templates. Kubelet
//! updates projected volumes, Secrets and ConfigMaps by swapping a `..data` symlink in the
//! directory, so directories are watched, not files.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// A running watch; changes arrive on `changes` (coalesced: one pending message at most).
pub struct FileWatch {
    watcher: notify::RecommendedWatcher,
    /// The file names that count (and kubelet's `..data`), shared with the event handler.
    names: Arc<Mutex<HashSet<OsString>>>,
    /// The directories watched.
    directories: HashSet<PathBuf>,
    what: String,
    /// Receives a message after any change in a watched file's directory.
    pub changes: mpsc::Receiver<()>,
}

/// Watches the directories holding `files` (`what` names them in warnings, e.g. "credential
/// files"). Returns `None` (after a warning) when watching is impossible.
pub fn watch_files(files: &[PathBuf], what: &str) -> Option<FileWatch> {
    if files.is_empty() {
        return None;
    }
    let (sender, changes) = mpsc::channel(1);
    // Only events about the files themselves, or kubelet's `..data` swap, count:
    // the directory may hold other files (even our own outputs).
    let names: Arc<Mutex<HashSet<OsString>>> = Arc::default();
    let relevant_names = Arc::clone(&names);
    let handler = move |event: notify::Result<notify::Event>| {
        let names = relevant_names
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let relevant = event.is_ok_and(|e| {
            !e.kind.is_access()
                && e.paths
                    .iter()
                    .any(|p| p.file_name().is_some_and(|n| names.contains(n)))
        });
        if relevant {
            // Full means a change is already pending; one is enough.
            let _ = sender.try_send(());
        }
    };
    let watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!("cannot watch {what} ({error}); changes to them are not seen");
            return None;
        }
    };
    let mut watch = FileWatch {
        watcher,
        names,
        directories: HashSet::new(),
        what: what.to_owned(),
        changes,
    };
    watch.add(files);
    Some(watch)
}

impl FileWatch {
    /// Watches these files too. The watch itself is kept, so no change made meanwhile is lost.
    pub fn add(&mut self, files: &[PathBuf]) {
        {
            let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
            names.insert("..data".into());
            names.extend(
                files
                    .iter()
                    .filter_map(|f| f.file_name().map(ToOwned::to_owned)),
            );
        }
        for directory in files.iter().filter_map(|f| f.parent()) {
            if self.directories.contains(directory) {
                continue;
            }
            match self.watcher.watch(directory, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.directories.insert(directory.to_owned());
                }
                Err(error) => tracing::warn!(
                    "cannot watch {} ({error}); changes to {} there are not seen",
                    directory.display(),
                    self.what
                ),
            }
        }
    }
}

/// The next change seen by `watch`; pending forever without a watch.
pub async fn changed(watch: &mut Option<FileWatch>) -> Option<()> {
    match watch {
        Some(watch) => watch.changes.recv().await,
        None => std::future::pending().await,
    }
}
