//! `check`: validate the configuration, log in, list the key names, exit.

use std::io::Write;
use std::sync::Arc;

use crate::api::InfisicalClient;
use crate::config::CheckConfig;
use crate::error::Fatal;
use crate::source::Sources;

/// Runs `check`: prints one key name per line on stdout (never a value).
pub async fn run(config: CheckConfig) -> Result<(), Fatal> {
    let client = InfisicalClient::new(&config.fetch.api)?;
    let mut sources = Sources::new(config.fetch, Arc::new(client), false);
    let secrets = super::fetch_once(&mut sources, config.retry_deadline).await?;
    let fetch = sources.config();
    tracing::info!(
        secrets = secrets.len(),
        method = fetch.auth.method_name(),
        sources = fetch.sources.len(),
        "check passed"
    );
    let mut out = std::io::stdout().lock();
    for key in secrets.keys() {
        // A closed stdout (e.g. `| head`) is not worth failing the check for.
        let _ = writeln!(out, "{key}");
    }
    Ok(())
}
