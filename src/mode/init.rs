//! `init`: fetch once, write every output (all or nothing), exit.

use std::sync::Arc;

use crate::api::InfisicalClient;
use crate::config::InitConfig;
use crate::error::Fatal;
use crate::sink::Outputs;
use crate::source::Sources;

/// Runs `init`.
pub async fn run(config: InitConfig) -> Result<(), Fatal> {
    let mut outputs = Outputs::new(config.output);
    let client = InfisicalClient::new(&config.fetch.api)?;
    let mut sources = Sources::new(config.fetch, Arc::new(client), false);
    let secrets = super::fetch_once(&mut sources, config.retry_deadline).await?;
    let outcome = outputs.write(&secrets)?;
    tracing::info!(secrets = secrets.len(), outcome = ?outcome, "secrets written");
    Ok(())
}
