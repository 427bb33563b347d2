//! `migrate`: turns what users already have — External Secrets Operator objects, an Infisical
//! agent configuration — into our configuration file and a pod fragment.
//!
//! A conversion never drops anything silently: what cannot be converted faithfully is refused
//! (exit 65) naming the file, line, field and reason; with `--best-effort` the rest is converted
//! and what was left out is listed. Mistakes that can be seen offline (a display name for a
//! slug, `production` for `prod`, odd `hostAPI` forms) are reported with their fix.
//!
//! The parts: [`yaml`] (read manifests with lines, write YAML), [`gotmpl`] (Go templates to
//! ours), [`eso`] and [`agent`] (the two sources), and here the model they produce, the
//! manifests around it and `--check`.

pub mod agent;
pub mod eso;
pub mod gotmpl;
pub mod yaml;

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command, Explicit, MigrateArgs, MigrateFrom};
use crate::config::{CheckConfig, ConfigFile, ProcessEnv};
use crate::error::{exit, Fatal};
use yaml::{Node, Value};

/// Where the configuration file is mounted in the pod.
pub const CONFIG_DIR: &str = "/etc/infisical-materializer";
/// Where credential files are mounted.
pub const CREDENTIALS_DIR: &str = "/var/run/infisical";
/// The image the pod fragments use (a placeholder registry, as in the examples).
pub const IMAGE: &str = concat!(
    "ghcr.io/infisical-materializer/infisical-materializer:",
    env!("CARGO_PKG_VERSION")
);

/// One input file.
pub struct Input {
    /// The name messages use (`-` is `stdin`).
    pub name: String,
    /// Its text.
    pub text: String,
}

/// Something found about the input: where, which field, and what it means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// `file:line`.
    pub at: String,
    /// The object and field, e.g. `ExternalSecret team-a/orders spec.dataFrom[0].extract`.
    pub field: String,
    /// Why, and what to do.
    pub reason: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.at, self.field, self.reason)
    }
}

/// Everything found while converting.
#[derive(Debug, Default)]
pub struct Findings {
    /// Not converted (exit 65 unless `--best-effort`).
    pub refused: Vec<Finding>,
    /// Converted, but probably a mistake in the original: each with its fix.
    pub warnings: Vec<Finding>,
    /// Converted differently, or meaningless without a Kubernetes Secret.
    pub notes: Vec<Finding>,
}

/// Where in which object: the file, the object's name, and the field path.
#[derive(Clone)]
pub struct Place<'a> {
    /// The file.
    pub file: &'a str,
    /// e.g. `ExternalSecret team-a/orders`.
    pub object: String,
}

impl Place<'_> {
    fn finding(&self, node: &Node, field: &str, reason: impl Into<String>) -> Finding {
        Finding {
            at: format!("{}:{}", self.file, node.line),
            field: if field.is_empty() {
                self.object.clone()
            } else {
                format!("{} {field}", self.object)
            },
            reason: reason.into(),
        }
    }

    /// Refuses `field`.
    pub fn refuse(&self, f: &mut Findings, node: &Node, field: &str, reason: impl Into<String>) {
        f.refused.push(self.finding(node, field, reason));
    }

    /// Warns about `field`.
    pub fn warn(&self, f: &mut Findings, node: &Node, field: &str, reason: impl Into<String>) {
        f.warnings.push(self.finding(node, field, reason));
    }

    /// Notes something about `field`.
    pub fn note(&self, f: &mut Findings, node: &Node, field: &str, reason: impl Into<String>) {
        f.notes.push(self.finding(node, field, reason));
    }

    /// Refuses every key of the mapping `node` (at `path`) that is not in `known`.
    pub fn known(&self, f: &mut Findings, node: &Node, path: &str, known: &[&str]) {
        for (key, value) in node.entries() {
            if !known.contains(&key.as_str()) && !value.is_null() {
                let field = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                self.refuse(
                    f,
                    value,
                    &field,
                    "not converted: this converter does not know the field",
                );
            }
        }
    }
}

