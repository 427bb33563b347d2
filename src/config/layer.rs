//! The configuration file, stage two: its values laid under the flags.
//!
//! A top-level key of the file is the long name of a flag; it fills that flag's value unless the
//! flag was given explicitly (on the command line or through its environment variable). The
//! merged arguments then go through the same validation as flags alone. `sources`, `outputs`
//! and `templates`, which no flag can say, are turned into typed configuration here, with
//! errors that name the file and the key path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;

use super::file::{self, FileError, OutputTarget, RawConfig, RawSource, RawTemplate, TemplateText};
use super::{
    normalize_api_url, normalize_secret_path, parse_file_mode, parse_key_mappings,
    parse_key_pattern, parse_signal, project_slug_problem, ConfigError, SourceConfig,
};
use crate::api::{ListQuery, ProjectRef};
use crate::cli::{self, Explicit, OutputArgs, RefreshArgs, RetryArgs, SourceArgs};
use crate::secrets::{InvalidKeys, KeySelection, OnConflict};
use crate::sink::template::Template;
use crate::sink::{Decode, Format, Output, Owner, Target};

/// A configuration file: its path, what stage one read from it, and the parts that are typed
/// and compiled once, when it is read.
#[derive(Clone, Debug)]
pub struct ConfigFile {
    /// The file as given.
    pub path: PathBuf,
    /// Its content, stage one.
    pub raw: RawConfig,
    /// `sources`, typed.
    sources: Vec<SourceConfig>,
    /// `templates`, read and compiled (in order).
    compiled: Vec<Arc<Template>>,
}

/// The flags that describe the one source of the command line, by clap id and file key; a file
/// with `sources` takes none of them.
const SOURCE_OPTIONS: [(&str, &str); 10] = [
    ("project_id", "project-id"),
    ("project_slug", "project-slug"),
    ("environment", "env"),
    ("path", "path"),
    ("recursive", "recursive"),
    ("no_imports", "no-imports"),
    ("no_expand_references", "no-expand-references"),
    ("tags", "tag"),
    ("keys", "key"),
    ("key_matching", "key-matching"),
];

