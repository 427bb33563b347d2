//! Why COMMAND could not be started, or the wrapper could not run it: one variant per case,
//! each with the advice a user needs and one documented exit code.

use std::path::PathBuf;

use nix::errno::Errno;

use crate::error::{exit, Fatal};
use crate::secrets::KeyError;

/// A failure of `exec` itself (not of Infisical, not of the command once it runs).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Nothing after `--`.
    #[error("no command given: put it after --, e.g. exec -- /app/server --port 8080")]
    NoCommand,
    /// The command given by path does not exist.
    #[error("command {name:?} not found: no such file (check the path and the image)")]
    NotFound {
        /// The command as given.
        name: String,
    },
    /// No directory of `PATH` holds the command.
    #[error("command {name:?} not found in PATH ({path}): check the name, or give its full path")]
    NotInPath {
        /// The command as given.
        name: String,
        /// The `PATH` searched.
        path: String,
    },
    /// Found in `PATH`, but not executable.
    #[error("command {name:?} found at {} but it is not executable: chmod +x it or fix PATH", found.display())]
    FoundNotExecutable {
        /// The command as given.
        name: String,
        /// Where it was found.
        found: PathBuf,
    },
    /// The command is a directory.
    #[error("command {name:?} is a directory, not a program")]
    IsDirectory {
        /// The command as given.
        name: String,
    },
    /// The file exists but its `#!` interpreter or its loader does not.
    #[error(
        "command {name:?} cannot be run: its interpreter (the #! line) or loader was not found \
         in this image"
    )]
    MissingInterpreter {
        /// The command as given.
        name: String,
    },
    /// No execute permission (or a `noexec` mount).
    #[error("command {name:?} is not executable: chmod +x it (or the volume is mounted noexec)")]
    NotExecutable {
        /// The command as given.
        name: String,
    },
    /// Not a format the kernel runs.
    #[error("command {name:?} is not a program this system can run (a script needs a #! line)")]
    NotAProgram {
        /// The command as given.
        name: String,
    },
    /// Any other reason the kernel gave.
    #[error("command {name:?} cannot be run: {}", source.desc())]
    CannotRun {
        /// The command as given.
        name: String,
        /// The kernel's reason.
        #[source]
        source: Errno,
    },
    /// Its metadata cannot be read.
    #[error("command {name:?} cannot be run: {source}")]
    Unreadable {
        /// The command as given.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The command path or an argument holds a NUL byte.
    #[error("{what} contains a NUL byte")]
    NulInCommand {
        /// "the command path" or "an argument".
        what: &'static str,
    },
    /// A secret's value holds a NUL byte, which an environment variable cannot.
    #[error(
        "the value of secret {key:?} contains a NUL byte, which an environment variable cannot \
         hold; remove it in Infisical or use init/sidecar with --out-dir instead"
    )]
    NulInSecret {
        /// The key (never the value).
        key: String,
    },
    /// A secret's key cannot be an environment variable name.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// An inherited variable holds a NUL byte.
    #[error("environment variable {name:?} contains a NUL byte")]
    NulInVariable {
        /// The variable's name.
        name: String,
    },
    /// The wrapper cannot handle signals.
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// The kernel gave a pid that does not fit.
    #[error("the child's pid is out of range")]
    PidOutOfRange,
}

impl ExecError {
    /// Explains why `execve` (or a spawn) of `name` at `path` failed with `errno`.
    pub fn launch(name: &str, path: &std::path::Path, errno: Errno) -> Self {
        let name = name.to_owned();
        match errno {
            Errno::ENOENT if path.exists() => ExecError::MissingInterpreter { name },
            Errno::ENOENT | Errno::ENOTDIR => ExecError::NotFound { name },
            Errno::EACCES | Errno::EPERM => ExecError::NotExecutable { name },
            Errno::ENOEXEC => ExecError::NotAProgram { name },
            source => ExecError::CannotRun { name, source },
        }
    }

    /// The documented exit code: 127 when there is no such command, 126 when it cannot be run,
    /// 65 for values an environment cannot hold, 64 for a bad command line, 69 for the wrapper.
    pub fn exit_code(&self) -> u8 {
        match self {
            ExecError::NoCommand | ExecError::NotFound { .. } | ExecError::NotInPath { .. } => {
                exit::COMMAND_NOT_FOUND
            }
            ExecError::FoundNotExecutable { .. }
            | ExecError::IsDirectory { .. }
            | ExecError::MissingInterpreter { .. }
            | ExecError::NotExecutable { .. }
            | ExecError::NotAProgram { .. }
            | ExecError::CannotRun { .. }
            | ExecError::Unreadable { .. } => exit::NOT_EXECUTABLE,
            ExecError::NulInCommand { .. } => exit::USAGE,
            ExecError::Key(error) => error.exit_code(),
            ExecError::NulInSecret { .. } | ExecError::NulInVariable { .. } => exit::DATA,
            ExecError::Signals(_) | ExecError::PidOutOfRange => exit::UNAVAILABLE,
        }
    }
}

impl From<ExecError> for Fatal {
    fn from(error: ExecError) -> Self {
        Fatal::new(error.exit_code(), error.to_string())
    }
}
