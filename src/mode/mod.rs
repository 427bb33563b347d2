//! The modes: `check`, `init`, `sidecar`, `exec` (and `install`).

pub mod check;
pub mod exec;
pub mod init;
pub mod install;
pub mod sidecar;

use crate::backoff::RetryUntil;
use crate::diagnose;
use crate::error::Fatal;
use crate::secrets::SecretSet;
use crate::source::{Fetched, Source};

/// Fetches once for the one-shot modes, retrying transient failures until `--retry-deadline`.
pub async fn fetch_once(source: &mut Source) -> Result<SecretSet, Fatal> {
    let mut retry = RetryUntil::new(source.config().retry_deadline);
    let fetched = loop {
        match source.fetch(None).await {
            Err(error) if retry.wait(&error).await => continue,
            other => break other,
        }
    };
    match fetched {
        Ok(Fetched::Secrets { secrets, .. }) => Ok(secrets),
        // Without an ETag the server has nothing to compare with; treat it as empty.
        Ok(Fetched::NotModified) => Ok(SecretSet::new()),
        Err(error) => Err(diagnose::fetch_failure(&error, source.config())),
    }
}
