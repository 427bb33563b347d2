//! Where the secrets go: an atomically swapped directory (`--out-dir`), one file in a chosen
//! format (`--out-file`), or, for exec mode, the checked environment.
//!
//! [`Outputs::write`] writes every configured output or changes none: keys are checked and the
//! file content is encoded first, then every output is staged (written under hidden names,
//! synced, with its mode and owner set) and only then made visible by renames. A staging
//! failure removes what was staged and leaves the existing outputs as they were.

pub mod dir;
pub mod file;
pub mod format;

pub use format::Format;

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{exit, Fatal};
use crate::secrets::{env_name_problem, file_name_problem, SecretSet};

/// tmpfs's `statfs` magic number.
const TMPFS_MAGIC: u32 = 0x0102_1994;
/// ramfs's `statfs` magic number.
const RAMFS_MAGIC: u32 = 0x8584_58f6;

/// How `--out-dir` names the key role in messages.
const DIR_OUTPUT: &str = "a file name in --out-dir";

/// What to do with a key an output cannot use (`--invalid-keys`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InvalidKeys {
    /// Refuse the whole write (exit 65), naming the key.
    Fail,
    /// Leave the key out of that output and log a warning once.
    Skip,
}

impl FromStr for InvalidKeys {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "fail" => Ok(InvalidKeys::Fail),
            "skip" => Ok(InvalidKeys::Skip),
            _ => Err(ParseError {
                option: "--invalid-keys",
                value: text.to_owned(),
                expected: "fail or skip",
            }),
        }
    }
}

/// The owner given with `--owner UID[:GID]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The user id.
    pub uid: u32,
    /// The group id; `None` keeps the group.
    pub gid: Option<u32>,
}

impl Owner {
    /// Whether a file with this uid and gid already has this owner.
    fn matches(&self, uid: u32, gid: u32) -> bool {
        self.uid == uid && self.gid.is_none_or(|wanted| wanted == gid)
    }
}

impl FromStr for Owner {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let number = |part: &str| -> Option<u32> {
            // `u32::from_str` takes a leading '+', which is not a uid.
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let parsed = match text.split_once(':') {
            None => number(text).map(|uid| Owner { uid, gid: None }),
            Some((uid, gid)) => number(uid).zip(number(gid)).map(|(uid, gid)| Owner {
                uid,
                gid: Some(gid),
            }),
        };
        parsed.ok_or_else(|| ParseError {
            option: "--owner",
            value: text.to_owned(),
            expected: "UID or UID:GID (numbers)",
        })
    }
}

/// A command-line value of this module's types that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {option} {value:?}: expected {expected}")]
pub struct ParseError {
    /// The option, e.g. `--format`.
    pub option: &'static str,
    /// What was given.
    pub value: String,
    /// What is accepted.
    pub expected: &'static str,
}

/// How files are written.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Permission bits of the files written (`--file-mode`, default 0440).
    pub file_mode: u32,
    /// Owner of what is written (`--owner`).
    pub owner: Option<Owner>,
    /// Refuse targets that are not on tmpfs/ramfs (`--require-tmpfs`).
    pub require_tmpfs: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            file_mode: 0o440,
            owner: None,
            require_tmpfs: false,
        }
    }
}

impl WriteOptions {
    /// The mode of the directories holding the files: the file mode with `x` added wherever
    /// `r` is set (0440 → 0550), so whoever may read the files may reach them.
    pub fn dir_mode(&self) -> u32 {
        let mode = self.file_mode & 0o7777;
        mode | ((mode & 0o444) >> 2)
    }

    /// The mode of directories this tool creates and keeps writing into (`--out-dir` itself,
    /// missing parents): [`Self::dir_mode`] plus full access for the owner, so later updates
    /// can still create and remove entries.
    pub fn parent_dir_mode(&self) -> u32 {
        self.dir_mode() | 0o700
    }
}

/// The outputs configured on the command line.
#[derive(Clone, Debug)]
pub struct OutputConfig {
    /// `--out-dir`: one file per secret.
    pub dir: Option<PathBuf>,
    /// `--out-file` and `--format`: every secret in one file.
    pub file: Option<(PathBuf, Format)>,
    /// Mode, owner and tmpfs policy.
    pub options: WriteOptions,
    /// `--invalid-keys`.
    pub invalid_keys: InvalidKeys,
}

