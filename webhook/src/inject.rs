//! Turns a [`Plan`] and the pod it came from into a JSONPatch: volumes, the tool's containers
//! and their flags, mounts in the app containers. Only wiring: no secret value is ever read or
//! written here. Either the whole patch is built or the pod is refused; never half of it.

use serde_json::{json, Map, Value};

use crate::annotations::{Auth, AuthMethod, Mode, Plan, Project, STATUS, STATUS_INJECTED};
use crate::layout;

/// Why a pod cannot be injected as annotated (one line, for the AdmissionReview status).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The JSONPatch (RFC 6902) operations that inject `plan` into `pod`.
pub fn patch(plan: &Plan, pod: &Value, prefix: &str) -> Result<Vec<Value>, Refused> {
    let spec = &pod["spec"];
    let annotation = |key: &str| format!("{prefix}{key}");

    for volume in items(&spec["volumes"]) {
        let name = volume["name"].as_str().unwrap_or_default();
        if name.starts_with(layout::VOLUME_PREFIX) {
            return Err(Refused(format!(
                "the pod already has a volume named {name}: names starting with {} are the webhook's; rename it",
                layout::VOLUME_PREFIX
            )));
        }
    }
    for container in items(&spec["initContainers"]).chain(items(&spec["containers"])) {
        let name = container["name"].as_str().unwrap_or_default();
        if [
            layout::INIT_CONTAINER,
            layout::SIDECAR_CONTAINER,
            layout::INSTALL_CONTAINER,
        ]
        .contains(&name)
        {
            return Err(Refused(format!(
                "the pod already has a container named {name}, a name the webhook uses; rename it"
            )));
        }
    }

    // The app containers that get the secrets: all regular ones, or those listed (init
    // containers may be listed too).
    let containers: Vec<(&str, usize, &Value)> = match &plan.containers {
        None => items(&spec["containers"])
            .enumerate()
            .map(|(index, container)| ("containers", index, container))
            .collect(),
        Some(names) => {
            let mut selected = Vec::new();
            for name in names {
                let found = [("initContainers"), ("containers")]
                    .into_iter()
                    .find_map(|list| {
                        items(&spec[list])
                            .enumerate()
                            .find(|(_, c)| c["name"].as_str() == Some(name))
                            .map(|(index, container)| (list, index, container))
                    });
                match found {
                    Some(found) => selected.push(found),
                    None => {
                        return Err(Refused(format!(
                            "annotation {}: the pod has no container named {name:?}",
                            annotation("containers")
                        )))
                    }
                }
            }
            selected
        }
    };
    if containers.is_empty() {
        return Err(Refused("the pod has no containers to inject into".into()));
    }

    let signal = plan.on_change_signal.is_some();
    if signal && spec["shareProcessNamespace"] == json!(false) {
        return Err(Refused(format!(
            "annotation {}: signalling the app needs shareProcessNamespace, which the pod sets to false",
            annotation("on-change-signal")
        )));
    }

    let mut ops = Vec::new();
    let mut volumes = Vec::new();
    let mut mounts = source_mounts(plan, &mut volumes);
    let source_flags = source_flags(plan);

    let mut new_init = Vec::new();
    let port = free_port(spec);
    match plan.mode {
        Mode::Init | Mode::Sidecar | Mode::InitSidecar => {
            volumes.push(json!({
                "name": layout::SECRETS_VOLUME,
                "emptyDir": {"medium": "Memory"},
            }));
            mounts.push(json!({"name": layout::SECRETS_VOLUME, "mountPath": plan.out_dir}));
            let output = [
                format!("--out-dir={}", plan.out_dir),
                "--require-tmpfs".to_owned(),
                // The app may run as any user: without a shared group only world-readable
                // files reach it. The volume is in memory and mounted in this pod only.
                "--file-mode=0444".to_owned(),
            ];
            if signal {
                volumes.push(json!({
                    "name": layout::RUN_VOLUME,
                    "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"},
                }));
            }
            let sidecar_args = || {
                let mut args = vec!["sidecar".to_owned()];
                args.extend(source_flags.iter().cloned());
                args.extend(output.iter().cloned());
                args.push(format!("--listen=0.0.0.0:{port}"));
                if let Some(interval) = &plan.interval {
                    args.push(format!("--interval={interval}"));
                }
                if let Some(signal) = &plan.on_change_signal {
                    args.push(format!("--on-change-signal={signal}"));
                    args.push(format!("--on-change-pid-file={}", layout::PID_FILE));
                }
                args
            };
            let mut sidecar_mounts = mounts.clone();
            if signal {
                sidecar_mounts.push(json!({
                    "name": layout::RUN_VOLUME,
                    "mountPath": layout::RUN_DIR,
                    "readOnly": true,
                }));
            }
            let health =
                |name: &str| json!({"httpGet": {"path": name, "port": layout::HEALTH_PORT_NAME}});
            if matches!(plan.mode, Mode::Init | Mode::InitSidecar) {
                let mut args = vec!["init".to_owned()];
                args.extend(source_flags.iter().cloned());
                args.extend(output.iter().cloned());
                new_init.push(tool_container(
                    layout::INIT_CONTAINER,
                    plan,
                    args,
                    mounts.clone(),
                ));
            }
            if plan.mode == Mode::Sidecar {
                let mut sidecar = tool_container(
                    layout::SIDECAR_CONTAINER,
                    plan,
                    sidecar_args(),
                    sidecar_mounts.clone(),
                );
                let fields = sidecar
                    .as_object_mut()
                    .expect("tool_container builds an object");
                fields.insert("restartPolicy".into(), json!("Always"));
                fields.insert(
                    "ports".into(),
                    json!([{"name": layout::HEALTH_PORT_NAME, "containerPort": port}]),
                );
                // The app starts once the first files are written (or after 2 minutes of
                // failures, the tool's own retry deadline, the pod restarts the sidecar).
                let mut startup = health("/readyz");
                startup["periodSeconds"] = json!(1);
                startup["failureThreshold"] = json!(120);
                fields.insert("startupProbe".into(), startup);
                let mut liveness = health("/healthz");
                liveness["periodSeconds"] = json!(20);
                fields.insert("livenessProbe".into(), liveness);
                new_init.push(sidecar);
            }
            if plan.mode == Mode::InitSidecar {
                let mut sidecar = tool_container(
                    layout::SIDECAR_CONTAINER,
                    plan,
                    sidecar_args(),
                    sidecar_mounts.clone(),
                );
                let fields = sidecar
                    .as_object_mut()
                    .expect("tool_container builds an object");
                fields.insert(
                    "ports".into(),
                    json!([{"name": layout::HEALTH_PORT_NAME, "containerPort": port}]),
                );
                let mut readiness = health("/readyz");
                readiness["periodSeconds"] = json!(10);
                fields.insert("readinessProbe".into(), readiness);
                let mut liveness = health("/healthz");
                liveness["periodSeconds"] = json!(20);
                fields.insert("livenessProbe".into(), liveness);
                ops.push(json!({"op": "add", "path": "/spec/containers/-", "value": sidecar}));
            }
            for (list, index, container) in &containers {
                let mut app_mounts = vec![json!({
                    "name": layout::SECRETS_VOLUME,
                    "mountPath": plan.out_dir,
                    "readOnly": true,
                })];
                if signal {
                    app_mounts
                        .push(json!({"name": layout::RUN_VOLUME, "mountPath": layout::RUN_DIR}));
                }
                add_mounts(&mut ops, list, *index, container, &plan.out_dir, app_mounts)?;
            }
        }
        Mode::Exec => {
            volumes.push(json!({"name": layout::BIN_VOLUME, "emptyDir": {"sizeLimit": "16Mi"}}));
            new_init.push(tool_container(
                layout::INSTALL_CONTAINER,
                plan,
                vec!["install".into(), "--to".into(), layout::BIN_PATH.into()],
                vec![json!({"name": layout::BIN_VOLUME, "mountPath": layout::BIN_DIR})],
            ));
            for (list, index, container) in &containers {
                let name = container["name"].as_str().unwrap_or_default();
                let command = strings(&container["command"]);
                if command.is_empty() {
                    return Err(Refused(format!(
                        "annotation {}=exec: container {name:?} has no command; the webhook cannot read the image's entrypoint, so set command (and args) in the pod spec",
                        annotation("mode")
                    )));
                }
                let mut wrapped = vec![layout::BIN_PATH.to_owned(), "exec".to_owned()];
                wrapped.extend(source_flags.iter().cloned());
                wrapped.push("--".to_owned());
                wrapped.extend(command);
                wrapped.extend(strings(&container["args"]));
                let base = format!("/spec/{list}/{index}");
                ops.push(json!({"op": "add", "path": format!("{base}/command"), "value": wrapped}));
                if !container["args"].is_null() {
                    ops.push(json!({"op": "remove", "path": format!("{base}/args")}));
                }
                let mut app_mounts = vec![json!({
                    "name": layout::BIN_VOLUME,
                    "mountPath": layout::BIN_DIR,
                    "readOnly": true,
                })];
                app_mounts.extend(mounts.iter().cloned());
                add_mounts(
                    &mut ops,
                    list,
                    *index,
                    container,
                    layout::BIN_DIR,
                    app_mounts,
                )?;
            }
        }
    }

    if signal {
        ops.push(json!({"op": "add", "path": "/spec/shareProcessNamespace", "value": true}));
    }
    if spec["volumes"].is_array() {
        for volume in volumes {
            ops.push(json!({"op": "add", "path": "/spec/volumes/-", "value": volume}));
        }
    } else {
        ops.push(json!({"op": "add", "path": "/spec/volumes", "value": volumes}));
    }
    let status_key = format!("{prefix}{STATUS}");
    if pod["metadata"]["annotations"].is_object() {
        ops.push(json!({
            "op": "add",
            "path": format!("/metadata/annotations/{}", escape(&status_key)),
            "value": STATUS_INJECTED,
        }));
    } else {
        ops.push(json!({
            "op": "add",
            "path": "/metadata/annotations",
            "value": {status_key: STATUS_INJECTED},
        }));
    }
    // Ours go first, so that app init containers may read the files too. These insertions
    // come last: they shift the indices that the operations above refer to.
    if spec["initContainers"].is_array() {
        for (index, container) in new_init.into_iter().enumerate() {
            ops.push(json!({
                "op": "add",
                "path": format!("/spec/initContainers/{index}"),
                "value": container,
            }));
        }
    } else {
        ops.push(json!({"op": "add", "path": "/spec/initContainers", "value": new_init}));
    }
    Ok(ops)
}

