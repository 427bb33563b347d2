//! The secret model: values that zeroize themselves, the merged and renamed set of secrets that
//! the outputs write, and the rules a key must follow to become a file name or an env name,
//! with the `--invalid-keys` policy that applies them.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::exit;

/// A secret value. Its memory is wiped on drop and `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wraps a value; the caller gives up its copy.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value itself, for writing it where it belongs (a file, a child's environment).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SecretValue)
    }
}

impl From<&str> for SecretValue {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// The secrets to materialize: local name → value, sorted by name for stable output.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretSet {
    entries: BTreeMap<String, SecretValue>,
}

impl fmt::Debug for SecretSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.entries.keys()).finish()
    }
}

impl SecretSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces one secret.
    pub fn insert(&mut self, key: String, value: SecretValue) {
        self.entries.insert(key, value);
    }

    /// Removes one secret, returning whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        self.entries.remove(key).is_some()
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&SecretValue> {
        self.entries.get(key)
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// The secrets in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SecretValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The key names in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// How many secrets there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A SHA-256 over every key and value, length-prefixed so that no two different sets
    /// share an input. Used to tell whether anything would change without comparing values.
    pub fn content_hash(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        for (key, value) in &self.entries {
            hasher.update((key.len() as u64).to_le_bytes());
            hasher.update(key.as_bytes());
            hasher.update((value.0.len() as u64).to_le_bytes());
            hasher.update(value.0.as_bytes());
        }
        hasher.finalize().into()
    }
}

impl FromIterator<(String, SecretValue)> for SecretSet {
    fn from_iter<I: IntoIterator<Item = (String, SecretValue)>>(iter: I) -> Self {
        Self {
            entries: iter.into_iter().collect(),
        }
    }
}

/// What a key must be usable as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRule {
    /// A file name inside a directory (`--out-dir`).
    FileName,
    /// An environment variable name (exec, `dotenv` and `shell` files).
    EnvName,
}

impl KeyRule {
    /// Why `key` cannot be used this way, if it cannot.
    pub fn problem(self, key: &str) -> Option<&'static str> {
        match self {
            KeyRule::FileName => file_name_problem(key),
            KeyRule::EnvName => env_name_problem(key),
        }
    }

    /// Refuses `key` when it cannot be used this way; `output` names the role it would play in
    /// the message, e.g. "a file name in --out-dir".
    pub fn check(self, key: &str, output: &str) -> Result<(), KeyError> {
        match self.problem(key) {
            Some(reason) => Err(KeyError {
                key: key.to_owned(),
                output: output.to_owned(),
                reason,
            }),
            None => Ok(()),
        }
    }
}

/// The longest file name Linux allows, in bytes (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// Why a key cannot be a file name, if it cannot.
fn file_name_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        Some("it is empty")
    } else if key == "." || key == ".." {
        Some("it is a directory reference")
    } else if key.starts_with("..") {
        Some("it starts with '..', which is reserved for the directory's own bookkeeping")
    } else if key.contains('/') {
        Some("it contains '/'")
    } else if key.contains('\0') {
        Some("it contains a NUL byte")
    } else if key.len() > NAME_MAX {
        Some("it is longer than 255 bytes, the longest file name Linux allows")
    } else {
        None
    }
}

/// Why a key cannot be an environment variable name (`[A-Za-z_][A-Za-z0-9_]*`), if it cannot.
fn env_name_problem(key: &str) -> Option<&'static str> {
    let mut chars = key.chars();
    match chars.next() {
        None => Some("it is empty"),
        Some(c) if !(c.is_ascii_alphabetic() || c == '_') => {
            Some("an environment variable name must start with a letter or '_'")
        }
        _ if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            Some("an environment variable name may only contain letters, digits and '_'")
        }
        _ => None,
    }
}

/// How many characters of a key a message shows before it is cut short.
const SHOWN_KEY_CHARS: usize = 64;

/// A key as messages show it: quoted and escaped, and cut short (saying how long it really is)
/// when it would flood the log line.
pub fn shown_key(key: &str) -> String {
    if key.chars().count() <= SHOWN_KEY_CHARS {
        return format!("{key:?}");
    }
    let start: String = key.chars().take(SHOWN_KEY_CHARS).collect();
    format!("{start:?}… ({} bytes)", key.len())
}

