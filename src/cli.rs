//! The command line: every flag, its environment variable, and its default.
//!
//! This is the raw layer; [`crate::config`] turns it into validated settings. Values that are
//! secrets (the client secret, an access token) are never flags: they would show in `ps`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Default Infisical address (Infisical Cloud, US region).
pub const DEFAULT_API_URL: &str = "https://app.infisical.com";
/// Where kubelet mounts the pod's service-account token.
pub const DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Environment variables that hold the client secret or access token by value (no flag exists).
pub const ENV_CLIENT_SECRET: &str = "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET";
/// See [`ENV_CLIENT_SECRET`].
pub const ENV_TOKEN: &str = "INFISICAL_TOKEN";

/// Every environment variable this tool reads. `exec` removes them from the child's environment
/// (unless kept with `--keep-env`) so the app never sees the wrapper's credentials or config.
pub const CONSUMED_ENV_VARS: &[&str] = &[
    "INFISICAL_API_URL",
    "INFISICAL_CA_CERT",
    "INFISICAL_AUTH_METHOD",
    "INFISICAL_UNIVERSAL_AUTH_CLIENT_ID",
    "INFISICAL_UNIVERSAL_AUTH_CLIENT_ID_FILE",
    "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET_FILE",
    ENV_CLIENT_SECRET,
    "INFISICAL_MACHINE_IDENTITY_ID",
    "INFISICAL_KUBERNETES_SERVICE_ACCOUNT_TOKEN_PATH",
    "INFISICAL_TOKEN_FILE",
    ENV_TOKEN,
    "INFISICAL_PROJECT_ID",
    "INFISICAL_PROJECT_SLUG",
    "INFISICAL_ENVIRONMENT",
    "INFISICAL_SECRET_PATH",
    "INFISICAL_RECURSIVE",
    "INFISICAL_TAGS",
    "INFISICAL_KEYS",
    "INFISICAL_LOG_FORMAT",
    "INFISICAL_LOG_LEVEL",
    "INFISICAL_OUT_DIR",
    "INFISICAL_OUT_FILE",
    "INFISICAL_OUT_FORMAT",
    "INFISICAL_FILE_MODE",
    "INFISICAL_OWNER",
    "INFISICAL_REFRESH_INTERVAL",
    "INFISICAL_LISTEN",
];

/// infisical-materializer: Infisical secrets for a Kubernetes pod, as files or environment.
#[derive(Debug, Parser)]
#[command(name = "infisical-materializer", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// Log format on stderr.
    #[arg(long, global = true, env = "INFISICAL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter, e.g. `info`, `debug`, `infisical_materializer=trace`.
    #[arg(
        long,
        global = true,
        env = "INFISICAL_LOG_LEVEL",
        default_value = "info"
    )]
    pub log_level: String,
}

