//! `--out-dir`: one file per secret, swapped atomically as a whole, the way kubelet updates
//! Secret volumes.
//!
//! ```text
//! DIR/..2026_11_22_20_47_43.123456789/KEY   the files of one version
//! DIR/..data -> ..2026_11_22_20_47_43.123456789
//! DIR/KEY -> ..data/KEY
//! ```
//!
//! An update writes a complete new hidden directory (files written, synced, mode and owner
//! set; the directory synced), points `..data_tmp` at it and renames that over `..data` in one
//! atomic step, fixes the top-level links, syncs DIR and removes the previous version. A reader
//! opening `DIR/KEY` never sees a partial file, and a reader that resolves `..data` once sees
//! one consistent version. Names starting with `..` are reserved for this bookkeeping (no key
//! may start with `..`); apart from those and the `KEY -> ..data/KEY` links, nothing in DIR is
//! ever touched.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

use super::error::SinkError;
use super::fs::{
    create_dirs, fchown, file_matches, lchown, remove_created, sync_dir, write_new, Content,
};
use super::options::{Owner, WriteOptions, WriteOutcome};
use crate::secrets::{KeyRule, SecretSet, SecretValue};
use crate::utc::Utc;

/// The link to the current version.
pub const DATA_LINK: &str = "..data";
/// The link renamed over [`DATA_LINK`].
pub const DATA_TMP_LINK: &str = "..data_tmp";
/// The temporary name a top-level link is created under when it replaces an entry.
const LINK_TMP: &str = "..link_tmp";
/// The role a key plays in `--out-dir`, as messages name it.
pub const DIR_OUTPUT: &str = "a file name in --out-dir";

/// What one version of an `--out-dir` holds: for each key, the secret's value, or the bytes a
/// `decode` option made of it (wiped on drop).
#[derive(Default)]
pub struct DirFiles<'a> {
    files: BTreeMap<&'a str, FileBytes<'a>>,
}

/// The content of one file of a [`DirFiles`].
enum FileBytes<'a> {
    /// The value as it is.
    Value(&'a SecretValue),
    /// The value decoded (e.g. from base64).
    Decoded(Zeroizing<Vec<u8>>),
}

impl<'a> DirFiles<'a> {
    /// Adds `key` holding `value` as it is.
    pub fn insert_value(&mut self, key: &'a str, value: &'a SecretValue) {
        self.files.insert(key, FileBytes::Value(value));
    }

    /// Adds `key` holding `bytes` (a decoded value).
    pub fn insert_decoded(&mut self, key: &'a str, bytes: Zeroizing<Vec<u8>>) {
        self.files.insert(key, FileBytes::Decoded(bytes));
    }

    fn keys(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.files.keys().copied()
    }

    fn get(&self, key: &str) -> Option<&[u8]> {
        self.files.get(key).map(FileBytes::bytes)
    }

    fn iter(&self) -> impl Iterator<Item = (&'a str, &[u8])> + '_ {
        self.files.iter().map(|(key, bytes)| (*key, bytes.bytes()))
    }

    fn len(&self) -> usize {
        self.files.len()
    }
}

impl<'a> From<&'a SecretSet> for DirFiles<'a> {
    fn from(secrets: &'a SecretSet) -> Self {
        let mut files = DirFiles::default();
        for (key, value) in secrets.iter() {
            files.insert_value(key, value);
        }
        files
    }
}

impl FileBytes<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            FileBytes::Value(value) => value.expose().as_bytes(),
            FileBytes::Decoded(bytes) => bytes,
        }
    }
}

