//! Every configured output written together: all of them or none.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::dir::{DirFiles, StagedDir};
use super::error::SinkError;
use super::file::StagedFile;
use super::format::{self, Format};
use super::fs::{check_writable, is_memory_backed, TargetKind};
use super::options::{Owner, WriteOptions, WriteOutcome};
use super::template::{Template, UsedKeys};
use super::{dir, file};
use crate::secrets::{usable_keys, InvalidKeys, KeyRule, SecretSet};
use base64::Engine as _;
use zeroize::Zeroizing;

/// How a value is decoded before it is written to its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decode {
    /// Standard base64 (with padding), e.g. a keystore stored as text in Infisical.
    Base64,
}

/// What an output writes.
#[derive(Clone, Debug)]
pub enum Output {
    /// One file per secret, swapped atomically like a Kubernetes Secret volume (`--out-dir`).
    Dir {
        /// The directory.
        path: PathBuf,
        /// Keys whose value is decoded before it is written.
        decode: BTreeMap<String, Decode>,
    },
    /// Every secret in one file of one format (`--out-file`).
    File {
        /// The file.
        path: PathBuf,
        /// Its format.
        format: Format,
    },
    /// A file rendered from a template (`--template`, `templates:`).
    Template {
        /// The compiled template.
        template: Arc<Template>,
        /// The template file, when it came from one (a sidecar watches it).
        source: Option<PathBuf>,
        /// The rendered file.
        destination: PathBuf,
    },
}

impl Output {
    /// How messages name the output: `--out-dir /run/secrets`.
    pub fn describe(&self) -> String {
        match self {
            Output::Dir { path, .. } => format!("--out-dir {}", path.display()),
            Output::File { path, .. } => format!("--out-file {}", path.display()),
            Output::Template {
                template,
                destination,
                ..
            } => format!("template {} -> {}", template.name(), destination.display()),
        }
    }
}

/// One output with its file mode and owner.
#[derive(Clone, Debug)]
pub struct Target {
    /// What is written where.
    pub output: Output,
    /// Permission bits of the files written.
    pub mode: u32,
    /// Owner of what is written.
    pub owner: Option<Owner>,
}

/// Every configured output.
#[derive(Clone, Debug)]
pub struct OutputConfig {
    /// The outputs, written together: all or none.
    pub targets: Vec<Target>,
    /// `--invalid-keys`.
    pub invalid_keys: InvalidKeys,
    /// Refuse targets that are not on tmpfs/ramfs (`--require-tmpfs`).
    pub require_tmpfs: bool,
}

impl OutputConfig {
    /// The template files the outputs are rendered from.
    pub fn template_sources(&self) -> impl Iterator<Item = &Path> {
        self.targets
            .iter()
            .filter_map(|target| match &target.output {
                Output::Template {
                    source: Some(source),
                    ..
                } => Some(source.as_path()),
                _ => None,
            })
    }

