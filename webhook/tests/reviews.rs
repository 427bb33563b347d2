//! Real AdmissionReview documents, as the API server sends them for a pod CREATE, for every
//! mode and every login method. For each: the JSONPatch applies cleanly, the patched pod is a
//! valid Pod for Kubernetes 1.30 and 1.37 (`kubernetes-validate --strict`), every injected
//! container's command line is accepted by the per-pod binary's own parser and finds the files
//! its flags name on mounted volumes, the tool's containers are hardened, and a second review of
//! the patched pod changes nothing. Bad annotations are denied naming the annotation, and a pod
//! without the label is never changed.

use std::path::Path;
use std::process::Command as Process;

use base64::Engine as _;
use clap::Parser;
use fake_infisical::prerequisite;
use infisical_materializer::cli::{AuthMethod, Cli, Command, SourceArgs};
use infisical_materializer_webhook::admission::{self, Outcome, Settings};
use infisical_materializer_webhook::layout;
use serde_json::{json, Value};

const PREFIX: &str = "infisical-materializer.io/";
const IMAGE: &str = "registry.example.com/infisical-materializer:0.1.0";
const IDENTITY: &str = "00000000-0000-4000-8000-00000000abcd";

const MODES: [&str; 4] = ["init", "sidecar", "init-sidecar", "exec"];
const METHODS: [&str; 9] = [
    "universal-auth",
    "kubernetes",
    "token",
    "oidc",
    "jwt",
    "aws-iam",
    "gcp-id-token",
    "gcp-iam",
    "azure",
];

fn settings() -> Settings {
    Settings {
        prefix: PREFIX.into(),
        image: IMAGE.into(),
    }
}

/// A pod as a ReplicaSet creates it from a Deployment's template.
fn pod(annotations: &[(&str, &str)]) -> Value {
    let annotations: serde_json::Map<String, Value> = annotations
        .iter()
        .map(|(key, value)| (format!("{PREFIX}{key}"), json!(value)))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "orders-api-7d9c5b6f8-",
            "namespace": "shop",
            "labels": {
                "app.kubernetes.io/name": "orders-api",
                "pod-template-hash": "7d9c5b6f8",
                "infisical-materializer.io/inject": "true",
            },
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "orders-api-7d9c5b6f8",
                "uid": "6a4a1c4e-1111-4c1e-9d7b-0a1b2c3d4e5f",
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "serviceAccountName": "orders-api",
            "containers": [
                {
                    "name": "app",
                    "image": "registry.example.com/orders-api:1.4.2",
                    "command": ["/app/server"],
                    "args": ["--port", "8080"],
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "securityContext": {"runAsUser": 1000, "runAsNonRoot": true},
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                    "volumeMounts": [{
                        "name": "kube-api-access-x7k2p",
                        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                        "readOnly": true,
                    }],
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                },
                {
                    "name": "metrics-proxy",
                    "image": "registry.example.com/metrics-proxy:2.0",
                    "command": ["/proxy"],
                },
            ],
            "volumes": [{
                "name": "kube-api-access-x7k2p",
                "projected": {
                    "defaultMode": 420,
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    ],
                },
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
        },
    })
}

/// The AdmissionReview the API server sends (admission.k8s.io/v1).
fn review_of(pod: &Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "uid": "2f4b6a8c-0000-4000-8000-000000000001",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
            },
            "object": pod,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    })
}

