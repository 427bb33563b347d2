//! The command line: every flag, its environment variable, and its default.
//!
//! This is the raw layer; [`crate::config`] turns it into validated settings. Values that are
//! secrets (the client secret, an access token) are never flags: they would show in `ps`.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::secrets::InvalidKeys;
use crate::sink::Format;

/// Default Infisical address (Infisical Cloud, US region).
pub const DEFAULT_API_URL: &str = "https://app.infisical.com";
/// Where kubelet mounts the pod's service-account token.
pub const DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Environment variables that hold the client secret or access token by value (no flag exists).
pub const ENV_CLIENT_SECRET: &str = "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET";
/// See [`ENV_CLIENT_SECRET`].
pub const ENV_TOKEN: &str = "INFISICAL_TOKEN";
/// A JWT given by value, for `oidc` and `jwt` auth (see [`ENV_CLIENT_SECRET`]).
pub const ENV_JWT: &str = "INFISICAL_JWT";
/// Where the Azure instance metadata token endpoint is, for tests and private clouds.
pub const ENV_AZURE_IMDS_ENDPOINT: &str = "INFISICAL_AZURE_IMDS_ENDPOINT";

/// How long the one-shot modes retry transient failures by default (`--retry-deadline`).
pub const DEFAULT_RETRY_DEADLINE: Duration = Duration::from_secs(120);

/// Every environment variable this tool reads of its own: those behind a flag (taken from the
/// flags' definitions, so a new flag cannot be forgotten) and the few read by value. The cloud
/// SDK variables (`AWS_*`, `AZURE_*`, `GCE_METADATA_HOST`) are not ours: the app may need them. `exec` removes them
/// from the child's environment (unless kept with `--keep-env`), and so does `--on-change-exec`,
/// so the app never sees the wrapper's credentials or configuration.
pub static CONSUMED_ENV_VARS: LazyLock<EnvVarNames> = LazyLock::new(|| {
    let cli = Cli::command();
    let mut names: Vec<String> = [
        ENV_CLIENT_SECRET,
        ENV_TOKEN,
        ENV_JWT,
        ENV_AZURE_IMDS_ENDPOINT,
    ]
    .map(String::from)
    .to_vec();
    let mut commands = vec![&cli];
    while let Some(command) = commands.pop() {
        names.extend(
            command
                .get_arguments()
                .filter_map(Arg::get_env)
                .map(|name| name.to_string_lossy().into_owned()),
        );
        commands.extend(command.get_subcommands());
    }
    names.sort();
    names.dedup();
    EnvVarNames(names)
});

/// A sorted list of environment variable names (see [`CONSUMED_ENV_VARS`]).
#[derive(Debug)]
pub struct EnvVarNames(Vec<String>);

impl EnvVarNames {
    /// Whether `name` is in the list.
    pub fn contains(&self, name: &str) -> bool {
        self.0
            .binary_search_by(|probe| probe.as_str().cmp(name))
            .is_ok()
    }

    /// The names, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// Parses a boolean flag's environment variable (`INFISICAL_RECURSIVE=1`): `true/false`,
/// `1/0`, `yes/no`, `on/off`, any case. A bad value is refused naming the variable, which
/// clap's own parser would not do.
#[derive(Clone, Copy, Debug)]
pub struct EnvBool;

impl TypedValueParser for EnvBool {
    type Value = bool;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<bool, clap::Error> {
        let text = value.to_string_lossy();
        parse_bool(&text).ok_or_else(|| {
            // A flag takes no value, so the text always comes from the variable.
            let name = arg
                .and_then(Arg::get_env)
                .map_or_else(|| "the variable".into(), OsStr::to_string_lossy);
            clap::Error::raw(
                ErrorKind::ValueValidation,
                format!("{name}={text:?}: expected true or false (also 1/0, yes/no, on/off)\n"),
            )
            .with_cmd(cmd)
        })
    }
}

/// `true/false`, `1/0`, `yes/no`, `on/off`, any case, surrounding spaces ignored.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// infisical-materializer: Infisical secrets for a Kubernetes pod, as files or environment.
#[derive(Debug, Parser)]
// No arguments is an error that shows the usage (clap's default would print the whole help).
#[command(
    name = "infisical-materializer",
    version,
    about,
    long_about = None,
    arg_required_else_help = false
)]
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

    /// YAML configuration file: every option by its long name, plus sources, outputs and
    /// templates. Flags and environment variables override it.
    #[arg(
        long,
        global = true,
        env = "INFISICAL_MATERIALIZER_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
}

