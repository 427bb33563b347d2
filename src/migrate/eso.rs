//! `migrate eso`: ExternalSecrets of Infisical (Cluster)SecretStores (`external-secrets.io/v1`
//! and `v1beta1`) to a configuration file and a pod fragment.
//!
//! The provider's semantics are ESO's (`providers/v1/infisical/client.go`): `data` keys are
//! looked up in the store's folder, or in another one when the key holds a `/`; `dataFrom.find`
//! lists the store's scope (imports included) and keeps names matching `name.regexp` whose
//! folder starts with `path`; `data` wins over `dataFrom`.

use base64::Engine as _;

use super::gotmpl::{self, Dialect};
use super::yaml::Node;
use super::{documents, Conversion, Findings, Input, Place, Pod, CREDENTIALS_DIR};
use crate::config::normalize_secret_path;
use crate::error::Fatal;

const API_VERSIONS: [&str; 2] = ["external-secrets.io/v1", "external-secrets.io/v1beta1"];
/// Where the files (the Secret's keys) are written, under the target's name.
const FILES_DIR: &str = "/run/secrets";
const CA_DIR: &str = "/var/run/infisical-ca";

/// An object of the input and where it came from.
struct Object<'a> {
    file: &'a str,
    node: Node,
    kind: String,
    name: String,
    namespace: Option<String>,
}

impl Object<'_> {
    fn place(&self) -> Place<'_> {
        let name = match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        };
        Place {
            file: self.file,
            object: format!("{} {name}", self.kind),
        }
    }
}

/// Converts every ExternalSecret of an Infisical store in `inputs`.
pub fn convert(inputs: &[Input], f: &mut Findings) -> Result<Vec<Conversion>, Fatal> {
    let mut objects = Vec::new();
    for input in inputs {
        for document in documents(input)? {
            // `kubectl get … -o yaml` of several objects is a List.
            let items = match document.get("kind").and_then(Node::text) {
                Some("List") => document.get("items").map(|i| i.items().to_vec()),
                _ => None,
            };
            for node in items.unwrap_or_else(|| vec![document]) {
                let text = |key: &str| node.get(key).and_then(Node::text).map(str::to_owned);
                let meta = node.get("metadata");
                let object = Object {
                    file: &input.name,
                    kind: text("kind").unwrap_or_default(),
                    name: meta
                        .and_then(|m| m.get("name"))
                        .and_then(Node::text)
                        .unwrap_or("")
                        .to_owned(),
                    namespace: meta
                        .and_then(|m| m.get("namespace"))
                        .and_then(Node::text)
                        .map(str::to_owned),
                    node,
                };
                objects.push(object);
            }
        }
    }
    let mut conversions = Vec::new();
    for object in &objects {
        let place = object.place();
        let api = object.node.get("apiVersion").and_then(Node::text);
        match object.kind.as_str() {
            "ExternalSecret" | "ClusterSecretStore" | "SecretStore"
                if !api.is_some_and(|v| API_VERSIONS.contains(&v)) =>
            {
                place.refuse(
                    f,
                    &object.node,
                    "apiVersion",
                    "not converted: only external-secrets.io/v1 and v1beta1 are read",
                );
            }
            "ExternalSecret" => {
                if let Some(c) = external_secret(object, &objects, f) {
                    conversions.push(c);
                }
            }
            "ClusterSecretStore" | "SecretStore" => {}
            "ClusterExternalSecret" => place.refuse(
                f,
                &object.node,
                "",
                "not converted: a ClusterExternalSecret stamps ExternalSecrets into namespaces; \
                 convert one ExternalSecret per namespace instead",
            ),
            kind => place.note(
                f,
                &object.node,
                "",
                format!("skipped: a {kind} is not an ESO object this converter reads"),
            ),
        }
    }
    Ok(conversions)
}

/// The parts of the store the conversion uses.
struct Scope {
    project: String,
    environment: String,
    path: String,
    recursive: bool,
    expand: bool,
}

