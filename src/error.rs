//! The exit codes this tool documents, and the top-level error that carries one.
//!
//! Every module has its own error enum; each variant maps to exactly one exit code here, so a
//! script (or a Kubernetes operator reading the container status) can tell failures apart.

use std::process::ExitCode;

/// The documented exit codes (BSD `sysexits.h` values, which init systems and scripts know).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Bad usage or configuration.
    pub const USAGE: u8 = 64;
    /// A secret key cannot be used as a file name or env name, or a value cannot be written in
    /// the chosen format.
    pub const DATA: u8 = 65;
    /// Not found: project, environment, folder path or a `--key`.
    pub const NOT_FOUND: u8 = 66;
    /// Infisical unreachable or failing after the retry deadline.
    pub const UNAVAILABLE: u8 = 69;
    /// An output cannot be written.
    pub const CANT_WRITE: u8 = 73;
    /// Authentication or authorization refused.
    pub const NO_PERMISSION: u8 = 77;
    /// exec: the command exists but cannot be executed.
    pub const NOT_EXECUTABLE: u8 = 126;
    /// exec: the command was not found.
    pub const COMMAND_NOT_FOUND: u8 = 127;
}

/// An error that ends the process: a one-line message (saying what to do) and an exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Fatal {
    /// The single line printed to stderr.
    pub message: String,
    /// The documented exit code.
    pub code: u8,
}

impl Fatal {
    /// A fatal error with this message and exit code.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code,
        }
    }

    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code)
    }
}
