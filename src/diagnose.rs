//! Turns failures into one line that says what went wrong and what to do, with the exit code.
//!
//! Infisical's raw answers are often misleading (an unknown project slug is a 500, an unknown
//! environment an empty 200), so the advice is worked out here from the error *and* the
//! configuration that led to it.

use crate::api::{
    is_unknown_slug, ApiError, ApiErrorKind, ApiSettings, Endpoint, ListQuery, ProjectRef,
};
use crate::auth::cloud::CloudError;
use crate::auth::jwt::JwtClaims;
use crate::auth::{AuthConfig, AuthError, Credential};
use crate::backoff::Transient;
use crate::config::FetchConfig;
use crate::error::{exit, Fatal};
use crate::source::{FetchError, FetchFailure};

/// Explains a failed fetch for this configuration.
pub fn fetch_failure(failure: &FetchFailure, config: &FetchConfig) -> Fatal {
    // A failure names its source; one that does not (a login, a conflict) is explained with the
    // first source, whose details its message does not use.
    let source = failure
        .source
        .and_then(|index| config.sources.get(index))
        .or(config.sources.first());
    let Some(source) = source else {
        return Fatal::new(exit::USAGE, "no source of secrets is configured");
    };
    let context = Context {
        api: &config.api,
        auth: &config.auth,
        query: &source.query,
    };
    explain(&failure.error, &context)
}

/// What an explanation may draw on: the server, the identity, and the source concerned.
struct Context<'a> {
    api: &'a ApiSettings,
    auth: &'a AuthConfig,
    query: &'a ListQuery,
}

fn explain(error: &FetchError, config: &Context) -> Fatal {
    match error {
        FetchError::Auth(AuthError::Credential(error)) => Fatal::new(exit::USAGE, error.to_string()),
        FetchError::Auth(AuthError::TokenRejected { reason }) => Fatal::new(
            exit::NO_PERMISSION,
            format!(
                "Infisical rejected the access token ({reason}) and token auth cannot log in again: \
                 put a fresh machine-identity token in {}",
                token_origin(config)
            ),
        ),
        FetchError::Auth(AuthError::Api(error)) | FetchError::Api(error) => api_failure(error, config),
        FetchError::Auth(AuthError::Cloud(error)) => cloud_failure(error),
        FetchError::Auth(AuthError::JwtRefused { error, claims }) => {
            jwt_refused(error, claims, config)
        }
        FetchError::Auth(AuthError::ListAudienceUnsupported { error, claims }) => Fatal::new(
            exit::NO_PERMISSION,
            format!(
                "{} failed with {} although the token is well formed: this Infisical server cannot \
                 read a list-valued aud (the token from {} has {claims}), and every kubelet-projected \
                 token has one; upgrade Infisical (2025 or later), or use --auth-method kubernetes",
                error.endpoint,
                error.status().map_or_else(String::new, |s| format!("HTTP {s}")),
                jwt_origin(config)
            ),
        ),
        FetchError::Auth(AuthError::AwsSignatureRefused { error, verdict }) => Fatal::new(
            exit::NO_PERMISSION,
            format!(
                "{} failed ({}), and {verdict}",
                error.endpoint,
                error
                    .server_error()
                    .map_or_else(String::new, |(class, message)| format!("{class}: {message}"))
            ),
        ),
        FetchError::HiddenValues { keys } => Fatal::new(
            exit::NO_PERMISSION,
            format!(
                "the identity may list but not read the values of {} in environment {:?} path {:?}: \
                 give its project role the permission to read secret values",
                keys.join(", "),
                config.query.environment,
                config.query.path
            ),
        ),
        FetchError::Empty => Fatal::new(exit::NOT_FOUND, empty_result(config)),
        FetchError::MissingKeys { keys } => Fatal::new(
            exit::NOT_FOUND,
            format!(
                "--key names secrets that do not exist in {} environment {:?} path {:?}: {}; check \
                 the spelling (keys are case-sensitive) and the folder",
                config.query.project,
                config.query.environment,
                config.query.path,
                keys.join(", ")
            ),
        ),
        FetchError::Conflict {
            key,
            earlier,
            later,
        } => Fatal::new(
            exit::DATA,
            format!(
                "secret {key:?} comes from two sources ({earlier}, and {later}) and on-conflict is \
                 fail: take it from one of them only (keys, keys-matching) or give one a prefix"
            ),
        ),
    }
}

/// Where the JWT of an `oidc` or `jwt` login comes from, for messages.
fn jwt_origin(config: &Context) -> String {
    match &config.auth {
        AuthConfig::Jwt {
            jwt: Credential::File(path),
            ..
        } => path.display().to_string(),
        AuthConfig::Jwt { .. } => "INFISICAL_JWT".to_owned(),
        AuthConfig::GcpIdToken { .. } => "the GCE metadata server".to_owned(),
        AuthConfig::GcpIam { key_file, .. } => {
            format!("the key file {}", key_file.display())
        }
        AuthConfig::Azure { .. } => "Azure AD".to_owned(),
        _ => "the credential".to_owned(),
    }
}

