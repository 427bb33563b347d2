//! The pod's annotations, read once into a validated [`Plan`]: every value is checked here, so
//! the patch builder never meets a bad one. A mistake is one [`BadAnnotation`] naming the
//! annotation and what to write instead.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::layout;

/// The prefix of every annotation (and of the `inject` label) unless `--annotation-prefix`.
pub const DEFAULT_PREFIX: &str = "infisical-materializer.io/";

/// Where the secrets go when `out-dir` is not given.
pub const DEFAULT_OUT_DIR: &str = "/run/secrets/infisical";

/// The audience of the projected service-account token when `audience` is not given.
pub const DEFAULT_AUDIENCE: &str = "infisical";

/// Every annotation a user may set (without the prefix), for the unknown-key suggestion.
const KNOWN: &[&str] = &[
    "mode",
    "config-map",
    "project-slug",
    "project-id",
    "env",
    "path",
    "auth-method",
    "identity-id",
    "credentials-secret",
    "api-url",
    "ca-cert-config-map",
    "audience",
    "out-dir",
    "containers",
    "interval",
    "on-change-signal",
    "image",
    "cpu-request",
    "memory-request",
    "memory-limit",
    "cpu-limit",
    STATUS,
];

/// The annotation (without the prefix) that marks an injected pod.
pub const STATUS: &str = "status";
/// Its value.
pub const STATUS_INJECTED: &str = "injected";
/// The label (without the prefix) that selects pods; its value must be `"true"`.
pub const INJECT_LABEL: &str = "inject";

/// A refused annotation: the full annotation name and a one-line reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {annotation}: {reason}")]
pub struct BadAnnotation {
    /// The full name, prefix included.
    pub annotation: String,
    /// What is wrong and what to write instead.
    pub reason: String,
}

/// How the tool runs in the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An init container writes the files once.
    Init,
    /// A native sidecar (an init container with `restartPolicy: Always`) keeps them fresh.
    Sidecar,
    /// An init container writes them, then an ordinary sidecar container keeps them fresh
    /// (clusters without native sidecars).
    InitSidecar,
    /// The app's command is wrapped: the secrets become its environment.
    Exec,
}

impl Mode {
    /// Whether the tool keeps running beside the app.
    pub fn refreshes(self) -> bool {
        matches!(self, Mode::Sidecar | Mode::InitSidecar)
    }
}

/// The login methods of the per-pod binary (its `--auth-method` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// Client id and secret from `credentials-secret`.
    UniversalAuth,
    /// The projected service-account token, reviewed by Infisical.
    Kubernetes,
    /// An access token from `credentials-secret`.
    Token,
    /// The projected token checked against the issuer's discovery document.
    Oidc,
    /// The projected token checked against JWKS or static keys.
    Jwt,
    /// The pod's AWS credentials.
    AwsIam,
    /// An ID token from the GCE/GKE metadata server.
    GcpIdToken,
    /// A JWT signed with a key file from `credentials-secret`.
    GcpIam,
    /// An Azure AD token.
    Azure,
}

impl AuthMethod {
    const ALL: [(&'static str, AuthMethod); 9] = [
        ("universal-auth", AuthMethod::UniversalAuth),
        ("kubernetes", AuthMethod::Kubernetes),
        ("token", AuthMethod::Token),
        ("oidc", AuthMethod::Oidc),
        ("jwt", AuthMethod::Jwt),
        ("aws-iam", AuthMethod::AwsIam),
        ("gcp-id-token", AuthMethod::GcpIdToken),
        ("gcp-iam", AuthMethod::GcpIam),
        ("azure", AuthMethod::Azure),
    ];

    /// The flag value.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, method)| *method == self)
            .map_or("", |(name, _)| name)
    }

