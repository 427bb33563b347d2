//! `migrate infisical-agent`: an agent configuration (`infisical agent --config FILE`) to a
//! configuration file and a pod fragment.
//!
//! The agent reads every credential from a file named in `auth.config`; so do we, except the
//! identity id, which is read from its file now and written into the configuration.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::gotmpl::{self, Dialect, Scope};
use super::yaml::Node;
use super::{documents, Conversion, Findings, Input, Place, Pod};
use crate::error::Fatal;

/// Converts the agent configuration in `inputs` (one file).
pub fn convert(inputs: &[Input], f: &mut Findings) -> Result<Vec<Conversion>, Fatal> {
    let mut conversions = Vec::new();
    for input in inputs {
        for document in documents(input)? {
            if let Some(c) = agent(input, &document, f) {
                conversions.push(c);
            }
        }
    }
    Ok(conversions)
}

/// A file named in the agent configuration: as given, else next to the configuration.
fn beside(config: &str, path: &str) -> PathBuf {
    let given = PathBuf::from(path);
    if given.is_relative() && !given.exists() {
        if let Some(dir) = Path::new(config).parent() {
            return dir.join(given);
        }
    }
    given
}

fn agent(input: &Input, root: &Node, f: &mut Findings) -> Option<Conversion> {
    let at = Place {
        file: &input.name,
        object: "agent configuration".into(),
    };
    let empty = Node::map(vec![]);
    at.known(
        f,
        root,
        "",
        &["infisical", "auth", "sinks", "templates", "cache"],
    );
    let mut config = Node::map(vec![]);
    let mut pod = Pod::default();

    let infisical = root.get("infisical").unwrap_or(&empty);
    at.known(
        f,
        infisical,
        "infisical",
        &[
            "address",
            "exit-after-auth",
            "revoke-credentials-on-shutdown",
            "retry-strategy",
        ],
    );
    if let Some(address) = infisical.get("address").and_then(Node::text) {
        if let Err(error) = crate::config::normalize_api_url(address) {
            at.refuse(f, infisical, "infisical.address", error.to_string());
        }
        config.push("api-url", Node::str(address));
    }
    for key in ["revoke-credentials-on-shutdown", "retry-strategy"] {
        if let Some(node) = infisical.get(key) {
            at.note(f, node, &format!("infisical.{key}"), "the agent's own behaviour: infisical-materializer retries with backoff and keeps its token in memory");
        }
    }
    if let Some(cache) = root.get("cache") {
        at.note(
            f,
            cache,
            "cache",
            "no cache is needed: nothing leases dynamic secrets",
        );
    }
    let once = infisical.get("exit-after-auth").and_then(Node::boolean) == Some(true);

    auth(
        root.get("auth").unwrap_or(&empty),
        &at,
        &input.name,
        &mut config,
        f,
    );

    for (index, sink) in root
        .get("sinks")
        .map_or(&[][..], Node::items)
        .iter()
        .enumerate()
    {
        let path = sink
            .get("config")
            .and_then(|c| c.get("path"))
            .and_then(Node::text)
            .unwrap_or("?");
        at.refuse(
            f,
            sink,
            &format!("sinks[{index}]"),
            format!(
                "infisical-materializer never writes its access token to a file ({path}); if \
                 nothing reads it, remove the sink (or pass --best-effort)"
            ),
        );
    }

    // The templates, and what they read.
    let mut templates = Vec::new();
    let mut scopes: Vec<(Scope, Vec<String>)> = Vec::new();
    let mut lists = false;
    let mut interval: Option<(std::time::Duration, String)> = None;
    let mut command: Option<(String, Option<String>)> = None;
    let mut dirs: Vec<String> = Vec::new();
    for (index, entry) in root
        .get("templates")
        .map_or(&[][..], Node::items)
        .iter()
        .enumerate()
    {
        let field = format!("templates[{index}]");
        at.known(
            f,
            entry,
            &field,
            &[
                "source-path",
                "template-content",
                "base64-template-content",
                "destination-path",
                "config",
            ],
        );
        let text = |key: &str| entry.get(key).and_then(Node::text);
        // (text, the file and line its line 1 is on)
        let source = match (
            text("source-path"),
            text("template-content"),
            text("base64-template-content"),
        ) {
            (Some(path), None, None) => {
                let file = beside(&input.name, path);
                match std::fs::read_to_string(&file) {
                    Ok(body) => Some((body, file.display().to_string(), 1)),
                    Err(e) => {
                        at.refuse(
                            f,
                            entry,
                            &format!("{field}.source-path"),
                            format!(
                                "cannot read {}: {e}; run migrate where the template is",
                                file.display()
                            ),
                        );
                        None
                    }
                }
            }
            (None, Some(body), None) => {
                let line = entry.get("template-content").map_or(0, |n| n.line);
                Some((body.to_owned(), input.name.clone(), line))
            }
            (None, None, Some(encoded)) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.split_whitespace().collect::<String>())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok());
                match decoded {
                    Some(body) => Some((
                        body,
                        format!("{} {field}.base64-template-content (decoded)", input.name),
                        1,
                    )),
                    None => {
                        at.refuse(
                            f,
                            entry,
                            &format!("{field}.base64-template-content"),
                            "not base64 of UTF-8 text",
                        );
                        None
                    }
                }
            }
            _ => {
                at.refuse(
                    f,
                    entry,
                    &field,
                    "give exactly one of source-path, template-content, base64-template-content",
                );
                None
            }
        };
        let Some(destination) = text("destination-path") else {
            at.refuse(f, entry, &format!("{field}.destination-path"), "required");
            continue;
        };
        let options = entry.get("config").unwrap_or(&empty);
        at.known(
            f,
            options,
            &format!("{field}.config"),
            &["polling-interval", "execute"],
        );
        if let Some(node) = options.get("polling-interval") {
            let text = node.text().unwrap_or("");
            match crate::cli::parse_duration(text) {
                Ok(d) if interval.as_ref().is_none_or(|(i, _)| d < *i) => {
                    if interval.is_some() {
                        at.note(
                            f,
                            node,
                            &format!("{field}.config.polling-interval"),
                            "one interval for every template: the shortest",
                        );
                    }
                    interval = Some((d, text.to_owned()));
                }
                Ok(_) => at.note(
                    f,
                    node,
                    &format!("{field}.config.polling-interval"),
                    "one interval for every template: the shortest",
                ),
                Err(_) => at.refuse(
                    f,
                    node,
                    &format!("{field}.config.polling-interval"),
                    format!("{text:?} is not a duration this converter reads (e.g. 60s, 5m)"),
                ),
            }
        }
        if let Some(execute) = options.get("execute") {
            let efield = format!("{field}.config.execute");
            at.known(f, execute, &efield, &["command", "timeout"]);
            let run = execute
                .get("command")
                .and_then(Node::text)
                .unwrap_or("")
                .trim()
                .to_owned();
            let timeout = execute
                .get("timeout")
                .and_then(Node::text)
                .filter(|t| *t != "0")
                .map(|t| format!("{t}s"));
            if run.contains(|c: char| "|&;<>()$`\\\"'*?~#".contains(c)) {
                at.refuse(f, execute, &format!("{efield}.command"), "it needs a shell, and on-change-exec runs a command directly (split on spaces); put it in a script, or use on-change-signal or on-change-url");
            } else if command.as_ref().is_some_and(|(c, _)| *c != run) {
                at.refuse(f, execute, &format!("{efield}.command"), "templates run different commands; infisical-materializer runs one on-change action per refresh");
            } else {
                command = Some((run, timeout));
            }
        }
        let Some((body, file, first_line)) = source else {
            continue;
        };
        match gotmpl::translate(&body, Dialect::Agent) {
            Ok(translated) => {
                lists |= translated.lists;
                for (scope, keys) in translated.scopes {
                    match scopes.iter_mut().find(|(s, _)| *s == scope) {
                        Some((_, known)) => known.extend(keys),
                        None => scopes.push((scope, keys)),
                    }
                }
                templates.push(Node::map(vec![
                    ("content", Node::str(translated.text)),
                    ("destination", Node::str(destination)),
                ]));
                let dir = Path::new(destination)
                    .parent()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default();
                if !dir.is_empty() && dir != "/" && !dirs.contains(&dir) {
                    dirs.push(dir);
                }
            }
            Err(error) => f.refused.push(super::Finding {
                at: format!("{file}:{}", first_line + error.line - 1),
                field: format!("{} {field}", at.object),
                reason: format!("`{}`: {}", error.construct, error.reason),
            }),
        }
    }
    if templates.is_empty() {
        if f.refused.is_empty() {
            at.refuse(f, root, "templates", "no template: nothing to write");
        }
        return None;
    }
    let sources = sources(&scopes, lists, &at, root, f)?;
    if !once {
        pod.sidecar = true;
        config.push(
            "interval",
            Node::str(interval.map_or("5m".to_owned(), |(_, text)| text)),
        );
        if let Some((run, timeout)) = command {
            config.push("on-change-exec", Node::str(run.clone()));
            if let Some(timeout) = timeout {
                config.push("on-change-timeout", Node::str(timeout));
            }
            pod.comments.push(format!(
                "on-change-exec runs {run:?} in the infisical-materializer container (no shell, \
                 not the app's files): if it is the app's script, use on-change-signal with \
                 shareProcessNamespace, or on-change-url."
            ));
        }
    }
    config.push("sources", Node::seq(sources));
    config.push("templates", Node::seq(templates));
    for (index, dir) in dirs.iter().enumerate() {
        pod.files_at(&format!("secrets-{index}"), dir);
    }
    let stem = Path::new(&input.name)
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_owned();
    Some(Conversion {
        name: if name.is_empty() || name == "stdin" {
            "app".into()
        } else {
            name
        },
        namespace: None,
        origin: format!("the agent configuration {}", input.name),
        config,
        pod,
    })
}

