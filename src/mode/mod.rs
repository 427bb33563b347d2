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
use crate::source::{Fetched, Source};

/// Fetches once for the one-shot modes, retrying transient failures until `--retry-deadline`.
/// Returns the secrets and the ETag to send next time (for `exec --watch`).
pub async fn fetch_once(
    source: &mut Source,
    deadline: Duration,
) -> Result<(SecretSet, Option<String>), Fatal> {
    let mut retry = RetryUntil::new(deadline);
    let fetched = loop {
        match source.fetch(None).await {
            Err(error) if retry.wait(&error).await => continue,
            other => break other,
        }
    };
    match fetched {
        Ok(Fetched::Secrets { secrets, etag }) => Ok((secrets, etag)),
        // Without an ETag the server has nothing to compare with; treat it as empty.
        Ok(Fetched::NotModified) => Ok((SecretSet::new(), None)),
        Err(error) => {
            let mut fatal = diagnose::fetch_failure(&error, source.config());
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
