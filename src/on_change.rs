//! Telling the app that its secrets changed: a signal to a pid from a file, a command run
//! directly (the image has no shell), or an HTTP POST. Failures are logged, never fatal.

use std::path::Path;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cli::CONSUMED_ENV_VARS;
use crate::config::OnChangeConfig;
use crate::error::{exit, Fatal};

/// The configured notifications.
pub struct OnChange {
    config: OnChangeConfig,
    http: Option<reqwest::Client>,
}

impl OnChange {
    /// Sets up the notifications [`OnChangeConfig`] describes (an HTTP client for the URL).
    pub fn new(config: OnChangeConfig) -> Result<Self, Fatal> {
        let http = match &config.url {
            Some(url) => Some(
                reqwest::Client::builder()
                    .use_rustls_tls()
                    .user_agent(crate::api::USER_AGENT)
                    .timeout(config.timeout)
                    .build()
                    .map_err(|e| {
                        Fatal::new(
                            exit::USAGE,
                            format!("--on-change-url {url}: cannot set up an HTTP client: {e}"),
                        )
                    })?,
            ),
            None => None,
        };
        Ok(Self { config, http })
    }

    /// Whether anything is configured.
    pub fn is_empty(&self) -> bool {
        self.config.signal.is_none() && self.config.command.is_none() && self.config.url.is_none()
    }

    /// Runs every configured notification once.
    pub async fn notify(&self) {
        if let Some(target) = &self.config.signal {
            send_signal(target.signal, &target.pid_file);
        }
        if let Some(command) = &self.config.command {
            self.run_command(command).await;
        }
        if let (Some(url), Some(http)) = (&self.config.url, &self.http) {
            match http.post(url.clone()).send().await {
                Ok(response) if response.status().is_success() => {
                    tracing::info!(status = response.status().as_u16(), "notified {url}");
                }
                Ok(response) => tracing::warn!(
                    "--on-change-url {url} answered HTTP {}; the app may not have reloaded",
                    response.status().as_u16()
                ),
                Err(error) => tracing::warn!("--on-change-url {url} failed: {error}"),
            }
        }
    }

    async fn run_command(&self, command: &[String]) {
        let mut child = tokio::process::Command::new(&command[0]);
        child
            .args(&command[1..])
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null());
        // The hook must not see the credentials this process uses.
        for name in CONSUMED_ENV_VARS.iter() {
            child.env_remove(name);
        }
        let name = &command[0];
        let status = match child.spawn() {
            Ok(mut child) => tokio::time::timeout(self.config.timeout, child.wait()).await,
            Err(error) => {
                tracing::warn!("--on-change-exec {name}: cannot start it: {error}");
                return;
            }
        };
        match status {
            Ok(Ok(status)) if status.success() => {
                tracing::info!("--on-change-exec {name} succeeded")
            }
            Ok(Ok(status)) => tracing::warn!("--on-change-exec {name} failed: {status}"),
            Ok(Err(error)) => tracing::warn!("--on-change-exec {name}: {error}"),
            Err(_) => tracing::warn!(
                "--on-change-exec {name} did not finish within {}; killed it",
                humantime::format_duration(self.config.timeout)
            ),
        }
    }
}

fn send_signal(signal: Signal, pid_file: &Path) {
    let pid = match std::fs::read_to_string(pid_file) {
        Ok(text) => match text.trim().parse::<i32>() {
            Ok(pid) if pid > 0 => pid,
            _ => {
                tracing::warn!(
                    "--on-change-pid-file {} does not hold a pid",
                    pid_file.display()
                );
                return;
            }
        },
        Err(error) => {
            tracing::warn!("--on-change-pid-file {}: {error}", pid_file.display());
            return;
        }
    };
    match kill(Pid::from_raw(pid), signal) {
        Ok(()) => tracing::info!(pid, "sent {signal} to the app"),
        Err(error) => tracing::warn!(
            pid,
            "cannot send {signal}: {error} (is shareProcessNamespace on, and do both run as the same user?)"
        ),
    }
}
