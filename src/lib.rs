//! infisical-materializer: fetches secrets from Infisical with the pod's credentials and
//! materializes them as files (init, sidecar) or as a command's environment (exec).
//!
//! `main.rs` parses the command line and calls [`run`]; each concern lives in its own module,
//! and imports point down these layers only:
//!
//! - [`cli`] (the raw flags) → [`config`] (one validated configuration per mode);
//! - [`mode`]: `check`, `init`, `sidecar`, `exec` (a folder: program, environment, supervise),
//!   `install`; the long-running modes are `select!` loops over the [`refresh`] engine;
//!   [`migrate`] (ESO objects or an agent configuration to a configuration file) beside them;
//! - [`refresh`] (polling, token renewal, backoff), [`source`] (one fetch: list, merge, select),
//!   [`sink`] (atomic files), [`health`], [`on_change`], [`watch`], [`diagnose`] (advice);
//! - [`auth`] (credentials and the token's lifecycle), [`api`] (the Infisical client and its
//!   errors, behind the [`api::Infisical`] trait), [`backoff`];
//! - [`secrets`] (zeroizing values, merge and key rules), [`error`] (exit codes);
//! - [`hardening`]: the process is not dumpable, and `--mlock` keeps it out of swap.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod backoff;
pub mod cli;
pub mod config;
pub mod diagnose;
pub mod error;
pub mod hardening;
pub mod health;
pub mod logging;
pub mod migrate;
pub mod mode;
pub mod on_change;
pub mod refresh;
pub mod secrets;
pub mod shutdown;
pub mod sink;
pub mod source;
pub mod utc;
pub mod watch;

use std::process::ExitCode;

use cli::{Cli, Command, Explicit};
use config::{CheckConfig, ConfigFile, ExecConfig, InitConfig, ProcessEnv, SidecarConfig};
use error::{exit, Fatal};
use mode::exec::ExecError;

/// Runs the parsed command line, with the configuration file (if any) under the options given
/// explicitly, and returns the process exit code. Every failure has been logged as one line by
/// then.
pub fn run(cli: Cli, explicit: Explicit, file: Option<ConfigFile>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return report(Fatal::new(
                exit::UNAVAILABLE,
                format!("cannot start the async runtime: {error}"),
            ))
        }
    };
    let env = ProcessEnv;
    // Each mode gets its configuration checked as a whole; a mistake exits 64 before any request.
    let result = runtime.block_on(async {
        match cli.command {
            Command::Check(args) => {
                let config = CheckConfig::load(&args, &env, file.as_ref(), &explicit)?;
                lock_memory_if_asked(&config.fetch)?;
                mode::check::run(config).await.map(|()| None)
            }
            Command::Init(args) => {
                let config = InitConfig::load(&args, &env, file.as_ref(), &explicit)?;
                lock_memory_if_asked(&config.fetch)?;
                mode::init::run(config).await.map(|()| None)
            }
            Command::Sidecar(args) => {
                // Handlers before anything else: a TERM during startup must not kill the
                // sidecar with the default action.
                let shutdown = shutdown::on_termination().map_err(|e| {
                    Fatal::new(
                        exit::UNAVAILABLE,
                        format!("cannot install signal handlers: {e}"),
                    )
                })?;
                let config = SidecarConfig::load(&args, &env, file.as_ref(), &explicit)?;
                lock_memory_if_asked(&config.fetch)?;
                // A change to the configuration file or to a template is applied live.
                let reload = mode::sidecar::Reload::new(file.map(|file| file.path), args, explicit);
                mode::sidecar::run(config, shutdown, reload)
                    .await
                    .map(|()| None)
            }
            Command::Exec(args) => {
                // With --watch every catchable signal is forwarded, so its handlers come first
                // for the same reason.
                let signals = if args.watch {
                    Some(mode::exec::supervise::Signals::install().map_err(ExecError::Signals)?)
                } else {
                    None
                };
                let config = ExecConfig::load(&args, &env, file.as_ref(), &explicit)?;
                lock_memory_if_asked(&config.fetch)?;
                mode::exec::run(config, signals).await.map(Some)
            }
            Command::Install(args) => mode::install::run(&args).map(|()| None),
            Command::Migrate(from) => migrate::run(from).await.map(|()| None),
        }
    });
    // exec replaces the process: the runtime (its threads, sockets, epoll) goes first.
    drop(runtime);
    match result {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(mode::exec::Outcome::Exited(code))) => ExitCode::from(code),
        Ok(Some(mode::exec::Outcome::Replace(prepared))) => report(prepared.exec().into()),
        Err(fatal) => report(fatal),
    }
}

/// `--mlock`: locks the process's memory before the first request, saying how much is locked.
fn lock_memory_if_asked(fetch: &config::FetchConfig) -> Result<(), Fatal> {
    if fetch.mlock {
        match hardening::lock_memory()? {
            Some(bytes) => tracing::info!(
                locked_kib = bytes / 1024,
                "--mlock: locked {} KiB of memory; it will never be swapped out",
                bytes / 1024
            ),
            None => tracing::info!("--mlock: memory locked; it will never be swapped out"),
        }
    }
    Ok(())
}

/// Logs the failure as one line and turns it into the exit code.
pub fn report(fatal: Fatal) -> ExitCode {
    tracing::error!(exit_code = fatal.code, "{}", fatal.message);
    fatal.exit_code()
}
