//! The Infisical API: what we ask of it ([`Infisical`]), what it answers, and the HTTP client
//! that speaks it ([`InfisicalClient`]).
//!
//! Errors are classified here (transient or not, "log in again" or not); what they mean for the
//! user, with advice, is worked out in [`crate::diagnose`], which knows the configuration. This
//! module knows nothing of the command line or the configuration file.

mod client;
mod error;
pub mod model;

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use crate::secrets::SecretValue;
use model::{ListResponse, TokenResponse};

pub use client::{ClientBuildError, InfisicalClient, RequestCounts};
pub use error::{is_unknown_slug, retry_after_from_message, ApiError, ApiErrorKind};

/// The User-Agent sent with every request.
pub const USER_AGENT: &str = concat!("infisical-materializer/", env!("CARGO_PKG_VERSION"));

/// Which call failed; used in messages and as the metrics label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// `POST /api/v1/auth/universal-auth/login`.
    UniversalAuthLogin,
    /// `POST /api/v1/auth/kubernetes-auth/login`.
    KubernetesLogin,
    /// `POST /api/v1/auth/oidc-auth/login`.
    OidcLogin,
    /// `POST /api/v1/auth/jwt-auth/login`.
    JwtLogin,
    /// `POST /api/v1/auth/aws-auth/login`.
    AwsLogin,
    /// `POST /api/v1/auth/gcp-auth/login`.
    GcpLogin,
    /// `POST /api/v1/auth/azure-auth/login`.
    AzureLogin,
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
            Endpoint::OidcLogin => "oidc_login",
            Endpoint::JwtLogin => "jwt_login",
            Endpoint::AwsLogin => "aws_login",
            Endpoint::GcpLogin => "gcp_login",
            Endpoint::AzureLogin => "azure_login",
            Endpoint::Renew => "token_renew",
            Endpoint::ListSecrets => "list_secrets",
            Endpoint::ProjectBySlug => "project_by_slug",
        }
    }

    /// Whether this is a login call.
    pub fn is_login(self) -> bool {
        matches!(
            self,
            Endpoint::UniversalAuthLogin
                | Endpoint::KubernetesLogin
                | Endpoint::OidcLogin
                | Endpoint::JwtLogin
                | Endpoint::AwsLogin
                | Endpoint::GcpLogin
                | Endpoint::AzureLogin
        )
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Endpoint::UniversalAuthLogin => "universal auth login",
            Endpoint::KubernetesLogin => "kubernetes auth login",
            Endpoint::OidcLogin => "OIDC auth login",
            Endpoint::JwtLogin => "JWT auth login",
            Endpoint::AwsLogin => "AWS IAM auth login",
            Endpoint::GcpLogin => "GCP auth login",
            Endpoint::AzureLogin => "Azure auth login",
            Endpoint::Renew => "token renewal",
            Endpoint::ListSecrets => "listing secrets",
            Endpoint::ProjectBySlug => "looking up the project slug",
        })
    }
}

/// How to reach the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiSettings {
    /// Base URL ending in `/api`, no trailing slash.
    pub base_url: String,
    /// A PEM bundle of CA certificates trusted in addition to the built-in roots.
    pub ca_cert: Option<PathBuf>,
    /// Timeout of one request.
    pub request_timeout: Duration,
    /// The largest answer read, in bytes; a larger one is refused (`--max-response-size`).
    pub max_response_size: u64,
}

/// The project, by id or by slug.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProjectRef {
    /// The project id (a UUID).
    Id(String),
    /// The project slug (not the display name).
    Slug(String),
}

impl fmt::Display for ProjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProjectRef::Id(id) => write!(f, "project id {id:?}"),
            ProjectRef::Slug(slug) => write!(f, "project slug {slug:?}"),
        }
    }
}

