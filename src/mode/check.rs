//! `check`: validate the configuration, log in, list the key names, exit.

use std::io::Write;
use std::sync::Arc;

use crate::api::InfisicalClient;
use crate::config::CheckConfig;
use crate::error::Fatal;
use crate::source::Source;

/// Runs `check`: prints one key name per line on stdout (never a value).
pub async fn run(config: CheckConfig) -> Result<(), Fatal> {
    let config = config.source;
    let client = InfisicalClient::new(&config.api)?;
    let mut source = Source::new(config, Arc::new(client), false);
    let (secrets, _) = super::fetch_once(&mut source).await?;
    let config = source.config();
    tracing::info!(
        secrets = secrets.len(),
        method = config.auth.method_name(),
        environment = config.environment,
        path = config.path,
        "check passed"
    );
    let mut out = std::io::stdout().lock();
    for key in secrets.keys() {
        // A closed stdout (e.g. `| head`) is not worth failing the check for.
        let _ = writeln!(out, "{key}");
    }
    Ok(())
}