/// A key that an output cannot use while `--invalid-keys` is `fail` (exit 65). It names the
/// key, never the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "secret key {} cannot be {output}: {reason}; rename the secret in Infisical, map it \
     with --key REMOTE=LOCAL, or pass --invalid-keys skip",
    shown_key(key)
)]
pub struct KeyError {
    /// The key.
    pub key: String,
    /// The role the key would play, e.g. "a file name in --out-dir".
    pub output: String,
    /// Why it cannot.
    pub reason: &'static str,
}

impl KeyError {
    /// The documented exit code: 65, bad data.
    pub fn exit_code(&self) -> u8 {
        exit::DATA
    }
}

/// What to do with a key an output cannot use (`--invalid-keys`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InvalidKeys {
    /// Refuse the whole write (exit 65), naming the key.
    Fail,
    /// Leave the key out of that output and log a warning once.
    Skip,
}

/// The secrets whose keys `rule` accepts for `output`. `Fail`: the first refused key is an
/// error. `Skip`: refused keys are left out, with a warning the first time `warned` (when
/// given) sees `(output, key)`.
pub fn usable_keys(
    secrets: &SecretSet,
    rule: KeyRule,
    output: &str,
    policy: InvalidKeys,
    mut warned: Option<&mut HashSet<(String, String)>>,
) -> Result<SecretSet, KeyError> {
    let mut usable = secrets.clone();
    for key in secrets.keys() {
        let Some(reason) = rule.problem(key) else {
            continue;
        };
        match policy {
            InvalidKeys::Fail => {
                return Err(KeyError {
                    key: key.to_owned(),
                    output: output.to_owned(),
                    reason,
                })
            }
            InvalidKeys::Skip => {
                usable.remove(key);
                let first_time = match warned.as_deref_mut() {
                    Some(warned) => warned.insert((output.to_owned(), key.to_owned())),
                    None => true,
                };
                if first_time {
                    tracing::warn!(
                        "skipping secret key {}: it cannot be {output}: {reason} \
                         (--invalid-keys skip)",
                        shown_key(key)
                    );
                }
            }
        }
    }
    Ok(usable)
}

/// The secrets whose keys can be environment variable names, for exec mode: a refused key
/// fails (`Fail`, exit 65) or is left out with a warning (`Skip`).
pub fn check_env_keys(secrets: &SecretSet, policy: InvalidKeys) -> Result<SecretSet, KeyError> {
    usable_keys(
        secrets,
        KeyRule::EnvName,
        "an environment variable name for the command",
        policy,
        None,
    )
}

/// A secret of the listed folder (or of a sub-folder, with `recursive`).
pub struct FolderSecret {
    /// The key.
    pub key: String,
    /// The folder it lives in.
    pub path: String,
    /// The value.
    pub value: SecretValue,
}

/// The same key found in two folders of a recursive listing; the shallower folder won.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowedKey {
    /// The key.
    pub key: String,
    /// The folder whose value is used.
    pub kept: String,
    /// The folder whose value is ignored.
    pub ignored: String,
}

/// Merges a listing the way Infisical documents it: the folder's own secrets win over imported
/// ones, and among imports the LAST one (bottom-most in the UI) wins. With `recursive`, a key in
/// several folders takes the value of the shallowest folder (ties: the first path in sort order).
pub fn merge(
    local: Vec<FolderSecret>,
    imports: Vec<Vec<(String, SecretValue)>>,
) -> (SecretSet, Vec<ShadowedKey>) {
    let mut local = local;
    let depth = |path: &str| path.split('/').filter(|s| !s.is_empty()).count();
    local.sort_by(|a, b| (depth(&a.path), &a.path).cmp(&(depth(&b.path), &b.path)));
    let mut set = SecretSet::new();
    let mut origin: BTreeMap<String, String> = BTreeMap::new();
    let mut shadowed = Vec::new();
    for secret in local {
        if let Some(kept) = origin.get(&secret.key) {
            shadowed.push(ShadowedKey {
                key: secret.key.clone(),
                kept: kept.clone(),
                ignored: secret.path.clone(),
            });
            continue;
        }
        origin.insert(secret.key.clone(), secret.path.clone());
        set.insert(secret.key.clone(), secret.value.clone());
    }
    for import in imports.into_iter().rev() {
        for (key, value) in import {
            if !set.contains(&key) {
                set.insert(key, value);
            }
        }
    }
    (set, shadowed)
}

