//! `init`: fetch once, write every output (all or nothing), exit.

use std::sync::Arc;

use crate::api::InfisicalClient;
use crate::config::InitConfig;
use crate::error::Fatal;
use crate::sink::Outputs;
use crate::source::Source;

/// Runs `init`.
pub async fn run(config: InitConfig) -> Result<(), Fatal> {
    let InitConfig {
        source: source_config,
        output,
    } = config;
    let mut outputs = Outputs::new(output);
    let client = InfisicalClient::new(&source_config.api)?;
    let mut source = Source::new(source_config, Arc::new(client), false);
    let (secrets, _) = super::fetch_once(&mut source).await?;
    let outcome = outputs.write(&secrets)?;
    tracing::info!(secrets = secrets.len(), outcome = ?outcome, "secrets written");
    Ok(())
}
