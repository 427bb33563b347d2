//! `check`: validate the configuration, log in, list the key names, exit.

use std::io::Write;
use std::sync::Arc;

use crate::api::InfisicalClient;
use crate::config::CheckConfig;
use crate::error::Fatal;
use crate::source::Source;

/// Runs `check`: prints one key name per line on stdout (never a value).
pub async fn run(config: CheckConfig) -> Result<(), Fatal> {
    let client = InfisicalClient::new(&config.source.api)?;
    let mut source = Source::new(config.source, Arc::new(client), false);
    let (secrets, _) = super::fetch_once(&mut source, config.retry_deadline).await?;
    let source = source.config();
    tracing::info!(
        secrets = secrets.len(),
        method = source.auth.method_name(),
        environment = source.query.environment,
        path = source.query.path,
        "check passed"
    );
    let mut out = std::io::stdout().lock();
    for key in secrets.keys() {
        // A closed stdout (e.g. `| head`) is not worth failing the check for.
        let _ = writeln!(out, "{key}");
    }
    Ok(())
}
