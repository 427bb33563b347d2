//! Where the secrets go: an atomically swapped directory (`--out-dir`), one file in a chosen
//! format (`--out-file`), or, for exec mode, the checked environment.
//!
//! [`Outputs::write`] writes every configured output or changes none: keys are checked and the
//! file content is encoded first, then every output is staged (written under hidden names,
//! synced, with its mode and owner set) and only then made visible by renames. A staging
//! failure removes what was staged and leaves the existing outputs as they were.
//!
//! - [`dir`] and [`file`](mod@file) are the two outputs, [`format`](mod@format) encodes the single file;
//! - [`fs`] is the one private-file writer under them (also used by `install`), with the
//!   directory, ownership and filesystem checks;
//! - [`outputs`] writes every output together; [`options`] says how; [`error`] says why not;
//! - [`template`] renders config files from secrets (minijinja), failing closed.

pub mod dir;
pub mod error;
pub mod file;
pub mod format;
pub mod fs;
pub mod options;
pub mod outputs;
pub mod template;

pub use error::{ParseError, SinkError};
pub use format::Format;
pub use fs::{check_writable, TargetKind};
pub use options::{Owner, WriteOptions, WriteOutcome};
pub use outputs::{Decode, Output, OutputConfig, Outputs, Target};
