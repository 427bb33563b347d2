//! `--out-file`: every secret in one file, replaced atomically.
//!
//! The content goes to a hidden temporary file in the same directory
//! (`.FILE.tmp-<pid>-<random>`), which is synced and given its mode and owner before it is
//! renamed over FILE; the directory is synced after the rename. A reader sees the old file or
//! the new one, never a mix. When FILE already has the same bytes and mode nothing is written.

use std::io;
use std::path::{Path, PathBuf};

use super::error::SinkError;
use super::fs::{
    create_dirs, file_matches, parent_dir, remove_created, remove_stale_temps, Content, Replacement,
};
use super::options::{WriteOptions, WriteOutcome};

/// Writes `content` to `path` atomically; stages and commits at once.
pub fn write(
    path: &Path,
    content: &[u8],
    options: &WriteOptions,
) -> Result<WriteOutcome, SinkError> {
    stage(path, content, options)?.commit()
}

/// Prepares the replacement of `path` by `content` without making it visible: creates missing
/// parent directories and, when the file differs, writes the complete temporary file.
pub fn stage(path: &Path, content: &[u8], options: &WriteOptions) -> Result<StagedFile, SinkError> {
    if path.file_name().and_then(|name| name.to_str()).is_none() {
        return Err(SinkError::Io {
            path: path.to_path_buf(),
            action: "write",
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "the path does not end in a UTF-8 file name; give --out-file a file path",
            ),
        });
    }
    let created = create_dirs(parent_dir(path), options.parent_dir_mode(), options.owner)?;
    let mut staged = StagedFile {
        replacement: None,
        existed: false,
        created,
        committed: false,
    };
    match path.symlink_metadata() {
        Ok(meta) if meta.is_dir() => {
            return Err(SinkError::Io {
                path: path.to_path_buf(),
                action: "replace",
                source: io::Error::other("it is a directory; give --out-file a file path"),
            })
        }
        Ok(_) => staged.existed = true,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(SinkError::io(path, "inspect")(error)),
    }
    remove_stale_temps(path);
    if staged.existed && file_matches(path, content, options.file_mode, options.owner) {
        return Ok(staged);
    }
    staged.replacement = Some(Replacement::stage(
        path,
        Content::Bytes(content),
        options.file_mode,
        options.owner,
    )?);
    Ok(staged)
}

/// A staged `--out-file` write: [`StagedFile::commit`] renames it into place; dropping it
/// without committing removes the temporary file.
#[derive(Debug)]
pub struct StagedFile {
    /// The complete new content; `None` when the file already has it.
    replacement: Option<Replacement>,
    existed: bool,
    created: Vec<PathBuf>,
    committed: bool,
}

impl StagedFile {
    /// Whether committing would change the file.
    pub fn changes_content(&self) -> bool {
        self.replacement.is_some()
    }

    /// Renames the temporary file over the target and syncs the directory.
    pub fn commit(mut self) -> Result<WriteOutcome, SinkError> {
        let Some(replacement) = self.replacement.take() else {
            self.committed = true;
            return Ok(WriteOutcome::Unchanged);
        };
        replacement.commit()?;
        self.committed = true;
        Ok(if self.existed {
            WriteOutcome::Updated
        } else {
            WriteOutcome::Created
        })
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        // The temporary file first: the directories it lies in are removed only when empty.
        drop(self.replacement.take());
        remove_created(&self.created);
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::sink::fs::tests::names;

    #[test]
    fn writes_the_content_with_its_mode_and_leaves_no_temporary_file() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("app.env");
        assert_eq!(
            write(&path, b"A=1\n", &WriteOptions::default()).unwrap(),
            WriteOutcome::Created
        );
        assert_eq!(fs::read(&path).unwrap(), b"A=1\n");
        assert_eq!(path.metadata().unwrap().mode() & 0o7777, 0o440);
        assert_eq!(names(root.path()), ["app.env"]);
    }

    #[test]
    fn a_change_replaces_the_file_by_rename() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("app.env");
        write(&path, b"A=1\n", &WriteOptions::default()).unwrap();
        // A reader holding the old file keeps reading the old content: it was replaced, not
        // rewritten in place.
        let mut held = fs::File::open(&path).unwrap();
        let old_inode = path.metadata().unwrap().ino();
        assert_eq!(
            write(&path, b"A=2\n", &WriteOptions::default()).unwrap(),
            WriteOutcome::Updated
        );
        assert_ne!(path.metadata().unwrap().ino(), old_inode);
        let mut old = String::new();
        std::io::Read::read_to_string(&mut held, &mut old).unwrap();
        assert_eq!(old, "A=1\n");
        assert_eq!(fs::read(&path).unwrap(), b"A=2\n");
        assert_eq!(names(root.path()), ["app.env"]);
    }

    #[test]
    fn the_same_content_and_mode_write_nothing() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("app.env");
        write(&path, b"A=1\n", &WriteOptions::default()).unwrap();
        let before = path.metadata().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(
            write(&path, b"A=1\n", &WriteOptions::default()).unwrap(),
            WriteOutcome::Unchanged
        );
        let after = path.metadata().unwrap();
        assert_eq!(
            (after.ino(), after.mtime(), after.mtime_nsec()),
            (before.ino(), before.mtime(), before.mtime_nsec())
        );

        // A different mode alone is a change.
        let options = WriteOptions {
            file_mode: 0o400,
            ..WriteOptions::default()
        };
        assert_eq!(
            write(&path, b"A=1\n", &options).unwrap(),
            WriteOutcome::Updated
        );
        assert_eq!(path.metadata().unwrap().mode() & 0o7777, 0o400);
    }

    #[test]
    fn missing_parents_are_created_and_leftovers_removed() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("a/b/app.json");
        write(&path, b"{}\n", &WriteOptions::default()).unwrap();
        assert_eq!(
            root.path().join("a/b").metadata().unwrap().mode() & 0o7777,
            0o750
        );
        let dir = root.path().join("a/b");
        fs::write(dir.join(".app.json.tmp-12-345"), "stale").unwrap();
        fs::write(dir.join(".app.json.tmp-mine"), "not ours").unwrap();
        fs::write(dir.join(".other.tmp-12-345"), "another target's").unwrap();
        write(&path, b"{\"A\":1}\n", &WriteOptions::default()).unwrap();
        assert_eq!(
            names(&dir),
            [".app.json.tmp-mine", ".other.tmp-12-345", "app.json"]
        );
    }

    #[test]
    fn a_staged_file_dropped_without_commit_changes_nothing() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("app.env");
        write(&path, b"A=1\n", &WriteOptions::default()).unwrap();
        let staged = stage(&path, b"A=2\n", &WriteOptions::default()).unwrap();
        assert!(staged.changes_content());
        assert_eq!(names(root.path()).len(), 2);
        drop(staged);
        assert_eq!(names(root.path()), ["app.env"]);
        assert_eq!(fs::read(&path).unwrap(), b"A=1\n");
    }

    #[test]
    fn a_directory_in_the_way_is_reported() {
        let root = tempfile::tempdir().unwrap();
        let error = write(root.path(), b"x", &WriteOptions::default()).unwrap_err();
        assert_eq!(error.exit_code(), 73);
        let path = root.path().join("dir");
        fs::create_dir(&path).unwrap();
        let error = write(&path, b"x", &WriteOptions::default()).unwrap_err();
        assert!(error.to_string().contains("is a directory"), "{error}");
    }
}