fn external_secret(es: &Object, objects: &[Object], f: &mut Findings) -> Option<Conversion> {
    let at = es.place();
    let empty = Node::map(vec![]);
    let spec = es.node.get("spec").unwrap_or(&empty);
    at.known(
        f,
        spec,
        "spec",
        &[
            "secretStoreRef",
            "refreshInterval",
            "refreshPolicy",
            "target",
            "data",
            "dataFrom",
        ],
    );
    let store_ref = spec.get("secretStoreRef").unwrap_or(&empty);
    let store_name = store_ref.get("name").and_then(Node::text).unwrap_or("");
    let store_kind = store_ref
        .get("kind")
        .and_then(Node::text)
        .unwrap_or("SecretStore");
    let store = objects.iter().find(|o| {
        o.kind == store_kind
            && o.name == store_name
            && (store_kind == "ClusterSecretStore" || o.namespace == es.namespace)
    });
    let Some(store) = store else {
        at.refuse(
            f,
            store_ref,
            "spec.secretStoreRef",
            format!(
                "the {store_kind} {store_name:?} is not in the files given; add its manifest \
                 (kubectl get {} {store_name} -o yaml)",
                store_kind.to_lowercase()
            ),
        );
        return None;
    };
    let st = store.place();
    let store_spec = store.node.get("spec").unwrap_or(&empty);
    let provider = store_spec.get("provider").unwrap_or(&empty);
    let Some(infisical) = provider.get("infisical") else {
        let name = provider
            .entries()
            .first()
            .map_or("none", |(k, _)| k.as_str());
        at.note(
            f,
            store_ref,
            "spec.secretStoreRef",
            format!("skipped: its store uses the {name} provider, not infisical"),
        );
        return None;
    };
    for (key, value) in store_spec.entries() {
        if key != "provider" && !value.is_null() {
            st.note(
                f,
                value,
                &format!("spec.{key}"),
                "ESO's own setting: nothing to convert",
            );
        }
    }
    st.known(
        f,
        infisical,
        "spec.provider.infisical",
        &["hostAPI", "auth", "secretsScope", "caBundle", "caProvider"],
    );
    let namespace = es.namespace.clone();
    let mut config = Node::map(vec![]);
    let mut pod = Pod::default();

    // The server.
    let host = infisical.get("hostAPI");
    let api_url = match host.and_then(Node::text) {
        Some(text) => host_api(text, &st, host.unwrap_or(&empty), f)?,
        None => "https://app.infisical.com".to_owned(),
    };
    config.push("api-url", Node::str(api_url));
    if let Some(bundle) = infisical.get("caBundle") {
        let pem = bundle
            .text()
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.split_whitespace().collect::<String>())
                    .ok()
            })
            .and_then(|bytes| String::from_utf8(bytes).ok());
        match pem {
            Some(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => {
                pod.config_data.push(("ca.crt".into(), pem));
                config.push(
                    "ca-cert",
                    Node::str(format!("{}/ca.crt", super::CONFIG_DIR)),
                );
            }
            _ => st.refuse(
                f,
                bundle,
                "spec.provider.infisical.caBundle",
                "not a base64-encoded PEM certificate",
            ),
        }
    }
    if let Some(ca) = infisical.get("caProvider") {
        ca_provider(ca, &st, &namespace, &mut config, &mut pod, f);
    }

    // The identity.
    let auth = infisical.get("auth").unwrap_or(&empty);
    auth_block(auth, &st, &namespace, &mut config, &mut pod, f);

    // The folder.
    let scope_node = infisical.get("secretsScope").unwrap_or(&empty);
    st.known(
        f,
        scope_node,
        "spec.provider.infisical.secretsScope",
        &[
            "projectSlug",
            "environmentSlug",
            "secretsPath",
            "recursive",
            "expandSecretReferences",
        ],
    );
    let text = |key: &str| scope_node.get(key).and_then(Node::text).map(str::to_owned);
    let (Some(project), Some(environment)) = (text("projectSlug"), text("environmentSlug")) else {
        st.refuse(
            f,
            scope_node,
            "spec.provider.infisical.secretsScope",
            "projectSlug and environmentSlug are required",
        );
        return None;
    };
    check_slugs(&project, &environment, &st, scope_node, f);
    let path = match normalize_secret_path(&text("secretsPath").unwrap_or_else(|| "/".into())) {
        Ok(path) => path,
        Err(_) => {
            st.refuse(
                f,
                scope_node,
                "spec.provider.infisical.secretsScope.secretsPath",
                "must start with /",
            );
            return None;
        }
    };
    let scope = Scope {
        project,
        environment,
        path,
        recursive: scope_node.get("recursive").and_then(Node::boolean) == Some(true),
        expand: scope_node
            .get("expandSecretReferences")
            .and_then(Node::boolean)
            != Some(false),
    };

    // When to fetch.
    let interval = spec
        .get("refreshInterval")
        .and_then(Node::text)
        .unwrap_or("1h");
    let policy = spec.get("refreshPolicy").and_then(Node::text);
    match policy {
        None | Some("Periodic") => match crate::cli::parse_duration(interval) {
            Ok(d) if d.is_zero() => {}
            Ok(_) => {
                pod.sidecar = true;
                config.push("interval", Node::str(interval));
            }
            Err(_) if interval == "0" => {}
            Err(_) => at.refuse(
                f,
                spec.get("refreshInterval").unwrap_or(spec),
                "spec.refreshInterval",
                format!("{interval:?} is not a duration this converter reads (e.g. 1h, 15m, 30s)"),
            ),
        },
        Some(other) => at.note(
            f,
            spec.get("refreshPolicy").unwrap_or(spec),
            "spec.refreshPolicy",
            format!("{other}: the files are fetched once, when the pod starts (init container)"),
        ),
    }

    // What to fetch.
    let target = spec.get("target").unwrap_or(&empty);
    at.known(
        f,
        target,
        "spec.target",
        &[
            "name",
            "creationPolicy",
            "deletionPolicy",
            "template",
            "immutable",
        ],
    );
    for key in ["creationPolicy", "deletionPolicy", "immutable"] {
        if let Some(node) = target.get(key) {
            at.note(
                f,
                node,
                &format!("spec.target.{key}"),
                "about the Kubernetes Secret, which the files replace: nothing to convert",
            );
        }
    }
    let target_name = target
        .get("name")
        .and_then(Node::text)
        .unwrap_or(&es.name)
        .to_owned();
    let files_dir = format!("{FILES_DIR}/{target_name}");
    let mut sources = Vec::new();
    let mut decode = Vec::new();
    for (index, from) in spec
        .get("dataFrom")
        .map_or(&[][..], Node::items)
        .iter()
        .enumerate()
    {
        if let Some(source) = data_from(from, index, &scope, &at, f) {
            sources.push(source);
        }
    }
    data(spec, &scope, &at, f, &mut sources, &mut decode);
    if sources.is_empty() {
        if f.refused.is_empty() {
            at.refuse(
                f,
                spec,
                "spec",
                "neither data nor dataFrom: nothing to fetch",
            );
        }
        return None;
    }
    config.push("sources", Node::seq(sources));

    // Where it goes.
    let templates = target
        .get("template")
        .map(|t| template(t, &at, &files_dir, f));
    match templates {
        Some(Some(templates)) if !templates.is_empty() => {
            if !decode.is_empty() {
                at.refuse(
                    f,
                    spec,
                    "spec.data[].remoteRef.decodingStrategy",
                    "Base64 with a template: the templates would see the encoded value; decode \
                     in the template with b64dec",
                );
            }
            config.push("templates", Node::seq(templates));
        }
        _ => {
            let mut output = Node::map(vec![("dir", Node::str(files_dir.clone()))]);
            if !decode.is_empty() {
                let keys = decode
                    .into_iter()
                    .map(|key| {
                        let options = Node::map(vec![("decode", Node::str("base64"))]);
                        (key, options)
                    })
                    .collect();
                output.push(
                    "keys",
                    Node {
                        value: super::yaml::Value::Map(keys),
                        line: 0,
                    },
                );
            }
            config.push("outputs", Node::seq(vec![output]));
        }
    }
    pod.files_at("secrets", &files_dir);
    Some(Conversion {
        name: es.name.clone(),
        namespace,
        origin: format!("{} ({store_kind} {store_name})", at.object),
        config,
        pod,
    })
}

