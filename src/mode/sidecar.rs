//! `sidecar`: write the secrets, report ready, keep them fresh, tell the app, survive outages,
//! and apply a changed configuration file without a restart.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::api::{Infisical, InfisicalClient};
use crate::cli::{Explicit, SidecarArgs};
use crate::config::{ConfigError, ConfigFile, ProcessEnv, SidecarConfig};
use crate::error::{exit, Fatal};
use crate::health::{self, Health, RefreshResult};
use crate::on_change::OnChange;
use crate::refresh::{Engine, Event, Running, Wording};
use crate::secrets::SecretSet;
use crate::sink::{Outputs, WriteOutcome};
use crate::source::Sources;
use crate::watch::{self, FileWatch};

/// What the outage lines say the sidecar keeps doing.
const WORDING: Wording = Wording {
    keeping: "keeping the last good files",
    nothing_yet: "not ready yet: nothing written",
};

/// How long a burst of file events (an editor's writes, kubelet's `..data` swap) is given to
/// settle before the configuration is read again.
const SETTLE: Duration = Duration::from_millis(200);

/// How the sidecar reads its configuration again when the configuration file or a template
/// source changes.
pub struct Reload {
    /// The configuration file, if any.
    path: Option<PathBuf>,
    args: SidecarArgs,
    explicit: Explicit,
}

impl Reload {
    /// Reloads under the same command line, from `path` (`--config`) if given.
    pub fn new(path: Option<PathBuf>, args: SidecarArgs, explicit: Explicit) -> Self {
        Self {
            path,
            args,
            explicit,
        }
    }

    /// The configuration as the files now say.
    fn load(&self) -> Result<SidecarConfig, ConfigError> {
        let file = self.path.as_deref().map(ConfigFile::load).transpose()?;
        SidecarConfig::load(&self.args, &ProcessEnv, file.as_ref(), &self.explicit)
    }

    /// The files whose change changes `config`.
    fn watched(&self, config: &SidecarConfig) -> Vec<PathBuf> {
        config.watched_files(self.path.as_deref())
    }
}

/// Runs the sidecar until `shutdown` resolves (SIGTERM/SIGINT, see
/// [`crate::shutdown::on_termination`]); returns Ok (exit 0) then. A change to the
/// configuration file or a template source is validated with `reload` and applied at once; a
/// bad one is logged and the running configuration stays.
pub async fn run(
    config: SidecarConfig,
    shutdown: impl Future<Output = &'static str>,
    reload: Reload,
) -> Result<(), Fatal> {
    let client = Arc::new(InfisicalClient::new(&config.fetch.api)?);
    let health = Arc::new(Health::new(config.max_staleness, client.request_counts()));
    if let Some(address) = config.listen {
        let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
            Fatal::new(
                exit::USAGE,
                format!("--listen {address}: cannot listen there: {e}"),
            )
        })?;
        tracing::info!("health endpoints on http://{address}/healthz, /readyz, /metrics");
        tokio::spawn(health::serve(listener, Arc::clone(&health)));
    }
    let mut config_watch = watch::watch_files(
        &reload.watched(&config),
        "the configuration file and its templates",
    );
    let mut sidecar = Sidecar {
        outputs: Outputs::new(config.output.clone()),
        on_change: OnChange::new(config.on_change.clone())?,
        refresh: start(&config, Arc::clone(&client) as Arc<dyn Infisical>),
        config,
        client,
        health,
        last: None,
    };
    tracing::info!(
        interval = %humantime::format_duration(sidecar.config.timing.interval),
        "sidecar started"
    );

    tokio::pin!(shutdown);
    loop {
        // A refresh in flight is abandoned on shutdown; a write is not interrupted once begun.
        tokio::select! {
            signal = &mut shutdown => {
                tracing::info!("{signal} received; stopping (files are left in place)");
                return Ok(());
            }
            event = sidecar.refresh.next() => sidecar.handle(event).await,
            Some(()) = watch::changed(&mut config_watch) => {
                // Let the burst settle, then read what is there now.
                tokio::time::sleep(SETTLE).await;
                if let Some(watch) = &mut config_watch {
                    while watch.changes.try_recv().is_ok() {}
                }
                sidecar.reload(&reload, config_watch.as_mut()).await;
            }
        }
    }
}

