//! Templates that render config files from secrets (minijinja, the Jinja2 dialect).
//!
//! A [`Template`] is compiled once ([`Template::parse`], so a syntax error stops the process
//! before any network call) and rendered for every new secret set ([`Template::render`]). The
//! render fails closed: a missing secret, an undefined variable or a bad filter input is an
//! error naming the template and the line, never an empty string or `<no value>`.
//!
//! What a template sees:
//! - `secrets`, a map from key to value: `secrets.DB_USER`, `secrets["db-user"]`,
//!   `secrets|items`, `for key in secrets` (in key order, so output is deterministic);
//! - `secret("KEY")`, which fails when `KEY` is missing, and `secret("KEY", default="…")`;
//! - the filters `b64encode`, `b64decode`, `tojson`, `indent`, `items` and `default`, as in
//!   Jinja2 (minijinja's own set of built-ins is left out: it costs a quarter of a MiB of the
//!   static binary's budget).
//!
//! Whitespace follows what config files need: the trailing newline of the template is kept, and
//! the newline after a block tag (`{% for %}`, `{% endif %}`) is dropped. Nothing is escaped (a
//! `config.yaml.j2` is not HTML); `tojson` is how a value becomes a quoted, escaped string.
//!
//! Secrets never reach a message: errors are built from the error's kind, the template's name,
//! its line and our own words (minijinja's own text can quote values), and any value that still
//! shows up in them is replaced by `[REDACTED]`.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Enumerator, Kwargs, Object, Rest, Value, ValueKind};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::exit;
use crate::secrets::SecretSet;

/// Where in which template something went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The template's name, e.g. `/etc/templates/config.yaml.j2` or `templates[1] (inline)`.
    pub template: String,
    /// The 1-based line, when minijinja knows it.
    pub line: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "template {}, line {line}", self.template),
            None => write!(f, "template {}", self.template),
        }
    }
}

/// Why a template could not be compiled or rendered. No variant holds a secret value.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The template is not valid Jinja (exit 64).
    #[error("{at}: syntax error: {detail}; fix the template")]
    Syntax {
        /// Where.
        at: Location,
        /// minijinja's description (it quotes only the template text, which is not secret).
        detail: String,
        /// minijinja's error.
        #[source]
        source: minijinja::Error,
    },
    /// The template asked for a secret that the sources do not provide (exit 66).
    #[error("{at}: {}", missing_secret(key.as_deref()))]
    MissingSecret {
        /// Where.
        at: Location,
        /// The key the template asked for, when the template spells it out (a key computed
        /// from other secrets is not shown: it could be made of their values).
        key: Option<String>,
    },
    /// The template uses a variable or attribute that does not exist (exit 65).
    #[error(
        "{at}: {} uses an undefined value; a template sees only `secrets` and `secret(…)`, and \
         `x is defined` or `x|default(…)` tests for an optional value",
        quoted(text.as_deref())
    )]
    Undefined {
        /// Where.
        at: Location,
        /// The template text of that line, when it is short.
        text: Option<String>,
    },
    /// Any other failure while rendering: a filter refused its input, a bad operation (exit 65).
    // minijinja's error is deliberately not kept as a source: its text can quote values.
    #[error("{at}: {reason}")]
    Render {
        /// Where.
        at: Location,
        /// What went wrong, in words that never include a value.
        reason: String,
    },
}

fn missing_secret(key: Option<&str>) -> String {
    match key {
        Some(key) => format!(
            "secret {key:?} does not exist; add it in Infisical, check the sources' keys, or \
             give a fallback with secret({key:?}, default=\"…\")"
        ),
        None => "the secret this line asks for does not exist (its key is computed, so it is \
                 not shown); check the sources' keys, or give a fallback with default=\"…\""
            .to_owned(),
    }
}

fn quoted(text: Option<&str>) -> String {
    text.map_or_else(|| "this line".to_owned(), |text| format!("`{text}`"))
}

impl TemplateError {
    /// Where the error happened.
    pub fn location(&self) -> &Location {
        match self {
            TemplateError::Syntax { at, .. }
            | TemplateError::MissingSecret { at, .. }
            | TemplateError::Undefined { at, .. }
            | TemplateError::Render { at, .. } => at,
        }
    }

    /// The documented exit code: 64 for a syntax error, 66 for a missing secret, 65 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            TemplateError::Syntax { .. } => exit::USAGE,
            TemplateError::MissingSecret { .. } => exit::NOT_FOUND,
            TemplateError::Undefined { .. } | TemplateError::Render { .. } => exit::DATA,
        }
    }
}

/// The secrets a render looked at, so that a sidecar renders again only when one of them changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UsedKeys {
    /// These keys, looked up through `secret()` or `secrets` (missing ones included: their
    /// appearance must render again).
    Keys(BTreeSet<String>),
    /// The template enumerated `secrets`, so every secret and the set of keys matter.
    All,
}