/// `hostAPI` as `api-url`: the address without `/api`; odd forms are warned about.
fn host_api(text: &str, st: &Place, node: &Node, f: &mut Findings) -> Option<String> {
    let field = "spec.provider.infisical.hostAPI";
    let trimmed = text.trim().trim_end_matches('/');
    if !trimmed.starts_with("https://") && !trimmed.starts_with("http://") {
        st.refuse(
            f,
            node,
            field,
            format!("{text:?} has no scheme; write https://{trimmed}/api"),
        );
        return None;
    }
    let (scheme, rest) = trimmed.split_once("://").unwrap_or(("https", trimmed));
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let base_path = match path.find("/api/") {
        Some(cut) => {
            st.warn(
                f,
                node,
                field,
                format!(
                    "{text:?} names an API version; fix: hostAPI: {scheme}://{host}{}/api (the \
                     client adds the versions)",
                    &path[..cut]
                ),
            );
            &path[..cut]
        }
        None => path.strip_suffix("/api").unwrap_or(path),
    };
    if path == base_path {
        st.warn(
            f,
            node,
            field,
            format!(
                "{text:?} lacks /api: ESO's documented form is {scheme}://{host}{path}/api (older \
                 ESO releases fail without it); api-url accepts both"
            ),
        );
    }
    if scheme == "http" {
        st.warn(
            f,
            node,
            field,
            "plain http sends the credentials unencrypted; fix: use https (and caProvider for a \
             private CA)",
        );
    }
    let url = format!("{scheme}://{host}{base_path}");
    match crate::config::normalize_api_url(&url) {
        Ok(_) => Some(url),
        Err(error) => {
            st.refuse(f, node, field, error.to_string());
            None
        }
    }
}