/// The options given explicitly, on the command line or through their environment variable (as
/// opposed to their defaults): they win over the configuration file.
#[derive(Clone, Debug, Default)]
pub struct Explicit {
    /// Every explicit option.
    given: HashSet<String>,
    /// Those given through their environment variable rather than on the command line.
    from_env: HashSet<String>,
}

impl Explicit {
    /// The explicit options of the parsed command line (its subcommand's and the global ones),
    /// by clap argument id (the field name, e.g. `api_url`).
    pub fn from_matches(matches: &ArgMatches) -> Self {
        let mut explicit = Self::default();
        let mut level = Some(matches);
        while let Some(current) = level {
            for id in current.ids() {
                let id = id.as_str();
                match current.value_source(id) {
                    Some(ValueSource::CommandLine) => {
                        explicit.given.insert(id.to_owned());
                    }
                    Some(ValueSource::EnvVariable) => {
                        explicit.given.insert(id.to_owned());
                        explicit.from_env.insert(id.to_owned());
                    }
                    _ => {}
                }
            }
            level = current.subcommand().map(|(_, sub)| sub);
        }
        explicit
    }

    /// Whether the option with this id was given explicitly.
    pub fn contains(&self, id: &str) -> bool {
        self.given.contains(id)
    }

    /// Whether the option with this id was given through its environment variable.
    pub fn from_env(&self, id: &str) -> bool {
        self.from_env.contains(id)
    }
}

/// The modes.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch the secrets once, write every output, exit (init container).
    #[command(after_help = INIT_HELP)]
    Init(InitArgs),
    /// Write the secrets, then keep them fresh and tell the app (sidecar).
    #[command(after_help = SIDECAR_HELP)]
    Sidecar(SidecarArgs),
    /// Fetch the secrets and exec COMMAND with them as environment variables (entrypoint wrapper).
    #[command(
        after_help = EXEC_HELP,
        override_usage = "infisical-materializer exec [OPTIONS] -- COMMAND [ARGS]..."
    )]
    Exec(ExecArgs),
    /// Validate the configuration, log in, list the key NAMES (never values), exit.
    #[command(after_help = CHECK_HELP)]
    Check(CheckArgs),
    /// Copy this binary to PATH (mode 0755), e.g. into a shared emptyDir for an app image.
    #[command(after_help = INSTALL_HELP)]
    Install(InstallArgs),
    /// Convert an External Secrets Operator or Infisical agent setup into a configuration file
    /// and a pod fragment.
    #[command(after_help = MIGRATE_HELP, subcommand)]
    Migrate(MigrateFrom),
}

/// What every mode that fetches needs, for the end of its `--help`.
macro_rules! required_source {
    () => {
        "Required: --env; --project-id or --project-slug; the credentials of one auth method \
         (universal-auth, kubernetes or token)"
    };
}

/// The exit codes every mode that fetches shares (README, "Exit codes").
macro_rules! exit_code {
    (usage) => {
        "  64   bad usage or configuration (a flag, a variable, a credential file)\n"
    };
    (not_found) => {
        "  66   not found: project, environment, folder, a --key, or an empty result\n"
    };
    (unavailable) => {
        "  69   Infisical unreachable or failing after --retry-deadline\n"
    };
    (refused) => {
        "  77   authentication or authorization refused\n"
    };
}

const CHECK_HELP: &str = concat!(
    required_source!(),
    ".\n\nExit codes:\n",
    "  0    the configuration works; the key names are on stdout\n",
    exit_code!(usage),
    "  65   the answer is larger than --max-response-size\n",
    exit_code!(not_found),
    exit_code!(unavailable),
    exit_code!(refused),
    "\nExample:\n",
    "  infisical-materializer check --identity-id 5f0c... --project-slug my-app-a1b2 --env prod",
);

