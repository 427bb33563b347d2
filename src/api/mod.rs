//! The Infisical HTTP client: login, renewal, and listing secrets with `If-None-Match`.
//!
//! Errors are classified here (transient or not, "log in again" or not); what they mean for the
//! user, with advice, is worked out in [`crate::diagnose`], which knows the configuration.

pub mod model;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, ETAG, IF_NONE_MATCH, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use zeroize::Zeroizing;

use crate::config::{ApiSettings, ProjectRef};
use crate::secrets::SecretValue;
use model::{ErrorBody, ListResponse, ProjectResponse, TokenResponse};

/// The User-Agent sent with every request.
pub const USER_AGENT: &str = concat!("infisical-materializer/", env!("CARGO_PKG_VERSION"));

/// Which call failed; used in messages and as the metrics label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// `POST /api/v1/auth/universal-auth/login`.
    UniversalAuthLogin,
    /// `POST /api/v1/auth/kubernetes-auth/login`.
    KubernetesLogin,
    /// `POST /api/v1/auth/token/renew`.
    Renew,
    /// `GET /api/v4/secrets` or `GET /api/v3/secrets/raw`.
    ListSecrets,
    /// `GET /api/v1/projects/slug/{slug}`.
    ProjectBySlug,
}

impl Endpoint {
    /// A short stable name (metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::UniversalAuthLogin => "universal_auth_login",
            Endpoint::KubernetesLogin => "kubernetes_login",
            Endpoint::Renew => "token_renew",
            Endpoint::ListSecrets => "list_secrets",
            Endpoint::ProjectBySlug => "project_by_slug",
        }
    }

    /// Whether this is a login call.
    pub fn is_login(self) -> bool {
        matches!(
            self,
            Endpoint::UniversalAuthLogin | Endpoint::KubernetesLogin
        )
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Endpoint::UniversalAuthLogin => "universal auth login",
            Endpoint::KubernetesLogin => "kubernetes auth login",
            Endpoint::Renew => "token renewal",
            Endpoint::ListSecrets => "listing secrets",
            Endpoint::ProjectBySlug => "looking up the project slug",
        })
    }
}

/// What went wrong with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiErrorKind {
    /// No connection (DNS, refused, reset).
    Connect(String),
    /// The request did not finish within `--request-timeout`.
    Timeout,
    /// The TLS handshake failed (usually an untrusted or mismatched certificate).
    Tls(String),
    /// The server answered with an error status.
    Status {
        /// The HTTP status.
        status: u16,
        /// The error class (`error` field), if any.
        error: String,
        /// The message, one line.
        message: String,
        /// How long the server asked us to wait (429).
        retry_after: Option<Duration>,
    },
    /// A success status with a body that is not what Infisical sends.
    Malformed(String),
}

/// A failed request: which endpoint and what happened. Never holds a secret.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ApiError {
    /// The call.
    pub endpoint: Endpoint,
    /// What happened.
    pub kind: ApiErrorKind,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ApiErrorKind::Connect(detail) => {
                write!(f, "{}: cannot connect: {detail}", self.endpoint)
            }
            ApiErrorKind::Timeout => write!(f, "{}: request timed out", self.endpoint),
            ApiErrorKind::Tls(detail) => write!(f, "{}: TLS failed: {detail}", self.endpoint),
            ApiErrorKind::Status {
                status,
                error,
                message,
                ..
            } => write!(f, "{}: HTTP {status} {error}: {message}", self.endpoint),
            ApiErrorKind::Malformed(detail) => {
                write!(f, "{}: unexpected response: {detail}", self.endpoint)
            }
        }
    }
}

