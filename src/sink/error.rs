//! Why a write failed, as one line that says what to do, and the exit code it maps to.

use std::io;
use std::path::{Path, PathBuf};

use super::template::TemplateError;
use crate::error::{exit, Fatal};
use crate::secrets::KeyError;

/// Why a write failed. Secret values never appear here.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A key cannot be used by an output and `--invalid-keys` is `fail` (exit 65).
    #[error(transparent)]
    InvalidKey(#[from] KeyError),
    /// A value cannot be written in the chosen format (exit 65).
    #[error("secret {key:?} cannot be written in the {format} format: its value {reason}")]
    UnrepresentableValue {
        /// The key whose value it is.
        key: String,
        /// The format's name (`dotenv`, `shell`).
        format: &'static str,
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
    /// A target that cannot be created or written, found before anything is written (exit 73).
    #[error("{option} {} cannot be written: {problem}; {fix}", path.display())]
    Unwritable {
        /// The option that names the target, e.g. `--out-dir`.
        option: &'static str,
        /// The target directory or file.
        path: PathBuf,
        /// What is in the way, naming the path it found it on.
        problem: String,
        /// What to do about it.
        fix: &'static str,
    },
    /// A `decode` option cannot decode a secret's value, or names a secret that is not there
    /// (exit 65).
    #[error("{output}: keys.{key}: {problem}")]
    Decode {
        /// The output, e.g. `--out-dir /run/secrets/app`.
        output: String,
        /// The key.
        key: String,
        /// What is wrong (never the value).
        problem: &'static str,
    },
    /// A template cannot be rendered (exit 65, or 66 for a missing secret).
    #[error(transparent)]
    Template(#[from] TemplateError),
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
            SinkError::InvalidKey(_)
            | SinkError::UnrepresentableValue { .. }
            | SinkError::Decode { .. } => exit::DATA,
            SinkError::Template(error) => error.exit_code(),
            SinkError::NotTmpfs { .. } | SinkError::Unwritable { .. } | SinkError::Io { .. } => {
                exit::CANT_WRITE
            }
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

/// One line: what failed, the system's reason in words, and what to do about it.
fn io_message(path: &Path, action: &str, source: &io::Error) -> String {
    use nix::errno::Errno;
    let reason = match source.raw_os_error() {
        Some(code) => errno_text(Errno::from_raw(code)),
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

/// The system's description of `errno`, starting in lower case to sit inside a sentence.
pub(crate) fn errno_text(errno: nix::errno::Errno) -> String {
    let text = errno.desc();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_line_that_says_what_to_do() {
        let error = SinkError::from(KeyError {
            key: "../evil".into(),
            output: "a file name in --out-dir".into(),
            reason: "it contains '/'",
        });
        assert_eq!(
            error.to_string(),
            "secret key \"../evil\" cannot be a file name in --out-dir: it contains '/'; rename the \
             secret in Infisical, map it with --key REMOTE=LOCAL, or pass --invalid-keys skip"
        );
        assert_eq!(error.exit_code(), exit::DATA);
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
}
