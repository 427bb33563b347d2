//! Validated settings: one typed configuration per mode ([`CheckConfig`], [`InitConfig`],
//! [`SidecarConfig`], [`ExecConfig`]), each built by one validating constructor.
//!
//! [`crate::cli`] is the raw layer; here every value is checked and parsed once, with one clear
//! message per bad field, so the modes never see a CLI string or an invalid combination.

pub mod file;
pub mod layer;

pub use layer::ConfigFile;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use nix::sys::signal::Signal;
use regex_lite::Regex;

use crate::api::TokenLogin;
use crate::api::{ApiSettings, ListQuery, ProjectRef};
use crate::auth::cloud::aws::AwsSettings;
use crate::auth::cloud::azure::AzureSettings;
use crate::auth::cloud::gcp::{ServiceAccountKey, DEFAULT_METADATA_HOST};
use crate::auth::cloud::CloudError;
use crate::auth::{read_credential_file, AuthConfig, Credential, CredentialError};
use crate::cli::{
    self, AuthMethod, CheckArgs, ExecArgs, Explicit, InitArgs, OutputArgs, RefreshArgs,
    SidecarArgs, SourceArgs, TemplateArgs,
};
use crate::error::{exit, Fatal};
use crate::secrets::{InvalidKeys, KeyMapping, KeySelection, OnConflict, SecretValue};
use crate::sink::template::TemplateError;
use crate::sink::{Output, OutputConfig, Owner, SinkError, Target};