fn check_slugs(project: &str, environment: &str, st: &Place, node: &Node, f: &mut Findings) {
    let field = "spec.provider.infisical.secretsScope";
    let slug_like = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    };
    if !slug_like(project) {
        let guess: String = project
            .to_lowercase()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        st.warn(
            f,
            node.get("projectSlug").unwrap_or(node),
            &format!("{field}.projectSlug"),
            format!(
                "{project:?} looks like the project's display name, not its slug; fix: copy the \
                 slug from Project Settings (lowercase with dashes, e.g. {guess}-a1b2)"
            ),
        );
    }
    let usual = match environment.to_lowercase().as_str() {
        "production" | "prod" => "prod",
        "development" | "dev" => "dev",
        "staging" => "staging",
        _ => "",
    };
    if !usual.is_empty() && usual != environment || !slug_like(environment) {
        let fix = if usual.is_empty() {
            "the slug shown in Project Settings > Environments".to_owned()
        } else {
            format!("environmentSlug: {usual}")
        };
        st.warn(
            f,
            node.get("environmentSlug").unwrap_or(node),
            &format!("{field}.environmentSlug"),
            format!(
                "{environment:?} looks like the environment's name, not its slug (Infisical's are \
                 dev, staging and prod unless renamed); fix: {fix}"
            ),
        );
    }
}

/// A `SecretKeySelector`: (name, key), warning when it is in another namespace than the pod.
fn secret_ref(
    node: Option<&Node>,
    field: &str,
    st: &Place,
    namespace: &Option<String>,
    f: &mut Findings,
) -> Option<(String, String)> {
    let Some(node) = node else {
        st.refuse(f, &Node::str(""), field, "required");
        return None;
    };
    let known: &[&str] = if field.ends_with("caProvider") {
        &["name", "key", "namespace", "type"]
    } else {
        &["name", "key", "namespace"]
    };
    st.known(f, node, field, known);
    let name = node.get("name").and_then(Node::text);
    let key = node.get("key").and_then(Node::text);
    let (Some(name), Some(key)) = (name, key) else {
        st.refuse(f, node, field, "name and key are required");
        return None;
    };
    if let Some(other) = node.get("namespace").and_then(Node::text) {
        if Some(other) != namespace.as_deref() {
            let pod_ns = namespace.as_deref().unwrap_or("the pod's namespace");
            st.warn(
                f,
                node,
                field,
                format!(
                    "{other}/{name} is in another namespace than the pod ({pod_ns}), and a pod \
                     mounts Secrets and ConfigMaps of its own namespace only; fix: copy it into \
                     {pod_ns} (or use kubernetes or oidc auth)"
                ),
            );
        }
    }
    Some((name.to_owned(), key.to_owned()))
}

/// Credential files from Secrets, as one projected volume.
fn credential_files(pod: &mut Pod, files: &[(String, String, &str)]) {
    let mut sources: Vec<(String, Vec<Node>)> = Vec::new();
    for (secret, key, path) in files {
        let item = Node::map(vec![("key", Node::str(key)), ("path", Node::str(*path))]);
        match sources.iter_mut().find(|(s, _)| s == secret) {
            Some((_, items)) => items.push(item),
            None => sources.push((secret.clone(), vec![item])),
        }
    }
    let sources = sources
        .into_iter()
        .map(|(secret, items)| {
            Node::map(vec![(
                "secret",
                Node::map(vec![
                    ("name", Node::str(secret)),
                    ("items", Node::seq(items)),
                ]),
            )])
        })
        .collect();
    let projected = Node::map(vec![
        ("sources", Node::seq(sources)),
        ("defaultMode", Node::plain("0440")),
    ]);
    pod.volume(
        "infisical-credentials",
        ("projected", projected),
        CREDENTIALS_DIR,
        true,
    );
}