/// Sends the pod through the webhook; returns the response part.
fn send(pod: &Value) -> (Value, Outcome) {
    let body = serde_json::to_vec(&review_of(pod)).unwrap();
    let answer = admission::review(&settings(), &body).expect("a valid review");
    assert_eq!(answer.review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer.review["kind"], "AdmissionReview");
    let response = answer.review["response"].clone();
    assert_eq!(response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    (response, answer.outcome)
}

/// The patch of an allowed response, applied: the pod as it will be created.
fn patched(pod: &Value, response: &Value) -> Value {
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(response["patchType"], "JSONPatch", "{response}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().expect("a base64 patch"))
        .expect("base64");
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("a JSONPatch document");
    let mut pod = pod.clone();
    json_patch::patch(&mut pod, &patch).unwrap_or_else(|e| panic!("the patch does not apply: {e}"));
    pod
}

fn annotations_for(mode: &str, method: &str) -> Vec<(&'static str, String)> {
    let mut annotations = vec![
        ("mode", mode.to_owned()),
        ("project-slug", "orders".to_owned()),
        ("env", "prod".to_owned()),
        ("path", "/backend".to_owned()),
        ("auth-method", method.to_owned()),
        ("api-url", "https://infisical.example.com".to_owned()),
    ];
    if matches!(method, "universal-auth" | "token" | "gcp-iam") {
        annotations.push(("credentials-secret", "orders-infisical".to_owned()));
    }
    if !matches!(method, "universal-auth" | "token") {
        annotations.push(("identity-id", IDENTITY.to_owned()));
    }
    if matches!(mode, "sidecar" | "init-sidecar") {
        annotations.push(("interval", "1m".to_owned()));
    }
    annotations
}

fn owned<'a>(annotations: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    annotations.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A container of the patched pod that runs the per-pod binary, and its argv (ours only, up
/// to `--`).
struct Ours<'a> {
    name: String,
    container: &'a Value,
    is_init: bool,
    argv: Vec<String>,
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_str().expect("strings").to_owned())
        .collect()
}

fn ours(pod: &Value) -> Vec<Ours<'_>> {
    let mut found = Vec::new();
    for (list, is_init) in [("initContainers", true), ("containers", false)] {
        for container in pod["spec"][list].as_array().into_iter().flatten() {
            let command = strings(&container["command"]);
            let mut argv = if container["image"] == IMAGE {
                assert!(command.is_empty(), "the image's entrypoint runs the tool");
                vec!["infisical-materializer".to_owned()]
            } else if command.first().map(String::as_str) == Some(layout::BIN_PATH) {
                command
            } else {
                continue;
            };
            argv.extend(strings(&container["args"]));
            found.push(Ours {
                name: container["name"].as_str().unwrap().to_owned(),
                container,
                is_init,
                argv,
            });
        }
    }
    found
}

/// The volume behind a path in this container, and whether it is mounted read-only.
fn volume_for<'a>(pod: &'a Value, container: &Value, path: &Path) -> Option<(&'a Value, bool)> {
    let mount = container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| path.starts_with(m["mountPath"].as_str().unwrap()))
        .max_by_key(|m| m["mountPath"].as_str().unwrap().len())?;
    let volume = pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == mount["name"])
        .unwrap_or_else(|| panic!("mount {} has no volume", mount["name"]));
    Some((volume, mount["readOnly"] == true))
}

fn assert_readable(pod: &Value, ours: &Ours<'_>, path: Option<&Path>, what: &str) {
    if let Some(path) = path {
        assert!(
            volume_for(pod, ours.container, path).is_some(),
            "{}: {what} {} is on no mounted volume",
            ours.name,
            path.display()
        );
    }
}

