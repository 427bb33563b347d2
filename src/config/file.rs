//! The configuration file (`--config FILE`), stage one: the YAML read into plain structs.
//!
//! This layer checks the file's shape only: every key is known, every value has the right kind
//! (a string, true or false, a number, a list, a mapping), the entries of `sources`, `outputs` and
//! `templates` give what they must. Values stay as written: durations (`"30s"`), modes
//! (`"0440"`), URLs and enum names (`format: dotenv`) are strings, checked by the typed
//! configuration exactly as it checks the flags.
//!
//! Keys are the long flag names (kebab-case). Secrets by value (`client-secret`, `token`) are
//! refused: the file holds only the paths of the files that contain them.
//!
//! The YAML is read by `saphyr_parser`'s event parser into a small tree, then deserialized by
//! the `serde` deserializer below, which we own for three reasons:
//! - a scalar read as a string keeps its text as written: `mode: 0440` is the string `"0440"`,
//!   never the number 288 (YAML 1.1 octal) or 440 (YAML 1.2 decimal), so a mode is always read
//!   as octal digits, like `--file-mode`;
//! - errors are ours: a key path (`sources[0].recursive`), what is accepted, and a "did you
//!   mean" for unknown keys;
//! - an error never holds a value from the file (the reasons are built from key names and the
//!   kinds of values only), so a secret pasted in the wrong place is never echoed to a log.
//!
//! The YAML accepted: one document; anchors and aliases (bounded by `MAX_NODES`); no tags but
//! `!!str`; no merge keys (`<<` is an unknown key); a key given twice is an error. Booleans are
//! `true`/`false` only (YAML 1.2: `yes` is a string, refused where a boolean is expected), and a
//! null value (`~`, `null`, nothing) is the same as an absent key.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use saphyr_parser::{Event, Parser, ScalarStyle, Tag};
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::api::ProjectRef;
use crate::error::exit;

/// A configuration file that cannot be used. Every variant exits 64.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file cannot be read (missing, unreadable, not UTF-8).
    #[error("{}: cannot read the configuration file: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not YAML, or YAML this file does not use (several documents, tags).
    #[error("{origin} line {line}: {reason}")]
    Syntax {
        /// The file (as given), or what the text came from.
        origin: String,
        /// The line, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A key that is unknown, missing, or whose value has the wrong kind.
    #[error("{origin}: {}{reason}", key_prefix(key))]
    Key {
        /// The file (as given), or what the text came from.
        origin: String,
        /// The key path, e.g. `sources[1].environment` (empty: the whole file).
        key: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

impl FileError {
    /// The documented exit code: 64 (bad configuration).
    pub fn exit_code(&self) -> u8 {
        exit::USAGE
    }
}

/// The whole file. A key that is absent is `None` (or empty), so that flags and environment
/// variables, which override the file, can tell "not in the file" from a value.
///
/// The top-level keys are the long flags; each field is named as in [`crate::cli`].
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawConfig {
    /// `api-url`.
    pub api_url: Option<String>,
    /// `ca-cert`.
    pub ca_cert: Option<PathBuf>,
    /// `auth-method` (checked in stage two).
    pub auth_method: Option<String>,
    /// `client-id` (an id, not a secret).
    pub client_id: Option<String>,
    /// `client-id-file`.
    pub client_id_file: Option<PathBuf>,
    /// `client-secret-file` (the secret itself is never accepted in the file).
    pub client_secret_file: Option<PathBuf>,
    /// `identity-id`.
    pub identity_id: Option<String>,
    /// `service-account-token-file`.
    pub service_account_token_file: Option<PathBuf>,
    /// `token-file` (the token itself is never accepted in the file).
    pub token_file: Option<PathBuf>,
    /// `jwt-file` (the JWT itself is never accepted in the file).
    pub jwt_file: Option<PathBuf>,
    /// `gcp-service-account-key-file`.
    pub gcp_service_account_key_file: Option<PathBuf>,
    /// `azure-resource`.
    pub azure_resource: Option<String>,
    /// `azure-client-id`.
    pub azure_client_id: Option<String>,
    /// `project-id`.
    pub project_id: Option<String>,
    /// `project-slug`.
    pub project_slug: Option<String>,
    /// `env`.
    #[serde(rename = "env")]
    pub environment: Option<String>,
    /// `path`.
    pub path: Option<String>,
    /// `recursive`.
    pub recursive: Option<bool>,
    /// `no-imports`.
    pub no_imports: Option<bool>,
    /// `no-expand-references`.
    pub no_expand_references: Option<bool>,
    /// `tag`: a list of tag slugs.
    #[serde(rename = "tag")]
    pub tags: Option<Vec<String>>,
    /// `allow-empty`.
    pub allow_empty: Option<bool>,
    /// `mlock`.
    pub mlock: Option<bool>,
    /// `key`: like repeated `--key`, or a mapping REMOTE: LOCAL.
    #[serde(rename = "key")]
    pub keys: Option<KeySelection>,
    /// `key-matching`: a regular expression.
    pub key_matching: Option<String>,
    /// `request-timeout`: a duration such as `"10s"`.
    pub request_timeout: Option<String>,
    /// `max-response-size`: a size such as `16MiB`.
    pub max_response_size: Option<String>,
    /// `retry-deadline`: a duration.
    pub retry_deadline: Option<String>,
    /// `log-format` (`text` or `json`).
    pub log_format: Option<String>,
    /// `log-level`: a log filter.
    pub log_level: Option<String>,
    /// `out-dir`.
    pub out_dir: Option<PathBuf>,
    /// `out-file`.
    pub out_file: Option<PathBuf>,
    /// `format` of `out-file` (`dotenv`, `shell`, `json`, `yaml`).
    pub format: Option<String>,
    /// `file-mode`: octal digits as written (see [`RawOutput::mode`]).
    pub file_mode: Option<String>,
    /// `owner`: `UID` or `UID:GID`.
    pub owner: Option<String>,
    /// `require-tmpfs`.
    pub require_tmpfs: Option<bool>,
    /// `invalid-keys` (`fail` or `skip`).
    pub invalid_keys: Option<String>,
    /// `interval`: a duration.
    pub interval: Option<String>,
    /// `jitter`: a fraction of the interval.
    pub jitter: Option<f64>,
    /// `on-change-signal`.
    pub on_change_signal: Option<String>,
    /// `on-change-pid-file`.
    pub on_change_pid_file: Option<PathBuf>,
    /// `on-change-exec`: a command line, split on spaces.
    pub on_change_exec: Option<String>,
    /// `on-change-timeout`: a duration.
    pub on_change_timeout: Option<String>,
    /// `on-change-url`.
    pub on_change_url: Option<String>,
    /// `listen`: `PORT`, `:PORT`, `IP:PORT` or `HOST:PORT`.
    pub listen: Option<String>,
    /// `max-staleness`: a duration.
    pub max_staleness: Option<String>,
    /// `renew-token`.
    pub renew_token: Option<bool>,
    /// `preserve-env`.
    pub preserve_env: Option<bool>,
    /// `keep-env`: a list of variable names.
    pub keep_env: Option<Vec<String>>,
    /// `restart-signal`.
    pub restart_signal: Option<String>,
    /// `grace`: a duration.
    pub grace: Option<String>,
    /// `on-conflict`: what happens when two sources produce the same final key.
    pub on_conflict: Option<OnConflict>,
    /// `sources`: where the secrets come from, in order (a later source wins a conflict).
    #[serde(default)]
    pub sources: Vec<RawSource>,
    /// `outputs`: where the secrets are written.
    #[serde(default)]
    pub outputs: Vec<RawOutput>,
    /// `templates`: files rendered from the secrets.
    #[serde(default)]
    pub templates: Vec<RawTemplate>,
}

/// `on-conflict`: the same final key from two sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnConflict {
    /// The later source wins, with a warning naming the key and both sources.
    Warn,
    /// Refuse the result (exit 65).
    Fail,
}

/// `keys:` of a source, or the top-level `key:`: which remote keys to take, and their local names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySelection {
    /// `[A, B=C]`: like repeated `--key`, each `REMOTE` or `REMOTE=LOCAL` (not yet split).
    List(Vec<String>),
    /// `{A: B}`: REMOTE → LOCAL, in the file's order.
    Map(Vec<(String, String)>),
}