/// A cloud credential that could not be had: the local setup (64), a refusal by the cloud
/// (77), or an endpoint that is down (69, after the deadline).
fn cloud_failure(error: &CloudError) -> Fatal {
    let code = if error.is_configuration() {
        exit::USAGE
    } else if error.is_transient() {
        exit::UNAVAILABLE
    } else {
        exit::NO_PERMISSION
    };
    Fatal::new(code, error.to_string())
}

/// A JWT-bearing login refused: name the claims the identity's settings are checked against.
fn jwt_refused(error: &ApiError, claims: &JwtClaims, config: &Context) -> Fatal {
    let (status, message) = match &error.kind {
        ApiErrorKind::Status {
            status, message, ..
        } => (*status, message.as_str()),
        _ => (0, ""),
    };
    let lower = message.to_ascii_lowercase();
    let id = config.auth.identity_id().unwrap_or("");
    let method = method_label(error.endpoint);
    let subject = claims.subject.as_deref().unwrap_or("");
    let issuer = claims.issuer.as_deref().unwrap_or("");
    let advice = if status == 404 || lower.contains("not found") {
        format!(
            "identity {id:?} has no {method} auth configured: add {method} Auth to the identity, or \
             check --identity-id"
        )
    } else if lower.contains("audience") {
        match config.auth {
            AuthConfig::Jwt { .. } => "add one of the token's audiences to the identity's bound \
                 audiences, or project the token with an audience the identity allows \
                 (serviceAccountToken.audience)"
                .to_owned(),
            _ => format!(
                "the token's audience must match the identity's {method} auth settings (the \
                 identity id for GCP, --azure-resource for Azure)"
            ),
        }
    } else if lower.contains("subject") {
        format!(
            "set the identity's bound subject to {subject:?} (system:serviceaccount:NAMESPACE:NAME \
             of this pod), or run the pod under the allowed service account"
        )
    } else if lower.contains("issuer") {
        format!(
            "the identity's bound issuer / discovery URL must be the issuer that signed the token \
             ({issuer:?}); for a cluster, that is its service-account issuer URL"
        )
    } else if lower.contains("principal")
        || lower.contains("service account")
        || lower.contains("email")
        || lower.contains("tenant")
    {
        format!(
            "the account behind the token is not allowed by the identity's {method} auth: add it to \
             the allowed list there, or run under an allowed account"
        )
    } else {
        format!(
            "the token's signature or lifetime was refused: the identity's {method} auth must trust \
             the issuer that signed it ({issuer:?}, its JWKS or discovery URL), and the token must \
             not be expired"
        )
    };
    Fatal::new(
        exit::NO_PERMISSION,
        format!(
            "{} refused (HTTP {status}: {message}; the token from {} has {claims}): {advice}",
            error.endpoint,
            jwt_origin(config)
        ),
    )
}

/// The auth method's name as Infisical's UI spells it.
fn method_label(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::OidcLogin => "OIDC",
        Endpoint::JwtLogin => "JWT",
        Endpoint::AwsLogin => "AWS",
        Endpoint::GcpLogin => "GCP",
        Endpoint::AzureLogin => "Azure",
        _ => "Kubernetes",
    }
}

fn token_origin(config: &Context) -> String {
    match &config.auth {
        AuthConfig::Token { token } => token
            .path()
            .map(|p| format!("--token-file {}", p.display()))
            .unwrap_or_else(|| "INFISICAL_TOKEN".to_owned()),
        _ => "--token-file".to_owned(),
    }
}

/// The usual short slug for a long environment name people type by mistake.
fn likely_slug(environment: &str) -> Option<&'static str> {
    match environment.to_ascii_lowercase().as_str() {
        "production" | "prd" => Some("prod"),
        "development" | "develop" => Some("dev"),
        "stage" | "stg" => Some("staging"),
        "testing" => Some("test"),
        _ => None,
    }
}

fn empty_result(config: &Context) -> String {
    let hint = match likely_slug(&config.query.environment) {
        Some(slug) => {
            format!("--env wants the environment SLUG, not its name: did you mean --env {slug}?")
        }
        None => "check that --env is the environment slug (usually dev, staging or prod, \
                 not the display name) and that --path is the folder holding the secrets"
            .to_owned(),
    };
    let filters = if config.query.tags.is_empty() {
        String::new()
    } else {
        format!(" with tags {}", config.query.tags.join(","))
    };
    format!(
        "no secrets found in {} environment {:?} path {:?}{filters} (Infisical answers an unknown \
         environment or folder with an empty list): {hint}; pass --allow-empty if an empty set is expected",
        config.query.project, config.query.environment, config.query.path
    )
}

