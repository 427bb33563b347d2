//! The Kubernetes examples in `examples/kubernetes/` cannot drift from the binary: every
//! container that runs it is parsed with the binary's own argument parser, every `INFISICAL_*`
//! variable it sets must be one the binary reads, and the pod around it must give it what its
//! flags promise (the files it reads are mounted, `--require-tmpfs` targets are memory-backed,
//! probes reach `--listen`, the hardened security context is there).
//!
//! The credentials live apart from the workloads: no workload manifest carries a Secret (applying
//! one must never overwrite the user's real credentials with placeholders), and every Secret a
//! workload refers to is in the file users edit and create first.

use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};
use infisical_materializer::cli::{
    AuthMethod, Cli, Command, SourceArgs, CONSUMED_ENV_VARS, DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH,
};
use infisical_materializer::config;
use serde::Deserialize;
use serde_yaml::Value;

/// The image the examples use (a placeholder registry, see the examples' README).
const IMAGE: &str = "ghcr.io/infisical-materializer/infisical-materializer:0.1.0";
/// The binary's file name, for containers that run it from another image (the exec wrapper).
const BINARY: &str = "infisical-materializer";

/// The Secrets users edit and create before any workload. Not `.yaml`, so that
/// `kubectl apply -f examples/kubernetes/` leaves it out.
const CREDENTIALS: &str = "credentials.secret.yaml.example";

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes")
}

fn credentials_file() -> PathBuf {
    examples_dir().join(CREDENTIALS)
}

/// The workload manifests (every `.yaml`/`.yml` file).
fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("examples/kubernetes exists")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    files.sort();
    files
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("read manifest");
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| {
            Value::deserialize(document)
                .unwrap_or_else(|e| panic!("{}: invalid YAML: {e}", path.display()))
        })
        .filter(|value| !value.is_null())
        .collect()
}

/// The pod template of a workload, if the document is one.
fn pod_spec(document: &Value) -> Option<&Value> {
    let spec = match document["kind"].as_str()? {
        "Pod" => &document["spec"],
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            &document["spec"]["template"]["spec"]
        }
        "CronJob" => &document["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        _ => return None,
    };
    spec.as_mapping().map(|_| spec)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|items| {
            items
                .iter()
                .map(|item| match item {
                    Value::String(s) => s.clone(),
                    other => panic!("command and args must be strings, found {other:?}"),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn str_of<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is missing or not a string"))
}

/// One container that runs the binary.
struct Ours<'a> {
    /// `file: kind/name container`, for messages.
    label: String,
    pod: &'a Value,
    container: &'a Value,
    is_init: bool,
    /// Our argv, up to (not including) the `--` of the exec wrapper.
    argv: Vec<String>,
    /// What follows `--` (the app's command), if there is a `--`.
    after_dashes: Option<Vec<String>>,
}

fn is_ours(container: &Value) -> bool {
    let image_is_ours = container["image"].as_str() == Some(IMAGE);
    let command = strings(&container["command"]);
    let runs_binary = command.first().is_some_and(|program| {
        Path::new(program)
            .file_name()
            .is_some_and(|name| name == BINARY)
    });
    image_is_ours || runs_binary
}

fn find_ours<'a>(file: &Path, documents: &'a [Value]) -> Vec<Ours<'a>> {
    let mut found = Vec::new();
    for document in documents {
        let Some(pod) = pod_spec(document) else {
            continue;
        };
        let workload = format!(
            "{}/{}",
            str_of(&document["kind"], "kind"),
            str_of(&document["metadata"]["name"], "metadata.name")
        );
        for (list, is_init) in [("initContainers", true), ("containers", false)] {
            for container in pod[list].as_sequence().into_iter().flatten() {
                if !is_ours(container) {
                    continue;
                }
                let command = strings(&container["command"]);
                let args = strings(&container["args"]);
                // Without `command` the image's ENTRYPOINT (the binary) runs with `args`.
                let mut full = if command.is_empty() {
                    vec![BINARY.to_owned()]
                } else {
                    command
                };
                full.extend(args);
                let (argv, after_dashes) = match full.iter().position(|a| a == "--") {
                    Some(at) => (full[..at].to_vec(), Some(full[at + 1..].to_vec())),
                    None => (full, None),
                };
                found.push(Ours {
                    label: format!(
                        "{} {workload} {}",
                        file.file_name().unwrap().to_string_lossy(),
                        str_of(&container["name"], "container name")
                    ),
                    pod,
                    container,
                    is_init,
                    argv,
                    after_dashes,
                });
            }
        }
    }
    found
}