impl<'de> Deserialize<'de> for KeySelection {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeysVisitor;

        impl<'de> Visitor<'de> for KeysVisitor {
            type Value = KeySelection;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping REMOTE: LOCAL or a list of REMOTE or REMOTE=LOCAL")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeySelection, A::Error> {
                let mut specs = Vec::new();
                while let Some(spec) = seq.next_element()? {
                    specs.push(spec);
                }
                Ok(KeySelection::List(specs))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeySelection, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(KeySelection::Map(pairs))
            }
        }

        deserializer.deserialize_any(KeysVisitor)
    }
}

/// One entry of `sources`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "SourceEntry")]
pub struct RawSource {
    /// `project-id` or `project-slug` (exactly one).
    pub project: ProjectRef,
    /// `environment` (required).
    pub environment: String,
    /// `path`: the folder.
    pub path: Option<String>,
    /// `recursive`.
    pub recursive: Option<bool>,
    /// `imports`: include secrets imported into the folder.
    pub imports: Option<bool>,
    /// `expand-references`: have the server expand `${...}` references.
    pub expand_references: Option<bool>,
    /// `tags`: only secrets with these tag slugs (empty: no filter).
    pub tags: Vec<String>,
    /// `keys`: only these keys, renamed.
    pub keys: Option<KeySelection>,
    /// `keys-matching`: only keys matching this regular expression.
    pub keys_matching: Option<String>,
    /// `prefix`: added to every final key of this source.
    pub prefix: Option<String>,
}

/// A `sources` entry as written, before the project choice is checked.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct SourceEntry {
    project_id: Option<String>,
    project_slug: Option<String>,
    environment: String,
    path: Option<String>,
    recursive: Option<bool>,
    imports: Option<bool>,
    expand_references: Option<bool>,
    #[serde(default)]
    tags: Vec<String>,
    keys: Option<KeySelection>,
    keys_matching: Option<String>,
    prefix: Option<String>,
}

impl TryFrom<SourceEntry> for RawSource {
    type Error = &'static str;

    fn try_from(entry: SourceEntry) -> Result<Self, Self::Error> {
        let project = match (entry.project_id, entry.project_slug) {
            (Some(id), None) => ProjectRef::Id(id),
            (None, Some(slug)) => ProjectRef::Slug(slug),
            _ => return Err("give exactly one of project-id or project-slug"),
        };
        Ok(RawSource {
            project,
            environment: entry.environment,
            path: entry.path,
            recursive: entry.recursive,
            imports: entry.imports,
            expand_references: entry.expand_references,
            tags: entry.tags,
            keys: entry.keys,
            keys_matching: entry.keys_matching,
            prefix: entry.prefix,
        })
    }
}

/// One entry of `outputs`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "OutputEntry")]
pub struct RawOutput {
    /// `dir` or `file` (exactly one), with what only that kind takes.
    pub target: OutputTarget,
    /// `mode`: octal digits as written. An unquoted `0440` is read as the text `0440` (never as
    /// YAML's number 288 or 440), so `0440`, `440`, `"0440"` and `0o440` all mean r--r-----.
    pub mode: Option<String>,
    /// `owner`: `UID` or `UID:GID`.
    pub owner: Option<String>,
}

/// What an output writes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputTarget {
    /// `dir`: one file per secret, swapped atomically.
    Dir {
        /// The directory.
        path: PathBuf,
        /// `keys`: options of single files, by final key.
        keys: BTreeMap<String, KeyOptions>,
    },
    /// `file`: every secret in one file.
    File {
        /// The file.
        path: PathBuf,
        /// `format` (`dotenv`, `shell`, `json`, `yaml`; checked in stage two).
        format: Option<String>,
    },
}

/// Options of one key's file in a `dir` output.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct KeyOptions {
    /// `decode`: write the decoded bytes instead of the value.
    pub decode: Option<Decode>,
}

/// `decode` of a key's file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decode {
    /// The value is base64 (standard alphabet); the file gets the decoded bytes.
    Base64,
}

/// An `outputs` entry as written, before the dir/file choice is checked.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct OutputEntry {
    dir: Option<PathBuf>,
    file: Option<PathBuf>,
    format: Option<String>,
    mode: Option<String>,
    owner: Option<String>,
    keys: Option<BTreeMap<String, KeyOptions>>,
}

impl TryFrom<OutputEntry> for RawOutput {
    type Error = &'static str;

