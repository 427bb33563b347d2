//! One shutdown future for SIGTERM and SIGINT.

use tokio::signal::unix::{signal, SignalKind};

/// Resolves when SIGTERM or SIGINT arrives. Install it early: signals that arrive before the
/// handlers exist would kill the process with the default action.
pub fn on_termination() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        }
    })
}
