//! Watches files that may change under a running sidecar: credentials (a projected
//! service-account token, a client secret), the configuration file and its templates. Kubelet
//! updates projected volumes, Secrets and ConfigMaps by swapping a `..data` symlink in the
//! directory, so directories are watched, not files.

use std::path::{Path, PathBuf};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// A running watch; changes arrive on `changes` (coalesced: one pending message at most).
pub struct FileWatch {
    _watcher: notify::RecommendedWatcher,
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
    let mut names: Vec<std::ffi::OsString> = files
        .iter()
        .filter_map(|f| f.file_name().map(ToOwned::to_owned))
        .collect();
    names.push("..data".into());
    let handler = move |event: notify::Result<notify::Event>| {
        let relevant = event.is_ok_and(|e| {
            !e.kind.is_access()
                && e.paths
                    .iter()
                    .any(|p| p.file_name().is_some_and(|n| names.iter().any(|w| w == n)))
        });
        if relevant {
            // Full means a change is already pending; one is enough.
            let _ = sender.try_send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!("cannot watch {what} ({error}); changes to them are not seen");
            return None;
        }
    };
    let mut directories: Vec<&Path> = files.iter().filter_map(|f| f.parent()).collect();
    directories.sort();
    directories.dedup();
    for directory in directories {
        if let Err(error) = watcher.watch(directory, RecursiveMode::NonRecursive) {
            tracing::warn!(
                "cannot watch {} ({error}); changes to {what} there are not seen",
                directory.display()
            );
        }
    }
    Some(FileWatch {
        _watcher: watcher,
        changes,
    })
}

/// The next change seen by `watch`; pending forever without a watch.
pub async fn changed(watch: &mut Option<FileWatch>) -> Option<()> {
    match watch {
        Some(watch) => watch.changes.recv().await,
        None => std::future::pending().await,
    }
}
