//! The single-file formats of `--out-file`: `dotenv`, `shell`, `json` and `yaml`.
//!
//! Every format writes the keys in sorted order and carries every value byte for byte, or
//! refuses it with an error naming the key; nothing is ever silently changed.
//!
//! - `dotenv` is written for python-dotenv's reader (`dotenv_values(path, interpolate=False)`).
//!   Plain values (letters, digits and `_-.,:/+@%=~^`) and empty values are written bare;
//!   everything else is written in double quotes with the escapes `\\`, `\"`, `\n` and `\r`.
//!   `dotenv` cannot carry:
//!   - a value containing a NUL byte;
//!   - a value that ends with a backslash (`\`) and also contains a line break (LF or CR),
//!     starts with whitespace, `'` or `"`, or contains whitespace directly followed by `#`
//!     ("whitespace" as Python counts it: Unicode whitespace plus U+001C..U+001F).
//!     Inside quotes python-dotenv reads a final backslash as escaping the closing quote, so
//!     such a value must be written bare, and a bare value ends at the line break, loses its
//!     leading whitespace, is read as quoted when it starts with a quote, and loses everything
//!     from a whitespace-and-`#` on (a comment).
//!
//!   Such values are refused (exit 65): `--format json` carries every value, `--format shell`
//!   every value without NUL. python-dotenv's
//!   default `interpolate=True` expands `${NAME}` in any value and has no escape for it: read
//!   values containing `${` with `interpolate=False`.
//! - `shell`: `export KEY='value'` lines (a `'` becomes `'\''`) that any POSIX `sh` sources back
//!   exactly. A NUL byte cannot be carried.
//! - `json`: one object, pretty-printed, with a trailing newline.
//! - `yaml`: one block mapping of double-quoted scalars, one `"key": "value"` line per secret.
//!   Line breaks, controls, DEL, C1 controls, U+2028/U+2029, U+FEFF, U+FFFE and U+FFFF are
//!   escaped, so the file is plain printable text that YAML 1.1 and 1.2 parsers read back exactly.
//!
//! `dotenv` and `shell` keys must be environment variable names; `json` and `yaml` take any key.

use std::fmt;
use std::io;

use serde::ser::{Serialize, SerializeMap, Serializer};
use zeroize::Zeroizing;

use super::error::SinkError;
use crate::secrets::{KeyRule, SecretSet};

/// The format of `--out-file`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Format {
    /// `KEY=value` lines for python-dotenv and compatible readers (the default).
    #[default]
    Dotenv,
    /// `export KEY='value'` lines for `sh`'s `.` command.
    Shell,
    /// One JSON object.
    Json,
    /// One YAML mapping.
    Yaml,
}