/// Reads environment variables; tests pass a map instead of touching the process environment.
pub trait Environment {
    /// The value of `name`, if set and valid UTF-8.
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Environment for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// A configuration mistake. Every variant exits 64.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--env` missing.
    #[error("--env (INFISICAL_ENVIRONMENT) is required: give the environment slug, e.g. dev, staging or prod")]
    MissingEnvironment,
    /// Neither or both project options.
    #[error("give exactly one of --project-id (INFISICAL_PROJECT_ID) or --project-slug (INFISICAL_PROJECT_SLUG)")]
    ProjectChoice,
    /// No credentials at all.
    #[error("no credentials given: use --client-id and --client-secret-file (universal auth), --identity-id (kubernetes auth), --token-file (token auth), or --auth-method oidc, jwt, aws-iam, gcp-id-token, gcp-iam or azure with --identity-id")]
    NoCredentials,
    /// Credentials of several methods and no `--auth-method`.
    #[error(
        "credentials for several auth methods were given ({found}); pick one with --auth-method"
    )]
    AmbiguousAuth {
        /// The methods whose credentials were found.
        found: String,
    },
    /// The chosen method lacks a required credential.
    #[error("--auth-method {method} needs {what}")]
    MissingCredential {
        /// The method chosen.
        method: &'static str,
        /// What to add.
        what: &'static str,
    },
    /// A credential that cannot be read.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// A cloud credential setting that cannot work (a half-set AWS key, a bad key file).
    #[error(transparent)]
    Cloud(#[from] CloudError),
    /// `--api-url` is not an http(s) URL.
    #[error("--api-url {url:?} is not valid: {reason}")]
    ApiUrl {
        /// The URL given.
        url: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// `--ca-cert` cannot be used.
    #[error("--ca-cert {path}: {reason}")]
    CaCert {
        /// The file.
        path: PathBuf,
        /// Why it is refused.
        reason: String,
    },
    /// `--path` is not absolute.
    #[error("--path {0:?} must start with '/', e.g. / or /app/db")]
    SecretPath(String),
    /// A `--key` that cannot be parsed or collides.
    #[error("--key {spec:?}: {reason}")]
    KeyMapping {
        /// The mapping given.
        spec: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The configuration file cannot be used.
    #[error(transparent)]
    File(#[from] file::FileError),
    /// A template file cannot be read.
    #[error("cannot read the template {}: {source}; check the path (a ConfigMap mount?)", path.display())]
    Template {
        /// The template file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A template is not valid Jinja.
    #[error(transparent)]
    TemplateSyntax(#[from] TemplateError),
    /// An output target that cannot be created or written.
    #[error(transparent)]
    Output(#[from] SinkError),
    /// One credential given two ways (a flag, a file flag, a variable).
    #[error("the {what} is given twice, by {first} and by {second}: give it only one way")]
    CredentialTwice {
        /// The credential, e.g. "client id".
        what: &'static str,
        /// One way it was given, e.g. `--client-id`.
        first: &'static str,
        /// The other, e.g. `INFISICAL_UNIVERSAL_AUTH_CLIENT_ID_FILE`.
        second: &'static str,
    },
    /// Any other invalid option value.
    #[error("{option} {value:?}: {reason}")]
    Invalid {
        /// The flag.
        option: &'static str,
        /// The value given.
        value: String,
        /// What is expected.
        reason: String,
    },
}

impl ConfigError {
    /// The documented exit code: 64, or 73 for an output target that cannot be written.
    pub fn exit_code(&self) -> u8 {
        match self {
            ConfigError::Output(error) => error.exit_code(),
            ConfigError::TemplateSyntax(error) => error.exit_code(),
            _ => exit::USAGE,
        }
    }
}

impl From<ConfigError> for Fatal {
    fn from(error: ConfigError) -> Self {
        Fatal::new(error.exit_code(), error.to_string())
    }
}

/// Where the secrets come from: one server and identity, and one or more sources.
#[derive(Clone, Debug, PartialEq)]
pub struct FetchConfig {
    /// Server settings.
    pub api: ApiSettings,
    /// Credentials.
    pub auth: AuthConfig,
    /// The sources, fetched in order; a later source wins a key an earlier one also has.
    pub sources: Vec<SourceConfig>,
    /// An empty source is fine.
    pub allow_empty: bool,
    /// What to do when two sources produce the same final key.
    pub on_conflict: OnConflict,
    /// Lock the process's memory so values are never swapped out (`--mlock`).
    pub mlock: bool,
}

/// One source of secrets: what to list, and which of its keys to take under which names.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceConfig {
    /// Project, environment, folder and filters.
    pub query: ListQuery,
    /// Which keys, renamed and prefixed.
    pub keys: KeySelection,
}

impl FetchConfig {
    /// Validates the server, credential and (single) source options of the command line.
    pub fn from_args(args: &SourceArgs, env: &dyn Environment) -> Result<Self, ConfigError> {
        let mut args = args.clone();
        layer_source(&mut args, env, None, &Explicit::default())?;
        Self::build(&args, env, None)
    }

    /// The same, with the configuration file's `sources` and `on-conflict` (the file's other
    /// keys are already laid into `args`).
    fn build(
        args: &SourceArgs,
        env: &dyn Environment,
        file: Option<&ConfigFile>,
    ) -> Result<Self, ConfigError> {
        let mut sources = match file {
            Some(file) => file.sources().to_vec(),
            None => Vec::new(),
        };
        if sources.is_empty() {
            sources.push(SourceConfig::from_args(args)?);
        }
        for source in &sources {
            warn_unless_slug(&source.query.environment);
        }
        Ok(Self {
            api: api_settings(args)?,
            auth: checked_auth(args, env)?,
            sources,
            allow_empty: args.allow_empty,
            on_conflict: file.map_or(OnConflict::Warn, ConfigFile::on_conflict),
            mlock: args.mlock,
        })
    }
}

/// `--api-url`, `--ca-cert` and `--request-timeout`.
fn api_settings(args: &SourceArgs) -> Result<ApiSettings, ConfigError> {
    let api = ApiSettings {
        base_url: normalize_api_url(&args.api_url)?,
        ca_cert: args.ca_cert.clone(),
        request_timeout: positive(args.request_timeout, "--request-timeout")?,
        max_response_size: args.max_response_size,
    };
    if let Some(path) = &api.ca_cert {
        check_ca_file(path)?;
    }
    Ok(api)
}

/// The credentials, each read once now: a typo should not wait for a login.
fn checked_auth(args: &SourceArgs, env: &dyn Environment) -> Result<AuthConfig, ConfigError> {
    let auth = auth_config(args, env)?;
    match &auth {
        AuthConfig::UniversalAuth {
            client_id,
            client_secret,
        } => {
            client_id.read("client id")?;
            client_secret.read("client secret")?;
        }
        AuthConfig::Kubernetes { token_file, .. } => {
            read_credential_file(token_file, "service-account token")?;
        }
        AuthConfig::Token { token } => {
            token.read("access token")?;
        }
        AuthConfig::Jwt { jwt, .. } => {
            jwt.read("JWT")?;
        }
        AuthConfig::GcpIam { key_file, .. } => {
            ServiceAccountKey::read(key_file)?;
        }
        // Fetched from the platform at login; a missing source is reported then, with what
        // was tried.
        AuthConfig::AwsIam { .. } | AuthConfig::GcpIdToken { .. } | AuthConfig::Azure { .. } => {}
    }
    Ok(auth)
}

impl SourceConfig {
    /// Validates the options of the one source the command line describes.
    pub fn from_args(args: &SourceArgs) -> Result<Self, ConfigError> {
        let environment = args
            .environment
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .ok_or(ConfigError::MissingEnvironment)?
            .to_owned();
        let project = match (non_empty(&args.project_id), non_empty(&args.project_slug)) {
            (Some(id), None) => ProjectRef::Id(id),
            (None, Some(slug)) => {
                if let Some(reason) = project_slug_problem(&slug) {
                    return Err(ConfigError::Invalid {
                        option: "--project-slug",
                        value: slug,
                        reason: reason.to_owned(),
                    });
                }
                ProjectRef::Slug(slug)
            }
            _ => return Err(ConfigError::ProjectChoice),
        };
        let query = ListQuery {
            project,
            environment,
            path: normalize_secret_path(&args.path)?,
            recursive: args.recursive,
            include_imports: !args.no_imports,
            expand_references: !args.no_expand_references,
            tags: args
                .tags
                .iter()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect(),
        };
        Ok(Self {
            query,
            keys: KeySelection {
                mappings: parse_key_mappings(&args.keys)?,
                matching: args
                    .key_matching
                    .as_deref()
                    .map(|pattern| parse_key_pattern("--key-matching", pattern))
                    .transpose()?,
                prefix: String::new(),
            },
        })
    }

    /// How messages name this source: `project slug "x" environment "prod" path "/app"`.
    pub fn describe(&self) -> String {
        format!(
            "{} environment {:?} path {:?}",
            self.query.project, self.query.environment, self.query.path
        )
    }
}

/// Whether `text` has the shape of an Infisical slug: lowercase letters, digits and dashes
/// (the server's `slugSchema`).
fn is_slug(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Why `slug` cannot be a project slug, if it cannot. A value with spaces or capitals is
/// almost always the project's display name, which the server refuses or does not find.
pub fn project_slug_problem(slug: &str) -> Option<&'static str> {
    (!is_slug(slug)).then_some(
        "not a project slug: a slug has only lowercase letters, digits and dashes, and this looks \
         like the project's display name; copy the slug from Project Settings in Infisical, or \
         give the project id instead",
    )
}

/// Warns about an environment that does not look like a slug. Only a warning: Infisical
/// creates environment slugs with the same rule, but listing does not check it, and a project
/// from before the rule may have other slugs.
fn warn_unless_slug(environment: &str) {
    if !is_slug(environment) {
        tracing::warn!(
            "environment {environment:?} does not look like an environment slug (lowercase \
             letters, digits and dashes, e.g. dev or prod): the slug is shown beside the name \
             in Project Settings > Environments"
        );
    }
}

/// Compiles a key pattern; a bad one names the option and what is wrong with it.
pub fn parse_key_pattern(option: &'static str, pattern: &str) -> Result<Regex, ConfigError> {
    Regex::new(pattern).map_err(|error| ConfigError::Invalid {
        option,
        value: pattern.to_owned(),
        reason: format!("not a regular expression: {error}"),
    })
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn positive(value: Duration, option: &'static str) -> Result<Duration, ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::Invalid {
            option,
            value: "0".into(),
            reason: "must be greater than zero".into(),
        });
    }
    Ok(value)
}

/// Accepts `https://host`, `https://host/`, `https://host/api` and `https://host/api/`.
pub fn normalize_api_url(url: &str) -> Result<String, ConfigError> {
    let refuse = |reason| ConfigError::ApiUrl {
        url: url.to_owned(),
        reason,
    };
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(|| refuse("it must start with https:// (or http://)"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(refuse("it has no host name"));
    }
    if trimmed.contains(['?', '#', ' ']) {
        return Err(refuse(
            "it must be a plain address such as https://app.infisical.com",
        ));
    }
    let base = trimmed.strip_suffix("/api").unwrap_or(trimmed);
    Ok(format!("{base}/api"))
}

/// Makes the folder path canonical: leading `/`, no trailing `/` (except the root).
pub fn normalize_secret_path(path: &str) -> Result<String, ConfigError> {
    let path = path.trim();
    if !path.starts_with('/') {
        return Err(ConfigError::SecretPath(path.to_owned()));
    }
    let trimmed = path.trim_end_matches('/');
    Ok(if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    })
}

fn check_ca_file(path: &Path) -> Result<(), ConfigError> {
    let refuse = |reason: String| ConfigError::CaCert {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(refuse(
            "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(())
}

/// Parses `REMOTE[=LOCAL]` specs; two keys may not map to the same local name.
pub fn parse_key_mappings(specs: &[String]) -> Result<Vec<KeyMapping>, ConfigError> {
    let mut seen_local = HashSet::new();
    let mut mappings = Vec::new();
    for spec in specs.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let refuse = |reason| ConfigError::KeyMapping {
            spec: spec.to_owned(),
            reason,
        };
        let (remote, local) = match spec.split_once('=') {
            Some((remote, local)) => (remote.trim(), local.trim()),
            None => (spec, spec),
        };
        if remote.is_empty() || local.is_empty() {
            return Err(refuse("expected REMOTE or REMOTE=LOCAL"));
        }
        if !seen_local.insert(local.to_owned()) {
            return Err(refuse("two keys would get the same local name"));
        }
        mappings.push(KeyMapping {
            remote: remote.to_owned(),
            local: local.to_owned(),
        });
    }
    Ok(mappings)
}

/// One credential and the ways to give it: options (clap id, flag, variable) and perhaps a
/// variable holding the value itself.
struct CredentialWays {
    what: &'static str,
    options: &'static [(&'static str, &'static str, &'static str)],
    by_value: Option<&'static str>,
}

/// The credentials that can be given more than one way.
const CREDENTIAL_WAYS: [CredentialWays; 4] = [
    CredentialWays {
        what: "client id",
        options: &[
            (
                "client_id",
                "--client-id",
                "INFISICAL_UNIVERSAL_AUTH_CLIENT_ID",
            ),
            (
                "client_id_file",
                "--client-id-file",
                "INFISICAL_UNIVERSAL_AUTH_CLIENT_ID_FILE",
            ),
        ],
        by_value: None,
    },
    CredentialWays {
        what: "client secret",
        options: &[(
            "client_secret_file",
            "--client-secret-file",
            "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET_FILE",
        )],
        by_value: Some(cli::ENV_CLIENT_SECRET),
    },
    CredentialWays {
        what: "access token",
        options: &[("token_file", "--token-file", "INFISICAL_TOKEN_FILE")],
        by_value: Some(cli::ENV_TOKEN),
    },
    CredentialWays {
        what: "JWT",
        options: &[("jwt_file", "--jwt-file", "INFISICAL_JWT_FILE")],
        by_value: Some(cli::ENV_JWT),
    },
];

/// Whether the credential option `id` holds a value.
fn credential_option_set(args: &SourceArgs, id: &str) -> bool {
    match id {
        "client_id" => non_empty(&args.client_id).is_some(),
        "client_id_file" => args.client_id_file.is_some(),
        "client_secret_file" => args.client_secret_file.is_some(),
        "token_file" => args.token_file.is_some(),
        "jwt_file" => args.jwt_file.is_some(),
        _ => false,
    }
}

/// Empties the credential option `id`.
fn clear_credential_option(args: &mut SourceArgs, id: &str) {
    match id {
        "client_id" => args.client_id = None,
        "client_id_file" => args.client_id_file = None,
        "client_secret_file" => args.client_secret_file = None,
        "token_file" => args.token_file = None,
        "jwt_file" => args.jwt_file = None,
        _ => {}
    }
}

/// Lays the configuration file's source options under `args`. Before that, a credential given
/// two ways by flags and variables is refused, naming both; and a credential given one way
/// there keeps the file from giving it another way (flags and variables win over the file).
fn layer_source(
    args: &mut SourceArgs,
    env: &dyn Environment,
    file: Option<&ConfigFile>,
    explicit: &Explicit,
) -> Result<(), ConfigError> {
    let mut given_ids = Vec::new();
    for credential in &CREDENTIAL_WAYS {
        // Before the file is laid under them, the options hold only flags and variables.
        let mut ways: Vec<(Option<&str>, &'static str)> = credential
            .options
            .iter()
            .filter(|(id, _, _)| credential_option_set(args, id))
            .map(|(id, flag, var)| (Some(*id), if explicit.from_env(id) { *var } else { *flag }))
            .collect();
        if let Some(var) = credential.by_value {
            if env.var(var).is_some_and(|value| !value.trim().is_empty()) {
                ways.push((None, var));
            }
        }
        match ways.as_slice() {
            [] => {}
            [(id, _)] => given_ids.push((credential, *id)),
            [(_, first), (_, second), ..] => {
                return Err(ConfigError::CredentialTwice {
                    what: credential.what,
                    first,
                    second,
                })
            }
        }
    }
    if let Some(file) = file {
        file.apply_source(args, explicit)?;
        for (credential, kept) in given_ids {
            for (id, _, _) in credential.options {
                if Some(*id) != kept {
                    clear_credential_option(args, id);
                }
            }
        }
    }
    Ok(())
}

fn env_credential(env: &dyn Environment, name: &'static str) -> Option<Credential> {
    let value = env.var(name)?;
    let trimmed = value.trim();
    (!trimmed.is_empty()).then(|| Credential::Value {
        origin: name,
        value: SecretValue::from(trimmed),
    })
}

fn auth_config(args: &SourceArgs, env: &dyn Environment) -> Result<AuthConfig, ConfigError> {
    let client_id = match (non_empty(&args.client_id), &args.client_id_file) {
        (Some(id), _) => Some(Credential::Value {
            origin: "--client-id",
            value: SecretValue::new(id),
        }),
        (None, Some(file)) => Some(Credential::File(file.clone())),
        (None, None) => None,
    };
    let client_secret = match &args.client_secret_file {
        Some(file) => Some(Credential::File(file.clone())),
        None => env_credential(env, cli::ENV_CLIENT_SECRET),
    };
    let token = match &args.token_file {
        Some(file) => Some(Credential::File(file.clone())),
        None => env_credential(env, cli::ENV_TOKEN),
    };
    let identity_id = non_empty(&args.identity_id);

    let method = match args.auth_method {
        Some(method) => method,
        None => {
            let mut found = Vec::new();
            if client_id.is_some() || client_secret.is_some() {
                found.push((AuthMethod::UniversalAuth, "universal-auth"));
            }
            if identity_id.is_some() {
                found.push((AuthMethod::Kubernetes, "kubernetes"));
            }
            if token.is_some() {
                found.push((AuthMethod::Token, "token"));
            }
            match found.as_slice() {
                [] => return Err(ConfigError::NoCredentials),
                [(method, _)] => *method,
                several => {
                    return Err(ConfigError::AmbiguousAuth {
                        found: several
                            .iter()
                            .map(|(_, name)| *name)
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
                }
            }
        }
    };
    let identity = |method: &'static str| -> Result<String, ConfigError> {
        let id = identity_id.clone().ok_or(ConfigError::MissingCredential {
            method,
            what: "--identity-id (INFISICAL_MACHINE_IDENTITY_ID)",
        })?;
        check_identity_id(&id)?;
        Ok(id)
    };
    let var = |name: &str| env.var(name);
    Ok(match method {
        AuthMethod::UniversalAuth => AuthConfig::UniversalAuth {
            client_id: client_id.ok_or(ConfigError::MissingCredential {
                method: "universal-auth",
                what: "--client-id or --client-id-file",
            })?,
            client_secret: client_secret.ok_or(ConfigError::MissingCredential {
                method: "universal-auth",
                what: "--client-secret-file or INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET",
            })?,
        },
        AuthMethod::Kubernetes => AuthConfig::Kubernetes {
            identity_id: identity("kubernetes")?,
            token_file: args.service_account_token_file.clone(),
        },
        AuthMethod::Token => AuthConfig::Token {
            token: token.ok_or(ConfigError::MissingCredential {
                method: "token",
                what: "--token-file or INFISICAL_TOKEN",
            })?,
        },
        AuthMethod::Oidc | AuthMethod::Jwt => {
            let (login, name) = if method == AuthMethod::Oidc {
                (TokenLogin::Oidc, "oidc")
            } else {
                (TokenLogin::Jwt, "jwt")
            };
            let jwt = match &args.jwt_file {
                Some(file) => Credential::File(file.clone()),
                None => env_credential(env, cli::ENV_JWT).unwrap_or_else(|| {
                    Credential::File(cli::DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH.into())
                }),
            };
            AuthConfig::Jwt {
                method: login,
                identity_id: identity(name)?,
                jwt,
            }
        }
        AuthMethod::AwsIam => AuthConfig::AwsIam {
            identity_id: identity("aws-iam")?,
            aws: AwsSettings::from_env(var)?,
        },
        AuthMethod::GcpIdToken => AuthConfig::GcpIdToken {
            identity_id: identity("gcp-id-token")?,
            metadata_host: env
                .var("GCE_METADATA_HOST")
                .map(|h| h.trim().trim_end_matches('/').to_owned())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| DEFAULT_METADATA_HOST.to_owned()),
        },
        AuthMethod::GcpIam => AuthConfig::GcpIam {
            identity_id: identity("gcp-iam")?,
            key_file: args.gcp_service_account_key_file.clone().ok_or(
                ConfigError::MissingCredential {
                    method: "gcp-iam",
                    what: "--gcp-service-account-key-file (INFISICAL_GCP_IAM_SERVICE_ACCOUNT_KEY_FILE_PATH)",
                },
            )?,
        },
        AuthMethod::Azure => AuthConfig::Azure {
            identity_id: identity("azure")?,
            azure: AzureSettings::from_env(
                args.azure_resource.trim().to_owned(),
                non_empty(&args.azure_client_id),
                var,
            ),
        },
    })
}

/// A machine identity id is a UUID; servers answer anything else with a bare 500.
fn check_identity_id(id: &str) -> Result<(), ConfigError> {
    let groups: Vec<&str> = id.split('-').collect();
    let shape_ok = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()));
    if shape_ok {
        return Ok(());
    }
    Err(ConfigError::Invalid {
        option: "--identity-id",
        value: id.to_owned(),
        reason: "a machine identity id is a UUID (e.g. 5f0c1f1e-…): copy the Identity ID from \
                 Organization > Access Control > Identities, not its name or a client id"
            .to_owned(),
    })
}

/// `check`: where the secrets come from.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    /// Server, credentials and what to list.
    pub fetch: FetchConfig,
    /// How long transient failures are retried (`--retry-deadline`).
    pub retry_deadline: Duration,
}

impl CheckConfig {
    /// Validates every `check` option.
    pub fn from_args(args: &CheckArgs, env: &dyn Environment) -> Result<Self, ConfigError> {
        Self::load(args, env, None, &Explicit::default())
    }

    /// Validates every `check` option, with the configuration file under the flags.
    pub fn load(
        args: &CheckArgs,
        env: &dyn Environment,
        file: Option<&ConfigFile>,
        explicit: &Explicit,
    ) -> Result<Self, ConfigError> {
        let mut args = args.clone();
        layer_source(&mut args.source, env, file, explicit)?;
        if let Some(file) = file {
            file.apply_retry(&mut args.retry, explicit)?;
        }
        let build = || -> Result<Self, ConfigError> {
            Ok(Self {
                fetch: FetchConfig::build(&args.source, env, file)?,
                retry_deadline: positive(args.retry.retry_deadline, "--retry-deadline")?,
            })
        };
        attributed(build(), file, explicit)
    }
}

/// `init`: where the secrets come from and where they go.
#[derive(Clone, Debug)]
pub struct InitConfig {
    /// Server, credentials and what to list.
    pub fetch: FetchConfig,
    /// The outputs.
    pub output: OutputConfig,
    /// How long transient failures are retried (`--retry-deadline`).
    pub retry_deadline: Duration,
}

impl InitConfig {
    /// Validates every `init` option; the outputs are checked before anything is sent.
    pub fn from_args(args: &InitArgs, env: &dyn Environment) -> Result<Self, ConfigError> {
        Self::load(args, env, None, &Explicit::default())
    }

    /// Validates every `init` option, with the configuration file under the flags.
    pub fn load(
        args: &InitArgs,
        env: &dyn Environment,
        file: Option<&ConfigFile>,
        explicit: &Explicit,
    ) -> Result<Self, ConfigError> {
        let mut args = args.clone();
        layer_source(&mut args.source, env, file, explicit)?;
        if let Some(file) = file {
            file.apply_retry(&mut args.retry, explicit)?;
            file.apply_output(&mut args.output, explicit)?;
        }
        let build = || -> Result<Self, ConfigError> {
            Ok(Self {
                fetch: FetchConfig::build(&args.source, env, file)?,
                output: checked_outputs(&args.output, file)?,
                retry_deadline: positive(args.retry.retry_deadline, "--retry-deadline")?,
            })
        };
        attributed(build(), file, explicit)
    }
}

/// `sidecar`: the source, the outputs, the refresh schedule, whom to tell, and health.
#[derive(Clone, Debug)]
pub struct SidecarConfig {
    /// Server, credentials and what to list.
    pub fetch: FetchConfig,
    /// The outputs.
    pub output: OutputConfig,
    /// `--interval` and `--jitter`.
    pub timing: RefreshTiming,
    /// What to do after a change.
    pub on_change: OnChangeConfig,
    /// Where to serve `/healthz`, `/readyz` and `/metrics` (`--listen`), if anywhere.
    pub listen: Option<SocketAddr>,
    /// `/readyz` fails once the last good data is older (default: three intervals).
    pub max_staleness: Duration,
    /// Renew token-auth tokens too.
    pub renew_token: bool,
}

impl SidecarConfig {
    /// The files a change of which changes this configuration: the configuration file (if
    /// any) and every template source.
    pub fn watched_files(&self, file: Option<&Path>) -> Vec<PathBuf> {
        file.into_iter()
            .chain(self.output.template_sources())
            .map(Path::to_owned)
            .collect()
    }

    /// Validates every `sidecar` option.
    pub fn from_args(args: &SidecarArgs, env: &dyn Environment) -> Result<Self, ConfigError> {
        Self::load(args, env, None, &Explicit::default())
    }

    /// Validates every `sidecar` option, with the configuration file under the flags.
    pub fn load(
        args: &SidecarArgs,
        env: &dyn Environment,
        file: Option<&ConfigFile>,
        explicit: &Explicit,
    ) -> Result<Self, ConfigError> {
        let mut args = args.clone();
        layer_source(&mut args.source, env, file, explicit)?;
        if let Some(file) = file {
            file.apply_output(&mut args.output, explicit)?;
            file.apply_refresh(&mut args.refresh, explicit)?;
            file.apply_sidecar(&mut args, explicit)?;
        }
        let build = || -> Result<Self, ConfigError> {
            let args = &args;
            let fetch = FetchConfig::build(&args.source, env, file)?;
            let output = checked_outputs(&args.output, file)?;
            let timing = RefreshTiming::from_args(&args.refresh)?;
            let max_staleness = match args.max_staleness {
                Some(staleness) => positive(staleness, "--max-staleness")?,
                None => timing.interval * 3,
            };
            Ok(Self {
                fetch,
                output,
                timing,
                on_change: OnChangeConfig::from_args(args)?,
                listen: args.listen.as_deref().map(parse_listen).transpose()?,
                max_staleness,
                renew_token: args.renew_token,
            })
        };
        attributed(build(), file, explicit)
    }
}

/// `exec`: the source, how the command's environment is made, and the command.
#[derive(Clone, Debug)]
pub struct ExecConfig {
    /// Server, credentials and what to list.
    pub fetch: FetchConfig,
    /// What to do with keys that cannot be env names.
    pub invalid_keys: InvalidKeys,
    /// Inherited variables win over secrets of the same name.
    pub preserve_env: bool,
    /// `INFISICAL_*` variables passed on to the command anyway.
    pub keep_env: Vec<String>,
    /// The command and its arguments, looked up when `exec` starts.
    pub command: Vec<String>,
    /// `--watch`: supervise the command and restart it on change.
    pub watch: Option<WatchConfig>,
    /// Templates rendered before the command starts (`--template`, `templates:`).
    pub templates: OutputConfig,
    /// How long transient failures of the first fetch are retried (`--retry-deadline`).
    pub retry_deadline: Duration,
}

/// `exec --watch`: how often to refresh and how to restart the command.
#[derive(Clone, Debug)]
pub struct WatchConfig {
    /// `--interval` and `--jitter`.
    pub timing: RefreshTiming,
    /// Sent to stop the command before a restart (`--restart-signal`).
    pub restart_signal: Signal,
    /// How long the command may take to stop before SIGKILL (`--grace`).
    pub grace: Duration,
}

impl ExecConfig {
    /// Validates every `exec` option; the watch options only with `--watch`.
    pub fn from_args(args: &ExecArgs, env: &dyn Environment) -> Result<Self, ConfigError> {
        Self::load(args, env, None, &Explicit::default())
    }

    /// Validates every `exec` option, with the configuration file under the flags. The file's
    /// templates are rendered before the command starts; its `outputs` are for `init` and
    /// `sidecar` and are ignored here, with a warning.
    pub fn load(
        args: &ExecArgs,
        env: &dyn Environment,
        file: Option<&ConfigFile>,
        explicit: &Explicit,
    ) -> Result<Self, ConfigError> {
        let mut args = args.clone();
        layer_source(&mut args.source, env, file, explicit)?;
        if let Some(file) = file {
            file.apply_retry(&mut args.retry, explicit)?;
            file.apply_refresh(&mut args.refresh, explicit)?;
            file.apply_exec(&mut args, explicit)?;
            if !file.raw.outputs.is_empty() {
                tracing::warn!(
                    "{}: outputs are written by init and sidecar; exec passes the secrets as \
                     environment variables and renders only the templates",
                    file.path.display()
                );
            }
        }
        let build = || -> Result<Self, ConfigError> {
            let args = &args;
            let mut templates =
                command_line_templates(&args.templates, DEFAULT_TEMPLATE_MODE, None)?;
            if let Some(file) = file {
                templates.extend(file.templates(DEFAULT_TEMPLATE_MODE, None)?);
            }
            let templates = OutputConfig {
                targets: templates,
                invalid_keys: args.keys.invalid_keys,
                require_tmpfs: false,
            };
            templates.check_targets()?;
            let fetch = FetchConfig::build(&args.source, env, file)?;
            let watch = if args.watch {
                Some(WatchConfig {
                    timing: RefreshTiming::from_args(&args.refresh)?,
                    restart_signal: parse_signal("--restart-signal", &args.restart_signal)?,
                    grace: args.grace,
                })
            } else {
                None
            };
            Ok(Self {
                fetch,
                invalid_keys: args.keys.invalid_keys,
                preserve_env: args.preserve_env,
                keep_env: args.keep_env.clone(),
                command: args.command.clone(),
                watch,
                templates,
                retry_deadline: positive(args.retry.retry_deadline, "--retry-deadline")?,
            })
        };
        attributed(build(), file, explicit)
    }
}

/// An error about a value that came from the configuration file names the file and key.
fn attributed<T>(
    result: Result<T, ConfigError>,
    file: Option<&ConfigFile>,
    explicit: &Explicit,
) -> Result<T, ConfigError> {
    result.map_err(|error| match file {
        Some(file) => file.attribute(error, explicit),
        None => error,
    })
}

/// `--log-format` and `--log-level`, or the configuration file's, unless given explicitly.
pub fn log_settings(
    cli: &cli::Cli,
    explicit: &Explicit,
    file: Option<&ConfigFile>,
) -> Result<(cli::LogFormat, String), ConfigError> {
    let mut format = cli.log_format;
    let mut level = cli.log_level.clone();
    if let Some(file) = file {
        if !explicit.contains("log_format") {
            if let Some(from_file) = file.log_format()? {
                format = from_file;
            }
        }
        if !explicit.contains("log_level") {
            if let Some(from_file) = &file.raw.log_level {
                level = from_file.clone();
            }
        }
    }
    Ok((format, level))
}

/// The mode of templates rendered by `exec`, which has no `--file-mode`.
const DEFAULT_TEMPLATE_MODE: u32 = 0o440;

/// Every output of the flags and of the configuration file (`outputs`, `templates`), checked:
/// at least one, and every target can be created and written, so a read-only mount or a path
/// under a file fails before the first request.
fn checked_outputs(
    args: &OutputArgs,
    file: Option<&ConfigFile>,
) -> Result<OutputConfig, ConfigError> {
    let mut outputs = output_config(args)?;
    let mode = parse_file_mode(&args.file_mode)?;
    let owner = parse_owner(args)?;
    outputs
        .targets
        .extend(command_line_templates(&args.templates, mode, owner)?);
    if let Some(file) = file {
        outputs.targets.extend(file.outputs(mode, owner)?);
        outputs.targets.extend(file.templates(mode, owner)?);
    }
    if outputs.targets.is_empty() {
        return Err(ConfigError::Invalid {
            option: "--out-dir/--out-file",
            value: String::new(),
            reason: "give at least one output: --out-dir DIR (one file per secret), --out-file \
                     FILE, --template SRC:DEST, or outputs/templates in --config"
                .into(),
        });
    }
    outputs.check_targets()?;
    Ok(outputs)
}

/// `--template SRC:DEST`, each read and compiled now.
fn command_line_templates(
    args: &TemplateArgs,
    mode: u32,
    owner: Option<Owner>,
) -> Result<Vec<Target>, ConfigError> {
    args.templates
        .iter()
        .map(|spec| {
            let (source, destination) = spec
                .split_once(':')
                .filter(|(source, destination)| !source.is_empty() && !destination.is_empty())
                .ok_or_else(|| ConfigError::Invalid {
                    option: "--template",
                    value: spec.clone(),
                    reason: "expected SRC:DEST, e.g. /etc/app/config.yaml.j2:/run/app/config.yaml"
                        .into(),
                })?;
            Ok(Target {
                output: Output::Template {
                    template: layer::read_template(Path::new(source))?.into(),
                    source: Some(PathBuf::from(source)),
                    destination: PathBuf::from(destination),
                },
                mode,
                owner,
            })
        })
        .collect()
}

fn parse_owner(args: &OutputArgs) -> Result<Option<Owner>, ConfigError> {
    args.owner
        .as_deref()
        .map(|text| {
            Owner::from_str(text).map_err(|_| ConfigError::Invalid {
                option: "--owner",
                value: text.to_owned(),
                reason: "expected UID or UID:GID (numbers)".into(),
            })
        })
        .transpose()
}

/// Validates the `--out-dir` and `--out-file` options: a readable mode, a numeric owner. (The
/// targets themselves are checked by the mode constructors.)
pub fn output_config(args: &OutputArgs) -> Result<OutputConfig, ConfigError> {
    let file_mode = parse_file_mode(&args.file_mode)?;
    let owner = parse_owner(args)?;
    let dir = args.out_dir.clone().map(|path| Output::Dir {
        path,
        decode: BTreeMap::new(),
    });
    let file = args.out_file.clone().map(|path| Output::File {
        path,
        format: args.format,
    });
    Ok(OutputConfig {
        targets: dir
            .into_iter()
            .chain(file)
            .map(|output| Target {
                output,
                mode: file_mode,
                owner,
            })
            .collect(),
        invalid_keys: args.keys.invalid_keys,
        require_tmpfs: args.require_tmpfs,
    })
}

/// Parses an octal file mode such as `0440` or `440`.
pub fn parse_file_mode(text: &str) -> Result<u32, ConfigError> {
    let digits = text.trim().trim_start_matches("0o");
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o7777 && mode & 0o400 != 0 => Ok(mode),
        Ok(_) => Err(ConfigError::Invalid {
            option: "--file-mode",
            value: text.to_owned(),
            reason: "must be an octal mode the owner can read, e.g. 0440 or 0400".into(),
        }),
        Err(_) => Err(ConfigError::Invalid {
            option: "--file-mode",
            value: text.to_owned(),
            reason: "must be octal, e.g. 0440".into(),
        }),
    }
}