/// Prepares a write of `files` into `dir` without making it visible: creates `dir` if
/// missing, removes leftovers of interrupted runs and, when the content differs from the
/// current version, writes the new version's hidden directory completely.
///
/// Every key must be a valid file name ([`KeyRule::FileName`]); others are refused.
pub fn stage(
    dir: &Path,
    files: &DirFiles<'_>,
    options: &WriteOptions,
) -> Result<StagedDir, SinkError> {
    for key in files.keys() {
        KeyRule::FileName.check(key, DIR_OUTPUT)?;
    }
    let created = create_dirs(dir, options.parent_dir_mode(), options.owner)?;
    let mut staged = StagedDir {
        dir: dir.to_path_buf(),
        keys: files.keys().map(str::to_owned).collect(),
        owner: options.owner,
        previous: None,
        new: None,
        created,
        committed: false,
    };
    staged.previous = current_version(dir)?;
    remove_leftovers(dir, staged.previous.as_deref());
    for key in files.keys() {
        let path = dir.join(key);
        if path.symlink_metadata().is_ok_and(|meta| meta.is_dir()) {
            return Err(SinkError::Io {
                path,
                action: "link",
                source: io::Error::other(
                    "a directory of that name is in the way of the secret's link; move it away",
                ),
            });
        }
    }
    let unchanged = staged
        .previous
        .as_deref()
        .is_some_and(|previous| version_matches(&dir.join(previous), files, options));
    if !unchanged {
        let name = create_version_dir(dir)?;
        // Recorded before writing, so that dropping `staged` on an error removes it.
        staged.new = Some(name.clone());
        write_version(&dir.join(&name), files, options)?;
    }
    Ok(staged)
}

/// A staged `--out-dir` write: [`StagedDir::commit`] makes it visible; dropping it without
/// committing removes what was staged.
#[derive(Debug)]
pub struct StagedDir {
    dir: PathBuf,
    keys: HashSet<String>,
    owner: Option<Owner>,
    /// The hidden directory `..data` pointed to before, if any.
    previous: Option<String>,
    /// The new version's hidden directory; `None` when the content is already there.
    new: Option<String>,
    /// Directories created for DIR, removed again if nothing is committed.
    created: Vec<PathBuf>,
    committed: bool,
}

impl StagedDir {
    /// Whether committing would change the content (rather than only repair links).
    pub fn changes_content(&self) -> bool {
        self.new.is_some()
    }

    /// Swaps `..data` to the staged version, fixes the top-level links and removes the
    /// previous version.
    pub fn commit(mut self) -> Result<WriteOutcome, SinkError> {
        let dir = self.dir.clone();
        if let Some(new) = &self.new {
            let tmp = dir.join(DATA_TMP_LINK);
            remove_if_exists(&tmp)?;
            symlink(new, &tmp).map_err(SinkError::io(&tmp, "link"))?;
            lchown(&tmp, self.owner)?;
            let data = dir.join(DATA_LINK);
            fs::rename(&tmp, &data).map_err(SinkError::io(&data, "rename"))?;
        }
        // From here on the new version is visible: it must not be removed on drop.
        self.committed = true;
        let relinked = fix_links(&dir, &self.keys, self.owner)?;
        if self.new.is_some() || relinked {
            sync_dir(&dir)?;
        }
        let Some(new) = &self.new else {
            if relinked {
                tracing::info!(dir = %dir.display(), "repaired the links of {}", dir.display());
            }
            return Ok(WriteOutcome::Unchanged);
        };
        match &self.previous {
            Some(previous) => {
                if previous != new && is_version_name(previous) {
                    remove_version(&dir.join(previous));
                }
                Ok(WriteOutcome::Updated)
            }
            None => Ok(WriteOutcome::Created),
        }
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if let Some(new) = &self.new {
            remove_version(&self.dir.join(new));
        }
        remove_created(&self.created);
    }
}

/// The hidden directory `..data` points to, or `None` when there is no `..data` yet.
fn current_version(dir: &Path) -> Result<Option<String>, SinkError> {
    let data = dir.join(DATA_LINK);
    match data.symlink_metadata() {
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(SinkError::io(&data, "inspect")(error)),
        Ok(meta) if !meta.file_type().is_symlink() => {
            return Err(SinkError::Io {
                path: data,
                action: "replace",
                source: io::Error::other(
                    "it is not a symbolic link, so it was not made by this tool; move it away",
                ),
            })
        }
        Ok(_) => {}
    }
    let target = fs::read_link(&data).map_err(SinkError::io(&data, "read"))?;
    // Anything but a `..` sibling cannot be ours: report it as a version that does not match,
    // so it is replaced (and never removed).
    Ok(Some(target.to_string_lossy().into_owned()))
}

