//! The filesystem under the outputs: the one way a private file is written (created
//! exclusively, written, given its mode and owner, synced, renamed into place, its directory
//! synced), directories created with their mode and owner, and what a target's filesystem is
//! (tmpfs or ramfs; writable at all).

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::statfs::{self, FsType};

use super::error::{errno_text, SinkError};
use super::options::Owner;

/// tmpfs's `statfs` magic number.
const TMPFS_MAGIC: u32 = 0x0102_1994;
/// ramfs's `statfs` magic number.
const RAMFS_MAGIC: u32 = 0x8584_58f6;

/// Filesystems the kernel makes up (`statfs` magic, name): nothing written there is a file.
const KERNEL_FILESYSTEMS: [(FsType, &str); 11] = [
    (statfs::PROC_SUPER_MAGIC, "proc"),
    (statfs::SYSFS_MAGIC, "sysfs"),
    (statfs::CGROUP_SUPER_MAGIC, "cgroup"),
    (statfs::CGROUP2_SUPER_MAGIC, "cgroup2"),
    (statfs::DEBUGFS_MAGIC, "debugfs"),
    (statfs::TRACEFS_MAGIC, "tracefs"),
    (statfs::SECURITYFS_MAGIC, "securityfs"),
    (statfs::SELINUX_MAGIC, "selinuxfs"),
    (statfs::BPF_FS_MAGIC, "bpf"),
    (statfs::DEVPTS_SUPER_MAGIC, "devpts"),
    (statfs::NSFS_MAGIC, "nsfs"),
];

/// What a new file is filled with.
#[derive(Debug)]
pub enum Content<'a> {
    /// These bytes, written from where they are (no copy of a secret is made on the way).
    Bytes(&'a [u8]),
    /// Everything an open file holds from its current position (`install` copies its binary).
    CopyOf(&'a mut File),
}

/// Writes a new file at `path`, which must not exist yet: created exclusively and private
/// (0600) while it is filled, then given `mode` and `owner`, and synced. Returns the number of
/// bytes written. On an error the file is removed again.
pub fn write_new(
    path: &Path,
    content: Content<'_>,
    mode: u32,
    owner: Option<Owner>,
) -> Result<u64, SinkError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(SinkError::io(path, "create"))?;
    let filled = fill(&mut file, path, content, mode, owner);
    if filled.is_err() {
        let _ = fs::remove_file(path);
    }
    filled
}

fn fill(
    file: &mut File,
    path: &Path,
    content: Content<'_>,
    mode: u32,
    owner: Option<Owner>,
) -> Result<u64, SinkError> {
    let written = match content {
        Content::Bytes(bytes) => file.write_all(bytes).map(|()| bytes.len() as u64),
        Content::CopyOf(source) => io::copy(source, file),
    }
    .map_err(SinkError::io(path, "write"))?;
    // Set explicitly: the mode given at creation is filtered by the umask.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(SinkError::io(path, "chmod"))?;
    fchown(file, path, owner)?;
    file.sync_all().map_err(SinkError::io(path, "sync"))?;
    Ok(written)
}

/// The complete new content of a file, written by [`write_new`] under a hidden temporary name
/// beside its target (`.NAME.tmp-PID-RANDOM`) and not visible yet. [`Replacement::commit`]
/// renames it over the target, so a reader sees the old file or the new one, never a mix;
/// dropping it uncommitted removes it.
#[derive(Debug)]
pub struct Replacement {
    target: PathBuf,
    temp: PathBuf,
    bytes: u64,
    renamed: bool,
}

impl Replacement {
    /// Writes `content` with `mode` and `owner` beside `target`, ready to replace it.
    pub fn stage(
        target: &Path,
        content: Content<'_>,
        mode: u32,
        owner: Option<Owner>,
    ) -> Result<Self, SinkError> {
        let temp = temp_path(target)?;
        let bytes = write_new(&temp, content, mode, owner)?;
        Ok(Self {
            target: target.to_path_buf(),
            temp,
            bytes,
            renamed: false,
        })
    }

