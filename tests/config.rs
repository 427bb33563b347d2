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
    let mut world = World::empty()
        .project(
            sample::PROJECT_ID,
            sample::PROJECT_SLUG,
            &["dev", "staging", "prod"],
        )
        .universal_auth_identity(
            sample::UA_IDENTITY_ID,
            sample::UA_CLIENT_ID,
            sample::UA_CLIENT_SECRET,
            2_592_000,
            2_592_000,
        );
    for (env, path, key, value) in secrets {
        world = world.secret(env, path, key, value);
    }
    world
}

/// The top of every configuration file: the server and the credentials (the client secret in a
/// file, as the file holds only paths of secrets).
fn head(setup: &Setup) -> String {
    let secret = setup.file("client-secret", &format!("{}\n", sample::UA_CLIENT_SECRET));
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

fn assert_mentions(finished: &Finished, needles: &[&str]) {
    for needle in needles {
        assert!(
            finished.stderr.contains(needle),
            "stderr does not mention {needle:?}\n--- stderr\n{}",
            finished.stderr
        );
    }
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
        ("prod", "/payments", "MY_STRIPE_KEY", "decoy: the pattern is anchored"),
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
             \x20 prefix: PAYMENTS_\n",
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
        ])
    );
    // One pass: one list request per source.
    assert_eq!(setup.fake.count(Route::ListSecrets), 3);
}

/// Two sources that both give `SHARED` (dev:/ then prod:/), and a key only each has.
fn conflicting(setup: &Setup, out: &Path, on_conflict: &str) -> PathBuf {
    config(
        &setup,
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
        (
            format!("{sources}on-conflict: maybe\n"),
            "on-conflict",
            ALL,
        ),
        ("interval: 5 parsecs\n".into(), "interval", &["sidecar"]),
        ("out-file: /tmp/x.env\nformat: toml\n".into(), "format", WRITERS),
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
    assert!(finished.error_line().contains("--env"), "{}", finished.stderr);
    let finished = run(with_config("init", &file).env("INFISICAL_SECRET_PATH", "/app"));
    finished.assert_code(64);
    assert!(finished.error_line().contains("--path"), "{}", finished.stderr);
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
    assert_eq!(mode & 0o7777, 0o400, "file-mode from the file still applies");

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
    assert!(finished.error_line().contains("nonsense-key"), "{}", finished.stderr);
}

/// Top-level values checked by the flags' own validation: the message must still say that the
/// value came from the file (the user never typed `--jitter`).
#[test]
#[ignore = "defect: a bad top-level value from --config is reported as the flag (`--jitter \"7\": …`) without naming the file"]
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
        let finished = run_bounded(&mut with_config("sidecar", &file), setup.dir.path(), PATIENCE);
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
/// every mode, not only by the one that uses it, or `check` passes a file the sidecar refuses.
#[test]
#[ignore = "defect: init and check ignore a bad `interval`, the sidecar a bad `retry-deadline`, and go on to log in"]
fn every_mode_refuses_a_bad_value_it_does_not_use() {
    let cases = [
        ("interval: 5 parsecs", "interval", &["check", "init"][..]),
        ("retry-deadline: soon", "retry-deadline", &["sidecar"][..]),
    ];
    let mut failures = Vec::new();
    for (line, key, modes) in cases {
        let setup = Setup::with_world(world(&[("dev", "/", "A", "a")]));
        let file = config(
            &setup,
            &format!(
                "project-id: {}\nenv: dev\nout-dir: {}\n{line}\n",
                sample::PROJECT_ID,
                setup.path("out").display()
            ),
        );
        for mode in modes.iter().copied() {
            // A mode that accepted the file would be logged in by now (or running, for a sidecar).
            let finished = run_bounded(&mut with_config(mode, &file), setup.dir.path(), 5);
            if finished.code != Some(64) || !names_key(finished.error_line(), key) {
                failures.push(format!(
                    "{mode} with {line:?}: exit {:?} after {} requests, expected 64 naming {key}",
                    finished.code,
                    setup.fake.count(Route::Any)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