impl UsedKeys {
    /// A SHA-256 over the used keys and their values (or their absence): equal fingerprints
    /// mean that rendering again would give the same bytes.
    pub fn fingerprint(&self, secrets: &SecretSet) -> [u8; 32] {
        fn field(hasher: &mut Sha256, bytes: &[u8]) {
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        }
        let mut hasher = Sha256::new();
        let mut entry = |key: &str| {
            field(&mut hasher, key.as_bytes());
            match secrets.get(key) {
                Some(value) => {
                    hasher.update([1]);
                    field(&mut hasher, value.expose().as_bytes());
                }
                None => hasher.update([0]),
            }
        };
        match self {
            UsedKeys::Keys(keys) => {
                entry("");
                keys.iter().for_each(|key| entry(key));
            }
            UsedKeys::All => {
                // A marker that no key list can produce: the first key of a list is "".
                entry("*");
                secrets.keys().for_each(entry);
            }
        }
        hasher.finalize().into()
    }
}

/// A rendered template.
pub struct Rendered {
    /// The output, wiped on drop.
    pub content: Zeroizing<Vec<u8>>,
    /// The secrets the render used.
    pub used: UsedKeys,
}

impl fmt::Debug for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rendered")
            .field(
                "content",
                &format_args!("[REDACTED; {} bytes]", self.content.len()),
            )
            .field("used", &self.used)
            .finish()
    }
}

/// A compiled template.
pub struct Template {
    name: String,
    /// The template text, for quoting the failing expression in a message.
    source: String,
    env: Environment<'static>,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Template")
            .field("name", &self.name)
            .finish()
    }
}