/// Volumes and mounts for what the tool reads: the config file, the CA, the credentials, the
/// projected token.
fn source_mounts(plan: &Plan, volumes: &mut Vec<Value>) -> Vec<Value> {
    let mut mounts = Vec::new();
    let mut mount = |name: &str, path: &str| {
        mounts.push(json!({"name": name, "mountPath": path, "readOnly": true}));
    };
    if let Some(config_map) = &plan.config_map {
        volumes.push(json!({
            "name": layout::CONFIG_VOLUME,
            "configMap": {
                "name": config_map,
                "items": [{"key": layout::CONFIG_KEY, "path": layout::CONFIG_KEY}],
            },
        }));
        mount(layout::CONFIG_VOLUME, layout::CONFIG_DIR);
    }
    if let Some(config_map) = &plan.ca_cert_config_map {
        volumes.push(json!({
            "name": layout::CA_VOLUME,
            "configMap": {
                "name": config_map,
                "items": [{"key": layout::CA_KEY, "path": layout::CA_KEY}],
            },
        }));
        mount(layout::CA_VOLUME, layout::CA_DIR);
    }
    if let Some(auth) = &plan.auth {
        if let Some(secret) = &auth.credentials_secret {
            let keys: Vec<Value> = auth
                .method
                .secret_keys()
                .iter()
                .map(|key| json!({"key": key, "path": key}))
                .collect();
            // World-readable inside the mount: the tool runs as 65532 and the pod may set no
            // fsGroup; only the tool's container (or the wrapped app in exec mode) mounts it.
            volumes.push(json!({
                "name": layout::CREDENTIALS_VOLUME,
                "secret": {"secretName": secret, "defaultMode": 0o444, "items": keys},
            }));
            mount(layout::CREDENTIALS_VOLUME, layout::CREDENTIALS_DIR);
        }
        if let Some(audience) = &auth.audience {
            volumes.push(json!({
                "name": layout::TOKEN_VOLUME,
                "projected": {
                    "defaultMode": 0o444,
                    "sources": [{"serviceAccountToken": {
                        "path": layout::TOKEN_FILE,
                        "audience": audience,
                        "expirationSeconds": 3600,
                    }}],
                },
            }));
            mount(layout::TOKEN_VOLUME, layout::TOKEN_DIR);
        }
    }
    mounts
}

