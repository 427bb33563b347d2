//! Hostile keys and values, generated: control characters, `.`/`..`, `/`, NUL, keys of 255,
//! 256 and 300 bytes, values up to 1 MB, text that looks like escapes of invalid UTF-8. They go
//! through every output (a directory, each file format, a template) and the env-var path of
//! `exec`. The result is never a panic and never a file outside the target: either a clear
//! error, or an exact round trip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use infisical_materializer::mode::exec::environment::EnvRecipe;
use infisical_materializer::secrets::{InvalidKeys, SecretSet, SecretValue};
use infisical_materializer::sink::template::Template;
use infisical_materializer::sink::{Format, Output, OutputConfig, Outputs, Target};
use proptest::prelude::*;

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z_][A-Z0-9_]{0,12}",
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("..data".to_owned()),
        Just("..2020_01_01_00_00_00.000000001".to_owned()),
        Just("../escape".to_owned()),
        Just("/etc/passwd".to_owned()),
        Just("a/b".to_owned()),
        Just("NUL\0KEY".to_owned()),
        Just("K".repeat(255)),
        Just("K".repeat(256)),
        Just("K".repeat(300)),
        "[\\x00-\\x1f\\x7f]{1,4}",
        "\\PC{1,8}",
        Just(String::new()),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,24}",
        "[\\x00-\\x1f\\x7f'\"\\\\$`=#\n]{0,12}",
        Just("\\xff\\xfe\\u{d800}".to_owned()),
        Just("${OTHER} $(id) `id`".to_owned()),
        Just("multi\nline\r\nvalue\n".to_owned()),
        Just("x".repeat(1 << 20)),
    ]
}

/// Every file and link under `root`, relative to it.
fn tree(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            found.push(path.strip_prefix(root).expect("under root").to_owned());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    found
}

fn target(output: Output) -> Target {
    Target {
        output,
        mode: 0o600,
        owner: None,
    }
}

/// Writes one output; returns whether it succeeded, checking that nothing but the target
/// (`root/out` and what is in it, or the file `root/out.*`) exists afterwards: no write outside
/// it, no temporary file left behind.
fn write(root: &Path, output: Output, policy: InvalidKeys, secrets: &SecretSet) -> bool {
    let mut outputs = Outputs::new(OutputConfig {
        targets: vec![target(output)],
        invalid_keys: policy,
        require_tmpfs: false,
    });
    let written = outputs.write(secrets);
    for path in tree(root) {
        let name = path.to_string_lossy();
        assert!(
            path.starts_with("out") || name == "out.file" || name == "out.rendered",
            "a write escaped the target: {}",
            path.display()
        );
    }
    written.is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn hostile_keys_and_values_round_trip_or_are_refused(
        pairs in prop::collection::vec((key(), value()), 1..4)
    ) {
        let secrets: SecretSet = pairs
            .iter()
            .map(|(k, v)| (k.clone(), SecretValue::from(v.as_str())))
            .collect();
        let last: BTreeMap<&str, &str> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

        // A directory: with `skip`, every key that can be a file name is written exactly.
        for policy in [InvalidKeys::Skip, InvalidKeys::Fail] {
            let root = tempfile::tempdir().expect("temp dir");
            let out = root.path().join("out");
            let ok = write(root.path(), Output::Dir { path: out.clone(), decode: BTreeMap::new() }, policy, &secrets);
            if policy == InvalidKeys::Skip {
                prop_assert!(ok, "skip must skip, not fail");
            }
            if ok {
                for (key, value) in &last {
                    if let Ok(bytes) = std::fs::read(out.join(key)) {
                        if out.join(key).parent() == Some(out.as_path()) {
                            prop_assert_eq!(bytes, value.as_bytes(), "{:?}", key);
                        }
                    }
                }
            }
        }

        // Each file format: JSON and YAML parse back to exactly the pairs written.
        for format in [Format::Dotenv, Format::Shell, Format::Json, Format::Yaml] {
            let root = tempfile::tempdir().expect("temp dir");
            let file = root.path().join("out.file");
            if !write(root.path(), Output::File { path: file.clone(), format }, InvalidKeys::Fail, &secrets) {
                continue;
            }
            let bytes = std::fs::read(&file).expect("written");
            let parsed: Option<BTreeMap<String, String>> = match format {
                Format::Json => Some(serde_json::from_slice(&bytes).expect("JSON parses")),
                Format::Yaml => Some(serde_yaml::from_slice(&bytes).expect("YAML parses")),
                _ => None,
            };
            if let Some(parsed) = parsed {
                let expected: BTreeMap<String, String> =
                    last.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
                prop_assert_eq!(parsed, expected, "{:?}", format);
            }
        }

        // A template naming each key renders its value exactly, or fails clearly.
        let (key, value) = pairs.last().expect("a pair");
        let source = format!("{{{{ secret({}) }}}}", serde_json::to_string(key).expect("json"));
        if let Ok(template) = Template::parse("t.tmpl", &source) {
            let root = tempfile::tempdir().expect("temp dir");
            let destination = root.path().join("out.rendered");
            let output = Output::Template { template: Arc::new(template), source: None, destination: destination.clone() };
            if write(root.path(), output, InvalidKeys::Fail, &secrets) {
                prop_assert_eq!(std::fs::read(&destination).expect("rendered"), value.as_bytes());
            }
        }

        // The env-var path: every variable set is exactly its value; a bad key or a NUL in a
        // value is an error, not a truncated variable.
        let recipe = EnvRecipe {
            inherited: Vec::new(),
            policy: InvalidKeys::Skip,
            preserve_env: false,
            keep: Vec::new(),
        };
        if let Ok(env) = recipe.build(secrets.clone()) {
            for (name, got) in env.vars() {
                let name = name.to_str().expect("env names are ASCII");
                prop_assert_eq!(Some(got.to_str().expect("UTF-8")), last.get(name).copied(), "{}", name);
            }
        }
    }
}