    /// Checks, before anything is fetched, that every target (a directory, a file) can be
    /// created and written; see [`check_writable`].
    pub fn check_targets(&self) -> Result<(), SinkError> {
        for target in &self.targets {
            match &target.output {
                Output::Dir { path, .. } => check_writable(path, TargetKind::Directory)?,
                Output::File { path, .. } => check_writable(path, TargetKind::File)?,
                Output::Template { destination, .. } => {
                    check_writable(destination, TargetKind::File)?;
                }
            }
        }
        Ok(())
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
    /// For each target, what its last written render used: a template whose secrets did not
    /// change is not rendered again.
    rendered: Vec<Option<Fingerprint>>,
}

/// The secrets a written render used, and a fingerprint of their values then.
#[derive(Debug)]
struct Fingerprint {
    used: UsedKeys,
    hash: [u8; 32],
}

/// A target's content, prepared before anything is written.
enum Prepared<'a> {
    Dir(&'a Path, DirFiles<'a>),
    File(&'a Path, Zeroizing<Vec<u8>>),
    /// A template whose secrets did not change since its last render.
    Unchanged,
}

impl Outputs {
    /// The outputs of `config`; nothing is touched until [`Outputs::write`].
    pub fn new(config: OutputConfig) -> Self {
        let rendered = config.targets.iter().map(|_| None).collect();
        Self {
            config,
            warned_keys: HashSet::new(),
            warned_tmpfs: HashSet::new(),
            rendered,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &OutputConfig {
        &self.config
    }

    /// Whether no output is configured.
    pub fn is_empty(&self) -> bool {
        self.config.targets.is_empty()
    }

    /// Writes `secrets` to every output, or changes none of them.
    ///
    /// Checks keys against every output's rules (`Fail`: an error naming the key, the reason
    /// and the output; `Skip`: the key is left out of that output, with one warning per key),
    /// decodes and encodes every content and checks for tmpfs (one warning per target, or an
    /// error with `--require-tmpfs`) before anything is written. Then stages every output and
    /// commits them; outputs whose content is already on disk are not written at all.
    pub fn write(&mut self, secrets: &SecretSet) -> Result<WriteOutcome, SinkError> {
        let policy = self.config.invalid_keys;
        // The keys each target may use; directory contents borrow from these.
        let mut usable = Vec::with_capacity(self.config.targets.len());
        for target in &self.config.targets {
            let (rule, role) = match &target.output {
                Output::Dir { .. } => (KeyRule::FileName, dir::DIR_OUTPUT.to_owned()),
                Output::File { format, .. } if format.needs_env_names() => (
                    KeyRule::EnvName,
                    format!("an environment variable name in the {format} --out-file"),
                ),
                Output::File { .. } | Output::Template { .. } => {
                    usable.push(None);
                    continue;
                }
            };
            let keys = usable_keys(secrets, rule, &role, policy, Some(&mut self.warned_keys))?;
            usable.push(Some(keys));
        }
        let mut prepared = Vec::with_capacity(self.config.targets.len());
        let mut renders = Vec::with_capacity(self.config.targets.len());
        let targets = self.config.targets.iter().zip(&usable).zip(&self.rendered);
        for ((target, keys), last) in targets {
            let keys = keys.as_ref().unwrap_or(secrets);
            let mut render = None;
            prepared.push(match &target.output {
                Output::Dir { path, decode } => {
                    Prepared::Dir(path, dir_files(&target.output, keys, decode)?)
                }
                Output::File { path, format } => {
                    Prepared::File(path, format::encode(*format, keys)?)
                }
                Output::Template { .. }
                    if last
                        .as_ref()
                        .is_some_and(|last| last.used.fingerprint(secrets) == last.hash) =>
                {
                    Prepared::Unchanged
                }
                Output::Template {
                    template,
                    destination,
                    ..
                } => {
                    let rendered = template.render(secrets)?;
                    render = Some(Fingerprint {
                        hash: rendered.used.fingerprint(secrets),
                        used: rendered.used,
                    });
                    Prepared::File(destination, rendered.content)
                }
            });
            renders.push(render);
        }
        for content in &prepared {
            if let Prepared::Dir(path, _) | Prepared::File(path, _) = content {
                check_tmpfs(path, self.config.require_tmpfs, &mut self.warned_tmpfs)?;
            }
        }

        // A staged output that is dropped uncommitted removes what it staged, so a failure
        // below leaves every target as it was.
        let mut staged = Vec::with_capacity(prepared.len());
        for (target, content) in self.config.targets.iter().zip(&prepared) {
            let options = WriteOptions {
                file_mode: target.mode,
                owner: target.owner,
                require_tmpfs: self.config.require_tmpfs,
            };
            staged.push(match content {
                Prepared::Dir(path, files) => Staged::Dir(dir::stage(path, files, &options)?),
                Prepared::File(path, bytes) => Staged::File(file::stage(path, bytes, &options)?),
                Prepared::Unchanged => continue,
            });
        }
        let mut outcome = WriteOutcome::Unchanged;
        for staged in staged {
            outcome = outcome.and(match staged {
                Staged::Dir(dir) => dir.commit()?,
                Staged::File(file) => file.commit()?,
            });
        }
        // Only what was written counts as rendered.
        for (last, render) in self.rendered.iter_mut().zip(renders) {
            if render.is_some() {
                *last = render;
            }
        }
        Ok(outcome)
    }
}

/// Warns once per target not on tmpfs or ramfs, or refuses it with `--require-tmpfs`.
fn check_tmpfs(
    target: &Path,
    require_tmpfs: bool,
    warned: &mut HashSet<PathBuf>,
) -> Result<(), SinkError> {
    if is_memory_backed(target)? {
        return Ok(());
    }
    if require_tmpfs {
        return Err(SinkError::NotTmpfs {
            path: target.to_path_buf(),
        });
    }
    if warned.insert(target.to_path_buf()) {
        tracing::warn!(
            path = %target.display(),
            "{} is not on tmpfs or ramfs: secrets may reach a disk; mount an emptyDir with \
             medium: Memory there, or pass --require-tmpfs to refuse",
            target.display()
        );
    }
    Ok(())
}

/// A staged target, committed once every target is staged.
enum Staged {
    Dir(StagedDir),
    File(StagedFile),
}

/// The files of a directory output: values as they are, or decoded where `decode` says so.
fn dir_files<'a>(
    output: &Output,
    secrets: &'a SecretSet,
    decode: &'a BTreeMap<String, Decode>,
) -> Result<DirFiles<'a>, SinkError> {
    let problem = |key: &str, problem| SinkError::Decode {
        output: output.describe(),
        key: key.to_owned(),
        problem,
    };
    let mut files = DirFiles::default();
    for (key, value) in secrets.iter() {
        match decode.get(key) {
            None => files.insert_value(key, value),
            Some(Decode::Base64) => {
                let mut bytes = Zeroizing::new(Vec::with_capacity(value.expose().len()));
                base64::engine::general_purpose::STANDARD
                    .decode_vec(value.expose().trim(), &mut bytes)
                    .map_err(|_| problem(key, "the value is not valid base64 (decode: base64)"))?;
                files.insert_decoded(key, bytes);
            }
        }
    }
    if let Some(key) = decode.keys().find(|key| !secrets.contains(key)) {
        return Err(problem(
            key,
            "no such secret; check the name (decode applies to final keys)",
        ));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use fake_infisical::prerequisite;
    use std::collections::BTreeSet;
    use std::fs;

    use super::*;
    use crate::error::exit;
    use crate::secrets::SecretValue;
    use crate::sink::fs::tests::Mounted;

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
        let dir = dir.map(|path| Output::Dir {
            path,
            decode: BTreeMap::new(),
        });
        let file = file.map(|(path, format)| Output::File { path, format });
        OutputConfig {
            targets: dir
                .into_iter()
                .chain(file)
                .map(|output| Target {
                    output,
                    mode: WriteOptions::default().file_mode,
                    owner: None,
                })
                .collect(),
            invalid_keys,
            require_tmpfs: false,
        }
    }