impl ConfigFile {
    /// Reads and parses the file (stage one), then checks every value it holds, including those
    /// the current mode does not use: the file that `check` accepts is one every mode accepts.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut file = Self {
            path: path.to_owned(),
            raw: RawConfig::load(path)?,
            sources: Vec::new(),
            compiled: Vec::new(),
        };
        file.sources = file
            .raw
            .sources
            .iter()
            .enumerate()
            .map(|(index, raw)| file.source(index, raw))
            .collect::<Result<_, _>>()?;
        file.compiled = file
            .raw
            .templates
            .iter()
            .enumerate()
            .map(|(index, raw)| file.template(index, raw).map(Arc::new))
            .collect::<Result<_, _>>()?;
        file.validate()?;
        Ok(file)
    }

    /// Checks the values that can be checked without the flags, naming the file and key
    /// (sources and templates were typed and compiled by [`ConfigFile::load`]).
    fn validate(&self) -> Result<(), ConfigError> {
        let raw = &self.raw;
        let durations = [
            ("request-timeout", &raw.request_timeout),
            ("retry-deadline", &raw.retry_deadline),
            ("interval", &raw.interval),
            ("on-change-timeout", &raw.on_change_timeout),
            ("max-staleness", &raw.max_staleness),
            ("grace", &raw.grace),
        ];
        for (key, text) in durations {
            self.duration(key, text)?;
        }
        self.size("max-response-size", &raw.max_response_size)?;
        self.value_enum::<cli::AuthMethod>("auth-method", &raw.auth_method)?;
        self.log_format()?;
        self.value_enum::<Format>("format", &raw.format)?;
        self.value_enum::<InvalidKeys>("invalid-keys", &raw.invalid_keys)?;
        let mode = self.mode("file-mode", &raw.file_mode, 0o440)?;
        let owner = self.owner("owner", &raw.owner, None)?;
        if raw
            .jitter
            .is_some_and(|jitter| !(0.0..=1.0).contains(&jitter))
        {
            return Err(self.error("jitter", "must be between 0 and 1 (a fraction of interval)"));
        }
        for (key, text) in [
            ("on-change-signal", &raw.on_change_signal),
            ("restart-signal", &raw.restart_signal),
        ] {
            if let Some(text) = text {
                parse_signal(key, text).map_err(|error| self.error(key, reason_of(error)))?;
            }
        }
        if let Some(url) = &raw.api_url {
            normalize_api_url(url).map_err(|error| self.error("api-url", reason_of(error)))?;
        }
        if let Some(reason) = raw.project_slug.as_deref().and_then(project_slug_problem) {
            return Err(self.error("project-slug", reason));
        }
        if let Some(path) = &raw.path {
            normalize_secret_path(path)
                .map_err(|_| self.error("path", "must start with '/', e.g. / or /app/db"))?;
        }
        if let Some(keys) = &raw.keys {
            parse_key_mappings(&key_specs(keys))
                .map_err(|error| self.error("key", reason_of(error)))?;
        }
        if let Some(pattern) = &raw.key_matching {
            parse_key_pattern("key-matching", pattern)
                .map_err(|error| self.error("key-matching", reason_of(error)))?;
        }
        self.outputs(mode, owner)?;
        self.templates(mode, owner)?;
        Ok(())
    }

    /// Names the file and key in an error that the flags' validation made about a value that
    /// came from the file (an option not given explicitly): the user never typed `--jitter`.
    pub fn attribute(&self, error: ConfigError, explicit: &Explicit) -> ConfigError {
        let (option, reason) = match &error {
            ConfigError::Invalid { option, reason, .. } => (*option, reason.clone()),
            ConfigError::ApiUrl { reason, .. } => ("--api-url", (*reason).to_owned()),
            ConfigError::KeyMapping { spec, reason } => ("--key", format!("{spec:?}: {reason}")),
            ConfigError::CaCert { reason, .. } => ("--ca-cert", reason.clone()),
            ConfigError::SecretPath(_) => {
                ("--path", "must start with '/', e.g. / or /app/db".into())
            }
            _ => return error,
        };
        let Some(key) = option.strip_prefix("--").filter(|key| !key.contains('/')) else {
            return error;
        };
        let id = match key {
            "env" => "environment".to_owned(),
            "tag" => "tags".to_owned(),
            "key" => "keys".to_owned(),
            other => other.replace('-', "_"),
        };
        if explicit.contains(&id) {
            return error;
        }
        self.error(key, reason)
    }

    fn origin(&self) -> String {
        self.path.display().to_string()
    }

    /// An error about `key` of this file.
    fn error(&self, key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::File(FileError::Key {
            origin: self.origin(),
            key: key.into(),
            reason: reason.into(),
        })
    }

    /// Fills the server, credential and source flags that were not given explicitly.
    pub fn apply_source(
        &self,
        args: &mut SourceArgs,
        explicit: &Explicit,
    ) -> Result<(), ConfigError> {
        let raw = &self.raw;
        let set = Setter { explicit };
        set.value("api_url", &mut args.api_url, raw.api_url.clone());
        set.option("ca_cert", &mut args.ca_cert, raw.ca_cert.clone());
        set.option(
            "auth_method",
            &mut args.auth_method,
            self.value_enum("auth-method", &raw.auth_method)?,
        );
        set.option("client_id", &mut args.client_id, raw.client_id.clone());
        set.option(
            "client_id_file",
            &mut args.client_id_file,
            raw.client_id_file.clone(),
        );
        set.option(
            "client_secret_file",
            &mut args.client_secret_file,
            raw.client_secret_file.clone(),
        );
        set.option(
            "identity_id",
            &mut args.identity_id,
            raw.identity_id.clone(),
        );
        set.value(
            "service_account_token_file",
            &mut args.service_account_token_file,
            raw.service_account_token_file.clone(),
        );
        set.option("token_file", &mut args.token_file, raw.token_file.clone());
        set.option("jwt_file", &mut args.jwt_file, raw.jwt_file.clone());
        set.option(
            "gcp_service_account_key_file",
            &mut args.gcp_service_account_key_file,
            raw.gcp_service_account_key_file.clone(),
        );
        set.value(
            "azure_resource",
            &mut args.azure_resource,
            raw.azure_resource.clone(),
        );
        set.option(
            "azure_client_id",
            &mut args.azure_client_id,
            raw.azure_client_id.clone(),
        );
        set.value("allow_empty", &mut args.allow_empty, raw.allow_empty);
        set.value("mlock", &mut args.mlock, raw.mlock);
        set.value(
            "max_response_size",
            &mut args.max_response_size,
            self.size("max-response-size", &raw.max_response_size)?,
        );
        set.value(
            "request_timeout",
            &mut args.request_timeout,
            self.duration("request-timeout", &raw.request_timeout)?,
        );
        if !raw.sources.is_empty() {
            return self.refuse_single_source(explicit);
        }
        set.option("project_id", &mut args.project_id, raw.project_id.clone());
        set.option(
            "project_slug",
            &mut args.project_slug,
            raw.project_slug.clone(),
        );
        set.option(
            "environment",
            &mut args.environment,
            raw.environment.clone(),
        );
        set.value("path", &mut args.path, raw.path.clone());
        set.value("recursive", &mut args.recursive, raw.recursive);
        set.value("no_imports", &mut args.no_imports, raw.no_imports);
        set.value(
            "no_expand_references",
            &mut args.no_expand_references,
            raw.no_expand_references,
        );
        set.value("tags", &mut args.tags, raw.tags.clone());
        set.value("keys", &mut args.keys, raw.keys.as_ref().map(key_specs));
        set.option(
            "key_matching",
            &mut args.key_matching,
            raw.key_matching.clone(),
        );
        Ok(())
    }

    /// With `sources`, the single-source flags and keys would be ambiguous: which source would
    /// they change? They are refused, naming the first one given.
    fn refuse_single_source(&self, explicit: &Explicit) -> Result<(), ConfigError> {
        let raw = &self.raw;
        let in_file = [
            raw.project_id.is_some(),
            raw.project_slug.is_some(),
            raw.environment.is_some(),
            raw.path.is_some(),
            raw.recursive.is_some(),
            raw.no_imports.is_some(),
            raw.no_expand_references.is_some(),
            raw.tags.is_some(),
            raw.keys.is_some(),
            raw.key_matching.is_some(),
        ];
        for ((id, key), in_file) in SOURCE_OPTIONS.iter().zip(in_file) {
            if in_file {
                return Err(self.error(
                    *key,
                    "not with sources: set it in each entry of sources instead",
                ));
            }
            if explicit.contains(id) {
                return Err(self.error(
                    "sources",
                    format!(
                        "--{key} (or its environment variable) cannot be combined with sources: \
                         set it in each entry of sources instead"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Fills `--retry-deadline` unless given explicitly.
    pub fn apply_retry(
        &self,
        args: &mut RetryArgs,
        explicit: &Explicit,
    ) -> Result<(), ConfigError> {
        let deadline = self.duration("retry-deadline", &self.raw.retry_deadline)?;
        Setter { explicit }.value("retry_deadline", &mut args.retry_deadline, deadline);
        Ok(())
    }

    /// Fills `--interval` and `--jitter` unless given explicitly.
    pub fn apply_refresh(
        &self,
        args: &mut RefreshArgs,
        explicit: &Explicit,
    ) -> Result<(), ConfigError> {
        let set = Setter { explicit };
        set.value(
            "interval",
            &mut args.interval,
            self.duration("interval", &self.raw.interval)?,
        );
        set.value("jitter", &mut args.jitter, self.raw.jitter);
        Ok(())
    }

    /// Fills the output flags unless given explicitly.
    pub fn apply_output(
        &self,
        args: &mut OutputArgs,
        explicit: &Explicit,
    ) -> Result<(), ConfigError> {
        let raw = &self.raw;
        let set = Setter { explicit };
        set.option("out_dir", &mut args.out_dir, raw.out_dir.clone());
        set.option("out_file", &mut args.out_file, raw.out_file.clone());
        set.value(
            "format",
            &mut args.format,
            self.value_enum("format", &raw.format)?,
        );
        set.value("file_mode", &mut args.file_mode, raw.file_mode.clone());
        set.option("owner", &mut args.owner, raw.owner.clone());
        set.value("require_tmpfs", &mut args.require_tmpfs, raw.require_tmpfs);
        set.value(
            "invalid_keys",
            &mut args.keys.invalid_keys,
            self.value_enum("invalid-keys", &raw.invalid_keys)?,
        );
        Ok(())
    }

    /// Fills the sidecar's own flags unless given explicitly.
    pub fn apply_sidecar(
        &self,
        args: &mut cli::SidecarArgs,
        explicit: &Explicit,
    ) -> Result<(), ConfigError> {
        let raw = &self.raw;
        let set = Setter { explicit };
        set.option(
            "on_change_signal",
            &mut args.on_change_signal,
            raw.on_change_signal.clone(),
        );
        set.option(
            "on_change_pid_file",
            &mut args.on_change_pid_file,
            raw.on_change_pid_file.clone(),
        );
        set.option(
            "on_change_exec",
            &mut args.on_change_exec,
            raw.on_change_exec.clone(),
        );
        set.value(
            "on_change_timeout",
            &mut args.on_change_timeout,
            self.duration("on-change-timeout", &raw.on_change_timeout)?,
        );
        set.option(
            "on_change_url",
            &mut args.on_change_url,
            raw.on_change_url.clone(),
        );
        set.option("listen", &mut args.listen, raw.listen.clone());
        set.option(
            "max_staleness",
            &mut args.max_staleness,
            self.duration("max-staleness", &raw.max_staleness)?,
        );
        set.value("renew_token", &mut args.renew_token, raw.renew_token);
        Ok(())
    }

    /// Fills exec's own flags unless given explicitly.
    pub fn apply_exec(
        &self,
        args: &mut cli::ExecArgs,
        explicit: &Explicit,
    ) -> Result<(), ConfigError> {
        let raw = &self.raw;
        let set = Setter { explicit };
        set.value(
            "invalid_keys",
            &mut args.keys.invalid_keys,
            self.value_enum("invalid-keys", &raw.invalid_keys)?,
        );
        set.value("preserve_env", &mut args.preserve_env, raw.preserve_env);
        set.value("keep_env", &mut args.keep_env, raw.keep_env.clone());
        set.value(
            "restart_signal",
            &mut args.restart_signal,
            raw.restart_signal.clone(),
        );
        set.value(
            "grace",
            &mut args.grace,
            self.duration("grace", &raw.grace)?,
        );
        Ok(())
    }

    /// `log-format`, if the file gives it.
    pub fn log_format(&self) -> Result<Option<cli::LogFormat>, ConfigError> {
        self.value_enum("log-format", &self.raw.log_format)
    }

    /// `on-conflict`, `warn` when absent.
    pub fn on_conflict(&self) -> OnConflict {
        match self.raw.on_conflict {
            Some(file::OnConflict::Fail) => OnConflict::Fail,
            Some(file::OnConflict::Warn) | None => OnConflict::Warn,
        }
    }

    /// The entries of `sources`, typed; empty when the file has none.
    pub fn sources(&self) -> &[SourceConfig] {
        &self.sources
    }

    fn source(&self, index: usize, raw: &RawSource) -> Result<SourceConfig, ConfigError> {
        let key = |name: &str| format!("sources[{index}].{name}");
        let environment = raw.environment.trim();
        if environment.is_empty() {
            return Err(self.error(key("environment"), "required: an environment slug"));
        }
        if let ProjectRef::Slug(slug) = &raw.project {
            if let Some(reason) = project_slug_problem(slug) {
                return Err(self.error(key("project-slug"), reason));
            }
        }
        let path = normalize_secret_path(raw.path.as_deref().unwrap_or("/"))
            .map_err(|_| self.error(key("path"), "must start with '/', e.g. / or /app/db"))?;
        let mappings = match &raw.keys {
            Some(keys) => parse_key_mappings(&key_specs(keys))
                .map_err(|error| self.error(key("keys"), reason_of(error)))?,
            None => Vec::new(),
        };
        let matching = match &raw.keys_matching {
            Some(pattern) => Some(
                parse_key_pattern("keys-matching", pattern)
                    .map_err(|error| self.error(key("keys-matching"), reason_of(error)))?,
            ),
            None => None,
        };
        Ok(SourceConfig {
            query: ListQuery {
                project: raw.project.clone(),
                environment: environment.to_owned(),
                path,
                recursive: raw.recursive.unwrap_or(false),
                include_imports: raw.imports.unwrap_or(true),
                expand_references: raw.expand_references.unwrap_or(true),
                tags: raw.tags.clone(),
            },
            keys: KeySelection {
                mappings,
                matching,
                prefix: raw.prefix.clone().unwrap_or_default(),
            },
        })
    }

    /// The entries of `outputs`, typed. A mode or owner an entry does not give is the
    /// top-level (or flag) `file-mode` and `owner`.
    pub fn outputs(&self, mode: u32, owner: Option<Owner>) -> Result<Vec<Target>, ConfigError> {
        let mut targets = Vec::new();
        for (index, raw) in self.raw.outputs.iter().enumerate() {
            let key = |name: &str| format!("outputs[{index}].{name}");
            let output = match &raw.target {
                OutputTarget::Dir { path, keys } => Output::Dir {
                    path: path.clone(),
                    decode: keys
                        .iter()
                        .filter_map(|(name, options)| {
                            options
                                .decode
                                .map(|file::Decode::Base64| (name.clone(), Decode::Base64))
                        })
                        .collect::<BTreeMap<_, _>>(),
                },
                OutputTarget::File { path, format } => Output::File {
                    path: path.clone(),
                    format: self.value_enum(&key("format"), format)?.unwrap_or_default(),
                },
            };
            targets.push(Target {
                output,
                mode: self.mode(&key("mode"), &raw.mode, mode)?,
                owner: self.owner(&key("owner"), &raw.owner, owner)?,
            });
        }
        Ok(targets)
    }

    /// The entries of `templates`, as outputs. They were read and compiled when the file was
    /// read, so a syntax error names the template file and line before anything is fetched.
    pub fn templates(&self, mode: u32, owner: Option<Owner>) -> Result<Vec<Target>, ConfigError> {
        let mut targets = Vec::new();
        let entries = self.raw.templates.iter().zip(&self.compiled);
        for (index, (raw, template)) in entries.enumerate() {
            let key = |name: &str| format!("templates[{index}].{name}");
            let source = match &raw.text {
                TemplateText::Source(path) => Some(path.clone()),
                TemplateText::Content(_) => None,
            };
            targets.push(Target {
                output: Output::Template {
                    template: Arc::clone(template),
                    source,
                    destination: raw.destination.clone(),
                },
                mode: self.mode(&key("mode"), &raw.mode, mode)?,
                owner: self.owner(&key("owner"), &raw.owner, owner)?,
            });
        }
        Ok(targets)
    }

    fn template(&self, index: usize, raw: &RawTemplate) -> Result<Template, ConfigError> {
        match &raw.text {
            TemplateText::Source(path) => read_template(path),
            TemplateText::Content(text) => Ok(Template::parse(
                format!("{} templates[{index}] (inline)", self.origin()),
                text,
            )?),
        }
    }

    fn mode(&self, key: &str, text: &Option<String>, default: u32) -> Result<u32, ConfigError> {
        match text {
            Some(text) => parse_file_mode(text).map_err(|error| self.error(key, reason_of(error))),
            None => Ok(default),
        }
    }

    fn owner(
        &self,
        key: &str,
        text: &Option<String>,
        default: Option<Owner>,
    ) -> Result<Option<Owner>, ConfigError> {
        match text {
            Some(text) => text.parse::<Owner>().map(Some).map_err(|_| {
                self.error(key, "expected UID or UID:GID (numbers), e.g. \"1000:1000\"")
            }),
            None => Ok(default),
        }
    }

    fn duration(&self, key: &str, text: &Option<String>) -> Result<Option<Duration>, ConfigError> {
        text.as_deref()
            .map(|text| cli::parse_duration(text).map_err(|reason| self.error(key, reason)))
            .transpose()
    }

    fn size(&self, key: &str, text: &Option<String>) -> Result<Option<u64>, ConfigError> {
        text.as_deref()
            .map(|text| cli::parse_size(text).map_err(|reason| self.error(key, reason)))
            .transpose()
    }

    fn value_enum<E: ValueEnum>(
        &self,
        key: &str,
        text: &Option<String>,
    ) -> Result<Option<E>, ConfigError> {
        let Some(text) = text else {
            return Ok(None);
        };
        E::from_str(text, false).map(Some).map_err(|_| {
            let accepted: Vec<String> = E::value_variants()
                .iter()
                .filter_map(|variant| variant.to_possible_value())
                .map(|value| value.get_name().to_owned())
                .collect();
            self.error(key, format!("expected one of {}", accepted.join(", ")))
        })
    }
}

/// Reads and compiles a template file.
pub fn read_template(path: &Path) -> Result<Template, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Template {
        path: path.to_owned(),
        source,
    })?;
    Ok(Template::parse(path.display().to_string(), &text)?)
}

/// `keys` as `--key` specs: `REMOTE` or `REMOTE=LOCAL`.
fn key_specs(keys: &file::KeySelection) -> Vec<String> {
    match keys {
        file::KeySelection::List(specs) => specs.clone(),
        file::KeySelection::Map(pairs) => pairs
            .iter()
            .map(|(remote, local)| format!("{remote}={local}"))
            .collect(),
    }
}

/// The reason part of a flag error, for the same mistake made in the file.
fn reason_of(error: ConfigError) -> String {
    match error {
        ConfigError::Invalid { reason, .. } => reason,
        ConfigError::KeyMapping { spec, reason } => format!("{spec:?}: {reason}"),
        other => other.to_string(),
    }
}

/// Sets flag values from the file unless the flag was given explicitly.
struct Setter<'a> {
    explicit: &'a Explicit,
}

impl Setter<'_> {
    fn value<T>(&self, id: &str, target: &mut T, value: Option<T>) {
        if let Some(value) = value.filter(|_| !self.explicit.contains(id)) {
            *target = value;
        }
    }

    fn option<T>(&self, id: &str, target: &mut Option<T>, value: Option<T>) {
        if let Some(value) = value.filter(|_| !self.explicit.contains(id)) {
            *target = Some(value);
        }
    }
}
