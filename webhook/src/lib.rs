//! infisical-materializer-webhook: a mutating admission webhook that injects the per-pod
//! `infisical-materializer` into pods that ask for it with a label and annotations.
//!
//! Layers, top down: [`server`] (HTTPS, routes, metrics) over [`tls`] (the reloading
//! certificate) and [`admission`] (one AdmissionReview), which reads [`annotations`] into a
//! validated plan and turns it into a JSONPatch with [`inject`]; [`layout`] names the volumes
//! and paths. The webhook never reads a secret: it only wires volumes, containers and flags.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admission;
pub mod annotations;
pub mod cli;
pub mod inject;
pub mod layout;
pub mod server;
pub mod tls;

use std::process::ExitCode;
use std::sync::Arc;

use cli::{Cli, LogFormat};

/// Exit code for a bad flag, certificate or listen address.
pub const EXIT_CONFIG: u8 = 64;

/// Sets up logging, loads the certificate, serves until SIGTERM or SIGINT.
pub fn run(cli: Cli) -> ExitCode {
    init_logging(cli.log_format);
    let cert = match tls::ReloadingCert::new(cli.tls_cert_file.clone(), cli.tls_key_file.clone()) {
        Ok(cert) => cert,
        Err(error) => {
            tracing::error!("{error}: check --tls-cert-file and --tls-key-file");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let _watcher = match cert.watch() {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::error!("{error}");
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        let listener = match tokio::net::TcpListener::bind(&cli.listen).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!("--listen {}: cannot listen: {error}", cli.listen);
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        tracing::info!(
            listen = %cli.listen,
            prefix = %cli.annotation_prefix,
            image = %cli.image,
            "serving"
        );
        let state = Arc::new(server::State {
            settings: admission::Settings {
                prefix: cli.annotation_prefix,
                image: cli.image,
            },
            cert,
            metrics: server::Metrics::default(),
        });
        server::serve(listener, state, shutdown()).await;
        ExitCode::SUCCESS
    })
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install signal handlers: stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn init_logging(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