const INIT_HELP: &str = concat!(
    required_source!(),
    "; --out-dir or --out-file.\n\nExit codes:\n",
    "  0    every output written\n",
    exit_code!(usage),
    "  65   a key cannot be a file or env name, a value cannot be written in --format,\n",
    "       or the answer is larger than --max-response-size\n",
    exit_code!(not_found),
    exit_code!(unavailable),
    "  73   an output cannot be written (also --require-tmpfs on a disk)\n",
    exit_code!(refused),
    "\nExample:\n",
    "  infisical-materializer init --client-id-file /var/run/infisical/client-id \\\n",
    "    --client-secret-file /var/run/infisical/client-secret \\\n",
    "    --project-slug my-app-a1b2 --env prod --out-dir /run/secrets/app",
);

const SIDECAR_HELP: &str = concat!(
    required_source!(),
    "; --out-dir or --out-file.\n\nExit codes:\n",
    "  0    stopped by SIGTERM or SIGINT (the files stay in place)\n",
    "  64   bad usage or configuration, or --listen cannot be bound\n",
    "  Failures to fetch or write do not stop the sidecar: it logs them, keeps the last good\n",
    "  files, retries, and /readyz reports them.\n",
    "\nExample:\n",
    "  infisical-materializer sidecar --out-dir /run/secrets/app --interval 5m --listen 9464 \\\n",
    "    --on-change-signal HUP --on-change-pid-file /run/app/app.pid \\\n",
    "    --identity-id 5f0c... --project-slug my-app-a1b2 --env prod",
);

const EXEC_HELP: &str = concat!(
    required_source!(),
    "; the command after --.\n\nExit codes:\n",
    exit_code!(usage),
    "  65   a key cannot be an environment variable name, a value holds a NUL byte,\n",
    "       or the answer is larger than --max-response-size\n",
    exit_code!(not_found),
    exit_code!(unavailable),
    exit_code!(refused),
    "  126  COMMAND is not executable\n",
    "  127  COMMAND was not found\n",
    "  else COMMAND's own status (with --watch: 128+N if it died of signal N)\n",
    "\nExample:\n",
    "  infisical-materializer exec --project-slug my-app-a1b2 --env prod -- /app/server --port 8080",
);

const INSTALL_HELP: &str = "Required: --to.

Exit codes:
  0    copied
  64   --to names no file
  73   the copy cannot be written

Example:
  infisical-materializer install --to /shared/infisical-materializer";

const MIGRATE_HELP: &str = "Required: eso FILE... or infisical-agent FILE.

Exit codes:
  0    converted (with --best-effort: what could be; the rest is listed on stderr)
  64   a file cannot be read or is not YAML
  65   something cannot be converted faithfully (each field is named, with the reason)
  66, 69, 77   --check: as for check
  73   --out cannot be written

Example:
  infisical-materializer migrate eso --out ./migrated externalsecret.yaml clustersecretstore.yaml";

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where the secrets come from and how to authenticate.
#[derive(Clone, Debug, Args)]
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

    /// Machine identity id (a UUID), for every method but universal-auth and token.
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

    /// A JWT for oidc or jwt auth, re-read at every login [default: the pod's service-account token] (or set INFISICAL_JWT).
    #[arg(
        long,
        env = "INFISICAL_JWT_FILE",
        value_name = "FILE",
        help_heading = "Authentication"
    )]
    pub jwt_file: Option<PathBuf>,

    /// Service-account key file (JSON) for gcp-iam auth; the token is signed locally.
    #[arg(
        long,
        env = "INFISICAL_GCP_IAM_SERVICE_ACCOUNT_KEY_FILE_PATH",
        value_name = "FILE",
        help_heading = "Authentication"
    )]
    pub gcp_service_account_key_file: Option<PathBuf>,

    /// Resource (audience) of the Azure AD token, for azure auth.
    #[arg(long, env = "INFISICAL_AZURE_RESOURCE", value_name = "URL", default_value = crate::auth::cloud::azure::DEFAULT_RESOURCE, help_heading = "Authentication")]
    pub azure_resource: String,

    /// Client id of a user-assigned managed identity, for azure auth through the instance metadata.
    #[arg(
        long,
        env = "INFISICAL_AZURE_CLIENT_ID",
        value_name = "ID",
        help_heading = "Authentication"
    )]
    pub azure_client_id: Option<String>,

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

    /// Environment slug, e.g. `dev`, `staging`, `prod` (required).
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

    /// Include secrets of sub-folders (the variable takes true/false, 1/0, yes/no, on/off).
    #[arg(
        long,
        env = "INFISICAL_RECURSIVE",
        value_parser = EnvBool,
        help_heading = "Secrets"
    )]
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

    /// Only keys whose name matches this regular expression (with --key: those too).
    #[arg(
        long,
        env = "INFISICAL_KEY_MATCHING",
        value_name = "REGEX",
        help_heading = "Secrets"
    )]
    pub key_matching: Option<String>,

    /// Timeout of one HTTP request.
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "DUR", help_heading = "Infisical")]
    pub request_timeout: Duration,

    /// Largest answer accepted from Infisical (e.g. 512KiB, 16MiB); a larger one is refused unread.
    #[arg(long, env = "INFISICAL_MAX_RESPONSE_SIZE", value_parser = parse_size, default_value = "16MiB", value_name = "SIZE", help_heading = "Infisical")]
    pub max_response_size: u64,

    /// Lock the process's memory so secrets are never swapped out (needs CAP_IPC_LOCK or a memlock ulimit above the process's size).
    #[arg(
        long,
        env = "INFISICAL_MLOCK",
        value_parser = EnvBool,
        help_heading = "Process"
    )]
    pub mlock: bool,
}

