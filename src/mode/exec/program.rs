//! COMMAND: finding it like a shell would, explaining why it cannot run, and replacing this
//! process with it (`execve`).

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::unistd::AccessFlags;
use zeroize::Zeroize;

use super::environment::ChildEnv;
use super::error::ExecError;

/// Where COMMAND is looked up when `PATH` is not set (what `execvp` and shells fall back to).
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// COMMAND, resolved: the file to execute and the argument vector (`argv[0]` as given).
#[derive(Debug)]
pub struct Program {
    path: PathBuf,
    argv: Vec<String>,
}

impl Program {
    /// Looks COMMAND up like a shell: a name containing `/` is used as is, anything else is
    /// searched in `search_path` (the `PATH` value). Not found → exit 127, found but not
    /// executable → exit 126.
    pub fn resolve(command: &[String], search_path: Option<&OsStr>) -> Result<Self, ExecError> {
        let name = command.first().map(String::as_str).unwrap_or_default();
        if name.is_empty() {
            return Err(ExecError::NoCommand);
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

    /// The command as given (`argv[0]`), for messages.
    pub fn name(&self) -> &str {
        &self.argv[0]
    }

    /// The file that is executed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The arguments after `argv[0]`.
    pub fn args(&self) -> &[String] {
        &self.argv[1..]
    }
}

/// Searches `name` in the directories of `search_path`, skipping what is not a regular file
/// (like bash); an empty entry means the current directory.
fn search(name: &str, search_path: &OsStr) -> Result<PathBuf, ExecError> {
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
        Some(found) => Err(ExecError::FoundNotExecutable {
            name: name.to_owned(),
            found,
        }),
        None => Err(ExecError::NotInPath {
            name: name.to_owned(),
            path: search_path.to_string_lossy().into_owned(),
        }),
    }
}

/// Checks a command given by path, so the common mistakes get a clear message before anything
/// is fetched.
fn check_executable(name: &str, path: &Path) -> Result<(), ExecError> {
    match std::fs::metadata(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(ExecError::NotFound {
            name: name.to_owned(),
        }),
        Err(source) => Err(ExecError::Unreadable {
            name: name.to_owned(),
            source,
        }),
        Ok(meta) if meta.is_dir() => Err(ExecError::IsDirectory {
            name: name.to_owned(),
        }),
        Ok(_) => nix::unistd::access(path, AccessFlags::X_OK)
            .map_err(|errno| ExecError::launch(name, path, errno)),
    }
}

/// `NAME=value` in a buffer with room for the NUL that `CString::new` adds, so that it never
/// reallocates and leaves an unwiped copy of the value behind.
fn env_entry(name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut entry = Vec::with_capacity(name.len() + 1 + value.len() + 1);
    entry.extend_from_slice(name);
    entry.push(b'=');
    entry.extend_from_slice(value);
    entry
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
    pub fn new(program: &Program, env: &ChildEnv) -> Result<Self, ExecError> {
        let c_string =
            |bytes: &[u8], what| CString::new(bytes).map_err(|_| ExecError::NulInCommand { what });
        let path = c_string(program.path().as_os_str().as_bytes(), "the command path")?;
        let argv = program
            .argv
            .iter()
            .map(|arg| c_string(arg.as_bytes(), "an argument"))
            .collect::<Result<_, _>>()?;
        let mut envp = Vec::new();
        for (name, value) in env.vars() {
            let entry = env_entry(name.as_bytes(), value.as_bytes());
            // NUL in secret values was refused when the environment was built; an inherited
            // variable cannot hold one.
            match CString::new(entry) {
                Ok(entry) => envp.push(entry),
                Err(error) => {
                    error.into_vec().zeroize();
                    return Err(ExecError::NulInVariable {
                        name: name.to_string_lossy().into_owned(),
                    });
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
    pub fn exec(self) -> ExecError {
        let Err(errno) = nix::unistd::execve(&self.path, &self.argv, &self.envp);
        let path = PathBuf::from(OsStr::from_bytes(self.path.as_bytes()));
        ExecError::launch(&self.name, &path, errno)
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
    use crate::error::exit;

    #[test]
    fn environment_entries_have_room_for_the_nul() {
        let entry = env_entry(b"API_KEY", b"hunter2");
        // CString::new pushes a NUL: without room for it the buffer would be reallocated and
        // the old one, holding the value, freed unwiped.
        assert_eq!(entry.capacity(), entry.len() + 1);
        let c_string = CString::new(entry).unwrap();
        assert_eq!(c_string.as_bytes(), b"API_KEY=hunter2");
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
        assert_eq!(missing.exit_code(), exit::COMMAND_NOT_FOUND);
        let by_path = Program::resolve(&[plain.to_string_lossy().into()], Some(&path));
        // Root may execute nothing without an x bit either.
        assert_eq!(by_path.unwrap_err().exit_code(), exit::NOT_EXECUTABLE);
        let not_exec = Program::resolve(&["plain".into()], Some(&path)).unwrap_err();
        assert_eq!(not_exec.exit_code(), exit::NOT_EXECUTABLE);
        let dir_cmd = Program::resolve(&[bin.to_string_lossy().into()], Some(&path));
        assert_eq!(dir_cmd.unwrap_err().exit_code(), exit::NOT_EXECUTABLE);
        let gone = Program::resolve(&["/no/such/program".into()], Some(&path));
        assert_eq!(gone.unwrap_err().exit_code(), exit::COMMAND_NOT_FOUND);
    }
}