/// Turns the container's literal `INFISICAL_*` env values into the flags that read them, so the
/// parser checks their values too (clap would otherwise read this test's own environment).
/// Variables from `valueFrom` are only checked by name.
fn env_as_flags(ours: &Ours<'_>, subcommand: &str) -> Vec<String> {
    let cli = Cli::command();
    let sub = cli
        .find_subcommand(subcommand)
        .unwrap_or_else(|| panic!("{}: unknown mode {subcommand}", ours.label));
    let mut flags = Vec::new();
    for var in ours.container["env"].as_sequence().into_iter().flatten() {
        let name = str_of(&var["name"], "env name");
        if !name.starts_with("INFISICAL_") {
            continue;
        }
        assert!(
            CONSUMED_ENV_VARS.contains(name),
            "{}: {name} is not an environment variable the binary reads (see cli::CONSUMED_ENV_VARS)",
            ours.label
        );
        let Some(value) = var["value"].as_str() else {
            assert!(
                var["valueFrom"].is_mapping(),
                "{}: {name} has neither value nor valueFrom",
                ours.label
            );
            continue;
        };
        let arg = sub
            .get_arguments()
            .chain(cli.get_arguments())
            .find(|arg| arg.get_env().is_some_and(|env| env == name));
        let Some(arg) = arg else {
            // Read directly (client secret or token by value), not through a flag.
            continue;
        };
        let long = arg
            .get_long()
            .expect("every env-backed option has a long flag");
        if arg.get_action().takes_values() {
            flags.push(format!("--{long}={value}"));
        } else if value == "true" {
            flags.push(format!("--{long}"));
        }
    }
    flags
}

/// The volume mounted at the longest `mountPath` that contains `path`.
fn volume_for<'a>(ours: &Ours<'a>, path: &Path) -> Option<(&'a Value, bool)> {
    let mount = ours.container["volumeMounts"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter(|mount| path.starts_with(str_of(&mount["mountPath"], "mountPath")))
        .max_by_key(|mount| str_of(&mount["mountPath"], "mountPath").len())?;
    let name = str_of(&mount["name"], "volumeMount name");
    let read_only = mount["readOnly"].as_bool().unwrap_or(false);
    let volume = ours.pod["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|volume| volume["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("{}: volumeMount {name} has no volume", ours.label));
    Some((volume, read_only))
}

fn assert_readable(ours: &Ours<'_>, path: &Path, what: &str) {
    assert!(
        volume_for(ours, path).is_some(),
        "{}: {what} {} is not on any mounted volume",
        ours.label,
        path.display()
    );
}

/// An output target must be a writable mount; with --require-tmpfs an emptyDir in memory.
fn assert_output(ours: &Ours<'_>, path: &Path, require_tmpfs: bool) {
    let (volume, read_only) = volume_for(ours, path).unwrap_or_else(|| {
        panic!(
            "{}: output {} is not on a mounted volume",
            ours.label,
            path.display()
        )
    });
    assert!(
        !read_only,
        "{}: output {} is on a read-only mount",
        ours.label,
        path.display()
    );
    if require_tmpfs {
        assert_eq!(
            volume["emptyDir"]["medium"].as_str(),
            Some("Memory"),
            "{}: --require-tmpfs needs {} on an emptyDir with medium: Memory",
            ours.label,
            path.display()
        );
    }
}

fn assert_source(ours: &Ours<'_>, source: &SourceArgs) {
    for (path, what) in [
        (&source.client_id_file, "--client-id-file"),
        (&source.client_secret_file, "--client-secret-file"),
        (&source.token_file, "--token-file"),
        (&source.ca_cert, "--ca-cert"),
    ] {
        if let Some(path) = path {
            assert_readable(ours, path, what);
        }
    }
    match source.auth_method {
        Some(AuthMethod::Oidc | AuthMethod::Jwt) => {
            let jwt = source
                .jwt_file
                .clone()
                .unwrap_or_else(|| DEFAULT_SERVICE_ACCOUNT_TOKEN_PATH.into());
            assert_readable(ours, &jwt, "--jwt-file");
        }
        _ if source.identity_id.is_some() => assert_readable(
            ours,
            &source.service_account_token_file,
            "--service-account-token-file",
        ),
        _ => {}
    }
    config::parse_key_mappings(&source.keys)
        .unwrap_or_else(|e| panic!("{}: --key: {e}", ours.label));
    config::normalize_api_url(&source.api_url)
        .unwrap_or_else(|e| panic!("{}: --api-url: {e}", ours.label));
}

/// The port a probe targets, resolving a named port through the container's ports.
fn probe_port(ours: &Ours<'_>, probe: &Value) -> u64 {
    let port = &probe["httpGet"]["port"];
    if let Some(number) = port.as_u64() {
        return number;
    }
    let name = str_of(port, "probe port");
    ours.container["ports"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|p| p["name"].as_str() == Some(name))
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("{}: probe port {name} is not a declared port", ours.label))
}

