//! Cloud identities: fetching the credential a cloud login sends (an AWS signature, a GCP or
//! Azure token) from where the platform provides it. Every login fetches afresh: projected
//! tokens and cloud credentials rotate.
//!
//! Each endpoint can be moved with the platform's standard variable (`AWS_ENDPOINT_URL_STS`,
//! `AWS_EC2_METADATA_SERVICE_ENDPOINT`, `GCE_METADATA_HOST`, `AZURE_AUTHORITY_HOST`) or, for
//! the Azure IMDS, `INFISICAL_AZURE_IMDS_ENDPOINT`.

pub mod aws;
pub mod azure;
pub mod gcp;
pub mod sigv4;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use zeroize::Zeroizing;

use crate::api::USER_AGENT;
use crate::backoff::Transient;

/// How long a cloud endpoint may take to accept a connection. Metadata servers answer in
/// milliseconds when they exist; off their platform the address is usually a black hole.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one cloud request may take in all.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from a cloud endpoint (tokens and credentials are a few KiB).
const MAX_BODY: usize = 1 << 20;

/// Why a cloud credential could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// The endpoint could not be reached or did not answer in time (retried).
    #[error("cannot reach {service} at {url} ({cause}){hint}")]
    Unreachable {
        /// What was called ("the GCE metadata server").
        service: &'static str,
        /// Where (never holds a credential).
        url: String,
        /// The transport failure.
        cause: String,
        /// What to check, starting with "; ".
        hint: String,
    },
    /// The endpoint answered with an error status.
    #[error("{service} at {url} refused: HTTP {status}: {detail}{hint}")]
    Refused {
        /// What was called.
        service: &'static str,
        /// Where.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The endpoint's own error code and message (never a credential).
        detail: String,
        /// What to do, starting with "; ".
        hint: String,
    },
    /// A success status whose body is not what the endpoint sends.
    #[error("{service} at {url} sent an answer that could not be read ({detail})")]
    Malformed {
        /// What was called.
        service: &'static str,
        /// Where.
        url: String,
        /// What was wrong with it (never its content).
        detail: String,
    },
    /// No source of AWS credentials is available.
    #[error("no AWS credentials found: tried {tried}; give the pod an IAM role (IRSA or EKS Pod Identity) or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")]
    NoAwsCredentials {
        /// Each source tried and why it gave nothing.
        tried: String,
        /// Whether a source that might come back (the instance metadata) was unreachable.
        retry: bool,
    },
    /// A local credential (a key file, a token file) is unusable.
    #[error("{0}")]
    Local(String),
}

impl CloudError {
    /// Whether this is the local configuration's fault (exit 64) rather than a refusal.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            CloudError::Local(_) | CloudError::NoAwsCredentials { retry: false, .. }
        )
    }
}

impl Transient for CloudError {
    /// Unreachable endpoints, timeouts, 5xx and 429 are retried; refusals are not.
    fn is_transient(&self) -> bool {
        match self {
            CloudError::Unreachable { .. } | CloudError::Malformed { .. } => true,
            CloudError::Refused { status, .. } => *status == 429 || *status >= 500,
            CloudError::NoAwsCredentials { retry, .. } => *retry,
            CloudError::Local(_) => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// An HTTP client for cloud endpoints: the built-in roots, short timeouts, bodies read into
/// buffers that are wiped on drop.
#[derive(Clone)]
pub struct CloudHttp {
    client: reqwest::Client,
}

/// One request to a cloud endpoint.
pub struct CloudRequest<'a> {
    /// What is called, for messages ("the EC2 instance metadata service").
    pub service: &'static str,
    /// The method.
    pub method: Method,
    /// The URL; it appears in messages, so it never holds a credential.
    pub url: String,
    /// Headers.
    pub headers: Vec<(&'static str, &'a str)>,
    /// A form body, if any.
    pub form: Option<Zeroizing<String>>,
    /// What to say after a failure to connect ("; not running on GCE or GKE? …").
    pub unreachable_hint: &'a str,
}

impl CloudHttp {
    /// A client with the cloud timeouts.
    pub fn new() -> Result<Self, CloudError> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(USER_AGENT)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| CloudError::Local(format!("cannot set up an HTTP client: {e}")))?;
        Ok(Self { client })
    }

    /// Sends the request; returns the status and the body of any answer.
    pub async fn send(
        &self,
        request: CloudRequest<'_>,
    ) -> Result<(StatusCode, Zeroizing<Vec<u8>>), CloudError> {
        let mut builder = self.client.request(request.method, &request.url);
        for (name, value) in &request.headers {
            builder = builder.header(*name, *value);
        }
        if let Some(form) = request.form {
            builder = builder
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(bytes::Bytes::from_owner(Zeroizing::new(
                    form.as_bytes().to_vec(),
                )));
        }
        let unreachable = |cause: String| CloudError::Unreachable {
            service: request.service,
            url: request.url.clone(),
            cause,
            hint: request.unreachable_hint.to_owned(),
        };
        let mut response = builder
            .send()
            .await
            .map_err(|e| unreachable(root_cause(&e)))?;
        let status = response.status();
        let mut body = Zeroizing::new(Vec::with_capacity(
            response
                .content_length()
                .map_or(4096, |n| n as usize)
                .min(MAX_BODY),
        ));
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unreachable(root_cause(&e)))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(CloudError::Malformed {
                    service: request.service,
                    url: request.url,
                    detail: format!("the answer is larger than {MAX_BODY} bytes"),
                });
            }
            if body.len() + chunk.len() > body.capacity() {
                // Grow into a new zeroizing buffer so the old one is wiped, not just freed.
                let mut grown = Zeroizing::new(Vec::with_capacity(
                    (body.capacity() * 2).max(body.len() + chunk.len()),
                ));
                grown.extend_from_slice(&body);
                body = grown;
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(
            service = request.service,
            status = status.as_u16(),
            "cloud credential request"
        );
        Ok((status, body))
    }
}

/// The innermost cause of a transport error ("Connection refused", "operation timed out").
fn root_cause(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".to_owned();
    }
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// An error answer's text, cut to one short line (cloud error bodies never hold credentials,
/// but they can be long HTML pages).
pub fn one_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(300)
        .collect();
    if line.is_empty() {
        "(empty body)".to_owned()
    } else {
        line
    }
}

/// Percent-encodes a form or query value, into a buffer sized so it never reallocates and
/// wiped on drop (the value may be a token).
pub fn form_encode(text: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(text.len() * 3));
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// A form body (`k=v&k=v`, values percent-encoded) in a buffer sized so it never reallocates,
/// wiped on drop (values may be tokens).
pub fn form_body(pairs: &[(&str, &str)]) -> Zeroizing<String> {
    let size = pairs.iter().map(|(k, v)| k.len() + 3 * v.len() + 2).sum();
    let mut body = Zeroizing::new(String::with_capacity(size));
    for (index, (key, value)) in pairs.iter().enumerate() {
        if index > 0 {
            body.push('&');
        }
        body.push_str(key);
        body.push('=');
        body.push_str(&form_encode(value));
    }
    body
}