    /// The keys this method reads from `credentials-secret`, if it reads that Secret.
    pub fn secret_keys(self) -> &'static [&'static str] {
        match self {
            AuthMethod::UniversalAuth => &["client-id", "client-secret"],
            AuthMethod::Token => &["token"],
            AuthMethod::GcpIam => &["key.json"],
            _ => &[],
        }
    }

    /// Whether the method logs in with a projected service-account token.
    pub fn uses_token(self) -> bool {
        matches!(
            self,
            AuthMethod::Kubernetes | AuthMethod::Oidc | AuthMethod::Jwt
        )
    }

    /// Whether the method needs `--identity-id`.
    pub fn needs_identity(self) -> bool {
        !matches!(self, AuthMethod::UniversalAuth | AuthMethod::Token)
    }
}

/// Which project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Project {
    /// `--project-slug`.
    Slug(String),
    /// `--project-id`.
    Id(String),
}

/// How the tool logs in, and what the pod must mount for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// The method.
    pub method: AuthMethod,
    /// `--identity-id`.
    pub identity_id: Option<String>,
    /// The Secret holding the method's keys (universal-auth, token, gcp-iam).
    pub credentials_secret: Option<String>,
    /// The projected token's audience (kubernetes, oidc, jwt).
    pub audience: Option<String>,
}

/// Requests and limits of the tool's containers, as Kubernetes quantities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    /// `requests.cpu`.
    pub cpu_request: String,
    /// `requests.memory`.
    pub memory_request: String,
    /// `limits.memory`.
    pub memory_limit: String,
    /// `limits.cpu`, none by default (throttling would only slow the start).
    pub cpu_limit: Option<String>,
}

/// Everything the annotations ask for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// How the tool runs.
    pub mode: Mode,
    /// A ConfigMap with the tool's config file (key `config.yaml`).
    pub config_map: Option<String>,
    /// The project, unless the config file names it.
    pub project: Option<Project>,
    /// `--env`.
    pub env: Option<String>,
    /// `--path`.
    pub path: Option<String>,
    /// The login, unless the config file says it all.
    pub auth: Option<Auth>,
    /// `--api-url`.
    pub api_url: Option<String>,
    /// A ConfigMap with a PEM bundle (key `ca.crt`) for `--ca-cert`.
    pub ca_cert_config_map: Option<String>,
    /// Where the files go (init and sidecar modes).
    pub out_dir: String,
    /// The app containers that get the secrets; `None` means all of them.
    pub containers: Option<Vec<String>>,
    /// `--interval` (sidecar modes).
    pub interval: Option<String>,
    /// `--on-change-signal` (sidecar modes).
    pub on_change_signal: Option<String>,
    /// The image of the tool's containers.
    pub image: String,
    /// Requests and limits of the tool's containers.
    pub resources: Resources,
}

/// What the webhook decided to do with a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not selected (no `inject: "true"` label), or already injected: no change.
    Skip(&'static str),
    /// Inject as planned.
    Inject(Box<Plan>),
}

/// Reads the labels and annotations of a pod.
pub struct Reader<'a> {
    prefix: &'a str,
    default_image: &'a str,
    annotations: &'a BTreeMap<String, String>,
}

impl<'a> Reader<'a> {
    /// A reader for one pod.
    pub fn new(
        prefix: &'a str,
        default_image: &'a str,
        annotations: &'a BTreeMap<String, String>,
    ) -> Self {
        Self {
            prefix,
            default_image,
            annotations,
        }
    }

    fn name(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn bad(&self, key: &str, reason: impl Into<String>) -> BadAnnotation {
        BadAnnotation {
            annotation: self.name(key),
            reason: reason.into(),
        }
    }

    /// The value, trimmed; an empty value is a mistake, not an absence.
    fn get(&self, key: &str) -> Result<Option<&'a str>, BadAnnotation> {
        match self.annotations.get(&self.name(key)) {
            None => Ok(None),
            Some(value) if value.trim().is_empty() => {
                Err(self.bad(key, "is empty: give a value or remove the annotation"))
            }
            Some(value) => Ok(Some(value.trim())),
        }
    }