fn env_from_secret(pod: &mut Pod, name: &str, (secret, key): (String, String)) {
    pod.env.push(Node::map(vec![
        ("name", Node::str(name)),
        (
            "valueFrom",
            Node::map(vec![(
                "secretKeyRef",
                Node::map(vec![("name", Node::str(secret)), ("key", Node::str(key))]),
            )]),
        ),
    ]));
}

/// Reads the secret ref under a key of the auth block.
type SecretRefReader<'a> = dyn FnMut(&str, &mut Findings) -> Option<(String, String)> + 'a;

fn auth_block(
    auth: &Node,
    st: &Place,
    namespace: &Option<String>,
    config: &mut Node,
    pod: &mut Pod,
    f: &mut Findings,
) {
    let blocks: Vec<&(String, Node)> = auth
        .entries()
        .iter()
        .filter(|(_, v)| !v.is_null())
        .collect();
    let [(kind, block)] = blocks.as_slice() else {
        st.refuse(
            f,
            auth,
            "spec.provider.infisical.auth",
            "give exactly one auth block",
        );
        return;
    };
    let field = format!("spec.provider.infisical.auth.{kind}");
    let mut sref = |key: &str, f: &mut Findings| {
        secret_ref(block.get(key), &format!("{field}.{key}"), st, namespace, f)
    };
    let identity = |pod: &mut Pod, f: &mut Findings, sref: &mut SecretRefReader| {
        if let Some(id) = sref("identityId", f) {
            env_from_secret(pod, "INFISICAL_MACHINE_IDENTITY_ID", id);
        }
    };
    let method = match kind.as_str() {
        "universalAuthCredentials" => {
            st.known(f, block, &field, &["clientId", "clientSecret"]);
            let (Some(id), Some(secret)) = (sref("clientId", f), sref("clientSecret", f)) else {
                return;
            };
            credential_files(
                pod,
                &[
                    (id.0, id.1, "client-id"),
                    (secret.0, secret.1, "client-secret"),
                ],
            );
            config.push(
                "client-id-file",
                Node::str(format!("{CREDENTIALS_DIR}/client-id")),
            );
            config.push(
                "client-secret-file",
                Node::str(format!("{CREDENTIALS_DIR}/client-secret")),
            );
            return;
        }
        "tokenAuthCredentials" => {
            st.known(f, block, &field, &["accessToken"]);
            let Some(token) = sref("accessToken", f) else {
                return;
            };
            credential_files(pod, &[(token.0, token.1, "token")]);
            config.push("auth-method", Node::str("token"));
            config.push("token-file", Node::str(format!("{CREDENTIALS_DIR}/token")));
            return;
        }
        "jwtAuthCredentials" => {
            st.known(f, block, &field, &["identityId", "jwt"]);
            identity(pod, f, &mut sref);
            if let Some(jwt) = sref("jwt", f) {
                credential_files(pod, &[(jwt.0, jwt.1, "jwt")]);
            }
            config.push("jwt-file", Node::str(format!("{CREDENTIALS_DIR}/jwt")));
            "jwt"
        }
        "kubernetesAuthCredentials" => {
            st.known(f, block, &field, &["identityId", "serviceAccountTokenPath"]);
            identity(pod, f, &mut sref);
            if let Some(node) = block.get("serviceAccountTokenPath") {
                st.note(
                    f,
                    node,
                    &format!("{field}.serviceAccountTokenPath"),
                    "a path in ESO's pod: the pod's own service-account token is used",
                );
            }
            st.note(
                f,
                block,
                &field,
                "the identity's Kubernetes Auth must now allow the pod's service account and \
                 namespace (it allowed ESO's)",
            );
            "kubernetes"
        }
        "awsAuthCredentials" | "gcpIdTokenAuthCredentials" | "azureAuthCredentials" => {
            st.known(f, block, &field, &["identityId", "resource"]);
            identity(pod, f, &mut sref);
            if block.get("resource").is_some() {
                if let Some(resource) = sref("resource", f) {
                    env_from_secret(pod, "INFISICAL_AZURE_RESOURCE", resource);
                }
            }
            st.note(
                f,
                block,
                &field,
                "the pod now logs in with its own cloud identity (it was ESO's): give it the \
                 role the identity allows (IRSA, Workload Identity)",
            );
            match kind.as_str() {
                "awsAuthCredentials" => "aws-iam",
                "gcpIdTokenAuthCredentials" => "gcp-id-token",
                _ => "azure",
            }
        }
        "gcpIamAuthCredentials" => {
            st.refuse(
                f,
                block,
                &format!("{field}.serviceAccountKeyFilePath"),
                "names a key file inside ESO's pod; mount the key from a Secret and give \
                 gcp-service-account-key-file with auth-method gcp-iam",
            );
            return;
        }
        "ldapAuthCredentials" | "ociAuthCredentials" => {
            st.refuse(
                f,
                block,
                &field,
                "infisical-materializer has no such login (it has universal-auth, kubernetes, \
                 token, oidc, jwt, aws-iam, gcp-id-token, gcp-iam, azure)",
            );
            return;
        }
        _ => {
            st.refuse(f, block, &field, "not an auth block this converter knows");
            return;
        }
    };
    config.push("auth-method", Node::str(method));
}