/// How long a mode that fetches once keeps retrying (not the sidecar: it retries forever).
#[derive(Clone, Debug, Args)]
pub struct RetryArgs {
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
    /// A JWT (by default the pod's projected service-account token) checked against the issuer's discovery document.
    Oidc,
    /// A JWT checked against JWKS or static keys.
    Jwt,
    /// A signed STS GetCallerIdentity request, with the pod's AWS credentials.
    AwsIam,
    /// An ID token from the GCE / GKE metadata server.
    GcpIdToken,
    /// A JWT signed with a GCP service-account key file.
    GcpIam,
    /// An Azure AD token (AKS Workload Identity or a managed identity).
    Azure,
}

/// Templates given on the command line.
#[derive(Clone, Debug, Args)]
pub struct TemplateArgs {
    /// Render the template file SRC into DEST (repeatable), e.g. /etc/app/config.yaml.j2:/run/app/config.yaml.
    #[arg(long = "template", value_name = "SRC:DEST", help_heading = "Output")]
    pub templates: Vec<String>,
}

/// Where and how the secrets are written.
#[derive(Clone, Debug, Args)]
pub struct OutputArgs {
    /// A template to render from the secrets, and where (repeatable); see --config for more.
    #[command(flatten)]
    pub templates: TemplateArgs,

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

    /// Format of --out-file.
    #[arg(
        long,
        env = "INFISICAL_OUT_FORMAT",
        value_enum,
        default_value_t = Format::Dotenv,
        value_name = "FORMAT",
        help_heading = "Output"
    )]
    pub format: Format,

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
    #[command(flatten, next_help_heading = "Output")]
    pub keys: InvalidKeysArgs,
}

/// What to do with keys that cannot be file or env names.
#[derive(Clone, Debug, Args)]
pub struct InvalidKeysArgs {
    /// A key that cannot be a file name or env name: fail (exit 65) or skip it with a warning.
    #[arg(long, value_enum, default_value_t = InvalidKeys::Fail, value_name = "POLICY")]
    pub invalid_keys: InvalidKeys,
}

/// `init` arguments.
#[derive(Clone, Debug, Args)]
pub struct InitArgs {
    /// Where the secrets come from.
    #[command(flatten)]
    pub source: SourceArgs,
    /// How long to retry.
    #[command(flatten)]
    pub retry: RetryArgs,
    /// Where the secrets go.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How often to refresh.
#[derive(Clone, Debug, Args)]
pub struct RefreshArgs {
    /// Time between refreshes (down to 100ms).
    #[arg(long, env = "INFISICAL_REFRESH_INTERVAL", value_parser = parse_duration, default_value = "5m", value_name = "DUR")]
    pub interval: Duration,

    /// Random spread added to each interval, as a fraction of it, so a fleet does not poll in step.
    #[arg(long, default_value_t = 0.1, value_name = "FRACTION")]
    pub jitter: f64,
}

/// `sidecar` arguments.
#[derive(Clone, Debug, Args)]
pub struct SidecarArgs {
    /// Where the secrets come from.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Where the secrets go.
    #[command(flatten)]
    pub output: OutputArgs,
    /// How often to refresh.
    #[command(flatten, next_help_heading = "Refresh")]
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

