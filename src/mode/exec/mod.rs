//! `exec`: fetch the secrets, then become COMMAND with them in its environment, or, with
//! `--watch`, run COMMAND as a child and restart it when they change ([`supervise`]).
//!
//! Without `--watch` the process is replaced with `execve`, so the app keeps this PID and gets
//! signals directly. The tokio runtime must be gone by then, so [`run`] only prepares the call
//! ([`Prepared`]) and `lib.rs` makes it after the runtime is dropped.
//!
//! The parts: [`program`] finds COMMAND and execs it, [`environment`] makes its environment,
//! [`supervise`] runs it as a child under `--watch`.

pub mod environment;
pub mod error;
pub mod program;
pub mod supervise;

use std::sync::Arc;

use crate::api::InfisicalClient;
use crate::cli::CONSUMED_ENV_VARS;
use crate::config::ExecConfig;
use crate::error::Fatal;
use crate::refresh::{Engine, Wording};
use crate::sink::Outputs;
use crate::source::Sources;
use crate::watch;

pub use environment::{ChildEnv, EnvRecipe};
pub use error::ExecError;
pub use program::{Prepared, Program};
use supervise::{Signals, Supervision};

/// What `exec` leaves for the caller to do once the runtime is gone.
pub enum Outcome {
    /// Replace this process with the prepared command.
    Replace(Prepared),
    /// `--watch` ended: exit with the child's status (or 128+N if it died of signal N).
    Exited(u8),
}

/// Runs the async part of `exec`: fetches, and either prepares the `execve` or supervises the
/// command (`--watch`, with `signals` installed before anything else) until it exits.
pub async fn run(config: ExecConfig, signals: Option<Signals>) -> Result<Outcome, Fatal> {
    let watch = signals.zip(config.watch);
    let recipe = EnvRecipe {
        inherited: std::env::vars_os().collect(),
        policy: config.invalid_keys,
        preserve_env: config.preserve_env,
        keep: config.keep_env,
    };
    for name in &recipe.keep {
        if !CONSUMED_ENV_VARS.contains(name) {
            tracing::warn!(
                "--keep-env {name}: this tool does not read {name}, so it is passed on anyway"
            );
        }
    }
    // A typo in COMMAND fails at once, before any request is sent.
    let program = Program::resolve(&config.command, std::env::var_os("PATH").as_deref())?;
    let client = InfisicalClient::new(&config.fetch.api)?;
    let mut sources = Sources::new(config.fetch, Arc::new(client), false);

    // Templates are rendered before the command starts, so an app that reads a config file can
    // be started by the wrapper too.
    let mut templates = Outputs::new(config.templates);
    let Some((mut signals, watch)) = watch else {
        let secrets = super::fetch_once(&mut sources, config.retry_deadline).await?;
        templates.write(&secrets)?;
        let child_env = recipe.build(secrets)?;
        // Rust ignores SIGPIPE and an ignored signal stays ignored across execve, so the app
        // would get EPIPE where it expects to die quietly (`app | head`). A handled signal is
        // reset to the default by execve, and registering one needs no unsafe code.
        if let Err(error) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::pipe()) {
            tracing::warn!("cannot reset SIGPIPE for the command: {error}");
        }
        tracing::info!(
            secrets = child_env.secret_count(),
            command = program.name(),
            "starting the command"
        );
        return Ok(Outcome::Replace(Prepared::new(&program, &child_env)?));
    };

    let secrets = tokio::select! {
        fetched = super::fetch_once(&mut sources, config.retry_deadline) => fetched?,
        signal = signals.termination() => {
            tracing::info!("{signal} received before the command started; exiting");
            return Ok(Outcome::Exited(128 + signal as u8));
        }
    };
    let credentials =
        watch::watch_files(&sources.config().auth.watched_files(), "credential files");
    let engine = Engine::new(sources, watch.timing, WORDING)
        .after_first_fetch(&secrets)
        .watching(credentials);
    templates.write(&secrets)?;
    let child_env = recipe.build(secrets)?;
    let supervision = Supervision {
        restart_signal: watch.restart_signal,
        grace: watch.grace,
    };
    let code = supervise::run(
        &program,
        &recipe,
        &mut templates,
        child_env,
        engine,
        signals,
        supervision,
    )
    .await?;
    Ok(Outcome::Exited(code))
}

/// What the outage lines say while the command runs.
const WORDING: Wording = Wording {
    keeping: "the command keeps running with the previous secrets",
    nothing_yet: "the command keeps running with the previous secrets",
};
