//! `exec`: fetch the secrets, then become COMMAND with them in its environment, or, with
//! `--watch`, run COMMAND as a child and restart it when they change ([`crate::supervise`]).
//!
//! Without `--watch` the process is replaced with `execve`, so the app keeps this PID and gets
//! signals directly. The tokio runtime must be gone by then, so [`run`] only prepares the call
//! ([`Prepared`]) and `lib.rs` makes it after the runtime is dropped.

use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::unistd::AccessFlags;
use zeroize::Zeroize;

use crate::api::InfisicalClient;
use crate::cli::{ExecArgs, CONSUMED_ENV_VARS};
use crate::config::{self, ConfigError, Environment, SourceConfig};
use crate::error::{exit, Fatal};
use crate::on_change::parse_signal;
use crate::refresh::Refresher;
use crate::secrets::{check_env_keys, InvalidKeys, SecretSet};
use crate::source::Source;
use crate::supervise::{self, Signals, Supervision};

/// Where COMMAND is looked up when `PATH` is not set (what `execvp` and shells fall back to).
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// What `exec` leaves for the caller to do once the runtime is gone.
pub enum Outcome {
    /// Replace this process with the prepared command.
    Replace(Prepared),
    /// `--watch` ended: exit with the child's status (or 128+N if it died of signal N).
    Exited(u8),
}

/// Runs the async part of `exec`: validates, fetches, and either prepares the `execve` or
/// supervises the command (`--watch`) until it exits.
pub async fn run(args: ExecArgs, env: &dyn Environment) -> Result<Outcome, Fatal> {
    // With --watch every catchable signal is forwarded, so handlers come first: a TERM during
    // startup must not kill the wrapper with the default action.
    let signals = if args.watch {
        Some(Signals::install().map_err(|e| {
            Fatal::new(
                exit::UNAVAILABLE,
                format!("cannot install signal handlers: {e}"),
            )
        })?)
    } else {
        None
    };
    let source_config = SourceConfig::from_args(&args.source, env)?;
    let recipe = EnvRecipe {
        inherited: std::env::vars_os().collect(),
        policy: config::invalid_keys(&args.keys)?,
        preserve_env: args.preserve_env,
        keep: args.keep_env.clone(),
    };
    for name in &args.keep_env {
        if !CONSUMED_ENV_VARS.contains(&name.as_str()) {
            tracing::warn!(
                "--keep-env {name}: this tool does not read {name}, so it is passed on anyway"
            );
        }
    }
    // A typo in COMMAND fails at once, before any request is sent.
    let program = Program::resolve(&args.command, std::env::var_os("PATH").as_deref())?;
    let client =
        InfisicalClient::new(&source_config.api).map_err(|e| Fatal::new(exit::USAGE, e.0))?;
    let mut source = Source::new(source_config, Arc::new(client), false);

    let Some(mut signals) = signals else {
        let secrets = super::fetch_once(&mut source).await?;
        let child_env = recipe.build(secrets)?;
        // Rust ignores SIGPIPE and an ignored signal stays ignored across execve, so the app
        // would get EPIPE where it expects to die quietly (`app | head`). A handled signal is
        // reset to the default by execve, and registering one needs no unsafe code.
        if let Err(error) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::pipe()) {
            tracing::warn!("cannot reset SIGPIPE for the command: {error}");
        }
        tracing::info!(
            secrets = child_env.secret_count(),
            command = program.name(),
            "starting the command"
        );
        return Ok(Outcome::Replace(Prepared::new(&program, &child_env)?));
    };

    let supervision = Supervision {
        restart_signal: parse_signal(&args.restart_signal).map_err(|error| match error {
            ConfigError::Invalid { value, reason, .. } => ConfigError::Invalid {
                option: "--restart-signal",
                value,
                reason,
            },
            other => other,
        })?,
        grace: args.grace,
    };
    let (interval, jitter) = config::refresh_timing(&args.refresh)?;

    let secrets = tokio::select! {
        fetched = super::fetch_once(&mut source) => fetched?,
        signal = signals.termination() => {
            tracing::info!("{signal} received before the command started; exiting");
            return Ok(Outcome::Exited(128 + signal as u8));
        }
    };
    let child_env = recipe.build(secrets)?;
    let refresher = Refresher::new(source, interval, jitter);
    let code = supervise::run(
        &program,
        &recipe,
        child_env,
        refresher,
        signals,
        supervision,
    )
    .await?;
    Ok(Outcome::Exited(code))
}