impl ApiError {
    fn new(endpoint: Endpoint, kind: ApiErrorKind) -> Self {
        Self { endpoint, kind }
    }

    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match &self.kind {
            ApiErrorKind::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's error class and message, if it answered.
    pub fn server_error(&self) -> Option<(&str, &str)> {
        match &self.kind {
            ApiErrorKind::Status { error, message, .. } => Some((error, message)),
            _ => None,
        }
    }

    /// Worth retrying later: network trouble, timeouts, 5xx, 429, a garbled body.
    /// A 500 that is really "no such project slug" is not.
    pub fn is_transient(&self) -> bool {
        match &self.kind {
            ApiErrorKind::Connect(_) | ApiErrorKind::Timeout | ApiErrorKind::Malformed(_) => true,
            ApiErrorKind::Tls(_) => false,
            ApiErrorKind::Status { status, error, .. } => {
                *status == 429 || (*status >= 500 && !is_unknown_slug(*status, error))
            }
        }
    }

    /// The access token was refused: 401 on an authenticated call, or 403 `TokenError`.
    /// The cure is to log in again (once).
    pub fn is_token_rejected(&self) -> bool {
        if self.endpoint.is_login() {
            return false;
        }
        match &self.kind {
            ApiErrorKind::Status { status, error, .. } => {
                (*status == 401 && error != "ValidationFailure")
                    || (*status == 403 && error == "TokenError")
            }
            _ => false,
        }
    }

    /// The route does not exist on this server (Fastify's own 404), e.g. no `/api/v4` yet.
    pub fn is_route_missing(&self) -> bool {
        matches!(&self.kind, ApiErrorKind::Status { status: 404, error, message, .. }
            if error == "Not Found" && message.starts_with("Route "))
    }

    /// How long the server asked us to wait, from `retry-after` or the 429 message.
    pub fn retry_after(&self) -> Option<Duration> {
        match &self.kind {
            ApiErrorKind::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A real server answers an unknown project slug with 500 "Failed to find project by slug".
pub fn is_unknown_slug(status: u16, error: &str) -> bool {
    status == 500 && error.contains("Failed to find project by slug")
}

/// A granted access token and its lifetime.
#[derive(Clone)]
pub struct TokenGrant {
    /// The access token.
    pub token: SecretValue,
    /// When it was obtained (by login or renewal).
    pub obtained_at: Instant,
    /// Its lifetime from `obtained_at`; `None` when the server says it does not expire.
    pub ttl: Option<Duration>,
    /// Its renewal budget from first issue; `None` when unlimited.
    pub max_ttl: Option<Duration>,
}

impl fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenGrant")
            .field("ttl", &self.ttl)
            .field("max_ttl", &self.max_ttl)
            .finish_non_exhaustive()
    }
}

fn seconds(value: f64) -> Option<Duration> {
    (value.is_finite() && value > 0.0).then(|| Duration::from_secs_f64(value))
}

impl From<TokenResponse> for TokenGrant {
    fn from(response: TokenResponse) -> Self {
        Self {
            obtained_at: Instant::now(),
            ttl: seconds(response.expires_in),
            max_ttl: seconds(response.access_token_max_ttl),
            token: response.access_token,
        }
    }
}

/// What to list.
#[derive(Clone, Debug)]
pub struct ListQuery {
    /// The project.
    pub project: ProjectRef,
    /// Environment slug.
    pub environment: String,
    /// Folder path.
    pub path: String,
    /// Include sub-folders.
    pub recursive: bool,
    /// Include imports.
    pub include_imports: bool,
    /// Expand references on the server.
    pub expand_references: bool,
    /// Tag slugs filter.
    pub tags: Vec<String>,
}

/// The answer to a list request.
pub enum ListOutcome {
    /// `304`: nothing changed since the ETag we sent.
    NotModified,
    /// A full answer, with the ETag to send next time.
    Fresh {
        /// The secrets.
        response: ListResponse,
        /// The strong ETag, if the server sent one.
        etag: Option<String>,
    },
}

/// Which secrets API the server speaks; found out on the first list call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SecretsApi {
    Unknown,
    V4,
    V3,
}

/// Requests made, by endpoint and status (`"error"` when there was no answer), for `/metrics`.
#[derive(Default, Debug)]
pub struct RequestCounts {
    counts: Mutex<BTreeMap<(Endpoint, String), u64>>,
}

impl RequestCounts {
    fn record(&self, endpoint: Endpoint, status: Option<u16>) {
        let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry((endpoint, status)).or_default() += 1;
        }
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> Vec<(Endpoint, String, u64)> {
        self.counts
            .lock()
            .map(|counts| {
                counts
                    .iter()
                    .map(|((endpoint, status), n)| (*endpoint, status.clone(), *n))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A client for one Infisical server.
pub struct InfisicalClient {
    http: reqwest::Client,
    base_url: String,
    api: Mutex<SecretsApi>,
    project_ids: Mutex<BTreeMap<String, String>>,
    counts: Arc<RequestCounts>,
}

/// Why the HTTP client could not be built (a bad `--ca-cert`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientBuildError(pub String);

impl InfisicalClient {
    /// Builds a client trusting the built-in roots plus `--ca-cert`, if any.
    pub fn new(settings: &ApiSettings) -> Result<Self, ClientBuildError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(USER_AGENT)
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(1);
        if let Some(path) = &settings.ca_cert {
            let pem = std::fs::read(path).map_err(|e| {
                ClientBuildError(format!("--ca-cert {}: cannot read it: {e}", path.display()))
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ClientBuildError(format!(
                    "--ca-cert {}: not a valid PEM certificate bundle: {e}",
                    path.display()
                ))
            })?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder
            .build()
            .map_err(|e| ClientBuildError(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base_url: settings.base_url.clone(),
            api: Mutex::new(SecretsApi::Unknown),
            project_ids: Mutex::new(BTreeMap::new()),
            counts: Arc::default(),
        })
    }

    /// The request counters, shared with `/metrics`.
    pub fn request_counts(&self) -> Arc<RequestCounts> {
        Arc::clone(&self.counts)
    }

    /// Universal auth login.
    pub async fn login_universal_auth(
        &self,
        client_id: &SecretValue,
        client_secret: &SecretValue,
    ) -> Result<TokenGrant, ApiError> {
        let body = serde_json::json!({
            "clientId": client_id.expose(),
            "clientSecret": client_secret.expose(),
        });
        self.post_token(
            Endpoint::UniversalAuthLogin,
            "/v1/auth/universal-auth/login",
            body,
        )
        .await
    }

    /// Kubernetes auth login with the pod's service-account token.
    pub async fn login_kubernetes(
        &self,
        identity_id: &str,
        service_account_token: &SecretValue,
    ) -> Result<TokenGrant, ApiError> {
        let body = serde_json::json!({
            "identityId": identity_id,
            "jwt": service_account_token.expose(),
        });
        self.post_token(
            Endpoint::KubernetesLogin,
            "/v1/auth/kubernetes-auth/login",
            body,
        )
        .await
    }

    /// Renews an access token.
    pub async fn renew(&self, token: &SecretValue) -> Result<TokenGrant, ApiError> {
        let body = serde_json::json!({ "accessToken": token.expose() });
        self.post_token(Endpoint::Renew, "/v1/auth/token/renew", body)
            .await
    }

    async fn post_token(
        &self,
        endpoint: Endpoint,
        path: &str,
        body: serde_json::Value,
    ) -> Result<TokenGrant, ApiError> {
        // The body holds a credential: serialize into a buffer that is wiped afterwards.
        let bytes = Zeroizing::new(serde_json::to_vec(&body).unwrap_or_default());
        drop(body);
        let request = self
            .http
            .request(Method::POST, format!("{}{path}", self.base_url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(bytes.to_vec());
        let (status, headers, body) = self.send(endpoint, request).await?;
        if !status.is_success() {
            return Err(status_error(endpoint, status, &headers, &body));
        }
        serde_json::from_slice::<TokenResponse>(&body)
            .map(TokenGrant::from)
            .map_err(|e| malformed(endpoint, &e))
    }

    /// Lists secrets once, sending `If-None-Match` when an ETag is known.
    ///
    /// Uses `/api/v4/secrets` and falls back to `/api/v3/secrets/raw` for servers without v4;
    /// the choice is remembered so later calls make exactly one request.
    pub async fn list_secrets(
        &self,
        token: &SecretValue,
        query: &ListQuery,
        etag: Option<&str>,
    ) -> Result<ListOutcome, ApiError> {
        let mut etag = etag;
        loop {
            let api = *self.api.lock().unwrap_or_else(|e| e.into_inner());
            let result = match api {
                SecretsApi::Unknown | SecretsApi::V4 => match self.v4_params(token, query).await {
                    Ok(params) => self.get_list("/v4/secrets", &params, token, etag).await,
                    Err(e) => Err(e),
                },
                SecretsApi::V3 => {
                    return self
                        .get_list("/v3/secrets/raw", &v3_params(query), token, etag)
                        .await
                }
            };
            match result {
                Err(e) if api == SecretsApi::Unknown && e.is_route_missing() => {
                    tracing::debug!("server has no /api/v4 secrets API, using /api/v3/secrets/raw");
                    *self.api.lock().unwrap_or_else(|e| e.into_inner()) = SecretsApi::V3;
                    // An ETag from one API means nothing to the other.
                    etag = None;
                }
                other => {
                    if other.is_ok() {
                        *self.api.lock().unwrap_or_else(|e| e.into_inner()) = SecretsApi::V4;
                    }
                    return other;
                }
            }
        }
    }

    async fn v4_params(
        &self,
        token: &SecretValue,
        query: &ListQuery,
    ) -> Result<Vec<(&'static str, String)>, ApiError> {
        let project_id = match &query.project {
            ProjectRef::Id(id) => id.clone(),
            ProjectRef::Slug(slug) => self.project_id_for_slug(token, slug).await?,
        };
        let mut params = vec![("projectId", project_id)];
        params.extend(common_params(query));
        params.push(("includeImports", query.include_imports.to_string()));
        params.push(("includePersonalOverrides", "false".to_owned()));
        Ok(params)
    }

    async fn project_id_for_slug(
        &self,
        token: &SecretValue,
        slug: &str,
    ) -> Result<String, ApiError> {
        if let Some(id) = self
            .project_ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(slug)
        {
            return Ok(id.clone());
        }
        let endpoint = Endpoint::ProjectBySlug;
        let request = self
            .http
            .get(format!(
                "{}/v1/projects/slug/{}",
                self.base_url,
                path_segment(slug)
            ))
            .headers(auth_headers(endpoint, token)?);
        let (status, headers, body) = self.send(endpoint, request).await?;
        if !status.is_success() {
            return Err(status_error(endpoint, status, &headers, &body));
        }
        let id = serde_json::from_slice::<ProjectResponse>(&body)
            .map_err(|e| malformed(endpoint, &e))?
            .into_id()
            .ok_or_else(|| {
                ApiError::new(
                    endpoint,
                    ApiErrorKind::Malformed("no project id in the answer".into()),
                )
            })?;
        self.project_ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(slug.to_owned(), id.clone());
        Ok(id)
    }

    async fn get_list(
        &self,
        path: &str,
        params: &[(&'static str, String)],
        token: &SecretValue,
        etag: Option<&str>,
    ) -> Result<ListOutcome, ApiError> {
        let endpoint = Endpoint::ListSecrets;
        let mut headers = auth_headers(endpoint, token)?;
        if let Some(etag) = etag.and_then(|e| HeaderValue::from_str(e).ok()) {
            headers.insert(IF_NONE_MATCH, etag);
        }
        let request = self
            .http
            .get(format!("{}{path}", self.base_url))
            .query(params)
            .headers(headers);
        let (status, headers, body) = self.send(endpoint, request).await?;
        if status == StatusCode::NOT_MODIFIED {
            return Ok(ListOutcome::NotModified);
        }
        if !status.is_success() {
            return Err(status_error(endpoint, status, &headers, &body));
        }
        let response =
            serde_json::from_slice::<ListResponse>(&body).map_err(|e| malformed(endpoint, &e))?;
        let etag = headers
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(ListOutcome::Fresh { response, etag })
    }

    /// Sends a request and reads the whole body into a buffer that is wiped on drop.
    async fn send(
        &self,
        endpoint: Endpoint,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, HeaderMap, Zeroizing<Vec<u8>>), ApiError> {
        let started = Instant::now();
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                self.counts.record(endpoint, None);
                return Err(transport_error(endpoint, &error));
            }
        };
        let status = response.status();
        self.counts.record(endpoint, Some(status.as_u16()));
        let headers = std::mem::take(response.headers_mut());
        let mut body = Zeroizing::new(Vec::new());
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(error) => return Err(transport_error(endpoint, &error)),
            }
        }
        tracing::debug!(
            endpoint = endpoint.as_str(),
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "infisical request"
        );
        Ok((status, headers, body))
    }
}

fn common_params(query: &ListQuery) -> Vec<(&'static str, String)> {
    let mut params = vec![
        ("environment", query.environment.clone()),
        ("secretPath", query.path.clone()),
        ("viewSecretValue", "true".to_owned()),
        (
            "expandSecretReferences",
            query.expand_references.to_string(),
        ),
        ("recursive", query.recursive.to_string()),
        ("include_imports", query.include_imports.to_string()),
    ];
    if !query.tags.is_empty() {
        params.push(("tagSlugs", query.tags.join(",")));
    }
    params
}

fn v3_params(query: &ListQuery) -> Vec<(&'static str, String)> {
    let mut params = vec![match &query.project {
        ProjectRef::Id(id) => ("workspaceId", id.clone()),
        ProjectRef::Slug(slug) => ("workspaceSlug", slug.clone()),
    }];
    params.extend(common_params(query));
    params
}

fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn auth_headers(endpoint: Endpoint, token: &SecretValue) -> Result<HeaderMap, ApiError> {
    let value = Zeroizing::new(format!("Bearer {}", token.expose()));
    let mut header = HeaderValue::from_str(&value).map_err(|_| {
        ApiError::new(
            endpoint,
            ApiErrorKind::Malformed(
                "the access token contains characters not allowed in a header".into(),
            ),
        )
    })?;
    header.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, header);
    headers.insert(
        reqwest::header::ACCEPT,
        HeaderValue::from_static("application/json"),
    );
    Ok(headers)
}

fn malformed(endpoint: Endpoint, error: &serde_json::Error) -> ApiError {
    // serde_json's message names the position and the expected shape, never the input text.
    ApiError::new(
        endpoint,
        ApiErrorKind::Malformed(format!("invalid JSON ({error})")),
    )
}

fn status_error(
    endpoint: Endpoint,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let message = parsed.message_text();
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("").to_owned()
    } else {
        message
    };
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .or_else(|| {
            (status.as_u16() == 429)
                .then(|| retry_after_from_message(&message))
                .flatten()
        });
    ApiError::new(
        endpoint,
        ApiErrorKind::Status {
            status: status.as_u16(),
            error: parsed.error.unwrap_or_default(),
            message,
            retry_after,
        },
    )
}

/// Reads "Please try again in 42 seconds" / "in 1 minute" from a 429 message.
pub fn retry_after_from_message(message: &str) -> Option<Duration> {
    let rest = &message[message.find("try again in ")? + "try again in ".len()..];
    let mut words = rest.split_whitespace();
    let number: u64 = words.next()?.parse().ok()?;
    let unit = words.next().unwrap_or("seconds");
    let seconds = if unit.starts_with("minute") {
        number * 60
    } else if unit.starts_with("hour") {
        number * 3600
    } else {
        number
    };
    Some(Duration::from_secs(seconds))
}

fn transport_error(endpoint: Endpoint, error: &reqwest::Error) -> ApiError {
    if error.is_timeout() {
        return ApiError::new(endpoint, ApiErrorKind::Timeout);
    }
    // Walk the source chain: the root cause ("Connection refused", "invalid peer certificate:
    // UnknownIssuer") is what a user can act on.
    let mut chain = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(current) = source {
        chain.push(current.to_string());
        source = current.source();
    }
    let root = chain.last().cloned().unwrap_or_default();
    let all = chain.join(": ").to_lowercase();
    if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        ApiError::new(endpoint, ApiErrorKind::Tls(root))
    } else if all.contains("timed out") {
        ApiError::new(endpoint, ApiErrorKind::Timeout)
    } else {
        ApiError::new(endpoint, ApiErrorKind::Connect(root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(endpoint: Endpoint, status: u16, error: &str, message: &str) -> ApiError {
        ApiError::new(
            endpoint,
            ApiErrorKind::Status {
                status,
                error: error.into(),
                message: message.into(),
                retry_after: None,
            },
        )
    }

    #[test]
    fn token_errors_mean_log_in_again() {
        assert!(status(
            Endpoint::ListSecrets,
            401,
            "UnauthorizedError",
            "No identity access token found"
        )
        .is_token_rejected());
        assert!(status(
            Endpoint::ListSecrets,
            403,
            "TokenError",
            "Your token has expired. Please re-authenticate."
        )
        .is_token_rejected());
        assert!(!status(Endpoint::ListSecrets, 403, "PermissionDenied", "x").is_token_rejected());
        assert!(!status(
            Endpoint::UniversalAuthLogin,
            401,
            "UnauthorizedError",
            "Invalid credentials"
        )
        .is_token_rejected());
        assert!(!status(
            Endpoint::ListSecrets,
            401,
            "ValidationFailure",
            "recursive: Invalid"
        )
        .is_token_rejected());
    }

    #[test]
    fn unknown_slug_500_is_not_transient() {
        assert!(!status(
            Endpoint::ListSecrets,
            500,
            "Failed to find project by slug",
            "Something went wrong"
        )
        .is_transient());
        assert!(status(
            Endpoint::ListSecrets,
            500,
            "InternalServerError",
            "Something went wrong"
        )
        .is_transient());
        assert!(status(Endpoint::ListSecrets, 429, "RateLimitExceeded", "x").is_transient());
        assert!(!status(Endpoint::ListSecrets, 404, "NotFound", "x").is_transient());
    }

    #[test]
    fn route_missing_is_fastify_404() {
        assert!(status(
            Endpoint::ListSecrets,
            404,
            "Not Found",
            "Route GET:/api/v4/secrets?x not found"
        )
        .is_route_missing());
        assert!(!status(
            Endpoint::ListSecrets,
            404,
            "NotFound",
            "Project with ID 'x' not found"
        )
        .is_route_missing());
    }

    #[test]
    fn retry_after_is_read_from_the_message_too() {
        assert_eq!(
            retry_after_from_message("Rate limit exceeded. Please try again in 42 seconds"),
            Some(Duration::from_secs(42))
        );
        assert_eq!(
            retry_after_from_message("Rate limit exceeded. Please try again in 1 minute"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(retry_after_from_message("Rate limit exceeded"), None);
    }

    #[test]
    fn slugs_are_escaped_in_paths() {
        assert_eq!(path_segment("my-app_1"), "my-app_1");
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
    }
}
