//! Telling the app that its secrets changed: a signal to a pid from a file, a command run
//! directly (the image has no shell), or an HTTP POST. Failures are logged, never fatal.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cli::{SidecarArgs, CONSUMED_ENV_VARS};
use crate::config::ConfigError;

/// Parses `HUP`, `SIGHUP`, `hup` or a number.
pub fn parse_signal(text: &str) -> Result<Signal, ConfigError> {
    let upper = text.trim().to_ascii_uppercase();
    let parsed = match upper.parse::<i32>() {
        Ok(number) => Signal::try_from(number).ok(),
        Err(_) if upper.starts_with("SIG") => Signal::from_str(&upper).ok(),
        Err(_) => Signal::from_str(&format!("SIG{upper}")).ok(),
    };
    parsed.ok_or_else(|| ConfigError::Invalid {
        option: "signal",
        value: text.to_owned(),
        reason: "not a signal name; use e.g. HUP, TERM, USR1".into(),
    })
}

/// The configured notifications.
pub struct OnChange {
    signal: Option<(Signal, PathBuf)>,
    command: Option<Vec<String>>,
    command_timeout: Duration,
    url: Option<String>,
    http: Option<reqwest::Client>,
}

impl OnChange {
    /// Validates the `--on-change-*` options.
    pub fn from_args(args: &SidecarArgs) -> Result<Self, ConfigError> {
        let signal = match (&args.on_change_signal, &args.on_change_pid_file) {
            (Some(signal), Some(pid_file)) => Some((parse_signal(signal)?, pid_file.clone())),
            (Some(signal), None) => {
                return Err(ConfigError::Invalid {
                    option: "--on-change-signal",
                    value: signal.clone(),
                    reason:
                        "needs --on-change-pid-file (the app's pid, with shareProcessNamespace)"
                            .into(),
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError::Invalid {
                    option: "--on-change-pid-file",
                    value: String::new(),
                    reason: "needs --on-change-signal".into(),
                })
            }
            (None, None) => None,
        };
        let command = match &args.on_change_exec {
            Some(line) => {
                let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
                if words.is_empty() {
                    return Err(ConfigError::Invalid {
                        option: "--on-change-exec",
                        value: line.clone(),
                        reason: "is empty".into(),
                    });
                }
                Some(words)
            }
            None => None,
        };
        let (url, http) = match &args.on_change_url {
            Some(url) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError::Invalid {
                        option: "--on-change-url",
                        value: url.clone(),
                        reason: "must be an http:// or https:// URL".into(),
                    });
                }
                let client = reqwest::Client::builder()
                    .use_rustls_tls()
                    .user_agent(crate::api::USER_AGENT)
                    .timeout(args.on_change_timeout)
                    .build()
                    .map_err(|e| ConfigError::Invalid {
                        option: "--on-change-url",
                        value: url.clone(),
                        reason: e.to_string(),
                    })?;
                (Some(url.clone()), Some(client))
            }
            None => (None, None),
        };
        Ok(Self {
            signal,
            command,
            command_timeout: args.on_change_timeout,
            url,
            http,
        })
    }

    /// Whether anything is configured.
    pub fn is_empty(&self) -> bool {
        self.signal.is_none() && self.command.is_none() && self.url.is_none()
    }

    /// Runs every configured notification once.
    pub async fn notify(&self) {
        if let Some((signal, pid_file)) = &self.signal {
            send_signal(*signal, pid_file);
        }
        if let Some(command) = &self.command {
            self.run_command(command).await;
        }
        if let (Some(url), Some(http)) = (&self.url, &self.http) {
            match http.post(url).send().await {
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
        for name in CONSUMED_ENV_VARS {
            child.env_remove(name);
        }
        let name = &command[0];
        let status = match child.spawn() {
            Ok(mut child) => tokio::time::timeout(self.command_timeout, child.wait()).await,
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
                humantime::format_duration(self.command_timeout)
            ),
        }
    }
}

fn send_signal(signal: Signal, pid_file: &PathBuf) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_with_or_without_prefix() {
        assert_eq!(parse_signal("HUP").unwrap(), Signal::SIGHUP);
        assert_eq!(parse_signal("SIGHUP").unwrap(), Signal::SIGHUP);
        assert_eq!(parse_signal("usr1").unwrap(), Signal::SIGUSR1);
        assert_eq!(parse_signal("15").unwrap(), Signal::SIGTERM);
        assert!(parse_signal("SIGNOPE").is_err());
    }
}
