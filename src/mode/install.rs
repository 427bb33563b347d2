//! `install --to PATH`: copies this binary to PATH with mode 0755, atomically.
//!
//! An init container built from the scratch image has no `cp`, so the binary copies itself into
//! a shared volume (an emptyDir) for the app container to run as its entrypoint wrapper.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::cli::InstallArgs;
use crate::error::{exit, Fatal};
use crate::sink::fs::{parent_dir, Content, Replacement};
use crate::sink::SinkError;

/// The running binary; still readable when the file it came from was replaced or deleted.
const SELF_EXE: &str = "/proc/self/exe";

/// The mode of the copy.
const MODE: u32 = 0o755;

/// Runs `install`.
pub fn run(args: &InstallArgs) -> Result<(), Fatal> {
    let target = target_path(&args.to);
    let bytes = install(Path::new(SELF_EXE), &target)?;
    tracing::info!(
        bytes,
        mode = format!("{MODE:04o}"),
        "installed {}",
        target.display()
    );
    Ok(())
}

/// `--to DIR/` or an existing directory means `DIR/infisical-materializer`.
fn target_path(to: &Path) -> PathBuf {
    if to.is_dir() {
        to.join(env!("CARGO_PKG_NAME"))
    } else {
        to.to_owned()
    }
}

/// Copies `source` to `target` through a temp file in the target's directory, then renames it
/// over the target so nobody ever runs a half-written binary. Returns the size copied.
pub fn install(source: &Path, target: &Path) -> Result<u64, Fatal> {
    let dir = parent_dir(target);
    if target.file_name().is_none() {
        return Err(Fatal::new(
            exit::USAGE,
            format!(
                "--to {}: give a file path, e.g. /shared/bin/infisical-materializer",
                target.display()
            ),
        ));
    }
    let cant_write = |error: SinkError| {
        // The system's reason only: the sink's advice is about secret outputs, not this copy.
        let reason = match &error {
            SinkError::Io { source, .. } => source.to_string(),
            other => other.to_string(),
        };
        Fatal::new(
            exit::CANT_WRITE,
            format!(
                "cannot write {} into {}: {reason}; mount a writable volume there (e.g. an emptyDir)",
                target.display(),
                dir.display()
            ),
        )
    };
    let mut input = File::open(source).map_err(|error| {
        Fatal::new(
            exit::CANT_WRITE,
            format!(
                "cannot read this program's own binary {}: {error}",
                source.display()
            ),
        )
    })?;
    let copy =
        Replacement::stage(target, Content::CopyOf(&mut input), MODE, None).map_err(cant_write)?;
    let bytes = copy.bytes();
    copy.commit().map_err(cant_write)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn copies_atomically_with_mode_0755_and_replaces_an_old_copy() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        std::fs::write(&source, b"binary-bytes").unwrap();
        let target = dir.path().join("bin");
        std::fs::write(&target, b"old").unwrap();
        assert_eq!(install(&source, &target).unwrap(), 12);
        assert_eq!(std::fs::read(&target).unwrap(), b"binary-bytes");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 2, "no temp file left: {leftovers:?}");
    }

    #[test]
    fn a_missing_directory_is_a_write_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        std::fs::write(&source, b"x").unwrap();
        let error = install(&source, &dir.path().join("missing/bin")).unwrap_err();
        assert_eq!(error.code, exit::CANT_WRITE);
        assert!(error.message.contains("missing"), "{}", error.message);
    }

    #[test]
    fn an_existing_directory_receives_the_binary_by_name() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            target_path(dir.path()),
            dir.path().join("infisical-materializer")
        );
    }
}