/// The modes.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch the secrets once, write every output, exit (init container).
    Init(InitArgs),
    /// Write the secrets, then keep them fresh and tell the app (sidecar).
    Sidecar(SidecarArgs),
    /// Fetch the secrets and exec COMMAND with them as environment variables (entrypoint wrapper).
    Exec(ExecArgs),
    /// Validate the configuration, log in, list the key NAMES (never values), exit.
    Check(CheckArgs),
    /// Copy this binary to PATH (mode 0755), e.g. into a shared emptyDir for an app image.
    Install(InstallArgs),
}

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where the secrets come from and how to authenticate.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Infisical address, with or without a trailing `/api`.
    #[arg(long, env = "INFISICAL_API_URL", default_value = DEFAULT_API_URL, help_heading = "Infisical")]
    pub api_url: String,

    /// PEM bundle trusted in addition to the built-in roots (self-hosted Infisical with a private CA).
    #[arg(
        long,
        env = "INFISICAL_CA_CERT",
        value_name = "FILE",
        help_heading = "Infisical"
    )]
    pub ca_cert: Option<PathBuf>,

    /// Authentication method; inferred from the credentials given when omitted.
    #[arg(
        long,
        env = "INFISICAL_AUTH_METHOD",
        value_enum,
        help_heading = "Authentication"
    )]
    pub auth_method: Option<AuthMethod>,

    /// Universal auth client id.
    #[arg(
        long,
        env = "INFISICAL_UNIVERSAL_AUTH_CLIENT_ID",
        value_name = "ID",
        help_heading = "Authentication"
    )]
    pub client_id: Option<String>,

    /// File holding the universal auth client id.
    #[arg(
        long,
        env = "INFISICAL_UNIVERSAL_AUTH_CLIENT_ID_FILE",
        value_name = "FILE",
        help_heading = "Authentication"
    )]
    pub client_id_file: Option<PathBuf>,

    /// File holding the universal auth client secret (or set INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET).
    #[arg(
        long,
        env = "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET_FILE",
        value_name = "FILE",
        help_heading = "Authentication"
    )]
    pub client_secret_file: Option<PathBuf>,

    /// Machine identity id, for kubernetes auth.
    #[arg(
        long,
        env = "INFISICAL_MACHINE_IDENTITY_ID",
        value_name = "ID",
        help_heading = "Authentication"
    )]
    pub identity_id: Option<String>,

    /// Projected service-account token, re-read at every login (kubernetes auth).
    #[arg(long, env = "INFISICAL_KUBERNETES_SERVICE_ACCOUNT_TOKEN_PATH", value_name = "FILE", default_value = DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH, help_heading = "Authentication")]
    pub service_account_token_file: PathBuf,

    /// File holding a machine-identity access token (token auth; or set INFISICAL_TOKEN).
    #[arg(
        long,
        env = "INFISICAL_TOKEN_FILE",
        value_name = "FILE",
        help_heading = "Authentication"
    )]
    pub token_file: Option<PathBuf>,

    /// Project id (exactly one of --project-id and --project-slug).
    #[arg(
        long,
        env = "INFISICAL_PROJECT_ID",
        value_name = "ID",
        help_heading = "Secrets"
    )]
    pub project_id: Option<String>,

    /// Project slug (not the display name; see Project Settings in Infisical).
    #[arg(
        long,
        env = "INFISICAL_PROJECT_SLUG",
        value_name = "SLUG",
        help_heading = "Secrets"
    )]
    pub project_slug: Option<String>,

    /// Environment slug, e.g. `dev`, `staging`, `prod`.
    #[arg(
        long = "env",
        env = "INFISICAL_ENVIRONMENT",
        value_name = "SLUG",
        help_heading = "Secrets"
    )]
    pub environment: Option<String>,

    /// Folder path of the secrets.
    #[arg(
        long,
        env = "INFISICAL_SECRET_PATH",
        default_value = "/",
        help_heading = "Secrets"
    )]
    pub path: String,

    /// Include secrets of sub-folders.
    #[arg(long, env = "INFISICAL_RECURSIVE", help_heading = "Secrets")]
    pub recursive: bool,

    /// Leave out secrets imported into the folder.
    #[arg(long, help_heading = "Secrets")]
    pub no_imports: bool,

    /// Keep `${...}` references literal instead of having the server expand them.
    #[arg(long, help_heading = "Secrets")]
    pub no_expand_references: bool,

    /// Only secrets with these tag slugs (repeatable).
    #[arg(
        long = "tag",
        env = "INFISICAL_TAGS",
        value_name = "SLUG",
        value_delimiter = ',',
        help_heading = "Secrets"
    )]
    pub tags: Vec<String>,

    /// An empty result is not an error.
    #[arg(long, help_heading = "Secrets")]
    pub allow_empty: bool,

    /// Only these keys, optionally renamed (repeatable); a listed key that does not exist is an error.
    #[arg(
        long = "key",
        env = "INFISICAL_KEYS",
        value_name = "REMOTE[=LOCAL]",
        value_delimiter = ',',
        help_heading = "Secrets"
    )]
    pub keys: Vec<String>,

    /// Timeout of one HTTP request.
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "DUR", help_heading = "Infisical")]
    pub request_timeout: Duration,

    /// How long transient failures (connect errors, 5xx, 429) are retried before giving up.
    #[arg(long, value_parser = parse_duration, default_value = "2m", value_name = "DUR", help_heading = "Infisical")]
    pub retry_deadline: Duration,
}

/// Authentication methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMethod {
    /// Client id + client secret.
    UniversalAuth,
    /// The pod's service-account token, checked by Infisical with a TokenReview.
    Kubernetes,
    /// A machine-identity access token used directly.
    Token,
}

/// Where and how the secrets are written.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Directory to hold one file per secret, swapped atomically like a Kubernetes Secret volume.
    #[arg(
        long,
        env = "INFISICAL_OUT_DIR",
        value_name = "DIR",
        help_heading = "Output"
    )]
    pub out_dir: Option<PathBuf>,

    /// File to hold all secrets in one --format.
    #[arg(
        long,
        env = "INFISICAL_OUT_FILE",
        value_name = "FILE",
        help_heading = "Output"
    )]
    pub out_file: Option<PathBuf>,

    /// Format of --out-file: dotenv, shell, json, yaml.
    #[arg(
        long,
        env = "INFISICAL_OUT_FORMAT",
        default_value = "dotenv",
        value_name = "FORMAT",
        help_heading = "Output"
    )]
    pub format: String,

    /// Mode of the files written, octal.
    #[arg(
        long,
        env = "INFISICAL_FILE_MODE",
        default_value = "0440",
        value_name = "MODE",
        help_heading = "Output"
    )]
    pub file_mode: String,

    /// Owner of what is written: UID or UID:GID.
    #[arg(
        long,
        env = "INFISICAL_OWNER",
        value_name = "UID[:GID]",
        help_heading = "Output"
    )]
    pub owner: Option<String>,

    /// Refuse to write outside tmpfs/ramfs.
    #[arg(long, help_heading = "Output")]
    pub require_tmpfs: bool,

    /// What to do with unusable keys.
    #[command(flatten)]
    pub keys: InvalidKeysArgs,
}