/// COMMAND, resolved: the file to execute and the argument vector (argv[0] as given).
#[derive(Debug)]
pub struct Program {
    path: PathBuf,
    argv: Vec<String>,
}

impl Program {
    /// Looks COMMAND up like a shell: a name containing `/` is used as is, anything else is
    /// searched in `search_path` (the `PATH` value). Not found → exit 127, found but not
    /// executable → exit 126.
    pub fn resolve(command: &[String], search_path: Option<&OsStr>) -> Result<Self, Fatal> {
        let name = command.first().map(String::as_str).unwrap_or_default();
        if name.is_empty() {
            return Err(Fatal::new(
                exit::COMMAND_NOT_FOUND,
                "no command given: put it after --, e.g. exec -- /app/server --port 8080",
            ));
        }
        let path = if name.contains('/') {
            let path = PathBuf::from(name);
            check_executable(name, &path)?;
            path
        } else {
            search(name, search_path.unwrap_or(OsStr::new(DEFAULT_PATH)))?
        };
        Ok(Self {
            path,
            argv: command.to_vec(),
        })
    }

    /// The command as given (argv[0]), for messages.
    pub fn name(&self) -> &str {
        &self.argv[0]
    }

    /// The file that is executed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The arguments after argv[0].
    pub fn args(&self) -> &[String] {
        &self.argv[1..]
    }
}

/// Searches `name` in the directories of `search_path`, skipping what is not a regular file
/// (like bash); an empty entry means the current directory.
fn search(name: &str, search_path: &OsStr) -> Result<PathBuf, Fatal> {
    let mut denied = None;
    for dir in std::env::split_paths(search_path) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let candidate = dir.join(name);
        if !std::fs::metadata(&candidate).is_ok_and(|meta| meta.is_file()) {
            continue;
        }
        if nix::unistd::access(&candidate, AccessFlags::X_OK).is_ok() {
            return Ok(candidate);
        }
        denied.get_or_insert(candidate);
    }
    match denied {
        Some(path) => Err(Fatal::new(
            exit::NOT_EXECUTABLE,
            format!(
                "command {name:?} found at {} but it is not executable: chmod +x it or fix PATH",
                path.display()
            ),
        )),
        None => Err(Fatal::new(
            exit::COMMAND_NOT_FOUND,
            format!(
                "command {name:?} not found in PATH ({}): check the name, or give its full path",
                search_path.to_string_lossy()
            ),
        )),
    }
}

/// Checks a command given by path, so the common mistakes get a clear message before anything
/// is fetched.
fn check_executable(name: &str, path: &Path) -> Result<(), Fatal> {
    match std::fs::metadata(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(Fatal::new(
            exit::COMMAND_NOT_FOUND,
            format!("command {name:?} not found: no such file (check the path and the image)"),
        )),
        Err(error) => Err(Fatal::new(
            exit::NOT_EXECUTABLE,
            format!("command {name:?} cannot be run: {error}"),
        )),
        Ok(meta) if meta.is_dir() => Err(Fatal::new(
            exit::NOT_EXECUTABLE,
            format!("command {name:?} is a directory, not a program"),
        )),
        Ok(_) => match nix::unistd::access(path, AccessFlags::X_OK) {
            Ok(()) => Ok(()),
            Err(errno) => Err(launch_failure(name, path, errno)),
        },
    }
}