/// Whether the version directory holds exactly `files`: the same names, bytes and modes (and
/// owner, when one is set). Errors count as "different".
fn version_matches(version: &Path, files: &DirFiles<'_>, options: &WriteOptions) -> bool {
    let file_name = version.file_name().and_then(OsStr::to_str).unwrap_or("");
    if !file_name.starts_with("..") || file_name.contains('/') {
        return false;
    }
    let Ok(meta) = version.symlink_metadata() else {
        return false;
    };
    if !meta.is_dir()
        || meta.mode() & 0o7777 != options.dir_mode()
        || options
            .owner
            .is_some_and(|owner| !owner.matches(meta.uid(), meta.gid()))
    {
        return false;
    }
    let Ok(entries) = fs::read_dir(version) else {
        return false;
    };
    let mut count = 0;
    for entry in entries {
        let Ok(entry) = entry else {
            return false;
        };
        let name = entry.file_name();
        match name.to_str().and_then(|name| files.get(name)) {
            Some(_) => count += 1,
            None => return false,
        }
    }
    count == files.len()
        && files.iter().all(|(key, bytes)| {
            file_matches(&version.join(key), bytes, options.file_mode, options.owner)
        })
}

/// Creates a new, empty, private version directory and returns its name.
fn create_version_dir(dir: &Path) -> Result<String, SinkError> {
    use std::os::unix::fs::DirBuilderExt;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut attempt: u64 = 0;
    loop {
        let name = version_name(now.as_secs(), u64::from(now.subsec_nanos()) + attempt);
        let path = dir.join(&name);
        match fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(name),
            // Two writes within the same nanosecond (or a clock step back onto an old name).
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists && attempt < 1000 => {
                attempt += 1;
            }
            Err(error) => return Err(SinkError::io(&path, "create")(error)),
        }
    }
}

/// Writes every secret into the empty `version` directory, then gives the directory its mode
/// and owner and syncs it.
fn write_version(
    version: &Path,
    files: &DirFiles<'_>,
    options: &WriteOptions,
) -> Result<(), SinkError> {
    for (key, bytes) in files.iter() {
        let content = Content::Bytes(bytes);
        write_new(
            &version.join(key),
            content,
            options.file_mode,
            options.owner,
        )?;
    }
    // Opened before the chmod: a mode without the owner's read bit would prevent it after.
    let handle = fs::File::open(version).map_err(SinkError::io(version, "open"))?;
    handle
        .set_permissions(fs::Permissions::from_mode(options.dir_mode()))
        .map_err(SinkError::io(version, "chmod"))?;
    fchown(&handle, version, options.owner)?;
    handle.sync_all().map_err(SinkError::io(version, "sync"))
}

/// Makes every `KEY` a link to `..data/KEY` and removes the links of keys that are gone; only
/// links of exactly that shape are ever removed. Returns whether anything changed.
fn fix_links(dir: &Path, keys: &HashSet<String>, owner: Option<Owner>) -> Result<bool, SinkError> {
    let mut changed = false;
    for key in keys {
        let path = dir.join(key);
        let target = Path::new(DATA_LINK).join(key);
        match fs::read_link(&path) {
            Ok(existing) if existing == target => continue,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                match symlink(&target, &path) {
                    Ok(()) => lchown(&path, owner)?,
                    // Appeared meanwhile: replace it like any other entry in the way.
                    Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                        replace_with_link(dir, &path, &target, owner)?;
                    }
                    Err(error) => return Err(SinkError::io(&path, "link")(error)),
                }
            }
            // Another link or a regular file (`read_link` fails with InvalidInput): replace it
            // atomically, so the name never disappears.
            _ => replace_with_link(dir, &path, &target, owner)?,
        }
        changed = true;
    }
    let entries = fs::read_dir(dir).map_err(SinkError::io(dir, "list"))?;
    for entry in entries {
        let entry = entry.map_err(SinkError::io(dir, "list"))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if name.starts_with("..") || keys.contains(name) {
            continue;
        }
        let path = entry.path();
        let ours =
            fs::read_link(&path).is_ok_and(|target| target == Path::new(DATA_LINK).join(name));
        if ours {
            match fs::remove_file(&path) {
                Ok(()) => changed = true,
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(SinkError::io(&path, "remove")(error)),
            }
        }
    }
    Ok(changed)
}