/// What to do with keys that cannot be file or env names.
#[derive(Debug, Args)]
pub struct InvalidKeysArgs {
    /// A key that cannot be a file name or env name: fail (exit 65) or skip it with a warning.
    #[arg(
        long,
        default_value = "fail",
        value_name = "fail|skip",
        help_heading = "Output"
    )]
    pub invalid_keys: String,
}

/// `init` arguments.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where the secrets come from.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Where the secrets go.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How often to refresh.
#[derive(Debug, Args)]
pub struct RefreshArgs {
    /// Time between refreshes (down to 100ms).
    #[arg(long, env = "INFISICAL_REFRESH_INTERVAL", value_parser = parse_duration, default_value = "5m", value_name = "DUR", help_heading = "Refresh")]
    pub interval: Duration,

    /// Random spread added to each interval, as a fraction of it, so a fleet does not poll in step.
    #[arg(
        long,
        default_value_t = 0.1,
        value_name = "FRACTION",
        help_heading = "Refresh"
    )]
    pub jitter: f64,
}

/// `sidecar` arguments.
#[derive(Debug, Args)]
pub struct SidecarArgs {
    /// Where the secrets come from.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Where the secrets go.
    #[command(flatten)]
    pub output: OutputArgs,
    /// How often to refresh.
    #[command(flatten)]
    pub refresh: RefreshArgs,

    /// Signal sent to the app after a change, e.g. HUP or SIGHUP (needs --on-change-pid-file).
    #[arg(long, value_name = "SIG", help_heading = "On change")]
    pub on_change_signal: Option<String>,

    /// File holding the app's pid (pods with shareProcessNamespace).
    #[arg(long, value_name = "FILE", help_heading = "On change")]
    pub on_change_pid_file: Option<PathBuf>,

    /// Command run after a change, split on spaces and run directly (no shell).
    #[arg(long, value_name = "CMD ARGS", help_heading = "On change")]
    pub on_change_exec: Option<String>,

    /// Time limit of --on-change-exec.
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "DUR", help_heading = "On change")]
    pub on_change_timeout: Duration,

    /// URL that receives an HTTP POST after a change (e.g. a reload endpoint).
    #[arg(long, value_name = "URL", help_heading = "On change")]
    pub on_change_url: Option<String>,

    /// Address for /healthz, /readyz and /metrics, e.g. 127.0.0.1:9464 (off when unset).
    #[arg(
        long,
        env = "INFISICAL_LISTEN",
        value_name = "ADDR",
        help_heading = "Health"
    )]
    pub listen: Option<String>,

    /// /readyz fails once the last good data is older than this (default: three intervals).
    #[arg(long, value_parser = parse_duration, value_name = "DUR", help_heading = "Health")]
    pub max_staleness: Option<Duration>,

    /// Renew token-auth tokens too (off: servers refuse and delete tokens whose TTL equals their max TTL).
    #[arg(long, help_heading = "Refresh")]
    pub renew_token: bool,
}

/// `exec` arguments.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Where the secrets come from.
    #[command(flatten)]
    pub source: SourceArgs,
    /// What to do with unusable keys.
    #[command(flatten)]
    pub keys: InvalidKeysArgs,

    /// Inherited variables win over secrets of the same name.
    #[arg(long, help_heading = "Environment")]
    pub preserve_env: bool,

    /// Pass this INFISICAL_* variable on to the command (repeatable).
    #[arg(long, value_name = "NAME", help_heading = "Environment")]
    pub keep_env: Vec<String>,

    /// Supervise COMMAND and restart it when the secrets change.
    #[arg(long, help_heading = "Watch")]
    pub watch: bool,

    /// How often to refresh.
    #[command(flatten)]
    pub refresh: RefreshArgs,

    /// Signal that stops the command before a restart.
    #[arg(
        long,
        default_value = "TERM",
        value_name = "SIG",
        help_heading = "Watch"
    )]
    pub restart_signal: String,

    /// How long the command may take to stop before it is killed.
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "DUR", help_heading = "Watch")]
    pub grace: Duration,

    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `check` arguments.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Where the secrets come from.
    #[command(flatten)]
    pub source: SourceArgs,
}

/// `install` arguments.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Destination path of the copy.
    #[arg(long, value_name = "PATH")]
    pub to: PathBuf,
}

/// Parses humantime durations (`30s`, `5m`, `100ms`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 500ms, 30s, 5m, 1h)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn exec_takes_the_command_after_double_dash() {
        let cli = Cli::try_parse_from([
            "infisical-materializer",
            "exec",
            "--env",
            "dev",
            "--",
            "/app/server",
            "--port",
            "8080",
        ])
        .expect("parses");
        let Command::Exec(args) = cli.command else {
            panic!("not exec")
        };
        assert_eq!(args.command, ["/app/server", "--port", "8080"]);
    }

    #[test]
    fn durations_are_humantime() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("5 parsecs").is_err());
    }
}