    /// Address for /healthz, /readyz and /metrics: PORT, :PORT (all interfaces), IP:PORT or HOST:PORT (off when unset).
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
#[derive(Clone, Debug, Args)]
pub struct ExecArgs {
    /// Where the secrets come from.
    #[command(flatten)]
    pub source: SourceArgs,
    /// How long to retry.
    #[command(flatten)]
    pub retry: RetryArgs,
    /// What to do with unusable keys.
    #[command(flatten, next_help_heading = "Environment")]
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
    #[command(flatten, next_help_heading = "Watch")]
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

    /// Templates rendered before the command starts (and before each restart).
    #[command(flatten)]
    pub templates: TemplateArgs,

    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND", help_heading = None)]
    pub command: Vec<String>,
}

/// `check` arguments.
#[derive(Clone, Debug, Args)]
pub struct CheckArgs {
    /// Where the secrets come from.
    #[command(flatten)]
    pub source: SourceArgs,
    /// How long to retry.
    #[command(flatten)]
    pub retry: RetryArgs,
}

/// `install` arguments.
#[derive(Clone, Debug, Args)]
pub struct InstallArgs {
    /// Destination path of the copy.
    #[arg(long, value_name = "PATH")]
    pub to: PathBuf,
}

/// Parses a size in bytes: a number, optionally followed by `KiB`, `MiB` or `GiB` (also `K`,
/// `M`, `G`, `KB`, `MB`, `GB`, all powers of 1024). Zero is refused.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let expected = || format!("{text:?} is not a size (examples: 524288, 512KiB, 16MiB, 1GiB)");
    let number: u64 = number.parse().map_err(|_| expected())?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(expected()),
    };
    match number.checked_mul(factor) {
        Some(0) => Err("must be greater than zero".into()),
        Some(bytes) => Ok(bytes),
        None => Err(expected()),
    }
}

/// What `migrate` converts.
#[derive(Clone, Debug, Subcommand)]
pub enum MigrateFrom {
    /// ExternalSecrets and their (Cluster)SecretStores of the Infisical provider.
    Eso(MigrateArgs),
    /// An Infisical agent configuration file.
    InfisicalAgent(MigrateArgs),
}

/// `migrate eso` and `migrate infisical-agent` arguments.
#[derive(Clone, Debug, Args)]
pub struct MigrateArgs {
    /// YAML files (`-` for stdin); for eso, the ExternalSecrets and the stores they use.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Write config.yaml, configmap.yaml and pod-patch.yaml here (one folder per ExternalSecret
    /// when there are several) instead of one YAML stream on stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Convert what can be converted and list what was left out, instead of refusing (exit 65).
    #[arg(long)]
    pub best_effort: bool,

    /// Also log in and list the key names, with the credentials given by the flags below.
    #[arg(long)]
    pub check: bool,

    /// --check: file holding the universal auth client id.
    #[arg(long, value_name = "FILE", requires = "check")]
    pub client_id_file: Option<PathBuf>,

    /// --check: file holding the universal auth client secret.
    #[arg(long, value_name = "FILE", requires = "check")]
    pub client_secret_file: Option<PathBuf>,

    /// --check: file holding a machine-identity access token (instead of a login).
    #[arg(long, value_name = "FILE", requires = "check")]
    pub token_file: Option<PathBuf>,

    /// --check: PEM bundle of a private CA (the one the pod mounts).
    #[arg(long, value_name = "FILE", requires = "check")]
    pub ca_cert: Option<PathBuf>,
}

