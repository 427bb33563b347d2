//! Watches credential files (a projected service-account token, a client secret) so a rotated
//! credential is picked up, validated and kept as the "last good" one before the next login.

use std::path::{Path, PathBuf};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// A running watch; changes arrive on `changes` (coalesced: one pending message at most).
pub struct CredentialWatch {
    _watcher: notify::RecommendedWatcher,
    /// Receives a message after any change in a watched file's directory.
    pub changes: mpsc::Receiver<()>,
}

/// Watches the directories holding `files`. Kubelet replaces projected files by swapping a
/// `..data` symlink in the directory, so the directory is what must be watched, not the file.
/// Returns `None` (after a warning) when watching is impossible; logins still re-read the files.
pub fn watch_credentials(files: &[PathBuf]) -> Option<CredentialWatch> {
    if files.is_empty() {
        return None;
    }
    let (sender, changes) = mpsc::channel(1);
    // Only events about the credential files themselves, or kubelet's `..data` swap, count:
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
            tracing::warn!(
                "cannot watch credential files ({error}); they are still re-read at every login"
            );
            return None;
        }
    };
    let mut directories: Vec<&Path> = files.iter().filter_map(|f| f.parent()).collect();
    directories.sort();
    directories.dedup();
    for directory in directories {
        if let Err(error) = watcher.watch(directory, RecursiveMode::NonRecursive) {
            tracing::warn!(
                "cannot watch {} ({error}); credentials there are still re-read at every login",
                directory.display()
            );
        }
    }
    Some(CredentialWatch {
        _watcher: watcher,
        changes,
    })
}