fn ca_provider(
    ca: &Node,
    st: &Place,
    namespace: &Option<String>,
    config: &mut Node,
    pod: &mut Pod,
    f: &mut Findings,
) {
    let field = "spec.provider.infisical.caProvider";
    let kind = ca.get("type").and_then(Node::text);
    let Some((name, key)) = secret_ref(Some(ca), field, st, namespace, f) else {
        return;
    };
    let (source, name_key) = match kind {
        Some("Secret") => ("secret", "secretName"),
        Some("ConfigMap") => ("configMap", "name"),
        _ => {
            st.refuse(
                f,
                ca,
                &format!("{field}.type"),
                "expected Secret or ConfigMap",
            );
            return;
        }
    };
    let item = Node::map(vec![("key", Node::str(key)), ("path", Node::str("ca.crt"))]);
    let volume = Node::map(vec![
        (name_key, Node::str(name)),
        ("items", Node::seq(vec![item])),
    ]);
    pod.volume("infisical-ca", (source, volume), CA_DIR, true);
    config.push("ca-cert", Node::str(format!("{CA_DIR}/ca.crt")));
}

/// One `dataFrom` entry as a source.
fn data_from(
    from: &Node,
    index: usize,
    scope: &Scope,
    at: &Place,
    f: &mut Findings,
) -> Option<Node> {
    let field = format!("spec.dataFrom[{index}]");
    at.known(
        f,
        from,
        &field,
        &["find", "rewrite", "extract", "sourceRef"],
    );
    if let Some(extract) = from.get("extract") {
        at.refuse(
            f,
            extract,
            &format!("{field}.extract"),
            "expanding a JSON-valued secret into keys is not supported; store the keys as \
             separate secrets, or read the JSON in a template",
        );
        return None;
    }
    if let Some(node) = from.get("sourceRef") {
        at.refuse(
            f,
            node,
            &format!("{field}.sourceRef"),
            "generators and other stores are not converted",
        );
        return None;
    }
    let find = from.get("find")?;
    at.known(
        f,
        find,
        &format!("{field}.find"),
        &[
            "path",
            "name",
            "tags",
            "conversionStrategy",
            "decodingStrategy",
        ],
    );
    if let Some(tags) = find.get("tags") {
        at.refuse(
            f,
            tags,
            &format!("{field}.find.tags"),
            "ESO's Infisical provider refuses find by tags (its sync never worked); use tags in \
             the converted source by hand if meant",
        );
        return None;
    }
    for (key, default) in [
        ("conversionStrategy", "Default"),
        ("decodingStrategy", "None"),
    ] {
        if let Some(node) = find.get(key) {
            if node.text() != Some(default) {
                at.refuse(
                    f,
                    node,
                    &format!("{field}.find.{key}"),
                    format!("only {default} is converted for keys found by pattern"),
                );
            }
        }
    }
    let mut source = source_head(scope);
    let mut path = scope.path.clone();
    if let Some(node) = find.get("path") {
        let wanted = node.text().and_then(|p| normalize_secret_path(p).ok());
        let Some(wanted) = wanted else {
            at.refuse(f, node, &format!("{field}.find.path"), "must start with /");
            return None;
        };
        let under_store = wanted == scope.path
            || scope.path == "/"
            || wanted.starts_with(&format!("{}/", scope.path));
        if scope.path.starts_with(&wanted)
            && (wanted == "/"
                || scope.path == wanted
                || scope.path.starts_with(&format!("{wanted}/")))
        {
            // Every secret of the store's folder is under it: nothing to filter.
        } else if scope.recursive && under_store {
            path = wanted;
        } else {
            at.refuse(
                f,
                node,
                &format!("{field}.find.path"),
                format!(
                    "selects nothing in ESO: the store lists {}{} and ESO keeps secrets whose \
                     folder starts with {wanted}; fix the store's secretsPath/recursive or \
                     remove find.path",
                    scope.path,
                    if scope.recursive {
                        " recursively"
                    } else {
                        " only"
                    }
                ),
            );
            return None;
        }
    }
    source.push("path", Node::str(path));
    if scope.recursive {
        source.push("recursive", Node::plain(true));
    }
    if !scope.expand {
        source.push("expand-references", Node::plain(false));
    }
    if let Some(name) = find.get("name") {
        at.known(f, name, &format!("{field}.find.name"), &["regexp"]);
        if let Some(regexp) = name.get("regexp").and_then(Node::text) {
            source.push("keys-matching", Node::str(regexp));
        }
    }
    let mut prefix = String::new();
    for (r, rewrite) in from
        .get("rewrite")
        .map_or(&[][..], Node::items)
        .iter()
        .enumerate()
    {
        let rfield = format!("{field}.rewrite[{r}]");
        match rewrite_prefix(rewrite) {
            Some(added) => prefix = added + &prefix,
            None => {
                at.refuse(
                    f,
                    rewrite,
                    &rfield,
                    "only a prefix can be expressed (regexp source ^ or ^(.*)$, target \
                     PREFIX or PREFIX$1); list the keys under data with their new names instead",
                );
                return None;
            }
        }
    }
    if !prefix.is_empty() {
        source.push("prefix", Node::str(prefix));
    }
    Some(source)
}