/// Starts the refresh engine for `config`.
fn start(config: &SidecarConfig, client: Arc<dyn Infisical>) -> Running {
    let credential_watch =
        watch::watch_files(&config.fetch.auth.watched_files(), "credential files");
    let sources = Sources::new(config.fetch.clone(), client, config.renew_token);
    Engine::new(sources, config.timing, WORDING)
        .watching(credential_watch)
        .spawn()
}

/// The running sidecar: its configuration, outputs and engine.
struct Sidecar {
    config: SidecarConfig,
    client: Arc<InfisicalClient>,
    health: Arc<Health>,
    outputs: Outputs,
    on_change: OnChange,
    refresh: Running,
    /// The secrets last written, to render again when only the outputs' configuration changed.
    last: Option<SecretSet>,
}

impl Sidecar {
    async fn handle(&mut self, event: Event) {
        match event {
            Event::Unchanged => {
                tracing::debug!("secrets unchanged");
                self.health.record(RefreshResult::Unchanged, None);
            }
            Event::Failed => self.health.record(RefreshResult::Error, None),
            Event::TokenExpiry(expiry) => self.health.set_token_expiry(expiry),
            Event::Changed(secrets, ack) => {
                let written = self.write(&secrets).await;
                ack.applied(written);
                if written {
                    self.last = Some(secrets);
                }
            }
        }
    }

    /// Writes every output; tells the app when files changed. Returns whether it worked.
    async fn write(&mut self, secrets: &SecretSet) -> bool {
        match self.outputs.write(secrets) {
            Ok(outcome) => {
                let result = match outcome {
                    WriteOutcome::Unchanged => RefreshResult::Unchanged,
                    WriteOutcome::Created | WriteOutcome::Updated => RefreshResult::Changed,
                };
                tracing::info!(secrets = secrets.len(), outcome = ?outcome, "secrets written");
                self.health.record(result, Some(secrets.len()));
                // The first write into an empty target tells nobody: no app has read anything yet.
                if outcome == WriteOutcome::Updated && !self.on_change.is_empty() {
                    self.on_change.notify().await;
                }
                true
            }
            Err(error) => {
                tracing::error!(
                    exit_code = error.exit_code(),
                    "{error}; keeping the last good files and retrying with backoff"
                );
                self.health.record(RefreshResult::Error, None);
                false
            }
        }
    }

    /// Reads the configuration again and applies it, or keeps the running one when the new
    /// one is refused. New template sources join the watch before anything is rendered, and
    /// the watch itself is kept, so a change made meanwhile is seen.
    async fn reload(&mut self, reload: &Reload, watch: Option<&mut FileWatch>) {
        let new = match reload.load() {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::error!(
                    exit_code = error.exit_code(),
                    "configuration change refused: {error}; the previous configuration stays in use"
                );
                self.health.record_reload(false);
                return;
            }
        };
        let on_change = match OnChange::new(new.on_change.clone()) {
            Ok(on_change) => on_change,
            Err(error) => {
                tracing::error!(
                    "configuration change refused: {}; the previous configuration stays in use",
                    error.message
                );
                self.health.record_reload(false);
                return;
            }
        };
        if let Some(watch) = watch {
            watch.add(&reload.watched(&new));
        }
        self.health.record_reload(true);
        if new.listen != self.config.listen || new.max_staleness != self.config.max_staleness {
            tracing::warn!(
                "listen and max-staleness changes take effect when the sidecar restarts"
            );
        }
        let refetch = new.fetch != self.config.fetch
            || new.timing != self.config.timing
            || new.renew_token != self.config.renew_token;
        self.outputs = Outputs::new(new.output.clone());
        self.on_change = on_change;
        self.config = new;
        if refetch {
            tracing::info!("configuration reloaded: sources changed; fetching again");
            self.refresh = start(&self.config, Arc::clone(&self.client) as Arc<dyn Infisical>);
        } else {
            tracing::info!("configuration reloaded; rendering the outputs again");
            if let Some(secrets) = self.last.take() {
                self.write(&secrets).await;
                self.last = Some(secrets);
            }
        }
    }
}