/// What a write did, so the sidecar knows whom to tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Every output already had this content; nothing was written.
    Unchanged,
    /// The outputs were empty or absent before; nobody can have read an older version.
    Created,
    /// At least one output replaced different content.
    Updated,
}

impl WriteOutcome {
    /// The outcome of two outputs written together: an update anywhere is an update.
    pub fn and(self, other: WriteOutcome) -> WriteOutcome {
        use WriteOutcome::{Created, Unchanged, Updated};
        match (self, other) {
            (Updated, _) | (_, Updated) => Updated,
            (Created, _) | (_, Created) => Created,
            (Unchanged, Unchanged) => Unchanged,
        }
    }
}

/// Why a write failed. Secret values never appear here.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A key cannot be used by an output and `--invalid-keys` is `fail` (exit 65).
    #[error(
        "secret key {key:?} cannot be {output}: {reason}; rename the secret in Infisical, map it \
         with --key REMOTE=LOCAL, or pass --invalid-keys skip"
    )]
    InvalidKey {
        /// The key.
        key: String,
        /// The role the key would play, e.g. "a file name in --out-dir".
        output: String,
        /// Why it cannot.
        reason: &'static str,
    },
    /// A value cannot be written in the chosen format (exit 65).
    #[error("secret {key:?} cannot be written in the {format} format: its value {reason}")]
    UnrepresentableValue {
        /// The key whose value it is.
        key: String,
        /// The format.
        format: Format,
        /// What the value contains and which format to use instead.
        reason: &'static str,
    },
    /// `--require-tmpfs` and the target is on a disk-backed filesystem (exit 73).
    #[error(
        "{} is not on tmpfs or ramfs and --require-tmpfs is set; mount a memory-backed volume \
         there (an emptyDir with medium: Memory) or drop --require-tmpfs",
        path.display()
    )]
    NotTmpfs {
        /// The target directory or file.
        path: PathBuf,
    },
    /// A filesystem operation failed (exit 73).
    #[error("{}", io_message(path, action, source))]
    Io {
        /// The path it failed on.
        path: PathBuf,
        /// What was being done: "create", "write", "rename", "chown", ...
        action: &'static str,
        /// The system's error.
        #[source]
        source: io::Error,
    },
}

impl SinkError {
    /// The documented exit code: 65 for keys and values, 73 for writing.
    pub fn exit_code(&self) -> u8 {
        match self {
            SinkError::InvalidKey { .. } | SinkError::UnrepresentableValue { .. } => exit::DATA,
            SinkError::NotTmpfs { .. } | SinkError::Io { .. } => exit::CANT_WRITE,
        }
    }

