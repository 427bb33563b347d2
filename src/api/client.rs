//! [`InfisicalClient`]: the HTTP client for one Infisical server.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, ETAG, IF_NONE_MATCH};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use tokio::time::Instant;
use zeroize::Zeroizing;

use super::error::{malformed, status_error};
use super::model::{ListResponse, ProjectResponse, TokenResponse};
use super::{
    ApiError, ApiErrorKind, ApiFuture, ApiSettings, Endpoint, Infisical, ListOutcome, ListQuery,
    Login, ProjectRef, TokenGrant, USER_AGENT,
};
use crate::error::{exit, Fatal};
use crate::secrets::SecretValue;

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
    max_response_size: u64,
}

/// Why the HTTP client could not be built. Every variant exits 64: it is a configuration
/// problem (a bad `--ca-cert`).
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    /// The CA bundle cannot be read.
    #[error("--ca-cert {}: cannot read it: {source}", path.display())]
    ReadCaCert {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The CA bundle is not PEM.
    #[error("--ca-cert {}: not a valid PEM certificate bundle: {source}", path.display())]
    InvalidCaCert {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The TLS stack refused its settings.
    #[error("cannot set up the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

impl From<ClientBuildError> for Fatal {
    fn from(error: ClientBuildError) -> Self {
        Fatal::new(exit::USAGE, error.to_string())
    }
}

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
            let pem = std::fs::read(path).map_err(|source| ClientBuildError::ReadCaCert {
                path: path.clone(),
                source,
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
                ClientBuildError::InvalidCaCert {
                    path: path.clone(),
                    source,
                }
            })?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build().map_err(ClientBuildError::Http)?;
        Ok(Self {
            http,
            base_url: settings.base_url.clone(),
            api: Mutex::new(SecretsApi::Unknown),
            project_ids: Mutex::new(BTreeMap::new()),
            counts: Arc::default(),
            max_response_size: settings.max_response_size,
        })
    }

    /// The request counters, shared with `/metrics`.
    pub fn request_counts(&self) -> Arc<RequestCounts> {
        Arc::clone(&self.counts)
    }

    async fn log_in(&self, login: Login<'_>) -> Result<TokenGrant, ApiError> {
        let (path, body) = match login {
            Login::UniversalAuth {
                client_id,
                client_secret,
            } => (
                "/v1/auth/universal-auth/login",
                json_body(&UniversalAuthBody {
                    client_id: client_id.expose(),
                    client_secret: client_secret.expose(),
                }),
            ),
            Login::Kubernetes { identity_id, jwt } => (
                "/v1/auth/kubernetes-auth/login",
                json_body(&JwtLoginBody {
                    identity_id,
                    jwt: jwt.expose(),
                }),
            ),
            Login::IdentityToken {
                method,
                identity_id,
                jwt,
            } => (
                method.path(),
                json_body(&JwtLoginBody {
                    identity_id,
                    jwt: jwt.expose(),
                }),
            ),
            Login::AwsIam {
                identity_id,
                request_headers,
                request_body,
            } => (
                "/v1/auth/aws-auth/login",
                json_body(&AwsLoginBody {
                    identity_id,
                    iam_http_request_method: "POST",
                    iam_request_body: request_body,
                    iam_request_headers: request_headers.expose(),
                }),
            ),
        };
        self.post_token(login.endpoint(), path, body).await
    }

    async fn renew_token(&self, token: &SecretValue) -> Result<TokenGrant, ApiError> {
        let body = json_body(&RenewBody {
            access_token: token.expose(),
        });
        self.post_token(Endpoint::Renew, "/v1/auth/token/renew", body)
            .await
    }

    /// Posts a body holding a credential. The body's only buffer is wiped when the HTTP stack
    /// lets go of it.
    async fn post_token(
        &self,
        endpoint: Endpoint,
        path: &str,
        body: Zeroizing<Vec<u8>>,
    ) -> Result<TokenGrant, ApiError> {
        let request = self
            .http
            .request(Method::POST, format!("{}{path}", self.base_url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(Bytes::from_owner(body));
        let (status, headers, body) = self.send(endpoint, request).await?;
        if !status.is_success() {
            return Err(status_error(endpoint, status, &headers, &body));
        }
        serde_json::from_slice::<TokenResponse>(&body)
            .map(TokenGrant::from)
            .map_err(|e| malformed(endpoint, &e))
    }

    /// Uses `/api/v3/secrets/raw`, which every server version serves and which takes a project
    /// slug directly (as the official CLI agent and SDKs do), and `/api/v4/secrets` only on a
    /// server without it; the choice is remembered, so every call, the first included, makes
    /// exactly one list request.
    async fn list(
        &self,
        token: &SecretValue,
        query: &ListQuery,
        etag: Option<&str>,
    ) -> Result<ListOutcome, ApiError> {
        let mut etag = etag;
        loop {
            let api = *self.api.lock().unwrap_or_else(|e| e.into_inner());
            let result = match api {
                SecretsApi::Unknown | SecretsApi::V3 => {
                    self.get_list("/v3/secrets/raw", &v3_params(query), token, etag)
                        .await
                }
                SecretsApi::V4 => match self.v4_params(token, query).await {
                    Ok(params) => self.get_list("/v4/secrets", &params, token, etag).await,
                    Err(e) => Err(e),
                },
            };
            match result {
                Err(e) if api == SecretsApi::Unknown && e.is_route_missing() => {
                    tracing::debug!("server has no /api/v3/secrets/raw, using /api/v4/secrets");
                    *self.api.lock().unwrap_or_else(|e| e.into_inner()) = SecretsApi::V4;
                    // An ETag from one API means nothing to the other.
                    etag = None;
                }
                other => {
                    if api == SecretsApi::Unknown && other.is_ok() {
                        *self.api.lock().unwrap_or_else(|e| e.into_inner()) = SecretsApi::V3;
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
                return Err(ApiError::transport(endpoint, error));
            }
        };
        let status = response.status();
        self.counts.record(endpoint, Some(status.as_u16()));
        let headers = std::mem::take(response.headers_mut());
        let too_large = |announced| {
            ApiError::new(
                endpoint,
                ApiErrorKind::TooLarge {
                    limit: self.max_response_size,
                    announced,
                },
            )
        };
        let announced = response.content_length();
        if announced.is_some_and(|size| size > self.max_response_size) {
            return Err(too_large(announced));
        }
        let mut body = BodyBuffer::new(announced, self.max_response_size);
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => body.push(&chunk).map_err(|TooLarge| too_large(announced))?,
                Ok(None) => break,
                Err(error) => return Err(ApiError::transport(endpoint, error)),
            }
        }
        let body = body.into_inner();
        tracing::debug!(
            endpoint = endpoint.as_str(),
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "infisical request"
        );
        Ok((status, headers, body))
    }
}

impl Infisical for InfisicalClient {
    fn login<'a>(&'a self, login: Login<'a>) -> ApiFuture<'a, TokenGrant> {
        Box::pin(self.log_in(login))
    }

    fn renew<'a>(&'a self, token: &'a SecretValue) -> ApiFuture<'a, TokenGrant> {
        Box::pin(self.renew_token(token))
    }

    fn list_secrets<'a>(
        &'a self,
        token: &'a SecretValue,
        query: &'a ListQuery,
        etag: Option<&'a str>,
    ) -> ApiFuture<'a, ListOutcome> {
        Box::pin(self.list(token, query, etag))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UniversalAuthBody<'a> {
    client_id: &'a str,
    client_secret: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JwtLoginBody<'a> {
    identity_id: &'a str,
    jwt: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AwsLoginBody<'a> {
    identity_id: &'a str,
    iam_http_request_method: &'a str,
    iam_request_body: &'a str,
    iam_request_headers: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RenewBody<'a> {
    access_token: &'a str,
}

/// A response body growing towards a limit. Every buffer it ever used is wiped: it starts at
/// the announced size, and when it must grow the bytes move into a new, larger buffer and the
/// old one is wiped as it drops (a `Vec` reallocating in place of that would free the old
/// copy unwiped).
struct BodyBuffer {
    bytes: Zeroizing<Vec<u8>>,
    limit: usize,
}

/// The body would pass the limit.
#[derive(Debug, PartialEq, Eq)]
struct TooLarge;

impl BodyBuffer {
    /// Room for the announced size (bounded by the limit), or a small start.
    fn new(announced: Option<u64>, limit: u64) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let start = announced
            .and_then(|size| usize::try_from(size).ok())
            .unwrap_or(8 << 10)
            .min(limit);
        Self {
            bytes: Zeroizing::new(Vec::with_capacity(start)),
            limit,
        }
    }

    /// Appends a chunk, or refuses it when the body would pass the limit.
    fn push(&mut self, chunk: &[u8]) -> Result<(), TooLarge> {
        let needed = self.bytes.len() + chunk.len();
        if needed > self.limit {
            return Err(TooLarge);
        }
        if needed > self.bytes.capacity() {
            let capacity = needed.max(self.bytes.capacity() * 2).min(self.limit);
            let mut grown = Zeroizing::new(Vec::with_capacity(capacity));
            grown.extend_from_slice(&self.bytes);
            // The old buffer is wiped as it drops here.
            self.bytes = grown;
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    fn into_inner(self) -> Zeroizing<Vec<u8>> {
        self.bytes
    }
}

/// Serializes a request body straight into a buffer that is wiped on drop. The buffer is
/// sized first, so no reallocation leaves an unwiped copy behind.
fn json_body(body: &impl Serialize) -> Zeroizing<Vec<u8>> {
    /// Counts the bytes written to it.
    struct Length(usize);
    impl std::io::Write for Length {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    // Serializing structs of strings cannot fail, into either writer.
    let mut length = Length(0);
    let _ = serde_json::to_writer(&mut length, body);
    let mut buffer = Zeroizing::new(Vec::with_capacity(length.0));
    let _ = serde_json::to_writer(&mut *buffer, body);
    buffer
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_escaped_in_paths() {
        assert_eq!(path_segment("my-app_1"), "my-app_1");
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn bodies_grow_into_new_buffers_up_to_the_limit() {
        let mut body = BodyBuffer::new(Some(4), 64);
        assert_eq!(body.bytes.capacity(), 4);
        body.push(b"abcd").unwrap();
        let first = body.bytes.as_ptr();
        // Growing never reallocates in place: it moves to a new buffer, the old one wiped.
        body.push(b"efgh").unwrap();
        assert_ne!(body.bytes.as_ptr(), first);
        assert!(body.bytes.capacity() >= 8);
        body.push(&[b'x'; 56]).unwrap();
        assert_eq!(body.bytes.len(), 64);
        assert_eq!(body.push(b"y"), Err(TooLarge));
        assert_eq!(&body.into_inner()[..8], b"abcdefgh");
        // An announced size beyond the limit is not allocated.
        let body = BodyBuffer::new(Some(1 << 40), 1024);
        assert!(body.bytes.capacity() <= 1024);
        // Nothing announced: a small start.
        assert!(BodyBuffer::new(None, 16 << 20).bytes.capacity() <= 8 << 10);
    }

    #[test]
    fn login_bodies_fill_their_buffer_exactly() {
        let body = json_body(&UniversalAuthBody {
            client_id: "id",
            client_secret: "s\"cret",
        });
        assert_eq!(&body[..], br#"{"clientId":"id","clientSecret":"s\"cret"}"#);
        assert_eq!(body.capacity(), body.len());
    }
}
