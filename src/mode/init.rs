//! `init`: fetch once, write every output (all or nothing), exit.

use std::sync::Arc;

use crate::api::InfisicalClient;
use crate::cli::InitArgs;
use crate::config::{self, Environment, SourceConfig};
use crate::error::Fatal;
use crate::sink::Outputs;
use crate::source::Source;

/// Runs `init`.
pub async fn run(args: InitArgs, env: &dyn Environment) -> Result<(), Fatal> {
    let source_config = SourceConfig::from_args(&args.source, env)?;
    // Output options are checked before anything is sent.
    let mut outputs = Outputs::new(config::output_config(&args.output, true)?);
    let client = InfisicalClient::new(&source_config.api)?;
    let mut source = Source::new(source_config, Arc::new(client), false);
    let (secrets, _) = super::fetch_once(&mut source).await?;
    let outcome = outputs.write(&secrets)?;
    tracing::info!(secrets = secrets.len(), outcome = ?outcome, "secrets written");
    Ok(())
}