/// What to list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    /// The project.
    pub project: ProjectRef,
    /// Environment slug.
    pub environment: String,
    /// Folder path, normalized (leading `/`, no trailing `/` except the root).
    pub path: String,
    /// Include sub-folders.
    pub recursive: bool,
    /// Include imports.
    pub include_imports: bool,
    /// Expand `${...}` references on the server.
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

/// A login: the method and its credentials, borrowed so they are never copied out of their
/// zeroizing holders.
#[derive(Clone, Copy)]
pub enum Login<'a> {
    /// Universal auth: client id and client secret.
    UniversalAuth {
        /// The client id.
        client_id: &'a SecretValue,
        /// The client secret.
        client_secret: &'a SecretValue,
    },
    /// Kubernetes auth: the identity and the pod's service-account token.
    Kubernetes {
        /// The machine identity id.
        identity_id: &'a str,
        /// The service-account token (a JWT).
        jwt: &'a SecretValue,
    },
    /// A login that sends `{identityId, jwt}`: OIDC, JWT, GCP or Azure auth.
    IdentityToken {
        /// Which login.
        method: TokenLogin,
        /// The machine identity id.
        identity_id: &'a str,
        /// The token.
        jwt: &'a SecretValue,
    },
    /// AWS IAM auth: a signed STS `GetCallerIdentity` request, which Infisical forwards.
    AwsIam {
        /// The machine identity id.
        identity_id: &'a str,
        /// base64 of the JSON object of the signed request's headers.
        request_headers: &'a SecretValue,
        /// base64 of the request body.
        request_body: &'a str,
    },
}

impl Login<'_> {
    /// The endpoint this login calls.
    pub fn endpoint(&self) -> Endpoint {
        match self {
            Login::UniversalAuth { .. } => Endpoint::UniversalAuthLogin,
            Login::Kubernetes { .. } => Endpoint::KubernetesLogin,
            Login::IdentityToken { method, .. } => method.endpoint(),
            Login::AwsIam { .. } => Endpoint::AwsLogin,
        }
    }
}

/// The logins that send an identity id and a token the server verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenLogin {
    /// OIDC auth: a JWT from an issuer with a discovery document.
    Oidc,
    /// JWT auth: a JWT checked against JWKS or static keys.
    Jwt,
    /// GCP auth: a Google ID token or a service-account-signed JWT.
    Gcp,
    /// Azure auth: an Azure AD access token.
    Azure,
}

impl TokenLogin {
    /// The endpoint it calls.
    pub fn endpoint(self) -> Endpoint {
        match self {
            TokenLogin::Oidc => Endpoint::OidcLogin,
            TokenLogin::Jwt => Endpoint::JwtLogin,
            TokenLogin::Gcp => Endpoint::GcpLogin,
            TokenLogin::Azure => Endpoint::AzureLogin,
        }
    }

    /// Its path under `/api`.
    pub fn path(self) -> &'static str {
        match self {
            TokenLogin::Oidc => "/v1/auth/oidc-auth/login",
            TokenLogin::Jwt => "/v1/auth/jwt-auth/login",
            TokenLogin::Gcp => "/v1/auth/gcp-auth/login",
            TokenLogin::Azure => "/v1/auth/azure-auth/login",
        }
    }
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

/// The future of one API call.
pub type ApiFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send + 'a>>;

/// The calls this tool makes to Infisical. [`InfisicalClient`] makes them over HTTP; tests of
/// the layers above script them in-process (with tokio's paused clock).
pub trait Infisical: Send + Sync {
    /// Logs in and returns the granted access token.
    fn login<'a>(&'a self, login: Login<'a>) -> ApiFuture<'a, TokenGrant>;

    /// Renews an access token.
    fn renew<'a>(&'a self, token: &'a SecretValue) -> ApiFuture<'a, TokenGrant>;

    /// Lists secrets once, sending `If-None-Match` when an ETag is known.
    fn list_secrets<'a>(
        &'a self,
        token: &'a SecretValue,
        query: &'a ListQuery,
        etag: Option<&'a str>,
    ) -> ApiFuture<'a, ListOutcome>;
}
