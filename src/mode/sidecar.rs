//! `sidecar`: write the secrets, report ready, keep them fresh, tell the app, survive outages.

use std::future::Future;
use std::sync::Arc;

use crate::api::InfisicalClient;
use crate::config::SidecarConfig;
use crate::error::{exit, Fatal};
use crate::health::{self, Health, RefreshResult};
use crate::on_change::OnChange;
use crate::refresh::{Engine, Event, Wording};
use crate::sink::{Outputs, WriteOutcome};
use crate::source::Sources;
use crate::watch;

/// Runs the sidecar until `shutdown` resolves (SIGTERM/SIGINT, see
/// [`crate::shutdown::on_termination`]); returns Ok (exit 0) then.
pub async fn run(
    config: SidecarConfig,
    shutdown: impl Future<Output = &'static str>,
) -> Result<(), Fatal> {
    let SidecarConfig {
        fetch,
        output,
        timing,
        on_change,
        listen,
        max_staleness,
        renew_token,
    } = config;
    let mut outputs = Outputs::new(output);
    let on_change = OnChange::new(on_change)?;
    let client = Arc::new(InfisicalClient::new(&fetch.api)?);
    let health = Arc::new(Health::new(max_staleness, client.request_counts()));
    if let Some(address) = listen {
        let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
            Fatal::new(
                exit::USAGE,
                format!("--listen {address}: cannot listen there: {e}"),
            )
        })?;
        tracing::info!("health endpoints on http://{address}/healthz, /readyz, /metrics");
        tokio::spawn(health::serve(listener, Arc::clone(&health)));
    }
    let credential_watch = watch::watch_credentials(&fetch.auth.watched_files());
    let sources = Sources::new(fetch, client, renew_token);
    let mut refresh = Engine::new(sources, timing, WORDING)
        .watching(credential_watch)
        .spawn();
    tracing::info!(
        interval = %humantime::format_duration(timing.interval),
        "sidecar started"
    );

    tokio::pin!(shutdown);
    loop {
        // A refresh in flight is abandoned on shutdown; a write is not interrupted once begun.
        let event = tokio::select! {
            signal = &mut shutdown => {
                tracing::info!("{signal} received; stopping (files are left in place)");
                return Ok(());
            }
            event = refresh.next() => event,
        };
        match event {
            Event::Unchanged => {
                tracing::debug!("secrets unchanged");
                health.record(RefreshResult::Unchanged, None);
            }
            Event::Failed => health.record(RefreshResult::Error, None),
            Event::TokenExpiry(expiry) => health.set_token_expiry(expiry),
            Event::Changed(secrets, ack) => match outputs.write(&secrets) {
                Ok(outcome) => {
                    let result = match outcome {
                        WriteOutcome::Unchanged => RefreshResult::Unchanged,
                        WriteOutcome::Created | WriteOutcome::Updated => RefreshResult::Changed,
                    };
                    tracing::info!(secrets = secrets.len(), outcome = ?outcome, "secrets written");
                    health.record(result, Some(secrets.len()));
                    ack.applied(true);
                    // The first write into an empty target tells nobody: no app has read anything yet.
                    if outcome == WriteOutcome::Updated && !on_change.is_empty() {
                        on_change.notify().await;
                    }
                }
                Err(error) => {
                    tracing::error!(
                        exit_code = error.exit_code(),
                        "{error}; keeping the last good files and retrying with backoff"
                    );
                    health.record(RefreshResult::Error, None);
                    ack.applied(false);
                }
            },
        }
    }
}

/// What the outage lines say the sidecar keeps doing.
const WORDING: Wording = Wording {
    keeping: "keeping the last good files",
    nothing_yet: "not ready yet: nothing written",
};