/// The shortest accepted `--interval` (tests and benchmarks use it; production uses minutes).
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// `--interval` and `--jitter`, shared by `sidecar` and `exec --watch`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RefreshTiming {
    /// Time between refreshes, at least [`MIN_INTERVAL`].
    pub interval: Duration,
    /// Random extra wait, as a fraction of the interval (0 to 1).
    pub jitter: f64,
}

impl RefreshTiming {
    /// Validates `--interval` and `--jitter`.
    pub fn from_args(args: &RefreshArgs) -> Result<Self, ConfigError> {
        if args.interval < MIN_INTERVAL {
            return Err(ConfigError::Invalid {
                option: "--interval",
                value: humantime::format_duration(args.interval).to_string(),
                reason: "must be at least 100ms".into(),
            });
        }
        if !(0.0..=1.0).contains(&args.jitter) {
            return Err(ConfigError::Invalid {
                option: "--jitter",
                value: args.jitter.to_string(),
                reason: "must be between 0 and 1 (a fraction of --interval)".into(),
            });
        }
        Ok(Self {
            interval: args.interval,
            jitter: args.jitter,
        })
    }
}

/// What the sidecar does after a change (`--on-change-*`), parsed.
#[derive(Clone, Debug)]
pub struct OnChangeConfig {
    /// `--on-change-signal` and `--on-change-pid-file`.
    pub signal: Option<SignalTarget>,
    /// `--on-change-exec`, split on spaces: the program and its arguments (never empty).
    pub command: Option<Vec<String>>,
    /// `--on-change-url`: receives an HTTP POST.
    pub url: Option<reqwest::Url>,
    /// `--on-change-timeout`: bounds the command and the POST.
    pub timeout: Duration,
}