/// The flags that say where the secrets come from and how to log in.
fn source_flags(plan: &Plan) -> Vec<String> {
    let mut flags = Vec::new();
    if plan.config_map.is_some() {
        flags.push(format!(
            "--config={}/{}",
            layout::CONFIG_DIR,
            layout::CONFIG_KEY
        ));
    }
    if let Some(url) = &plan.api_url {
        flags.push(format!("--api-url={url}"));
    }
    if plan.ca_cert_config_map.is_some() {
        flags.push(format!("--ca-cert={}/{}", layout::CA_DIR, layout::CA_KEY));
    }
    match &plan.project {
        Some(Project::Slug(slug)) => flags.push(format!("--project-slug={slug}")),
        Some(Project::Id(id)) => flags.push(format!("--project-id={id}")),
        None => {}
    }
    if let Some(env) = &plan.env {
        flags.push(format!("--env={env}"));
    }
    if let Some(path) = &plan.path {
        flags.push(format!("--path={path}"));
    }
    if let Some(auth) = &plan.auth {
        flags.extend(auth_flags(auth));
    }
    flags.push("--log-format=json".to_owned());
    flags
}

fn auth_flags(auth: &Auth) -> Vec<String> {
    let mut flags = vec![format!("--auth-method={}", auth.method.as_str())];
    if let Some(id) = &auth.identity_id {
        flags.push(format!("--identity-id={id}"));
    }
    let credential = |key: &str| format!("{}/{key}", layout::CREDENTIALS_DIR);
    let token = format!("{}/{}", layout::TOKEN_DIR, layout::TOKEN_FILE);
    match auth.method {
        AuthMethod::UniversalAuth => {
            flags.push(format!("--client-id-file={}", credential("client-id")));
            flags.push(format!(
                "--client-secret-file={}",
                credential("client-secret")
            ));
        }
        AuthMethod::Token => flags.push(format!("--token-file={}", credential("token"))),
        AuthMethod::GcpIam => flags.push(format!(
            "--gcp-service-account-key-file={}",
            credential("key.json")
        )),
        AuthMethod::Kubernetes => flags.push(format!("--service-account-token-file={token}")),
        AuthMethod::Oidc | AuthMethod::Jwt => flags.push(format!("--jwt-file={token}")),
        AuthMethod::AwsIam | AuthMethod::GcpIdToken | AuthMethod::Azure => {}
    }
    flags
}