fn api_failure(error: &ApiError, config: &Context) -> Fatal {
    let server = &config.api.base_url;
    let cause = error.cause();
    match &error.kind {
        ApiErrorKind::Connect => Fatal::new(
            exit::UNAVAILABLE,
            format!(
                "cannot reach Infisical at {server} ({cause}): check --api-url, DNS and network \
                 policies"
            ),
        ),
        ApiErrorKind::Timeout => Fatal::new(
            exit::UNAVAILABLE,
            format!(
                "Infisical at {server} did not answer within --request-timeout {}: check the server \
                 and the network path to it",
                humantime::format_duration(config.api.request_timeout)
            ),
        ),
        ApiErrorKind::Tls => Fatal::new(
            exit::UNAVAILABLE,
            match &config.api.ca_cert {
                Some(path) => format!(
                    "TLS certificate of {server} is not trusted ({cause}): the --ca-cert {} bundle does \
                     not hold the CA that signed the server's certificate, or the certificate does not \
                     name this host",
                    path.display()
                ),
                None => format!(
                    "TLS certificate of {server} is not trusted ({cause}): if Infisical uses a private CA, \
                     pass its PEM bundle with --ca-cert"
                ),
            },
        ),
        ApiErrorKind::PlainHttp => Fatal::new(
            exit::UNAVAILABLE,
            format!(
                "the server at {server} speaks plain HTTP, not TLS: use {} or fix the port in \
                 --api-url",
                server.replacen("https://", "http://", 1)
            ),
        ),
        ApiErrorKind::TooLarge { limit, announced } => Fatal::new(
            exit::DATA,
            format!(
                "{}: Infisical's answer is larger than --max-response-size {}{}, so it was \
                 refused without being read: raise --max-response-size, or fetch fewer secrets \
                 (--path, --tag)",
                error.endpoint,
                size_words(*limit),
                announced
                    .map(|size| format!(" (it announced {})", size_words(size)))
                    .unwrap_or_default()
            ),
        ),
        ApiErrorKind::Malformed(detail) => Fatal::new(
            exit::UNAVAILABLE,
            format!(
                "{}: {server} sent an answer that is not Infisical's ({detail}): check that \
                 --api-url points at the Infisical API",
                error.endpoint
            ),
        ),
        ApiErrorKind::Status {
            status,
            error: class,
            message,
            retry_after,
        } => status_failure(error.endpoint, *status, class, message, *retry_after, config),
    }
}