/// `REMOTE=LOCAL` (`--key`, `keys:`): take REMOTE, name it LOCAL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMapping {
    /// The key in Infisical.
    pub remote: String,
    /// The name it gets here.
    pub local: String,
}

/// Which keys of one source are taken, and under which names.
#[derive(Clone, Debug, Default)]
pub struct KeySelection {
    /// Listed keys, renamed; each must exist (`--key`, `keys:`).
    pub mappings: Vec<KeyMapping>,
    /// Keys whose name matches, kept under their own name (`--key-matching`, `keys-matching:`).
    pub matching: Option<regex_lite::Regex>,
    /// Put in front of every key taken (`prefix:`).
    pub prefix: String,
}

impl PartialEq for KeySelection {
    fn eq(&self, other: &Self) -> bool {
        self.mappings == other.mappings
            && self.prefix == other.prefix
            && self.matching.as_ref().map(regex_lite::Regex::as_str)
                == other.matching.as_ref().map(regex_lite::Regex::as_str)
    }
}

impl KeySelection {
    /// The selected keys, renamed and prefixed. With neither mappings nor a pattern every key
    /// is taken; otherwise the listed keys and the matching ones (a listed key's new name wins
    /// over a matching key of that name). Fails with the listed keys that do not exist.
    pub fn apply(&self, set: &SecretSet) -> Result<SecretSet, Vec<String>> {
        let everything = self.mappings.is_empty() && self.matching.is_none();
        let mut selected = SecretSet::new();
        if let Some(pattern) = &self.matching {
            for (key, value) in set.iter().filter(|(key, _)| pattern.is_match(key)) {
                selected.insert(format!("{}{key}", self.prefix), value.clone());
            }
        }
        if everything {
            for (key, value) in set.iter() {
                selected.insert(format!("{}{key}", self.prefix), value.clone());
            }
        }
        let mut missing = Vec::new();
        for mapping in &self.mappings {
            match set.get(&mapping.remote) {
                Some(value) => {
                    selected.insert(format!("{}{}", self.prefix, mapping.local), value.clone());
                }
                None => missing.push(mapping.remote.clone()),
            }
        }
        if missing.is_empty() {
            Ok(selected)
        } else {
            Err(missing)
        }
    }
}

/// What to do when two sources produce the same final key (`on-conflict:`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnConflict {
    /// The later source wins, with a warning naming the key and both sources.
    #[default]
    Warn,
    /// Refuse (exit 65), naming the key and both sources.
    Fail,
}

/// The same final key produced by two sources (indexes into the sources as configured).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The key.
    pub key: String,
    /// The source whose value is replaced.
    pub earlier: usize,
    /// The source whose value is used.
    pub later: usize,
}