/// One of the tool's containers: the image's entrypoint is the binary, `args` its arguments.
fn tool_container(name: &str, plan: &Plan, args: Vec<String>, mounts: Vec<Value>) -> Value {
    let mut limits = Map::new();
    limits.insert("memory".into(), json!(plan.resources.memory_limit));
    if let Some(cpu) = &plan.resources.cpu_limit {
        limits.insert("cpu".into(), json!(cpu));
    }
    json!({
        "name": name,
        "image": plan.image,
        "args": args,
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": layout::UID,
            "runAsGroup": layout::UID,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "resources": {
            "requests": {
                "cpu": plan.resources.cpu_request,
                "memory": plan.resources.memory_request,
            },
            "limits": limits,
        },
        "volumeMounts": mounts,
    })
}

/// Adds mounts to an app container, refusing one that already mounts something at that path.
fn add_mounts(
    ops: &mut Vec<Value>,
    list: &str,
    index: usize,
    container: &Value,
    path: &str,
    new: Vec<Value>,
) -> Result<(), Refused> {
    let name = container["name"].as_str().unwrap_or_default();
    for existing in items(&container["volumeMounts"]) {
        let at = existing["mountPath"].as_str().unwrap_or_default();
        let clashes = new.iter().any(|mount| {
            let ours = mount["mountPath"].as_str().unwrap_or_default();
            at.trim_end_matches('/') == ours
        });
        if clashes {
            return Err(Refused(format!(
                "container {name:?} already mounts a volume at {at}, where the webhook mounts {path}; choose another out-dir or remove that mount"
            )));
        }
    }
    let target = format!("/spec/{list}/{index}/volumeMounts");
    if container["volumeMounts"].is_array() {
        for mount in new {
            ops.push(json!({"op": "add", "path": format!("{target}/-"), "value": mount}));
        }
    } else {
        ops.push(json!({"op": "add", "path": target, "value": new}));
    }
    Ok(())
}

/// The health port: 9464 unless a container of the pod declares it.
fn free_port(spec: &Value) -> u16 {
    let declared: Vec<u64> = items(&spec["initContainers"])
        .chain(items(&spec["containers"]))
        .flat_map(|container| items(&container["ports"]))
        .filter_map(|port| port["containerPort"].as_u64())
        .collect();
    (layout::HEALTH_PORT..)
        .find(|port| !declared.contains(&u64::from(*port)))
        .unwrap_or(layout::HEALTH_PORT)
}

fn items(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

fn strings(value: &Value) -> Vec<String> {
    items(value)
        .filter_map(|item| item.as_str().map(str::to_owned))
        .collect()
}

/// RFC 6901 escaping of one reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}
