//! `/healthz`, `/readyz` and `/metrics` (Prometheus text format) for the sidecar.
//!
//! Labels never carry key names or values: the only labels are fixed words and the endpoint
//! and status of requests to Infisical, so cardinality stays small whatever the secrets are.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::api::RequestCounts;

/// How a refresh ended, for the `refreshes_total` counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshResult {
    /// New content was written.
    Changed,
    /// Nothing to write (304, same hash, or identical files).
    Unchanged,
    /// Fetching or writing failed.
    Error,
}

#[derive(Default)]
struct State {
    /// When the outputs last held data confirmed current (a successful refresh).
    last_success: Option<(Instant, SystemTime)>,
    written_once: bool,
    changed: u64,
    unchanged: u64,
    errors: u64,
    secrets: usize,
    token_expiry: Option<SystemTime>,
    reloads: u64,
    reload_failures: u64,
}

/// Shared health state: the refresh loop writes it, the HTTP endpoints read it.
pub struct Health {
    max_staleness: Duration,
    requests: Arc<RequestCounts>,
    state: Mutex<State>,
}

impl Health {
    /// Health whose readiness lapses once data is older than `max_staleness`.
    pub fn new(max_staleness: Duration, requests: Arc<RequestCounts>) -> Self {
        Self {
            max_staleness,
            requests,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave these plain counters inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a refresh; `secrets` is the number now materialized, after a success.
    pub fn record(&self, result: RefreshResult, secrets: Option<usize>) {
        let mut state = self.state();
        match result {
            RefreshResult::Changed => state.changed += 1,
            RefreshResult::Unchanged => state.unchanged += 1,
            RefreshResult::Error => state.errors += 1,
        }
        if result != RefreshResult::Error {
            state.last_success = Some((Instant::now(), SystemTime::now()));
            state.written_once = true;
        }
        if let Some(count) = secrets {
            state.secrets = count;
        }
    }

    /// Records when the access token expires.
    pub fn set_token_expiry(&self, expiry: Option<SystemTime>) {
        self.state().token_expiry = expiry;
    }

    /// Counts a reload of the configuration file: applied, or refused (the old one runs on).
    pub fn record_reload(&self, applied: bool) {
        let mut state = self.state();
        if applied {
            state.reloads += 1;
        } else {
            state.reload_failures += 1;
        }
    }

    /// Ready: the first complete write happened and the data is not older than the bound.
    pub fn readiness(&self) -> Result<(), String> {
        let state = self.state();
        match state.last_success {
            None => Err("not ready: no complete write yet".to_owned()),
            Some((at, _)) if at.elapsed() > self.max_staleness => Err(format!(
                "not ready: secrets last confirmed {} ago, more than --max-staleness {}",
                humantime::format_duration(Duration::from_secs(at.elapsed().as_secs())),
                humantime::format_duration(self.max_staleness)
            )),
            Some(_) => Ok(()),
        }
    }

    /// The metrics in Prometheus text exposition format.
    pub fn render_metrics(&self) -> String {
        let state = self.state();
        let mut out = String::new();
        let prefix = "infisical_materializer";
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {prefix}_build_info Build information.\n# TYPE {prefix}_build_info gauge\n{prefix}_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
        let _ = writeln!(out, "# HELP {prefix}_refreshes_total Refreshes by result.\n# TYPE {prefix}_refreshes_total counter");
        for (result, count) in [
            ("changed", state.changed),
            ("unchanged", state.unchanged),
            ("error", state.errors),
        ] {
            let _ = writeln!(
                out,
                "{prefix}_refreshes_total{{result=\"{result}\"}} {count}"
            );
        }
        let _ = writeln!(out, "# HELP {prefix}_requests_total Requests to Infisical by endpoint and HTTP status (\"error\": no answer).\n# TYPE {prefix}_requests_total counter");
        for (endpoint, status, count) in self.requests.snapshot() {
            let _ = writeln!(
                out,
                "{prefix}_requests_total{{endpoint=\"{}\",status=\"{status}\"}} {count}",
                endpoint.as_str()
            );
        }
        let _ = writeln!(out, "# HELP {prefix}_last_success_timestamp_seconds When the secrets were last confirmed current.\n# TYPE {prefix}_last_success_timestamp_seconds gauge");
        let last = state.last_success.map_or(0.0, |(_, at)| unix_seconds(at));
        let _ = writeln!(out, "{prefix}_last_success_timestamp_seconds {last}");
        let _ = writeln!(out, "# HELP {prefix}_secrets Secrets currently materialized.\n# TYPE {prefix}_secrets gauge\n{prefix}_secrets {}", state.secrets);
        let expiry = state.token_expiry.map_or(0.0, unix_seconds);
        let _ = writeln!(out, "# HELP {prefix}_token_expiry_timestamp_seconds When the access token expires (0: unknown or never).\n# TYPE {prefix}_token_expiry_timestamp_seconds gauge\n{prefix}_token_expiry_timestamp_seconds {expiry}");
        let _ = writeln!(out, "# HELP {prefix}_config_reloads_total Reloads of the configuration file by result (\"failure\": refused, the previous one runs on).\n# TYPE {prefix}_config_reloads_total counter");
        for (result, count) in [
            ("success", state.reloads),
            ("failure", state.reload_failures),
        ] {
            let _ = writeln!(
                out,
                "{prefix}_config_reloads_total{{result=\"{result}\"}} {count}"
            );
        }
        drop(state);
        let ready = u8::from(self.readiness().is_ok());
        let _ = writeln!(out, "# HELP {prefix}_ready Whether /readyz answers 200.\n# TYPE {prefix}_ready gauge\n{prefix}_ready {ready}");
        out
    }

    fn respond(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".to_owned());
        }
        match request.uri().path() {
            "/healthz" => text(StatusCode::OK, "ok\n".to_owned()),
            "/readyz" => match self.readiness() {
                Ok(()) => text(StatusCode::OK, "ready\n".to_owned()),
                Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
            },
            "/metrics" => {
                let mut response = text(StatusCode::OK, self.render_metrics());
                response.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static(
                        "text/plain; version=0.0.4; charset=utf-8",
                    ),
                );
                response
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: try /healthz, /readyz or /metrics\n".to_owned(),
            ),
        }
    }
}

fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

/// Serves the endpoints until the task is dropped.
pub async fn serve(listener: TcpListener, health: Arc<Health>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!("health endpoint: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let health = Arc::clone(&health);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let response = health.respond(&request);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!("health endpoint connection: {error}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_after_a_success_and_while_fresh() {
        let health = Health::new(Duration::from_millis(50), Arc::default());
        assert!(health.readiness().is_err());
        health.record(RefreshResult::Error, None);
        assert!(health.readiness().is_err());
        health.record(RefreshResult::Changed, Some(3));
        assert!(health.readiness().is_ok());
        std::thread::sleep(Duration::from_millis(80));
        assert!(health.readiness().unwrap_err().contains("max-staleness"));
    }

    #[test]
    fn metrics_count_refreshes_by_result() {
        let health = Health::new(Duration::from_secs(60), Arc::default());
        health.record(RefreshResult::Changed, Some(2));
        health.record(RefreshResult::Unchanged, None);
        health.record(RefreshResult::Unchanged, None);
        let text = health.render_metrics();
        assert!(
            text.contains("infisical_materializer_refreshes_total{result=\"unchanged\"} 2"),
            "{text}"
        );
        assert!(text.contains("infisical_materializer_secrets 2"), "{text}");
        assert!(text.contains("infisical_materializer_ready 1"), "{text}");
    }
}