    /// The size of the new content.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Renames the new file over the target, then syncs the directory so the rename survives a
    /// crash.
    pub fn commit(mut self) -> Result<(), SinkError> {
        fs::rename(&self.temp, &self.target).map_err(SinkError::io(&self.target, "rename"))?;
        self.renamed = true;
        sync_dir(parent_dir(&self.target))
    }
}

impl Drop for Replacement {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// The start of the temporary names of replacements of the file `name`.
fn temp_prefix(name: &OsStr) -> OsString {
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".tmp-");
    prefix
}

/// A fresh temporary name beside `target` for its replacement.
fn temp_path(target: &Path) -> Result<PathBuf, SinkError> {
    let Some(name) = target.file_name() else {
        return Err(SinkError::Io {
            path: target.to_path_buf(),
            action: "write",
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "the path does not end in a file name; give a file path",
            ),
        });
    };
    let mut temp = temp_prefix(name);
    temp.push(format!("{}-{}", std::process::id(), fastrand::u64(..)));
    Ok(parent_dir(target).join(temp))
}

/// Removes the temporary files that interrupted earlier replacements of `target` left: exactly
/// `.NAME.tmp-<digits>-<digits>`, nothing else. Failures are logged: they only waste space.
pub(super) fn remove_stale_temps(target: &Path) {
    let Some(name) = target.file_name() else {
        return;
    };
    let prefix = temp_prefix(name);
    let Ok(entries) = fs::read_dir(parent_dir(target)) else {
        return;
    };
    for entry in entries.flatten() {
        let entry_name = entry.file_name();
        let Some(rest) = entry_name.as_bytes().strip_prefix(prefix.as_bytes()) else {
            continue;
        };
        let digits = |part: &[u8]| !part.is_empty() && part.iter().all(u8::is_ascii_digit);
        let is_temp = rest
            .iter()
            .position(|&b| b == b'-')
            .is_some_and(|dash| digits(&rest[..dash]) && digits(&rest[dash + 1..]));
        if !is_temp {
            continue;
        }
        let path = entry.path();
        if let Err(error) = fs::remove_file(&path) {
            tracing::warn!(
                path = %path.display(),
                "cannot remove leftover {}: {error}",
                path.display()
            );
        }
    }
}

/// Creates `path` and its missing parents with `mode` and `owner`; returns the directories it
/// created, outermost first, so a failed write can remove them again.
pub(super) fn create_dirs(
    path: &Path,
    mode: u32,
    owner: Option<Owner>,
) -> Result<Vec<PathBuf>, SinkError> {
    use std::os::unix::fs::DirBuilderExt;

    let mut missing = Vec::new();
    let mut probe = path;
    while probe.symlink_metadata().is_err() {
        missing.push(probe.to_path_buf());
        match probe.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => probe = parent,
            _ => break,
        }
    }
    missing.reverse();
    let mut created = Vec::new();
    for dir in missing {
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => created.push(dir.clone()),
            // Someone else created it meanwhile; it is theirs, so leave its mode alone.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => {
                remove_created(&created);
                return Err(SinkError::io(&dir, "create")(error));
            }
        }
        // Set explicitly: the builder's mode is filtered by the umask.
        let result = fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
            .map_err(SinkError::io(&dir, "chmod"))
            .and_then(|()| chown(&dir, owner));
        if let Err(error) = result {
            remove_created(&created);
            return Err(error);
        }
    }
    Ok(created)
}

/// Removes directories [`create_dirs`] made, innermost first, if they are still empty.
pub(super) fn remove_created(created: &[PathBuf]) {
    for dir in created.iter().rev() {
        let _ = fs::remove_dir(dir);
    }
}

/// Changes the owner of `path` (following symlinks) as `--owner` asks.
fn chown(path: &Path, owner: Option<Owner>) -> Result<(), SinkError> {
    match owner {
        Some(owner) => std::os::unix::fs::chown(path, Some(owner.uid), owner.gid)
            .map_err(SinkError::io(path, "chown")),
        None => Ok(()),
    }
}