    fn try_from(entry: OutputEntry) -> Result<Self, Self::Error> {
        let target = match (entry.dir, entry.file) {
            (Some(path), None) => {
                if entry.format.is_some() {
                    return Err(
                        "format is only for a file output (a dir holds one file per secret)",
                    );
                }
                OutputTarget::Dir {
                    path,
                    keys: entry.keys.unwrap_or_default(),
                }
            }
            (None, Some(path)) => {
                if entry.keys.is_some() {
                    return Err("keys (options of single files) are only for a dir output");
                }
                OutputTarget::File {
                    path,
                    format: entry.format,
                }
            }
            _ => return Err("give exactly one of dir or file"),
        };
        Ok(RawOutput {
            target,
            mode: entry.mode,
            owner: entry.owner,
        })
    }
}

/// One entry of `templates`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "TemplateEntry")]
pub struct RawTemplate {
    /// `source` or `content` (exactly one).
    pub text: TemplateText,
    /// `destination` (required): the rendered file.
    pub destination: PathBuf,
    /// `mode`: octal digits as written (see [`RawOutput::mode`]).
    pub mode: Option<String>,
    /// `owner`: `UID` or `UID:GID`.
    pub owner: Option<String>,
}

/// Where a template's text comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateText {
    /// `source`: a template file.
    Source(PathBuf),
    /// `content`: the template inline.
    Content(String),
}

/// A `templates` entry as written, before the source/content choice is checked.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct TemplateEntry {
    source: Option<PathBuf>,
    content: Option<String>,
    destination: PathBuf,
    mode: Option<String>,
    owner: Option<String>,
}

impl TryFrom<TemplateEntry> for RawTemplate {
    type Error = &'static str;

    fn try_from(entry: TemplateEntry) -> Result<Self, Self::Error> {
        let text = match (entry.source, entry.content) {
            (Some(path), None) => TemplateText::Source(path),
            (None, Some(content)) => TemplateText::Content(content),
            _ => return Err("give exactly one of source or content"),
        };
        Ok(RawTemplate {
            text,
            destination: entry.destination,
            mode: entry.mode,
            owner: entry.owner,
        })
    }
}

impl RawConfig {
    /// Reads and parses the configuration file at `path`; errors name the file as given.
    pub fn load(path: &Path) -> Result<RawConfig, FileError> {
        let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
            path: path.to_owned(),
            source,
        })?;
        RawConfig::parse(&text, &path.display().to_string())
    }

    /// Parses the text of a configuration file; `origin` (the file's name) starts every error.
    /// An empty text, `{}` or `null` is an empty configuration.
    pub fn parse(text: &str, origin: &str) -> Result<RawConfig, FileError> {
        let syntax = |(line, reason): (usize, String)| FileError::Syntax {
            origin: origin.to_owned(),
            line,
            reason,
        };
        let root = match read_tree(text).map_err(syntax)? {
            None => return Ok(RawConfig::default()),
            Some(node) if node.is_null() => return Ok(RawConfig::default()),
            Some(node @ Node::Map(_)) => node,
            Some(node) => {
                return Err(FileError::Key {
                    origin: origin.to_owned(),
                    key: String::new(),
                    reason: format!(
                        "expected a mapping of keys (e.g. api-url: https://…), found {}",
                        node.kind()
                    ),
                })
            }
        };
        RawConfig::deserialize(root).map_err(|error| FileError::Key {
            origin: origin.to_owned(),
            key: error.key_path(),
            reason: error.reason,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The YAML tree.

/// Past this many nodes (counting every copy an alias makes) the file is refused: a config file
/// has hundreds, and nested aliases could otherwise expand without bound.
const MAX_NODES: usize = 100_000;

/// One node of the YAML tree. Scalars keep their text as written; `plain` is false for quoted
/// and block scalars (and `!!str`), which are always strings.
#[derive(Clone, Debug)]
enum Node {
    Scalar { text: String, plain: bool },
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

/// What a plain scalar means under the YAML 1.2 core schema (only the kind matters here).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Plain {
    Null,
    Bool(bool),
    Number(f64),
    Text,
}

fn resolve_plain(text: &str) -> Plain {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Plain::Null,
        "true" | "True" | "TRUE" => Plain::Bool(true),
        "false" | "False" | "FALSE" => Plain::Bool(false),
        _ => yaml_number(text).map_or(Plain::Text, Plain::Number),
    }
}

/// A YAML 1.2 core-schema number: decimal, `0o` octal, `0x` hex, or a float (`.inf`, `.nan`).
fn yaml_number(text: &str) -> Option<f64> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let sign = if negative { -1.0 } else { 1.0 };
    if let Some(octal) = text.strip_prefix("0o") {
        return u64::from_str_radix(octal, 8).ok().map(|n| n as f64);
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(|n| n as f64);
    }
    match digits {
        ".inf" | ".Inf" | ".INF" => return Some(sign * f64::INFINITY),
        ".nan" | ".NaN" | ".NAN" if digits.len() == text.len() => return Some(f64::NAN),
        _ => {}
    }
    // Rust also parses `inf`, `nan` and `infinity`, which YAML reads as strings.
    let numeric = digits.bytes().any(|b| b.is_ascii_digit())
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if numeric {
        text.parse().ok()
    } else {
        None
    }
}

impl Node {
    fn is_null(&self) -> bool {
        matches!(self, Node::Scalar { text, plain: true } if resolve_plain(text) == Plain::Null)
    }

    /// The kind of the value, for "found …" in an error (never the value itself).
    fn kind(&self) -> &'static str {
        match self {
            Node::Map(_) => "a mapping",
            Node::Seq(_) => "a list",
            Node::Scalar { plain: false, .. } => "a string",
            Node::Scalar { text, plain: true } => match resolve_plain(text) {
                Plain::Null => "nothing",
                Plain::Bool(_) => "true or false",
                Plain::Number(_) => "a number",
                Plain::Text => "a string",
            },
        }
    }

    fn size(&self) -> usize {
        match self {
            Node::Scalar { .. } => 1,
            Node::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            Node::Map(entries) => 1 + entries.iter().map(|(_, n)| 1 + n.size()).sum::<usize>(),
        }
    }
}

/// A mapping or list being read.
enum Open {
    Seq {
        items: Vec<Node>,
        anchor: usize,
    },
    Map {
        entries: Vec<(String, Node)>,
        key: Option<String>,
        anchor: usize,
    },
}

