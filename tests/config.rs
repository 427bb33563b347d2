//! `--config FILE` end to end: several sources, renames, prefixes and key patterns, conflicts,
//! validation before any request, flags over the file, templates, per-key decoding, `exec` with
//! a configuration, and a sidecar that re-renders and reloads.
//!
//! Like the other suites, the tests wait for what they can observe (files, `/metrics`, the
//! fake's request log), never for a fixed time.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    eventually, free_port, http_get, materializer, path_str, run, Finished, Running, Setup,
    PATIENCE,
};
use fake_infisical::{sample, Route, World};

/// A world with the sample project and identity and exactly these secrets, by environment and
/// folder.
fn world(secrets: &[(&str, &str, &str, &str)]) -> World {
    common::world_of(secrets)
}

/// The top of every configuration file: the server and the credentials (the client secret in a
/// file, as the file holds only paths of secrets).
fn head(setup: &Setup) -> String {
    // Written once: a sidecar watches it, and a rewrite would look like a rotation.
    let secret = setup.path("client-secret");
    if !secret.exists() {
        setup.file("client-secret", &format!("{}\n", sample::UA_CLIENT_SECRET));
    }
    format!(
        "api-url: {}\nclient-id: {}\nclient-secret-file: {}\nlog-level: debug\n",
        setup.fake.url(),
        sample::UA_CLIENT_ID,
        secret.display()
    )
}

/// Writes `config.yaml` (the head plus `body`) in the scratch dir.
fn config(setup: &Setup, body: &str) -> PathBuf {
    setup.file("config.yaml", &format!("{}{body}", head(setup)))
}

/// `MODE --config FILE`, nothing else.
fn with_config(mode: &str, file: &Path) -> Command {
    let mut command = materializer();
    command.args([mode, "--config", path_str(file)]);
    command
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The visible entries of an `--out-dir` (the keys), sorted, without kubelet-style `..` entries.
fn keys_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with(".."))
        .collect();
    names.sort();
    names
}