impl Format {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Dotenv => "dotenv",
            Format::Shell => "shell",
            Format::Json => "json",
            Format::Yaml => "yaml",
        }
    }

    /// Whether keys must be environment variable names (`[A-Za-z_][A-Za-z0-9_]*`).
    pub fn needs_env_names(self) -> bool {
        matches!(self, Format::Dotenv | Format::Shell)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Encodes every secret of `secrets` in `format`.
///
/// Errors name the key, never the value: [`SinkError::InvalidKey`] when a `dotenv`/`shell` key
/// is not an environment variable name, [`SinkError::UnrepresentableValue`] when the format
/// cannot carry a value. The buffer is sized before the first byte is written, so the content
/// exists in exactly one allocation, which is wiped on drop.
pub fn encode(format: Format, secrets: &SecretSet) -> Result<Zeroizing<Vec<u8>>, SinkError> {
    if format.needs_env_names() {
        let output = format!("an environment variable name in a {format} file");
        for key in secrets.keys() {
            KeyRule::EnvName.check(key, &output)?;
        }
    }
    // First pass counts, second pass writes: growing a Vec would leave copies of the values
    // in freed memory that nothing wipes.
    let mut counter = Counter(0);
    render(format, secrets, &mut counter)?;
    let mut buffer = Zeroizing::new(Vec::with_capacity(counter.0));
    render(format, secrets, &mut *buffer)?;
    Ok(buffer)
}

fn render(format: Format, secrets: &SecretSet, out: &mut dyn Out) -> Result<(), SinkError> {
    match format {
        Format::Dotenv => render_dotenv(secrets, out),
        Format::Shell => render_shell(secrets, out),
        Format::Json => {
            render_json(secrets, out);
            Ok(())
        }
        Format::Yaml => {
            render_yaml(secrets, out);
            Ok(())
        }
    }
}

/// Where encoded bytes go: a byte counter or the final buffer. Neither can fail.
trait Out {
    fn put(&mut self, bytes: &[u8]);
}

struct Counter(usize);

impl Out for Counter {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

impl Out for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Lets serde_json write into an [`Out`].
struct IoOut<'a>(&'a mut dyn Out);

impl io::Write for IoOut<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.put(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const NUL_REASON: &str = "contains a NUL byte, which no environment variable can hold; \
                          use --format json, --format yaml or --out-dir instead";

fn unrepresentable(key: &str, format: Format, reason: &'static str) -> SinkError {
    SinkError::UnrepresentableValue {
        key: key.to_owned(),
        format: format.name(),
        reason,
    }
}

/// How a dotenv value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DotenvStyle {
    /// As is, after `=`.
    Bare,
    /// In double quotes with `\\ \" \n \r` escapes.
    Quoted,
}

/// Python's `\s` (`str.isspace`): Rust's White_Space plus the separators U+001C..U+001F.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Values that need no quoting in any dotenv dialect.
fn is_plain(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_-.,:/+@%=~^".contains(&b))
}

/// How python-dotenv can read `value` back exactly, or why it cannot.
fn dotenv_style(value: &str) -> Result<DotenvStyle, &'static str> {
    if value.contains('\0') {
        return Err(NUL_REASON);
    }
    if is_plain(value) {
        return Ok(DotenvStyle::Bare);
    }
    if !value.ends_with('\\') {
        return Ok(DotenvStyle::Quoted);
    }
    // In quotes the final backslash would escape the closing quote (python-dotenv's
    // `"((?:\\"|[^"])*)"`), so the value can only be written bare; check that python-dotenv's
    // bare-value rules keep it whole.
    if value.contains(['\n', '\r']) {
        return Err(
            "ends with a backslash and contains a line break, which python-dotenv cannot \
                    read back in any quoting; use --format json or --format shell instead",
        );
    }
    if value.starts_with(is_python_space) || value.starts_with(['\'', '"']) {
        return Err(
            "ends with a backslash and starts with whitespace or a quote, which \
                    python-dotenv cannot read back in any quoting; use --format json or --format \
                    shell instead",
        );
    }
    let mut previous_space = false;
    for c in value.chars() {
        if c == '#' && previous_space {
            return Err(
                "ends with a backslash and contains whitespace followed by '#', which \
                        python-dotenv cannot read back in any quoting; use --format json or \
                        --format shell instead",
            );
        }
        previous_space = is_python_space(c);
    }
    Ok(DotenvStyle::Bare)
}

fn render_dotenv(secrets: &SecretSet, out: &mut dyn Out) -> Result<(), SinkError> {
    for (key, value) in secrets.iter() {
        let value = value.expose();
        let style =
            dotenv_style(value).map_err(|reason| unrepresentable(key, Format::Dotenv, reason))?;
        out.put(key.as_bytes());
        out.put(b"=");
        match style {
            DotenvStyle::Bare => out.put(value.as_bytes()),
            DotenvStyle::Quoted => {
                out.put(b"\"");
                put_escaped(value, out, |c| match c {
                    '\\' => Some("\\\\"),
                    '"' => Some("\\\""),
                    '\n' => Some("\\n"),
                    // A raw CR would be turned into a line break by Python's universal newlines.
                    '\r' => Some("\\r"),
                    _ => None,
                });
                out.put(b"\"");
            }
        }
        out.put(b"\n");
    }
    Ok(())
}