impl Template {
    /// Parses and compiles `source`; a syntax error names the template and the line (exit 64).
    /// `name` is how messages call the template.
    pub fn parse(name: impl Into<String>, source: &str) -> Result<Self, TemplateError> {
        let name = name.into();
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // minijinja escapes by file extension (JSON for `.yaml.j2`); config files want the text.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_syntax(syntax());
        env.set_formatter(|out, state, value| {
            if value.kind() == ValueKind::Bytes {
                let text = std::str::from_utf8(value.as_bytes().unwrap_or_default())
                    .map_err(|_| refused(Cause::BinaryOutput))?;
                out.write_str(text)?;
                Ok(())
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        env.add_filter("b64encode", b64encode);
        env.add_filter("b64decode", b64decode);
        env.add_filter("tojson", tojson);
        env.add_filter("indent", indent);
        env.add_filter("items", items);
        env.add_filter("default", default);
        env.add_template_owned(name.clone(), source.to_owned())
            .map_err(|error| TemplateError::Syntax {
                at: Location {
                    template: name.clone(),
                    line: error.line(),
                },
                detail: error
                    .detail()
                    .map_or_else(|| error.kind().to_string(), str::to_owned),
                source: error,
            })?;
        Ok(Self {
            name,
            source: source.to_owned(),
            env,
        })
    }

    /// The name messages use.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renders with these secrets into a zeroizing buffer, and says which secrets it used.
    pub fn render(&self, secrets: &SecretSet) -> Result<Rendered, TemplateError> {
        let scope = Arc::new(Scope {
            secrets: secrets.clone(),
            used: Mutex::default(),
        });
        let root = Value::from_object(Root {
            secrets: Value::from_object(SecretsMap(scope.clone())),
            secret: secret_function(scope.clone()),
        });
        let mut out = WipingWriter::with_capacity(self.source.len().saturating_mul(2));
        let result = self
            .env
            .get_template(&self.name)
            .and_then(|template| template.render_captured_to(root, &mut out));
        match result {
            Ok(_) => {
                let used = scope.used.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(Rendered {
                    content: out.0,
                    used: if used.all {
                        UsedKeys::All
                    } else {
                        UsedKeys::Keys(used.keys.clone())
                    },
                })
            }
            Err(error) => Err(self.render_error(&error, secrets, &scope)),
        }
    }

    /// Our message for a failed render: built from the error's kind and line, never from
    /// minijinja's text (which can quote values), and redacted once more.
    fn render_error(
        &self,
        error: &minijinja::Error,
        secrets: &SecretSet,
        scope: &Scope,
    ) -> TemplateError {
        let at = Location {
            template: self.name.clone(),
            line: error.line(),
        };
        let text = self.text_at(error).map(|text| redact(&text, secrets));
        if let Some(cause) = cause(error) {
            return match cause {
                Cause::MissingSecret(key) => TemplateError::MissingSecret {
                    at,
                    key: self.spelled_out(key).then(|| key.clone()),
                },
                other => TemplateError::Render {
                    at,
                    reason: other.to_string(),
                },
            };
        }
        match error.kind() {
            ErrorKind::UndefinedError => {
                // `secrets.KEY` of a missing key is a missing secret, not a template mistake.
                // minijinja does not say which lookup was undefined: the line that failed
                // spelling out a key that was looked up and missing is the best evidence.
                let used = scope.used.lock().unwrap_or_else(PoisonError::into_inner);
                let line = error
                    .line()
                    .and_then(|line| self.source.lines().nth(line.checked_sub(1)?));
                let missing = line.and_then(|line| {
                    used.missing
                        .iter()
                        .rev()
                        .find(|key| mentions_key(line, key))
                });
                match missing {
                    Some(key) => TemplateError::MissingSecret {
                        at,
                        key: Some(key.clone()),
                    },
                    None => TemplateError::Undefined { at, text },
                }
            }
            // Their detail names a filter, test, function or method of the template text.
            kind @ (ErrorKind::UnknownFilter
            | ErrorKind::UnknownTest
            | ErrorKind::UnknownFunction
            | ErrorKind::UnknownMethod) => TemplateError::Render {
                at,
                reason: match error.detail() {
                    Some(detail) => format!("{kind}: {}", redact(detail, secrets)),
                    None => format!("{kind} in {}", quoted(text.as_deref())),
                },
            },
            kind => TemplateError::Render {
                at,
                reason: format!("{kind} in {}", quoted(text.as_deref())),
            },
        }
    }

    /// Whether the template spells `key` out as a quoted string or an attribute, so that naming
    /// it cannot reveal a value it was computed from.
    fn spelled_out(&self, key: &str) -> bool {
        self.source.lines().any(|line| mentions_key(line, key))
    }

    /// The template line the error points at, trimmed, when it is short.
    fn text_at(&self, error: &minijinja::Error) -> Option<String> {
        let line = self
            .source
            .lines()
            .nth(error.line()?.checked_sub(1)?)?
            .trim();
        (!line.is_empty() && line.chars().count() <= 120).then(|| line.to_owned())
    }
}

/// Trailing newline kept (a config file ends with one), newline after a block tag dropped.
fn syntax() -> SyntaxConfig {
    // `build` refuses only custom delimiters, and we set none (a test renders with these rules).
    SyntaxConfig::builder()
        .trim_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .unwrap_or_default()
}

/// Whether `text` (template source) refers to `key` as an attribute or a quoted item.
fn mentions_key(text: &str, key: &str) -> bool {
    text.match_indices(key).any(|(start, _)| {
        let before = text[..start].chars().next_back();
        let after = text[start + key.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        match before {
            Some('.') => !ident(after),
            Some(quote @ ('"' | '\'')) => after == Some(quote),
            _ => false,
        }
    })
}

/// `text` with every secret value in it replaced by `[REDACTED]`, longest values first so that
/// no part of a longer value survives the replacement of a shorter one.
fn redact(text: &str, secrets: &SecretSet) -> String {
    let mut values: Vec<&str> = secrets
        .iter()
        .map(|(_, value)| value.expose())
        .filter(|value| !value.is_empty())
        .collect();
    values.sort_by_key(|value| std::cmp::Reverse(value.len()));
    let mut text = text.to_owned();
    for value in values {
        if text.contains(value) {
            text = text.replace(value, "[REDACTED]");
        }
    }
    text
}

/// The failures our own functions and filters report, carried as the source of minijinja's
/// error so that the kind is found by type, not by reading text.
#[derive(Debug, thiserror::Error)]
enum Cause {
    #[error("secret {0:?} does not exist")]
    MissingSecret(String),
    #[error("secret() takes a key and an optional default=\"…\"")]
    SecretArguments,
    #[error("b64decode: the input is not valid base64")]
    InvalidBase64,
    #[error("{0}: expected text or bytes")]
    NotText(&'static str),
    #[error("tojson: only text, numbers, booleans, none, lists and maps become JSON")]
    NotJson,
    #[error("tojson: the value is nested too deeply")]
    TooDeep,
    #[error("{0}: {1}")]
    Arguments(&'static str, &'static str),
    #[error(
        "b64decode gave bytes that are not UTF-8 text, and a template renders text; write them \
         with `|b64encode`, or use a file output with `decode: base64`"
    )]
    BinaryOutput,
}

fn refused(cause: Cause) -> minijinja::Error {
    let kind = match cause {
        Cause::MissingSecret(_) => ErrorKind::UndefinedError,
        _ => ErrorKind::InvalidOperation,
    };
    minijinja::Error::new(kind, "refused").with_source(cause)
}

/// Our cause of `error`, wherever it sits in the chain.
fn cause(error: &minijinja::Error) -> Option<&Cause> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(cause) = error.downcast_ref::<Cause>() {
            return Some(cause);
        }
        current = error.source();
    }
    None
}

/// What one render shares between `secrets` and `secret()`.
#[derive(Debug)]
struct Scope {
    /// A copy for this render (its values are wiped when the render's values are dropped).
    secrets: SecretSet,
    used: Mutex<Used>,
}

#[derive(Debug, Default)]
struct Used {
    keys: BTreeSet<String>,
    /// Keys looked up through `secrets` that do not exist, latest last.
    missing: Vec<String>,
    all: bool,
}

impl Scope {
    fn lookup(&self, key: &str) -> Option<Value> {
        let value = self.secrets.get(key);
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        used.keys.insert(key.to_owned());
        if value.is_none() {
            used.missing.push(key.to_owned());
        }
        value.map(|value| Value::from(value.expose()))
    }

