//! `init`: fetch once, write every output (all or nothing), exit.

use std::sync::Arc;

use crate::api::InfisicalClient;
use crate::config::InitConfig;
use crate::error::Fatal;
use crate::sink::Outputs;
use crate::source::Source;

/// Runs `init`.
pub async fn run(config: InitConfig) -> Result<(), Fatal> {
    let mut outputs = Outputs::new(config.output);
    let client = InfisicalClient::new(&config.source.api)?;
    let mut source = Source::new(config.source, Arc::new(client), false);
    let (secrets, _) = super::fetch_once(&mut source, config.retry_deadline).await?;
    let outcome = outputs.write(&secrets)?;
    tracing::info!(secrets = secrets.len(), outcome = ?outcome, "secrets written");
    Ok(())
}