fn render_shell(secrets: &SecretSet, out: &mut dyn Out) -> Result<(), SinkError> {
    for (key, value) in secrets.iter() {
        let value = value.expose();
        if value.contains('\0') {
            return Err(unrepresentable(key, Format::Shell, NUL_REASON));
        }
        out.put(b"export ");
        out.put(key.as_bytes());
        out.put(b"='");
        // Nothing is special inside single quotes except the quote itself, which is written
        // as: close the quotes, an escaped quote, reopen.
        put_escaped(value, out, |c| (c == '\'').then_some("'\\''"));
        out.put(b"'\n");
    }
    Ok(())
}

/// Serializes the set as a JSON object without copying values into a map first.
struct JsonObject<'a>(&'a SecretSet);

impl Serialize for JsonObject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0.iter() {
            map.serialize_entry(key, value.expose())?;
        }
        map.end()
    }
}

fn render_json(secrets: &SecretSet, out: &mut dyn Out) {
    let result = serde_json::to_writer_pretty(IoOut(&mut *out), &JsonObject(secrets));
    // serde_json fails only on non-string map keys or a failing writer; the keys are strings
    // and `IoOut` never fails, so there is no error to report.
    debug_assert!(result.is_ok());
    out.put(b"\n");
}

fn render_yaml(secrets: &SecretSet, out: &mut dyn Out) {
    if secrets.is_empty() {
        // An empty document would read back as null, not as an empty mapping.
        out.put(b"{}\n");
        return;
    }
    for (key, value) in secrets.iter() {
        put_yaml_scalar(key, out);
        out.put(b": ");
        put_yaml_scalar(value.expose(), out);
        out.put(b"\n");
    }
}

/// A YAML double-quoted scalar holding exactly `text`, on one line of printable characters.
fn put_yaml_scalar(text: &str, out: &mut dyn Out) {
    out.put(b"\"");
    let mut start = 0;
    for (index, c) in text.char_indices() {
        let escape: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\t' => Some("\\t"),
            '\r' => Some("\\r"),
            '\0' => Some("\\0"),
            _ => None,
        };
        let needs_code = escape.is_none()
            && matches!(c, '\u{1}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}'
                | '\u{feff}' | '\u{fffe}' | '\u{ffff}');
        if escape.is_none() && !needs_code {
            continue;
        }
        out.put(&text.as_bytes()[start..index]);
        start = index + c.len_utf8();
        match escape {
            Some(escape) => out.put(escape.as_bytes()),
            None => put_yaml_code(u32::from(c), out),
        }
    }
    out.put(&text.as_bytes()[start..]);
    out.put(b"\"");
}

/// A `\\xXX` or `\\uXXXX` escape, formatted in place: no heap copy of the value's characters.
fn put_yaml_code(code: u32, out: &mut dyn Out) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let (prefix, digits): (&[u8], usize) = if code <= 0xff {
        (b"\\x", 2)
    } else {
        (b"\\u", 4)
    };
    let mut hex = [0u8; 4];
    for (index, slot) in hex[..digits].iter_mut().enumerate() {
        let shift = 4 * (digits - 1 - index);
        *slot = HEX[((code >> shift) & 0xf) as usize];
    }
    out.put(prefix);
    out.put(&hex[..digits]);
}

