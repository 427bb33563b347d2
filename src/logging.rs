//! Logging to stderr, as text or JSON lines.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::LogFormat;

/// Installs the global subscriber. `filter` is a level (`info`, `debug`) or comma-separated
/// `target=level` directives (`infisical_materializer=trace,hyper=info`); a bad one falls back to
/// `info` with a warning.
///
/// `Targets` parses these directives without a regular-expression engine, which keeps the
/// per-pod binary small; span-field filters (`[span{field=…}]`) are not supported.
pub fn init(format: LogFormat, filter: &str) {
    let (filter, bad_filter) = match filter.parse::<Targets>() {
        Ok(filter) => (filter, None),
        Err(error) => (
            Targets::new().with_default(tracing::Level::INFO),
            Some(error),
        ),
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => tracing_subscriber::registry()
            .with(filter)
            .with(fmt.with_ansi(false))
            .init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(filter)
            .with(fmt.json().flatten_event(true))
            .init(),
    }
    if let Some(error) = bad_filter {
        tracing::warn!("--log-level: {error}; using info");
    }
}