    /// Decides what to do with a pod carrying these labels and annotations.
    pub fn decide(&self, labels: &BTreeMap<String, String>) -> Result<Decision, BadAnnotation> {
        if labels.get(&self.name(INJECT_LABEL)).map(String::as_str) != Some("true") {
            return Ok(Decision::Skip("the pod is not labelled for injection"));
        }
        if let Some(status) = self.annotations.get(&self.name(STATUS)) {
            if status == STATUS_INJECTED {
                return Ok(Decision::Skip("already injected"));
            }
            return Err(self.bad(
                STATUS,
                format!(
                    "is set by the webhook only (found {status:?}); remove it from the pod template"
                ),
            ));
        }
        self.plan().map(|plan| Decision::Inject(Box::new(plan)))
    }

    fn check_unknown(&self) -> Result<(), BadAnnotation> {
        for key in self.annotations.keys() {
            let Some(short) = key.strip_prefix(self.prefix) else {
                continue;
            };
            if KNOWN.contains(&short) {
                continue;
            }
            let suggestion = KNOWN
                .iter()
                .map(|known| (strsim::jaro_winkler(short, known), known))
                .filter(|(score, _)| *score > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, known)| format!("; did you mean {}{known}?", self.prefix))
                .unwrap_or_default();
            return Err(BadAnnotation {
                annotation: key.clone(),
                reason: format!("unknown annotation{suggestion}"),
            });
        }
        Ok(())
    }

    fn plan(&self) -> Result<Plan, BadAnnotation> {
        self.check_unknown()?;
        let mode = match self.get("mode")? {
            None | Some("init") => Mode::Init,
            Some("sidecar") => Mode::Sidecar,
            Some("init-sidecar") => Mode::InitSidecar,
            Some("exec") => Mode::Exec,
            Some(other) => {
                return Err(self.bad(
                    "mode",
                    format!("{other:?} is not a mode: use init, sidecar, init-sidecar or exec"),
                ))
            }
        };
        let config_map = self.object_name("config-map", "ConfigMap")?;
        let project = match (self.get("project-slug")?, self.get("project-id")?) {
            (Some(_), Some(_)) => {
                return Err(self.bad(
                    "project-id",
                    format!(
                        "give {} or {}, not both",
                        self.name("project-slug"),
                        self.name("project-id")
                    ),
                ))
            }
            (Some(slug), None) => Some(Project::Slug(self.token("project-slug", slug)?)),
            (None, Some(id)) => Some(Project::Id(self.token("project-id", id)?)),
            (None, None) => None,
        };
        let env = self
            .get("env")?
            .map(|env| self.token("env", env))
            .transpose()?;
        let path = match self.get("path")? {
            Some(path) if !path.starts_with('/') => {
                return Err(self.bad(
                    "path",
                    format!("{path:?} is not a folder path: start it with / (e.g. /backend)"),
                ))
            }
            other => other.map(str::to_owned),
        };
        let api_url = match self.get("api-url")? {
            Some(url)
                if !(url.starts_with("https://") || url.starts_with("http://"))
                    || url.contains(char::is_whitespace) =>
            {
                return Err(self.bad(
                    "api-url",
                    format!("{url:?} is not an http:// or https:// URL"),
                ))
            }
            other => other.map(str::to_owned),
        };
        let ca_cert_config_map = self.object_name("ca-cert-config-map", "ConfigMap")?;
        let auth = self.auth()?;
        if config_map.is_none() {
            if project.is_none() {
                return Err(self.bad(
                    "project-slug",
                    format!(
                        "is required (or {}, or a config file in {})",
                        self.name("project-id"),
                        self.name("config-map")
                    ),
                ));
            }
            if env.is_none() {
                return Err(self.bad(
                    "env",
                    format!(
                        "is required: the environment slug (dev, staging, prod …), or a config file in {}",
                        self.name("config-map")
                    ),
                ));
            }
            if auth.is_none() {
                return Err(self.bad(
                    "auth-method",
                    format!(
                        "no login configured: set {} (or {} for universal auth, {} for kubernetes auth), or a config file in {}",
                        self.name("auth-method"),
                        self.name("credentials-secret"),
                        self.name("identity-id"),
                        self.name("config-map")
                    ),
                ));
            }
        }
        let out_dir = match self.get("out-dir")? {
            None => DEFAULT_OUT_DIR.to_owned(),
            Some(dir) => self.out_dir(dir)?,
        };
        if mode == Mode::Exec && self.get("out-dir")?.is_some() {
            return Err(self.bad(
                "out-dir",
                "mode exec writes no files (the secrets become environment variables): remove it",
            ));
        }
        let containers = self
            .get("containers")?
            .map(|list| {
                let names: Vec<String> =
                    list.split(',').map(str::trim).map(str::to_owned).collect();
                if names.iter().any(|name| !is_dns_label(name)) {
                    return Err(self.bad(
                        "containers",
                        format!("{list:?} is not a comma-separated list of container names"),
                    ));
                }
                Ok(names)
            })
            .transpose()?;
        let interval = self.sidecar_only(mode, "interval")?;
        if let Some(interval) = interval {
            match humantime::parse_duration(interval) {
                Ok(duration) if duration >= Duration::from_millis(100) => {}
                Ok(_) => return Err(self.bad("interval", "must be at least 100ms")),
                Err(error) => {
                    return Err(self.bad(
                        "interval",
                        format!("{interval:?} is not a duration ({error}): e.g. 30s, 5m, 1h"),
                    ))
                }
            }
        }
        let on_change_signal = self.sidecar_only(mode, "on-change-signal")?;
        if let Some(signal) = on_change_signal {
            if !is_signal(signal) {
                return Err(self.bad(
                    "on-change-signal",
                    format!("{signal:?} is not a signal: e.g. HUP, SIGUSR1 or 10"),
                ));
            }
        }
        let image = match self.get("image")? {
            Some(image) if image.contains(char::is_whitespace) => {
                return Err(self.bad("image", format!("{image:?} is not an image reference")))
            }
            Some(image) => image.to_owned(),
            None => self.default_image.to_owned(),
        };
        let resources = Resources {
            cpu_request: self.quantity("cpu-request", "5m")?,
            memory_request: self.quantity("memory-request", "8Mi")?,
            memory_limit: self.quantity("memory-limit", "32Mi")?,
            cpu_limit: match self.get("cpu-limit")? {
                None => None,
                Some(_) => Some(self.quantity("cpu-limit", "")?),
            },
        };
        Ok(Plan {
            mode,
            config_map,
            project,
            env,
            path,
            auth,
            api_url,
            ca_cert_config_map,
            out_dir,
            containers,
            interval: interval.map(str::to_owned),
            on_change_signal: on_change_signal.map(str::to_owned),
            image,
            resources,
        })
    }

    fn auth(&self) -> Result<Option<Auth>, BadAnnotation> {
        let identity_id = self.get("identity-id")?;
        let credentials_secret = self.object_name("credentials-secret", "Secret")?;
        let method = match self.get("auth-method")? {
            Some(name) => AuthMethod::ALL
                .iter()
                .find(|(known, _)| *known == name)
                .map(|(_, method)| *method)
                .ok_or_else(|| {
                    let names: Vec<&str> = AuthMethod::ALL.iter().map(|(n, _)| *n).collect();
                    self.bad(
                        "auth-method",
                        format!("{name:?} is not a method: use one of {}", names.join(", ")),
                    )
                })?,
            // Inferred as the binary does: a Secret means universal auth, an identity id
            // alone means kubernetes auth.
            None => match (&credentials_secret, identity_id) {
                (Some(_), _) => AuthMethod::UniversalAuth,
                (None, Some(_)) => AuthMethod::Kubernetes,
                (None, None) => {
                    if self.get("audience")?.is_some() {
                        return Err(self.bad(
                            "audience",
                            format!(
                                "needs {} (kubernetes, oidc or jwt)",
                                self.name("auth-method")
                            ),
                        ));
                    }
                    return Ok(None);
                }
            },
        };
        let identity_id = match identity_id {
            Some(id) if !method.needs_identity() => {
                return Err(self.bad(
                    "identity-id",
                    format!("auth-method {} takes no identity id ({id:?})", method.as_str()),
                ))
            }
            Some(id) if !is_uuid(id) => {
                return Err(self.bad(
                    "identity-id",
                    format!(
                        "{id:?} is not a UUID: copy the identity's ID (Organization > Access Control > Identities)"
                    ),
                ))
            }
            Some(id) => Some(id.to_owned()),
            None if method.needs_identity() => {
                return Err(self.bad(
                    "identity-id",
                    format!("is required by auth-method {}", method.as_str()),
                ))
            }
            None => None,
        };
        let keys = method.secret_keys();
        let credentials_secret = match credentials_secret {
            Some(name) if keys.is_empty() => {
                return Err(self.bad(
                    "credentials-secret",
                    format!(
                        "auth-method {} reads no Secret ({name:?}): remove it",
                        method.as_str()
                    ),
                ))
            }
            None if !keys.is_empty() => {
                return Err(self.bad(
                    "credentials-secret",
                    format!(
                        "is required by auth-method {}: a Secret with the key(s) {}",
                        method.as_str(),
                        keys.join(", ")
                    ),
                ))
            }
            other => other,
        };
        let audience = match self.get("audience")? {
            Some(_) if !method.uses_token() => {
                return Err(self.bad(
                    "audience",
                    format!(
                        "auth-method {} uses no service-account token",
                        method.as_str()
                    ),
                ))
            }
            Some(audience) => Some(self.token("audience", audience)?),
            None if method.uses_token() => Some(DEFAULT_AUDIENCE.to_owned()),
            None => None,
        };
        Ok(Some(Auth {
            method,
            identity_id,
            credentials_secret,
            audience,
        }))
    }

    /// A value without whitespace.
    fn token(&self, key: &str, value: &str) -> Result<String, BadAnnotation> {
        if value.contains(char::is_whitespace) {
            return Err(self.bad(key, format!("{value:?} contains whitespace")));
        }
        Ok(value.to_owned())
    }

    fn object_name(&self, key: &str, kind: &str) -> Result<Option<String>, BadAnnotation> {
        match self.get(key)? {
            None => Ok(None),
            Some(name) if is_dns_subdomain(name) => Ok(Some(name.to_owned())),
            Some(name) => Err(self.bad(
                key,
                format!("{name:?} is not a {kind} name (lower-case letters, digits, '-' and '.')"),
            )),
        }
    }

    fn out_dir(&self, dir: &str) -> Result<String, BadAnnotation> {
        let dir = dir.trim_end_matches('/');
        if !dir.starts_with('/')
            || dir.split('/').any(|part| part == ".." || part == ".")
            || dir.contains(char::is_whitespace)
            || dir.contains(':')
        {
            return Err(self.bad(
                "out-dir",
                format!("{dir:?} is not an absolute directory path (e.g. /run/secrets/app)"),
            ));
        }
        let taken = layout::MOUNTS.iter().find(|taken| {
            dir.is_empty()
                || dir == **taken
                || dir.starts_with(&format!("{taken}/"))
                || taken.starts_with(&format!("{dir}/"))
        });
        if let Some(taken) = taken {
            return Err(self.bad(
                "out-dir",
                format!(
                    "{dir:?} overlaps {taken}, which the pod already mounts: choose a directory of its own (e.g. /run/secrets/app)"
                ),
            ));
        }
        Ok(dir.to_owned())
    }

    fn sidecar_only(&self, mode: Mode, key: &str) -> Result<Option<&'a str>, BadAnnotation> {
        match self.get(key)? {
            Some(_) if !mode.refreshes() => Err(self.bad(
                key,
                "only applies to mode sidecar or init-sidecar (this pod's mode fetches once)",
            )),
            other => Ok(other),
        }
    }

    fn quantity(&self, key: &str, default: &str) -> Result<String, BadAnnotation> {
        match self.get(key)? {
            None => Ok(default.to_owned()),
            Some(value) if is_quantity(value) => Ok(value.to_owned()),
            Some(value) => Err(self.bad(
                key,
                format!("{value:?} is not a Kubernetes quantity (e.g. 5m, 100m, 8Mi, 1Gi)"),
            )),
        }
    }
}

