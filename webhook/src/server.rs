//! The HTTPS server: `POST /mutate`, `/healthz`, `/readyz`, `/metrics`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::admission::{self, Outcome, Settings};
use crate::tls::ReloadingCert;

/// The API server sends at most a few hundred KiB for a pod; anything larger is refused.
const MAX_BODY: usize = 4 << 20;
/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections may finish after SIGTERM.
const DRAIN: Duration = Duration::from_secs(10);

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    injected: AtomicU64,
    skipped: AtomicU64,
    denied: AtomicU64,
    invalid: AtomicU64,
}

impl Metrics {
    fn count(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Injected => &self.injected,
            Outcome::Skipped => &self.skipped,
            Outcome::Denied => &self.denied,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, cert: &ReloadingCert) -> String {
        let (reloads, failures) = cert.counts();
        let mut text = String::new();
        text.push_str("# HELP infisical_materializer_webhook_reviews_total AdmissionReviews answered, by result.\n");
        text.push_str("# TYPE infisical_materializer_webhook_reviews_total counter\n");
        for (result, counter) in [
            ("injected", &self.injected),
            ("skipped", &self.skipped),
            ("denied", &self.denied),
            ("invalid", &self.invalid),
        ] {
            text.push_str(&format!(
                "infisical_materializer_webhook_reviews_total{{result=\"{result}\"}} {}\n",
                counter.load(Ordering::Relaxed)
            ));
        }
        text.push_str("# HELP infisical_materializer_webhook_certificate_reloads_total Serving certificates loaded after a change of the files, by result.\n");
        text.push_str("# TYPE infisical_materializer_webhook_certificate_reloads_total counter\n");
        text.push_str(&format!(
            "infisical_materializer_webhook_certificate_reloads_total{{result=\"success\"}} {reloads}\n\
             infisical_materializer_webhook_certificate_reloads_total{{result=\"failure\"}} {failures}\n"
        ));
        text.push_str("# HELP infisical_materializer_webhook_build_info The running version.\n");
        text.push_str("# TYPE infisical_materializer_webhook_build_info gauge\n");
        text.push_str(&format!(
            "infisical_materializer_webhook_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        ));
        text
    }
}

/// What every connection shares.
#[derive(Debug)]
pub struct State {
    /// Prefix and default image.
    pub settings: Settings,
    /// The serving certificate.
    pub cert: Arc<ReloadingCert>,
    /// Counters.
    pub metrics: Metrics,
}

type Body = Full<Bytes>;

fn text(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let response = match (request.method(), request.uri().path()) {
        (&Method::POST, "/mutate") => mutate(&state, request).await,
        (&Method::GET, "/healthz") | (&Method::GET, "/readyz") => {
            text(StatusCode::OK, "text/plain", "ok\n")
        }
        (&Method::GET, "/metrics") => text(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            state.metrics.render(&state.cert),
        ),
        (_, "/mutate" | "/healthz" | "/readyz" | "/metrics") => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n",
        ),
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    };
    Ok(response)
}

async fn mutate(state: &State, request: Request<Incoming>) -> Response<Body> {
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(error) => {
            state.metrics.invalid.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("cannot read a review: {error}");
            return text(
                StatusCode::BAD_REQUEST,
                "text/plain",
                format!("cannot read the body: {error}\n"),
            );
        }
    };
    match admission::review(&state.settings, &body) {
        Ok(answer) => {
            state.metrics.count(answer.outcome);
            match answer.outcome {
                Outcome::Denied => tracing::warn!("{}", answer.summary),
                _ => tracing::info!("{}", answer.summary),
            }
            let json = serde_json::to_vec(&answer.review).unwrap_or_default();
            text(StatusCode::OK, "application/json", json)
        }
        Err(error) => {
            state.metrics.invalid.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("{error}");
            text(StatusCode::BAD_REQUEST, "text/plain", format!("{error}\n"))
        }
    }
}

/// Serves until `shutdown` completes, then lets open connections finish (up to 10 s).
pub async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(Arc::new(crate::tls::server_config(Arc::clone(&state.cert))));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!("accept failed: {error}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                connections.spawn(connection(acceptor.clone(), tcp, peer, Arc::clone(&state)));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    tracing::info!(open = connections.len(), "stopping: no new connections");
    let drained = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.shutdown().await;
    }
}

async fn connection(
    acceptor: TlsAcceptor,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    state: Arc<State>,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%peer, "TLS handshake failed: {error}");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let service = hyper::service::service_fn(move |request| handle(Arc::clone(&state), request));
    if let Err(error) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls), service)
        .await
    {
        tracing::debug!(%peer, "connection ended: {error}");
    }
}
