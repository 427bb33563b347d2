//! Validated settings, built from the command line by one constructor per concern.
//!
//! [`crate::cli`] is the raw layer; here every value is checked once, with one clear message per
//! bad field, so the rest of the program never sees an invalid combination.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::str::FromStr;

use crate::cli::{self, AuthMethod, InvalidKeysArgs, OutputArgs, RefreshArgs, SourceArgs};
use crate::secrets::{InvalidKeys, SecretValue};
use crate::sink::{Format, OutputConfig, Owner, WriteOptions};

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
    #[error("no credentials given: use --client-id and --client-secret-file (universal auth), --identity-id (kubernetes auth) or --token-file (token auth)")]
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
    /// A credential file that cannot be read.
    #[error("cannot read the {what} file {path}: {source}; check the volume mount and the path")]
    CredentialFile {
        /// Which credential.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A credential file or variable that is empty.
    #[error("the {what} in {origin} is empty")]
    EmptyCredential {
        /// Which credential.
        what: &'static str,
        /// The file or variable it came from.
        origin: String,
    },
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

/// Where a credential comes from. Files are re-read at every login (kubelet rotates them).
#[derive(Clone, Debug)]
pub enum Credential {
    /// A file whose trimmed content is the credential.
    File(PathBuf),
    /// A value given through an environment variable.
    Value {
        /// The variable's name, for messages.
        origin: &'static str,
        /// The trimmed value.
        value: SecretValue,
    },
}

impl Credential {
    /// Reads the credential, trimmed; `what` names it in errors ("client secret").
    pub fn read(&self, what: &'static str) -> Result<SecretValue, ConfigError> {
        match self {
            Credential::File(path) => read_credential_file(path, what),
            Credential::Value { value, .. } => Ok(value.clone()),
        }
    }

    /// The file to watch for changes, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Credential::File(path) => Some(path),
            Credential::Value { .. } => None,
        }
    }
}

/// Reads and trims a credential file; an empty one is an error too.
pub fn read_credential_file(path: &Path, what: &'static str) -> Result<SecretValue, ConfigError> {
    let raw = std::fs::read_to_string(path).map_err(|source| ConfigError::CredentialFile {
        what,
        path: path.to_owned(),
        source,
    })?;
    let raw = SecretValue::new(raw);
    let trimmed = raw.expose().trim();
    if trimmed.is_empty() {
        return Err(ConfigError::EmptyCredential {
            what,
            origin: path.display().to_string(),
        });
    }
    Ok(SecretValue::from(trimmed))
}

/// How to authenticate.
#[derive(Clone, Debug)]
pub enum AuthConfig {
    /// Universal auth: client id and client secret.
    UniversalAuth {
        /// The client id (a value or a file).
        client_id: Credential,
        /// The client secret (a file or INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET).
        client_secret: Credential,
    },
    /// Kubernetes auth: identity id and the pod's projected service-account token.
    Kubernetes {
        /// The machine identity id.
        identity_id: String,
        /// The projected token file.
        token_file: PathBuf,
    },
    /// Token auth: an access token used directly.
    Token {
        /// The token (a file or INFISICAL_TOKEN).
        token: Credential,
    },
}

impl AuthConfig {
    /// The method's name as the CLI spells it.
    pub fn method_name(&self) -> &'static str {
        match self {
            AuthConfig::UniversalAuth { .. } => "universal-auth",
            AuthConfig::Kubernetes { .. } => "kubernetes",
            AuthConfig::Token { .. } => "token",
        }
    }

    /// Files holding credentials, which a sidecar watches.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        match self {
            AuthConfig::UniversalAuth {
                client_id,
                client_secret,
            } => [client_id.path(), client_secret.path()]
                .into_iter()
                .flatten()
                .map(Path::to_owned)
                .collect(),
            AuthConfig::Kubernetes { token_file, .. } => vec![token_file.clone()],
            AuthConfig::Token { token } => token.path().map(Path::to_owned).into_iter().collect(),
        }
    }
}

/// The project, by id or by slug.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProjectRef {
    /// The project id (a UUID).
    Id(String),
    /// The project slug (not the display name).
    Slug(String),
}

impl std::fmt::Display for ProjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProjectRef::Id(id) => write!(f, "project id {id:?}"),
            ProjectRef::Slug(slug) => write!(f, "project slug {slug:?}"),
        }
    }
}

/// `--key REMOTE=LOCAL`: take REMOTE, write it as LOCAL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMapping {
    /// The key in Infisical.
    pub remote: String,
    /// The name it gets here.
    pub local: String,
}

/// HTTP settings for the Infisical client.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// Base URL ending in `/api`, no trailing slash.
    pub base_url: String,
    /// Extra trusted CA certificates (PEM, DER-decoded), if `--ca-cert` was given.
    pub ca_cert: Option<PathBuf>,
    /// Timeout of one request.
    pub request_timeout: Duration,
}

/// Everything about one source of secrets: server, credentials, and what to list.
#[derive(Clone, Debug)]
pub struct SourceConfig {
    /// Server settings.
    pub api: ApiSettings,
    /// Credentials.
    pub auth: AuthConfig,
    /// The project.
    pub project: ProjectRef,
    /// The environment slug.
    pub environment: String,
    /// The folder, normalized (leading `/`, no trailing `/` except the root).
    pub path: String,
    /// Include sub-folders.
    pub recursive: bool,
    /// Include imported secrets.
    pub include_imports: bool,
    /// Ask the server to expand `${...}` references.
    pub expand_references: bool,
    /// Only secrets with these tag slugs.
    pub tags: Vec<String>,
    /// An empty result is fine.
    pub allow_empty: bool,
    /// Only these keys, renamed (empty: all keys).
    pub keys: Vec<KeyMapping>,
    /// How long transient failures are retried (init, exec, check).
    pub retry_deadline: Duration,
}