/// Writes `text`, replacing each character for which `escape` returns a replacement, and
/// copying the runs in between as slices (no per-value temporary copies).
fn put_escaped(text: &str, out: &mut dyn Out, escape: impl Fn(char) -> Option<&'static str>) {
    let mut start = 0;
    for (index, c) in text.char_indices() {
        if let Some(replacement) = escape(c) {
            out.put(&text.as_bytes()[start..index]);
            out.put(replacement.as_bytes());
            start = index + c.len_utf8();
        }
    }
    out.put(&text.as_bytes()[start..]);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;

    use super::*;
    use crate::secrets::{KeyError, SecretValue};

    fn set<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> SecretSet {
        pairs
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), SecretValue::from(v.as_ref())))
            .collect()
    }

    fn text(format: Format, secrets: &SecretSet) -> String {
        let bytes = encode(format, secrets).expect("encodes");
        String::from_utf8(bytes.to_vec()).expect("UTF-8")
    }

    /// Runs `script` with python3 over `paths`; it prints one JSON value. Fails (never skips)
    /// when python3 or `package` is missing, so CI cannot pass without the real reader.
    fn python_json(
        module: &str,
        package: &str,
        script: &str,
        paths: &[PathBuf],
    ) -> serde_json::Value {
        let probe = Command::new("python3")
            .arg("-c")
            .arg(format!("import {module}"))
            .output();
        if !probe.is_ok_and(|out| out.status.success()) {
            panic!(
                "this test reads the files back with python3 and {package}, which is not \
                 importable: pip install {package}"
            );
        }
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(paths)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "python3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("python3 printed JSON")
    }

    const DOTENV_READER: &str = "import json, sys\n\
        from dotenv import dotenv_values\n\
        print(json.dumps([dotenv_values(p, interpolate=False) for p in sys.argv[1:]]))\n";

    const YAML_READER: &str = "import json, sys, yaml\n\
        out = []\n\
        for p in sys.argv[1:]:\n\
        \x20   with open(p, 'rb') as f:\n\
        \x20       out.append(yaml.safe_load(f))\n\
        print(json.dumps(out))\n";

    /// Reads back `files` with python-dotenv.
    fn read_dotenv(files: &[PathBuf]) -> Vec<BTreeMap<String, Option<String>>> {
        serde_json::from_value(python_json("dotenv", "python-dotenv", DOTENV_READER, files))
            .expect("a list of objects")
    }

    /// What python-dotenv returns for a file holding `secrets`.
    fn as_read(secrets: &SecretSet) -> BTreeMap<String, Option<String>> {
        secrets
            .iter()
            .map(|(k, v)| (k.to_owned(), Some(v.expose().to_owned())))
            .collect()
    }

    /// Sources `path` with /bin/sh and prints the variables `keys`.
    fn source_with_sh(path: &Path, keys: &[&str]) -> Vec<String> {
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(r#"set -e; . "$1"; shift; for k do eval "v=\${$k}"; printf '%s\0' "$v"; done"#)
            .arg("sh")
            .arg(path)
            .args(keys)
            .output()
            .expect("/bin/sh runs");
        assert!(
            out.status.success(),
            "sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut values: Vec<String> = out
            .stdout
            .split(|&b| b == 0)
            .map(|v| String::from_utf8(v.to_vec()).expect("UTF-8"))
            .collect();
        assert_eq!(values.pop().as_deref(), Some(""), "output ends with a NUL");
        values
    }

    /// Characters that break naive encoders, mixed with letters.
    fn tricky_char() -> impl Strategy<Value = char> {
        prop_oneof![
            3 => proptest::char::range('a', 'z'),
            2 => proptest::sample::select(vec![
                ' ', '\t', '\n', '\r', '"', '\'', '\\', '$', '#', '=', '{', '}', '`', '!', '*', 'é',
                '€', '😀', '\u{2028}', '\u{2029}', '\u{85}', '\u{a0}', '\u{b}', '\u{c}', '\u{1c}',
                '\u{1}', '\u{1b}', '\u{7f}', '\u{9f}', '\u{feff}', '\u{fffe}', '\u{ffff}',
            ]),
        ]
    }

    /// Values without NUL: tricky mixes, arbitrary Unicode, padded, empty, and final backslashes.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            vec(tricky_char(), 0..24).prop_map(String::from_iter),
            any::<String>(),
            "[ -~]{0,16}",
            "[a-z]{0,6}".prop_map(|s| format!("  {s}  ")),
            vec(tricky_char(), 0..8).prop_map(|c| format!("{}\\", String::from_iter(c))),
            Just(String::new()),
        ]
        .prop_map(|v| v.replace('\0', ""))
    }

    /// Values that may hold NUL, for the formats that carry it.
    fn binary_value() -> impl Strategy<Value = String> {
        prop_oneof![3 => value(), 1 => value().prop_map(|v| format!("{v}\0{v}"))]
    }

    #[test]
    fn the_value_enum_uses_the_command_line_names_with_help() {
        use clap::ValueEnum;
        let names: Vec<_> = Format::value_variants()
            .iter()
            .map(|format| format.to_possible_value().unwrap())
            .inspect(|value| assert!(value.get_help().is_some(), "{value:?}"))
            .map(|value| value.get_name().to_owned())
            .collect();
        let printed: Vec<_> = Format::value_variants()
            .iter()
            .map(Format::to_string)
            .collect();
        assert_eq!(names, ["dotenv", "shell", "json", "yaml"]);
        assert_eq!(printed, names, "messages print the command-line names");
    }

    #[test]
    fn dotenv_writes_plain_values_bare_and_quotes_the_rest() {
        let secrets = set([
            ("A", "plain-1.2/x@y:z"),
            ("B", ""),
            ("C", "has space"),
            ("D", "line1\nline2\r\n"),
            ("E", "back\\slash \"q\" 'single' $HOME #x"),
            ("F", "C:\\ends\\"),
        ]);
        assert_eq!(
            text(Format::Dotenv, &secrets),
            "A=plain-1.2/x@y:z\nB=\nC=\"has space\"\nD=\"line1\\nline2\\r\\n\"\n\
             E=\"back\\\\slash \\\"q\\\" 'single' $HOME #x\"\nF=C:\\ends\\\n"
        );
    }

    #[test]
    fn shell_quotes_everything_in_single_quotes() {
        let secrets = set([("A", "it's"), ("B", ""), ("C", "$x `y` \\ \"\n")]);
        assert_eq!(
            text(Format::Shell, &secrets),
            "export A='it'\\''s'\nexport B=''\nexport C='$x `y` \\ \"\n'\n"
        );
    }

    #[test]
    fn json_is_one_pretty_object_with_a_final_newline() {
        assert_eq!(
            text(Format::Json, &set([("b", "2\n"), ("a", "1")])),
            "{\n  \"a\": \"1\",\n  \"b\": \"2\\n\"\n}\n"
        );
        assert_eq!(text(Format::Json, &SecretSet::new()), "{}\n");
    }

    #[test]
    fn yaml_escapes_everything_that_is_not_printable() {
        let secrets = set([
            (
                "a b",
                "q\"\\\n\t\r\0\u{1}\u{7f}\u{85}\u{a0}é\u{2028}\u{feff}\u{ffff}😀",
            ),
            ("", ""),
        ]);
        assert_eq!(
            text(Format::Yaml, &secrets),
            "\"\": \"\"\n\"a b\": \"q\\\"\\\\\\n\\t\\r\\0\\x01\\x7F\\x85\u{a0}é\\u2028\\uFEFF\\uFFFF😀\"\n"
        );
        assert_eq!(text(Format::Yaml, &SecretSet::new()), "{}\n");
    }

    #[test]
    fn env_formats_refuse_keys_that_are_not_env_names() {
        for format in [Format::Dotenv, Format::Shell] {
            let error = encode(format, &set([("tls.crt", "x")])).unwrap_err();
            assert!(
                matches!(&error, SinkError::InvalidKey(KeyError { key, .. }) if key == "tls.crt"),
                "{error}"
            );
            assert_eq!(error.exit_code(), 65);
        }
        for format in [Format::Json, Format::Yaml] {
            assert!(encode(format, &set([("tls.crt", "x"), ("", "y")])).is_ok());
        }
    }

    #[test]
    fn values_a_format_cannot_carry_are_refused_naming_the_key_only() {
        let cases = [
            (Format::Dotenv, "SECRET\0VALUE"),
            (Format::Shell, "SECRET\0VALUE"),
            (Format::Dotenv, "SECRET\nVALUE\\"),
            (Format::Dotenv, "SECRET\rVALUE\\"),
            (Format::Dotenv, " SECRETVALUE\\"),
            (Format::Dotenv, "\"SECRETVALUE\\"),
            (Format::Dotenv, "'SECRETVALUE\\"),
            (Format::Dotenv, "SECRET #VALUE\\"),
            (Format::Dotenv, "SECRET\u{1c}#VALUE\\"),
        ];
        for (format, value) in cases {
            let secrets = set([("OK", "fine"), ("THE_KEY", value)]);
            let error = encode(format, &secrets).unwrap_err();
            assert!(
                matches!(
                    &error,
                    SinkError::UnrepresentableValue { key, format: f, .. }
                        if key == "THE_KEY" && *f == format.name()
                ),
                "{value:?}: {error:?}"
            );
            let message = error.to_string();
            assert!(
                message.contains("\"THE_KEY\"") && message.contains("--format"),
                "{message}"
            );
            assert!(
                !message.contains("SECRET") && !message.contains("VALUE"),
                "value leaked: {message}"
            );
            assert!(!message.contains('\n'), "{message}");
            assert_eq!(error.exit_code(), 65);
        }
        for format in [Format::Json, Format::Yaml] {
            assert!(encode(format, &set([("K", "a\0b")])).is_ok());
        }
    }

    #[test]
    fn dotenv_reads_back_exactly_with_python_dotenv_and_refusals_are_needed() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = set([
            ("PLAIN", "abc"),
            ("EMPTY", ""),
            ("SPACES", "  padded  "),
            ("MULTILINE", "-----BEGIN-----\nAAAA\n-----END-----\n"),
            ("CR", "a\r\nb\rc"),
            ("QUOTES", "\"double\" 'single' \\\"mixed\\'"),
            ("BACKSLASHES", "\\n is not a newline \\\\ \\x \\u0041"),
            ("SHELLISH", "$HOME ${HOME} `cmd` #comment =eq"),
            ("TRAILING_BACKSLASH", "C:\\Program Files\\"),
            ("HASH_START", "#not-a-comment\\"),
            (
                "UNICODE",
                "é€😀\u{2028}\u{85}\u{a0}\u{b}\u{c}\u{1c}\u{7f}\u{feff}",
            ),
            ("CONTROL", "\u{1}\u{1b}[0m\t"),
        ]);
        let good = dir.path().join("good.env");
        fs::write(&good, encode(Format::Dotenv, &secrets).unwrap().as_slice()).unwrap();

        // Each refused value, written the two ways an encoder could try, followed by another
        // line: python-dotenv must not read it back, or the refusal would be needless.
        let refused = ["a\\\nb\\", "x\r\\", " lead\\", "'q\\", "\"q\\", "a #b\\"];
        let mut naive = Vec::new();
        for (index, value) in refused.iter().enumerate() {
            assert!(dotenv_style(value).is_err(), "{value:?} accepted");
            let quoted: String = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
                .replace('\r', "\\r");
            for (style, line) in [
                ("quoted", format!("K=\"{quoted}\"")),
                ("bare", format!("K={value}")),
            ] {
                let path = dir.path().join(format!("naive-{index}-{style}.env"));
                fs::write(&path, format!("{line}\nZ=\"z\"\n")).unwrap();
                naive.push((value, style, path));
            }
        }
        let mut files = vec![good];
        files.extend(naive.iter().map(|(_, _, path)| path.clone()));
        let read = read_dotenv(&files);
        assert_eq!(read[0], as_read(&secrets));
        for ((value, style, _), got) in naive.iter().zip(&read[1..]) {
            assert!(
                got.get("K") != Some(&Some(value.to_string()))
                    || got.get("Z") != Some(&Some("z".into())),
                "python-dotenv reads {value:?} written {style}: the refusal is not needed"
            );
        }
    }

    fn env_key() -> impl Strategy<Value = String> {
        "[A-Za-z_][A-Za-z0-9_]{0,10}"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4))]

        /// Many generated files per case, read back in one python call.
        #[test]
        fn dotenv_round_trips_through_python_dotenv(
            sets in vec(btree_map(env_key(), value(), 0..8), 60)
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut files = Vec::new();
            let mut expected = Vec::new();
            for (index, pairs) in sets.iter().enumerate() {
                let mut secrets = set(pairs);
                for (key, value) in pairs {
                    if let Err(reason) = dotenv_style(value) {
                        // Only the documented shapes are refused, and encode refuses them.
                        prop_assert!(value.ends_with('\\'), "{value:?} refused: {reason}");
                        let error = encode(Format::Dotenv, &secrets).unwrap_err();
                        let refused = matches!(error, SinkError::UnrepresentableValue { .. });
                        prop_assert!(refused);
                        secrets.remove(key);
                    }
                }
                let path = dir.path().join(format!("{index}.env"));
                fs::write(&path, encode(Format::Dotenv, &secrets).unwrap().as_slice()).unwrap();
                files.push(path);
                expected.push(as_read(&secrets));
            }
            prop_assert_eq!(read_dotenv(&files), expected);
        }

        #[test]
        fn yaml_round_trips_through_pyyaml(
            sets in vec(btree_map(binary_value(), binary_value(), 0..6), 60)
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut files = Vec::new();
            for (index, pairs) in sets.iter().enumerate() {
                let path = dir.path().join(format!("{index}.yaml"));
                fs::write(&path, encode(Format::Yaml, &set(pairs)).unwrap().as_slice()).unwrap();
                files.push(path);
            }
            let read = python_json("yaml", "PyYAML", YAML_READER, &files);
            let read: Vec<BTreeMap<String, String>> =
                serde_json::from_value(read).expect("a list of mappings");
            prop_assert_eq!(read, sets);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn shell_round_trips_through_sh(pairs in btree_map("S_[A-Za-z0-9_]{0,8}", value(), 0..8)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("secrets.sh");
            fs::write(&path, encode(Format::Shell, &set(&pairs)).unwrap().as_slice()).unwrap();
            let keys: Vec<&str> = pairs.keys().map(String::as_str).collect();
            let values = source_with_sh(&path, &keys);
            prop_assert_eq!(values, pairs.values().cloned().collect::<Vec<_>>());
        }
    }

    proptest! {
        #[test]
        fn json_round_trips_through_serde_json(
            pairs in btree_map(binary_value(), binary_value(), 0..8)
        ) {
            let encoded = encode(Format::Json, &set(&pairs)).unwrap();
            prop_assert!(encoded.ends_with(b"}\n"), "no final newline");
            let read: BTreeMap<String, String> = serde_json::from_slice(&encoded).unwrap();
            prop_assert_eq!(read, pairs);
        }

        #[test]
        fn yaml_is_printable_single_line_text(
            pairs in btree_map(binary_value(), binary_value(), 1..8)
        ) {
            let encoded = encode(Format::Yaml, &set(&pairs)).unwrap();
            let text = std::str::from_utf8(&encoded).unwrap();
            prop_assert_eq!(text.lines().count(), pairs.len());
            for c in text.chars() {
                let printable = matches!(
                    c,
                    '\n' | ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..
                )
                    && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}');
                prop_assert!(printable, "{:?} written raw", c);
            }
        }

        #[test]
        fn encoded_buffers_are_allocated_exactly_once(
            pairs in btree_map(env_key(), value(), 0..8),
            index in 0usize..4
        ) {
            let format = <Format as clap::ValueEnum>::value_variants()[index];
            if let Ok(encoded) = encode(format, &set(&pairs)) {
                prop_assert_eq!(encoded.len(), encoded.capacity());
            }
        }
    }

    use std::fs;
}