/// A size in bytes in words: `16 MiB`, `512 KiB`, `1000 bytes`.
fn size_words(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

fn status_failure(
    endpoint: Endpoint,
    status: u16,
    class: &str,
    message: &str,
    retry_after: Option<std::time::Duration>,
    config: &Context,
) -> Fatal {
    let said = format!("HTTP {status}: {message}");
    if status == 429 {
        let wait = retry_after
            .map(|d| format!(" (it asked to wait {})", humantime::format_duration(d)))
            .unwrap_or_default();
        return Fatal::new(
            exit::UNAVAILABLE,
            format!(
                "Infisical is rate-limiting requests{wait}: lengthen --interval, raise \
                 --retry-deadline, or ask for a higher rate limit"
            ),
        );
    }
    if status >= 500 && !is_unknown_slug(status, class) {
        // Before the login advice: a failing server says nothing about the credentials...
        let aws = if endpoint == Endpoint::AwsLogin {
            // ...except for AWS logins, where STS's refusal comes back as a 500.
            "; for an aws-iam login a wrong or expired AWS key looks the same (Infisical turns \
             STS's refusal into a 500): check the pod's AWS credentials and clock"
        } else {
            ""
        };
        return Fatal::new(
            exit::UNAVAILABLE,
            format!("Infisical is failing ({said}; {class}): check the Infisical server{aws}"),
        );
    }
    if endpoint.is_login() {
        return login_failure(endpoint, status, message, config);
    }
    // A server that validates slugs refuses a display name ("Sidecar Test") as invalid (422;
    // 400 or 401 ValidationFailure on older ones) rather than not finding it: the cure is the same.
    let refused_slug = matches!(config.query.project, ProjectRef::Slug(_))
        && (matches!(status, 400 | 422) || status == 401 && class == "ValidationFailure")
        && (endpoint == Endpoint::ProjectBySlug || message.to_ascii_lowercase().contains("slug"));
    if endpoint == Endpoint::ProjectBySlug && status == 404
        || is_unknown_slug(status, class)
        || refused_slug
    {
        let slug = match &config.query.project {
            ProjectRef::Slug(slug) => slug.as_str(),
            ProjectRef::Id(id) => id.as_str(),
        };
        return Fatal::new(
            exit::NOT_FOUND,
            format!(
                "no project with slug {slug:?} ({said}): the slug differs from the project's display \
                 name; copy it from Project Settings in Infisical, or use --project-id"
            ),
        );
    }
    match status {
        401 if class == "ValidationFailure" => invalid_request(&said),
        401 | 403 if class == "TokenError" || status == 401 => Fatal::new(
            exit::NO_PERMISSION,
            format!(
                "Infisical rejected the access token even after logging in again ({said}): check that \
                 the machine identity still exists and its auth method is attached"
            ),
        ),
        403 if message.contains("readValue") => Fatal::new(
            exit::NO_PERMISSION,
            format!(
                "the identity may list but not read the secret values in environment {:?} path {:?} \
                 ({said}): give its project role the permission to read secret values",
                config.query.environment, config.query.path
            ),
        ),
        // A permission check (CASL) fails as `PermissionDenied`; any other 403 saying "not
        // allowed to access" is the project-membership check.
        403 if class.contains("not a member")
            || (class != "PermissionDenied" && message.contains("not allowed to access")) =>
        {
            Fatal::new(
            exit::NO_PERMISSION,
            format!(
                "the machine identity is not a member of {} ({said}; {class}): add it to the project \
                 under Project > Access Control > Machine Identities",
                config.query.project
            ),
            )
        }
        403 => Fatal::new(
            exit::NO_PERMISSION,
            format!(
                "permission denied for environment {:?} path {:?} ({said}): the identity is probably not \
                 added to the project, or its role lacks read access to that environment or folder",
                config.query.environment, config.query.path
            ),
        ),
        404 => not_found(class, message, config),
        _ => invalid_request(&said),
    }
}

fn not_found(class: &str, message: &str, config: &Context) -> Fatal {
    let lower = message.to_ascii_lowercase();
    let advice = if class == "SecretPathNotFound" || lower.contains("folder") {
        format!(
            "folder {:?} does not exist in environment {:?}: check --path (folders are case-sensitive)",
            config.query.path, config.query.environment
        )
    } else if lower.contains("environment") {
        match likely_slug(&config.query.environment) {
            Some(slug) => format!("environment {:?} does not exist: --env wants the environment SLUG; did you mean --env {slug}?", config.query.environment),
            None => format!("environment {:?} does not exist in {}: --env wants the environment slug (see Project Settings > Environments)", config.query.environment, config.query.project),
        }
    } else if lower.contains("project") {
        format!(
            "{} does not exist: copy the Project ID from Project Settings in Infisical",
            config.query.project
        )
    } else {
        "check --project-id/--project-slug, --env and --path".to_owned()
    };
    Fatal::new(exit::NOT_FOUND, format!("{advice} (HTTP 404: {message})"))
}

fn invalid_request(said: &str) -> Fatal {
    Fatal::new(
        exit::USAGE,
        format!("Infisical refused the request as invalid ({said}): check the options given"),
    )
}

fn login_failure(endpoint: Endpoint, status: u16, message: &str, config: &Context) -> Fatal {
    let said = format!("HTTP {status}: {message}");
    let lower = message.to_ascii_lowercase();
    let advice = match endpoint {
        Endpoint::UniversalAuthLogin if lower.contains("locked") => {
            "the identity is locked after repeated wrong client secrets; fix the client secret and wait \
             for the lockout (5 minutes by default) to pass"
                .to_owned()
        }
        Endpoint::UniversalAuthLogin if status == 404 || lower.contains("client id") => {
            "no machine identity has this client id: check --client-id (the Client ID shown under the \
             identity's Universal Auth, not the identity id)"
                .to_owned()
        }
        Endpoint::UniversalAuthLogin if lower.contains("expired") || lower.contains("usage limit") => {
            "the client secret has expired or used up its allowed logins: create a new client secret \
             for the identity's Universal Auth"
                .to_owned()
        }
        Endpoint::UniversalAuthLogin => {
            "check that the client secret belongs to this client id (3 wrong attempts lock the identity \
             for a while)"
                .to_owned()
        }
        _ if status == 404 || lower.contains("not found") => {
            let id = config.auth.identity_id().unwrap_or("");
            let method = method_label(endpoint);
            format!(
                "identity {id:?} has no {method} auth configured: add {method} Auth to the identity, \
                 or check --identity-id"
            )
        }
        Endpoint::AwsLogin if lower.contains("principal") || lower.contains("account") => {
            "the AWS principal (named above) is not allowed by the identity's AWS auth: add its ARN \
             to Allowed Principal ARNs, or its account to Allowed Account IDs"
                .to_owned()
        }
        Endpoint::AwsLogin => "check the identity's AWS auth settings and the pod's AWS role".to_owned(),
        Endpoint::OidcLogin | Endpoint::JwtLogin | Endpoint::GcpLogin | Endpoint::AzureLogin => {
            format!(
                "check the identity's {} auth settings against the token from {}",
                method_label(endpoint),
                jwt_origin(config)
            )
        }
        _ if lower.contains("namespace") || lower.contains("name not allowed") || lower.contains("audience") => {
            "the service account is not allowed by the identity's Kubernetes Auth settings: add this \
             pod's namespace / service account / token audience to the allowed lists, or use an \
             allowed one"
                .to_owned()
        }
        _ => {
            let file = match &config.auth {
                AuthConfig::Kubernetes { token_file, .. } => token_file.display().to_string(),
                _ => String::new(),
            };
            format!(
                "Infisical's TokenReview refused the service-account token from {file}: use a projected \
                 token whose audience the identity allows, and make sure the reviewer has \
                 system:auth-delegator"
            )
        }
    };
    Fatal::new(
        exit::NO_PERMISSION,
        format!("{endpoint} refused ({said}): {advice}"),
    )
}

#[cfg(test)]
mod tests {
    //! One row per piece of advice: the failure, the configuration it happened under, the exit
    //! code, and the words a user needs to see (the fix). Every message must also be one line
    //! and never echo a credential.

    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::auth::{Credential, CredentialError};
    use crate::config::SourceConfig;
    use crate::secrets::SecretValue;
    use crate::secrets::{KeySelection, OnConflict};

    const CLIENT_SECRET: &str = "ua-client-secret-0f3c9a7e5b1d";
    const ACCESS_TOKEN: &str = "st.access-token-8d2e4f6a0c1b";
    const TOKEN_FILE: &str = "/var/run/infisical/token";
    const SA_TOKEN_FILE: &str = "/var/run/secrets/tokens/infisical";
    const CA_FILE: &str = "/etc/infisical/ca.pem";
    const IDENTITY_ID: &str = "7d9e1c2a-k8s-identity";
    const PROJECT_ID: &str = "cb7fcb73-a6e6-490e-ae23-bc4878a67111";
    const PROJECT_SLUG: &str = "payments-x1y2";

    /// How the identity logs in.
    #[derive(Clone, Copy)]
    enum Login {
        Universal,
        Kubernetes,
        TokenFile,
        TokenEnv,
    }

    /// What a row's configuration differs in; the rest is one fixed, valid configuration.
    #[derive(Clone, Copy)]
    struct Given {
        login: Login,
        by_slug: bool,
        environment: &'static str,
        ca_cert: bool,
        tags: bool,
    }

    const UNIVERSAL: Given = Given {
        login: Login::Universal,
        by_slug: false,
        environment: "dev",
        ca_cert: false,
        tags: false,
    };
    const KUBERNETES: Given = Given {
        login: Login::Kubernetes,
        ..UNIVERSAL
    };

    /// The only place a `FetchConfig` is built in these tests.
    fn source(given: Given) -> FetchConfig {
        let auth = match given.login {
            Login::Universal => AuthConfig::UniversalAuth {
                client_id: Credential::Value {
                    origin: "INFISICAL_UNIVERSAL_AUTH_CLIENT_ID",
                    value: SecretValue::from("ua-client-id"),
                },
                client_secret: Credential::Value {
                    origin: "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET",
                    value: SecretValue::from(CLIENT_SECRET),
                },
            },
            Login::Kubernetes => AuthConfig::Kubernetes {
                identity_id: IDENTITY_ID.to_owned(),
                token_file: PathBuf::from(SA_TOKEN_FILE),
            },
            Login::TokenFile => AuthConfig::Token {
                token: Credential::File(PathBuf::from(TOKEN_FILE)),
            },
            Login::TokenEnv => AuthConfig::Token {
                token: Credential::Value {
                    origin: "INFISICAL_TOKEN",
                    value: SecretValue::from(ACCESS_TOKEN),
                },
            },
        };
        FetchConfig {
            api: ApiSettings {
                base_url: "https://infisical.example.com/api".to_owned(),
                ca_cert: given.ca_cert.then(|| PathBuf::from(CA_FILE)),
                request_timeout: Duration::from_secs(10),
                max_response_size: 16 << 20,
            },
            auth,
            sources: vec![SourceConfig {
                query: ListQuery {
                    project: if given.by_slug {
                        ProjectRef::Slug(PROJECT_SLUG.to_owned())
                    } else {
                        ProjectRef::Id(PROJECT_ID.to_owned())
                    },
                    environment: given.environment.to_owned(),
                    path: "/app/db".to_owned(),
                    recursive: false,
                    include_imports: true,
                    expand_references: true,
                    tags: if given.tags {
                        vec!["backend".to_owned(), "db".to_owned()]
                    } else {
                        Vec::new()
                    },
                },
                keys: KeySelection::default(),
            }],
            allow_empty: false,
            on_conflict: OnConflict::Warn,
            mlock: false,
        }
    }

    /// The server answered `status` with Infisical's `error` class and `message`.
    fn answered(endpoint: Endpoint, status: u16, class: &str, message: &str) -> FetchError {
        let kind = ApiErrorKind::Status {
            status,
            error: class.to_owned(),
            message: message.to_owned(),
            retry_after: None,
        };
        if endpoint.is_login() {
            FetchError::Auth(AuthError::Api(ApiError::new(endpoint, kind)))
        } else {
            FetchError::Api(ApiError::new(endpoint, kind))
        }
    }

    fn failed(endpoint: Endpoint, kind: ApiErrorKind) -> FetchError {
        FetchError::Api(ApiError::new(endpoint, kind))
    }

    fn credential(error: CredentialError) -> FetchError {
        FetchError::Auth(AuthError::Credential(error))
    }

    struct Row {
        name: &'static str,
        given: Given,
        error: FetchFailure,
        code: u8,
        says: &'static [&'static str],
    }

    fn rows() -> Vec<Row> {
        use Endpoint::{KubernetesLogin, ListSecrets, ProjectBySlug, Renew, UniversalAuthLogin};
        let row = |name, given, error, code, says| Row {
            name,
            given,
            error: FetchFailure {
                source: Some(0),
                error,
            },
            code,
            says,
        };
        vec![
            // Universal auth login.
            row(
                "universal login 401: wrong client secret",
                UNIVERSAL,
                answered(UniversalAuthLogin, 401, "UnauthorizedError", "Invalid credentials"),
                exit::NO_PERMISSION,
                &["universal auth login refused (HTTP 401", "client secret belongs to this client id"],
            ),
            row(
                "universal login 401: locked after wrong secrets",
                UNIVERSAL,
                answered(
                    UniversalAuthLogin,
                    401,
                    "UnauthorizedError",
                    "This identity auth method is temporarily locked, please try again later",
                ),
                exit::NO_PERMISSION,
                &["locked", "fix the client secret and wait"],
            ),
            row(
                "universal login 401: expired client secret",
                UNIVERSAL,
                answered(
                    UniversalAuthLogin,
                    401,
                    "UnauthorizedError",
                    "Access denied due to expired client secret",
                ),
                exit::NO_PERMISSION,
                &["create a new client secret"],
            ),
            row(
                "universal login 403: client secret used up",
                UNIVERSAL,
                answered(
                    UniversalAuthLogin,
                    403,
                    "ForbiddenError",
                    "Access denied due to client secret usage limit reached",
                ),
                exit::NO_PERMISSION,
                &["HTTP 403", "create a new client secret"],
            ),
            row(
                "universal login 404: unknown client id",
                UNIVERSAL,
                answered(
                    UniversalAuthLogin,
                    404,
                    "NotFound",
                    "No identity with specified client ID was found",
                ),
                exit::NO_PERMISSION,
                &["check --client-id", "not the identity id"],
            ),
            // Kubernetes auth login.
            row(
                "kubernetes login 401: TokenReview refused the token",
                KUBERNETES,
                answered(
                    KubernetesLogin,
                    401,
                    "KubernetesTokenReviewError",
                    "[invalid bearer token, token lookup failed]",
                ),
                exit::NO_PERMISSION,
                &["kubernetes auth login refused (HTTP 401", SA_TOKEN_FILE, "system:auth-delegator"],
            ),
            row(
                "kubernetes login 401: namespace not allowed",
                KUBERNETES,
                answered(
                    KubernetesLogin,
                    401,
                    "UnauthorizedError",
                    "Access denied: K8s namespace not allowed.",
                ),
                exit::NO_PERMISSION,
                &["namespace / service account / token audience", "allowed lists"],
            ),
            row(
                "kubernetes login 403: service account name not allowed",
                KUBERNETES,
                answered(
                    KubernetesLogin,
                    403,
                    "ForbiddenError",
                    "Access denied: service account name not allowed.",
                ),
                exit::NO_PERMISSION,
                &["HTTP 403", "allowed lists"],
            ),
            row(
                "kubernetes login 404: identity without kubernetes auth",
                KUBERNETES,
                answered(
                    KubernetesLogin,
                    404,
                    "NotFound",
                    "Kubernetes auth method not found for identity, did you configure Kubernetes auth?",
                ),
                exit::NO_PERMISSION,
                &[IDENTITY_ID, "add Kubernetes Auth to the identity", "--identity-id"],
            ),
            // Token auth: no login to fall back on.
            row(
                "token auth: token from a file rejected",
                Given { login: Login::TokenFile, ..UNIVERSAL },
                FetchError::Auth(AuthError::TokenRejected {
                    reason: "HTTP 401 UnauthorizedError: Token missing".to_owned(),
                }),
                exit::NO_PERMISSION,
                &["cannot log in again", "--token-file /var/run/infisical/token"],
            ),
            row(
                "token auth: token from the environment rejected",
                Given { login: Login::TokenEnv, ..UNIVERSAL },
                FetchError::Auth(AuthError::TokenRejected {
                    reason: "HTTP 403 TokenError: The provided access token is malformed".to_owned(),
                }),
                exit::NO_PERMISSION,
                &["cannot log in again", "fresh machine-identity token in INFISICAL_TOKEN"],
            ),
            // A fresh login did not help.
            row(
                "list 401 after a new login",
                UNIVERSAL,
                answered(ListSecrets, 401, "UnauthorizedError", "Token missing"),
                exit::NO_PERMISSION,
                &["even after logging in again", "auth method is attached"],
            ),
            row(
                "renew 403 TokenError after a new login",
                UNIVERSAL,
                answered(
                    Renew,
                    403,
                    "TokenError",
                    "The provided access token is malformed. Please use a valid token or generate a new one and try again.",
                ),
                exit::NO_PERMISSION,
                &["even after logging in again", "machine identity still exists"],
            ),
            // 403: not in the project, or not allowed to read there.
            row(
                "list 403: identity not a member of the project",
                UNIVERSAL,
                answered(
                    ListSecrets,
                    403,
                    "Identity is not a member of the specified project with ID 'cb7fcb73-a6e6-490e-ae23-bc4878a67111'",
                    "You are not allowed to access this resource",
                ),
                exit::NO_PERMISSION,
                &["not a member of project id", "Project > Access Control > Machine Identities"],
            ),
            row(
                "list 403: role may not read the environment",
                UNIVERSAL,
                answered(
                    ListSecrets,
                    403,
                    "PermissionDenied",
                    "You are not allowed to read on secrets",
                ),
                exit::NO_PERMISSION,
                &["permission denied for environment \"dev\" path \"/app/db\"", "read access"],
            ),
            row(
                "list 403: the fake's generic permission denial",
                UNIVERSAL,
                answered(
                    ListSecrets,
                    403,
                    "PermissionDenied",
                    "You are not allowed to access this resource",
                ),
                exit::NO_PERMISSION,
                &["permission denied for environment \"dev\" path \"/app/db\"", "(HTTP 403: You are not allowed to access"],
            ),
            // Unknown project.
            row(
                "list 500: unknown project slug",
                Given { by_slug: true, ..UNIVERSAL },
                answered(ListSecrets, 500, "Failed to find project by slug", "Something went wrong"),
                exit::NOT_FOUND,
                &["no project with slug \"payments-x1y2\"", "Project Settings", "--project-id"],
            ),
            row(
                "project lookup 422: a slug the server refuses as invalid",
                Given { by_slug: true, ..UNIVERSAL },
                answered(ProjectBySlug, 422, "ValidationFailure", "slug: Slug field can only contain lowercase letters, numbers, and hyphens"),
                exit::NOT_FOUND,
                &["no project with slug \"payments-x1y2\"", "the slug differs from the project's display name", "Project Settings"],
            ),
            row(
                "v3 list 422: workspaceSlug refused as invalid",
                Given { by_slug: true, ..UNIVERSAL },
                answered(ListSecrets, 422, "ValidationFailure", "workspaceSlug: Slug field can only contain lowercase letters, numbers, and hyphens"),
                exit::NOT_FOUND,
                &["no project with slug \"payments-x1y2\"", "--project-id"],
            ),
            row(
                "project lookup 404: unknown project slug",
                Given { by_slug: true, ..UNIVERSAL },
                answered(ProjectBySlug, 404, "NotFound", "Project with slug 'payments-x1y2' not found"),
                exit::NOT_FOUND,
                &["no project with slug \"payments-x1y2\"", "the slug differs from the project's display name"],
            ),
            row(
                "list 404: unknown project id",
                UNIVERSAL,
                answered(
                    ListSecrets,
                    404,
                    "NotFound",
                    "Project with ID '00000000-0000-0000-0000-000000000000' not found during bot lookup. Are you sure you are using the correct project ID?",
                ),
                exit::NOT_FOUND,
                &["does not exist: copy the Project ID from Project Settings"],
            ),
            // Unknown environment or folder.
            row(
                "list 404: unknown folder",
                UNIVERSAL,
                answered(
                    ListSecrets,
                    404,
                    "SecretPathNotFound",
                    "Folder with path '/app/db' in environment 'dev' was not found. Please ensure the environment slug and secret path is correct.",
                ),
                exit::NOT_FOUND,
                &["folder \"/app/db\" does not exist in environment \"dev\"", "check --path"],
            ),
            row(
                "list 404: environment given by its name",
                Given { environment: "Production", ..UNIVERSAL },
                answered(
                    ListSecrets,
                    404,
                    "NotFound",
                    "Environment with slug 'Production' in project with ID 'cb7fcb73' not found",
                ),
                exit::NOT_FOUND,
                &["environment \"Production\" does not exist", "did you mean --env prod?"],
            ),
            row(
                "list 404: unknown environment slug",
                Given { environment: "qa2", ..UNIVERSAL },
                answered(
                    ListSecrets,
                    404,
                    "NotFound",
                    "Environment with slug 'qa2' in project with ID 'cb7fcb73' not found",
                ),
                exit::NOT_FOUND,
                &["environment \"qa2\" does not exist", "Project Settings > Environments"],
            ),
            row(
                "list 404: nothing says what is missing",
                UNIVERSAL,
                answered(ListSecrets, 404, "NotFound", "Not found"),
                exit::NOT_FOUND,
                &["check --project-id/--project-slug, --env and --path"],
            ),
            // Infisical answers an unknown environment or folder with an empty list.
            row(
                "empty result: environment given by its name",
                Given { environment: "development", ..UNIVERSAL },
                FetchError::Empty,
                exit::NOT_FOUND,
                &["no secrets found", "did you mean --env dev?", "--allow-empty"],
            ),
            row(
                "empty result: an unremarkable environment",
                Given { environment: "qa2", tags: true, ..UNIVERSAL },
                FetchError::Empty,
                exit::NOT_FOUND,
                &["with tags backend,db", "--env is the environment slug", "--path is the folder"],
            ),
            row(
                "--key names a missing secret",
                UNIVERSAL,
                FetchError::MissingKeys { keys: vec!["DB_PASSWROD".to_owned()] },
                exit::NOT_FOUND,
                &["--key", "DB_PASSWROD", "case-sensitive"],
            ),
            row(
                "values hidden from the identity",
                UNIVERSAL,
                FetchError::HiddenValues {
                    keys: vec!["DB_PASSWORD".to_owned(), "API_KEY".to_owned()],
                },
                exit::NO_PERMISSION,
                &["DB_PASSWORD, API_KEY", "permission to read secret values"],
            ),
            // The network and the server.
            row(
                "TLS: untrusted certificate, no --ca-cert",
                UNIVERSAL,
                failed(ListSecrets, ApiErrorKind::Tls),
                exit::UNAVAILABLE,
                &["TLS certificate of https://infisical.example.com/api is not trusted", "pass its PEM bundle with --ca-cert"],
            ),
            row(
                "TLS: an https:// address answered in plain HTTP",
                UNIVERSAL,
                failed(UniversalAuthLogin, ApiErrorKind::PlainHttp),
                exit::UNAVAILABLE,
                &["speaks plain HTTP", "use http://infisical.example.com/api or fix the port"],
            ),
            row(
                "an answer larger than --max-response-size",
                UNIVERSAL,
                failed(ListSecrets, ApiErrorKind::TooLarge { limit: 16 << 20, announced: Some(52_428_800) }),
                exit::DATA,
                &["larger than --max-response-size 16 MiB (it announced 50 MiB)", "raise --max-response-size"],
            ),
            row(
                "TLS: untrusted certificate with --ca-cert",
                Given { ca_cert: true, ..UNIVERSAL },
                failed(UniversalAuthLogin, ApiErrorKind::Tls),
                exit::UNAVAILABLE,
                &["the --ca-cert /etc/infisical/ca.pem bundle does not hold the CA"],
            ),
            row(
                "connection refused",
                UNIVERSAL,
                failed(ListSecrets, ApiErrorKind::Connect),
                exit::UNAVAILABLE,
                &["cannot reach Infisical at https://infisical.example.com/api", "check --api-url, DNS"],
            ),
            row(
                "timeout",
                UNIVERSAL,
                failed(ListSecrets, ApiErrorKind::Timeout),
                exit::UNAVAILABLE,
                &["did not answer within --request-timeout 10s", "check the server and the network path"],
            ),
            row(
                "429 with Retry-After",
                UNIVERSAL,
                failed(
                    ListSecrets,
                    ApiErrorKind::Status {
                        status: 429,
                        error: "Too Many Requests".to_owned(),
                        message: "Rate limit exceeded. Please try again in 30 seconds".to_owned(),
                        retry_after: Some(Duration::from_secs(30)),
                    },
                ),
                exit::UNAVAILABLE,
                &["it asked to wait 30s", "lengthen --interval, raise --retry-deadline"],
            ),
            row(
                "429 at login, no Retry-After",
                UNIVERSAL,
                answered(UniversalAuthLogin, 429, "Too Many Requests", "Rate limit exceeded"),
                exit::UNAVAILABLE,
                &["Infisical is rate-limiting requests: lengthen --interval"],
            ),
            row(
                "5xx",
                UNIVERSAL,
                answered(ListSecrets, 503, "Service Unavailable", "upstream down"),
                exit::UNAVAILABLE,
                &["Infisical is failing (HTTP 503: upstream down", "check the Infisical server"],
            ),
            row(
                "5xx at login",
                UNIVERSAL,
                answered(UniversalAuthLogin, 504, "Gateway Timeout", "gateway timeout"),
                exit::UNAVAILABLE,
                &["Infisical is failing (HTTP 504: gateway timeout", "check the Infisical server"],
            ),
            row(
                "malformed answer",
                UNIVERSAL,
                failed(ListSecrets, ApiErrorKind::Malformed("expected value at line 1 column 1".to_owned())),
                exit::UNAVAILABLE,
                &["not Infisical's", "check that --api-url points at the Infisical API"],
            ),
            // Requests Infisical calls invalid.
            row(
                "list 401 ValidationFailure",
                UNIVERSAL,
                answered(ListSecrets, 401, "ValidationFailure", "Required"),
                exit::USAGE,
                &["refused the request as invalid (HTTP 401: Required)", "check the options given"],
            ),
            row(
                "list 400 bad request",
                UNIVERSAL,
                answered(ListSecrets, 400, "BadRequest", "Bad request"),
                exit::USAGE,
                &["refused the request as invalid (HTTP 400"],
            ),
            // Credentials that cannot be read.
            row(
                "credential file missing",
                UNIVERSAL,
                credential(CredentialError::Unreadable {
                    what: "client secret",
                    path: PathBuf::from("/var/run/infisical/clientSecret"),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                }),
                exit::USAGE,
                &["cannot read the client secret file /var/run/infisical/clientSecret", "check the volume mount"],
            ),
            row(
                "credential file empty",
                Given { login: Login::TokenFile, ..UNIVERSAL },
                credential(CredentialError::Empty {
                    what: "access token",
                    origin: TOKEN_FILE.to_owned(),
                }),
                exit::USAGE,
                &["the access token in /var/run/infisical/token is empty"],
            ),
        ]
    }

    #[test]
    fn every_failure_gets_its_exit_code_and_names_the_fix() {
        let mut wrong = Vec::new();
        for row in rows() {
            let fatal = fetch_failure(&row.error, &source(row.given));
            let mut problems = Vec::new();
            if fatal.code != row.code {
                problems.push(format!("exit {} instead of {}", fatal.code, row.code));
            }
            for fragment in row.says {
                if !fatal.message.contains(fragment) {
                    problems.push(format!("does not say {fragment:?}"));
                }
            }
            if fatal.message.contains('\n') {
                problems.push("is not one line".to_owned());
            }
            for secret in [CLIENT_SECRET, ACCESS_TOKEN] {
                if fatal.message.contains(secret) {
                    problems.push(format!("shows the credential {secret:?}"));
                }
            }
            if !problems.is_empty() {
                wrong.push(format!(
                    "{}: {}\n    message: {}",
                    row.name,
                    problems.join("; "),
                    fatal.message
                ));
            }
        }
        assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    }

    #[test]
    fn each_row_is_about_a_different_failure() {
        let rows = rows();
        let mut names: Vec<_> = rows.iter().map(|row| row.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), rows.len(), "two rows share a name");
        // Distinct advice: no two rows may produce the same message.
        let mut messages: Vec<_> = rows
            .iter()
            .map(|row| fetch_failure(&row.error, &source(row.given)).message)
            .collect();
        messages.sort_unstable();
        messages.dedup();
        assert_eq!(
            messages.len(),
            rows.len(),
            "two rows produce the same message"
        );
    }
}