    fn enumerated(&self) {
        self.used.lock().unwrap_or_else(PoisonError::into_inner).all = true;
    }
}

/// The template's global names.
#[derive(Debug)]
struct Root {
    secrets: Value,
    secret: Value,
}

impl Object for Root {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "secrets" => Some(self.secrets.clone()),
            "secret" => Some(self.secret.clone()),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["secret", "secrets"])
    }
}

/// `secrets`: a map that records which keys the template looks up, and that it was enumerated.
#[derive(Debug)]
struct SecretsMap(Arc<Scope>);

impl Object for SecretsMap {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.0.lookup(key.as_str()?)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        self.0.enumerated();
        Enumerator::Values(self.0.secrets.keys().map(Value::from).collect())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        // How many secrets there are changes with any key: `secrets|length` uses them all.
        self.0.enumerated();
        Some(self.0.secrets.len())
    }
}

/// `secret("KEY")` and `secret("KEY", default=…)`.
fn secret_function(scope: Arc<Scope>) -> Value {
    Value::from_function(
        move |key: &Value, kwargs: Kwargs| -> Result<Value, minijinja::Error> {
            let default: Option<Value> = kwargs
                .get("default")
                .map_err(|_| refused(Cause::SecretArguments))?;
            kwargs
                .assert_all_used()
                .map_err(|_| refused(Cause::SecretArguments))?;
            let key = key
                .as_str()
                .ok_or_else(|| refused(Cause::SecretArguments))?;
            match (scope.lookup(key), default) {
                (Some(value), _) => Ok(value),
                (None, Some(default)) => Ok(default),
                (None, None) => Err(refused(Cause::MissingSecret(key.to_owned()))),
            }
        },
    )
}

fn text_or_bytes<'a>(value: &'a Value, filter: &'static str) -> Result<&'a [u8], minijinja::Error> {
    if value.is_undefined() {
        return Err(minijinja::Error::from(ErrorKind::UndefinedError));
    }
    match value.kind() {
        ValueKind::String | ValueKind::Bytes => value.as_bytes(),
        _ => None,
    }
    .ok_or_else(|| refused(Cause::NotText(filter)))
}

/// `b64encode`: standard alphabet, padded; text is encoded as its UTF-8 bytes.
fn b64encode(value: &Value) -> Result<Value, minijinja::Error> {
    let bytes = text_or_bytes(value, "b64encode")?;
    let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(bytes));
    Ok(Value::from(encoded.as_str()))
}

/// `b64decode`: standard alphabet, padding optional, whitespace (line breaks of `base64`'s
/// output) ignored. Text when the bytes are UTF-8, bytes otherwise.
fn b64decode(value: &Value) -> Result<Value, minijinja::Error> {
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let input = text_or_bytes(value, "b64decode")?;
    let compact: Zeroizing<Vec<u8>> = Zeroizing::new(
        input
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect(),
    );
    // The decode error is dropped unread: it can quote a byte of the value.
    let decoded = Zeroizing::new(
        ENGINE
            .decode(&*compact)
            .map_err(|_| refused(Cause::InvalidBase64))?,
    );
    Ok(match std::str::from_utf8(&decoded) {
        Ok(text) => Value::from(text),
        Err(_) => Value::from_bytes(decoded.to_vec()),
    })
}

/// `tojson`: the value as JSON (a string is quoted, with `"`, `\` and control characters
/// escaped), for a value that must stay one scalar in YAML, JSON or TOML. Maps keep their key
/// order (`secrets` is sorted by key).
fn tojson(value: &Value) -> Result<Value, minijinja::Error> {
    let mut out = Zeroizing::new(String::new());
    write_json(&mut out, value, 0)?;
    Ok(Value::from(out.as_str()))
}

fn write_json(out: &mut String, value: &Value, depth: usize) -> Result<(), minijinja::Error> {
    if depth > 64 {
        return Err(refused(Cause::TooDeep));
    }
    match value.kind() {
        ValueKind::Undefined => return Err(minijinja::Error::from(ErrorKind::UndefinedError)),
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            let number = value.to_string();
            // JSON has no NaN or infinity.
            match number.parse::<f64>() {
                Ok(n) if n.is_finite() => out.push_str(&number),
                _ => out.push_str("null"),
            }
        }
        ValueKind::String | ValueKind::Bytes => {
            let bytes = value.as_bytes().unwrap_or_default();
            let text = std::str::from_utf8(bytes).map_err(|_| refused(Cause::BinaryOutput))?;
            json_string(out, text);
        }
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            for (index, item) in value.try_iter()?.enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_json(out, &item, depth + 1)?;
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            for (index, key) in value.try_iter()?.enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                match key.as_str() {
                    Some(text) => json_string(out, text),
                    None => json_string(out, &key.to_string()),
                }
                out.push_str(": ");
                write_json(out, &value.get_item(&key)?, depth + 1)?;
            }
            out.push('}');
        }
        _ => return Err(refused(Cause::NotJson)),
    }
    Ok(())
}