/// Reads one YAML document into a tree (`None`: no document). Errors carry the line.
fn read_tree(text: &str) -> Result<Option<Node>, (usize, String)> {
    let mut open: Vec<Open> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root = None;
    let mut documents = 0;
    let mut nodes = 0usize;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| (e.marker().line(), e.info().to_owned()))?;
        let line = span.start.line();
        let (node, anchor) = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err((
                        line,
                        "only one YAML document is allowed (a second ---)".into(),
                    ));
                }
                continue;
            }
            Event::SequenceStart(anchor, tag) => {
                refuse_tag(tag.as_deref(), line)?;
                open.push(Open::Seq {
                    items: Vec::new(),
                    anchor,
                });
                continue;
            }
            Event::MappingStart(anchor, tag) => {
                refuse_tag(tag.as_deref(), line)?;
                open.push(Open::Map {
                    entries: Vec::new(),
                    key: None,
                    anchor,
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match open.pop() {
                Some(Open::Seq { items, anchor }) => (Node::Seq(items), anchor),
                Some(Open::Map {
                    entries, anchor, ..
                }) => (Node::Map(entries), anchor),
                None => return Err((line, "unbalanced end of a list or mapping".into())),
            },
            Event::Scalar(value, style, anchor, tag) => {
                let is_str = match tag.as_deref() {
                    None => false,
                    Some(tag) if tag.is_yaml_core_schema() && tag.suffix == "str" => true,
                    Some(tag) => return Err((line, unsupported_tag(tag))),
                };
                let plain = style == ScalarStyle::Plain && !is_str;
                nodes += 1;
                let node = Node::Scalar {
                    text: value.into_owned(),
                    plain,
                };
                (node, anchor)
            }
            Event::Alias(id) => {
                let node = anchors.get(&id).cloned().ok_or((
                    line,
                    "an alias (*name) before its anchor (&name)".to_owned(),
                ))?;
                nodes += node.size();
                (node, 0)
            }
            _ => continue,
        };
        if nodes > MAX_NODES {
            return Err((
                line,
                format!("too large: more than {MAX_NODES} values (aliases included)"),
            ));
        }
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match open.last_mut() {
            None => root = Some(node),
            Some(Open::Seq { items, .. }) => items.push(node),
            Some(Open::Map { entries, key, .. }) => match key.take() {
                Some(key) => entries.push((key, node)),
                None => {
                    let Node::Scalar { text, .. } = node else {
                        return Err((line, "a key must be a name, not a list or mapping".into()));
                    };
                    if entries.iter().any(|(existing, _)| *existing == text) {
                        return Err((line, format!("key {text} given twice")));
                    }
                    *key = Some(text);
                }
            },
        }
    }
    Ok(root)
}

fn refuse_tag(tag: Option<&Tag>, line: usize) -> Result<(), (usize, String)> {
    match tag {
        None => Ok(()),
        Some(tag) => Err((line, unsupported_tag(tag))),
    }
}

fn unsupported_tag(tag: &Tag) -> String {
    format!("YAML tags such as {tag} are not used here (only !!str)")
}

// ---------------------------------------------------------------------------------------------
// The deserializer over the tree.

/// One step of a key path.
#[derive(Debug)]
enum Segment {
    Key(String),
    Index(usize),
}

/// A deserialization error: the reason, and the key path gathered as it travels up the tree.
#[derive(Debug)]
struct DeError {
    /// Innermost first.
    path: Vec<Segment>,
    reason: String,
}

impl DeError {
    fn new(reason: impl Into<String>) -> Self {
        DeError {
            path: Vec::new(),
            reason: reason.into(),
        }
    }

    fn under(mut self, segment: Segment) -> Self {
        self.path.push(segment);
        self
    }