fn assert_hardened(ours: &Ours<'_>) {
    let pod = &ours.pod["securityContext"];
    let context = &ours.container["securityContext"];
    let either = |field: &str| {
        if context[field].is_null() {
            &pod[field]
        } else {
            &context[field]
        }
    };
    let label = &ours.label;
    assert_eq!(
        either("runAsNonRoot").as_bool(),
        Some(true),
        "{label}: runAsNonRoot"
    );
    // The tool's own containers run as the image's user; the app that `exec` wraps keeps its
    // own (non-root) user: nothing at pod level forces one on it.
    let user = either("runAsUser").as_u64();
    if ours.after_dashes.is_some() {
        assert!(
            user.is_some_and(|uid| uid != 0),
            "{label}: runAsUser must be a non-root user"
        );
    } else {
        assert_eq!(user, Some(65532), "{label}: runAsUser");
    }
    assert!(
        pod["runAsUser"].is_null(),
        "{label}: no pod-level runAsUser: it would force the app's user"
    );
    assert_eq!(
        either("seccompProfile")["type"].as_str(),
        Some("RuntimeDefault"),
        "{label}: seccompProfile"
    );
    assert_eq!(
        context["readOnlyRootFilesystem"].as_bool(),
        Some(true),
        "{label}: readOnlyRootFilesystem"
    );
    assert_eq!(
        context["allowPrivilegeEscalation"].as_bool(),
        Some(false),
        "{label}: allowPrivilegeEscalation"
    );
    assert_eq!(
        strings(&context["capabilities"]["drop"]),
        ["ALL"],
        "{label}: capabilities.drop"
    );
    let resources = &ours.container["resources"];
    for (section, name) in [
        ("requests", "cpu"),
        ("requests", "memory"),
        ("limits", "memory"),
    ] {
        assert!(
            resources[section][name].is_string(),
            "{label}: resources.{section}.{name} is missing"
        );
    }
}