fn replace_with_link(
    dir: &Path,
    path: &Path,
    target: &Path,
    owner: Option<Owner>,
) -> Result<(), SinkError> {
    let tmp = dir.join(LINK_TMP);
    remove_if_exists(&tmp)?;
    symlink(target, &tmp).map_err(SinkError::io(&tmp, "link"))?;
    lchown(&tmp, owner)?;
    fs::rename(&tmp, path).map_err(SinkError::io(path, "rename"))
}

fn remove_if_exists(path: &Path) -> Result<(), SinkError> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            Err(SinkError::io(path, "remove")(error))
        }
        _ => Ok(()),
    }
}

/// Removes what an interrupted earlier run left: `..data_tmp`, the link temporary, and version
/// directories other than `current`. Failures are logged, not fatal: they only waste space.
fn remove_leftovers(dir: &Path, current: Option<&str>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let path = entry.path();
        if name == DATA_TMP_LINK || name == LINK_TMP {
            if let Err(error) = fs::remove_file(&path) {
                tracing::warn!(
                    path = %path.display(),
                    "cannot remove leftover {}: {error}",
                    path.display()
                );
            }
        } else if is_version_name(name) && Some(name) != current {
            remove_version(&path);
        }
    }
}

/// Removes a version directory; logs instead of failing, since the new version is in place.
fn remove_version(path: &Path) {
    // Its mode may lack the owner's write bit (0550), which removing its files needs.
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
    if let Err(error) = fs::remove_dir_all(path) {
        if error.kind() != io::ErrorKind::NotFound {
            tracing::warn!(
                path = %path.display(),
                "cannot remove old version {}: {error}",
                path.display()
            );
        }
    }
}

/// kubelet's version name for a time: `..YYYY_MM_DD_HH_MM_SS.NNNNNNNNN` (UTC).
fn version_name(unix_seconds: u64, nanos: u64) -> String {
    let Utc {
        year,
        month,
        day,
        hour,
        minute,
        second,
    } = Utc::from_unix(unix_seconds);
    format!("..{year:04}_{month:02}_{day:02}_{hour:02}_{minute:02}_{second:02}.{nanos:09}")
}