    /// An [`SinkError::Io`] builder for `map_err`.
    pub(crate) fn io(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> SinkError {
        let path = path.to_path_buf();
        move |source| SinkError::Io {
            path,
            action,
            source,
        }
    }
}

impl From<SinkError> for Fatal {
    fn from(error: SinkError) -> Self {
        Fatal::new(error.exit_code(), error.to_string())
    }
}

/// One line: what failed, the system's reason in words, and what to do about it.
fn io_message(path: &Path, action: &str, source: &io::Error) -> String {
    use nix::errno::Errno;
    let reason = match source.raw_os_error() {
        Some(code) => lowercase_first(Errno::from_raw(code).desc()),
        None => source.to_string(),
    };
    let uid = nix::unistd::geteuid();
    let advice = match source.raw_os_error().map(Errno::from_raw) {
        Some(Errno::EPERM | Errno::EACCES) if action == "chown" => {
            "changing the owner needs root or CAP_CHOWN: run this container as root or drop --owner"
                .to_owned()
        }
        Some(Errno::EROFS) => {
            "the filesystem is read-only: mount a writable volume (an emptyDir) there".to_owned()
        }
        Some(Errno::ENOSPC | Errno::EDQUOT) => {
            "the volume is full: raise the emptyDir's sizeLimit or the container's memory limit"
                .to_owned()
        }
        Some(_) => format!(
            "make sure the directory exists and is writable by uid {uid} (an emptyDir volume)"
        ),
        // Errors made here already say what is wrong and what to do.
        None => String::new(),
    };
    if advice.is_empty() {
        format!("cannot {action} {}: {reason}", path.display())
    } else {
        format!("cannot {action} {}: {reason}; {advice}", path.display())
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Which names a key must be usable as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyRule {
    FileName,
    EnvName,
}

impl KeyRule {
    fn problem(self, key: &str) -> Option<&'static str> {
        match self {
            KeyRule::FileName => file_name_problem(key),
            KeyRule::EnvName => env_name_problem(key),
        }
    }
}

/// The secrets `rule` accepts. `Fail`: the first refused key is an error. `Skip`: refused keys
/// are left out, with a warning the first time `warned` (when given) sees `(output, key)`.
fn usable_keys(
    secrets: &SecretSet,
    rule: KeyRule,
    output: &str,
    policy: InvalidKeys,
    mut warned: Option<&mut HashSet<(String, String)>>,
) -> Result<SecretSet, SinkError> {
    let mut usable = secrets.clone();
    for key in secrets.keys() {
        let Some(reason) = rule.problem(key) else {
            continue;
        };
        match policy {
            InvalidKeys::Fail => {
                return Err(SinkError::InvalidKey {
                    key: key.to_owned(),
                    output: output.to_owned(),
                    reason,
                })
            }
            InvalidKeys::Skip => {
                usable.remove(key);
                let first_time = match warned.as_deref_mut() {
                    Some(warned) => warned.insert((output.to_owned(), key.to_owned())),
                    None => true,
                };
                if first_time {
                    tracing::warn!(
                        "skipping secret key {key:?}: it cannot be {output}: {reason} \
                         (--invalid-keys skip)"
                    );
                }
            }
        }
    }
    Ok(usable)
}

/// The secrets whose keys can be environment variable names, for exec mode: a refused key
/// fails (`Fail`, exit 65) or is left out with a warning (`Skip`).
pub fn check_env_keys(secrets: &SecretSet, policy: InvalidKeys) -> Result<SecretSet, SinkError> {
    usable_keys(
        secrets,
        KeyRule::EnvName,
        "an environment variable name for the command",
        policy,
        None,
    )
}

/// Whether `path` (or, when it does not exist yet, its nearest existing ancestor) is on tmpfs
/// or ramfs.
pub fn is_memory_backed(path: &Path) -> Result<bool, SinkError> {
    let probe = nearest_existing(path);
    let stat = nix::sys::statfs::statfs(probe.as_path())
        .map_err(|errno| SinkError::io(&probe, "inspect")(io::Error::from(errno)))?;
    // The magic numbers are 32-bit; `f_type`'s width depends on the platform.
    let kind = stat.filesystem_type().0 as u32;
    Ok(kind == TMPFS_MAGIC || kind == RAMFS_MAGIC)
}

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
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Every configured output, written together.
#[derive(Debug)]
pub struct Outputs {
    config: OutputConfig,
    /// (output, key) pairs already warned about, so a sidecar logs a skipped key once.
    warned_keys: HashSet<(String, String)>,
    /// Targets already warned about for not being on tmpfs.
    warned_tmpfs: HashSet<PathBuf>,
}

impl Outputs {
    /// The outputs of `config`; nothing is touched until [`Outputs::write`].
    pub fn new(config: OutputConfig) -> Self {
        Self {
            config,
            warned_keys: HashSet::new(),
            warned_tmpfs: HashSet::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &OutputConfig {
        &self.config
    }

    /// Whether no output is configured.
    pub fn is_empty(&self) -> bool {
        self.config.dir.is_none() && self.config.file.is_none()
    }

    /// Writes `secrets` to every output, or changes none of them.
    ///
    /// Checks keys against every output's rules (`Fail`: an error naming the key, the reason
    /// and the output; `Skip`: the key is left out of that output, with one warning per key),
    /// encodes the single-file content and checks for tmpfs (one warning per target, or an
    /// error with `--require-tmpfs`) before anything is written. Then stages every output and
    /// commits them; outputs whose content is already on disk are not written at all.
    pub fn write(&mut self, secrets: &SecretSet) -> Result<WriteOutcome, SinkError> {
        let policy = self.config.invalid_keys;
        let dir = match &self.config.dir {
            Some(dir) => {
                let usable = usable_keys(
                    secrets,
                    KeyRule::FileName,
                    DIR_OUTPUT,
                    policy,
                    Some(&mut self.warned_keys),
                )?;
                Some((dir.clone(), usable))
            }
            None => None,
        };
        let file = match &self.config.file {
            Some((path, format)) => {
                let content = if format.needs_env_names() {
                    let output = format!("an environment variable name in the {format} --out-file");
                    let usable = usable_keys(
                        secrets,
                        KeyRule::EnvName,
                        &output,
                        policy,
                        Some(&mut self.warned_keys),
                    )?;
                    format::encode(*format, &usable)?
                } else {
                    format::encode(*format, secrets)?
                };
                Some((path.clone(), content))
            }
            None => None,
        };

        if let Some((path, _)) = &dir {
            self.check_tmpfs(path)?;
        }
        if let Some((path, _)) = &file {
            self.check_tmpfs(path)?;
        }

        let options = &self.config.options;
        // A staged output that is dropped uncommitted removes what it staged, so a failure
        // below leaves every target as it was.
        let staged_dir = match &dir {
            Some((path, usable)) => Some(dir::stage(path, usable, options)?),
            None => None,
        };
        let staged_file = match &file {
            Some((path, content)) => Some(file::stage(path, content, options)?),
            None => None,
        };

        let mut outcome = WriteOutcome::Unchanged;
        if let Some(staged) = staged_dir {
            outcome = outcome.and(staged.commit()?);
        }
        if let Some(staged) = staged_file {
            outcome = outcome.and(staged.commit()?);
        }
        Ok(outcome)
    }

    fn check_tmpfs(&mut self, target: &Path) -> Result<(), SinkError> {
        if is_memory_backed(target)? {
            return Ok(());
        }
        if self.config.options.require_tmpfs {
            return Err(SinkError::NotTmpfs {
                path: target.to_path_buf(),
            });
        }
        if self.warned_tmpfs.insert(target.to_path_buf()) {
            tracing::warn!(
                path = %target.display(),
                "{} is not on tmpfs or ramfs: secrets may reach a disk; mount an emptyDir with \
                 medium: Memory there, or pass --require-tmpfs to refuse",
                target.display()
            );
        }
        Ok(())
    }
}

/// Creates `path` and its missing parents with `mode` and `owner`; returns the directories it
/// created, outermost first, so a failed write can remove them again.
fn create_dirs(path: &Path, mode: u32, owner: Option<Owner>) -> Result<Vec<PathBuf>, SinkError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};

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
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => created.push(dir.clone()),
            // Someone else created it meanwhile; it is theirs, so leave its mode alone.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => {
                remove_created(&created);
                return Err(SinkError::io(&dir, "create")(error));
            }
        }
        // Set explicitly: the builder's mode is filtered by the umask.
        let result = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
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
fn remove_created(created: &[PathBuf]) {
    for dir in created.iter().rev() {
        let _ = std::fs::remove_dir(dir);
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
fn lchown(path: &Path, owner: Option<Owner>) -> Result<(), SinkError> {
    match owner {
        Some(owner) => std::os::unix::fs::lchown(path, Some(owner.uid), owner.gid)
            .map_err(SinkError::io(path, "chown")),
        None => Ok(()),
    }
}

/// Changes the owner of an open file as `--owner` asks.
fn fchown(file: &std::fs::File, path: &Path, owner: Option<Owner>) -> Result<(), SinkError> {
    match owner {
        Some(owner) => std::os::unix::fs::fchown(file, Some(owner.uid), owner.gid)
            .map_err(SinkError::io(path, "chown")),
        None => Ok(()),
    }
}

/// Makes a directory's entries (creations, renames, removals) durable.
fn sync_dir(path: &Path) -> Result<(), SinkError> {
    std::fs::File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(SinkError::io(path, "sync"))
}

/// Whether the regular file at `path` holds exactly `content` with `mode` and `owner`. Any
/// error reading it counts as "different": the caller then rewrites it.
fn file_matches(path: &Path, content: &[u8], mode: u32, owner: Option<Owner>) -> bool {
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
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    // One spare byte to notice a file that grew since the metadata was read.
    let mut on_disk = zeroize::Zeroizing::new(Vec::with_capacity(content.len() + 1));
    match file.read_to_end(&mut on_disk) {
        Ok(_) => on_disk.as_slice() == content,
        Err(_) => false,
    }
}

/// A random number for temporary names, without a dependency: std seeds each `RandomState`
/// from the OS once and then varies it per instance.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::fs;
    use std::process::Command;

    use super::*;
    use crate::secrets::SecretValue;

    fn set(pairs: &[(&str, &str)]) -> SecretSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretValue::from(*v)))
            .collect()
    }

    fn config(
        dir: Option<PathBuf>,
        file: Option<(PathBuf, Format)>,
        invalid_keys: InvalidKeys,
    ) -> OutputConfig {
        OutputConfig {
            dir,
            file,
            options: WriteOptions::default(),
            invalid_keys,
        }
    }

    fn listing(dir: &Path) -> BTreeSet<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    }

    #[test]
    fn options_parse() {
        assert_eq!("fail".parse(), Ok(InvalidKeys::Fail));
        assert_eq!("skip".parse(), Ok(InvalidKeys::Skip));
        assert!("Skip".parse::<InvalidKeys>().is_err());
        assert_eq!(
            "1000".parse(),
            Ok(Owner {
                uid: 1000,
                gid: None
            })
        );
        assert_eq!(
            "0:65532".parse(),
            Ok(Owner {
                uid: 0,
                gid: Some(65532)
            })
        );
        for bad in ["", "app", "1:", ":1", "+1", "1:2:3", "1: 2", "4294967296"] {
            let error = bad.parse::<Owner>().unwrap_err();
            assert_eq!(error.option, "--owner", "{bad:?}");
        }
    }

    #[test]
    fn directories_get_search_bits_where_files_get_read_bits() {
        for (file, dir, parent) in [
            (0o440, 0o550, 0o750),
            (0o400, 0o500, 0o700),
            (0o644, 0o755, 0o755),
            (0o600, 0o700, 0o700),
            (0o004, 0o005, 0o705),
        ] {
            let options = WriteOptions {
                file_mode: file,
                ..WriteOptions::default()
            };
            assert_eq!(
                (options.dir_mode(), options.parent_dir_mode()),
                (dir, parent),
                "{file:o}"
            );
        }
    }

    #[test]
    fn an_update_anywhere_is_an_update() {
        use WriteOutcome::*;
        assert_eq!(Unchanged.and(Unchanged), Unchanged);
        assert_eq!(Unchanged.and(Created), Created);
        assert_eq!(Created.and(Updated), Updated);
        assert_eq!(Updated.and(Unchanged), Updated);
    }

    #[test]
    fn env_keys_fail_or_are_skipped() {
        let secrets = set(&[("GOOD", "1"), ("tls.crt", "2"), ("9LIVES", "3")]);
        let error = check_env_keys(&secrets, InvalidKeys::Fail).unwrap_err();
        assert_eq!(
            error.to_string(),
            "secret key \"9LIVES\" cannot be an environment variable name for the command: an \
             environment variable name must start with a letter or '_'; rename the secret in \
             Infisical, map it with --key REMOTE=LOCAL, or pass --invalid-keys skip"
        );
        assert_eq!(error.exit_code(), exit::DATA);
        let kept = check_env_keys(&secrets, InvalidKeys::Skip).unwrap();
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["GOOD"]);
    }

    #[test]
    fn errors_are_one_line_that_says_what_to_do() {
        let error = SinkError::InvalidKey {
            key: "../evil".into(),
            output: DIR_OUTPUT.into(),
            reason: "it contains '/'",
        };
        assert_eq!(
            error.to_string(),
            "secret key \"../evil\" cannot be a file name in --out-dir: it contains '/'; rename the \
             secret in Infisical, map it with --key REMOTE=LOCAL, or pass --invalid-keys skip"
        );
        let error = SinkError::Io {
            path: "/x/y".into(),
            action: "write",
            source: io::Error::from_raw_os_error(13),
        };
        assert_eq!(
            error.to_string(),
            format!(
                "cannot write /x/y: permission denied; make sure the directory exists and is \
                 writable by uid {} (an emptyDir volume)",
                nix::unistd::geteuid()
            )
        );
        let error = SinkError::Io {
            path: "/x".into(),
            action: "chown",
            source: io::Error::from_raw_os_error(1),
        };
        assert!(error.to_string().contains("drop --owner"), "{error}");
        let error = SinkError::Io {
            path: "/x".into(),
            action: "create",
            source: io::Error::from_raw_os_error(30),
        };
        assert!(error.to_string().contains("read-only"), "{error}");
        let fatal = Fatal::from(SinkError::NotTmpfs {
            path: "/data".into(),
        });
        assert_eq!(fatal.code, exit::CANT_WRITE);
        assert!(
            fatal.message.starts_with("/data is not on tmpfs"),
            "{}",
            fatal.message
        );
        for message in [fatal.message, error.to_string()] {
            assert!(!message.contains('\n'), "{message}");
        }
    }

    #[test]
    fn no_output_writes_nothing() {
        let mut outputs = Outputs::new(config(None, None, InvalidKeys::Fail));
        assert!(outputs.is_empty());
        assert_eq!(
            outputs.write(&set(&[("A", "1")])).unwrap(),
            WriteOutcome::Unchanged
        );
    }

    #[test]
    fn every_output_is_written_and_reports_what_changed() {
        let root = tempfile::tempdir().unwrap();
        let (dir, file) = (root.path().join("dir"), root.path().join("app.json"));
        let mut outputs = Outputs::new(config(
            Some(dir.clone()),
            Some((file.clone(), Format::Json)),
            InvalidKeys::Fail,
        ));
        assert!(!outputs.is_empty());
        assert_eq!(
            outputs.write(&set(&[("A", "1")])).unwrap(),
            WriteOutcome::Created
        );
        assert_eq!(fs::read_to_string(dir.join("A")).unwrap(), "1");
        assert_eq!(fs::read_to_string(&file).unwrap(), "{\n  \"A\": \"1\"\n}\n");
        assert_eq!(
            outputs.write(&set(&[("A", "1")])).unwrap(),
            WriteOutcome::Unchanged
        );
        assert_eq!(
            outputs.write(&set(&[("A", "2")])).unwrap(),
            WriteOutcome::Updated
        );
        assert_eq!(fs::read_to_string(dir.join("A")).unwrap(), "2");
        assert_eq!(fs::read_to_string(&file).unwrap(), "{\n  \"A\": \"2\"\n}\n");
    }

    #[test]
    fn a_key_one_output_cannot_use_fails_everything_or_is_skipped_there_only() {
        let root = tempfile::tempdir().unwrap();
        let (dir, file) = (root.path().join("dir"), root.path().join("app.env"));
        let secrets = set(&[("A", "1"), ("tls.crt", "pem")]);

        let mut failing = Outputs::new(config(
            Some(dir.clone()),
            Some((file.clone(), Format::Dotenv)),
            InvalidKeys::Fail,
        ));
        let error = failing.write(&secrets).unwrap_err();
        assert!(
            error.to_string().contains(
                "\"tls.crt\" cannot be an environment variable name in the dotenv --out-file"
            ),
            "{error}"
        );
        assert_eq!(error.exit_code(), exit::DATA);
        assert!(
            listing(root.path()).is_empty(),
            "something was written: {:?}",
            listing(root.path())
        );

        let mut skipping = Outputs::new(config(
            Some(dir.clone()),
            Some((file.clone(), Format::Dotenv)),
            InvalidKeys::Skip,
        ));
        assert_eq!(skipping.write(&secrets).unwrap(), WriteOutcome::Created);
        assert_eq!(fs::read_to_string(dir.join("tls.crt")).unwrap(), "pem");
        assert_eq!(fs::read_to_string(&file).unwrap(), "A=1\n");
        assert_eq!(skipping.write(&secrets).unwrap(), WriteOutcome::Unchanged);
        assert_eq!(
            skipping.warned_keys.len(),
            1,
            "warned more than once: {:?}",
            skipping.warned_keys
        );
    }

    #[test]
    fn a_failure_to_stage_one_output_leaves_every_output_as_it_was() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("dir");
        fs::create_dir(root.path().join("not-a-dir-yet")).unwrap();
        let file = root.path().join("not-a-dir-yet/app.env");
        let mut outputs = Outputs::new(config(
            Some(dir.clone()),
            Some((file.clone(), Format::Dotenv)),
            InvalidKeys::Fail,
        ));
        outputs.write(&set(&[("A", "1")])).unwrap();
        let before = listing(&dir);

        // The file's directory becomes a plain file: the file cannot be staged.
        fs::remove_file(&file).unwrap();
        fs::remove_dir(root.path().join("not-a-dir-yet")).unwrap();
        fs::write(root.path().join("not-a-dir-yet"), "").unwrap();
        let error = outputs.write(&set(&[("A", "2"), ("B", "3")])).unwrap_err();
        assert_eq!(error.exit_code(), exit::CANT_WRITE, "{error}");
        assert_eq!(listing(&dir), before, "the directory changed");
        assert_eq!(fs::read_to_string(dir.join("A")).unwrap(), "1");

        // The dotenv content is refused before anything is staged.
        let error = outputs.write(&set(&[("A", "x\n\\")])).unwrap_err();
        assert!(
            matches!(error, SinkError::UnrepresentableValue { .. }),
            "{error}"
        );
        assert_eq!(listing(&dir), before);
    }

    /// A directory that is not on tmpfs, if this machine has one.
    fn disk_dir() -> Option<tempfile::TempDir> {
        [
            std::env::temp_dir(),
            PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        ]
        .into_iter()
        .filter(|dir| is_memory_backed(dir).is_ok_and(|memory| !memory))
        .find_map(|dir| tempfile::tempdir_in(dir).ok())
    }

    #[test]
    fn require_tmpfs_refuses_a_disk_and_otherwise_warns_once() {
        let Some(root) = disk_dir() else {
            eprintln!(
                "skipped: neither the temp dir nor the source tree is on a disk-backed filesystem"
            );
            return;
        };
        let dir = root.path().join("dir");
        let mut outputs = Outputs::new(OutputConfig {
            options: WriteOptions {
                require_tmpfs: true,
                ..WriteOptions::default()
            },
            ..config(Some(dir.clone()), None, InvalidKeys::Fail)
        });
        let error = outputs.write(&set(&[("A", "1")])).unwrap_err();
        assert!(
            matches!(&error, SinkError::NotTmpfs { path } if *path == dir),
            "{error}"
        );
        assert_eq!(error.exit_code(), exit::CANT_WRITE);
        assert!(!dir.exists());

        let mut outputs = Outputs::new(config(
            Some(dir.clone()),
            Some((root.path().join("f.env"), Format::Dotenv)),
            InvalidKeys::Fail,
        ));
        outputs.write(&set(&[("A", "1")])).unwrap();
        outputs.write(&set(&[("A", "2")])).unwrap();
        assert_eq!(outputs.warned_tmpfs.len(), 2, "one warning per target");
    }

    /// Unmounts on drop, also when the test fails.
    struct Mounted(PathBuf);

    impl Drop for Mounted {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }

    #[test]
    fn require_tmpfs_accepts_a_tmpfs_mount() {
        let root = tempfile::tempdir().unwrap();
        let mount = root.path().join("memory");
        fs::create_dir(&mount).unwrap();
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mounting a tmpfs needs root");
            return;
        }
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(&mount)
            .status();
        if !status.is_ok_and(|status| status.success()) {
            eprintln!("skipped: `mount -t tmpfs` is not permitted here");
            return;
        }
        let _mounted = Mounted(mount.clone());
        let mut outputs = Outputs::new(OutputConfig {
            options: WriteOptions {
                require_tmpfs: true,
                ..WriteOptions::default()
            },
            ..config(
                Some(mount.join("dir")),
                Some((mount.join("f/app.env"), Format::Dotenv)),
                InvalidKeys::Fail,
            )
        });
        assert_eq!(
            outputs.write(&set(&[("A", "1")])).unwrap(),
            WriteOutcome::Created
        );
        assert_eq!(fs::read_to_string(mount.join("dir/A")).unwrap(), "1");
        assert_eq!(
            fs::read_to_string(mount.join("f/app.env")).unwrap(),
            "A=1\n"
        );
    }
}