/// Checks one container; returns the mode it runs.
fn check(ours: &Ours<'_>) -> &'static str {
    let label = &ours.label;
    // Ours up to `--`, then the app's command: exec takes everything after `--` verbatim.
    let with_app = |mut argv: Vec<String>| {
        if let Some(app) = &ours.after_dashes {
            argv.push("--".into());
            argv.extend(app.iter().cloned());
        }
        argv
    };
    let argv = with_app(ours.argv.clone());
    let parsed = Cli::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("{label}: the binary would refuse {argv:?}:\n{e}"));
    let mode = match &parsed.command {
        Command::Init(_) => "init",
        Command::Sidecar(_) => "sidecar",
        Command::Exec(_) => "exec",
        Command::Check(_) => "check",
        Command::Install(_) => "install",
        Command::Migrate(_) => "migrate",
    };

    // Again with the env values as flags (before the `--`), so their values are checked too.
    let mut ours_with_env = ours.argv.clone();
    ours_with_env.extend(env_as_flags(ours, mode));
    let argv = with_app(ours_with_env);
    let parsed = Cli::try_parse_from(&argv).unwrap_or_else(|e| {
        panic!("{label}: the binary would refuse {argv:?} (flags from env included):\n{e}")
    });

    assert_hardened(ours);
    match &parsed.command {
        Command::Init(args) => {
            assert_source(ours, &args.source);
            config::output_config(&args.output).unwrap_or_else(|e| panic!("{label}: {e}"));
            for path in args.output.out_dir.iter().chain(&args.output.out_file) {
                assert_output(ours, path, args.output.require_tmpfs);
            }
        }
        Command::Sidecar(args) => {
            assert_source(ours, &args.source);
            config::output_config(&args.output).unwrap_or_else(|e| panic!("{label}: {e}"));
            for path in args.output.out_dir.iter().chain(&args.output.out_file) {
                assert_output(ours, path, args.output.require_tmpfs);
            }
            assert!(
                ours.is_init,
                "{label}: run the sidecar as a native sidecar (an init container)"
            );
            assert_eq!(
                ours.container["restartPolicy"].as_str(),
                Some("Always"),
                "{label}: a native sidecar needs restartPolicy: Always"
            );
            let listen = args
                .listen
                .as_deref()
                .unwrap_or_else(|| panic!("{label}: probes need --listen"));
            let addr: std::net::SocketAddr = listen
                .parse()
                .unwrap_or_else(|e| panic!("{label}: --listen {listen}: {e}"));
            assert!(
                !addr.ip().is_loopback(),
                "{label}: the kubelet probes the pod IP, so --listen must not be loopback"
            );
            let startup = &ours.container["startupProbe"];
            assert_eq!(
                startup["httpGet"]["path"].as_str(),
                Some("/readyz"),
                "{label}: startupProbe on /readyz"
            );
            for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
                let probe = &ours.container[probe];
                if probe.is_mapping() {
                    assert_eq!(
                        probe_port(ours, probe),
                        u64::from(addr.port()),
                        "{label}: probe port vs --listen"
                    );
                }
            }
            if let Some(pid_file) = &args.on_change_pid_file {
                assert_eq!(
                    ours.pod["shareProcessNamespace"].as_bool(),
                    Some(true),
                    "{label}: --on-change-pid-file needs shareProcessNamespace: true"
                );
                assert_readable(ours, pid_file, "--on-change-pid-file");
                assert!(
                    args.on_change_signal.is_some(),
                    "{label}: --on-change-pid-file without --on-change-signal"
                );
            }
        }
        Command::Exec(args) => {
            assert_source(ours, &args.source);
            assert!(!ours.is_init, "{label}: exec wraps the app container");
            assert!(
                ours.after_dashes
                    .as_ref()
                    .is_some_and(|app| !app.is_empty()),
                "{label}: exec needs the app's command after --"
            );
            // The binary comes from a shared volume filled by `install`.
            let program = Path::new(&ours.argv[0]);
            assert!(
                program.is_absolute(),
                "{label}: run the installed copy by its absolute path"
            );
            assert_readable(ours, program, "the installed binary");
        }
        Command::Install(args) => {
            assert!(ours.is_init, "{label}: install runs as an init container");
            assert_output(ours, &args.to, false);
        }
        Command::Check(args) => assert_source(ours, &args.source),
        Command::Migrate(_) => panic!("{label}: migrate is not run in a pod"),
    }
    mode
}

#[test]
fn every_example_container_is_accepted_by_the_binary() {
    let files = manifests();
    assert_eq!(
        files.len(),
        5,
        "expected the five examples, found {files:?}"
    );
    let mut modes = Vec::new();
    for file in &files {
        let documents = documents(file);
        let ours = find_ours(file, &documents);
        assert!(
            !ours.is_empty(),
            "{}: no container runs {BINARY}",
            file.display()
        );
        for container in &ours {
            modes.push(check(container));
        }
    }
    assert!(
        modes.len() >= 5,
        "found only {} containers running the binary: {modes:?}",
        modes.len()
    );
    for mode in ["init", "sidecar", "exec", "install"] {
        assert!(modes.contains(&mode), "no example runs {mode}: {modes:?}");
    }
}