/// One converted workload: a configuration file and what the pod needs to run it.
#[derive(Debug)]
pub struct Conversion {
    /// A name for the folder and the ConfigMap.
    pub name: String,
    /// The namespace of the manifests, when known.
    pub namespace: Option<String>,
    /// What it came from, e.g. `ExternalSecret team-a/orders (ClusterSecretStore infisical)`.
    pub origin: String,
    /// The configuration file.
    pub config: Node,
    /// The pod fragment's parts.
    pub pod: Pod,
}

/// What the pod needs around the configuration file.
#[derive(Debug, Default)]
pub struct Pod {
    /// A native sidecar that keeps the files fresh, or an init container.
    pub sidecar: bool,
    /// Environment entries of the container (e.g. an identity id from a Secret).
    pub env: Vec<Node>,
    /// Volumes (credentials, CA, the files).
    pub volumes: Vec<Node>,
    /// Their mounts in the container.
    pub mounts: Vec<Node>,
    /// More files next to `config.yaml` in the ConfigMap (a CA bundle).
    pub config_data: Vec<(String, String)>,
    /// Volumes the app container must mount too: (volume, path).
    pub shared: Vec<(String, String)>,
    /// Lines for the fragment's header comment.
    pub comments: Vec<String>,
}

impl Pod {
    /// Adds a volume and its mount in the container.
    pub fn volume(&mut self, name: &str, source: (&str, Node), mount: &str, read_only: bool) {
        if self
            .volumes
            .iter()
            .any(|v| v.get("name").and_then(Node::text) == Some(name))
        {
            return;
        }
        self.volumes.push(Node::map(vec![
            ("name", Node::str(name)),
            (source.0, source.1),
        ]));
        let mut entry = Node::map(vec![
            ("name", Node::str(name)),
            ("mountPath", Node::str(mount)),
        ]);
        if read_only {
            entry.push("readOnly", Node::plain(true));
        }
        self.mounts.push(entry);
    }

    /// A memory-backed volume for the written files at `path`, shared with the app.
    pub fn files_at(&mut self, name: &str, path: &str) {
        let source = Node::map(vec![("medium", Node::str("Memory"))]);
        self.volume(name, ("emptyDir", source), path, false);
        self.shared.push((name.to_owned(), path.to_owned()));
    }
}

/// Runs `migrate`.
pub async fn run(from: MigrateFrom) -> Result<(), Fatal> {
    let (args, agent) = match from {
        MigrateFrom::Eso(args) => (args, false),
        MigrateFrom::InfisicalAgent(args) => (args, true),
    };
    let inputs = read_inputs(&args.files)?;
    let mut findings = Findings::default();
    let conversions = if agent {
        agent::convert(&inputs, &mut findings)?
    } else {
        eso::convert(&inputs, &mut findings)?
    };
    for warning in &findings.warnings {
        eprintln!("warning: {warning}");
    }
    for note in &findings.notes {
        eprintln!("note: {note}");
    }
    let refusing = !findings.refused.is_empty() && !args.best_effort;
    for refusal in &findings.refused {
        let label = if refusing { "refused" } else { "left out" };
        eprintln!("{label}: {refusal}");
    }
    if refusing {
        return Err(Fatal::new(
            exit::DATA,
            format!(
                "{} thing(s) cannot be converted faithfully (listed above); fix them, or pass \
                 --best-effort to convert the rest and list what is left out",
                findings.refused.len()
            ),
        ));
    }
    if conversions.is_empty() {
        return Err(Fatal::new(
            exit::DATA,
            "nothing to convert: no ExternalSecret of an Infisical store (or no agent template) \
             in the files given",
        ));
    }
    let left_out: Vec<String> = findings.refused.iter().map(|r| r.to_string()).collect();
    match &args.out {
        Some(dir) => write_out(dir, &conversions, &left_out)?,
        None => print!("{}", stream(&conversions, &left_out)),
    }
    if args.check {
        for conversion in &conversions {
            check(conversion, &args).await?;
        }
    }
    Ok(())
}

