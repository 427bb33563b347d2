//! Every configured output written together: all of them or none.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::error::SinkError;
use super::format::{self, Format};
use super::fs::{check_writable, is_memory_backed, TargetKind};
use super::options::{WriteOptions, WriteOutcome};
use super::{dir, file};
use crate::secrets::{usable_keys, InvalidKeys, KeyRule, SecretSet};

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

impl OutputConfig {
    /// Checks, before anything is fetched, that every configured target (the `--out-dir`
    /// directory, the `--out-file` file) can be created and written; see [`check_writable`].
    pub fn check_targets(&self) -> Result<(), SinkError> {
        if let Some(dir) = &self.dir {
            check_writable(dir, TargetKind::Directory)?;
        }
        if let Some((file, _)) = &self.file {
            check_writable(file, TargetKind::File)?;
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
                    dir::DIR_OUTPUT,
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

    #[test]
    fn require_tmpfs_accepts_a_tmpfs_mount() {
        let root = tempfile::tempdir().unwrap();
        let mount = root.path().join("memory");
        let _mounted = match Mounted::tmpfs(&mount, "rw") {
            Ok(mounted) => mounted,
            Err(missing) => return prerequisite::missing(missing),
        };
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