/// A signal for the process whose pid is in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalTarget {
    /// The signal.
    pub signal: Signal,
    /// The file holding the pid, read at each notification (the app may restart).
    pub pid_file: PathBuf,
}

impl OnChangeConfig {
    /// Validates the `--on-change-*` options.
    pub fn from_args(args: &SidecarArgs) -> Result<Self, ConfigError> {
        let signal = match (&args.on_change_signal, &args.on_change_pid_file) {
            (Some(signal), Some(pid_file)) => Some(SignalTarget {
                signal: parse_signal("--on-change-signal", signal)?,
                pid_file: pid_file.clone(),
            }),
            (Some(signal), None) => {
                return Err(ConfigError::Invalid {
                    option: "--on-change-signal",
                    value: signal.clone(),
                    reason:
                        "needs --on-change-pid-file (the app's pid, with shareProcessNamespace)"
                            .into(),
                })
            }
            (None, Some(pid_file)) => {
                return Err(ConfigError::Invalid {
                    option: "--on-change-pid-file",
                    value: pid_file.display().to_string(),
                    reason: "needs --on-change-signal, e.g. --on-change-signal HUP".into(),
                })
            }
            (None, None) => None,
        };
        let command = match &args.on_change_exec {
            Some(line) => {
                let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
                if words.is_empty() {
                    return Err(ConfigError::Invalid {
                        option: "--on-change-exec",
                        value: line.clone(),
                        reason: "is empty: give a command, e.g. \"/app/reload --graceful\"".into(),
                    });
                }
                Some(words)
            }
            None => None,
        };
        let url =
            match &args.on_change_url {
                Some(text) => Some(parse_http_url(text).ok_or_else(|| {
                    ConfigError::Invalid {
                option: "--on-change-url",
                value: text.clone(),
                reason: "must be an http:// or https:// URL, e.g. http://127.0.0.1:8080/-/reload"
                    .into(),
            }
                })?),
                None => None,
            };
        Ok(Self {
            signal,
            command,
            url,
            timeout: args.on_change_timeout,
        })
    }
}

