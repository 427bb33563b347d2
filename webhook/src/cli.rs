//! The command line.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::annotations::DEFAULT_PREFIX;

/// The image injected when a pod does not name one: the same placeholder as the examples.
pub const DEFAULT_IMAGE: &str = "ghcr.io/infisical-materializer/infisical-materializer:0.1.0";

/// Mutating admission webhook: injects infisical-materializer into pods labelled
/// `infisical-materializer.io/inject: "true"`, as their annotations say.
#[derive(Debug, Parser)]
#[command(name = "infisical-materializer-webhook", version)]
pub struct Cli {
    /// Address to serve HTTPS on (POST /mutate, /healthz, /readyz, /metrics).
    #[arg(long, default_value = "0.0.0.0:8443", value_name = "IP:PORT")]
    pub listen: String,

    /// PEM certificate chain; reloaded when the file changes (cert-manager rotation).
    #[arg(long, value_name = "FILE", default_value = "/etc/webhook/tls/tls.crt")]
    pub tls_cert_file: PathBuf,

    /// PEM private key of the certificate; reloaded with it.
    #[arg(long, value_name = "FILE", default_value = "/etc/webhook/tls/tls.key")]
    pub tls_key_file: PathBuf,

    /// Prefix of the annotations and of the inject label (a DNS subdomain and a slash).
    #[arg(long, default_value = DEFAULT_PREFIX, value_name = "PREFIX", value_parser = parse_prefix)]
    pub annotation_prefix: String,

    /// Image of the injected containers when a pod has no image annotation (normally the
    /// webhook's own image: the release image holds both binaries).
    #[arg(long, default_value = DEFAULT_IMAGE, value_name = "IMAGE")]
    pub image: String,

    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line of text per event.
    Text,
    /// One JSON object per line.
    Json,
}

fn parse_prefix(prefix: &str) -> Result<String, String> {
    let domain = prefix
        .strip_suffix('/')
        .ok_or_else(|| format!("{prefix:?} must end with '/', e.g. {DEFAULT_PREFIX}"))?;
    let valid = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if valid {
        Ok(prefix.to_owned())
    } else {
        Err(format!(
            "{domain:?} is not a DNS subdomain (e.g. {DEFAULT_PREFIX})"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert!(parse_prefix("secrets.example.com/").is_ok());
        assert!(parse_prefix("secrets.example.com").is_err());
        assert!(parse_prefix("Secrets/").is_err());
        assert!(parse_prefix("/").is_err());
    }
}