/// An RFC 1123 label: a container name.
fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// An RFC 1123 subdomain: a ConfigMap or Secret name.
fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// The 8-4-4-4-12 hex form.
fn is_uuid(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The signals the per-pod binary accepts: a name with or without `SIG`, or a number.
fn is_signal(signal: &str) -> bool {
    const NAMES: &[&str] = &[
        "HUP", "INT", "QUIT", "USR1", "USR2", "TERM", "WINCH", "ALRM", "CONT", "STOP", "TSTP",
        "KILL", "PIPE", "TTIN", "TTOU", "URG", "IO", "PWR", "SYS",
    ];
    if let Ok(number) = signal.parse::<u8>() {
        return (1..=64).contains(&number);
    }
    let upper = signal.to_ascii_uppercase();
    NAMES.contains(&upper.strip_prefix("SIG").unwrap_or(&upper))
}

/// A Kubernetes quantity: a decimal number with an optional binary, decimal or exponent suffix.
fn is_quantity(value: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E", "",
    ];
    let number_end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(number_end);
    let number_ok = !number.is_empty()
        && number.matches('.').count() <= 1
        && number != "."
        && number.bytes().any(|b| b.is_ascii_digit());
    let suffix_ok = SUFFIXES.contains(&suffix)
        || suffix.strip_prefix(['e', 'E']).is_some_and(|exp| {
            !exp.is_empty()
                && exp
                    .trim_start_matches(['+', '-'])
                    .bytes()
                    .all(|b| b.is_ascii_digit())
        });
    number_ok && suffix_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        for good in ["5m", "8Mi", "1", "0.5", "1Gi", "100k", "1e3"] {
            assert!(is_quantity(good), "{good}");
        }
        for bad in ["", "Mi", "8 Mi", "8MB", "-1", "1..2", "lots"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }

    #[test]
    fn names_and_ids() {
        assert!(is_dns_subdomain("app-config.v2"));
        assert!(!is_dns_subdomain("App_Config"));
        assert!(is_uuid("00000000-0000-0000-0000-00000000abcd"));
        assert!(!is_uuid("not-a-uuid"));
        assert!(is_signal("HUP") && is_signal("sigusr1") && is_signal("10"));
        assert!(!is_signal("RELOAD") && !is_signal("0"));
    }

    #[test]
    fn a_typo_suggests_the_annotation() {
        let annotations = BTreeMap::from([(
            "infisical-materializer.io/mdoe".to_owned(),
            "sidecar".to_owned(),
        )]);
        let labels = BTreeMap::from([(
            "infisical-materializer.io/inject".to_owned(),
            "true".to_owned(),
        )]);
        let error = Reader::new(DEFAULT_PREFIX, "image", &annotations)
            .decide(&labels)
            .unwrap_err();
        assert_eq!(error.annotation, "infisical-materializer.io/mdoe");
        assert!(
            error
                .reason
                .contains("did you mean infisical-materializer.io/mode"),
            "{error}"
        );
    }
}