fn check_source(pod: &Value, ours: &Ours<'_>, source: &SourceArgs, method: Option<&str>) {
    assert_readable(
        pod,
        ours,
        source.client_id_file.as_deref(),
        "--client-id-file",
    );
    assert_readable(
        pod,
        ours,
        source.client_secret_file.as_deref(),
        "--client-secret-file",
    );
    assert_readable(pod, ours, source.token_file.as_deref(), "--token-file");
    assert_readable(pod, ours, source.ca_cert.as_deref(), "--ca-cert");
    assert_readable(pod, ours, source.jwt_file.as_deref(), "--jwt-file");
    assert_readable(
        pod,
        ours,
        source.gcp_service_account_key_file.as_deref(),
        "--gcp-service-account-key-file",
    );
    let Some(method) = method else { return };
    let parsed = source.auth_method.expect("--auth-method is always given");
    let expected = match method {
        "universal-auth" => AuthMethod::UniversalAuth,
        "kubernetes" => AuthMethod::Kubernetes,
        "token" => AuthMethod::Token,
        "oidc" => AuthMethod::Oidc,
        "jwt" => AuthMethod::Jwt,
        "aws-iam" => AuthMethod::AwsIam,
        "gcp-id-token" => AuthMethod::GcpIdToken,
        "gcp-iam" => AuthMethod::GcpIam,
        "azure" => AuthMethod::Azure,
        other => panic!("unknown method {other}"),
    };
    assert_eq!(parsed, expected, "{}", ours.name);
    match parsed {
        AuthMethod::UniversalAuth => {
            assert!(source.client_id_file.is_some() && source.client_secret_file.is_some())
        }
        AuthMethod::Token => assert!(source.token_file.is_some()),
        AuthMethod::GcpIam => assert!(source.gcp_service_account_key_file.is_some()),
        AuthMethod::Kubernetes => {
            let token = &source.service_account_token_file;
            assert_readable(pod, ours, Some(token), "--service-account-token-file");
            let (volume, _) = volume_for(pod, ours.container, token).unwrap();
            assert_eq!(
                volume["projected"]["sources"][0]["serviceAccountToken"]["audience"], "infisical",
                "{}: the token is bound to the audience",
                ours.name
            );
        }
        AuthMethod::Oidc | AuthMethod::Jwt => {
            let jwt = source.jwt_file.as_deref().expect("--jwt-file");
            let (volume, _) = volume_for(pod, ours.container, jwt).unwrap();
            assert_eq!(
                volume["projected"]["sources"][0]["serviceAccountToken"]["audience"],
                "infisical"
            );
        }
        _ => {}
    }
    if parsed.needs_identity_for_test() {
        assert_eq!(source.identity_id.as_deref(), Some(IDENTITY));
    }
}

trait NeedsIdentity {
    fn needs_identity_for_test(self) -> bool;
}

impl NeedsIdentity for AuthMethod {
    fn needs_identity_for_test(self) -> bool {
        !matches!(self, AuthMethod::UniversalAuth | AuthMethod::Token)
    }
}

fn assert_hardened(ours: &Ours<'_>) {
    let context = &ours.container["securityContext"];
    let name = &ours.name;
    if ours.argv[0] == layout::BIN_PATH {
        // The wrapped app keeps its own security context.
        return;
    }
    assert_eq!(context["runAsNonRoot"], true, "{name}");
    assert_eq!(context["runAsUser"], 65532, "{name}");
    assert_eq!(context["runAsGroup"], 65532, "{name}");
    assert_eq!(context["readOnlyRootFilesystem"], true, "{name}");
    assert_eq!(context["allowPrivilegeEscalation"], false, "{name}");
    assert_eq!(context["capabilities"]["drop"], json!(["ALL"]), "{name}");
    assert_eq!(
        context["seccompProfile"]["type"], "RuntimeDefault",
        "{name}"
    );
    let resources = &ours.container["resources"];
    assert_eq!(resources["requests"]["cpu"], "5m", "{name}");
    assert_eq!(resources["requests"]["memory"], "8Mi", "{name}");
    assert_eq!(resources["limits"]["memory"], "32Mi", "{name}");
}

