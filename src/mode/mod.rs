//! The modes: `check`, `init`, `sidecar`, `exec` (and `install`).

pub mod check;
pub mod exec;
pub mod init;
pub mod install;
pub mod sidecar;

use std::time::Duration;

use crate::backoff::{RetryUntil, Transient};
use crate::diagnose;
use crate::error::Fatal;
use crate::secrets::SecretSet;
use crate::source::{Fetched, Sources};

/// Fetches once for the one-shot modes, retrying transient failures until `--retry-deadline`.
/// The sources keep their ETags for a refresh engine that may follow (`exec --watch`).
pub async fn fetch_once(sources: &mut Sources, deadline: Duration) -> Result<SecretSet, Fatal> {
    let mut retry = RetryUntil::new(deadline);
    let fetched = loop {
        match sources.fetch(false).await {
            Err(error) if retry.wait(&error).await => continue,
            other => break other,
        }
    };
    match fetched {
        Ok(Fetched::Secrets(secrets)) => Ok(secrets),
        // Without an ETag the server has nothing to compare with; treat it as empty.
        Ok(Fetched::NotModified) => Ok(SecretSet::new()),
        Err(error) => {
            let mut fatal = diagnose::fetch_failure(&error, sources.config());
            if error.is_transient() {
                fatal.message = format!(
                    "gave up after --retry-deadline {}: {}",
                    humantime::format_duration(deadline),
                    fatal.message
                );
            }
            Err(fatal)
        }
    }
}