/// Explains why `execve` (or a spawn) of `path` failed.
pub fn launch_failure(name: &str, path: &Path, errno: Errno) -> Fatal {
    match errno {
        Errno::ENOENT if path.exists() => Fatal::new(
            exit::NOT_EXECUTABLE,
            format!(
                "command {name:?} cannot be run: its interpreter (the #! line) or loader was not \
                 found in this image"
            ),
        ),
        Errno::ENOENT | Errno::ENOTDIR => Fatal::new(
            exit::COMMAND_NOT_FOUND,
            format!("command {name:?} not found: no such file (check the path and the image)"),
        ),
        Errno::EACCES | Errno::EPERM => Fatal::new(
            exit::NOT_EXECUTABLE,
            format!(
                "command {name:?} is not executable: chmod +x it (or the volume is mounted noexec)"
            ),
        ),
        Errno::ENOEXEC => Fatal::new(
            exit::NOT_EXECUTABLE,
            format!(
                "command {name:?} is not a program this system can run (a script needs a #! line)"
            ),
        ),
        other => Fatal::new(
            exit::NOT_EXECUTABLE,
            format!("command {name:?} cannot be run: {}", other.desc()),
        ),
    }
}

/// How the child's environment is made from the inherited one and the secrets.
pub struct EnvRecipe {
    /// This process's environment as it started.
    pub inherited: Vec<(OsString, OsString)>,
    /// What to do with keys that cannot be env names.
    pub policy: InvalidKeys,
    /// Inherited variables win over secrets of the same name.
    pub preserve_env: bool,
    /// Variables of [`CONSUMED_ENV_VARS`] passed on anyway.
    pub keep: Vec<String>,
}

impl EnvRecipe {
    /// The child's environment for these secrets. Fails (exit 65) on a key that is not an env
    /// name (unless skipped) and on a value holding a NUL byte, naming the key only.
    pub fn build(&self, secrets: SecretSet) -> Result<ChildEnv, Fatal> {
        let secrets = check_env_keys(&secrets, self.policy)
            .map_err(|error| Fatal::new(error.exit_code(), error.to_string()))?;
        if let Some((key, _)) = secrets
            .iter()
            .find(|(_, value)| value.expose().contains('\0'))
        {
            return Err(Fatal::new(
                exit::DATA,
                format!(
                    "the value of secret {key:?} contains a NUL byte, which an environment \
                     variable cannot hold; remove it in Infisical or use init/sidecar with \
                     --out-dir instead"
                ),
            ));
        }
        let removed = |name: &OsStr| {
            CONSUMED_ENV_VARS
                .iter()
                .any(|consumed| OsStr::new(consumed) == name)
                && !self.keep.iter().any(|kept| OsStr::new(kept) == name)
        };
        let mut vars: Vec<(OsString, OsString)> = self
            .inherited
            .iter()
            .filter(|(name, _)| !removed(name))
            .cloned()
            .collect();
        let mut position: HashMap<OsString, usize> = vars
            .iter()
            .enumerate()
            .map(|(index, (name, _))| (name.clone(), index))
            .collect();
        // What the child actually gets: a secret shadowed by an inherited variable
        // (--preserve-env) changes nothing for it, so it must not cause a restart either.
        let mut applied = SecretSet::new();
        for (key, secret) in secrets.iter() {
            let value = OsString::from(secret.expose());
            match position.get(OsStr::new(key)) {
                Some(_) if self.preserve_env => {
                    wipe(value);
                    continue;
                }
                Some(&index) => {
                    let old = std::mem::replace(&mut vars[index].1, value);
                    wipe(old);
                }
                None => {
                    position.insert(key.into(), vars.len());
                    vars.push((key.into(), value));
                }
            }
            applied.insert(key.to_owned(), secret.clone());
        }
        Ok(ChildEnv {
            vars,
            secret_count: applied.len(),
            hash: applied.content_hash(),
        })
    }
}

/// The child's environment. Values are wiped from memory on drop.
pub struct ChildEnv {
    vars: Vec<(OsString, OsString)>,
    secret_count: usize,
    hash: [u8; 32],
}

impl ChildEnv {
    /// The variables, in order.
    pub fn vars(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.as_os_str(), v.as_os_str()))
    }

    /// How many secrets it carries (for logs); secrets shadowed by `--preserve-env` not counted.
    pub fn secret_count(&self) -> usize {
        self.secret_count
    }

    /// A hash of the secrets it carries: equal hashes mean no restart is needed.
    pub fn secrets_hash(&self) -> [u8; 32] {
        self.hash
    }
}