/// Checks one patched pod; returns the modes of the per-pod binary found in it.
fn check_pod(pod: &Value, mode: &str, method: Option<&str>) -> Vec<&'static str> {
    assert!(
        pod["spec"]["securityContext"]["runAsUser"].is_null(),
        "no pod-level runAsUser: it would force the app's user"
    );
    assert_eq!(
        pod["metadata"]["annotations"][format!("{PREFIX}status")],
        "injected"
    );
    let found = ours(pod);
    assert!(!found.is_empty(), "no container runs the tool:\n{pod:#}");
    let mut modes = Vec::new();
    for ours in &found {
        assert_hardened(ours);
        let parsed = Cli::try_parse_from(&ours.argv).unwrap_or_else(|e| {
            panic!(
                "{}: the binary would refuse {:?}:\n{e}",
                ours.name, ours.argv
            )
        });
        match &parsed.command {
            Command::Init(args) => {
                modes.push("init");
                assert!(ours.is_init);
                check_source(pod, ours, &args.source, method);
                let out = args.output.out_dir.as_deref().expect("--out-dir");
                let (volume, read_only) = volume_for(pod, ours.container, out).unwrap();
                assert!(!read_only && volume["emptyDir"]["medium"] == "Memory");
                assert!(args.output.require_tmpfs);
            }
            Command::Sidecar(args) => {
                modes.push("sidecar");
                check_source(pod, ours, &args.source, method);
                let out = args.output.out_dir.as_deref().expect("--out-dir");
                let (volume, read_only) = volume_for(pod, ours.container, out).unwrap();
                assert!(!read_only && volume["emptyDir"]["medium"] == "Memory");
                let listen: std::net::SocketAddr = args.listen.as_deref().unwrap().parse().unwrap();
                assert!(
                    listen.ip().is_unspecified(),
                    "the kubelet probes the pod IP"
                );
                let probe = if ours.is_init {
                    assert_eq!(
                        ours.container["restartPolicy"], "Always",
                        "a native sidecar"
                    );
                    &ours.container["startupProbe"]
                } else {
                    &ours.container["readinessProbe"]
                };
                assert_eq!(probe["httpGet"]["path"], "/readyz");
                let port = &ours.container["ports"][0];
                assert_eq!(probe["httpGet"]["port"], port["name"]);
                assert_eq!(port["containerPort"], listen.port());
                assert_eq!(args.refresh.interval.as_secs(), 60);
            }
            Command::Exec(args) => {
                modes.push("exec");
                assert!(!ours.is_init);
                check_source(pod, ours, &args.source, method);
                let original: &[&str] = match ours.name.as_str() {
                    "app" => &["/app/server", "--port", "8080"],
                    _ => &["/proxy"],
                };
                assert_eq!(args.command, original, "the original command and args");
                assert!(ours.container["args"].is_null(), "the args moved after --");
                assert_readable(pod, ours, Some(Path::new(layout::BIN_PATH)), "the binary");
            }
            Command::Install(args) => {
                modes.push("install");
                assert!(ours.is_init);
                assert_eq!(args.to, Path::new(layout::BIN_PATH));
                let (_, read_only) = volume_for(pod, ours.container, &args.to).unwrap();
                assert!(!read_only);
            }
            Command::Check(_) | Command::Migrate(_) => {
                panic!("only init, sidecar, exec and install are injected")
            }
        }
    }
    // The app containers see the files (or run the wrapper).
    for app in pod["spec"]["containers"].as_array().unwrap() {
        if app["image"] == IMAGE {
            continue;
        }
        let name = app["name"].as_str().unwrap();
        if mode == "exec" {
            assert_eq!(app["command"][0], layout::BIN_PATH, "{name} is wrapped");
        } else {
            let (volume, read_only) =
                volume_for(pod, app, Path::new(&format!("{}/KEY", layout_out_dir())))
                    .unwrap_or_else(|| panic!("{name}: the secrets are not mounted"));
            assert_eq!(volume["name"], layout::SECRETS_VOLUME);
            assert!(read_only, "{name}: the app reads, only the tool writes");
        }
    }
    let expected: &[&str] = match mode {
        "init" => &["init"],
        "sidecar" => &["sidecar"],
        "init-sidecar" => &["init", "sidecar"],
        "exec" => &["install", "exec", "exec"],
        other => panic!("{other}"),
    };
    let mut sorted = modes.clone();
    sorted.sort_unstable();
    let mut want = expected.to_vec();
    want.sort_unstable();
    assert_eq!(sorted, want, "containers running the tool in mode {mode}");
    modes
}

fn layout_out_dir() -> &'static str {
    infisical_materializer_webhook::annotations::DEFAULT_OUT_DIR
}

/// A second review of the patched pod returns no patch.
fn assert_idempotent(pod: &Value) {
    let (response, outcome) = send(pod);
    assert_eq!(response["allowed"], true);
    assert!(
        response["patch"].is_null(),
        "second review patched again: {response}"
    );
    assert_eq!(outcome, Outcome::Skipped);
}