impl SourceConfig {
    /// Validates the source options.
    pub fn from_args(args: &SourceArgs, env: &dyn Environment) -> Result<Self, ConfigError> {
        let environment = args
            .environment
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .ok_or(ConfigError::MissingEnvironment)?
            .to_owned();
        let project = match (non_empty(&args.project_id), non_empty(&args.project_slug)) {
            (Some(id), None) => ProjectRef::Id(id),
            (None, Some(slug)) => ProjectRef::Slug(slug),
            _ => return Err(ConfigError::ProjectChoice),
        };
        let api = ApiSettings {
            base_url: normalize_api_url(&args.api_url)?,
            ca_cert: args.ca_cert.clone(),
            request_timeout: positive(args.request_timeout, "--request-timeout")?,
        };
        if let Some(path) = &api.ca_cert {
            check_ca_file(path)?;
        }
        let auth = auth_config(args, env)?;
        // Fail fast on a missing credential file: a typo here should not wait for a login.
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
        }
        Ok(Self {
            api,
            auth,
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
            allow_empty: args.allow_empty,
            keys: parse_key_mappings(&args.keys)?,
            retry_deadline: args.retry_deadline,
        })
    }
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
            identity_id: identity_id.ok_or(ConfigError::MissingCredential {
                method: "kubernetes",
                what: "--identity-id (INFISICAL_MACHINE_IDENTITY_ID)",
            })?,
            token_file: args.service_account_token_file.clone(),
        },
        AuthMethod::Token => AuthConfig::Token {
            token: token.ok_or(ConfigError::MissingCredential {
                method: "token",
                what: "--token-file or INFISICAL_TOKEN",
            })?,
        },
    })
}

/// Validates the output options. `required`: at least one of `--out-dir` / `--out-file`.
pub fn output_config(args: &OutputArgs, required: bool) -> Result<OutputConfig, ConfigError> {
    if required && args.out_dir.is_none() && args.out_file.is_none() {
        return Err(ConfigError::Invalid {
            option: "--out-dir/--out-file",
            value: String::new(),
            reason:
                "give at least one output: --out-dir DIR (one file per secret) or --out-file FILE"
                    .into(),
        });
    }
    let format = Format::from_str(&args.format).map_err(|_| ConfigError::Invalid {
        option: "--format",
        value: args.format.clone(),
        reason: "expected dotenv, shell, json or yaml".into(),
    })?;
    let file_mode = parse_file_mode(&args.file_mode)?;
    let owner = match &args.owner {
        Some(text) => Some(Owner::from_str(text).map_err(|_| ConfigError::Invalid {
            option: "--owner",
            value: text.clone(),
            reason: "expected UID or UID:GID (numbers)".into(),
        })?),
        None => None,
    };
    Ok(OutputConfig {
        dir: args.out_dir.clone(),
        file: args.out_file.clone().map(|file| (file, format)),
        options: WriteOptions {
            file_mode,
            owner,
            require_tmpfs: args.require_tmpfs,
        },
        invalid_keys: invalid_keys(&args.keys)?,
    })
}

/// Validates `--invalid-keys`.
pub fn invalid_keys(args: &InvalidKeysArgs) -> Result<InvalidKeys, ConfigError> {
    InvalidKeys::from_str(&args.invalid_keys).map_err(|_| ConfigError::Invalid {
        option: "--invalid-keys",
        value: args.invalid_keys.clone(),
        reason: "expected fail or skip".into(),
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

/// Validates `--interval` and `--jitter`, shared by `sidecar` and `exec --watch`.
pub fn refresh_timing(args: &RefreshArgs) -> Result<(Duration, f64), ConfigError> {
    if args.interval < MIN_INTERVAL {
        return Err(ConfigError::Invalid {
            option: "--interval",
            value: humantime::format_duration(args.interval).to_string(),
            reason: "must be at least 100ms".into(),
        });
    }
    Ok((args.interval, jitter(args.jitter)?))
}

/// Validates `--jitter` (a fraction of the interval, 0 to 1).
fn jitter(value: f64) -> Result<f64, ConfigError> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            option: "--jitter",
            value: value.to_string(),
            reason: "must be between 0 and 1 (a fraction of --interval)".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn source(args: &[&str]) -> SourceArgs {
        let mut argv = vec!["infisical-materializer", "check"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Check(check) => check.source,
            _ => unreachable!(),
        }
    }

    fn build(args: &[&str], env: &[(&str, &str)]) -> Result<SourceConfig, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SourceConfig::from_args(&source(args), &env)
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

    #[test]
    fn auth_method_is_inferred_and_ambiguity_refused() {
        let config = build(
            &["--env", "dev", "--project-id", "p", "--identity-id", "i"],
            &[],
        );
        // The default token path does not exist here, so the credential check refuses it.
        assert!(matches!(config, Err(ConfigError::CredentialFile { .. })));

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
            Err(ConfigError::EmptyCredential { .. })
        ));
        let missing = read_credential_file(&dir.path().join("nope"), "client secret");
        let message = missing.unwrap_err().to_string();
        assert!(message.contains("nope"), "{message}");
    }
}