    fn listing(dir: &Path) -> BTreeSet<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    }

    #[test]
    fn every_configured_target_is_checked_before_anything_is_written() {
        let root = tempfile::tempdir().unwrap();
        let fine = config(
            Some(root.path().join("new/dir")),
            Some((root.path().join("new/app.env"), Format::Dotenv)),
            InvalidKeys::Fail,
        );
        fine.check_targets().unwrap();
        assert!(listing(root.path()).is_empty(), "the check wrote something");

        fs::write(root.path().join("file"), "").unwrap();
        let under_a_file = root.path().join("file/app.env");
        let error = config(
            Some(root.path().join("dir")),
            Some((under_a_file.clone(), Format::Dotenv)),
            InvalidKeys::Fail,
        )
        .check_targets()
        .unwrap_err();
        assert!(
            matches!(&error, SinkError::Unwritable { option: "--out-file", path, .. } if *path == under_a_file),
            "{error}"
        );
        assert_eq!(error.exit_code(), exit::CANT_WRITE);
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
            return prerequisite::missing(
                "neither the temp dir nor the source tree is on a disk-backed filesystem",
            );
        };
        let dir = root.path().join("dir");
        let mut outputs = Outputs::new(OutputConfig {
            require_tmpfs: true,
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

    #[test]
    fn require_tmpfs_accepts_a_tmpfs_mount() {
        let root = tempfile::tempdir().unwrap();
        let mount = root.path().join("memory");
        let _mounted = match Mounted::tmpfs(&mount, "rw") {
            Ok(mounted) => mounted,
            Err(missing) => return prerequisite::missing(missing),
        };
        let mut outputs = Outputs::new(OutputConfig {
            require_tmpfs: true,
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

    #[test]
    fn each_target_has_its_own_mode_and_decoded_keys_are_exact_bytes() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let (dir, file) = (root.path().join("dir"), root.path().join("app.env"));
        let binary: Vec<u8> = vec![0, 159, 146, 150, 255, b'\n'];
        let encoded = base64::engine::general_purpose::STANDARD.encode(&binary);
        let mut config = config(
            Some(dir.clone()),
            Some((file.clone(), Format::Dotenv)),
            InvalidKeys::Fail,
        );
        let Output::Dir { decode, .. } = &mut config.targets[0].output else {
            unreachable!()
        };
        decode.insert("KEYSTORE".into(), Decode::Base64);
        config.targets[0].mode = 0o400;
        config.targets[1].mode = 0o444;
        let mut outputs = Outputs::new(config);
        outputs
            .write(&set(&[("KEYSTORE", &encoded), ("A", "1")]))
            .unwrap();
        assert_eq!(fs::read(dir.join("KEYSTORE")).unwrap(), binary);
        assert_eq!(fs::read_to_string(dir.join("A")).unwrap(), "1");
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("KEYSTORE")), 0o400);
        assert_eq!(mode(&file), 0o444);
        // The file output is not decoded: it carries the value as stored.
        assert!(fs::read_to_string(&file).unwrap().contains(&encoded));
    }

    #[test]
    fn a_value_that_is_not_base64_or_a_missing_decoded_key_changes_nothing() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("dir");
        let mut config = config(Some(dir.clone()), None, InvalidKeys::Fail);
        let Output::Dir { decode, .. } = &mut config.targets[0].output else {
            unreachable!()
        };
        decode.insert("KEYSTORE".into(), Decode::Base64);
        let mut outputs = Outputs::new(config);
        let error = outputs
            .write(&set(&[("KEYSTORE", "not base64 !! s3cr3t")]))
            .unwrap_err();
        assert_eq!(error.exit_code(), exit::DATA);
        let message = error.to_string();
        assert!(
            message.contains("keys.KEYSTORE: the value is not valid base64"),
            "{message}"
        );
        assert!(!message.contains("s3cr3t"), "{message}");
        let error = outputs.write(&set(&[("OTHER", "1")])).unwrap_err();
        assert!(
            error.to_string().contains("keys.KEYSTORE: no such secret"),
            "{error}"
        );
        assert!(!dir.exists(), "nothing was written");
    }
}