fn read_inputs(files: &[PathBuf]) -> Result<Vec<Input>, Fatal> {
    files
        .iter()
        .map(|path| {
            let (name, text) = if path.as_os_str() == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map(|_| ("stdin".to_owned(), text))
            } else {
                std::fs::read_to_string(path).map(|text| (path.display().to_string(), text))
            }
            .map_err(|e| {
                Fatal::new(
                    exit::USAGE,
                    format!("{}: cannot read it: {e}", path.display()),
                )
            })?;
            Ok(Input { name, text })
        })
        .collect()
}

/// Parses an input's documents; a YAML error names the file and line (exit 64).
pub fn documents(input: &Input) -> Result<Vec<Node>, Fatal> {
    yaml::read_documents(&input.text).map_err(|(line, reason)| {
        Fatal::new(
            exit::USAGE,
            format!(
                "{} line {line}: not YAML this converter reads: {reason}",
                input.name
            ),
        )
    })
}

/// The config file's text, with a header naming its origin.
pub fn config_text(conversion: &Conversion) -> String {
    format!(
        "# Converted from {} by infisical-materializer migrate.\n{}",
        conversion.origin,
        yaml::write(&conversion.config)
    )
}

fn config_map_name(conversion: &Conversion) -> String {
    format!("{}-infisical-materializer", conversion.name)
}

fn metadata(name: String, namespace: &Option<String>) -> Node {
    let mut meta = Node::map(vec![("name", Node::str(name))]);
    if let Some(namespace) = namespace {
        meta.push("namespace", Node::str(namespace.clone()));
    }
    meta
}

/// The ConfigMap holding `config.yaml` (and a CA bundle, if any).
pub fn config_map(conversion: &Conversion) -> Node {
    let mut data = vec![("config.yaml".to_owned(), Node::str(config_text(conversion)))];
    for (key, value) in &conversion.pod.config_data {
        data.push((key.clone(), Node::str(value.clone())));
    }
    Node::map(vec![
        ("apiVersion", Node::str("v1")),
        ("kind", Node::str("ConfigMap")),
        (
            "metadata",
            metadata(config_map_name(conversion), &conversion.namespace),
        ),
        (
            "data",
            Node {
                value: Value::Map(data),
                line: 0,
            },
        ),
    ])
}

/// A strategic-merge patch for the Deployment: the container, its volumes, nothing of the app's.
pub fn pod_patch(conversion: &Conversion) -> Node {
    let pod = &conversion.pod;
    let mode = if pod.sidecar { "sidecar" } else { "init" };
    let mut args = vec![
        Node::str(mode),
        Node::str(format!("--config={CONFIG_DIR}/config.yaml")),
    ];
    if pod.sidecar {
        args.push(Node::str("--listen=9464"));
    }
    let mut mounts = vec![Node::map(vec![
        ("name", Node::str("infisical-materializer-config")),
        ("mountPath", Node::str(CONFIG_DIR)),
        ("readOnly", Node::plain(true)),
    ])];
    mounts.extend(pod.mounts.iter().cloned());
    let mut container = Node::map(vec![
        ("name", Node::str("infisical-materializer")),
        ("image", Node::str(IMAGE)),
    ]);
    if pod.sidecar {
        container.push("restartPolicy", Node::str("Always"));
    }
    container.push("args", Node::seq(args));
    if !pod.env.is_empty() {
        container.push("env", Node::seq(pod.env.clone()));
    }
    if pod.sidecar {
        container.push(
            "startupProbe",
            Node::map(vec![
                (
                    "httpGet",
                    Node::map(vec![
                        ("path", Node::str("/readyz")),
                        ("port", Node::plain(9464)),
                    ]),
                ),
                ("periodSeconds", Node::plain(1)),
                ("failureThreshold", Node::plain(120)),
            ]),
        );
    }
    container.push(
        "securityContext",
        Node::map(vec![
            ("allowPrivilegeEscalation", Node::plain(false)),
            ("readOnlyRootFilesystem", Node::plain(true)),
            ("runAsNonRoot", Node::plain(true)),
            ("runAsUser", Node::plain(65532)),
            (
                "capabilities",
                Node::map(vec![("drop", Node::seq(vec![Node::str("ALL")]))]),
            ),
        ]),
    );
    container.push("volumeMounts", Node::seq(mounts));
    let mut volumes = vec![Node::map(vec![
        ("name", Node::str("infisical-materializer-config")),
        (
            "configMap",
            Node::map(vec![("name", Node::str(config_map_name(conversion)))]),
        ),
    ])];
    volumes.extend(pod.volumes.iter().cloned());
    Node::map(vec![
        ("apiVersion", Node::str("apps/v1")),
        ("kind", Node::str("Deployment")),
        (
            "metadata",
            metadata(conversion.name.clone(), &conversion.namespace),
        ),
        (
            "spec",
            Node::map(vec![
                // Empty: a merge patch changes neither the selector nor the app's containers.
                ("selector", Node::map(vec![])),
                (
                    "template",
                    Node::map(vec![(
                        "spec",
                        Node::map(vec![
                            ("initContainers", Node::seq(vec![container])),
                            ("containers", Node::seq(vec![])),
                            ("volumes", Node::seq(volumes)),
                        ]),
                    )]),
                ),
            ]),
        ),
    ])
}

