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
use crate::cli::{ExecArgs, CONSUMED_ENV_VARS};
use crate::config::{self, ConfigError, Environment, SourceConfig};
use crate::error::Fatal;
use crate::on_change::parse_signal;
use crate::refresh::{Engine, Timing, Wording};
use crate::source::Source;

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

/// Runs the async part of `exec`: validates, fetches, and either prepares the `execve` or
/// supervises the command (`--watch`) until it exits.
pub async fn run(args: ExecArgs, env: &dyn Environment) -> Result<Outcome, Fatal> {
    // With --watch every catchable signal is forwarded, so handlers come first: a TERM during
    // startup must not kill the wrapper with the default action.
    let signals = if args.watch {
        Some(Signals::install().map_err(ExecError::Signals)?)
    } else {
        None
    };
    let source_config = SourceConfig::from_args(&args.source, env)?;
    let recipe = EnvRecipe {
        inherited: std::env::vars_os().collect(),
        policy: config::invalid_keys(&args.keys)?,
        preserve_env: args.preserve_env,
        keep: args.keep_env.clone(),
    };
    for name in &args.keep_env {
        if !CONSUMED_ENV_VARS.contains(&name.as_str()) {
            tracing::warn!(
                "--keep-env {name}: this tool does not read {name}, so it is passed on anyway"
            );
        }
    }
    // A typo in COMMAND fails at once, before any request is sent.
    let program = Program::resolve(&args.command, std::env::var_os("PATH").as_deref())?;
    let client = InfisicalClient::new(&source_config.api)?;
    let mut source = Source::new(source_config, Arc::new(client), false);

    let Some(mut signals) = signals else {
        let (secrets, _) = super::fetch_once(&mut source).await?;
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

    let supervision = Supervision {
        restart_signal: parse_signal(&args.restart_signal).map_err(|error| match error {
            ConfigError::Invalid { value, reason, .. } => ConfigError::Invalid {
                option: "--restart-signal",
                value,
                reason,
            },
            other => other,
        })?,
        grace: args.grace,
    };
    let (interval, jitter) = config::refresh_timing(&args.refresh)?;

    let (secrets, etag) = tokio::select! {
        fetched = super::fetch_once(&mut source) => fetched?,
        signal = signals.termination() => {
            tracing::info!("{signal} received before the command started; exiting");
            return Ok(Outcome::Exited(128 + signal as u8));
        }
    };
    let engine =
        Engine::new(source, Timing { interval, jitter }, WORDING).after_first_fetch(&secrets, etag);
    let child_env = recipe.build(secrets)?;
    let code = supervise::run(&program, &recipe, child_env, engine, signals, supervision).await?;
    Ok(Outcome::Exited(code))
}

/// What the outage lines say while the command runs.
const WORDING: Wording = Wording {
    keeping: "the command keeps running with the previous secrets",
    nothing_yet: "the command keeps running with the previous secrets",
};