fn sources(
    scopes: &[(Scope, Vec<String>)],
    lists: bool,
    at: &Place,
    root: &Node,
    f: &mut Findings,
) -> Option<Vec<Node>> {
    if scopes.len() > 1 && lists {
        at.refuse(
            f,
            root,
            "templates",
            "the templates list secrets and read several folders; infisical-materializer renders \
             every template from one set, so a listing would see the other folders' secrets too",
        );
        return None;
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for (scope, keys) in scopes {
        let project = if scope.by_slug {
            "project-slug"
        } else {
            "project-id"
        };
        let mut source = Node::map(vec![
            (project, Node::str(scope.project.clone())),
            ("environment", Node::str(scope.environment.clone())),
            ("path", Node::str(scope.path.clone())),
        ]);
        if scope.recursive {
            source.push("recursive", Node::plain(true));
        }
        if !scope.expand {
            source.push("expand-references", Node::plain(false));
        }
        if scopes.len() > 1 {
            if let Some(key) = keys.iter().find(|k| seen.contains(&k.as_str())) {
                at.refuse(f, root, "templates", format!("the key {key} is read from two folders; one set of secrets cannot hold both"));
                return None;
            }
            seen.extend(keys.iter().map(String::as_str));
            source.push(
                "keys",
                Node::seq(keys.iter().map(|k| Node::str(k.clone())).collect()),
            );
        }
        out.push(source);
    }
    if out.is_empty() {
        at.refuse(
            f,
            root,
            "templates",
            "no template reads a secret (listSecrets, getSecretByName)",
        );
        return None;
    }
    Some(out)
}

fn auth(auth: &Node, at: &Place, file: &str, config: &mut Node, f: &mut Findings) {
    let kind = auth.get("type").and_then(Node::text).unwrap_or("");
    let empty = Node::map(vec![]);
    let options = auth.get("config").unwrap_or(&empty);
    let path = |key: &str| options.get(key).and_then(Node::text);
    let identity = |config: &mut Node, f: &mut Findings| {
        let Some(id_file) = path("identity-id") else {
            at.refuse(f, options, "auth.config.identity-id", "required");
            return;
        };
        let file_path = beside(file, id_file);
        match std::fs::read_to_string(&file_path) {
            Ok(id) => config.push("identity-id", Node::str(id.trim())),
            Err(e) => at.refuse(
                f,
                options.get("identity-id").unwrap_or(options),
                "auth.config.identity-id",
                format!("the agent reads the identity id from {}, which cannot be read here ({e}); run migrate where it is, or write identity-id: ID in config.yaml", file_path.display()),
            ),
        }
    };
    let (method, known): (&str, &[&str]) = match kind {
        "universal-auth" => (
            "universal-auth",
            &["client-id", "client-secret", "remove_client_secret_on_read"],
        ),
        "kubernetes" => ("kubernetes", &["identity-id", "service-account-token"]),
        "azure" | "gcp-id-token" | "aws-iam" => (kind, &["identity-id"]),
        "gcp-iam" => ("gcp-iam", &["identity-id", "service-account-key"]),
        _ => {
            at.refuse(f, auth, "auth.type", format!("{kind:?}: infisical-materializer has no such login (universal-auth, kubernetes, azure, gcp-id-token, gcp-iam and aws-iam convert)"));
            return;
        }
    };
    at.known(f, options, "auth.config", known);
    config.push("auth-method", Node::str(method));
    match kind {
        "universal-auth" => {
            for (key, ours) in [
                ("client-id", "client-id-file"),
                ("client-secret", "client-secret-file"),
            ] {
                match path(key) {
                    Some(p) => config.push(ours, Node::str(p)),
                    None => at.refuse(f, options, &format!("auth.config.{key}"), "required"),
                }
            }
            if options
                .get("remove_client_secret_on_read")
                .and_then(Node::boolean)
                == Some(true)
            {
                at.note(
                    f,
                    options,
                    "auth.config.remove_client_secret_on_read",
                    "the client secret file is kept: it is read again at every login",
                );
            }
        }
        "kubernetes" => {
            identity(config, f);
            if let Some(p) = path("service-account-token") {
                config.push("service-account-token-file", Node::str(p));
            }
        }
        "gcp-iam" => {
            identity(config, f);
            if let Some(p) = path("service-account-key") {
                config.push("gcp-service-account-key-file", Node::str(p));
            }
        }
        _ => identity(config, f),
    }
}
