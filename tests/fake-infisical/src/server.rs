//! HTTP plumbing: the accept loop, optional TLS, per-request flow (faults, handling, ETag,
//! recording) and connection dropping.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::Response;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio_rustls::TlsAcceptor;

use crate::faults::{self, FaultKind};
use crate::routes::{self, Outcome, Reply, Request, State};
use crate::util::{etag_of, parse_pairs};
use crate::{logins, RecordedRequest, Route};

/// State shared between the handle and the server thread.
pub(crate) struct Shared {
    state: Mutex<State>,
    pub down: watch::Sender<bool>,
}

impl Shared {
    pub fn new(state: State) -> Self {
        Self {
            state: Mutex::new(state),
            down: watch::Sender::new(false),
        }
    }

    /// The state; a panic elsewhere while it was held does not make it unusable.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_down(&self) -> bool {
        *self.down.borrow()
    }
}

/// TLS material made at start: the acceptor and the CA certificate that signed the server's.
pub(crate) struct Tls {
    pub acceptor: TlsAcceptor,
    pub ca_pem: String,
}

/// A fresh CA and a server certificate for `hostnames`, `localhost` and `127.0.0.1`.
pub(crate) fn make_tls(hostnames: &[&str]) -> Result<Tls, String> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let err = |e: rcgen::Error| e.to_string();
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "fake-infisical test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let mut names: Vec<String> = hostnames.iter().map(|h| h.to_string()).collect();
    for extra in ["localhost", "127.0.0.1"] {
        if !names.iter().any(|n| n == extra) {
            names.push(extra.to_string());
        }
    }
    let mut params = CertificateParams::new(names.clone()).map_err(err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, names[0].as_str());
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().map_err(err)?;
    let cert = params.signed_by(&key, &issuer).map_err(err)?;

    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key_der)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        ca_pem,
    })
}

/// A response body: all of it, or the first half of it after declaring its full length, then
/// an error that makes hyper close the connection (a server dying mid-body).
pub(crate) struct FakeBody {
    data: Option<Bytes>,
    declared: u64,
    truncated: bool,
}

impl FakeBody {
    /// The whole body.
    pub(crate) fn full(body: Vec<u8>) -> Self {
        Self {
            declared: body.len() as u64,
            data: Some(Bytes::from(body)),
            truncated: false,
        }
    }

    /// Half of the body, then the connection closes.
    fn truncated(mut body: Vec<u8>) -> Self {
        let declared = body.len() as u64;
        body.truncate(body.len() / 2);
        Self {
            declared,
            data: Some(Bytes::from(body)),
            truncated: true,
        }
    }
}

impl hyper::body::Body for FakeBody {
    type Data = Bytes;
    type Error = Dropped;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Dropped>>> {
        let this = self.get_mut();
        std::task::Poll::Ready(match this.data.take() {
            Some(data) => Some(Ok(hyper::body::Frame::data(data))),
            None if this.truncated => {
                this.truncated = false;
                Some(Err(Dropped))
            }
            None => None,
        })
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && !self.truncated
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.declared)
    }
}

/// A server's request handler and its "down" switch, so fake servers share the accept loop.
pub(crate) trait Handler: Send + Sync + 'static {
    /// Set while every connection is to be closed at once.
    fn down(&self) -> &watch::Sender<bool>;

    /// Answers one request, or drops the connection with [`Dropped`].
    fn serve(
        self: Arc<Self>,
        req: hyper::Request<Incoming>,
    ) -> impl std::future::Future<Output = Result<Response<FakeBody>, Dropped>> + Send;
}

impl Handler for Shared {
    fn down(&self) -> &watch::Sender<bool> {
        &self.down
    }

    fn serve(
        self: Arc<Self>,
        req: hyper::Request<Incoming>,
    ) -> impl std::future::Future<Output = Result<Response<FakeBody>, Dropped>> + Send {
        serve(self, req)
    }
}