/// The out-dir's keys and their contents.
fn contents(dir: &Path) -> Vec<(String, String)> {
    keys_in(dir)
        .into_iter()
        .map(|key| {
            let value = read(&dir.join(&key));
            (key, value)
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Inode and modification time: what a rewrite changes even when the bytes are the same.
fn identity(path: &Path) -> (u64, i64, i64) {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (meta.ino(), meta.mtime(), meta.mtime_nsec())
}

// ---------------------------------------------------------------------------------------------
// Sources.

/// Secrets in two folders of dev and one of prod, with decoys that no source must select.
fn two_folder_world() -> World {
    world(&[
        ("dev", "/backend", "DB_USER", "app_user"),
        ("dev", "/backend", "DB_PASSWORD", "s3cr3t"),
        ("dev", "/backend", "DB_HOST", "db.internal"),
        ("dev", "/backend", "UNSELECTED", "decoy"),
        ("dev", "/flags", "FEATURE_A", "on"),
        ("dev", "/flags", "FEATURE_B", "off"),
        ("dev", "/flags", "FEATURE_C", "decoy"),
        ("prod", "/payments", "STRIPE_KEY", "sk_live"),
        ("prod", "/payments", "STRIPE_WEBHOOK", "whsec"),
        ("prod", "/payments", "PAYPAL_KEY", "decoy"),
        (
            "prod",
            "/payments",
            "MY_STRIPE_KEY",
            "decoy: the pattern is anchored",
        ),
        ("dev", "/payments", "STRIPE_KEY", "decoy: wrong environment"),
    ])
}

#[test]
fn several_sources_with_renames_prefix_and_pattern_write_exactly_the_expected_files() {
    let setup = Setup::with_world(two_folder_world());
    let out = setup.path("secrets");
    let file = config(
        &setup,
        &format!(
            "out-dir: {out}\n\
             sources:\n\
             - project-id: {id}\n\
             \x20 environment: dev\n\
             \x20 path: /backend\n\
             \x20 keys: {{DB_USER: DATABASE_USER, DB_PASSWORD: DATABASE_PASSWORD, DB_HOST: DB_HOST}}\n\
             - project-slug: {slug}\n\
             \x20 environment: dev\n\
             \x20 path: /flags\n\
             \x20 keys: [FEATURE_A, FEATURE_B=FLAG_B]\n\
             - project-id: {id}\n\
             \x20 environment: prod\n\
             \x20 path: /payments\n\
             \x20 keys-matching: \"^STRIPE_\"\n\
             \x20 prefix: PAYMENTS_\n\
             - project-id: {id}\n\
             \x20 environment: dev\n\
             \x20 path: /backend\n\
             \x20 keys: [DB_HOST=HOST]\n\
             \x20 prefix: REPLICA_\n",
            out = out.display(),
            id = sample::PROJECT_ID,
            slug = sample::PROJECT_SLUG,
        ),
    );
    run(&mut with_config("init", &file)).assert_code(0);

    assert_eq!(
        contents(&out),
        pairs(&[
            ("DATABASE_PASSWORD", "s3cr3t"),
            ("DATABASE_USER", "app_user"),
            ("DB_HOST", "db.internal"),
            ("FEATURE_A", "on"),
            ("FLAG_B", "off"),
            ("PAYMENTS_STRIPE_KEY", "sk_live"),
            ("PAYMENTS_STRIPE_WEBHOOK", "whsec"),
            ("REPLICA_HOST", "db.internal"),
        ])
    );
    // One pass: one list request per source.
    assert_eq!(setup.fake.count(Route::ListSecrets), 4);
}

/// Two sources that both give `SHARED` (dev:/ then prod:/), and a key only each has.
fn conflicting(setup: &Setup, out: &Path, on_conflict: &str) -> PathBuf {
    config(
        setup,
        &format!(
            "out-dir: {out}\n\
             on-conflict: {on_conflict}\n\
             sources:\n\
             - project-id: {id}\n\
             \x20 environment: dev\n\
             - project-id: {id}\n\
             \x20 environment: prod\n",
            out = out.display(),
            id = sample::PROJECT_ID,
        ),
    )
}

fn conflict_world() -> World {
    world(&[
        ("dev", "/", "SHARED", "from-dev"),
        ("dev", "/", "DEV_ONLY", "d"),
        ("prod", "/", "SHARED", "from-prod"),
        ("prod", "/", "PROD_ONLY", "p"),
    ])
}

#[test]
fn a_key_from_two_sources_warns_naming_both_and_the_later_source_wins() {
    let setup = Setup::with_world(conflict_world());
    let out = setup.path("secrets");
    let finished = run(&mut with_config("init", &conflicting(&setup, &out, "warn")));
    finished.assert_code(0);
    assert_eq!(
        contents(&out),
        pairs(&[
            ("DEV_ONLY", "d"),
            ("PROD_ONLY", "p"),
            ("SHARED", "from-prod"),
        ])
    );
    let warning = finished
        .stderr
        .lines()
        .find(|line| line.contains("two sources"))
        .unwrap_or_else(|| panic!("no conflict warning\n{}", finished.stderr));
    for needle in ["WARN", "SHARED", "\"dev\"", "\"prod\""] {
        assert!(warning.contains(needle), "{needle:?} in {warning}");
    }
    assert!(
        !finished.stderr.contains("from-dev") && !finished.stderr.contains("from-prod"),
        "no value in the logs\n{}",
        finished.stderr
    );
}

#[test]
fn on_conflict_fail_exits_65_and_writes_nothing() {
    let setup = Setup::with_world(conflict_world());
    let out = setup.path("secrets");
    let finished = run(&mut with_config("init", &conflicting(&setup, &out, "fail")));
    finished.assert_code(65);
    assert!(!out.exists(), "{:?}", std::fs::read_dir(&out).ok());
    let line = finished.error_line();
    for needle in ["SHARED", "\"dev\"", "\"prod\"", "on-conflict"] {
        assert!(line.contains(needle), "{needle:?} in {line}");
    }
}

// ---------------------------------------------------------------------------------------------
// Validation.

/// Runs `command` to its end, or kills it after `seconds` (a sidecar that accepted its
/// configuration would run forever): the code is then None.
fn run_bounded(command: &mut Command, scratch: &Path, seconds: u64) -> Finished {
    let stderr = scratch.join(format!("bounded-{}.log", free_port()));
    let mut running = Running::start(command, stderr);
    let ended = eventually(seconds, || !running.is_running());
    let code = if ended {
        running.child.wait().expect("wait").code()
    } else {
        None
    };
    Finished {
        code,
        stdout: String::new(),
        stderr: running.logs(),
    }
}

/// Bad configuration files: (the file after the credentials, the key path its error must name,
/// the modes that must refuse it). A case without `sources` is a single source of top-level
/// keys with an out-dir.
fn bad_files() -> Vec<(String, &'static str, &'static [&'static str])> {
    const ALL: &[&str] = &["check", "init", "sidecar"];
    const WRITERS: &[&str] = &["init", "sidecar"];
    let source = format!("- project-id: {}\n  environment: dev\n", sample::PROJECT_ID);
    let sources = format!("sources:\n{source}");
    vec![
        ("out-dirr: /tmp/x\n".into(), "out-dirr", ALL),
        ("client-secret: hunter2\n".into(), "client-secret", ALL),
        (
            format!("{sources}- project-id: p\n  environment: dev\n  pth: /app\n"),
            "sources[1].pth",
            ALL,
        ),
        (
            "sources:\n- project-id: p\n  environment: dev\n  recursive: maybe\n".into(),
            "sources[0].recursive",
            ALL,
        ),
        (
            "sources:\n- project-id: p\n  path: /\n".into(),
            "sources[0].environment",
            ALL,
        ),
        (
            "sources:\n- project-id: p\n  environment: dev\n  keys-matching: \"(\"\n".into(),
            "sources[0].keys-matching",
            ALL,
        ),
        (format!("{sources}on-conflict: maybe\n"), "on-conflict", ALL),
        ("interval: 5 parsecs\n".into(), "interval", &["sidecar"]),
        (
            "out-file: /tmp/x.env\nformat: toml\n".into(),
            "format",
            WRITERS,
        ),
        ("file-mode: \"0999\"\n".into(), "file-mode", WRITERS),
        (
            format!("{sources}outputs:\n- dir: /tmp/x\n  mode: rw-r--r--\n"),
            "outputs[0].mode",
            WRITERS,
        ),
        (
            format!("{sources}outputs:\n- dir: /tmp/x\n  owner: nobody\n"),
            "outputs[0].owner",
            WRITERS,
        ),
        (
            format!("{sources}outputs:\n- dir: /tmp/x\n  keys: {{K: {{decode: rot13}}}}\n"),
            "outputs[0].keys.K.decode",
            ALL,
        ),
        (
            format!(
                "{sources}templates:\n- content: x\n  destination: /tmp/x\n  mode: \"12345\"\n"
            ),
            "templates[0].mode",
            WRITERS,
        ),
        (
            format!("{sources}templates:\n- destination: /tmp/x\n"),
            "templates[0]",
            ALL,
        ),
    ]
}

/// Whether an error line names `key` as a key (`key:`) or a flag (`--key "value"`).
fn names_key(line: &str, key: &str) -> bool {
    [":", " ", "\""]
        .iter()
        .any(|end| line.contains(&format!("{key}{end}")))
}

#[test]
fn unknown_keys_and_bad_values_exit_64_naming_the_key_before_any_request() {
    let mut failures = Vec::new();
    for (body, key, modes) in bad_files() {
        let setup = Setup::with_world(world(&[("dev", "/", "A", "a")]));
        let text = if body.contains("sources:") {
            body
        } else {
            format!(
                "project-id: {}\nenv: dev\nout-dir: {}\n{body}",
                sample::PROJECT_ID,
                setup.path("out").display()
            )
        };
        let file = config(&setup, &text);
        for mode in modes.iter().copied() {
            let finished = run_bounded(&mut with_config(mode, &file), setup.dir.path(), PATIENCE);
            let line = finished.error_line();
            if finished.code != Some(64) || !names_key(line, key) {
                failures.push(format!(
                    "{mode} with {text:?}: exit {:?}, expected 64 naming {key}; last line: {line}",
                    finished.code
                ));
            }
            if setup.fake.count(Route::Any) != 0 {
                failures.push(format!("{mode} with {text:?}: made requests"));
                setup.fake.clear_requests();
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_file_with_sources_refuses_the_single_source_flags() {
    let setup = Setup::with_world(world(&[("dev", "/", "A", "a")]));
    let file = config(
        &setup,
        &format!(
            "out-dir: {}\nsources:\n- project-id: {}\n  environment: dev\n",
            setup.path("out").display(),
            sample::PROJECT_ID
        ),
    );
    let finished = run(with_config("init", &file).args(["--env", "prod"]));
    finished.assert_code(64);
    assert!(
        finished.error_line().contains("--env"),
        "{}",
        finished.stderr
    );
    let finished = run(with_config("init", &file).env("INFISICAL_SECRET_PATH", "/app"));
    finished.assert_code(64);
    assert!(
        finished.error_line().contains("--path"),
        "{}",
        finished.stderr
    );
    assert_eq!(setup.fake.count(Route::Any), 0);
}

// ---------------------------------------------------------------------------------------------
// Flags over the file.

#[test]
fn flags_and_environment_variables_override_the_file() {
    let setup = Setup::with_world(world(&[
        ("dev", "/", "WHERE", "dev"),
        ("prod", "/", "WHERE", "prod"),
    ]));
    let in_file = setup.path("from-file");
    let by_flag = setup.path("from-flag");
    let file = config(
        &setup,
        &format!(
            "project-id: {}\nenv: dev\nout-dir: {}\nfile-mode: \"0400\"\n",
            sample::PROJECT_ID,
            in_file.display()
        ),
    );

    // The file alone.
    run(&mut with_config("init", &file)).assert_code(0);
    assert_eq!(contents(&in_file), pairs(&[("WHERE", "dev")]));
    std::fs::remove_dir_all(&in_file).unwrap();

    // A flag, an environment variable and the file, each for a different option.
    run(with_config("init", &file)
        .args(["--out-dir", path_str(&by_flag)])
        .env("INFISICAL_ENVIRONMENT", "prod"))
    .assert_code(0);
    assert!(!in_file.exists(), "the file's out-dir was overridden");
    assert_eq!(contents(&by_flag), pairs(&[("WHERE", "prod")]));
    let mode = std::fs::metadata(by_flag.join("WHERE"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o7777,
        0o400,
        "file-mode from the file still applies"
    );

    // The flag beats the environment variable, which beats the file.
    std::fs::remove_dir_all(&by_flag).unwrap();
    run(with_config("init", &file)
        .args(["--env", "dev", "--file-mode", "0440"])
        .env("INFISICAL_ENVIRONMENT", "prod")
        .env("INFISICAL_OUT_DIR", path_str(&by_flag)))
    .assert_code(0);
    assert!(!in_file.exists());
    assert_eq!(contents(&by_flag), pairs(&[("WHERE", "dev")]));
    let mode = std::fs::metadata(by_flag.join("WHERE"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o440);
}

#[test]
fn a_credential_given_two_ways_exits_64_naming_both() {
    let setup = Setup::sample();
    let id_file = setup.file("client-id", sample::UA_CLIENT_ID);
    let secret_file = setup.file("client-secret", sample::UA_CLIENT_SECRET);
    let token_file = setup.file("token", "a-token");
    let base = |extra: &[&str], env: &[(&str, &str)]| {
        let mut command = materializer();
        command
            .args(["check", "--api-url", &setup.fake.url()])
            .args(["--project-id", sample::PROJECT_ID, "--env", "dev"])
            .args(extra)
            .envs(env.iter().copied());
        command
    };
    let cases = [
        (
            base(
                &[
                    "--client-id",
                    "x",
                    "--client-secret-file",
                    path_str(&secret_file),
                ],
                &[(
                    "INFISICAL_UNIVERSAL_AUTH_CLIENT_ID_FILE",
                    path_str(&id_file),
                )],
            ),
            "the client id is given twice, by --client-id and by \
             INFISICAL_UNIVERSAL_AUTH_CLIENT_ID_FILE",
        ),
        (
            base(
                &["--client-id-file", path_str(&id_file)],
                &[
                    (
                        "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET_FILE",
                        path_str(&secret_file),
                    ),
                    ("INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET", "by-value"),
                ],
            ),
            "the client secret is given twice, by INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET_FILE \
             and by INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET",
        ),
        (
            base(
                &[],
                &[
                    ("INFISICAL_TOKEN_FILE", path_str(&token_file)),
                    ("INFISICAL_TOKEN", "a-token"),
                ],
            ),
            "the access token is given twice, by INFISICAL_TOKEN_FILE and by INFISICAL_TOKEN",
        ),
    ];
    for (mut command, expected) in cases {
        let done = run(&mut command);
        done.assert_code(64);
        assert_eq!(
            done.error_line()
                .split_once("ERROR ")
                .map_or("", |(_, line)| line),
            format!("{expected}: give it only one way exit_code=64")
        );
    }
    assert_eq!(setup.fake.count(Route::Any), 0, "nothing was sent");
}

#[test]
fn a_credential_given_by_flag_or_variable_replaces_the_files_other_way() {
    let setup = Setup::sample();
    let id_file = setup.file("client-id", sample::UA_CLIENT_ID);
    // The file's ways are wrong: a client id that does not exist, a secret file that does not.
    let file = setup.file(
        "config.yaml",
        &format!(
            "api-url: {}\nclient-id: not-the-id\nclient-secret-file: /nonexistent/secret\n\
             project-id: {}\nenv: dev\n",
            setup.fake.url(),
            sample::PROJECT_ID
        ),
    );
    let done = run(with_config("check", &file)
        .args(["--client-id-file", path_str(&id_file)])
        .env(
            "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET",
            sample::UA_CLIENT_SECRET,
        ));
    done.assert_code(0);
    assert!(done.stdout.contains("API_KEY"), "{}", done.stdout);
}

#[test]
fn the_config_file_can_come_from_infisical_materializer_config() {
    let setup = Setup::with_world(world(&[("dev", "/", "A", "a")]));
    let out = setup.path("secrets");
    let file = config(
        &setup,
        &format!(
            "sources:\n- project-id: {}\n  environment: dev\noutputs:\n- dir: {}\n",
            sample::PROJECT_ID,
            out.display()
        ),
    );
    let mut command = materializer();
    command
        .arg("init")
        .env("INFISICAL_MATERIALIZER_CONFIG", path_str(&file));
    run(&mut command).assert_code(0);
    assert_eq!(contents(&out), pairs(&[("A", "a")]));

    // And it is really read: a broken file through the variable fails like --config.
    std::fs::write(&file, "nonsense-key: 1\n").unwrap();
    let finished = run(&mut command);
    finished.assert_code(64);
    assert!(
        finished.error_line().contains("nonsense-key"),
        "{}",
        finished.stderr
    );
}

/// Top-level values checked by the flags' own validation: the message must still say that the
/// value came from the file (the user never typed `--jitter`).
#[test]

fn a_bad_top_level_value_names_the_file() {
    let cases = [
        ("jitter: 7", "jitter"),
        ("owner: nobody", "owner"),
        ("file-mode: \"0999\"", "file-mode"),
        ("request-timeout: 0s", "request-timeout"),
        ("listen: nonsense", "listen"),
        ("key: [\"A=\"]", "key"),
        ("key-matching: \"(\"", "key-matching"),
    ];
    let mut failures = Vec::new();
    for (line, key) in cases {
        let setup = Setup::with_world(world(&[("dev", "/", "A", "a")]));
        let file = config(
            &setup,
            &format!(
                "project-id: {}\nenv: dev\nout-dir: {}\n{line}\n",
                sample::PROJECT_ID,
                setup.path("out").display()
            ),
        );
        let finished = run_bounded(
            &mut with_config("sidecar", &file),
            setup.dir.path(),
            PATIENCE,
        );
        let last = finished.error_line();
        let expected = format!("{}: {key}:", file.display());
        if finished.code != Some(64) || !last.contains(&expected) {
            failures.push(format!(
                "{line:?}: exit {:?}, expected 64 and {expected:?}; last line: {last}",
                finished.code
            ));
        }
        assert_eq!(setup.fake.count(Route::Any), 0, "{line}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The same file serves an init container, a sidecar and `check`: a bad value is refused by
/// every mode, not only by the one that uses it; otherwise `check` passes a file that the
/// sidecar refuses, and a typo is found only when the pod that uses the key starts.
#[test]

fn every_mode_refuses_a_bad_value_it_does_not_use() {
    let sources = format!(
        "sources:\n- project-id: {}\n  environment: dev\n",
        sample::PROJECT_ID
    );
    let single = format!(
        "project-id: {}\nenv: dev\nout-dir: /tmp/x\n",
        sample::PROJECT_ID
    );
    let cases = [
        (
            format!("{single}interval: 5 parsecs\n"),
            "interval",
            &["check", "init"][..],
        ),
        (
            format!("{single}retry-deadline: soon\n"),
            "retry-deadline",
            &["sidecar"][..],
        ),
        (
            format!("{single}file-mode: \"0999\"\n"),
            "file-mode",
            &["check"][..],
        ),
        (
            format!("{sources}outputs:\n- dir: /tmp/x\n  mode: rw-r--r--\n"),
            "outputs[0].mode",
            &["check"][..],
        ),
        (
            format!(
                "{sources}templates:\n- content: \"{{{{ secret('A' }}}}\"\n  destination: /tmp/x\n"
            ),
            "line 1",
            &["check"][..],
        ),
    ];
    let mut failures = Vec::new();
    for (body, needle, modes) in cases {
        let setup = Setup::with_world(world(&[("dev", "/", "A", "a")]));
        let file = config(&setup, &body);
        for mode in modes.iter().copied() {
            // A mode that accepted the file is logged in by now (or running, for a sidecar).
            let finished = run_bounded(&mut with_config(mode, &file), setup.dir.path(), 5);
            if finished.code != Some(64) || !finished.error_line().contains(needle) {
                failures.push(format!(
                    "{mode} with {body:?}: exit {:?} after {} requests, expected 64 naming {needle}",
                    finished.code,
                    setup.fake.count(Route::Any)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Templates.

fn database_world() -> World {
    world(&[
        ("dev", "/", "DB_USER", "app_user"),
        ("dev", "/", "DB_PASSWORD", "s3cr3t"),
        ("dev", "/", "DB_HOST", "db.internal"),
        ("dev", "/", "UNUSED", "u"),
    ])
}

const CONFIG_YAML_J2: &str = r#"# generated from Infisical
database:
  url: "postgres://{{ secret("DB_USER") }}:{{ secret("DB_PASSWORD") }}@{{ secret("DB_HOST") }}:5432/app"
  pool: {{ secret("POOL_SIZE", default="10") }}
  user: {{ secrets.DB_USER }}
"#;

const CONFIG_YAML: &str = r#"# generated from Infisical
database:
  url: "postgres://app_user:s3cr3t@db.internal:5432/app"
  pool: 10
  user: app_user
"#;

/// A dev:/ source, an out-dir and one template file (`templates:` of the file).
fn template_config(setup: &Setup, template: &Path, destination: &Path, out: &Path) -> PathBuf {
    config(
        setup,
        &format!(
            "sources:\n- project-id: {}\n  environment: dev\n\
             outputs:\n- dir: {}\n\
             templates:\n- source: {}\n  destination: {}\n  mode: \"0400\"\n",
            sample::PROJECT_ID,
            out.display(),
            template.display(),
            destination.display()
        ),
    )
}

#[test]
fn a_config_yaml_with_a_url_from_three_secrets_is_rendered_byte_for_byte() {
    let setup = Setup::with_world(database_world());
    let template = setup.file("config.yaml.j2", CONFIG_YAML_J2);
    let destination = setup.path("app-config.yaml");
    let out = setup.path("secrets");
    let file = template_config(&setup, &template, &destination, &out);
    run(&mut with_config("init", &file)).assert_code(0);
    assert_eq!(read(&destination), CONFIG_YAML);
    let mode = std::fs::metadata(&destination)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o400, "the template's own mode");
    assert_eq!(
        keys_in(&out),
        ["DB_HOST", "DB_PASSWORD", "DB_USER", "UNUSED"]
    );

    // The same with --template SRC:DEST and a single source of flags.
    let by_flag = setup.path("by-flag.yaml");
    let mut command = materializer();
    command.args([
        "init",
        "--config",
        path_str(&setup.file("creds.yaml", &head(&setup))),
    ]);
    command.args(["--project-id", sample::PROJECT_ID, "--env", "dev"]);
    command.args([
        "--template",
        &format!("{}:{}", template.display(), by_flag.display()),
    ]);
    run(&mut command).assert_code(0);
    assert_eq!(read(&by_flag), CONFIG_YAML);
}

#[test]
fn a_missing_secret_fails_naming_template_and_key_and_changes_no_output() {
    let setup = Setup::with_world(database_world());
    let template = setup.file("config.yaml.j2", CONFIG_YAML_J2);
    let destination = setup.path("app-config.yaml");
    let out = setup.path("secrets");
    let file = template_config(&setup, &template, &destination, &out);
    run(&mut with_config("init", &file)).assert_code(0);
    let rendered = identity(&destination);
    let data = std::fs::read_link(out.join("..data")).unwrap();

    // DB_HOST is gone and DB_USER changed: the template cannot render, so nothing is written,
    // not even the out-dir, whose new content alone would be fine.
    setup.fake.delete_secret("dev", "/", "DB_HOST");
    setup.fake.set_secret("dev", "/", "DB_USER", "new_user");
    let finished = run(&mut with_config("init", &file));
    finished.assert_code(66);
    let line = finished.error_line();
    assert!(
        line.contains(path_str(&template)),
        "names the template: {line}"
    );
    assert!(line.contains("DB_HOST"), "names the key: {line}");
    assert!(line.contains("line 3"), "names the line: {line}");
    assert!(!finished.stderr.contains("s3cr3t"), "{}", finished.stderr);

    assert_eq!(read(&destination), CONFIG_YAML);
    assert_eq!(identity(&destination), rendered, "same inode and mtime");
    assert_eq!(std::fs::read_link(out.join("..data")).unwrap(), data);
    assert_eq!(read(&out.join("DB_USER")), "app_user");
    assert_eq!(read(&out.join("DB_HOST")), "db.internal");
}

#[test]
fn defaults_and_filters_work_in_a_rendered_file() {
    let cert = "-----BEGIN-----\nabc\n-----END-----";
    let setup = Setup::with_world(world(&[
        ("dev", "/", "CERT", cert),
        ("dev", "/", "ENCODED", "aGVsbG8gd29ybGQ="),
        ("dev", "/", "PASSWORD", "pa\"ss\\word"),
        ("dev", "/", "SET", "given"),
    ]));
    let destination = setup.path("filters.yaml");
    let content = concat!(
        "cert_b64: {{ secret(\"CERT\") | b64encode }}\n",
        "decoded: {{ secret(\"ENCODED\") | b64decode }}\n",
        "password: {{ secret(\"PASSWORD\") | tojson }}\n",
        "set: {{ secret(\"SET\", default=\"fallback\") }}\n",
        "unset: {{ secret(\"UNSET\", default=\"fallback\") }}\n",
        "cert: |\n",
        "  {{ secret(\"CERT\") | indent(2) }}\n",
    );
    let file = config(
        &setup,
        &format!(
            "sources:\n- project-id: {}\n  environment: dev\n\
             templates:\n- content: {}\n  destination: {}\n",
            sample::PROJECT_ID,
            serde_json_string(content),
            destination.display()
        ),
    );
    run(&mut with_config("init", &file)).assert_code(0);
    assert_eq!(
        read(&destination),
        concat!(
            "cert_b64: LS0tLS1CRUdJTi0tLS0tCmFiYwotLS0tLUVORC0tLS0t\n",
            "decoded: hello world\n",
            "password: \"pa\\\"ss\\\\word\"\n",
            "set: given\n",
            "unset: fallback\n",
            "cert: |\n",
            "  -----BEGIN-----\n",
            "  abc\n",
            "  -----END-----\n",
        )
    );
}

/// A YAML double-quoted scalar for `text` (JSON string syntax is valid YAML).
fn serde_json_string(text: &str) -> String {
    let mut quoted = String::from('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[test]
fn a_template_syntax_error_exits_64_naming_file_and_line_before_any_request() {
    let setup = Setup::with_world(database_world());
    let template = setup.file("broken.j2", "a: 1\nb: 2\nc: {{ secret(\"A\" }}\n");
    let destination = setup.path("broken.yaml");
    let out = setup.path("secrets");
    let file = template_config(&setup, &template, &destination, &out);
    for mode in ["init", "sidecar", "exec"] {
        let mut command = with_config(mode, &file);
        if mode == "exec" {
            command.args(["--", "true"]);
        }
        let finished = run_bounded(&mut command, setup.dir.path(), PATIENCE);
        finished.assert_code(64);
        let line = finished.error_line();
        assert!(line.contains(path_str(&template)), "{mode}: {line}");
        assert!(line.contains("line 3"), "{mode}: {line}");
    }
    // The flag form too.
    let mut command = materializer();
    command.args([
        "init",
        "--config",
        path_str(&setup.file("creds.yaml", &head(&setup))),
    ]);
    command.args(["--project-id", sample::PROJECT_ID, "--env", "dev"]);
    command.args([
        "--template",
        &format!("{}:{}", template.display(), destination.display()),
    ]);
    let finished = run(&mut command);
    finished.assert_code(64);
    assert!(
        finished.error_line().contains("line 3"),
        "{}",
        finished.stderr
    );

    assert_eq!(setup.fake.count(Route::Any), 0);
    assert!(!destination.exists() && !out.exists());
}

#[test]
fn an_undefined_value_fails_naming_file_and_line_never_renders_empty() {
    for (text, line) in [
        ("ok: 1\nbad: {{ nope }}\n", "line 2"),
        ("ok: 1\nok: 2\nbad: {{ secrets.NOPE }}\n", "line 3"),
    ] {
        let setup = Setup::with_world(database_world());
        let template = setup.file("undefined.j2", text);
        let destination = setup.path("undefined.yaml");
        let out = setup.path("secrets");
        let file = template_config(&setup, &template, &destination, &out);
        let finished = run(&mut with_config("init", &file));
        assert!(
            matches!(finished.code, Some(65 | 66)),
            "{text:?}: exit {:?}\n{}",
            finished.code,
            finished.stderr
        );
        let last = finished.error_line();
        assert!(last.contains(path_str(&template)), "{text:?}: {last}");
        assert!(last.contains(line), "{text:?}: {last}");
        assert!(!destination.exists(), "{text:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Per-key options of a dir output.

#[test]
fn decode_base64_writes_the_exact_bytes_with_the_outputs_mode_and_owner() {
    let setup = Setup::with_world(world(&[
        ("dev", "/", "KEYSTORE", "AP8BCn+A/gA="),
        ("dev", "/", "PLAIN", "AP8BCn+A/gA="),
    ]));
    let out = setup.path("secrets");
    let env_file = setup.path("app.env");
    let file = config(
        &setup,
        &format!(
            "file-mode: \"0440\"\n\
             sources:\n- project-id: {}\n  environment: dev\n\
             outputs:\n\
             - dir: {}\n  mode: \"0400\"\n  owner: \"1234:5678\"\n  keys:\n    KEYSTORE: {{decode: base64}}\n\
             - file: {}\n  format: dotenv\n",
            sample::PROJECT_ID,
            out.display(),
            env_file.display()
        ),
    );
    let root = nix::unistd::geteuid().is_root();
    if !root {
        // Without root, chown to another user fails; check the bytes only.
        let text = read(&file).replace("  owner: \"1234:5678\"\n", "");
        std::fs::write(&file, text).unwrap();
    }
    run(&mut with_config("init", &file)).assert_code(0);
    assert_eq!(
        std::fs::read(out.join("KEYSTORE")).unwrap(),
        [0x00, 0xFF, 0x01, 0x0A, 0x7F, 0x80, 0xFE, 0x00]
    );
    assert_eq!(
        read(&out.join("PLAIN")),
        "AP8BCn+A/gA=",
        "only the key named"
    );
    for key in ["KEYSTORE", "PLAIN"] {
        let meta = std::fs::metadata(out.join(key)).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o400, "{key}: the output's mode");
        if root {
            assert_eq!((meta.uid(), meta.gid()), (1234, 5678), "{key}");
        }
    }
    // The other output keeps the value as it is, with the top-level file-mode.
    assert!(
        read(&env_file).contains("KEYSTORE=") && read(&env_file).contains("AP8BCn+A/gA="),
        "{}",
        read(&env_file)
    );
    let mode = std::fs::metadata(&env_file).unwrap().mode();
    assert_eq!(mode & 0o7777, 0o440);
}

#[test]
fn decode_base64_of_a_value_that_is_not_base64_fails_without_writing() {
    let setup = Setup::with_world(world(&[("dev", "/", "KEYSTORE", "not base64!")]));
    let out = setup.path("secrets");
    let file = config(
        &setup,
        &format!(
            "sources:\n- project-id: {}\n  environment: dev\n\
             outputs:\n- dir: {}\n  keys: {{KEYSTORE: {{decode: base64}}}}\n",
            sample::PROJECT_ID,
            out.display()
        ),
    );
    let finished = run(&mut with_config("init", &file));
    assert_eq!(finished.code, Some(65), "{}", finished.stderr);
    assert!(
        finished.error_line().contains("KEYSTORE"),
        "{}",
        finished.stderr
    );
    assert!(
        !finished.stderr.contains("not base64!"),
        "{}",
        finished.stderr
    );
    assert!(!out.exists());
}

// ---------------------------------------------------------------------------------------------
// exec.

#[test]
fn exec_gives_the_child_every_source_and_renders_templates_before_it_starts() {
    let setup = Setup::with_world(two_folder_world());
    let destination = setup.path("database-url");
    let file = config(
        &setup,
        &format!(
            "sources:\n\
             - project-id: {id}\n  environment: dev\n  path: /backend\n  keys: {{DB_USER: DATABASE_USER, DB_HOST: DB_HOST}}\n\
             - project-id: {id}\n  environment: prod\n  path: /payments\n  keys-matching: \"^STRIPE_\"\n  prefix: PAYMENTS_\n\
             templates:\n- content: \"postgres://{{{{ secret('DATABASE_USER') }}}}@{{{{ secret('DB_HOST') }}}}/app\\n\"\n  destination: {dest}\n",
            id = sample::PROJECT_ID,
            dest = destination.display(),
        ),
    );
    let finished = run(with_config("exec", &file).args([
        "--",
        "sh",
        "-c",
        &format!("cat {} && echo --- && env", destination.display()),
    ]));
    finished.assert_code(0);
    let (rendered, env) = finished
        .stdout
        .split_once("---\n")
        .unwrap_or_else(|| panic!("the child could not read the file\n{}", finished.stderr));
    assert_eq!(rendered, "postgres://app_user@db.internal/app\n");
    let mut seen: Vec<&str> = env
        .lines()
        .filter(|line| {
            [
                "DATABASE_",
                "DB_",
                "PAYMENTS_",
                "STRIPE_",
                "PAYPAL",
                "UNSELECTED",
                "FEATURE",
            ]
            .iter()
            .any(|p| line.starts_with(p))
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        [
            "DATABASE_USER=app_user",
            "DB_HOST=db.internal",
            "PAYMENTS_STRIPE_KEY=sk_live",
            "PAYMENTS_STRIPE_WEBHOOK=whsec",
        ]
    );
}

#[test]
fn exec_does_not_start_the_child_when_a_template_cannot_render() {
    let setup = Setup::with_world(database_world());
    let destination = setup.path("url");
    let marker = setup.path("child-ran");
    let file = config(
        &setup,
        &format!(
            "sources:\n- project-id: {}\n  environment: dev\n\
             templates:\n- content: \"{{{{ secret('NOPE') }}}}\"\n  destination: {}\n",
            sample::PROJECT_ID,
            destination.display(),
        ),
    );
    let finished = run(with_config("exec", &file).args(["--", "touch", path_str(&marker)]));
    finished.assert_code(66);
    assert!(
        finished.error_line().contains("NOPE"),
        "{}",
        finished.stderr
    );
    assert!(!marker.exists(), "the child never started");
    assert!(!destination.exists());
}

// ---------------------------------------------------------------------------------------------
// Sidecar: renders, notifications, reloads.

/// A sidecar run from a configuration file, with its health endpoints on a free port.
struct Sidecar {
    running: Running,
    port: u16,
}

impl Sidecar {
    /// Starts `sidecar --config FILE --listen …` and waits until it is ready.
    fn start(setup: &Setup, file: &Path) -> Sidecar {
        let port = free_port();
        let mut command = with_config("sidecar", file);
        command.args(["--listen", &format!("127.0.0.1:{port}")]);
        let running = Running::start(&mut command, setup.path(&format!("sidecar-{port}.log")));
        let sidecar = Sidecar { running, port };
        sidecar
            .running
            .wait_for("the sidecar to become ready", || sidecar.ready());
        sidecar
    }

    fn ready(&self) -> bool {
        matches!(http_get(self.port, "/readyz"), Some((200, _)))
    }

    /// The sum of the samples of metric `name` (with `label` only, if given); None while
    /// `/metrics` does not answer.
    fn metric(&self, name: &str, label: Option<(&str, &str)>) -> Option<f64> {
        let (200, body) = http_get(self.port, "/metrics")? else {
            return None;
        };
        let scrape =
            prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).ok()?;
        Some(common::metric_value(&scrape, name, label))
    }

    fn refreshes(&self) -> f64 {
        self.metric("infisical_materializer_refreshes_total", None)
            .expect("/metrics answers")
    }

    fn reloads(&self, result: &str) -> f64 {
        self.metric(
            "infisical_materializer_config_reloads_total",
            Some(("result", result)),
        )
        .unwrap_or(0.0)
    }

    /// Waits until `more` refreshes have finished after this call: whatever one refresh would
    /// do (write, render, notify) has been done by the end of the next one.
    fn wait_refreshes(&self, more: u32, why: &str) {
        let start = self.refreshes();
        self.running
            .wait_for(&format!("{more} more refreshes ({why})"), || {
                self.metric("infisical_materializer_refreshes_total", None)
                    .is_some_and(|now| now >= start + f64::from(more))
            });
    }
}

/// An executable that appends a line to `counter` each time it runs (for --on-change-exec).
fn counter_script(setup: &Setup, counter: &Path) -> PathBuf {
    let script = setup.file(
        "on-change.sh",
        &format!("#!/bin/sh\necho changed >> {}\n", counter.display()),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn count_lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

#[test]
fn a_sidecar_renders_again_only_when_a_used_secret_changes_and_notifies_once_per_refresh() {
    let setup = Setup::with_world(database_world());
    let out = setup.path("secrets");
    let template = setup.file("config.yaml.j2", CONFIG_YAML_J2);
    let destination = setup.path("app-config.yaml");
    let counter = setup.path("notified");
    let script = counter_script(&setup, &counter);
    let file = config(
        &setup,
        &format!(
            "interval: 300ms\njitter: 0\non-change-exec: {script}\n\
             sources:\n- project-id: {id}\n  environment: dev\n\
             outputs:\n- dir: {out}\n\
             templates:\n- source: {template}\n  destination: {dest}\n",
            script = script.display(),
            id = sample::PROJECT_ID,
            out = out.display(),
            template = template.display(),
            dest = destination.display(),
        ),
    );
    let sidecar = Sidecar::start(&setup, &file);
    assert_eq!(read(&destination), CONFIG_YAML);
    let first = identity(&destination);

    // A secret that the template does not use: the out-dir changes, the rendered file is not
    // touched, and the app is told once.
    setup.fake.set_secret("dev", "/", "UNUSED", "changed");
    sidecar
        .running
        .wait_for("the new UNUSED in the out-dir", || {
            std::fs::read_to_string(out.join("UNUSED")).is_ok_and(|v| v == "changed")
        });
    sidecar.wait_refreshes(3, "anything late would be done by now");
    assert_eq!(identity(&destination), first, "same inode and mtime");
    assert_eq!(count_lines(&counter), 1, "one notification for one change");

    // A secret it uses: both outputs change in the same refresh, and the app is told once.
    setup.fake.set_secret("dev", "/", "DB_PASSWORD", "rotated");
    sidecar
        .running
        .wait_for("the rendered file with the new password", || {
            std::fs::read_to_string(&destination).is_ok_and(|t| t.contains(":rotated@"))
        });
    assert_eq!(read(&out.join("DB_PASSWORD")), "rotated");
    sidecar.wait_refreshes(3, "anything late would be done by now");
    assert_eq!(
        read(&destination),
        CONFIG_YAML.replace(":s3cr3t@", ":rotated@")
    );
    assert_ne!(
        identity(&destination).0,
        first.0,
        "written atomically: a new inode"
    );
    assert_eq!(
        count_lines(&counter),
        2,
        "one notification per refresh, not one per file\n{}",
        sidecar.running.logs()
    );
}

#[test]
fn a_sidecar_whose_template_loses_a_secret_keeps_every_output_and_stays_ready() {
    let setup = Setup::with_world(database_world());
    let out = setup.path("secrets");
    let template = setup.file("config.yaml.j2", CONFIG_YAML_J2);
    let destination = setup.path("app-config.yaml");
    let counter = setup.path("notified");
    let script = counter_script(&setup, &counter);
    let file = config(
        &setup,
        &format!(
            "interval: 300ms\njitter: 0\nmax-staleness: 1h\non-change-exec: {script}\n\
             sources:\n- project-id: {id}\n  environment: dev\n\
             outputs:\n- dir: {out}\n\
             templates:\n- source: {template}\n  destination: {dest}\n",
            script = script.display(),
            id = sample::PROJECT_ID,
            out = out.display(),
            template = template.display(),
            dest = destination.display(),
        ),
    );
    let sidecar = Sidecar::start(&setup, &file);
    let rendered = identity(&destination);
    let data = std::fs::read_link(out.join("..data")).unwrap();

    setup.fake.delete_secret("dev", "/", "DB_HOST");
    setup.fake.set_secret("dev", "/", "UNUSED", "changed");
    sidecar
        .running
        .wait_for("the render failure in the log", || {
            sidecar.running.logs().lines().any(|l| {
                l.contains("ERROR") && l.contains("DB_HOST") && l.contains("config.yaml.j2")
            })
        });
    sidecar.wait_refreshes(3, "nothing may be written meanwhile");
    assert_eq!(identity(&destination), rendered);
    assert_eq!(std::fs::read_link(out.join("..data")).unwrap(), data);
    assert_eq!(
        read(&out.join("UNUSED")),
        "u",
        "all or nothing: the out-dir stays too"
    );
    assert_eq!(count_lines(&counter), 0, "nothing changed, nobody told");
    assert!(
        sidecar.ready(),
        "the last good files are still there (and not stale)"
    );

    // Back again: everything is written in one go.
    setup.fake.set_secret("dev", "/", "DB_HOST", "db2.internal");
    sidecar.running.wait_for("the recovered render", || {
        std::fs::read_to_string(&destination).is_ok_and(|t| t.contains("@db2.internal:"))
    });
    assert_eq!(read(&out.join("UNUSED")), "changed");
    sidecar.wait_refreshes(2, "the notification is done");
    assert_eq!(count_lines(&counter), 1);
}

/// A config for [`edited_config`]: one inline template that says `prefix`.
fn user_template(setup: &Setup, destination: &Path, prefix: &str) -> String {
    format!(
        "{}interval: 1h\n\
         sources:\n- project-id: {}\n  environment: dev\n\
         templates:\n- content: \"{prefix} {{{{ secret('DB_USER') }}}}\"\n  destination: {}\n",
        head(setup),
        sample::PROJECT_ID,
        destination.display(),
    )
}

/// Starts a sidecar on a plain config file, changes the file with `edit`, and checks that the
/// change is applied. One change per sidecar: see `a_config_change_during_a_reload_is_not_lost`.
fn edited_config(edit: impl FnOnce(&Setup, &Path, String)) {
    let setup = Setup::with_world(database_world());
    let destination = setup.path("user.txt");
    let file = setup.file("config.yaml", &user_template(&setup, &destination, "one"));
    let sidecar = Sidecar::start(&setup, &file);
    assert_eq!(read(&destination), "one app_user");
    edit(&setup, &file, user_template(&setup, &destination, "two"));
    sidecar.running.wait_for("the changed config applied", || {
        std::fs::read_to_string(&destination).is_ok_and(|t| t == "two app_user")
    });
}

#[test]
fn a_config_file_written_in_place_is_reloaded() {
    // Truncated and written, as `echo >` or `kubectl cp` would.
    edited_config(|_, file, text| std::fs::write(file, text).unwrap());
}

#[test]
fn a_config_file_replaced_by_a_rename_is_reloaded() {
    // Written aside and renamed over, as an editor saves.
    edited_config(|setup, file, text| {
        let tmp = setup.file("config.yaml.swp", &text);
        std::fs::rename(&tmp, file).unwrap();
    });
}

/// A directory laid out like a mounted ConfigMap: `DIR/..VERSION/NAME`, `DIR/..data -> ..VERSION`
/// and `DIR/NAME -> ..data/NAME`. Kubelet updates it by writing a new version directory and
/// renaming a new `..data` symlink over the old one.
struct ConfigMapDir {
    dir: PathBuf,
    version: u32,
}

impl ConfigMapDir {
    fn new(dir: PathBuf, files: &[(&str, &str)]) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        let mut config_map = ConfigMapDir { dir, version: 0 };
        config_map.swap(files);
        for (name, _) in files {
            std::os::unix::fs::symlink(Path::new("..data").join(name), config_map.dir.join(name))
                .unwrap();
        }
        config_map
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Publishes a new version of the files, as kubelet does.
    fn swap(&mut self, files: &[(&str, &str)]) {
        let old = format!(
            "..2026_12_01_00_00_{:02}.{}",
            self.version,
            100 + self.version
        );
        self.version += 1;
        let new = format!(
            "..2026_12_01_00_00_{:02}.{}",
            self.version,
            100 + self.version
        );
        std::fs::create_dir(self.dir.join(&new)).unwrap();
        for (name, content) in files {
            std::fs::write(self.dir.join(&new).join(name), content).unwrap();
        }
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&new, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
        if self.version > 1 {
            std::fs::remove_dir_all(self.dir.join(old)).unwrap();
        }
    }
}

#[test]
fn a_configmap_swap_of_a_template_re_renders_within_two_seconds_without_fetching() {
    let setup = Setup::with_world(database_world());
    let mut templates = ConfigMapDir::new(
        setup.path("templates"),
        &[("db.j2", "v1 {{ secret(\"DB_USER\") }}\n")],
    );
    let destination = setup.path("db.txt");
    // No refresh comes during the test: only the watch can make the new render.
    let file = config(
        &setup,
        &format!(
            "interval: 1h\n\
             sources:\n- project-id: {}\n  environment: dev\n\
             templates:\n- source: {}\n  destination: {}\n",
            sample::PROJECT_ID,
            templates.path("db.j2").display(),
            destination.display(),
        ),
    );
    let sidecar = Sidecar::start(&setup, &file);
    assert_eq!(read(&destination), "v1 app_user\n");
    let lists = setup.fake.count(Route::ListSecrets);

    let swapped = Instant::now();
    templates.swap(&[("db.j2", "v2 {{ secret(\"DB_HOST\") }}\n")]);
    sidecar.running.wait_for("the new template rendered", || {
        std::fs::read_to_string(&destination).is_ok_and(|t| t == "v2 db.internal\n")
    });
    let took = swapped.elapsed();
    assert!(
        took <= Duration::from_secs(2),
        "re-rendered {took:?} after the swap\n{}",
        sidecar.running.logs()
    );
    assert_eq!(
        setup.fake.count(Route::ListSecrets),
        lists,
        "the sources did not change: no fetch"
    );
    assert_eq!(sidecar.reloads("success"), 1.0);

    // And again: the watch survives the swap that removed the directory it first resolved.
    templates.swap(&[("db.j2", "v3 {{ secret(\"DB_PASSWORD\") }}\n")]);
    sidecar.running.wait_for("the third template rendered", || {
        std::fs::read_to_string(&destination).is_ok_and(|t| t == "v3 s3cr3t\n")
    });
}

#[test]
fn a_broken_config_swapped_in_is_refused_and_the_old_one_keeps_running_until_a_good_one() {
    let setup = Setup::with_world(world(&[("dev", "/", "A", "1"), ("prod", "/", "A", "p")]));
    let destination = setup.path("a.txt");
    let good = |prefix: &str, env: &str| {
        format!(
            "{}interval: 300ms\njitter: 0\n\
             sources:\n- project-id: {}\n  environment: {env}\n\
             templates:\n- content: \"{prefix}={{{{ secret('A') }}}}\\n\"\n  destination: {}\n",
            head(&setup),
            sample::PROJECT_ID,
            destination.display(),
        )
    };
    let mut config_map =
        ConfigMapDir::new(setup.path("config"), &[("config.yaml", &good("a", "dev"))]);
    let sidecar = Sidecar::start(&setup, &config_map.path("config.yaml"));
    assert_eq!(read(&destination), "a=1\n");

    // Not YAML.
    config_map.swap(&[("config.yaml", "sources: [\n  - {environment: dev\n")]);
    sidecar
        .running
        .wait_for("a refused reload in /metrics", || {
            sidecar.reloads("failure") >= 1.0
        });
    let logs = sidecar.running.logs();
    let refused = logs
        .lines()
        .find(|line| line.contains("configuration change refused"))
        .unwrap_or_else(|| panic!("no refusal in the log\n{logs}"));
    assert!(refused.contains("config.yaml"), "{refused}");
    assert!(sidecar.ready(), "/readyz stays 200");

    // The old configuration still runs: a new value is rendered with the old template.
    setup.fake.set_secret("dev", "/", "A", "2");
    sidecar
        .running
        .wait_for("a=2 rendered by the old configuration", || {
            std::fs::read_to_string(&destination).is_ok_and(|t| t == "a=2\n")
        });

    // Valid YAML with an unknown key.
    config_map.swap(&[(
        "config.yaml",
        &format!("{}bogus-key: 1\n", good("b", "prod")),
    )]);
    sidecar.running.wait_for("a second refused reload", || {
        sidecar.reloads("failure") >= 2.0
    });
    assert!(
        sidecar
            .running
            .logs()
            .lines()
            .any(|l| l.contains("configuration change refused") && l.contains("bogus-key")),
        "{}",
        sidecar.running.logs()
    );
    sidecar.wait_refreshes(2, "the refused config must not have been applied");
    assert_eq!(read(&destination), "a=2\n");
    assert!(sidecar.ready());
    assert_eq!(sidecar.reloads("success"), 0.0);

    // A good one is applied at once: new template and new source.
    config_map.swap(&[("config.yaml", &good("b", "prod"))]);
    sidecar
        .running
        .wait_for("the good configuration applied", || {
            std::fs::read_to_string(&destination).is_ok_and(|t| t == "b=p\n")
        });
    assert_eq!(sidecar.reloads("success"), 1.0);
    assert!(sidecar.ready());
}

#[test]
fn each_source_keeps_its_own_etag_one_conditional_request_per_source_per_refresh() {
    let setup = Setup::with_world(two_folder_world());
    let file = config(
        &setup,
        &format!(
            "interval: 300ms\njitter: 0\nout-dir: {}\n\
             sources:\n\
             - project-id: {id}\n  environment: dev\n  path: /backend\n\
             - project-id: {id}\n  environment: dev\n  path: /flags\n",
            setup.path("secrets").display(),
            id = sample::PROJECT_ID,
        ),
    );
    let sidecar = Sidecar::start(&setup, &file);
    sidecar.wait_refreshes(3, "a few quiet refreshes");
    setup
        .fake
        .set_secret("dev", "/flags", "FEATURE_A", "changed");
    sidecar.running.wait_for("the changed flag", || {
        std::fs::read_to_string(setup.path("secrets").join("FEATURE_A"))
            .is_ok_and(|v| v == "changed")
    });
    sidecar.wait_refreshes(2, "quiet again");
    drop(sidecar);

    let lists: Vec<_> = setup
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.route == Route::ListSecrets && r.status != 404)
        .collect();
    for path in ["/backend", "/flags"] {
        let of_path: Vec<_> = lists
            .iter()
            .filter(|r| r.query("secretPath") == Some(path))
            .collect();
        assert!(of_path.len() >= 5, "{path}: {} requests", of_path.len());
        assert!(
            of_path[1..]
                .iter()
                .all(|r| r.header("if-none-match").is_some()),
            "{path}: If-None-Match after the first"
        );
        let fetched = of_path.iter().filter(|r| r.status == 200).count();
        let expected = if path == "/flags" { 2 } else { 1 };
        assert_eq!(
            fetched, expected,
            "{path}: only a change of this folder costs a full answer"
        );
    }
    // Both sources are asked in every refresh: the counts differ by at most the refresh that
    // was in flight when the sidecar stopped.
    let count = |path: &str| {
        lists
            .iter()
            .filter(|r| r.query("secretPath") == Some(path))
            .count()
    };
    assert!(count("/backend").abs_diff(count("/flags")) <= 1);
}

#[test]
fn a_rotated_client_secret_is_used_at_once_after_a_refused_login() {
    let setup = Setup::with_world(database_world());
    let mut credentials = ConfigMapDir::new(
        setup.path("credentials"),
        &[("client-secret", sample::UA_CLIENT_SECRET)],
    );
    let file = setup.file(
        "config.yaml",
        &format!(
            "api-url: {}\nclient-id: {}\nclient-secret-file: {}\n\
             interval: 300ms\njitter: 0\nproject-id: {}\nenv: dev\nout-dir: {}\n",
            setup.fake.url(),
            sample::UA_CLIENT_ID,
            credentials.path("client-secret").display(),
            sample::PROJECT_ID,
            setup.path("secrets").display(),
        ),
    );
    let sidecar = Sidecar::start(&setup, &file);
    let refused = || {
        setup
            .fake
            .requests()
            .iter()
            .filter(|r| r.route == Route::UniversalAuthLogin && r.status == 401)
            .count()
    };
    let logins = || {
        setup
            .fake
            .requests()
            .iter()
            .filter(|r| r.route == Route::UniversalAuthLogin && r.status == 200)
            .count()
    };

    // The secret is rotated in Infisical and the token revoked: the next login is refused.
    setup
        .fake
        .set_client_secret(sample::UA_IDENTITY_ID, "rotated-secret");
    setup.fake.revoke_tokens(sample::UA_IDENTITY_ID);
    sidecar
        .running
        .wait_for("a refused login", || refused() >= 1);
    let before = logins();

    // Then the new secret reaches the volume.
    let rotated = Instant::now();
    credentials.swap(&[("client-secret", "rotated-secret")]);
    sidecar
        .running
        .wait_for("a login with the new secret", || logins() > before);
    let took = rotated.elapsed();
    // Without the watch the next attempt comes 30 s after the refusal.
    assert!(
        took < Duration::from_secs(10),
        "logged in {took:?} after the rotation\n{}",
        sidecar.running.logs()
    );
    assert_eq!(refused(), 1, "no second attempt with the old secret");
    sidecar.wait_refreshes(2, "refreshing again");
}

// ---------------------------------------------------------------------------------------------
// The shipped example.

/// `examples/config.yaml` with its machine paths moved into the scratch dir and its API URL
/// pointed at the fake; everything else as shipped.
#[test]
fn the_shipped_example_works_with_its_paths_moved() {
    let backend_id = "0d5f3c2a-8b1e-4f6d-9a7c-2e4b6d8f0a1c";
    // One project that both sources name: one by slug, one by id.
    let world = World::empty()
        .project(backend_id, "backend-a1b2", &["prod"])
        .universal_auth_identity(
            sample::UA_IDENTITY_ID,
            sample::UA_CLIENT_ID,
            sample::UA_CLIENT_SECRET,
            2_592_000,
            2_592_000,
        )
        .secret("prod", "/backend", "DB_USER", "app_user")
        .secret("prod", "/backend", "DB_PASSWORD", "s3cr3t")
        .secret("prod", "/backend", "DB_HOST", "db.internal")
        .secret("prod", "/backend", "KEYSTORE", "AP8BCn+A/gA=")
        .secret("prod", "/backend", "NOT_LISTED", "decoy")
        .tagged_secret(
            "prod",
            "/shared/payments",
            "STRIPE_KEY",
            "sk",
            &["payments"],
        )
        .tagged_secret("prod", "/shared/payments", "STRIPE_UNTAGGED", "x", &[])
        .tagged_secret(
            "prod",
            "/shared/payments",
            "PAYPAL_KEY",
            "pp",
            &["payments"],
        );
    let setup = Setup::with_world(world);
    let root = setup.path("root");
    for dir in [
        "var/run/infisical",
        "etc/templates",
        "run/secrets",
        "run/app",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(
        root.join("var/run/infisical/client-id"),
        sample::UA_CLIENT_ID,
    )
    .unwrap();
    std::fs::write(
        root.join("var/run/infisical/client-secret"),
        sample::UA_CLIENT_SECRET,
    )
    .unwrap();
    std::fs::write(
        root.join("etc/templates/database.yaml.j2"),
        "user: {{ secret(\"DATABASE_USER\") }}\n",
    )
    .unwrap();

    let example = read(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/config.yaml"
    )));
    let mut text = example.replace("https://infisical.example.com", &setup.fake.url());
    for dir in ["/var/run/", "/etc/templates/", "/run/"] {
        text = text.replace(&format!(" {dir}"), &format!(" {}{dir}", root.display()));
    }
    // The scratch dir is not a tmpfs; the example asks for one (rightly, for a pod).
    assert!(text.contains("require-tmpfs: true\n"));
    let mut text = text.replace("require-tmpfs: true\n", "require-tmpfs: false\n");
    let root_user = nix::unistd::geteuid().is_root();
    if !root_user {
        // Only root may give files to uid 1000.
        text = text.replace("owner: \"1000:1000\"\n", "");
        text = text.replace("    owner: \"1000\"\n", "");
    }
    let file = setup.file("example.yaml", &text);

    let finished = run(&mut with_config("check", &file));
    finished.assert_code(0);
    let finished = run(&mut with_config("init", &file));
    finished.assert_code(0);
    let secrets = root.join("run/secrets");
    assert_eq!(
        keys_in(&secrets.join("app")),
        [
            "DATABASE_HOST",
            "DATABASE_PASSWORD",
            "DATABASE_USER",
            "KEYSTORE",
            "PAYMENTS_STRIPE_KEY"
        ]
    );
    assert_eq!(
        std::fs::read(secrets.join("app/KEYSTORE")).unwrap(),
        [0x00, 0xFF, 0x01, 0x0A, 0x7F, 0x80, 0xFE, 0x00]
    );
    assert_eq!(read(&secrets.join("database.yaml")), "user: app_user\n");
    assert_eq!(
        read(&secrets.join("database-url")),
        "postgres://app_user:s3cr3t@db.internal:5432/app\n"
    );
    assert!(read(&secrets.join("app.env")).contains("PAYMENTS_STRIPE_KEY="));
    let mode = |name: &str| std::fs::metadata(secrets.join(name)).unwrap().mode() & 0o7777;
    assert_eq!(mode("app/DATABASE_USER"), 0o400);
    assert_eq!(mode("app.env"), 0o440);
    assert_eq!(mode("database.yaml"), 0o440);
    assert_eq!(mode("database-url"), 0o400);
    if root_user {
        let owner = |name: &str| {
            let meta = std::fs::metadata(secrets.join(name)).unwrap();
            (meta.uid(), meta.gid())
        };
        assert_eq!(owner("app/DATABASE_USER"), (1000, 1000));
        assert_eq!(owner("database.yaml"), (1000, 1000));
        assert_eq!(owner("database-url").0, 1000);
    }
}

/// The example as shipped parses: its only complaint on this machine is a file it points at
/// that is not here (the template, read when the file is checked, or a credential file).
#[test]
fn the_shipped_example_as_is_fails_only_on_the_files_it_points_at() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/config.yaml");
    let finished = run(materializer().args(["check", "--config", example]));
    finished.assert_code(64);
    let line = finished.error_line();
    assert!(
        line.contains("/etc/templates/database.yaml.j2")
            || line.contains("/var/run/infisical/client-id"),
        "{}",
        finished.stderr
    );
}

/// A change that lands while the previous one is being applied (here: while --on-change-exec of
/// the reload's render runs) must still be applied.
#[test]

fn a_config_change_during_a_reload_is_not_lost() {
    let setup = Setup::with_world(database_world());
    let destination = setup.path("user.txt");
    let slow = setup.file("slow-on-change.sh", "#!/bin/sh\nsleep 2\n");
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
    let body = |prefix: &str| {
        format!(
            "{}interval: 1h\non-change-exec: {}\n\
             sources:\n- project-id: {}\n  environment: dev\n\
             templates:\n- content: \"{prefix} {{{{ secret('DB_USER') }}}}\"\n  destination: {}\n",
            head(&setup),
            slow.display(),
            sample::PROJECT_ID,
            destination.display(),
        )
    };
    let file = setup.file("config.yaml", &body("one"));
    let sidecar = Sidecar::start(&setup, &file);
    assert_eq!(read(&destination), "one app_user");

    std::fs::write(&file, body("two")).unwrap();
    sidecar.running.wait_for("the first change applied", || {
        std::fs::read_to_string(&destination).is_ok_and(|t| t == "two app_user")
    });
    // The app is being told about "two" (for 2 s) when the next change comes.
    std::fs::write(&file, body("three")).unwrap();
    sidecar.running.wait_for("the second change applied", || {
        std::fs::read_to_string(&destination).is_ok_and(|t| t == "three app_user")
    });
}

/// `--template SRC:DEST` in a ConfigMap: a sidecar renders the new template, with or without a
/// configuration file.
#[test]

fn a_configmap_swap_of_a_template_given_by_flag_re_renders() {
    let mut failures = Vec::new();
    for with_file in [true, false] {
        let setup = Setup::with_world(database_world());
        let mut templates = ConfigMapDir::new(
            setup.path("templates"),
            &[("db.j2", "v1 {{ secret(\"DB_USER\") }}\n")],
        );
        let destination = setup.path("db.txt");
        let file = config(
            &setup,
            &format!("project-id: {}\nenv: dev\n", sample::PROJECT_ID),
        );
        let port = free_port();
        let mut command = if with_file {
            with_config("sidecar", &file)
        } else {
            setup.universal_auth("sidecar")
        };
        // No refresh comes during the test: only a watch can make the new render.
        command.args(["--interval", "1h", "--listen", &format!("127.0.0.1:{port}")]);
        command.args([
            "--template",
            &format!(
                "{}:{}",
                templates.path("db.j2").display(),
                destination.display()
            ),
        ]);
        let running = Running::start(&mut command, setup.path("sidecar.log"));
        let sidecar = Sidecar { running, port };
        sidecar
            .running
            .wait_for("the sidecar to become ready", || sidecar.ready());
        assert_eq!(read(&destination), "v1 app_user\n");

        templates.swap(&[("db.j2", "v2 {{ secret(\"DB_HOST\") }}\n")]);
        // The same swap of a `templates:` entry is rendered in well under a second.
        let rendered = eventually(10, || {
            std::fs::read_to_string(&destination).is_ok_and(|t| t == "v2 db.internal\n")
        });
        if !rendered {
            failures.push(format!(
                "with a config file: {with_file}: the swapped template was not rendered; {:?}",
                read(&destination)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