impl Drop for ChildEnv {
    fn drop(&mut self) {
        for (_, value) in self.vars.drain(..) {
            wipe(value);
        }
    }
}

fn wipe(value: OsString) {
    value.into_vec().zeroize();
}

/// Everything `execve` needs, prepared while the runtime still runs.
pub struct Prepared {
    name: String,
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

impl Prepared {
    /// Converts the program and environment into C strings.
    pub fn new(program: &Program, env: &ChildEnv) -> Result<Self, Fatal> {
        let c_string = |bytes: &[u8], what: &str| {
            CString::new(bytes)
                .map_err(|_| Fatal::new(exit::USAGE, format!("{what} contains a NUL byte")))
        };
        let path = c_string(program.path().as_os_str().as_bytes(), "the command path")?;
        let argv = program
            .argv
            .iter()
            .map(|arg| c_string(arg.as_bytes(), "an argument"))
            .collect::<Result<_, _>>()?;
        let mut envp = Vec::with_capacity(env.vars.len());
        for (name, value) in &env.vars {
            let mut entry = Vec::with_capacity(name.len() + value.len() + 1);
            entry.extend_from_slice(name.as_bytes());
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            // NUL in secret values was refused when the environment was built; an inherited
            // variable cannot hold one.
            match CString::new(entry) {
                Ok(entry) => envp.push(entry),
                Err(error) => {
                    error.into_vec().zeroize();
                    return Err(Fatal::new(
                        exit::DATA,
                        format!(
                            "environment variable {:?} contains a NUL byte",
                            name.to_string_lossy()
                        ),
                    ));
                }
            }
        }
        Ok(Self {
            name: program.name().to_owned(),
            path,
            argv,
            envp,
        })
    }

    /// Replaces this process with the command. Returns only if that fails, with the reason.
    /// Call it with no runtime left: its threads and file descriptors must not outlive it.
    pub fn exec(self) -> Fatal {
        let Err(errno) = nix::unistd::execve(&self.path, &self.argv, &self.envp);
        let path = PathBuf::from(OsStr::from_bytes(self.path.as_bytes()));
        launch_failure(&self.name, &path, errno)
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        for entry in self.envp.drain(..) {
            entry.into_bytes_with_nul().zeroize();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretValue;

    fn secrets(pairs: &[(&str, &str)]) -> SecretSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretValue::from(*v)))
            .collect()
    }