/// Accepts connections until `shutdown` fires.
pub(crate) async fn run<H: Handler>(
    listener: std::net::TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<H>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fake-infisical: cannot use the listening socket: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if *shared.down().borrow() {
                        drop(stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(connection(stream, tls.clone(), shared.clone()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
        }
    }
}

/// Serves one connection; it is cut as soon as the server goes down.
async fn connection<H: Handler>(
    stream: tokio::net::TcpStream,
    tls: Option<TlsAcceptor>,
    shared: Arc<H>,
) {
    let mut down = shared.down().subscribe();
    let serve = async {
        match tls {
            Some(acceptor) => {
                if let Ok(stream) = acceptor.accept(stream).await {
                    serve_io(TokioIo::new(stream), shared.clone()).await;
                }
            }
            None => serve_io(TokioIo::new(stream), shared.clone()).await,
        }
    };
    tokio::select! {
        _ = serve => {}
        _ = down.wait_for(|d| *d) => {}
    }
}

async fn serve_io<I, H: Handler>(io: TokioIo<I>, shared: Arc<H>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| shared.clone().serve(req));
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service)
        .await;
}

/// The error that makes hyper close a connection without answering.
#[derive(Debug)]
pub(crate) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for Dropped {}

async fn serve(
    shared: Arc<Shared>,
    req: hyper::Request<Incoming>,
) -> Result<Response<FakeBody>, Dropped> {
    let at = Instant::now();
    if shared.is_down() {
        return Err(Dropped);
    }
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let request = Request {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        url: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| parts.uri.path().to_string()),
        query: parse_pairs(parts.uri.query().unwrap_or("")),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };

    let (route, fault) = {
        let mut st = shared.lock();
        let route = routes::classify(&request.method, &request.path, st.world.v4, st.world.v3);
        (route, faults::take(&mut st.faults, route))
    };
    let outcome = match fault {
        Some(FaultKind::Delay(d)) => {
            tokio::time::sleep(d).await;
            if shared.is_down() {
                Outcome::Drop
            } else {
                Outcome::Reply(answer(&shared, &request, route).await)
            }
        }
        Some(FaultKind::DropConnection) => Outcome::Drop,
        Some(FaultKind::TruncatedBody) => {
            let mut reply = answer(&shared, &request, route).await;
            reply.json = false;
            reply.truncated = true;
            Outcome::Reply(reply)
        }
        Some(kind) => match routes::fault_reply(&kind) {
            Some(reply) => Outcome::Reply(reply),
            None => Outcome::Reply(answer(&shared, &request, route).await),
        },
        None => Outcome::Reply(answer(&shared, &request, route).await),
    };

    let mut st = shared.lock();
    let etag_enabled = st.etag_enabled;
    let mut record = |status: u16| {
        st.requests.push(RecordedRequest {
            at,
            method: request.method.clone(),
            path: request.path.clone(),
            query: request.query.clone(),
            headers: request.headers.clone(),
            body: String::from_utf8_lossy(&request.body).into_owned(),
            status,
            route,
        })
    };
    match outcome {
        Outcome::Drop => {
            record(0);
            Err(Dropped)
        }
        Outcome::Reply(reply) => {
            let reply = apply_etag(reply, &request, etag_enabled);
            record(reply.0.status);
            Ok(build(reply))
        }
    }
}

/// Handles a request: logins that call out to other servers without holding the state lock,
/// everything else under it.
async fn answer(shared: &Shared, request: &Request, route: Route) -> Reply {
    if logins::calls_out(route) {
        logins::handle(shared, request, route).await
    } else {
        routes::handle(&mut shared.lock(), request, route)
    }
}

/// Adds the ETag of a JSON body and turns a matching `If-None-Match` GET into a 304.
fn apply_etag(mut reply: Reply, req: &Request, enabled: bool) -> (Reply, Option<String>) {
    if !reply.json {
        return (reply, None);
    }
    let etag = etag_of(&reply.body);
    if enabled
        && req.method == "GET"
        && reply.status == 200
        && req.header("if-none-match") == Some(etag.as_str())
    {
        reply.status = 304;
        reply.body.clear();
    }
    (reply, Some(etag))
}

fn build((reply, etag): (Reply, Option<String>)) -> Response<FakeBody> {
    let mut builder = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder = builder.header("content-type", reply.content_type);
    if let Some(etag) = etag {
        builder = builder.header("etag", etag);
    }
    builder
        .body(if reply.truncated {
            FakeBody::truncated(reply.body)
        } else {
            FakeBody::full(reply.body)
        })
        .unwrap_or_else(|_| {
            let mut r = Response::new(FakeBody::full(Vec::new()));
            *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
}