/// Parses humantime durations (`30s`, `5m`, `100ms`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 500ms, 30s, 5m, 1h)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ArgAction;

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
    fn every_variable_behind_a_flag_or_read_by_value_is_consumed() {
        let cli = Cli::command();
        let mut declared = Vec::new();
        for command in std::iter::once(&cli).chain(cli.get_subcommands()) {
            for arg in command.get_arguments() {
                if let Some(name) = arg.get_env() {
                    declared.push(name.to_str().expect("ASCII names").to_owned());
                }
            }
        }
        // Global, shared, output-only and sidecar-only flags are all found.
        for name in [
            "INFISICAL_LOG_LEVEL",
            "INFISICAL_PROJECT_ID",
            "INFISICAL_OUT_DIR",
            "INFISICAL_LISTEN",
        ] {
            assert!(declared.iter().any(|d| d == name), "{name}");
        }
        for name in declared
            .iter()
            .map(String::as_str)
            .chain([ENV_CLIENT_SECRET, ENV_TOKEN])
        {
            assert!(CONSUMED_ENV_VARS.contains(name), "{name} is not consumed");
        }
        assert!(!CONSUMED_ENV_VARS.contains("INFISICAL_CLIENT_SECRET"));
        assert!(!CONSUMED_ENV_VARS.contains("PATH"));
        assert!(CONSUMED_ENV_VARS
            .iter()
            .all(|name| name.starts_with("INFISICAL_")));
    }

    #[test]
    fn boolean_variables_take_the_usual_spellings_and_name_themselves_when_wrong() {
        for (text, expected) in [
            ("true", true),
            ("FALSE", false),
            ("1", true),
            ("0", false),
            ("Yes", true),
            ("no", false),
            (" on ", true),
            ("OFF", false),
        ] {
            assert_eq!(parse_bool(text), Some(expected), "{text:?}");
        }
        assert_eq!(parse_bool("maybe"), None);
        assert_eq!(parse_bool(""), None);

        let command = clap::Command::new("t");
        let arg = Arg::new("recursive").env("INFISICAL_RECURSIVE");
        let parse = |text: &str| EnvBool.parse_ref(&command, Some(&arg), OsStr::new(text));
        assert!(parse("Off").is_ok_and(|value| !value));
        assert_eq!(
            parse("maybe").unwrap_err().to_string(),
            "error: INFISICAL_RECURSIVE=\"maybe\": expected true or false (also 1/0, yes/no, on/off)\n"
        );

        // Every boolean flag read from a variable uses it: clap's own `bool` parser would list
        // its two possible values (and refuse `1`).
        let cli = Cli::command();
        let mut checked = 0;
        for command in cli.get_subcommands() {
            for arg in command.get_arguments() {
                if arg.get_env().is_some() && matches!(arg.get_action(), ArgAction::SetTrue) {
                    let name = arg.get_id();
                    assert!(
                        arg.get_value_parser().possible_values().is_none(),
                        "--{name} must use cli::EnvBool"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked >= 4, "--recursive in init, sidecar, exec and check");
    }

    #[test]
    fn no_arguments_is_an_error_that_asks_for_a_subcommand() {
        let error = Cli::try_parse_from(["infisical-materializer"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::MissingSubcommand);
        assert!(error.to_string().contains("Usage:"), "{error}");
    }

    #[test]
    fn retry_deadline_is_for_the_modes_that_give_up() {
        let parse = |mode: &str| {
            Cli::try_parse_from(["infisical-materializer", mode, "--retry-deadline", "5s"])
        };
        for mode in ["init", "exec", "check"] {
            // exec still wants its command; the flag itself is known.
            let error = parse(mode).err().map(|e| e.kind());
            assert_ne!(
                error,
                Some(clap::error::ErrorKind::UnknownArgument),
                "{mode}"
            );
        }
        let error = parse("sidecar").unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::UnknownArgument);

        let Command::Check(args) = Cli::try_parse_from(["infisical-materializer", "check"])
            .expect("parses")
            .command
        else {
            panic!("not check")
        };
        assert_eq!(args.retry.retry_deadline, DEFAULT_RETRY_DEADLINE);
    }

    #[test]
    fn every_mode_ends_its_help_with_exit_codes_and_an_example() {
        for command in Cli::command()
            .get_subcommands()
            .filter(|c| c.get_name() != "help")
        {
            let help = command.get_after_help().expect("after_help").to_string();
            let name = command.get_name();
            assert!(help.starts_with("Required: "), "{name}: {help}");
            assert!(help.contains("\nExit codes:\n"), "{name}: {help}");
            assert!(
                help.contains("\nExample:\n  infisical-materializer "),
                "{name}: {help}"
            );
        }
    }

    #[test]
    fn sizes_are_bytes_or_binary_units() {
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("1000"), Ok(1000));
        for bad in [
            "",
            "MiB",
            "16 parsecs",
            "-1",
            "1.5MiB",
            "99999999999999999999GiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_size("0"), Err("must be greater than zero".into()));
    }

    #[test]
    fn durations_are_humantime() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("5 parsecs").is_err());
    }
}
