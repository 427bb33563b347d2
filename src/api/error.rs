//! What can go wrong with one request to Infisical, classified once: transient or not, "log in
//! again" or not. The transport error is kept as the `source`; TLS and connection failures are
//! told apart by walking its chain of causes, never by matching message text.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

use super::model::ErrorBody;
use super::Endpoint;
use crate::backoff::Transient;

/// What went wrong with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiErrorKind {
    /// No connection (DNS, refused, reset).
    Connect,
    /// The request did not finish within `--request-timeout`.
    Timeout,
    /// The TLS handshake failed (usually an untrusted or mismatched certificate).
    Tls,
    /// An `https://` address whose server answered in plain HTTP (the wrong port or scheme).
    PlainHttp,
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
    /// The answer is larger than `--max-response-size`; it was not read whole.
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
        /// The size the server announced (`Content-Length`), if it did.
        announced: Option<u64>,
    },
}

/// A failed request: which endpoint, what happened, and the transport error behind it. Never
/// holds a secret.
#[derive(Debug, thiserror::Error)]
pub struct ApiError {
    /// The call.
    pub endpoint: Endpoint,
    /// What happened.
    pub kind: ApiErrorKind,
    /// The transport error, for connection, timeout and TLS failures.
    #[source]
    pub source: Option<reqwest::Error>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoint = self.endpoint;
        match &self.kind {
            ApiErrorKind::Connect => write!(f, "{endpoint}: cannot connect: {}", self.cause()),
            ApiErrorKind::Timeout => write!(f, "{endpoint}: request timed out"),
            ApiErrorKind::Tls => write!(f, "{endpoint}: TLS failed: {}", self.cause()),
            ApiErrorKind::PlainHttp => {
                write!(f, "{endpoint}: the server answered TLS in plain HTTP")
            }
            ApiErrorKind::Status {
                status,
                error,
                message,
                ..
            } => write!(f, "{endpoint}: HTTP {status} {error}: {message}"),
            ApiErrorKind::Malformed(detail) => {
                write!(f, "{endpoint}: unexpected response: {detail}")
            }
            ApiErrorKind::TooLarge { limit, .. } => {
                write!(f, "{endpoint}: the answer is larger than {limit} bytes")
            }
        }
    }
}

impl ApiError {
    /// An error without a transport cause (the server answered).
    pub fn new(endpoint: Endpoint, kind: ApiErrorKind) -> Self {
        Self {
            endpoint,
            kind,
            source: None,
        }
    }

    /// Classifies a transport failure by what its chain of causes holds: a TLS error from
    /// rustls, a timeout, or else a connection failure.
    pub fn transport(endpoint: Endpoint, error: reqwest::Error) -> Self {
        let kind = if error.is_timeout() || chain(&error).any(is_timeout) {
            ApiErrorKind::Timeout
        } else if let Some(tls) = tls_error(&error) {
            if is_plain_http(tls) {
                ApiErrorKind::PlainHttp
            } else {
                ApiErrorKind::Tls
            }
        } else {
            ApiErrorKind::Connect
        };
        Self {
            endpoint,
            kind,
            source: Some(error),
        }
    }

    /// The root cause a user can act on ("Connection refused", "invalid peer certificate:
    /// UnknownIssuer"), or an empty string when there is no transport error.
    pub fn cause(&self) -> String {
        let Some(source) = &self.source else {
            return String::new();
        };
        if let Some(tls) = tls_error(source) {
            return tls.to_string();
        }
        chain(source)
            .last()
            .map(ToString::to_string)
            .unwrap_or_default()
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

    /// The access token was refused: 401 on an authenticated call, 403 `TokenError`, or an old
    /// server's 400 for a token past its number of uses.
    /// The cure is to log in again (once).
    pub fn is_token_rejected(&self) -> bool {
        if self.endpoint.is_login() {
            return false;
        }
        match &self.kind {
            ApiErrorKind::Status {
                status,
                error,
                message,
                ..
            } => {
                (*status == 401 && error != "ValidationFailure")
                    || (*status == 403 && error == "TokenError")
                    // Older servers: a token that used up its number of uses.
                    || (*status == 400 && message.contains("number of uses limit reached"))
            }
            _ => false,
        }
    }

    /// The route does not exist on this server (Fastify's own 404), e.g. no `/api/v4` yet.
    pub fn is_route_missing(&self) -> bool {
        matches!(&self.kind, ApiErrorKind::Status { status: 404, error, message, .. }
            if error == "Not Found" && message.starts_with("Route "))
    }
}

impl Transient for ApiError {
    /// Worth retrying later: network trouble, timeouts, 5xx, 429, a garbled body.
    /// A 500 that is really "no such project slug" is not.
    fn is_transient(&self) -> bool {
        match &self.kind {
            ApiErrorKind::Connect | ApiErrorKind::Timeout | ApiErrorKind::Malformed(_) => true,
            // Retrying cannot change what the server speaks or trusts.
            ApiErrorKind::Tls | ApiErrorKind::PlainHttp => false,
            // The same secrets will be as large next time.
            ApiErrorKind::TooLarge { .. } => false,
            ApiErrorKind::Status { status, error, .. } => {
                *status == 429 || (*status >= 500 && !is_unknown_slug(*status, error))
            }
        }
    }

    /// How long the server asked us to wait, from `retry-after` or the 429 message.
    fn retry_after(&self) -> Option<Duration> {
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

/// The error and its causes, outermost first. `io::Error` hides the error it wraps from
/// `source()` (it returns the wrapped error's own source), so it is unwrapped with `get_ref`.
fn chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&current| {
        match current.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
            None => current.source(),
        }
    })
}

fn tls_error<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    chain(error).find_map(|cause| cause.downcast_ref::<rustls::Error>())
}

/// What rustls says when the first bytes back are not a TLS record: a plain-HTTP server's
/// `HTTP/1.1 400` starts with `H`, which is no TLS content type.
fn is_plain_http(error: &rustls::Error) -> bool {
    matches!(
        error,
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)
    )
}

fn is_timeout(cause: &(dyn StdError + 'static)) -> bool {
    cause
        .downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
}

/// A success status whose body is not valid JSON of the expected shape.
pub(super) fn malformed(endpoint: Endpoint, error: &serde_json::Error) -> ApiError {
    // serde_json's message names the position and the expected shape, never the input text.
    ApiError::new(
        endpoint,
        ApiErrorKind::Malformed(format!("invalid JSON ({error})")),
    )
}

/// An error status, with the server's error class and message and any `Retry-After`.
pub(super) fn status_error(
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
    fn a_plain_http_answer_is_told_apart_from_other_tls_failures() {
        assert!(is_plain_http(&rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
        )));
        assert!(!is_plain_http(&rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
        )));
        assert!(!ApiError::new(Endpoint::ListSecrets, ApiErrorKind::PlainHttp).is_transient());
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
}