/// Whether `name` is a version directory name (`..YYYY_MM_DD_HH_MM_SS.N…`): only such entries
/// are ever removed.
pub fn is_version_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("..") else {
        return false;
    };
    let shape = b"dddd_dd_dd_dd_dd_dd.";
    let bytes = rest.as_bytes();
    bytes.len() > shape.len()
        && shape.iter().zip(bytes).all(|(&want, &got)| match want {
            b'd' => got.is_ascii_digit(),
            other => got == other,
        })
        && bytes[shape.len()..].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    use fake_infisical::prerequisite;

    use super::*;
    use crate::secrets::KeyError;

    /// Writes `secrets` into `dir` as one atomic version; stages and commits at once.
    fn write(
        dir: &Path,
        secrets: &SecretSet,
        options: &WriteOptions,
    ) -> Result<WriteOutcome, SinkError> {
        stage(dir, &secrets.into(), options)?.commit()
    }

    fn set(pairs: &[(&str, &str)]) -> SecretSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretValue::from(*v)))
            .collect()
    }

    /// Names in `dir`, sorted.
    fn listing(dir: &Path) -> BTreeSet<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect()
    }

    fn data_target(dir: &Path) -> PathBuf {
        fs::read_link(dir.join(DATA_LINK)).unwrap()
    }

    fn mode(path: &Path) -> u32 {
        path.symlink_metadata().unwrap().mode() & 0o7777
    }

    /// Where the stress test writes: tmpfs when there is one (syncing is free there).
    fn fast_tempdir() -> tempfile::TempDir {
        let shm = Path::new("/dev/shm");
        if super::super::fs::is_memory_backed(shm).unwrap_or(false) {
            if let Ok(dir) = tempfile::tempdir_in(shm) {
                return dir;
            }
        }
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn version_names_follow_kubelet() {
        assert_eq!(version_name(0, 0), "..1970_01_01_00_00_00.000000000");
        assert_eq!(
            version_name(1_700_000_000, 123_456_789),
            "..2023_11_14_22_13_20.123456789"
        );
        assert_eq!(
            version_name(951_782_400, 5),
            "..2000_02_29_00_00_00.000000005"
        );
        assert!(is_version_name("..2026_11_22_20_47_43.123456789"));
        for other in [
            "..data",
            "..data_tmp",
            "2026_11_22_20_47_43.1",
            "..2026_11_22_20_47_43.",
            "..2026_11_22_20_47_43.1x",
            "..keep",
        ] {
            assert!(!is_version_name(other), "{other}");
        }
    }

    #[test]
    fn writes_one_file_per_secret_behind_links() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("secrets");
        let secrets = set(&[
            ("API_KEY", "hunter2"),
            ("tls.crt", "-----BEGIN-----\nabc\n"),
            ("EMPTY", ""),
            (".hidden", " x "),
        ]);
        let outcome = write(&dir, &secrets, &WriteOptions::default()).unwrap();
        assert_eq!(outcome, WriteOutcome::Created);

        let version = data_target(&dir);
        assert!(is_version_name(version.to_str().unwrap()), "{version:?}");
        assert_eq!(mode(&dir.join(&version)), 0o550);
        assert_eq!(mode(&dir), 0o750);
        for (key, value) in secrets.iter() {
            assert_eq!(
                fs::read_link(dir.join(key)).unwrap(),
                Path::new("..data").join(key)
            );
            assert_eq!(
                fs::read(dir.join(key)).unwrap(),
                value.expose().as_bytes(),
                "{key}"
            );
            assert_eq!(mode(&dir.join(&version).join(key)), 0o440, "{key}");
        }
        let mut expected: BTreeSet<String> = secrets.keys().map(str::to_owned).collect();
        expected.extend(["..data".to_owned(), version.to_str().unwrap().to_owned()]);
        assert_eq!(listing(&dir), expected);
        assert_eq!(
            listing(&dir.join(&version)),
            secrets.keys().map(str::to_owned).collect()
        );
    }

    #[test]
    fn file_mode_applies_to_files_and_read_bits_become_search_bits_on_the_directory() {
        let root = tempfile::tempdir().unwrap();
        let options = WriteOptions {
            file_mode: 0o404,
            ..WriteOptions::default()
        };
        write(root.path(), &set(&[("A", "1")]), &options).unwrap();
        let version = root.path().join(data_target(root.path()));
        assert_eq!(mode(&version.join("A")), 0o404);
        assert_eq!(mode(&version), 0o505);
    }

    #[test]
    fn the_same_secrets_again_write_nothing() {
        let root = tempfile::tempdir().unwrap();
        let secrets = set(&[("A", "1"), ("B", "two\n")]);
        write(root.path(), &secrets, &WriteOptions::default()).unwrap();
        let before = data_target(root.path());
        let inode = fs::metadata(root.path().join("..data")).unwrap().ino();
        let link_inode = root.path().join("..data").symlink_metadata().unwrap().ino();

        // As after a restart: a fresh call, only what is on disk to compare with.
        let outcome = write(root.path(), &secrets.clone(), &WriteOptions::default()).unwrap();
        assert_eq!(outcome, WriteOutcome::Unchanged);
        assert_eq!(data_target(root.path()), before);
        assert_eq!(
            fs::metadata(root.path().join("..data")).unwrap().ino(),
            inode
        );
        assert_eq!(
            root.path().join("..data").symlink_metadata().unwrap().ino(),
            link_inode
        );
    }

    #[test]
    fn a_changed_mode_is_a_change() {
        let root = tempfile::tempdir().unwrap();
        let secrets = set(&[("A", "1")]);
        write(root.path(), &secrets, &WriteOptions::default()).unwrap();
        let options = WriteOptions {
            file_mode: 0o400,
            ..WriteOptions::default()
        };
        assert_eq!(
            write(root.path(), &secrets, &options).unwrap(),
            WriteOutcome::Updated
        );
        assert_eq!(mode(&root.path().join("..data/A")), 0o400);
    }

    #[test]
    fn a_changed_secret_swaps_the_whole_version_and_removes_the_old_one() {
        let root = tempfile::tempdir().unwrap();
        write(
            root.path(),
            &set(&[("A", "1"), ("B", "2")]),
            &WriteOptions::default(),
        )
        .unwrap();
        let old = data_target(root.path());
        let outcome = write(
            root.path(),
            &set(&[("A", "1"), ("B", "changed")]),
            &WriteOptions::default(),
        )
        .unwrap();
        assert_eq!(outcome, WriteOutcome::Updated);
        let new = data_target(root.path());
        assert_ne!(old, new);
        assert!(!root.path().join(&old).exists(), "old version left behind");
        assert_eq!(
            fs::read_to_string(root.path().join("B")).unwrap(),
            "changed"
        );
        assert_eq!(fs::read_to_string(root.path().join("A")).unwrap(), "1");
    }

    #[test]
    fn a_deleted_secret_loses_its_link_and_nothing_else_is_touched() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        fs::write(dir.join("notes.txt"), "mine").unwrap();
        symlink("/etc/hostname", dir.join("my-link")).unwrap();
        symlink("..data/OTHER", dir.join("looks-like-ours")).unwrap();
        fs::create_dir(dir.join("..keep")).unwrap();
        write(
            dir,
            &set(&[("A", "1"), ("GONE", "2")]),
            &WriteOptions::default(),
        )
        .unwrap();
        write(
            dir,
            &set(&[("A", "1"), ("NEW", "3")]),
            &WriteOptions::default(),
        )
        .unwrap();

        let version = data_target(dir).to_str().unwrap().to_owned();
        let expected: BTreeSet<String> = [
            "A",
            "NEW",
            "notes.txt",
            "my-link",
            "looks-like-ours",
            "..keep",
            "..data",
            &version,
        ]
        .map(String::from)
        .into();
        assert_eq!(listing(dir), expected);
        assert_eq!(fs::read_to_string(dir.join("notes.txt")).unwrap(), "mine");
        assert_eq!(
            fs::read_link(dir.join("my-link")).unwrap(),
            Path::new("/etc/hostname")
        );
        assert_eq!(fs::read_to_string(dir.join("NEW")).unwrap(), "3");
    }

    #[test]
    fn entries_in_the_way_of_a_link_are_replaced_and_missing_links_repaired() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        fs::write(dir.join("A"), "stale plain file").unwrap();
        symlink("/etc/hostname", dir.join("B")).unwrap();
        write(
            dir,
            &set(&[("A", "1"), ("B", "2")]),
            &WriteOptions::default(),
        )
        .unwrap();
        assert_eq!(fs::read_link(dir.join("A")).unwrap(), Path::new("..data/A"));
        assert_eq!(fs::read_to_string(dir.join("B")).unwrap(), "2");

        let version = data_target(dir);
        fs::remove_file(dir.join("A")).unwrap();
        let outcome = write(
            dir,
            &set(&[("A", "1"), ("B", "2")]),
            &WriteOptions::default(),
        )
        .unwrap();
        assert_eq!(outcome, WriteOutcome::Unchanged, "content did not change");
        assert_eq!(data_target(dir), version);
        assert_eq!(fs::read_to_string(dir.join("A")).unwrap(), "1");
    }

    #[test]
    fn leftovers_of_an_interrupted_run_are_removed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        write(dir, &set(&[("A", "1")]), &WriteOptions::default()).unwrap();
        let stale = dir.join("..2020_01_01_00_00_00.000000001");
        fs::create_dir(&stale).unwrap();
        fs::write(stale.join("A"), "half").unwrap();
        fs::set_permissions(&stale, fs::Permissions::from_mode(0o550)).unwrap();
        symlink("..2020_01_01_00_00_00.000000001", dir.join(DATA_TMP_LINK)).unwrap();
        fs::create_dir(dir.join("..not-ours")).unwrap();

        assert_eq!(
            write(dir, &set(&[("A", "1")]), &WriteOptions::default()).unwrap(),
            WriteOutcome::Unchanged
        );
        assert!(!stale.exists());
        assert!(dir.join(DATA_TMP_LINK).symlink_metadata().is_err());
        assert!(dir.join("..not-ours").is_dir());
        assert_eq!(fs::read_to_string(dir.join("A")).unwrap(), "1");
    }

    #[test]
    fn keys_that_are_not_file_names_never_write_outside_dir() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        write(&dir, &set(&[("A", "1")]), &WriteOptions::default()).unwrap();
        let before = listing(&dir);
        let version = data_target(&dir);
        for bad in ["../evil", "..data", "a/b", "..", ".", ""] {
            let error = write(
                &dir,
                &set(&[("A", "2"), (bad, "x")]),
                &WriteOptions::default(),
            )
            .unwrap_err();
            assert!(
                matches!(&error, SinkError::InvalidKey(KeyError { key, .. }) if key == bad),
                "{bad:?}: {error}"
            );
            assert_eq!(error.exit_code(), 65);
            assert_eq!(listing(&dir), before, "{bad:?} changed the directory");
            assert_eq!(data_target(&dir), version);
        }
        assert_eq!(listing(root.path()), BTreeSet::from(["out".to_owned()]));
        assert_eq!(fs::read_to_string(dir.join("A")).unwrap(), "1");
    }

    #[test]
    fn a_failed_staging_removes_what_it_staged() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        write(dir, &set(&[("A", "1")]), &WriteOptions::default()).unwrap();
        let before = listing(dir);
        // A directory where a link must go: found before anything is written.
        fs::create_dir(dir.join("B")).unwrap();
        let error = write(
            dir,
            &set(&[("A", "2"), ("B", "2")]),
            &WriteOptions::default(),
        )
        .unwrap_err();
        assert!(
            matches!(error, SinkError::Io { action: "link", .. }),
            "{error}"
        );
        assert_eq!(error.exit_code(), 73);
        let mut expected = before.clone();
        expected.insert("B".into());
        assert_eq!(listing(dir), expected);
        assert_eq!(fs::read_to_string(dir.join("A")).unwrap(), "1");

        // A staged version dropped without commit disappears.
        fs::remove_dir(dir.join("B")).unwrap();
        let staged = stage(dir, &(&set(&[("A", "3")])).into(), &WriteOptions::default()).unwrap();
        assert!(staged.changes_content());
        assert_eq!(listing(dir).len(), before.len() + 1);
        drop(staged);
        assert_eq!(listing(dir), before);
        assert_eq!(fs::read_to_string(dir.join("A")).unwrap(), "1");
    }

    #[test]
    fn a_missing_dir_is_created_and_removed_again_when_staging_fails() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        let staged = stage(
            &dir,
            &(&set(&[("A", "1")])).into(),
            &WriteOptions::default(),
        )
        .unwrap();
        assert!(
            dir.join("..data").symlink_metadata().is_err(),
            "visible before commit"
        );
        drop(staged);
        assert!(!root.path().join("a").exists());
    }

    #[test]
    fn owner_is_applied_to_everything_written() {
        let root = tempfile::tempdir().unwrap();
        let owner = Owner {
            uid: 4321,
            gid: Some(8765),
        };
        let options = WriteOptions {
            owner: Some(owner),
            ..WriteOptions::default()
        };
        let result = write(&root.path().join("out"), &set(&[("A", "1")]), &options);
        if !prerequisite::is_root() {
            // Without root the chown fails; that failure must be clean and say what to do.
            let error = result.unwrap_err();
            assert!(
                matches!(
                    error,
                    SinkError::Io {
                        action: "chown",
                        ..
                    }
                ),
                "{error}"
            );
            assert!(error.to_string().contains("--owner"), "{error}");
            assert!(
                !root.path().join("out").exists(),
                "left behind after a failed chown"
            );
            return prerequisite::missing("applying --owner to what is written needs root");
        }
        result.unwrap();
        let dir = root.path().join("out");
        let version = dir.join(data_target(&dir));
        for path in [
            dir.clone(),
            version.clone(),
            version.join("A"),
            dir.join("A"),
            dir.join("..data"),
        ] {
            let meta = path.symlink_metadata().unwrap();
            assert_eq!((meta.uid(), meta.gid()), (4321, 8765), "{path:?}");
        }
        assert_eq!(
            write(&dir, &set(&[("A", "1")]), &options).unwrap(),
            WriteOutcome::Unchanged
        );
    }

    /// One writer swaps versions while readers check that no file is torn and that a version
    /// resolved once through `..data` is never a mix.
    #[test]
    fn readers_never_see_a_torn_file_or_a_mix_of_versions() {
        const KEYS: [&str; 5] = ["A", "B", "C", "D", "E"];
        const VERSIONS: usize = 300;
        fn value(version: usize, index: usize) -> String {
            // Lengths differ per version and key, so a torn or mixed read cannot pass.
            format!(
                "v{version}-{}-{}",
                KEYS[index],
                "x".repeat((version * 7 + index * 13) % 61)
            )
        }
        fn secrets(version: usize) -> SecretSet {
            (0..KEYS.len())
                .map(|i| (KEYS[i].to_owned(), SecretValue::new(value(version, i))))
                .collect()
        }
        fn version_of(text: &str) -> Option<usize> {
            text.strip_prefix('v')?.split('-').next()?.parse().ok()
        }

        let root = fast_tempdir();
        let dir = root.path().to_path_buf();
        write(&dir, &secrets(0), &WriteOptions::default()).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let consistent_reads = Arc::new(AtomicUsize::new(0));
        let mut readers = Vec::new();
        for _ in 0..2 {
            let (dir, done, consistent_reads) =
                (dir.clone(), done.clone(), consistent_reads.clone());
            readers.push(std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    // Through `..data`, resolved once: one version for every key.
                    let Ok(version_dir) = fs::read_link(dir.join("..data")) else {
                        panic!("..data missing")
                    };
                    let mut seen = None;
                    let mut complete = true;
                    for (index, key) in KEYS.iter().enumerate() {
                        match fs::read_to_string(dir.join(&version_dir).join(key)) {
                            Ok(text) => {
                                let version =
                                    version_of(&text).unwrap_or_else(|| panic!("torn: {text:?}"));
                                assert_eq!(text, value(version, index), "torn file");
                                assert_eq!(*seen.get_or_insert(version), version, "mixed versions");
                            }
                            // The writer removed this (old) version meanwhile.
                            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                                complete = false
                            }
                            Err(error) => panic!("{error}"),
                        }
                    }
                    if complete {
                        consistent_reads.fetch_add(1, Ordering::Relaxed);
                    }
                    // Through the top-level links: each file whole.
                    for (index, key) in KEYS.iter().enumerate() {
                        match fs::read_to_string(dir.join(key)) {
                            Ok(text) => {
                                let version =
                                    version_of(&text).unwrap_or_else(|| panic!("torn: {text:?}"));
                                assert_eq!(text, value(version, index), "torn file");
                            }
                            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                            Err(error) => panic!("{error}"),
                        }
                    }
                }
            }));
        }
        for version in 1..=VERSIONS {
            assert_eq!(
                write(&dir, &secrets(version), &WriteOptions::default()).unwrap(),
                WriteOutcome::Updated
            );
        }
        done.store(true, Ordering::Relaxed);
        for reader in readers {
            reader
                .join()
                .expect("reader saw a torn file or mixed versions");
        }
        assert!(consistent_reads.load(Ordering::Relaxed) > 0);
        assert_eq!(
            fs::read_to_string(dir.join("E")).unwrap(),
            value(VERSIONS, 4)
        );
        // Only the last version is left.
        assert_eq!(
            listing(&dir)
                .iter()
                .filter(|name| is_version_name(name))
                .count(),
            1
        );
    }
}