fn comment(lines: &[String]) -> String {
    lines
        .iter()
        .flat_map(|line| line.lines())
        .map(|line| format!("# {line}\n"))
        .collect()
}

fn patch_comments(conversion: &Conversion) -> Vec<String> {
    let namespace = conversion
        .namespace
        .as_deref()
        .map(|ns| format!(" -n {ns}"))
        .unwrap_or_default();
    let mut lines = vec![
        format!(
            "Apply: kubectl apply -f configmap.yaml, then kubectl patch deployment {}{namespace} --patch-file pod-patch.yaml",
            conversion.name
        ),
        "(metadata.name must be the Deployment's name; rename it if it differs).".to_owned(),
    ];
    for (volume, path) in &conversion.pod.shared {
        lines.push(format!(
            "Mount volume {volume} in the app container at {path} (where it read the files before)."
        ));
    }
    lines.extend(conversion.pod.comments.iter().cloned());
    lines
}

/// Everything as one YAML stream: per conversion, its ConfigMap and its pod patch.
pub fn stream(conversions: &[Conversion], left_out: &[String]) -> String {
    let mut out = String::new();
    if !left_out.is_empty() {
        let mut lines = vec!["Left out (--best-effort):".to_owned()];
        lines.extend(left_out.iter().cloned());
        out.push_str(&comment(&lines));
    }
    for (index, conversion) in conversions.iter().enumerate() {
        if index > 0 || !out.is_empty() {
            out.push_str("---\n");
        }
        out.push_str(&comment(&[format!("{}: configuration", conversion.origin)]));
        out.push_str(&yaml::write(&config_map(conversion)));
        out.push_str("---\n");
        out.push_str(&comment(&patch_comments(conversion)));
        out.push_str(&yaml::write(&pod_patch(conversion)));
    }
    out
}

