//! `sidecar`: write the secrets, report ready, keep them fresh, tell the app, survive outages.

use std::sync::Arc;

use tokio::time::{sleep_until, Instant};

use crate::api::InfisicalClient;
use crate::config::SidecarConfig;
use crate::diagnose;
use crate::error::{exit, Fatal};
use crate::health::{self, Health, RefreshResult};
use crate::on_change::OnChange;
use crate::refresh::{Refresh, Refresher};
use crate::shutdown;
use crate::sink::{Outputs, WriteOutcome};
use crate::source::Source;
use crate::watch;

/// Runs the sidecar until SIGTERM/SIGINT; returns Ok (exit 0) then.
pub async fn run(config: SidecarConfig) -> Result<(), Fatal> {
    // Handlers first: a TERM during startup must not kill us with the default action.
    let shutdown = shutdown::on_termination().map_err(|e| {
        Fatal::new(
            exit::UNAVAILABLE,
            format!("cannot install signal handlers: {e}"),
        )
    })?;
    let SidecarConfig {
        source: source_config,
        output,
        timing,
        on_change,
        listen,
        max_staleness,
        renew_token,
    } = config;
    let mut outputs = Outputs::new(output);
    let on_change = OnChange::new(on_change)?;
    let client = Arc::new(
        InfisicalClient::new(&source_config.api).map_err(|e| Fatal::new(exit::USAGE, e.0))?,
    );
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
    let mut credential_watch = watch::watch_credentials(&source_config.auth.watched_files());
    let mut refresher = Refresher::new(
        Source::new(source_config, client, renew_token),
        timing.interval,
        timing.jitter,
    );
    tracing::info!(
        interval = %humantime::format_duration(timing.interval),
        "sidecar started"
    );

    tokio::pin!(shutdown);
    let mut next_refresh = Instant::now();
    // After a failed renewal, the token waits for the backoff instead of waking us at once.
    let mut token_hold = Instant::now();
    loop {
        let wake = match refresher.token_due() {
            Some(due) if due.max(token_hold) < next_refresh => due.max(token_hold),
            _ => next_refresh,
        };
        tokio::select! {
            signal = &mut shutdown => {
                tracing::info!("{signal} received; stopping (files are left in place)");
                return Ok(());
            }
            Some(()) = recv(&mut credential_watch) => {
                refresher.source_mut().auth().reload_credentials();
                continue;
            }
            () = sleep_until(wake) => {}
        }
        if Instant::now() < next_refresh {
            // Woken for the token only.
            if let Err(error) = refresher.maintain_token().await {
                let fatal = diagnose::fetch_failure(&error, refresher.source().config());
                tracing::warn!("token renewal failed: {}", fatal.message);
                token_hold = Instant::now() + refresher.delay_after_failure(&error);
            }
            health.set_token_expiry(refresher.source().auth_ref().expires_at());
            continue;
        }
        // A refresh in flight is abandoned on shutdown; writing is not interrupted once begun.
        let refreshed = tokio::select! {
            signal = &mut shutdown => {
                tracing::info!("{signal} received during a refresh; stopping (files are left in place)");
                return Ok(());
            }
            refreshed = refresher.refresh() => refreshed,
        };
        health.set_token_expiry(refresher.source().auth_ref().expires_at());
        let delay = match refreshed {
            Ok(Refresh::Unchanged) => {
                tracing::debug!("secrets unchanged");
                health.record(RefreshResult::Unchanged, None);
                refresher.delay_after_success()
            }
            Ok(Refresh::Changed(secrets)) => match outputs.write(&secrets) {
                Ok(outcome) => {
                    let result = match outcome {
                        WriteOutcome::Unchanged => RefreshResult::Unchanged,
                        WriteOutcome::Created | WriteOutcome::Updated => RefreshResult::Changed,
                    };
                    tracing::info!(secrets = secrets.len(), outcome = ?outcome, "secrets written");
                    health.record(result, Some(secrets.len()));
                    // The first write into an empty target tells nobody: no app has read anything yet.
                    if outcome == WriteOutcome::Updated && !on_change.is_empty() {
                        on_change.notify().await;
                    }
                    refresher.delay_after_success()
                }
                Err(error) => {
                    tracing::error!(
                        exit_code = error.exit_code(),
                        "{error}; keeping the last good files and retrying"
                    );
                    health.record(RefreshResult::Error, None);
                    refresher.forget();
                    refresher.delay_after_failure_plain()
                }
            },
            Err(error) => {
                let fatal = diagnose::fetch_failure(&error, refresher.source().config());
                let delay = refresher.delay_after_failure(&error);
                tracing::warn!(
                    retry_in_ms = delay.as_millis() as u64,
                    "{}; keeping the last good files",
                    fatal.message
                );
                health.record(RefreshResult::Error, None);
                delay
            }
        };
        next_refresh = Instant::now() + delay;
    }
}

async fn recv(watch: &mut Option<watch::CredentialWatch>) -> Option<()> {
    match watch {
        Some(watch) => watch.changes.recv().await,
        None => std::future::pending().await,
    }
}