    /// `sources[1].environment`.
    fn key_path(&self) -> String {
        let mut text = String::new();
        for segment in self.path.iter().rev() {
            match segment {
                Segment::Key(key) if text.is_empty() => text.push_str(key),
                Segment::Key(key) => {
                    text.push('.');
                    text.push_str(key);
                }
                Segment::Index(index) => text.push_str(&format!("[{index}]")),
            }
        }
        text
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for DeError {}

/// The kind of an unexpected value, never the value itself.
fn unexpected_kind(unexpected: de::Unexpected<'_>) -> &'static str {
    use de::Unexpected as U;
    match unexpected {
        U::Bool(_) => "true or false",
        U::Unsigned(_) | U::Signed(_) | U::Float(_) => "a number",
        U::Char(_) | U::Str(_) | U::Bytes(_) => "a string",
        U::Unit | U::Option => "nothing",
        U::Seq => "a list",
        U::Map => "a mapping",
        _ => "another kind of value",
    }
}

/// `a, b or c`.
fn one_of(names: &[&str]) -> String {
    match names {
        [] => "nothing".into(),
        [only] => (*only).into(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(reason: T) -> Self {
        DeError::new(reason.to_string())
    }

    fn invalid_type(unexpected: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        DeError::new(format!(
            "expected {expected}, found {}",
            unexpected_kind(unexpected)
        ))
    }

    fn invalid_value(_: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        DeError::new(format!("expected {expected}"))
    }

    fn invalid_length(_: usize, expected: &dyn de::Expected) -> Self {
        DeError::new(format!("expected {expected}"))
    }

    fn unknown_variant(_: &str, expected: &'static [&'static str]) -> Self {
        DeError::new(format!("expected {}", one_of(expected)))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError::new(unknown_key_reason(field, expected))
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::new("required").under(Segment::Key(field.into()))
    }

    fn duplicate_field(_: &'static str) -> Self {
        DeError::new("given twice")
    }
}

/// Keys that would hold a secret by value, and the key to use instead.
const VALUE_SECRETS: &[(&str, &str)] = &[
    (
        "client-secret",
        "client-secret-file (or the variable INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET)",
    ),
    ("token", "token-file (or the variable INFISICAL_TOKEN)"),
];

/// Names people write for a key of the other level (flags at the top, entries below).
const RELATED_KEYS: &[(&str, &str)] = &[
    ("environment", "env"),
    ("env", "environment"),
    ("imports", "no-imports"),
    ("no-imports", "imports"),
    ("expand-references", "no-expand-references"),
    ("no-expand-references", "expand-references"),
    ("keys-matching", "key-matching"),
    ("key-matching", "keys-matching"),
    ("mode", "file-mode"),
    ("file-mode", "mode"),
    ("dir", "out-dir"),
    ("out-dir", "dir"),
    ("file", "out-file"),
    ("out-file", "file"),
    ("template", "templates"),
    ("source", "sources"),
    ("output", "outputs"),
];

fn unknown_key_reason(field: &str, expected: &'static [&'static str]) -> String {
    if let Some((_, instead)) = VALUE_SECRETS.iter().find(|(key, _)| *key == field) {
        return format!(
            "a secret is not accepted in the configuration file; put it in a file and give {instead}"
        );
    }
    if let Some(suggestion) = did_you_mean(field, expected) {
        return format!("unknown key (did you mean {suggestion}?)");
    }
    if expected.len() <= 12 {
        format!("unknown key (accepted: {})", expected.join(", "))
    } else {
        "unknown key (accepted: the long flag names such as api-url or out-dir, and on-conflict, \
         sources, outputs, templates)"
            .into()
    }
}

/// `apiUrl`, `api_url` → `apiurl`.
fn normalize_key(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The accepted key closest to `field`: a related key of the other level (`environment` for
/// `env`), the same letters in another case or with `_` for `-`, or a small typo.
fn did_you_mean(field: &str, expected: &'static [&'static str]) -> Option<&'static str> {
    let wanted = normalize_key(field);
    let related = RELATED_KEYS
        .iter()
        .filter(|(other, _)| normalize_key(other) == wanted)
        .find_map(|(_, key)| expected.iter().copied().find(|k| k == key));
    related.or_else(|| {
        expected
            .iter()
            .copied()
            .map(|key| {
                let distance = strsim::damerau_levenshtein(&wanted, &normalize_key(key));
                (distance, key)
            })
            .filter(|(distance, key)| *distance <= (key.len() / 4).max(1))
            .min_by_key(|(distance, _)| *distance)
            .map(|(_, key)| key)
    })
}

impl Node {
    /// An error for a value of the wrong kind: what is accepted, and the kind found.
    fn mismatch(&self, expected: &str) -> DeError {
        DeError::new(format!("expected {expected}, found {}", self.kind()))
    }

    fn plain(&self) -> Option<Plain> {
        match self {
            Node::Scalar { text, plain: true } => Some(resolve_plain(text)),
            _ => None,
        }
    }
}

impl<'de> de::Deserializer<'de> for Node {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Node::Map(entries) => visitor.visit_map(MapDe::new(entries)),
            Node::Seq(items) => visitor.visit_seq(SeqDe::new(items)),
            Node::Scalar { text, plain: false } => visitor.visit_string(text),
            Node::Scalar { text, plain: true } => match resolve_plain(&text) {
                Plain::Null => visitor.visit_unit(),
                Plain::Bool(value) => visitor.visit_bool(value),
                Plain::Number(value) => visitor.visit_f64(value),
                Plain::Text => visitor.visit_string(text),
            },
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.plain() {
            Some(Plain::Bool(value)) => visitor.visit_bool(value),
            _ => Err(self.mismatch("true or false")),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.plain() {
            Some(Plain::Number(value)) => visitor.visit_f64(value),
            _ => Err(self.mismatch("a number, e.g. 0.1")),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    /// Any scalar but null, with its text as written: `0440` stays `"0440"`.
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Node::Scalar { text, .. } if !self.is_null() => visitor.visit_string(text),
            _ => Err(self.mismatch("a string")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_string(visitor)
    }

    /// Null (`~`, `null` or nothing) is an absent value.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Node::Seq(items) => visitor.visit_seq(SeqDe::new(items)),
            _ => Err(self.mismatch("a list, e.g. [a, b]")),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self {
            Node::Map(entries) => visitor.visit_map(MapDe::new(entries)),
            _ => Err(self.mismatch("a mapping (key: value)")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self {
            Node::Map(entries) => visitor.visit_map(MapDe::new(entries)),
            _ => Err(self.mismatch("a mapping of keys")),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self {
            Node::Scalar { text, .. } if !self.is_null() => {
                visitor.visit_enum(IntoDeserializer::<DeError>::into_deserializer(text))
            }
            _ => Err(self.mismatch(&one_of(variants))),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 char bytes byte_buf
        unit unit_struct tuple tuple_struct
    }
}

/// A mapping's entries; each error from a value gets the value's key in its path.
struct MapDe {
    entries: std::vec::IntoIter<(String, Node)>,
    value: Option<(String, Node)>,
}

impl MapDe {
    fn new(entries: Vec<(String, Node)>) -> Self {
        MapDe {
            entries: entries.into_iter(),
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for MapDe {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, node)) = self.entries.next() else {
            return Ok(None);
        };
        let deserializer: de::value::StrDeserializer<'_, DeError> =
            key.as_str().into_deserializer();
        let value = seed
            .deserialize(deserializer)
            .map_err(|error| error.under(Segment::Key(key.clone())))?;
        self.value = Some((key, node));
        Ok(Some(value))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (key, node) = self
            .value
            .take()
            .ok_or_else(|| DeError::new("a value without its key"))?;
        seed.deserialize(node)
            .map_err(|error| error.under(Segment::Key(key)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// A list's items; each error from an item gets the item's index in its path.
struct SeqDe {
    items: std::iter::Enumerate<std::vec::IntoIter<Node>>,
}

impl SeqDe {
    fn new(items: Vec<Node>) -> Self {
        SeqDe {
            items: items.into_iter().enumerate(),
        }
    }
}

impl<'de> SeqAccess<'de> for SeqDe {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some((index, node)) = self.items.next() else {
            return Ok(None);
        };
        seed.deserialize(node)
            .map(Some)
            .map_err(|error| error.under(Segment::Index(index)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RawConfig, FileError> {
        RawConfig::parse(text, "config.yaml")
    }

    fn error(text: &str) -> String {
        parse(text).expect_err("refused").to_string()
    }

    #[test]
    fn the_shipped_example_parses_to_what_it_says() {
        let config = RawConfig::parse(
            include_str!("../../examples/config.yaml"),
            "examples/config.yaml",
        )
        .expect("the example parses");
        let expected = RawConfig {
            api_url: Some("https://infisical.example.com".into()),
            client_id_file: Some("/var/run/infisical/client-id".into()),
            client_secret_file: Some("/var/run/infisical/client-secret".into()),
            request_timeout: Some("10s".into()),
            retry_deadline: Some("2m".into()),
            log_format: Some("json".into()),
            file_mode: Some("0440".into()),
            owner: Some("1000:1000".into()),
            require_tmpfs: Some(true),
            interval: Some("5m".into()),
            jitter: Some(0.1),
            on_change_signal: Some("HUP".into()),
            on_change_pid_file: Some("/run/app/app.pid".into()),
            listen: Some(":9464".into()),
            on_conflict: Some(OnConflict::Fail),
            sources: vec![
                RawSource {
                    project: ProjectRef::Slug("backend-a1b2".into()),
                    environment: "prod".into(),
                    path: Some("/backend".into()),
                    recursive: Some(false),
                    imports: Some(true),
                    expand_references: Some(true),
                    tags: vec![],
                    keys: Some(KeySelection::Map(
                        [
                            ("DB_USER", "DATABASE_USER"),
                            ("DB_PASSWORD", "DATABASE_PASSWORD"),
                            ("DB_HOST", "DATABASE_HOST"),
                            ("KEYSTORE", "KEYSTORE"),
                        ]
                        .map(|(remote, local)| (remote.to_owned(), local.to_owned()))
                        .to_vec(),
                    )),
                    keys_matching: None,
                    prefix: None,
                },
                RawSource {
                    project: ProjectRef::Id("0d5f3c2a-8b1e-4f6d-9a7c-2e4b6d8f0a1c".into()),
                    environment: "prod".into(),
                    path: Some("/shared/payments".into()),
                    recursive: None,
                    imports: None,
                    expand_references: None,
                    tags: vec!["payments".into()],
                    keys: None,
                    keys_matching: Some("^STRIPE_".into()),
                    prefix: Some("PAYMENTS_".into()),
                },
            ],
            outputs: vec![
                RawOutput {
                    target: OutputTarget::Dir {
                        path: "/run/secrets/app".into(),
                        keys: BTreeMap::from([(
                            "KEYSTORE".to_owned(),
                            KeyOptions {
                                decode: Some(Decode::Base64),
                            },
                        )]),
                    },
                    mode: Some("0400".into()),
                    owner: None,
                },
                RawOutput {
                    target: OutputTarget::File {
                        path: "/run/secrets/app.env".into(),
                        format: Some("dotenv".into()),
                    },
                    mode: None,
                    owner: None,
                },
            ],
            templates: vec![
                RawTemplate {
                    text: TemplateText::Source("/etc/templates/database.yaml.j2".into()),
                    destination: "/run/secrets/database.yaml".into(),
                    mode: Some("0440".into()),
                    owner: None,
                },
                RawTemplate {
                    text: TemplateText::Content(
                        "postgres://{{ secret(\"DATABASE_USER\") }}:{{ secret(\"DATABASE_PASSWORD\") }}@{{ secret(\"DATABASE_HOST\") }}:5432/app\n"
                            .into(),
                    ),
                    destination: "/run/secrets/database-url".into(),
                    mode: Some("0400".into()),
                    owner: Some("1000".into()),
                },
            ],
            ..RawConfig::default()
        };
        assert_eq!(config, expected);
    }

    #[test]
    fn the_schema_example_of_the_contract_parses() {
        let config = parse(
            r#"
api-url: https://infisical.example.com      # any common flag by its long name
file-mode: "0440"
on-conflict: warn                           # or fail: the same final key from two sources
sources:
  - project-id: 0d5f
    environment: prod
    path: /backend
    recursive: false
    imports: true
    expand-references: true
    tags: [database]
    keys: {DB_USER: DATABASE_USER}          # or a list; selection/renaming like --key
    keys-matching: "^DB_"                   # like ESO dataFrom.find.name.regexp
    prefix: BACKEND_                        # added to every final key of this source
outputs:
  - dir: /run/secrets/app                   # or: file: /run/app.env, format: dotenv
    mode: "0400"
    owner: "1000:1000"
    keys:                                   # per-key options for files
      KEYSTORE: {decode: base64}
templates:
  - source: /etc/templates/config.yaml.j2   # or content: "…inline…"
    destination: /run/secrets/config.yaml
    mode: "0440"
"#,
        )
        .expect("parses");
        assert_eq!(config.on_conflict, Some(OnConflict::Warn));
        assert_eq!(config.sources[0].tags, ["database"]);
        assert_eq!(config.outputs[0].owner.as_deref(), Some("1000:1000"));
        assert_eq!(config.templates.len(), 1);
    }

    #[test]
    fn an_empty_file_is_an_empty_configuration() {
        for text in ["", "\n", "# only a comment\n", "{}", "---\n", "~\n", "null"] {
            assert_eq!(parse(text).expect(text), RawConfig::default(), "{text:?}");
        }
    }

    #[test]
    fn errors_name_the_file_the_key_path_and_what_is_accepted() {
        let two_sources = "sources:\n  - project-slug: a\n    environment: prod\n  - project-slug: b\n    path: /x\n";
        assert_eq!(
            error(two_sources),
            "config.yaml: sources[1].environment: required"
        );
        assert_eq!(
            error("sources:\n  - project-slug: a\n    environment: prod\n    recursive: maybe\n"),
            "config.yaml: sources[0].recursive: expected true or false, found a string"
        );
        assert_eq!(
            error("sources:\n  - project-slug: a\n    enviroment: prod\n"),
            "config.yaml: sources[0].enviroment: unknown key (did you mean environment?)"
        );
        assert_eq!(
            error("outputs:\n  - mode: \"0400\"\n"),
            "config.yaml: outputs[0]: give exactly one of dir or file"
        );
        assert_eq!(
            error("outputs:\n  - dir: /a\n  - dir: /b\n    file: /c\n"),
            "config.yaml: outputs[1]: give exactly one of dir or file"
        );
        assert_eq!(
            error("outputs:\n  - dir: /a\n    format: json\n"),
            "config.yaml: outputs[0]: format is only for a file output (a dir holds one file per secret)"
        );
        assert_eq!(
            error("outputs:\n  - file: /a.env\n    keys: {K: {decode: base64}}\n"),
            "config.yaml: outputs[0]: keys (options of single files) are only for a dir output"
        );
        assert_eq!(
            error("templates:\n  - destination: /out\n"),
            "config.yaml: templates[0]: give exactly one of source or content"
        );
        assert_eq!(
            error("templates:\n  - source: /a\n    content: b\n    destination: /out\n"),
            "config.yaml: templates[0]: give exactly one of source or content"
        );
        assert_eq!(
            error("templates:\n  - source: /a\n"),
            "config.yaml: templates[0].destination: required"
        );
        assert_eq!(
            error("sources:\n  - environment: prod\n"),
            "config.yaml: sources[0]: give exactly one of project-id or project-slug"
        );
        assert_eq!(
            error("sources:\n  - {project-id: a, project-slug: b, environment: prod}\n"),
            "config.yaml: sources[0]: give exactly one of project-id or project-slug"
        );
        assert_eq!(
            error("- api-url: x\n"),
            "config.yaml: expected a mapping of keys (e.g. api-url: https://…), found a list"
        );
    }

    #[test]
    fn yaml_syntax_errors_give_the_line() {
        let text = "api-url: https://infisical.example.com\nsources:\n  - project-slug: a\n    environment: prod\noutputs:\n  - dir: /run/secrets/app\n    mode: \"0400\n";
        let message = error(text);
        assert!(message.starts_with("config.yaml line 7: "), "{message}");

        let message = error("api-url: a\nenv: prod\napi-url: b\n");
        assert_eq!(message, "config.yaml line 3: key api-url given twice");

        let message = error("env: prod\n---\nenv: dev\n");
        assert!(
            message.starts_with("config.yaml line 2: only one YAML document"),
            "{message}"
        );

        let message = error("env: !vault prod\n");
        assert!(
            message.starts_with("config.yaml line 1: YAML tags"),
            "{message}"
        );

        let message = error("env: *nowhere\n");
        assert!(message.starts_with("config.yaml line 1: "), "{message}");
    }

    #[test]
    fn unknown_keys_are_refused_at_every_level() {
        for (text, expected) in [
            ("api-urll: x\n", "config.yaml: api-urll: unknown key (did you mean api-url?)"),
            ("api_url: x\n", "config.yaml: api_url: unknown key (did you mean api-url?)"),
            ("apiUrl: x\n", "config.yaml: apiUrl: unknown key (did you mean api-url?)"),
            ("environment: prod\n", "config.yaml: environment: unknown key (did you mean env?)"),
            (
                "colour: blue\n",
                "config.yaml: colour: unknown key (accepted: the long flag names such as api-url or out-dir, and on-conflict, sources, outputs, templates)",
            ),
            (
                "sources:\n  - {project-slug: a, env: prod}\n",
                "config.yaml: sources[0].env: unknown key (did you mean environment?)",
            ),
            (
                "sources:\n  - {project-slug: a, environment: prod, no-imports: true}\n",
                "config.yaml: sources[0].no-imports: unknown key (did you mean imports?)",
            ),
            (
                "outputs:\n  - {dir: /a, colour: blue}\n",
                "config.yaml: outputs[0].colour: unknown key (accepted: dir, file, format, mode, owner, keys)",
            ),
            (
                "outputs:\n  - {dir: /a, file-mode: \"0400\"}\n",
                "config.yaml: outputs[0].file-mode: unknown key (did you mean mode?)",
            ),
            (
                "outputs:\n  - dir: /a\n    keys:\n      KEYSTORE: {decod: base64}\n",
                "config.yaml: outputs[0].keys.KEYSTORE.decod: unknown key (did you mean decode?)",
            ),
            (
                "templates:\n  - {source: /a, dest: /b}\n",
                "config.yaml: templates[0].dest: unknown key (accepted: source, content, destination, mode, owner)",
            ),
        ] {
            assert_eq!(error(text), expected, "{text:?}");
        }
    }

    #[test]
    fn keys_are_a_mapping_or_a_list_like_the_flag() {
        let config = parse(
            "key: [A, B=C]\nsources:\n  - project-slug: a\n    environment: prod\n    keys: {Z_LAST: Z, A_FIRST: A}\n  - project-slug: a\n    environment: prod\n    keys:\n      - DB_USER\n      - DB_PASSWORD=PASSWORD\n",
        )
        .expect("parses");
        let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            config.keys,
            Some(KeySelection::List(strings(&["A", "B=C"])))
        );
        // The file's order is kept.
        assert_eq!(
            config.sources[0].keys,
            Some(KeySelection::Map(vec![
                ("Z_LAST".into(), "Z".into()),
                ("A_FIRST".into(), "A".into()),
            ]))
        );
        assert_eq!(
            config.sources[1].keys,
            Some(KeySelection::List(strings(&[
                "DB_USER",
                "DB_PASSWORD=PASSWORD"
            ])))
        );

        assert_eq!(
            error("key: DB_USER\n"),
            "config.yaml: key: expected a mapping REMOTE: LOCAL or a list of REMOTE or REMOTE=LOCAL, found a string"
        );
        assert_eq!(
            error("key: {A: [B]}\n"),
            "config.yaml: key.A: expected a string, found a list"
        );
        assert_eq!(
            error("key: [A, [B]]\n"),
            "config.yaml: key[1]: expected a string, found a list"
        );
    }

    #[test]
    fn values_of_the_wrong_kind_name_their_path() {
        for (text, expected) in [
            ("recursive: 1\n", "recursive: expected true or false, found a number"),
            ("allow-empty: \"true\"\n", "allow-empty: expected true or false, found a string"),
            ("require-tmpfs: yes\n", "require-tmpfs: expected true or false, found a string"),
            ("jitter: \"0.1\"\n", "jitter: expected a number, e.g. 0.1, found a string"),
            ("jitter: lots\n", "jitter: expected a number, e.g. 0.1, found a string"),
            ("api-url: [a, b]\n", "api-url: expected a string, found a list"),
            ("env: {a: b}\n", "env: expected a string, found a mapping"),
            ("tag: database\n", "tag: expected a list, e.g. [a, b], found a string"),
            ("keep-env: [A, {B: C}]\n", "keep-env[1]: expected a string, found a mapping"),
            ("on-conflict: sometimes\n", "on-conflict: expected warn or fail"),
            ("on-conflict: [warn]\n", "on-conflict: expected warn or fail, found a list"),
            ("sources: {project-slug: a}\n", "sources: expected a list, e.g. [a, b], found a mapping"),
            ("sources: [prod]\n", "sources[0]: expected a mapping of keys, found a string"),
            ("outputs:\n  - dir: /a\n    keys: [KEYSTORE]\n", "outputs[0].keys: expected a mapping (key: value), found a list"),
            (
                "outputs:\n  - dir: /a\n    keys:\n      KEYSTORE: {decode: hex}\n",
                "outputs[0].keys.KEYSTORE.decode: expected base64",
            ),
            (
                "sources:\n  - {project-slug: a, environment: prod}\n  - {project-slug: a, environment: prod, tags: [x, [y]]}\n",
                "sources[1].tags[1]: expected a string, found a list",
            ),
            ("templates:\n  - {content: [x], destination: /a}\n", "templates[0].content: expected a string, found a list"),
            ("env:\n", "env"), // null is an absent value: no error (checked below)
        ] {
            if text == "env:\n" {
                assert_eq!(parse(text).expect("null is absent").environment, None);
                continue;
            }
            assert_eq!(error(text), format!("config.yaml: {expected}"), "{text:?}");
        }
        let message = error("sources:\n  - project-slug: a\n    environment:\n");
        assert_eq!(
            message,
            "config.yaml: sources[0].environment: expected a string, found nothing"
        );
    }

    #[test]
    fn scalars_read_as_strings_keep_their_text() {
        let config = parse(
            "file-mode: 0440\nowner: 1000\nlisten: 9464\nproject-id: 12345\nenv: true\noutputs:\n  - {dir: /a, mode: 440}\n  - {file: /b, mode: 0o400, owner: 1000:1000}\n",
        )
        .expect("parses");
        // Never the number 288 or 440: the digits as written, octal for stage two.
        assert_eq!(config.file_mode.as_deref(), Some("0440"));
        assert_eq!(config.owner.as_deref(), Some("1000"));
        assert_eq!(config.listen.as_deref(), Some("9464"));
        assert_eq!(config.project_id.as_deref(), Some("12345"));
        assert_eq!(config.environment.as_deref(), Some("true"));
        assert_eq!(config.outputs[0].mode.as_deref(), Some("440"));
        assert_eq!(config.outputs[1].mode.as_deref(), Some("0o400"));
        assert_eq!(config.outputs[1].owner.as_deref(), Some("1000:1000"));

        let config = parse("jitter: 0.25\nrecursive: True\nno-imports: false\n").expect("parses");
        assert_eq!(config.jitter, Some(0.25));
        assert_eq!(config.recursive, Some(true));
        assert_eq!(config.no_imports, Some(false));
    }

    #[test]
    fn secrets_by_value_are_refused_and_never_echoed() {
        let message = error("client-id: 5f0c\nclient-secret: hunter2-s3cr3t\n");
        assert_eq!(
            message,
            "config.yaml: client-secret: a secret is not accepted in the configuration file; put it in a file and give client-secret-file (or the variable INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET)"
        );
        let message = error("token: hunter2-s3cr3t\n");
        assert_eq!(
            message,
            "config.yaml: token: a secret is not accepted in the configuration file; put it in a file and give token-file (or the variable INFISICAL_TOKEN)"
        );

        // Whatever is wrong, an error holds key names and kinds, never a value.
        let value = "hunter2-s3cr3t";
        for text in [
            "recursive: VALUE\n",
            "jitter: VALUE\n",
            "on-conflict: VALUE\n",
            "tag: VALUE\n",
            "key: VALUE\n",
            "sources: VALUE\n",
            "sources: [VALUE]\n",
            "outputs:\n  - dir: /a\n    keys:\n      K: {decode: VALUE}\n",
            "outputs:\n  - dir: /a\n    keys:\n      K: VALUE\n",
            "env: [\"VALUE\"]\n",
            "VALUE\n",
            "client-secret: \"VALUE\"\n",
            "token: !!str VALUE\n",
            "env: 'VALUE\n",
        ] {
            let text = text.replace("VALUE", value);
            let message = error(&text);
            assert!(!message.contains(value), "{text:?}: {message}");
        }
    }

    #[test]
    fn every_long_flag_is_a_top_level_key() {
        use clap::CommandFactory;

        // Not configuration: how one run is invoked, or given by `sources`/`templates` here.
        let not_in_file = [
            "help",
            "version",
            "to",
            "watch",
            "config",
            "template",
            // migrate: how one conversion runs.
            "out",
            "best-effort",
            "check",
        ];
        let cli = crate::cli::Cli::command();
        let mut checked = 0;
        for command in std::iter::once(&cli).chain(cli.get_subcommands()) {
            for arg in command.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                if not_in_file.contains(&long) {
                    continue;
                }
                // The value's kind may be wrong; the key must be known.
                if let Err(error) = parse(&format!("{long}: ~\n")) {
                    panic!("--{long} is not a key of the file: {error}");
                }
                if let Err(FileError::Key { reason, .. }) = parse(&format!("{long}: [x]\n")) {
                    assert!(!reason.starts_with("unknown key"), "--{long}: {reason}");
                }
                checked += 1;
            }
        }
        assert!(checked > 40, "{checked}");
        // Flags the issue names before they exist.
        assert!(parse("key-matching: ^DB_\n").is_ok());
    }

    #[test]
    fn anchors_and_aliases_are_followed_within_bounds() {
        let config = parse(
            "tag: &tags [a, b]\nsources:\n  - &backend {project-slug: p, environment: prod, tags: *tags}\n  - *backend\n",
        )
        .expect("parses");
        assert_eq!(config.sources.len(), 2);
        assert_eq!(config.sources[1].tags, ["a", "b"]);

        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..8 {
            let previous = level - 1;
            bomb.push_str(&format!(
                "a{level}: &a{level} [*a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}]\n"
            ));
        }
        let message = error(&bomb);
        assert!(message.contains("too large"), "{message}");
    }

    #[test]
    fn load_names_the_file_it_cannot_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.yaml");
        let error = RawConfig::load(&missing).expect_err("missing");
        let message = error.to_string();
        assert!(
            message.starts_with(&format!(
                "{}: cannot read the configuration file: ",
                missing.display()
            )),
            "{message}"
        );
        assert_eq!(error.exit_code(), 64);

        let file = dir.path().join("config.yaml");
        std::fs::write(&file, "env: prod\nsources: [{project-slug: a}]\n").expect("write");
        let message = RawConfig::load(&file).expect_err("bad").to_string();
        assert_eq!(
            message,
            format!("{}: sources[0].environment: required", file.display())
        );
        std::fs::write(&file, "env: prod\n").expect("write");
        let config = RawConfig::load(&file).expect("loads");
        assert_eq!(config.environment.as_deref(), Some("prod"));
    }
}