fn parse_http_url(text: &str) -> Option<reqwest::Url> {
    let url = reqwest::Url::parse(text.trim()).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.has_host()).then_some(url)
}

/// Parses `HUP`, `SIGHUP`, `hup` or a number; `option` names the flag in the error.
pub fn parse_signal(option: &'static str, text: &str) -> Result<Signal, ConfigError> {
    let upper = text.trim().to_ascii_uppercase();
    let parsed = match upper.parse::<i32>() {
        Ok(number) => Signal::try_from(number).ok(),
        Err(_) if upper.starts_with("SIG") => Signal::from_str(&upper).ok(),
        Err(_) => Signal::from_str(&format!("SIG{upper}")).ok(),
    };
    parsed.ok_or_else(|| ConfigError::Invalid {
        option,
        value: text.to_owned(),
        reason: "not a signal name; use e.g. HUP, TERM, USR1".into(),
    })
}

/// Parses `--listen`: `PORT` and `:PORT` mean every interface (`0.0.0.0:PORT`); `IP:PORT` and
/// `[IPv6]:PORT` are taken as they are; `HOST:PORT` is resolved now (an IPv4 address first).
pub fn parse_listen(text: &str) -> Result<SocketAddr, ConfigError> {
    let refuse = |reason: String| ConfigError::Invalid {
        option: "--listen",
        value: text.to_owned(),
        reason,
    };
    let trimmed = text.trim();
    let port = trimmed.strip_prefix(':').unwrap_or(trimmed);
    if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
        let port = port
            .parse::<u16>()
            .map_err(|_| refuse("the port must be at most 65535, e.g. 9464".into()))?;
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if let Ok(address) = trimmed.parse::<SocketAddr>() {
        return Ok(address);
    }
    let example = "give PORT, :PORT, IP:PORT or HOST:PORT, e.g. 9464 or 0.0.0.0:9464";
    if !trimmed.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
    }) {
        return Err(refuse(example.into()));
    }
    let addresses: Vec<SocketAddr> = trimmed
        .to_socket_addrs()
        .map_err(|e| refuse(format!("cannot resolve it ({e}); {example}")))?
        .collect();
    addresses
        .iter()
        .find(|address| address.is_ipv4())
        .or(addresses.first())
        .copied()
        .ok_or_else(|| refuse(format!("the host has no address; {example}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::sink::Format;
    use clap::Parser;

    fn source(args: &[&str]) -> SourceArgs {
        let mut argv = vec!["infisical-materializer", "check"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Check(check) => check.source,
            _ => unreachable!(),
        }
    }

    fn env_map(env: &[(&str, &str)]) -> HashMap<String, String> {
        env.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn build(args: &[&str], env: &[(&str, &str)]) -> Result<FetchConfig, ConfigError> {
        FetchConfig::from_args(&source(args), &env_map(env))
    }

    /// Parses `MODE` with a valid token-auth source plus `args`.
    fn parse(mode: &str, args: &[&str]) -> Command {
        let mut argv = vec![
            "infisical-materializer",
            mode,
            "--env",
            "dev",
            "--project-id",
            "p",
        ];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("parses").command
    }

    const TOKEN: &[(&str, &str)] = &[("INFISICAL_TOKEN", "t")];

    fn sidecar(args: &[&str]) -> Result<SidecarConfig, ConfigError> {
        let mut all = vec!["--out-dir", "/run/secrets/app"];
        all.extend_from_slice(args);
        match parse("sidecar", &all) {
            Command::Sidecar(args) => SidecarConfig::from_args(&args, &env_map(TOKEN)),
            _ => unreachable!(),
        }
    }

    fn exec(args: &[&str]) -> Result<ExecConfig, ConfigError> {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--", "/app/server", "--port", "8080"]);
        match parse("exec", &all) {
            Command::Exec(args) => ExecConfig::from_args(&args, &env_map(TOKEN)),
            _ => unreachable!(),
        }
    }

    /// The flag a configuration error names.
    fn option_of(error: ConfigError) -> &'static str {
        match error {
            ConfigError::Invalid { option, .. } => option,
            other => panic!("not an invalid option: {other}"),
        }
    }

    #[test]
    fn api_url_accepts_both_forms_users_copy() {
        for url in [
            "https://eu.infisical.com",
            "https://eu.infisical.com/",
            "https://eu.infisical.com/api",
            "https://eu.infisical.com/api/",
        ] {
            assert_eq!(
                normalize_api_url(url).unwrap(),
                "https://eu.infisical.com/api"
            );
        }
        assert!(normalize_api_url("eu.infisical.com").is_err());
        assert!(normalize_api_url("https://").is_err());
    }

    #[test]
    fn secret_paths_are_canonical() {
        assert_eq!(normalize_secret_path("/").unwrap(), "/");
        assert_eq!(normalize_secret_path("/app/").unwrap(), "/app");
        assert!(normalize_secret_path("app").is_err());
    }

    const IDENTITY: &str = "5f0c1f1e-8a3b-4c2d-9e1f-0a1b2c3d4e5f";

    #[test]
    fn identity_logins_need_a_uuid_and_their_credential_source() {
        let dir = tempfile::tempdir().unwrap();
        let base = ["--env", "dev", "--project-id", "p"];
        let with = |extra: &[&str], env: &[(&str, &str)]| {
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            build(&args, env)
        };
        let bad_id = with(
            &["--auth-method", "aws-iam", "--identity-id", "my-identity"],
            &[],
        );
        assert!(
            matches!(
                &bad_id,
                Err(ConfigError::Invalid {
                    option: "--identity-id",
                    ..
                })
            ),
            "{bad_id:?}"
        );
        let no_id = with(&["--auth-method", "azure"], &[]);
        assert!(matches!(
            no_id,
            Err(ConfigError::MissingCredential {
                method: "azure",
                ..
            })
        ));

        // OIDC takes the JWT from --jwt-file or INFISICAL_JWT (not both), else the pod's token.
        let oidc = with(
            &["--auth-method", "oidc", "--identity-id", IDENTITY],
            &[("INFISICAL_JWT", "a.b.c")],
        )
        .expect("valid");
        assert_eq!(oidc.auth.method_name(), "oidc");
        assert!(oidc.auth.watched_files().is_empty());
        let token = dir.path().join("jwt");
        std::fs::write(&token, "a.b.c\n").unwrap();
        let jwt = with(
            &[
                "--auth-method",
                "jwt",
                "--identity-id",
                IDENTITY,
                "--jwt-file",
                token.to_str().unwrap(),
            ],
            &[],
        )
        .expect("valid");
        assert_eq!(jwt.auth.watched_files(), vec![token.clone()]);

        let gcp = with(
            &["--auth-method", "gcp-iam", "--identity-id", IDENTITY],
            &[],
        );
        assert!(matches!(
            gcp,
            Err(ConfigError::MissingCredential {
                method: "gcp-iam",
                ..
            })
        ));
        let aws = with(
            &["--auth-method", "aws-iam", "--identity-id", IDENTITY],
            &[("AWS_ACCESS_KEY_ID", "AKIA")],
        );
        assert!(matches!(aws, Err(ConfigError::Cloud(CloudError::Local(_)))));
        let gce = with(
            &["--auth-method", "gcp-id-token", "--identity-id", IDENTITY],
            &[("GCE_METADATA_HOST", "127.0.0.1:9")],
        )
        .expect("valid");
        assert!(matches!(
            gce.auth,
            AuthConfig::GcpIdToken { ref metadata_host, .. } if metadata_host == "127.0.0.1:9"
        ));
    }

    #[test]
    fn auth_method_is_inferred_and_ambiguity_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("token");
        let config = build(
            &[
                "--env",
                "dev",
                "--project-id",
                "p",
                "--identity-id",
                IDENTITY,
                "--service-account-token-file",
                missing.to_str().unwrap(),
            ],
            &[],
        );
        // Kubernetes auth is inferred, and its token file is read before any request.
        assert!(matches!(
            config,
            Err(ConfigError::Credential(CredentialError::Unreadable { ref path, .. })) if *path == missing
        ));

        let config = build(
            &["--env", "dev", "--project-id", "p", "--client-id", "c"],
            &[("INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET", " s3cret \n")],
        )
        .expect("valid");
        assert_eq!(config.auth.method_name(), "universal-auth");

        let both = build(
            &["--env", "dev", "--project-id", "p", "--client-id", "c"],
            &[
                ("INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET", "s"),
                ("INFISICAL_TOKEN", "t"),
            ],
        );
        assert!(
            matches!(both, Err(ConfigError::AmbiguousAuth { ref found }) if found == "universal-auth, token")
        );
        assert!(matches!(
            build(&["--env", "dev", "--project-id", "p"], &[]),
            Err(ConfigError::NoCredentials)
        ));
    }

    #[test]
    fn project_slugs_are_lowercase_letters_digits_and_dashes() {
        for slug in ["sidecar-test", "my-app-a1b2", "p1"] {
            assert_eq!(project_slug_problem(slug), None, "{slug}");
        }
        for name in ["Sidecar Test", "sidecar test", "MyApp", "my_app", "café"] {
            assert!(project_slug_problem(name).is_some(), "{name}");
        }
        let error = build(&["--project-slug", "Sidecar Test", "--env", "dev"], &[]).unwrap_err();
        assert_eq!(error.exit_code(), exit::USAGE);
        assert!(
            error
                .to_string()
                .starts_with("--project-slug \"Sidecar Test\": not a project slug"),
            "{error}"
        );
    }

    #[test]
    fn exactly_one_project_and_an_environment_are_required() {
        let env = [("INFISICAL_TOKEN", "t")];
        assert!(matches!(
            build(&["--env", "dev"], &env),
            Err(ConfigError::ProjectChoice)
        ));
        assert!(matches!(
            build(
                &["--env", "dev", "--project-id", "a", "--project-slug", "b"],
                &env
            ),
            Err(ConfigError::ProjectChoice)
        ));
        assert!(matches!(
            build(&["--project-id", "a"], &env),
            Err(ConfigError::MissingEnvironment)
        ));
    }

    #[test]
    fn key_mappings_rename_and_refuse_collisions() {
        let parsed =
            parse_key_mappings(&["DB_PASSWORD=password".into(), "API_KEY".into()]).unwrap();
        assert_eq!(parsed[0].remote, "DB_PASSWORD");
        assert_eq!(parsed[0].local, "password");
        assert_eq!(parsed[1].local, "API_KEY");
        assert!(parse_key_mappings(&["A=X".into(), "B=X".into()]).is_err());
        assert!(parse_key_mappings(&["=X".into()]).is_err());
    }

    #[test]
    fn file_modes_are_octal_and_owner_readable() {
        assert_eq!(parse_file_mode("0440").unwrap(), 0o440);
        assert_eq!(parse_file_mode("600").unwrap(), 0o600);
        assert!(parse_file_mode("0040").is_err());
        assert!(parse_file_mode("0999").is_err());
    }

    #[test]
    fn a_credential_given_two_ways_is_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credential");
        std::fs::write(&file, "value").unwrap();
        let file = file.to_str().unwrap();
        /// Arguments, variables, and the message without its advice.
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
        let cases: [Case; 4] = [
            (
                &[
                    "--client-id",
                    "id",
                    "--client-id-file",
                    file,
                    "--client-secret-file",
                    file,
                ],
                &[],
                "the client id is given twice, by --client-id and by --client-id-file",
            ),
            (
                &["--client-id", "id", "--client-secret-file", file],
                &[(cli::ENV_CLIENT_SECRET, "secret")],
                "the client secret is given twice, by --client-secret-file and by \
                 INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET",
            ),
            (
                &["--token-file", file],
                &[(cli::ENV_TOKEN, "token")],
                "the access token is given twice, by --token-file and by INFISICAL_TOKEN",
            ),
            (
                &[
                    "--auth-method",
                    "jwt",
                    "--identity-id",
                    "5f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f",
                    "--jwt-file",
                    file,
                ],
                &[(cli::ENV_JWT, "a.b.c")],
                "the JWT is given twice, by --jwt-file and by INFISICAL_JWT",
            ),
        ];
        for (args, env, expected) in cases {
            let mut all = vec!["--project-id", "p", "--env", "dev"];
            all.extend_from_slice(args);
            let error = build(&all, env).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("{expected}: give it only one way")
            );
            assert_eq!(error.exit_code(), exit::USAGE);
        }
        // One way each is fine.
        let fine = build(
            &[
                "--project-id",
                "p",
                "--env",
                "dev",
                "--client-id-file",
                file,
            ],
            &[(cli::ENV_CLIENT_SECRET, "secret")],
        );
        assert!(fine.is_ok(), "{fine:?}");
    }

    #[test]
    fn credential_files_are_trimmed_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "  value\n").unwrap();
        assert_eq!(
            read_credential_file(&file, "client secret")
                .unwrap()
                .expose(),
            "value"
        );
        std::fs::write(&file, "\n").unwrap();
        assert!(matches!(
            read_credential_file(&file, "client secret"),
            Err(CredentialError::Empty { .. })
        ));
        let missing = read_credential_file(&dir.path().join("nope"), "client secret");
        let message = missing.unwrap_err().to_string();
        assert!(message.contains("nope"), "{message}");
    }

    #[test]
    fn listen_takes_a_port_alone_or_an_address() {
        let any = |port| SocketAddr::from(([0, 0, 0, 0], port));
        assert_eq!(parse_listen("9464").unwrap(), any(9464));
        assert_eq!(parse_listen(":9464").unwrap(), any(9464));
        assert_eq!(parse_listen("0.0.0.0:9464").unwrap(), any(9464));
        assert_eq!(
            parse_listen("127.0.0.1:8080").unwrap(),
            SocketAddr::from(([127, 0, 0, 1], 8080))
        );
        assert_eq!(
            parse_listen("[::]:9464").unwrap(),
            "[::]:9464".parse().unwrap()
        );
        for bad in ["", "nope", "99999", ":", "host:", "127.0.0.1", "1.2.3.4:x"] {
            let message = parse_listen(bad).unwrap_err().to_string();
            assert!(message.starts_with("--listen"), "{bad:?}: {message}");
            assert!(
                message.contains("9464"),
                "{bad:?} has an example: {message}"
            );
        }
    }

    #[test]
    fn signal_names_with_or_without_prefix() {
        assert_eq!(parse_signal("--x", "HUP").unwrap(), Signal::SIGHUP);
        assert_eq!(parse_signal("--x", "SIGHUP").unwrap(), Signal::SIGHUP);
        assert_eq!(parse_signal("--x", "usr1").unwrap(), Signal::SIGUSR1);
        assert_eq!(parse_signal("--x", "15").unwrap(), Signal::SIGTERM);
        let error = parse_signal("--restart-signal", "SIGNOPE").unwrap_err();
        assert_eq!(
            error.to_string(),
            "--restart-signal \"SIGNOPE\": not a signal name; use e.g. HUP, TERM, USR1"
        );
    }

    #[test]
    fn on_change_options_are_parsed_and_paired() {
        let config = sidecar(&[
            "--on-change-signal",
            "hup",
            "--on-change-pid-file",
            "/run/app.pid",
            "--on-change-exec",
            " /app/reload  --graceful ",
            "--on-change-url",
            "http://127.0.0.1:8080/-/reload",
            "--on-change-timeout",
            "5s",
        ])
        .unwrap()
        .on_change;
        assert_eq!(
            config.signal,
            Some(SignalTarget {
                signal: Signal::SIGHUP,
                pid_file: "/run/app.pid".into()
            })
        );
        assert_eq!(
            config.command.unwrap(),
            ["/app/reload", "--graceful"].map(String::from)
        );
        assert_eq!(
            config.url.unwrap().as_str(),
            "http://127.0.0.1:8080/-/reload"
        );
        assert_eq!(config.timeout, Duration::from_secs(5));

        let none = sidecar(&[]).unwrap().on_change;
        assert!(none.signal.is_none() && none.command.is_none() && none.url.is_none());

        let refused = |args: &[&str]| option_of(sidecar(args).unwrap_err());
        assert_eq!(
            refused(&["--on-change-signal", "HUP"]),
            "--on-change-signal"
        );
        assert_eq!(
            refused(&["--on-change-pid-file", "/run/app.pid"]),
            "--on-change-pid-file"
        );
        assert_eq!(
            refused(&["--on-change-signal", "NOPE", "--on-change-pid-file", "/p"]),
            "--on-change-signal"
        );
        assert_eq!(refused(&["--on-change-exec", "  "]), "--on-change-exec");
        for url in ["ftp://host/x", "localhost:8080/reload", "http://"] {
            assert_eq!(refused(&["--on-change-url", url]), "--on-change-url");
        }
    }

    #[test]
    fn staleness_defaults_to_three_intervals() {
        let config = sidecar(&["--interval", "10s"]).unwrap();
        assert_eq!(config.max_staleness, Duration::from_secs(30));
        assert_eq!(config.timing.interval, Duration::from_secs(10));
        let config = sidecar(&["--interval", "10s", "--max-staleness", "1m"]).unwrap();
        assert_eq!(config.max_staleness, Duration::from_secs(60));
        assert_eq!(
            option_of(sidecar(&["--max-staleness", "0s"]).unwrap_err()),
            "--max-staleness"
        );
    }

    #[test]
    fn sidecar_listen_and_timing_are_checked_before_anything_runs() {
        assert_eq!(
            sidecar(&["--listen", ":9464"]).unwrap().listen,
            Some(SocketAddr::from(([0, 0, 0, 0], 9464)))
        );
        assert_eq!(sidecar(&[]).unwrap().listen, None);
        assert_eq!(
            option_of(sidecar(&["--listen", "nine"]).unwrap_err()),
            "--listen"
        );
        assert_eq!(
            option_of(sidecar(&["--interval", "10ms"]).unwrap_err()),
            "--interval"
        );
        assert_eq!(
            option_of(sidecar(&["--jitter", "1.5"]).unwrap_err()),
            "--jitter"
        );
    }

    #[test]
    fn output_format_and_key_policy_come_typed_from_the_command_line() {
        let config = sidecar(&[
            "--out-file",
            "/run/app.json",
            "--format",
            "json",
            "--invalid-keys",
            "skip",
        ])
        .unwrap();
        assert!(
            matches!(
                &config.output.targets[..],
                [_, Target { output: Output::File { path, format: Format::Json }, .. }]
                    if path == Path::new("/run/app.json")
            ),
            "{:?}",
            config.output.targets
        );
        assert_eq!(config.output.invalid_keys, InvalidKeys::Skip);
        let argv = ["infisical-materializer", "init", "--format", "toml"];
        let error = Cli::try_parse_from(argv).unwrap_err().to_string();
        assert!(error.contains("dotenv, shell, json, yaml"), "{error}");
    }

    #[test]
    fn exec_checks_the_watch_options_only_with_watch() {
        let plain = exec(&["--restart-signal", "NOPE", "--jitter", "3"]).unwrap();
        assert!(plain.watch.is_none());
        assert_eq!(plain.command, ["/app/server", "--port", "8080"]);
        assert_eq!(plain.invalid_keys, InvalidKeys::Fail);

        let watch = exec(&["--watch", "--restart-signal", "INT", "--interval", "1m"])
            .unwrap()
            .watch
            .unwrap();
        assert_eq!(watch.restart_signal, Signal::SIGINT);
        assert_eq!(watch.timing.interval, Duration::from_secs(60));
        assert_eq!(watch.grace, Duration::from_secs(10));
        assert_eq!(
            option_of(exec(&["--watch", "--restart-signal", "NOPE"]).unwrap_err()),
            "--restart-signal"
        );
        assert_eq!(
            option_of(exec(&["--watch", "--jitter", "3"]).unwrap_err()),
            "--jitter"
        );
    }

    #[test]
    fn each_mode_takes_its_own_retry_deadline() {
        let Command::Check(args) = parse("check", &["--retry-deadline", "5s"]) else {
            unreachable!()
        };
        let config = CheckConfig::from_args(&args, &env_map(TOKEN)).unwrap();
        assert_eq!(config.retry_deadline, Duration::from_secs(5));
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("secrets");
        let Command::Init(args) = parse("init", &["--out-dir", out.to_str().unwrap()]) else {
            unreachable!()
        };
        let config = InitConfig::from_args(&args, &env_map(TOKEN)).unwrap();
        assert_eq!(config.retry_deadline, cli::DEFAULT_RETRY_DEADLINE);
        assert!(
            matches!(&config.output.targets[..], [Target { output: Output::Dir { path, .. }, .. }] if *path == out)
        );
        let Command::Init(args) = parse("init", &[]) else {
            unreachable!()
        };
        let error = InitConfig::from_args(&args, &env_map(TOKEN)).unwrap_err();
        assert_eq!(option_of(error), "--out-dir/--out-file");
    }

    #[test]
    fn configuration_errors_are_usage_errors_and_unwritable_outputs_73() {
        let fatal = Fatal::from(ConfigError::MissingEnvironment);
        assert_eq!(fatal.code, exit::USAGE);
        assert!(fatal.message.contains("--env"), "{}", fatal.message);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let under_a_file = file.join("secrets");
        let Command::Init(args) = parse("init", &["--out-dir", under_a_file.to_str().unwrap()])
        else {
            unreachable!()
        };
        let fatal = Fatal::from(InitConfig::from_args(&args, &env_map(TOKEN)).unwrap_err());
        assert_eq!(fatal.code, exit::CANT_WRITE, "{}", fatal.message);
        assert!(fatal.message.contains("--out-dir"), "{}", fatal.message);
    }
}