fn json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                use fmt::Write as _;
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `indent(width=4, first=false, blank=false)`, as in Jinja2: every line but the first (unless
/// `first`) is indented by `width` spaces, blank lines too only with `blank`; a trailing newline
/// is dropped, so that `key: |` followed by `{{ x|indent(2) }}` nests a PEM block.
fn indent(
    value: &Value,
    width: Option<usize>,
    first: Option<bool>,
    kwargs: Kwargs,
) -> Result<Value, minijinja::Error> {
    let bad = |_| {
        refused(Cause::Arguments(
            "indent",
            "expected indent(width, first=…, blank=…)",
        ))
    };
    let width = match width {
        Some(width) => width,
        None => kwargs
            .get::<Option<usize>>("width")
            .map_err(bad)?
            .unwrap_or(4),
    };
    let first = match first {
        Some(first) => first,
        None => kwargs
            .get::<Option<bool>>("first")
            .map_err(bad)?
            .unwrap_or(false),
    };
    let blank = kwargs
        .get::<Option<bool>>("blank")
        .map_err(bad)?
        .unwrap_or(false);
    kwargs.assert_all_used().map_err(bad)?;
    if width > 1024 {
        return Err(refused(Cause::Arguments(
            "indent",
            "a width above 1024 is surely a mistake",
        )));
    }
    let text = std::str::from_utf8(text_or_bytes(value, "indent")?)
        .map_err(|_| refused(Cause::BinaryOutput))?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let pad = " ".repeat(width);
    let mut out = Zeroizing::new(String::with_capacity(text.len() + pad.len() * 8));
    for (index, line) in text.split('\n').enumerate() {
        if index > 0 {
            out.push('\n');
        }
        let indented = if index == 0 {
            first
        } else {
            blank || !line.trim().is_empty()
        };
        if indented {
            out.push_str(&pad);
        }
        out.push_str(line);
    }
    Ok(Value::from(out.as_str()))
}

/// `items`: the `(key, value)` pairs of a map, in its order, for `for key, value in …|items`.
fn items(value: &Value) -> Result<Value, minijinja::Error> {
    if value.kind() != ValueKind::Map {
        return Err(refused(Cause::Arguments("items", "expected a map")));
    }
    let pairs = value
        .try_iter()?
        .map(|key| {
            let item = value.get_item(&key)?;
            Ok(Value::from(vec![key, item]))
        })
        .collect::<Result<Vec<_>, minijinja::Error>>()?;
    Ok(Value::from(pairs))
}

/// `default(fallback="")`: the fallback for an undefined value, as in Jinja2 (for example
/// `secrets.OPTIONAL|default("x")`).
fn default(value: &Value, fallback: Rest<Value>) -> Result<Value, minijinja::Error> {
    if fallback.len() > 1 {
        return Err(refused(Cause::Arguments(
            "default",
            "expected default(fallback)",
        )));
    }
    Ok(if value.is_undefined() {
        fallback.first().cloned().unwrap_or_else(|| Value::from(""))
    } else {
        value.clone()
    })
}

/// An output buffer that wipes every buffer it outgrows, not just the last one.
struct WipingWriter(Zeroizing<Vec<u8>>);

impl WipingWriter {
    fn with_capacity(capacity: usize) -> Self {
        Self(Zeroizing::new(Vec::with_capacity(capacity.max(256))))
    }
}

impl io::Write for WipingWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let needed = self.0.len() + data.len();
        if needed > self.0.capacity() {
            let mut bigger = Vec::with_capacity(needed.max(self.0.capacity() * 2));
            bigger.extend_from_slice(&self.0);
            // The old buffer is wiped as it drops.
            self.0 = Zeroizing::new(bigger);
        }
        self.0.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretValue;
    use proptest::prelude::*;

    const NAME: &str = "/etc/templates/config.yaml.j2";

    fn set(pairs: &[(&str, &str)]) -> SecretSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretValue::from(*v)))
            .collect()
    }

    fn render(source: &str, secrets: &SecretSet) -> Result<Rendered, TemplateError> {
        Template::parse(NAME, source)?.render(secrets)
    }

    fn text(source: &str, secrets: &SecretSet) -> String {
        let rendered = render(source, secrets).unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8(rendered.content.to_vec()).unwrap()
    }

    fn keys(keys: &[&str]) -> UsedKeys {
        UsedKeys::Keys(keys.iter().map(|k| k.to_string()).collect())
    }

    #[test]
    fn a_config_yaml_assembles_a_url_from_three_secrets() {
        let source = "\
# rendered by infisical-materializer
database:
  url: postgres://{{ secrets.DB_USER }}:{{ secret(\"DB_PASSWORD\") }}@{{ secrets[\"db-host\"] }}:5432/app
  pool: 5
";
        let secrets = set(&[
            ("DB_USER", "app"),
            ("DB_PASSWORD", "s3cr3t"),
            ("db-host", "db.internal"),
            ("UNRELATED", "x"),
        ]);
        let rendered = render(source, &secrets).unwrap();
        assert_eq!(
            rendered.content.as_slice(),
            b"# rendered by infisical-materializer\n\
              database:\n  \
              url: postgres://app:s3cr3t@db.internal:5432/app\n  \
              pool: 5\n"
        );
        assert_eq!(rendered.used, keys(&["DB_PASSWORD", "DB_USER", "db-host"]));
    }

    #[test]
    fn a_missing_secret_fails_naming_template_line_and_key() {
        let secrets = set(&[("PRESENT", "v")]);
        for source in [
            "a: 1\nb: 2\nc: {{ secret(\"DB_PASSWORD\") }}\n",
            "a: 1\nb: 2\nc: {{ secrets.DB_PASSWORD }}\n",
            "a: 1\nb: 2\nc: {{ secrets[\"DB_PASSWORD\"]|b64encode }}\n",
        ] {
            let error = render(source, &secrets).err().unwrap();
            assert!(
                matches!(&error, TemplateError::MissingSecret { key: Some(key), .. } if key == "DB_PASSWORD"),
                "{source:?}: {error:?}"
            );
            assert_eq!(error.exit_code(), exit::NOT_FOUND);
            assert_eq!(error.location().line, Some(3));
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("template {NAME}, line 3: secret \"DB_PASSWORD\"")),
                "{message}"
            );
        }
    }

    #[test]
    fn a_default_is_used_only_when_the_secret_is_missing() {
        let secrets = set(&[("LOG_LEVEL", "debug")]);
        let source = "{{ secret(\"LOG_LEVEL\", default=\"info\") }} \
                      {{ secret(\"TIMEOUT\", default=\"30s\") }} \
                      {{ secrets.RETRIES|default(3) }}";
        let rendered = render(source, &secrets).unwrap();
        assert_eq!(rendered.content.as_slice(), b"debug 30s 3");
        // An absent key is used too: the day it appears, the output changes.
        assert_eq!(rendered.used, keys(&["LOG_LEVEL", "RETRIES", "TIMEOUT"]));
    }

    #[test]
    fn b64_filters_round_trip_binary_data() {
        let binary: Vec<u8> = (0..=255).collect();
        let encoded = base64::engine::general_purpose::STANDARD.encode(&binary);
        // `base64` wraps its output at 76 columns and ends it with a newline.
        let wrapped: String = encoded
            .as_bytes()
            .chunks(76)
            .map(|line| format!("{}\n", std::str::from_utf8(line).unwrap()))
            .collect();
        let secrets = set(&[
            ("KEYSTORE", &wrapped),
            ("TOKEN", "tøken:with/odd+chars"),
            ("UNPADDED", "aGk"),
        ]);
        assert_eq!(
            text("{{ secrets.KEYSTORE|b64decode|b64encode }}", &secrets),
            encoded
        );
        assert_eq!(
            text("{{ secrets.TOKEN|b64encode }}", &secrets),
            base64::engine::general_purpose::STANDARD.encode("tøken:with/odd+chars")
        );
        assert_eq!(
            text("{{ secrets.TOKEN|b64encode|b64decode }}", &secrets),
            "tøken:with/odd+chars"
        );
        assert_eq!(text("{{ secrets.UNPADDED|b64decode }}", &secrets), "hi");
    }

    #[test]
    fn b64decode_refuses_bad_input_and_binary_output_without_quoting_it() {
        let binary = base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, 0x00]);
        let secrets = set(&[("NOT_B64", "pa$$w0rd!"), ("BINARY", &binary)]);
        for (source, says) in [
            ("x\n{{ secrets.NOT_B64|b64decode }}", "not valid base64"),
            ("x\n{{ secrets.BINARY|b64decode }}", "not UTF-8 text"),
            ("x\n{{ 42|b64encode }}", "expected text or bytes"),
        ] {
            let error = render(source, &secrets).err().unwrap();
            let message = error.to_string();
            assert_eq!(error.exit_code(), exit::DATA, "{message}");
            assert!(
                message.starts_with(&format!("template {NAME}, line 2: ")),
                "{message}"
            );
            assert!(message.contains(says), "{message}");
            assert!(!message.contains("pa$$w0rd!") && !message.contains(&binary));
        }
    }

    #[test]
    fn tojson_quotes_and_escapes_and_indent_nests() {
        let secrets = set(&[
            ("QUOTED", "he said \"hi\"\nthen left\\"),
            ("PEM", "-----BEGIN KEY-----\nAAAA\n-----END KEY-----"),
        ]);
        assert_eq!(
            text("password: {{ secrets.QUOTED|tojson }}", &secrets),
            r#"password: "he said \"hi\"\nthen left\\""#
        );
        assert_eq!(
            text(
                "{{ secrets|tojson }} {{ [1, 2.5, true, none]|tojson }}",
                &secrets
            ),
            r#"{"PEM": "-----BEGIN KEY-----\nAAAA\n-----END KEY-----", "QUOTED": "he said \"hi\"\nthen left\\"} [1, 2.5, true, null]"#
        );
        assert_eq!(text("{{ \"\\u0001\"|tojson }}", &secrets), r#""\u0001""#);
        assert_eq!(
            text(
                "tls:\n  key: |\n    {{ secrets.PEM|indent(4) }}\n",
                &secrets
            ),
            "tls:\n  key: |\n    -----BEGIN KEY-----\n    AAAA\n    -----END KEY-----\n"
        );
        let lines = set(&[("L", "a\n\nb\n")]);
        assert_eq!(text("{{ secrets.L|indent }}", &lines), "a\n\n    b");
        assert_eq!(
            text("{{ secrets.L|indent(2, first=true, blank=true) }}", &lines),
            "  a\n  \n  b"
        );
        assert_eq!(
            text("{{ secrets.L|indent(width=1, first=true) }}", &lines),
            " a\n\n b"
        );
    }

    #[test]
    fn nothing_is_escaped_whatever_the_file_name() {
        let secrets = set(&[("V", "<a&b> \"q\"")]);
        for name in ["config.yaml.j2", "page.html", "data.json"] {
            let rendered = Template::parse(name, "{{ secrets.V }}")
                .unwrap()
                .render(&secrets)
                .unwrap();
            assert_eq!(rendered.content.as_slice(), b"<a&b> \"q\"", "{name}");
        }
    }

    #[test]
    fn iteration_is_in_key_order_and_block_lines_leave_no_blank_lines() {
        let source = "env:\n{% for key, value in secrets|items %}\n  {{ key }}: {{ value|tojson }}\n{% endfor %}\n";
        let forward = set(&[("B", "2"), ("A", "1"), ("C", "3")]);
        let mut backward = SecretSet::new();
        for (k, v) in [("C", "3"), ("A", "1"), ("B", "2")] {
            backward.insert(k.into(), v.into());
        }
        let expected = "env:\n  A: \"1\"\n  B: \"2\"\n  C: \"3\"\n";
        assert_eq!(text(source, &forward), expected);
        assert_eq!(text(source, &backward), expected);
    }

    #[test]
    fn an_undefined_variable_or_attribute_names_file_and_line() {
        let secrets = set(&[("DB_USER", "app")]);
        for (source, line) in [
            ("a: 1\nb: {{ databse_url }}\n", "b: {{ databse_url }}"),
            (
                "a: 1\nb: {{ secrets.DB_USER.name }}\n",
                "b: {{ secrets.DB_USER.name }}",
            ),
            (
                "a: 1\n  {% if feature_flag %}on{% endif %}\n",
                "{% if feature_flag %}on{% endif %}",
            ),
            ("a: 1\nb: {{ nope|tojson }}\n", "b: {{ nope|tojson }}"),
        ] {
            let error = render(source, &secrets).err().unwrap();
            assert!(
                matches!(error, TemplateError::Undefined { .. }),
                "{error:?}"
            );
            assert_eq!(error.exit_code(), exit::DATA);
            let message = error.to_string();
            assert!(
                message.starts_with(&format!(
                    "template {NAME}, line 2: `{line}` uses an undefined value;"
                )),
                "{message}"
            );
        }
    }

    #[test]
    fn a_syntax_error_names_file_and_line_and_exits_64() {
        let error = Template::parse(NAME, "a: 1\nb: 2\n{% if secrets.X %}\nc: 3\n")
            .err()
            .unwrap();
        assert!(matches!(error, TemplateError::Syntax { .. }), "{error:?}");
        assert_eq!(error.exit_code(), exit::USAGE);
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("template {NAME}, line ")),
            "{message}"
        );
        assert!(message.contains("syntax error"), "{message}");
        let error = Template::parse(NAME, "a: 1\nb: {{ secrets.X }\n")
            .err()
            .unwrap();
        assert_eq!(error.location().line, Some(2), "{error}");
    }

    #[test]
    fn an_unknown_filter_is_named() {
        let error = render("a\n{{ secrets.A|b64encod }}", &set(&[("A", "v")]))
            .err()
            .unwrap();
        let message = error.to_string();
        assert_eq!(error.exit_code(), exit::DATA);
        assert!(message.starts_with(&format!("template {NAME}, line 2: unknown filter")));
        assert!(message.contains("b64encod"), "{message}");
    }

    #[test]
    fn enumerating_secrets_uses_them_all() {
        let secrets = set(&[("A", "1"), ("B", "2")]);
        for source in [
            "{% for key in secrets %}{{ key }}{% endfor %}",
            "{% for key, value in secrets|items %}{{ value }}{% endfor %}",
            "{% if secrets %}some{% endif %}",
            "{{ secrets|tojson }}",
        ] {
            assert_eq!(
                render(source, &secrets).unwrap().used,
                UsedKeys::All,
                "{source}"
            );
        }
        assert_eq!(
            render(
                "{% if secrets.A is defined %}{{ secrets.A }}{% endif %}",
                &secrets
            )
            .unwrap()
            .used,
            keys(&["A"])
        );
    }

    #[test]
    fn the_fingerprint_changes_only_with_a_used_secret() {
        let template =
            Template::parse(NAME, "{{ secrets.A }}{{ secret(\"C\", default=\"\") }}").unwrap();
        let before = set(&[("A", "1"), ("B", "2")]);
        let used = template.render(&before).unwrap().used;
        let print = |pairs: &[(&str, &str)]| used.fingerprint(&set(pairs));
        let same = print(&[("A", "1"), ("B", "2")]);
        assert_eq!(same, used.fingerprint(&before));
        assert_eq!(print(&[("A", "1"), ("B", "changed")]), same);
        assert_eq!(print(&[("A", "1")]), same);
        assert_ne!(print(&[("A", "changed"), ("B", "2")]), same);
        assert_ne!(print(&[("B", "2")]), same, "a used secret disappeared");
        assert_ne!(
            print(&[("A", "1"), ("B", "2"), ("C", "")]),
            same,
            "C appeared"
        );

        let all = UsedKeys::All;
        assert_ne!(
            all.fingerprint(&before),
            all.fingerprint(&set(&[("A", "1")]))
        );
        assert_ne!(
            all.fingerprint(&before),
            keys(&["A", "B"]).fingerprint(&before)
        );
        // Length prefixes: moving a byte between key and value is a change.
        assert_ne!(
            all.fingerprint(&set(&[("AB", "C")])),
            all.fingerprint(&set(&[("A", "BC")]))
        );
    }

    #[test]
    fn debug_output_shows_no_value() {
        let secrets = set(&[("A", "hunter2")]);
        let template = Template::parse(NAME, "{{ secrets.A }}").unwrap();
        let rendered = template.render(&secrets).unwrap();
        let shown = format!("{template:?} {rendered:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("7 bytes"), "{shown}");
    }

    /// Templates that fail with a value (or a value made from it) at hand.
    const HOSTILE: &[&str] = &[
        "{{ secrets.A + 1 }}",
        "{{ secrets.A * secrets.A }}",
        "{{ secrets.A ** 99 }}",
        "{{ (secrets.A ~ \"x\") - 1 }}",
        "{{ secrets.A|b64decode }}",
        "{{ (secrets.A|b64encode) / 2 }}",
        "{{ secret(secrets.A) }}",
        "{{ secret(secrets.A ~ \"x\") }}",
        "{{ secret(\"A\", other=secrets.A) }}",
        "{{ secrets[secrets.A] }}",
        "{{ secrets[secrets.A ~ \"x\"] }}",
        "{{ secrets.A.nope }}",
        "{{ secrets.A() }}",
        "{{ secrets.A.nomethod() }}",
        "{{ secrets.A|indent(secrets.A) }}",
        "{{ secrets.A|indent(first=secrets.A) }}",
        "{{ secrets.A|tojson(secrets.A) }}",
        "{{ secrets.A|items }}",
        "{{ secrets.A|default(1, secrets.A) }}",
        "{{ (secrets.A ~ \"x\")[99] }}",
        "{% for x, y in secrets.A %}{% endfor %}",
        "{% set x = secrets.A ~ \"x\" %}{{ x|unknownfilter }}",
        "{% set x = secrets.A ~ \"x\" %}{{ x is unknowntest }}",
        "{{ secrets.A ~ nope }}",
        "{{ {secrets.A: 1}[2] }}",
        "{{ {\"a\": secrets.A}.a.b }}",
        "{{ secrets.A[1:2:0] }}",
    ];

    fn assert_hides(value: &str) {
        let secrets = set(&[("A", value)]);
        for source in HOSTILE {
            let Err(error) = render(source, &secrets) else {
                continue;
            };
            let shown = format!("{error} {error:?}");
            for form in [value.to_owned(), format!("{value}x")] {
                assert!(
                    !shown.contains(&form),
                    "{source}: the value {form:?} is in {shown:?}"
                );
            }
        }
    }

    #[test]
    fn no_value_reaches_an_error_message() {
        for value in [
            "hunter2-pass",
            "he said \"x\"",
            "line1\nline2",
            "{{ secrets }}",
            "42.5",
            "ünïcødé-ßecret",
            "aGVsbG8gd29ybGQ=",
            "987654321987",
        ] {
            assert_hides(value);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn no_random_value_reaches_an_error_message(value in "[a-z0-9 \"'{}|.\\\\\n-]{6,24}") {
            // Values made only of template words would be found in the template's own text.
            prop_assume!(value.chars().filter(|c| c.is_ascii_alphanumeric()).count() >= 4);
            assert_hides(&value);
        }
    }

    #[test]
    fn the_output_buffer_grows_past_its_first_capacity() {
        let secrets = set(&[("A", &"x".repeat(10_000))]);
        let rendered = render("{{ secrets.A }}{{ secrets.A }}", &secrets).unwrap();
        assert_eq!(rendered.content.len(), 20_000);
    }
}