/// Merges the sets of several sources in order: a later source wins a key that an earlier one
/// also has, and every such key is reported.
pub fn merge_sources<'a>(
    sets: impl IntoIterator<Item = &'a SecretSet>,
) -> (SecretSet, Vec<Conflict>) {
    let mut merged = SecretSet::new();
    let mut origin: BTreeMap<String, usize> = BTreeMap::new();
    let mut conflicts = Vec::new();
    for (index, set) in sets.into_iter().enumerate() {
        for (key, value) in set.iter() {
            if let Some(earlier) = origin.insert(key.to_owned(), index) {
                conflicts.push(Conflict {
                    key: key.to_owned(),
                    earlier,
                    later: index,
                });
            }
            merged.insert(key.to_owned(), value.clone());
        }
    }
    (merged, conflicts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_values() {
        let mut set = SecretSet::new();
        set.insert("API_KEY".into(), SecretValue::from("hunter2"));
        let shown = format!("{set:?} {:?}", set.get("API_KEY"));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("API_KEY"));
    }

    #[test]
    fn content_hash_separates_keys_from_values() {
        let a: SecretSet = [("AB".to_owned(), SecretValue::from("C"))]
            .into_iter()
            .collect();
        let b: SecretSet = [("A".to_owned(), SecretValue::from("BC"))]
            .into_iter()
            .collect();
        assert_ne!(a.content_hash(), b.content_hash());
        assert_eq!(a.content_hash(), a.clone().content_hash());
    }

    #[test]
    fn file_names_that_escape_or_collide_are_refused() {
        let long = "K".repeat(NAME_MAX + 1);
        let long_multibyte = "é".repeat(128); // 256 bytes, 128 characters
        for bad in [
            "",
            ".",
            "..",
            "..data",
            "../evil",
            "a/b",
            "x\0y",
            &long,
            &long_multibyte,
        ] {
            assert!(file_name_problem(bad).is_some(), "{bad:?} accepted");
        }
        let longest = "K".repeat(NAME_MAX);
        for good in [
            "API_KEY",
            "tls.crt",
            ".hidden",
            "with space",
            "-dash",
            &longest,
        ] {
            assert_eq!(file_name_problem(good), None, "{good:?} refused");
        }
    }

    #[test]
    fn long_keys_are_cut_short_in_messages() {
        assert_eq!(shown_key("API_KEY"), "\"API_KEY\"");
        let long = "K".repeat(300);
        let shown = shown_key(&long);
        assert_eq!(shown, format!("{:?}… (300 bytes)", "K".repeat(64)));
        let error = KeyRule::FileName.check(&long, "a file name").unwrap_err();
        assert!(error.to_string().contains("(300 bytes)"), "{error}");
        assert!(!error.to_string().contains(&long), "{error}");
    }

    #[test]
    fn env_names_follow_posix_shell_rules() {
        for bad in ["", "1A", "A-B", "A.B", "É", "A B"] {
            assert!(env_name_problem(bad).is_some(), "{bad:?} accepted");
        }
        for good in ["A", "_", "a_1", "DB_HOST"] {
            assert_eq!(env_name_problem(good), None, "{good:?} refused");
        }
    }

    #[test]
    fn invalid_keys_parse_as_on_the_command_line() {
        use clap::ValueEnum;
        assert_eq!(InvalidKeys::from_str("fail", false), Ok(InvalidKeys::Fail));
        assert_eq!(InvalidKeys::from_str("skip", false), Ok(InvalidKeys::Skip));
        assert!(InvalidKeys::from_str("Skip", false).is_err());
        for policy in [InvalidKeys::Fail, InvalidKeys::Skip] {
            let value = clap::ValueEnum::to_possible_value(&policy).unwrap();
            assert!(value.get_help().is_some(), "{value:?}");
        }
    }

    fn set(pairs: &[(&str, &str)]) -> SecretSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretValue::from(*v)))
            .collect()
    }

    #[test]
    fn env_keys_fail_or_are_skipped() {
        let secrets = set(&[("GOOD", "1"), ("tls.crt", "2"), ("9LIVES", "3")]);
        let error = check_env_keys(&secrets, InvalidKeys::Fail).unwrap_err();
        assert_eq!(
            error.to_string(),
            "secret key \"9LIVES\" cannot be an environment variable name for the command: an \
             environment variable name must start with a letter or '_'; rename the secret in \
             Infisical, map it with --key REMOTE=LOCAL, or pass --invalid-keys skip"
        );
        assert_eq!(error.exit_code(), exit::DATA);
        let kept = check_env_keys(&secrets, InvalidKeys::Skip).unwrap();
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["GOOD"]);
    }

    #[test]
    fn a_checked_key_names_the_role_it_cannot_play() {
        assert_eq!(KeyRule::FileName.check("tls.crt", "a file name"), Ok(()));
        let error = KeyRule::FileName
            .check("a/b", "a file name in --out-dir")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "secret key \"a/b\" cannot be a file name in --out-dir: it contains '/'; rename the \
             secret in Infisical, map it with --key REMOTE=LOCAL, or pass --invalid-keys skip"
        );
    }

    fn folder(key: &str, path: &str, value: &str) -> FolderSecret {
        FolderSecret {
            key: key.into(),
            path: path.into(),
            value: value.into(),
        }
    }

    fn imported(pairs: &[(&str, &str)]) -> Vec<(String, SecretValue)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretValue::from(*v)))
            .collect()
    }

    #[test]
    fn local_secrets_win_and_the_last_import_wins_among_imports() {
        let (set, shadowed) = merge(
            vec![folder("LOG_LEVEL", "/", "info")],
            vec![
                imported(&[
                    ("LOG_LEVEL", "debug"),
                    ("SHARED", "first"),
                    ("ONLY_FIRST", "1"),
                ]),
                imported(&[("SHARED", "last")]),
            ],
        );
        assert_eq!(set.get("LOG_LEVEL").unwrap().expose(), "info");
        assert_eq!(set.get("SHARED").unwrap().expose(), "last");
        assert_eq!(set.get("ONLY_FIRST").unwrap().expose(), "1");
        assert!(shadowed.is_empty());
    }

    #[test]
    fn recursive_duplicates_take_the_shallowest_folder() {
        let (set, shadowed) = merge(
            vec![
                folder("USER", "/app/db", "deep"),
                folder("USER", "/app", "shallow"),
                folder("USER", "/zz", "other"),
            ],
            vec![],
        );
        assert_eq!(set.get("USER").unwrap().expose(), "shallow");
        assert_eq!(shadowed.len(), 2);
        assert_eq!(shadowed[0].kept, "/app");
    }

    fn mapping(remote: &str, local: &str) -> KeyMapping {
        KeyMapping {
            remote: remote.into(),
            local: local.into(),
        }
    }

    fn keys(set: &SecretSet) -> Vec<&str> {
        set.keys().collect()
    }

    #[test]
    fn selected_keys_are_renamed_and_missing_ones_reported() {
        let set = set(&[("A", "1"), ("B", "2")]);
        let picked = KeySelection {
            mappings: vec![mapping("A", "a_file")],
            ..KeySelection::default()
        };
        assert_eq!(keys(&picked.apply(&set).unwrap()), ["a_file"]);
        let missing = KeySelection {
            mappings: vec![mapping("A", "A"), mapping("C", "C")],
            ..KeySelection::default()
        };
        assert_eq!(missing.apply(&set).unwrap_err(), ["C"]);
    }

    #[test]
    fn patterns_listed_keys_and_prefixes_combine() {
        let set = set(&[
            ("DB_USER", "u"),
            ("DB_PASS", "p"),
            ("API_KEY", "k"),
            ("HOST", "h"),
        ]);
        let everything = KeySelection {
            prefix: "APP_".into(),
            ..KeySelection::default()
        };
        assert_eq!(
            keys(&everything.apply(&set).unwrap()),
            ["APP_API_KEY", "APP_DB_PASS", "APP_DB_USER", "APP_HOST"]
        );
        let matching = KeySelection {
            mappings: vec![mapping("HOST", "DB_HOST")],
            matching: Some(regex_lite::Regex::new("^DB_").unwrap()),
            prefix: "BACKEND_".into(),
        };
        let picked = matching.apply(&set).unwrap();
        assert_eq!(
            keys(&picked),
            ["BACKEND_DB_HOST", "BACKEND_DB_PASS", "BACKEND_DB_USER"]
        );
        assert_eq!(picked.get("BACKEND_DB_HOST").unwrap().expose(), "h");
        // A pattern that matches nothing selects nothing (an empty source is judged later).
        let none = KeySelection {
            matching: Some(regex_lite::Regex::new("^NOPE").unwrap()),
            ..KeySelection::default()
        };
        assert!(none.apply(&set).unwrap().is_empty());
    }

    #[test]
    fn later_sources_win_and_every_shared_key_is_reported() {
        let first = set(&[("A", "1"), ("B", "1")]);
        let second = set(&[("B", "2"), ("C", "2")]);
        let third = set(&[("B", "3")]);
        let (merged, conflicts) = merge_sources([&first, &second, &third]);
        assert_eq!(merged.get("B").unwrap().expose(), "3");
        assert_eq!(keys(&merged), ["A", "B", "C"]);
        assert_eq!(
            conflicts,
            [
                Conflict {
                    key: "B".into(),
                    earlier: 0,
                    later: 1
                },
                Conflict {
                    key: "B".into(),
                    earlier: 1,
                    later: 2
                },
            ]
        );
    }
}