/// Changes the owner of the symlink `path` itself as `--owner` asks.
pub(super) fn lchown(path: &Path, owner: Option<Owner>) -> Result<(), SinkError> {
    match owner {
        Some(owner) => std::os::unix::fs::lchown(path, Some(owner.uid), owner.gid)
            .map_err(SinkError::io(path, "chown")),
        None => Ok(()),
    }
}

/// Changes the owner of an open file as `--owner` asks.
pub(super) fn fchown(file: &File, path: &Path, owner: Option<Owner>) -> Result<(), SinkError> {
    match owner {
        Some(owner) => std::os::unix::fs::fchown(file, Some(owner.uid), owner.gid)
            .map_err(SinkError::io(path, "chown")),
        None => Ok(()),
    }
}

/// Makes a directory's entries (creations, renames, removals) durable.
pub(super) fn sync_dir(path: &Path) -> Result<(), SinkError> {
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(SinkError::io(path, "sync"))
}

/// Whether the regular file at `path` holds exactly `content` with `mode` and `owner`. Any
/// error reading it counts as "different": the caller then rewrites it.
pub(super) fn file_matches(path: &Path, content: &[u8], mode: u32, owner: Option<Owner>) -> bool {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;

    let Ok(meta) = path.symlink_metadata() else {
        return false;
    };
    if !meta.is_file()
        || meta.mode() & 0o7777 != mode & 0o7777
        || meta.len() != content.len() as u64
        || owner.is_some_and(|owner| !owner.matches(meta.uid(), meta.gid()))
    {
        return false;
    }
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    // One spare byte to notice a file that grew since the metadata was read.
    let mut on_disk = zeroize::Zeroizing::new(Vec::with_capacity(content.len() + 1));
    match file.read_to_end(&mut on_disk) {
        Ok(_) => on_disk.as_slice() == content,
        Err(_) => false,
    }
}

/// Whether `path` (or, when it does not exist yet, its nearest existing ancestor) is on tmpfs
/// or ramfs.
pub fn is_memory_backed(path: &Path) -> Result<bool, SinkError> {
    let probe = nearest_existing(path);
    let stat = statfs::statfs(probe.as_path())
        .map_err(|errno| SinkError::io(&probe, "inspect")(io::Error::from(errno)))?;
    // The magic numbers are 32-bit; `f_type`'s width depends on the platform.
    let kind = stat.filesystem_type().0 as u32;
    Ok(kind == TMPFS_MAGIC || kind == RAMFS_MAGIC)
}

/// `path` if it exists (as anything, even a dangling link), else its nearest existing
/// ancestor (`.` for a relative path none of whose parents exist).
fn nearest_existing(path: &Path) -> PathBuf {
    let mut probe = path;
    loop {
        if probe.symlink_metadata().is_ok() {
            return probe.to_path_buf();
        }
        match probe.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => probe = parent,
            _ => return PathBuf::from("."),
        }
    }
}

/// The directory a file lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// What a target path names, for [`check_writable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// A directory that files are written into (`--out-dir`).
    Directory,
    /// A file that is replaced (`--out-file`).
    File,
}

impl TargetKind {
    /// The option that names such a target.
    fn option(self) -> &'static str {
        match self {
            TargetKind::Directory => "--out-dir",
            TargetKind::File => "--out-file",
        }
    }
}