#[test]
fn the_exec_wrapper_runs_the_copy_that_install_wrote() {
    let file = examples_dir().join("exec-wrapper.yaml");
    let documents = documents(&file);
    let ours = find_ours(&file, &documents);
    let installed: Vec<PathBuf> = ours
        .iter()
        .filter_map(|o| match Cli::try_parse_from(&o.argv).ok()?.command {
            Command::Install(args) => Some(args.to),
            _ => None,
        })
        .collect();
    let wrappers: Vec<&Ours<'_>> = ours.iter().filter(|o| o.after_dashes.is_some()).collect();
    assert_eq!(installed.len(), 1, "one install init container");
    assert_eq!(wrappers.len(), 1, "one wrapped app container");
    assert_eq!(
        Path::new(&wrappers[0].argv[0]),
        installed[0],
        "the app runs what install wrote"
    );
}

#[test]
fn every_file_is_valid_yaml_with_kinds_and_names() {
    for file in manifests().into_iter().chain([credentials_file()]) {
        for document in documents(&file) {
            assert!(
                document["apiVersion"].is_string(),
                "{}: apiVersion missing",
                file.display()
            );
            assert!(
                document["kind"].is_string(),
                "{}: kind missing",
                file.display()
            );
            assert!(
                document["metadata"]["name"].is_string(),
                "{}: metadata.name missing",
                file.display()
            );
        }
    }
}

/// A Secret a workload refers to, and the key it needs (`None`: the whole Secret).
#[derive(Debug)]
struct SecretRef {
    /// `file: kind/name where`, for messages.
    label: String,
    name: String,
    key: Option<String>,
}

fn secret_refs(file: &Path, document: &Value) -> Vec<SecretRef> {
    let Some(pod) = pod_spec(document) else {
        return Vec::new();
    };
    let workload = format!(
        "{} {}/{}",
        file.file_name().unwrap().to_string_lossy(),
        str_of(&document["kind"], "kind"),
        str_of(&document["metadata"]["name"], "metadata.name")
    );
    let mut refs = Vec::new();
    let mut add = |what: String, name: &Value, key: Option<&Value>| {
        refs.push(SecretRef {
            label: format!("{workload} {what}"),
            name: str_of(name, "Secret name").to_owned(),
            key: key.map(|key| str_of(key, "Secret key").to_owned()),
        });
    };
    // `items` of a secret volume name the keys it needs; without them, all keys are mounted.
    let keys_of = |items: &Value| -> Vec<Value> {
        items
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|item| item["key"].clone())
            .collect()
    };
    for volume in pod["volumes"].as_sequence().into_iter().flatten() {
        let what = format!("volume {}", str_of(&volume["name"], "volume name"));
        let secret = &volume["secret"];
        if secret.is_mapping() {
            let keys = keys_of(&secret["items"]);
            if keys.is_empty() {
                add(what.clone(), &secret["secretName"], None);
            }
            for key in &keys {
                add(what.clone(), &secret["secretName"], Some(key));
            }
        }
        for source in volume["projected"]["sources"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let secret = &source["secret"];
            if secret.is_mapping() {
                let keys = keys_of(&secret["items"]);
                if keys.is_empty() {
                    add(what.clone(), &secret["name"], None);
                }
                for key in &keys {
                    add(what.clone(), &secret["name"], Some(key));
                }
            }
        }
    }
    for list in ["initContainers", "containers"] {
        for container in pod[list].as_sequence().into_iter().flatten() {
            let container_name = str_of(&container["name"], "container name");
            for var in container["env"].as_sequence().into_iter().flatten() {
                let reference = &var["valueFrom"]["secretKeyRef"];
                if reference.is_mapping() {
                    let what = format!(
                        "container {container_name} env {}",
                        str_of(&var["name"], "env name")
                    );
                    add(what, &reference["name"], Some(&reference["key"]));
                }
            }
            for source in container["envFrom"].as_sequence().into_iter().flatten() {
                let reference = &source["secretRef"];
                if reference.is_mapping() {
                    add(
                        format!("container {container_name} envFrom"),
                        &reference["name"],
                        None,
                    );
                }
            }
        }
    }
    for pull in pod["imagePullSecrets"].as_sequence().into_iter().flatten() {
        add("imagePullSecrets".to_owned(), &pull["name"], None);
    }
    refs
}

