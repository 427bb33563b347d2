//! Turns failures into one line that says what went wrong and what to do, with the exit code.
//!
//! Infisical's raw answers are often misleading (an unknown project slug is a 500, an unknown
//! environment an empty 200), so the advice is worked out here from the error *and* the
//! configuration that led to it.

use crate::api::ProjectRef;
use crate::api::{is_unknown_slug, ApiError, ApiErrorKind, Endpoint};
use crate::auth::AuthConfig;
use crate::auth::AuthError;
use crate::config::SourceConfig;
use crate::error::{exit, Fatal};
use crate::source::FetchError;

/// Explains a failed fetch for this configuration.
pub fn fetch_failure(error: &FetchError, config: &SourceConfig) -> Fatal {
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
    }
}

fn token_origin(config: &SourceConfig) -> String {
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

fn empty_result(config: &SourceConfig) -> String {
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

fn api_failure(error: &ApiError, config: &SourceConfig) -> Fatal {
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

fn status_failure(
    endpoint: Endpoint,
    status: u16,
    class: &str,
    message: &str,
    retry_after: Option<std::time::Duration>,
    config: &SourceConfig,
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
    if endpoint.is_login() {
        return login_failure(endpoint, status, message, config);
    }
    if endpoint == Endpoint::ProjectBySlug && status == 404 || is_unknown_slug(status, class) {
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
    if status >= 500 {
        return Fatal::new(
            exit::UNAVAILABLE,
            format!("Infisical is failing ({said}; {class}): check the Infisical server"),
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
        403 if class.contains("not a member") || message.contains("not allowed to access") => Fatal::new(
            exit::NO_PERMISSION,
            format!(
                "the machine identity is not a member of {} ({said}; {class}): add it to the project \
                 under Project > Access Control > Machine Identities",
                config.query.project
            ),
        ),
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

fn not_found(class: &str, message: &str, config: &SourceConfig) -> Fatal {
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

fn login_failure(endpoint: Endpoint, status: u16, message: &str, config: &SourceConfig) -> Fatal {
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
            let id = match &config.auth {
                AuthConfig::Kubernetes { identity_id, .. } => identity_id.as_str(),
                _ => "",
            };
            format!(
                "identity {id:?} has no Kubernetes auth configured: add Kubernetes Auth to the identity, \
                 or check --identity-id"
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