    fn recipe(inherited: &[(&str, &str)]) -> EnvRecipe {
        EnvRecipe {
            inherited: inherited
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v)))
                .collect(),
            policy: InvalidKeys::Fail,
            preserve_env: false,
            keep: Vec::new(),
        }
    }

    fn vars(env: &ChildEnv) -> Vec<(String, String)> {
        env.vars()
            .map(|(k, v)| (k.to_string_lossy().into(), v.to_string_lossy().into()))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn secrets_override_inherited_unless_preserved() {
        let inherited = [("HOME", "/root"), ("API_KEY", "inherited")];
        let set = secrets(&[("API_KEY", "secret"), ("NEW", "n")]);
        let env = recipe(&inherited).build(set.clone()).unwrap();
        assert_eq!(
            vars(&env),
            pairs(&[("HOME", "/root"), ("API_KEY", "secret"), ("NEW", "n")])
        );
        let mut preserving = recipe(&inherited);
        preserving.preserve_env = true;
        let env = preserving.build(set).unwrap();
        assert_eq!(
            vars(&env),
            pairs(&[("HOME", "/root"), ("API_KEY", "inherited"), ("NEW", "n")])
        );
        assert_eq!(env.secret_count(), 1, "the shadowed API_KEY is not passed");
    }

    #[test]
    fn the_wrappers_own_variables_are_removed_unless_kept() {
        let inherited = [
            ("INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET", "s"),
            ("INFISICAL_TOKEN", "t"),
            ("INFISICAL_PROJECT_ID", "p"),
            ("INFISICAL_OTHER", "not ours"),
            ("PATH", "/bin"),
        ];
        let mut keeping = recipe(&inherited);
        keeping.keep = vec!["INFISICAL_PROJECT_ID".into()];
        let env = keeping.build(SecretSet::new()).unwrap();
        assert_eq!(
            vars(&env),
            pairs(&[
                ("INFISICAL_PROJECT_ID", "p"),
                ("INFISICAL_OTHER", "not ours"),
                ("PATH", "/bin")
            ])
        );
    }

    #[test]
    fn a_secret_may_reuse_a_removed_name() {
        let env = recipe(&[("INFISICAL_TOKEN", "wrapper's")])
            .build(secrets(&[("INFISICAL_TOKEN", "the app's own")]))
            .unwrap();
        assert_eq!(vars(&env), pairs(&[("INFISICAL_TOKEN", "the app's own")]));
    }

    #[test]
    fn invalid_keys_fail_or_are_skipped_and_nul_values_fail_without_the_value() {
        let set = secrets(&[("GOOD", "1"), ("bad-key", "2")]);
        let error = recipe(&[]).build(set.clone()).err().unwrap();
        assert_eq!(error.code, exit::DATA);
        assert!(error.message.contains("bad-key"), "{}", error.message);
        let mut skipping = recipe(&[]);
        skipping.policy = InvalidKeys::Skip;
        assert_eq!(vars(&skipping.build(set).unwrap()), pairs(&[("GOOD", "1")]));

        let error = recipe(&[])
            .build(secrets(&[("TOKEN", "abc\0hidden-part")]))
            .err()
            .unwrap();
        assert_eq!(error.code, exit::DATA);
        assert!(error.message.contains("\"TOKEN\""), "{}", error.message);
        assert!(!error.message.contains("hidden-part"), "{}", error.message);
    }

    #[test]
    fn the_hash_follows_the_secrets_not_the_environment() {
        let set = secrets(&[("A", "1")]);
        let first = recipe(&[("X", "1")]).build(set.clone()).unwrap();
        let second = recipe(&[("X", "2")]).build(set).unwrap();
        assert_eq!(first.secrets_hash(), second.secrets_hash());
        let changed = recipe(&[]).build(secrets(&[("A", "2")])).unwrap();
        assert_ne!(first.secrets_hash(), changed.secrets_hash());

        // A secret hidden by an inherited variable does not count.
        let mut preserving = recipe(&[("A", "inherited")]);
        preserving.preserve_env = true;
        let before = preserving
            .build(secrets(&[("A", "1"), ("B", "b")]))
            .unwrap();
        let after = preserving
            .build(secrets(&[("A", "2"), ("B", "b")]))
            .unwrap();
        assert_eq!(before.secrets_hash(), after.secrets_hash());
        assert_eq!(before.secret_count(), 1);
    }

    #[test]
    fn commands_are_searched_in_path_like_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let plain = bin.join("plain");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        // A directory with the command's name is skipped, as bash does.
        std::fs::create_dir(dir.path().join("tool")).unwrap();
        let tool = bin.join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths([dir.path(), &bin]).unwrap();

        let found = Program::resolve(&["tool".into(), "-x".into()], Some(&path)).unwrap();
        assert_eq!(found.path(), tool);
        assert_eq!(found.name(), "tool");
        assert_eq!(found.args(), ["-x"]);

        let missing = Program::resolve(&["nope".into()], Some(&path)).unwrap_err();
        assert_eq!(missing.code, exit::COMMAND_NOT_FOUND);
        let by_path = Program::resolve(&[plain.to_string_lossy().into()], Some(&path));
        // Root may execute nothing without an x bit either.
        assert_eq!(by_path.unwrap_err().code, exit::NOT_EXECUTABLE);
        let not_exec = Program::resolve(&["plain".into()], Some(&path)).unwrap_err();
        assert_eq!(not_exec.code, exit::NOT_EXECUTABLE);
        let dir_cmd = Program::resolve(&[bin.to_string_lossy().into()], Some(&path));
        assert_eq!(dir_cmd.unwrap_err().code, exit::NOT_EXECUTABLE);
        let gone = Program::resolve(&["/no/such/program".into()], Some(&path));
        assert_eq!(gone.unwrap_err().code, exit::COMMAND_NOT_FOUND);
    }
}
