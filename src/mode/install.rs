//! `install --to PATH`: copies this binary to PATH with mode 0755, atomically.
//!
//! An init container built from the scratch image has no `cp`, so the binary copies itself into
//! a shared volume (an emptyDir) for the app container to run as its entrypoint wrapper.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::cli::InstallArgs;
use crate::error::{exit, Fatal};

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
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let Some(name) = target.file_name() else {
        return Err(Fatal::new(
            exit::USAGE,
            format!(
                "--to {}: give a file path, e.g. /shared/bin/infisical-materializer",
                target.display()
            ),
        ));
    };
    let cant_write = |error: io::Error| {
        Fatal::new(
            exit::CANT_WRITE,
            format!(
                "cannot write {} into {}: {error}; mount a writable volume there (e.g. an emptyDir)",
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
    let temp = dir.join(format!(
        ".{}.tmp-{}-{:08x}",
        name.to_string_lossy(),
        std::process::id(),
        fastrand::u32(..)
    ));
    let mut output = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(&temp)
        .map_err(cant_write)?;
    let written = (|| {
        let bytes = io::copy(&mut input, &mut output)?;
        // Explicitly, since the umask may have taken bits away at creation.
        output.set_permissions(Permissions::from_mode(MODE))?;
        output.sync_all()?;
        drop(output);
        std::fs::rename(&temp, target)?;
        // The rename is durable once the directory is; a failure here changes nothing visible.
        if let Ok(dir) = File::open(&dir) {
            let _ = dir.sync_all();
        }
        Ok(bytes)
    })();
    written.map_err(|error| {
        let _ = std::fs::remove_file(&temp);
        cant_write(error)
    })
}

#[cfg(test)]
mod tests {
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