/// Runs `kubernetes-validate --strict` on the files for 1.30 and 1.37.
fn kubernetes_validate(files: &[std::path::PathBuf]) {
    let probe = Process::new("python3")
        .args(["-m", "kubernetes_validate", "--version"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return prerequisite::missing(
            "python3 -m kubernetes_validate is not installed (pip install kubernetes-validate==1.37.0)",
        );
    }
    for version in ["1.30.0", "1.37.0"] {
        let output = Process::new("python3")
            .args([
                "-m",
                "kubernetes_validate",
                "--strict",
                "--quiet",
                "-k",
                version,
            ])
            .args(files)
            .output()
            .expect("run kubernetes-validate");
        assert!(
            output.status.success(),
            "kubernetes-validate --strict -k {version} refused a patched pod:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn every_mode_and_login_method_patches_into_a_valid_pod_the_binary_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for mode in MODES {
        for method in METHODS {
            let annotations = annotations_for(mode, method);
            let pod = pod(&owned(&annotations));
            let (response, outcome) = send(&pod);
            assert_eq!(outcome, Outcome::Injected, "{mode}/{method}: {response}");
            let patched = patched(&pod, &response);
            check_pod(&patched, mode, Some(method));
            assert_idempotent(&patched);
            let file = dir.path().join(format!("{mode}-{method}.yaml"));
            std::fs::write(&file, serde_json::to_vec_pretty(&patched).unwrap()).unwrap();
            files.push(file);
        }
    }
    kubernetes_validate(&files);
}

#[test]
fn a_config_map_a_ca_and_a_reload_signal_are_wired() {
    let pod = pod(&[
        ("mode", "sidecar"),
        ("config-map", "orders-infisical-config"),
        ("ca-cert-config-map", "corp-ca"),
        ("auth-method", "oidc"),
        ("identity-id", IDENTITY),
        ("audience", "sts.example.com"),
        ("on-change-signal", "HUP"),
        ("containers", "app"),
        ("memory-limit", "64Mi"),
        (
            "image",
            "registry.example.com/tools/infisical-materializer:0.2.0",
        ),
    ]);
    let (response, _) = send(&pod);
    let patched = patched(&pod, &response);
    let sidecar = &patched["spec"]["initContainers"][0];
    assert_eq!(
        sidecar["image"],
        "registry.example.com/tools/infisical-materializer:0.2.0"
    );
    assert_eq!(sidecar["resources"]["limits"]["memory"], "64Mi");
    let mut argv = vec!["infisical-materializer".to_owned()];
    argv.extend(strings(&sidecar["args"]));
    let Command::Sidecar(args) = Cli::try_parse_from(&argv).unwrap().command else {
        panic!("a sidecar: {argv:?}")
    };
    let config = Cli::try_parse_from(&argv)
        .unwrap()
        .config
        .expect("--config");
    let (volume, read_only) = volume_for(&patched, sidecar, &config).unwrap();
    assert_eq!(volume["configMap"]["name"], "orders-infisical-config");
    assert!(read_only);
    let ca = args.source.ca_cert.as_deref().expect("--ca-cert");
    let (volume, _) = volume_for(&patched, sidecar, ca).unwrap();
    assert_eq!(volume["configMap"]["name"], "corp-ca");
    let jwt = args.source.jwt_file.as_deref().expect("--jwt-file");
    let (volume, _) = volume_for(&patched, sidecar, jwt).unwrap();
    assert_eq!(
        volume["projected"]["sources"][0]["serviceAccountToken"]["audience"],
        "sts.example.com"
    );
    // The signal reaches the app through a shared process namespace and a pid file the app
    // writes into a volume both see.
    assert_eq!(args.on_change_signal.as_deref(), Some("HUP"));
    assert_eq!(patched["spec"]["shareProcessNamespace"], true);
    let pid = args.on_change_pid_file.as_deref().unwrap();
    let app = &patched["spec"]["containers"][0];
    let (volume, read_only) = volume_for(&patched, app, pid).unwrap();
    assert_eq!(volume["emptyDir"]["medium"], "Memory");
    assert!(!read_only, "the app writes its pid");
    // Only the listed container gets the files.
    let other = &patched["spec"]["containers"][1];
    assert!(
        other["volumeMounts"].is_null(),
        "metrics-proxy was not listed: {other}"
    );
    assert_idempotent(&patched);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pod.yaml");
    std::fs::write(&file, serde_json::to_vec_pretty(&patched).unwrap()).unwrap();
    kubernetes_validate(&[file]);
}

#[test]
fn existing_init_containers_and_volumes_are_kept_after_ours() {
    let mut pod = pod(&owned(&annotations_for("init", "kubernetes")));
    pod["spec"]["initContainers"] = json!([{
        "name": "migrate",
        "image": "registry.example.com/orders-migrate:1.4.2",
        "command": ["/migrate"],
    }]);
    let (response, _) = send(&pod);
    let patched = patched(&pod, &response);
    let names: Vec<&str> = patched["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [layout::INIT_CONTAINER, "migrate"]);
    assert_eq!(
        patched["spec"]["volumes"][0]["name"],
        "kube-api-access-x7k2p"
    );
    check_pod(&patched, "init", Some("kubernetes"));
}

#[test]
fn exec_refuses_a_container_without_a_command() {
    let mut pod = pod(&owned(&annotations_for("exec", "kubernetes")));
    pod["spec"]["containers"][1]
        .as_object_mut()
        .unwrap()
        .remove("command");
    let (response, outcome) = send(&pod);
    assert_eq!(outcome, Outcome::Denied);
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 400);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("metrics-proxy") && message.contains("set command"),
        "{message}"
    );
    assert!(message.contains(&format!("{PREFIX}mode")), "{message}");
    assert!(response["patch"].is_null());
}

#[test]
fn each_bad_annotation_is_denied_naming_it() {
    let base = || {
        owned(&annotations_for("sidecar", "universal-auth"))
            .into_iter()
            .map(|(k, v)| (k, v.to_owned()))
            .collect::<Vec<_>>()
    };
    let cases: &[(&str, &str)] = &[
        ("mode", "daemon"),
        ("mode", ""),
        ("config-map", "Not_A_Name"),
        ("project-id", "both-given"),
        ("env", "prod env"),
        ("path", "backend"),
        ("auth-method", "ldap"),
        ("identity-id", "not-a-uuid"),
        ("credentials-secret", "UPPER"),
        ("api-url", "infisical.example.com"),
        ("ca-cert-config-map", "bad/name"),
        ("audience", "infisical"),
        ("out-dir", "relative/dir"),
        ("out-dir", "/var/run/secrets/kubernetes.io"),
        ("containers", "no-such-container"),
        ("containers", "App,"),
        ("interval", "soon"),
        ("interval", "1ms"),
        ("on-change-signal", "RELOAD"),
        ("image", "has space:1"),
        ("cpu-request", "lots"),
        ("memory-request", "8MB"),
        ("memory-limit", "-1"),
        ("cpu-limit", "x"),
        ("status", "pending"),
        ("modee", "sidecar"),
    ];
    for (key, value) in cases {
        let mut annotations = base();
        annotations.retain(|(k, _)| k != key);
        annotations.push((key, (*value).to_owned()));
        let pod = pod(&owned(&annotations));
        let (response, outcome) = send(&pod);
        let name = format!("{PREFIX}{key}");
        assert_eq!(
            outcome,
            Outcome::Denied,
            "{name}={value:?} was accepted: {response}"
        );
        assert_eq!(response["allowed"], false);
        assert_eq!(response["status"]["code"], 400);
        assert!(
            response["patch"].is_null(),
            "denied and patched: {response}"
        );
        let message = response["status"]["message"].as_str().unwrap();
        assert!(
            message.contains(&name),
            "{name}={value:?}: the message does not name it: {message}"
        );
        assert!(!message.contains('\n'), "one line: {message}");
    }

    // Annotations that make sense alone but not in this mode, or not together.
    let contextual: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("mode", "init"),
                ("interval", "1m"),
                ("credentials-secret", "x"),
            ],
            "interval",
        ),
        (
            &[
                ("mode", "exec"),
                ("on-change-signal", "HUP"),
                ("credentials-secret", "x"),
            ],
            "on-change-signal",
        ),
        (
            &[
                ("mode", "exec"),
                ("out-dir", "/run/app"),
                ("credentials-secret", "x"),
            ],
            "out-dir",
        ),
        (&[("auth-method", "kubernetes")], "identity-id"),
        (&[("auth-method", "token")], "credentials-secret"),
        (
            &[
                ("auth-method", "aws-iam"),
                ("identity-id", IDENTITY),
                ("credentials-secret", "x"),
            ],
            "credentials-secret",
        ),
        (
            &[
                ("auth-method", "universal-auth"),
                ("credentials-secret", "x"),
                ("identity-id", IDENTITY),
            ],
            "identity-id",
        ),
        (
            &[
                ("auth-method", "aws-iam"),
                ("identity-id", IDENTITY),
                ("audience", "sts"),
            ],
            "audience",
        ),
        (
            &[("credentials-secret", "x"), ("project-slug", "orders")],
            "env",
        ),
        (
            &[("env", "prod"), ("credentials-secret", "x")],
            "project-slug",
        ),
        (
            &[("env", "prod"), ("project-slug", "orders")],
            "auth-method",
        ),
    ];
    for (annotations, named) in contextual {
        let mut all: Vec<(&str, &str)> = annotations.to_vec();
        if !annotations
            .iter()
            .any(|(k, _)| *k == "env" || *k == "project-slug")
            && *named != "env"
        {
            all.extend([("env", "prod"), ("project-slug", "orders")]);
        }
        let pod = pod(&all);
        let (response, outcome) = send(&pod);
        assert_eq!(
            outcome,
            Outcome::Denied,
            "{annotations:?} accepted: {response}"
        );
        let message = response["status"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{PREFIX}{named}")),
            "{annotations:?}: {message}"
        );
    }
}