/// The prefix a rewrite adds, if that is all it does.
fn rewrite_prefix(rewrite: &Node) -> Option<String> {
    let regexp = rewrite.get("regexp")?;
    if rewrite.entries().len() != 1 {
        return None;
    }
    let source = regexp.get("source").and_then(Node::text)?;
    let target = regexp.get("target").and_then(Node::text).unwrap_or("");
    let prefix = match source {
        "^" => target,
        "^(.*)$" | "(.*)" | "^(.*)" | "(.*)$" => target
            .strip_suffix("${1}")
            .or_else(|| target.strip_suffix("$1"))?,
        _ => return None,
    };
    (!prefix.contains('$')).then(|| prefix.to_owned())
}

fn source_head(scope: &Scope) -> Node {
    Node::map(vec![
        ("project-slug", Node::str(scope.project.clone())),
        ("environment", Node::str(scope.environment.clone())),
    ])
}

/// `data[]`: one source per folder, renaming each key to its `secretKey`.
fn data(
    spec: &Node,
    scope: &Scope,
    at: &Place,
    f: &mut Findings,
    sources: &mut Vec<Node>,
    decode: &mut Vec<String>,
) {
    // (folder, [(remote, local)]); a remote key asked for twice goes to a second group.
    let mut groups: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (index, entry) in spec
        .get("data")
        .map_or(&[][..], Node::items)
        .iter()
        .enumerate()
    {
        let field = format!("spec.data[{index}]");
        at.known(f, entry, &field, &["secretKey", "remoteRef", "sourceRef"]);
        if let Some(node) = entry.get("sourceRef") {
            at.refuse(
                f,
                node,
                &format!("{field}.sourceRef"),
                "generators and other stores are not converted",
            );
            continue;
        }
        let remote = entry.get("remoteRef");
        let (Some(local), Some(remote)) = (entry.get("secretKey").and_then(Node::text), remote)
        else {
            at.refuse(f, entry, &field, "secretKey and remoteRef are required");
            continue;
        };
        let rfield = format!("{field}.remoteRef");
        at.known(
            f,
            remote,
            &rfield,
            &[
                "key",
                "property",
                "version",
                "conversionStrategy",
                "decodingStrategy",
                "metadataPolicy",
            ],
        );
        if let Some(node) = remote.get("property") {
            at.refuse(
                f,
                node,
                &format!("{rfield}.property"),
                "a property of a JSON-valued secret is not supported; store it as its own secret",
            );
            continue;
        }
        if let Some(node) = remote.get("version") {
            at.note(
                f,
                node,
                &format!("{rfield}.version"),
                "ignored by ESO's Infisical provider too",
            );
        }
        for (key, default) in [
            ("conversionStrategy", "Default"),
            ("metadataPolicy", "None"),
        ] {
            if let Some(node) = remote.get(key).filter(|n| n.text() != Some(default)) {
                at.refuse(
                    f,
                    node,
                    &format!("{rfield}.{key}"),
                    format!("only {default} is converted"),
                );
            }
        }
        match remote.get("decodingStrategy").and_then(Node::text) {
            None | Some("None") => {}
            Some("Base64") => decode.push(local.to_owned()),
            Some(_) => at.refuse(
                f,
                remote.get("decodingStrategy").unwrap_or(remote),
                &format!("{rfield}.decodingStrategy"),
                "only None and Base64 are converted",
            ),
        }
        let Some(key) = remote.get("key").and_then(Node::text) else {
            at.refuse(f, remote, &format!("{rfield}.key"), "required");
            continue;
        };
        // ESO: `NAME` is in the store's folder, `/a/NAME` absolute, `a/NAME` under the folder.
        let (folder, name) = match key.rsplit_once('/') {
            None => (scope.path.clone(), key),
            Some((folder, name)) if key.starts_with('/') => (
                if folder.is_empty() {
                    "/".into()
                } else {
                    folder.to_owned()
                },
                name,
            ),
            Some((folder, name)) => (
                format!("{}/{folder}", scope.path.trim_end_matches('/')),
                name,
            ),
        };
        let group = groups
            .iter_mut()
            .find(|(f, keys)| *f == folder && !keys.iter().any(|(r, _)| r == name));
        match group {
            Some((_, keys)) => keys.push((name.to_owned(), local.to_owned())),
            None => groups.push((folder, vec![(name.to_owned(), local.to_owned())])),
        }
    }
    for (folder, keys) in groups {
        let mut source = source_head(scope);
        source.push("path", Node::str(folder));
        if !scope.expand {
            source.push("expand-references", Node::plain(false));
        }
        let keys = keys.into_iter().map(|(r, l)| (r, Node::str(l))).collect();
        source.push(
            "keys",
            Node {
                value: super::yaml::Value::Map(keys),
                line: 0,
            },
        );
        sources.push(source);
    }
}