fn write_out(dir: &Path, conversions: &[Conversion], left_out: &[String]) -> Result<(), Fatal> {
    let write = |path: PathBuf, text: String| {
        std::fs::create_dir_all(path.parent().unwrap_or(dir))
            .and_then(|()| std::fs::write(&path, text))
            .map_err(|e| {
                Fatal::new(
                    exit::CANT_WRITE,
                    format!("--out: cannot write {}: {e}", path.display()),
                )
            })
    };
    for conversion in conversions {
        let folder = if conversions.len() == 1 {
            dir.to_owned()
        } else {
            let same_name = conversions
                .iter()
                .filter(|c| c.name == conversion.name)
                .count();
            match (&conversion.namespace, same_name) {
                (Some(ns), 2..) => dir.join(format!("{ns}.{}", conversion.name)),
                _ => dir.join(&conversion.name),
            }
        };
        write(folder.join("config.yaml"), config_text(conversion))?;
        write(
            folder.join("configmap.yaml"),
            yaml::write(&config_map(conversion)),
        )?;
        write(
            folder.join("pod-patch.yaml"),
            comment(&patch_comments(conversion)) + &yaml::write(&pod_patch(conversion)),
        )?;
        eprintln!("wrote {}", folder.display());
    }
    if !left_out.is_empty() {
        write(dir.join("LEFT-OUT.txt"), left_out.join("\n") + "\n")?;
    }
    Ok(())
}

/// Keys of the converted file that hold what only the pod has: `--check` replaces them.
const POD_ONLY: &[&str] = &[
    "ca-cert",
    "auth-method",
    "client-id-file",
    "client-secret-file",
    "token-file",
    "jwt-file",
    "identity-id",
    "outputs",
    "templates",
];

/// `--check`: logs in with the credentials given as files and lists the key names the converted
/// sources select (on stderr: stdout holds the YAML).
async fn check(conversion: &Conversion, args: &MigrateArgs) -> Result<(), Fatal> {
    let Value::Map(entries) = &conversion.config.value else {
        return Ok(());
    };
    let kept = entries
        .iter()
        .filter(|(key, _)| !POD_ONLY.contains(&key.as_str()))
        .cloned()
        .collect();
    let text = yaml::write(&Node {
        value: Value::Map(kept),
        line: 0,
    });
    let path = std::env::temp_dir().join(format!(
        "infisical-materializer-migrate-check-{}.yaml",
        std::process::id()
    ));
    std::fs::write(&path, text).map_err(|e| {
        Fatal::new(
            exit::CANT_WRITE,
            format!("--check: cannot write {}: {e}", path.display()),
        )
    })?;
    let file = ConfigFile::load(&path);
    let _ = std::fs::remove_file(&path);
    let file = file?;
    let mut argv = vec!["infisical-materializer".into(), "check".into()];
    for (flag, value) in [
        ("--client-id-file", &args.client_id_file),
        ("--client-secret-file", &args.client_secret_file),
        ("--token-file", &args.token_file),
        ("--ca-cert", &args.ca_cert),
    ] {
        if let Some(value) = value {
            argv.push(std::ffi::OsString::from(flag));
            argv.push(value.clone().into_os_string());
        }
    }
    if args.token_file.is_some() {
        argv.extend(["--auth-method".into(), "token".into()]);
    }
    let matches = Cli::command()
        .try_get_matches_from(argv)
        .map_err(|e| Fatal::new(exit::USAGE, format!("--check: {e}")))?;
    let explicit = Explicit::from_matches(&matches);
    let cli = Cli::from_arg_matches(&matches)
        .map_err(|e| Fatal::new(exit::USAGE, format!("--check: {e}")))?;
    let Command::Check(check_args) = cli.command else {
        return Ok(());
    };
    let config = CheckConfig::load(&check_args, &ProcessEnv, Some(&file), &explicit)
        .map_err(|e| Fatal::new(e.exit_code(), format!("--check {}: {e}", conversion.origin)))?;
    let client = crate::api::InfisicalClient::new(&config.fetch.api)?;
    let mut sources = crate::source::Sources::new(config.fetch, Arc::new(client), false);
    let secrets = crate::mode::fetch_once(&mut sources, config.retry_deadline)
        .await
        .map_err(|fatal| {
            Fatal::new(
                fatal.code,
                format!("--check {}: {}", conversion.origin, fatal.message),
            )
        })?;
    let keys: Vec<&str> = secrets.keys().collect();
    eprintln!(
        "check {}: logged in; {} key(s): {}",
        conversion.origin,
        keys.len(),
        keys.join(", ")
    );
    Ok(())
}