#[test]
fn a_pod_without_the_label_is_never_changed() {
    for labels in [
        json!({"app.kubernetes.io/name": "orders-api"}),
        json!(null),
        json!({"infisical-materializer.io/inject": "false"}),
    ] {
        // Even with annotations, bad ones included: the label is what asks for injection.
        let mut pod = pod(&[("mode", "not-a-mode"), ("env", "prod")]);
        pod["metadata"]["labels"] = labels;
        let (response, outcome) = send(&pod);
        assert_eq!(outcome, Outcome::Skipped);
        assert_eq!(response["allowed"], true);
        assert!(
            response["patch"].is_null() && response["patchType"].is_null(),
            "{response}"
        );
    }
}

#[test]
fn another_prefix_moves_the_label_and_the_annotations() {
    let settings = Settings {
        prefix: "secrets.example.com/".into(),
        image: IMAGE.into(),
    };
    let mut pod = pod(&[]);
    pod["metadata"]["labels"] = json!({"secrets.example.com/inject": "true"});
    pod["metadata"]["annotations"] = json!({
        "secrets.example.com/env": "prod",
        "secrets.example.com/project-slug": "orders",
        "secrets.example.com/identity-id": IDENTITY,
        // The default prefix is not ours any more: ignored.
        "infisical-materializer.io/mode": "nonsense",
    });
    let body = serde_json::to_vec(&review_of(&pod)).unwrap();
    let answer = admission::review(&settings, &body).unwrap();
    assert_eq!(answer.outcome, Outcome::Injected, "{}", answer.review);
    let patched = patched(&pod, &answer.review["response"]);
    assert_eq!(
        patched["metadata"]["annotations"]["secrets.example.com/status"],
        "injected"
    );
}

#[test]
fn other_requests_are_allowed_unchanged_and_garbage_is_refused() {
    let mut review = review_of(&pod(&owned(&annotations_for("init", "kubernetes"))));
    review["request"]["operation"] = json!("UPDATE");
    let answer = admission::review(&settings(), &serde_json::to_vec(&review).unwrap()).unwrap();
    assert_eq!(answer.outcome, Outcome::Skipped);
    assert!(answer.review["response"]["patch"].is_null());

    assert!(admission::review(&settings(), b"{not json").is_err());
    let mut old = review_of(&pod(&[]));
    old["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let error = admission::review(&settings(), &serde_json::to_vec(&old).unwrap()).unwrap_err();
    assert!(error.to_string().contains("admission.k8s.io/v1"), "{error}");
}