/// `target.template`: its `data` as templates writing into the files' folder.
fn template(node: &Node, at: &Place, dir: &str, f: &mut Findings) -> Option<Vec<Node>> {
    let field = "spec.target.template";
    at.known(
        f,
        node,
        field,
        &[
            "type",
            "engineVersion",
            "data",
            "templateFrom",
            "metadata",
            "mergePolicy",
        ],
    );
    if let Some(kind) = node.get("type").and_then(Node::text) {
        let extra = if kind == "kubernetes.io/dockerconfigjson" {
            "; kubelet pulls images only with a Secret, so keep that Secret for imagePullSecrets"
        } else {
            ""
        };
        at.note(
            f,
            node.get("type").unwrap_or(node),
            &format!("{field}.type"),
            format!("the Secret was of type {kind}: files replace it, one per key{extra}"),
        );
    }
    if let Some(meta) = node.get("metadata") {
        at.note(
            f,
            meta,
            &format!("{field}.metadata"),
            "labels and annotations of the Secret: files have none",
        );
    }
    if let Some(engine) = node.get("engineVersion").filter(|e| e.text() != Some("v2")) {
        at.refuse(
            f,
            engine,
            &format!("{field}.engineVersion"),
            "only v2 templates are translated",
        );
        return None;
    }
    if let Some(from) = node.get("templateFrom") {
        at.refuse(
            f,
            from,
            &format!("{field}.templateFrom"),
            "templates from ConfigMaps or Secrets are not translated; inline them under data",
        );
        return None;
    }
    if let Some(merge) = node
        .get("mergePolicy")
        .filter(|m| m.text() != Some("Replace"))
    {
        at.refuse(
            f,
            merge,
            &format!("{field}.mergePolicy"),
            "only Replace is converted: list the fetched keys under template.data as {{ .KEY }}",
        );
        return None;
    }
    let mut templates = Vec::new();
    for (key, text_node) in node.get("data").map_or(&[][..], Node::entries) {
        let kfield = format!("{field}.data.{key}");
        let Some(text) = text_node.text() else {
            at.refuse(f, text_node, &kfield, "expected a template string");
            continue;
        };
        match gotmpl::translate(text, Dialect::Eso) {
            Ok(translated) => templates.push(Node::map(vec![
                ("content", Node::str(translated.text)),
                ("destination", Node::str(format!("{dir}/{key}"))),
            ])),
            Err(error) => {
                let line = Node {
                    line: text_node.line + error.line - 1,
                    ..Node::str("")
                };
                at.refuse(
                    f,
                    &line,
                    &kfield,
                    format!("`{}`: {}", error.construct, error.reason),
                );
            }
        }
    }
    Some(templates)
}