#[test]
fn no_workload_manifest_contains_a_secret() {
    // Applying an example after creating the real Secret must not overwrite it with placeholders.
    for file in manifests() {
        for document in documents(&file) {
            assert_ne!(
                document["kind"].as_str(),
                Some("Secret"),
                "{}: Secret {} belongs in {CREDENTIALS}, not in a workload manifest",
                file.display(),
                document["metadata"]["name"].as_str().unwrap_or("?")
            );
        }
    }
}

#[test]
fn every_secret_a_workload_refers_to_is_in_the_credentials_file() {
    let credentials = documents(&credentials_file());
    let mut secrets = std::collections::BTreeMap::new();
    for document in &credentials {
        assert_eq!(
            document["kind"].as_str(),
            Some("Secret"),
            "{CREDENTIALS} holds only Secrets"
        );
        let name = str_of(&document["metadata"]["name"], "metadata.name");
        let keys: Vec<String> = ["stringData", "data"]
            .iter()
            .flat_map(|field| document[*field].as_mapping().into_iter().flatten())
            .map(|(key, _)| str_of(key, "Secret key").to_owned())
            .collect();
        assert!(
            secrets.insert(name.to_owned(), keys).is_none(),
            "{CREDENTIALS}: Secret {name} twice"
        );
    }

    let mut refs = Vec::new();
    for file in manifests() {
        for document in documents(&file) {
            refs.extend(secret_refs(&file, &document));
        }
    }
    assert!(
        refs.iter().any(|r| r.key.is_some()) && refs.iter().any(|r| r.key.is_none()),
        "the examples refer to Secrets both by key and whole; found {refs:?}"
    );
    for reference in &refs {
        let keys = secrets.get(&reference.name).unwrap_or_else(|| {
            panic!(
                "{}: Secret {} is not in {CREDENTIALS} (found {:?})",
                reference.label,
                reference.name,
                secrets.keys().collect::<Vec<_>>()
            )
        });
        if let Some(key) = &reference.key {
            assert!(
                keys.contains(key),
                "{}: Secret {} has no key {key} in {CREDENTIALS} (it has {keys:?})",
                reference.label,
                reference.name
            );
        }
    }
    for name in secrets.keys() {
        assert!(
            refs.iter().any(|r| &r.name == name),
            "{CREDENTIALS}: Secret {name} is used by no example"
        );
    }
}

#[test]
fn the_credentials_file_holds_no_made_up_value() {
    // An unedited copy must fail before any login (the binary refuses an empty credential):
    // a made-up value would be a failed login, and repeated ones can lock the identity.
    for document in documents(&credentials_file()) {
        for (key, value) in document["stringData"].as_mapping().into_iter().flatten() {
            assert_eq!(
                value.as_str(),
                Some(""),
                "{CREDENTIALS}: {} must be left empty for the user to fill in",
                str_of(key, "Secret key")
            );
        }
        assert!(
            document["data"].is_null(),
            "{CREDENTIALS}: use stringData, which users can edit as text"
        );
    }
}

#[test]
fn a_wrong_flag_is_caught() {
    // The check above can fail: an unknown flag or a bad value is refused by the same parser.
    assert!(Cli::try_parse_from([BINARY, "init", "--out-directory=/x", "--env=dev"]).is_err());
    assert!(Cli::try_parse_from([BINARY, "sidecar", "--interval=soon", "--env=dev"]).is_err());
    assert!(
        Cli::try_parse_from([BINARY, "exec", "--env=dev"]).is_err(),
        "exec needs a command"
    );
    assert!(!CONSUMED_ENV_VARS.contains("INFISICAL_CLIENT_SECRET"));
}