/// Checks, without writing anything, that the target `path` can be created and written.
///
/// A missing directory is fine: writing creates it. What cannot work is refused (exit 73, one
/// line naming the path and the fix): a file target that is a directory, an existing ancestor
/// that is not a directory, a kernel filesystem such as `/proc` or `/sys`, a read-only
/// filesystem, or a directory this process may not write into (`access(W_OK|X_OK)`).
pub fn check_writable(path: &Path, kind: TargetKind) -> Result<(), SinkError> {
    let refuse = |problem: String, fix: &'static str| SinkError::Unwritable {
        option: kind.option(),
        path: path.to_path_buf(),
        problem,
        fix,
    };
    let dir = match kind {
        TargetKind::Directory => path,
        TargetKind::File => {
            if path.symlink_metadata().is_ok_and(|meta| meta.is_dir()) {
                return Err(refuse(
                    "it is a directory".to_owned(),
                    "give --out-file a file path",
                ));
            }
            parent_dir(path)
        }
    };
    // Where writing would start: the directory itself, or the ancestor its creation starts in.
    let existing = nearest_existing(dir);
    let place = if existing == path {
        "it".to_owned()
    } else {
        existing.display().to_string()
    };
    let meta = existing
        .metadata()
        .map_err(SinkError::io(&existing, "inspect"))?;
    if !meta.is_dir() {
        return Err(refuse(
            format!("{place} is not a directory"),
            "move that file away or choose another path",
        ));
    }
    let inspect = |errno| SinkError::io(&existing, "inspect")(io::Error::from(errno));
    let kind_of_fs = statfs::statfs(existing.as_path())
        .map_err(inspect)?
        .filesystem_type();
    if let Some((_, name)) = KERNEL_FILESYSTEMS
        .iter()
        .find(|(magic, _)| *magic == kind_of_fs)
    {
        return Err(refuse(
            format!("{place} is on the kernel's {name} filesystem"),
            "choose a path on a writable volume (an emptyDir)",
        ));
    }
    let flags = nix::sys::statvfs::statvfs(existing.as_path())
        .map_err(inspect)?
        .flags();
    if flags.contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
        return Err(refuse(
            format!("{place} is on a read-only filesystem"),
            "mount a writable volume (an emptyDir) there",
        ));
    }
    // Creating an entry in a directory takes both write and search permission.
    let wanted = nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK;
    if let Err(errno) = nix::unistd::access(existing.as_path(), wanted) {
        return Err(refuse(
            format!(
                "{place} cannot be written by uid {} ({})",
                nix::unistd::getuid(),
                errno_text(errno)
            ),
            "make it writable for that uid, or mount a writable volume (an emptyDir) there",
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use std::process::Command;

    use fake_infisical::prerequisite;

    use super::*;

    /// The names in `dir`, sorted.
    pub(in crate::sink) fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_replacement_is_invisible_until_committed_and_removed_when_dropped() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("app.env");
        fs::write(&target, "old").unwrap();

        let staged = Replacement::stage(&target, Content::Bytes(b"new"), 0o640, None).unwrap();
        assert_eq!(staged.bytes(), 3);
        assert_eq!(fs::read(&target).unwrap(), b"old");
        let temp = names(root.path())
            .into_iter()
            .find(|name| name != "app.env")
            .unwrap();
        assert!(temp.starts_with(".app.env.tmp-"), "{temp}");
        let temp_mode = root.path().join(&temp).metadata().unwrap().permissions();
        assert_eq!(temp_mode.mode() & 0o7777, 0o640);
        drop(staged);
        assert_eq!(names(root.path()), ["app.env"]);

        let staged = Replacement::stage(&target, Content::Bytes(b"new"), 0o640, None).unwrap();
        staged.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(names(root.path()), ["app.env"]);
    }

    #[test]
    fn a_new_file_never_replaces_an_existing_one() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("A");
        fs::write(&path, "theirs").unwrap();
        let error = write_new(&path, Content::Bytes(b"ours"), 0o440, None).unwrap_err();
        assert!(
            matches!(
                error,
                SinkError::Io {
                    action: "create",
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"theirs");
    }

    #[test]
    fn only_this_targets_temporary_files_are_stale() {
        let root = tempfile::tempdir().unwrap();
        for name in [
            ".app.env.tmp-12-345",
            ".app.env.tmp-12-",
            ".app.env.tmp-mine",
            ".other.tmp-12-345",
            "app.env",
        ] {
            fs::write(root.path().join(name), "").unwrap();
        }
        remove_stale_temps(&root.path().join("app.env"));
        assert_eq!(
            names(root.path()),
            [
                ".app.env.tmp-12-",
                ".app.env.tmp-mine",
                ".other.tmp-12-345",
                "app.env"
            ]
        );
    }

    fn refusal(path: &Path, kind: TargetKind) -> String {
        let error = check_writable(path, kind).unwrap_err();
        assert!(
            matches!(error, SinkError::Unwritable { .. }),
            "{path:?}: {error:?}"
        );
        assert_eq!(error.exit_code(), 73);
        let message = error.to_string();
        assert!(!message.contains('\n'), "{message}");
        message
    }

    #[test]
    fn missing_directories_are_fine_and_nothing_is_created() {
        let root = tempfile::tempdir().unwrap();
        check_writable(&root.path().join("a/b/c"), TargetKind::Directory).unwrap();
        check_writable(&root.path().join("a/b/app.env"), TargetKind::File).unwrap();
        check_writable(root.path(), TargetKind::Directory).unwrap();
        fs::write(root.path().join("app.env"), "").unwrap();
        check_writable(&root.path().join("app.env"), TargetKind::File).unwrap();
        assert_eq!(names(root.path()), ["app.env"], "the check wrote something");
    }

    #[test]
    fn a_file_where_a_directory_must_be_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("file");
        fs::write(&file, "").unwrap();
        let message = refusal(&file.join("x/out"), TargetKind::Directory);
        assert!(
            message.contains(&format!("{} is not a directory", file.display())),
            "{message}"
        );
        assert!(message.starts_with("--out-dir "), "{message}");
        let message = refusal(&file, TargetKind::Directory);
        assert!(message.contains(": it is not a directory;"), "{message}");
        let message = refusal(&file.join("app.env"), TargetKind::File);
        assert!(message.starts_with("--out-file "), "{message}");
        let message = refusal(root.path(), TargetKind::File);
        assert!(message.contains("give --out-file a file path"), "{message}");
    }

    #[test]
    fn kernel_filesystems_are_refused() {
        let message = refusal(
            Path::new("/proc/materializer/secrets"),
            TargetKind::Directory,
        );
        assert!(
            message.contains("/proc is on the kernel's proc filesystem"),
            "{message}"
        );
        if Path::new("/sys/kernel").is_dir() {
            let message = refusal(Path::new("/sys/kernel/app.env"), TargetKind::File);
            assert!(message.contains("sysfs"), "{message}");
        }
    }

    #[test]
    fn a_directory_without_write_permission_is_refused_unless_root() {
        let root = tempfile::tempdir().unwrap();
        let locked = root.path().join("locked");
        fs::create_dir(&locked).unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).unwrap();
        let target = locked.join("secrets");
        if nix::unistd::getuid().is_root() {
            // Root writes through permission bits: the write would succeed, so must the check.
            check_writable(&target, TargetKind::Directory).unwrap();
            return;
        }
        let message = refusal(&target, TargetKind::Directory);
        assert!(
            message.contains(&format!("{} cannot be written by uid", locked.display())),
            "{message}"
        );
    }

    /// A tmpfs mounted for a test, unmounted on drop (also when the test fails).
    pub(in crate::sink) struct Mounted(PathBuf);

    impl Mounted {
        /// Creates the directory `dir` and mounts a 1 MiB tmpfs there with `options` (e.g.
        /// `ro`); the error is the prerequisite that is missing.
        pub(in crate::sink) fn tmpfs(dir: &Path, options: &str) -> Result<Self, &'static str> {
            if !prerequisite::is_root() {
                return Err("mounting a tmpfs needs root");
            }
            fs::create_dir(dir).unwrap();
            let status = Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("{options},size=1m"), "tmpfs"])
                .arg(dir)
                .status();
            if !status.is_ok_and(|status| status.success()) {
                return Err("`mount -t tmpfs` is not permitted here");
            }
            Ok(Self(dir.to_path_buf()))
        }
    }

    impl Drop for Mounted {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }

    #[test]
    fn a_read_only_mount_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let mount = root.path().join("read-only");
        let _mounted = match Mounted::tmpfs(&mount, "ro") {
            Ok(mounted) => mounted,
            Err(missing) => return prerequisite::missing(missing),
        };
        let message = refusal(&mount.join("a/secrets"), TargetKind::Directory);
        assert!(
            message.contains(&format!("{} is on a read-only filesystem", mount.display())),
            "{message}"
        );
        let message = refusal(&mount.join("app.env"), TargetKind::File);
        assert!(message.contains("mount a writable volume"), "{message}");
    }
}
