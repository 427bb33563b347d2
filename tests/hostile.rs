//! Attacks on the tool from its surroundings: symlinks planted in the target to redirect a
//! write, and the logs of every mode and auth method read for any secret.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::{materializer, path_str, run, snapshot, world_with, Running, Setup};
use fake_infisical::{sample, FakeInfisical, Fault, Route, World};

const VALUE: &str = "hostile-test-value-5a9f";

fn setup() -> Setup {
    Setup::with_world(world_with(&[("API_KEY", VALUE)]))
}

/// A directory outside the target holding one file, and its snapshot.
fn victim(setup: &Setup, name: &str) -> (std::path::PathBuf, Vec<String>) {
    let dir = setup.path(name);
    std::fs::create_dir_all(&dir).expect("victim dir");
    std::fs::write(dir.join("API_KEY"), "must-not-change").expect("victim file");
    let before = snapshot(&dir);
    (dir, before)
}

fn init_into(setup: &Setup, out: &Path) -> common::Finished {
    run(setup
        .universal_auth("init")
        .args(["--out-dir", path_str(out)]))
}

#[track_caller]
fn assert_materialized(out: &Path) {
    assert_eq!(
        std::fs::read_to_string(out.join("API_KEY")).expect("API_KEY readable"),
        VALUE
    );
    let data = std::fs::read_link(out.join("..data")).expect("..data is a link");
    assert!(
        data.is_relative() && !data.to_string_lossy().contains('/'),
        "..data points inside the target: {}",
        data.display()
    );
}

#[test]
fn symlinks_planted_in_the_target_cannot_redirect_a_write() {
    let setup = setup();
    for planted in ["..data", "..data_tmp", "..link_tmp", "API_KEY"] {
        let out = setup.path(&format!("out-{}", planted.replace('.', "d")));
        std::fs::create_dir(&out).expect("out");
        let (dir, before) = victim(&setup, &format!("victim-{}", planted.replace('.', "d")));
        let target = if planted == "API_KEY" {
            dir.join("API_KEY")
        } else {
            dir.clone()
        };
        symlink(&target, out.join(planted)).expect("plant");
        let done = init_into(&setup, &out);
        done.assert_code(0);
        assert_eq!(
            snapshot(&dir),
            before,
            "{planted}: a write escaped the target"
        );
        assert_materialized(&out);
    }

    // A planted `..data` whose target is named like a version directory: the tool must not
    // treat (and later delete) a directory outside the target as its own old version.
    let out = setup.path("out-versioned");
    std::fs::create_dir(&out).expect("out");
    let outside = setup.path("elsewhere");
    let (dir, before) = victim(&setup, "elsewhere/..2020_01_01_00_00_00.000000001");
    assert!(dir.starts_with(&outside));
    symlink(&dir, out.join("..data")).expect("plant");
    init_into(&setup, &out).assert_code(0);
    setup.fake.set_secret("dev", "/", "API_KEY", "second");
    init_into(&setup, &out).assert_code(0);
    assert_eq!(
        snapshot(&dir),
        before,
        "an outside directory was removed or changed"
    );

    // The single-file output: a link at the final name is replaced, not followed.
    let out = setup.path("out-file");
    std::fs::create_dir(&out).expect("out");
    let (dir, before) = victim(&setup, "victim-file");
    symlink(dir.join("API_KEY"), out.join("app.env")).expect("plant");
    let done = run(setup
        .universal_auth("init")
        .args(["--out-file", path_str(&out.join("app.env"))]));
    done.assert_code(0);
    assert_eq!(
        snapshot(&dir),
        before,
        "the link at the final name was followed"
    );
    let meta = std::fs::symlink_metadata(out.join("app.env")).expect("app.env");
    assert!(meta.file_type().is_file(), "app.env is now a regular file");
}

/// Everything secret in the sample world and its credentials.
fn secrets_of_the_sample() -> Vec<&'static str> {
    vec![
        sample::UA_CLIENT_SECRET,
        sample::K8S_VALID_JWT,
        "dev-api-key-123",
        "db.internal.example",
        "postgres://db.internal.example:5432/app",
    ]
}

#[test]
fn no_mode_and_no_auth_method_logs_a_value_or_a_credential_at_trace_level() {
    let setup = Setup::sample();
    let token = setup.fake.issue_token(sample::TOKEN_IDENTITY_ID);
    let token_file = setup.file("token", &token);
    let sa_token = setup.file("sa-token", sample::K8S_VALID_JWT);
    let secret_file = setup.file("client-secret", sample::UA_CLIENT_SECRET);
    let url = setup.fake.url();
    let auths: Vec<(&str, Vec<String>)> = vec![
        (
            "universal-auth",
            vec![
                "--client-id".into(),
                sample::UA_CLIENT_ID.into(),
                "--client-secret-file".into(),
                path_str(&secret_file).into(),
            ],
        ),
        (
            "kubernetes",
            vec![
                "--identity-id".into(),
                sample::K8S_IDENTITY_ID.into(),
                "--service-account-token-file".into(),
                path_str(&sa_token).into(),
            ],
        ),
        (
            "token",
            vec!["--token-file".into(), path_str(&token_file).into()],
        ),
    ];
    let mut secrets = secrets_of_the_sample();
    secrets.push(&token);
    for (method, flags) in &auths {
        let out = setup.path(&format!("out-{method}"));
        let base = |mode: &str| {
            let mut command = materializer();
            command
                .arg(mode)
                .args(["--api-url", &url, "--auth-method", method])
                .args(flags)
                .args(["--project-id", sample::PROJECT_ID, "--env", "dev"])
                .args(["--log-level", "trace"]);
            command
        };
        let mut runs = vec![
            ("check", run(&mut base("check"))),
            (
                "init",
                run(base("init").args(["--out-dir", path_str(&out)])),
            ),
            ("exec", run(base("exec").args(["--", "true"]))),
        ];
        let sidecar = Running::start(
            base("sidecar").args([
                "--out-dir",
                path_str(&setup.path(&format!("side-{method}"))),
                "--interval",
                "100ms",
            ]),
            setup.path(&format!("sidecar-{method}.log")),
        );
        let watch = Running::start(
            base("exec").args(["--watch", "--interval", "100ms", "--", "sleep", "30"]),
            setup.path(&format!("watch-{method}.log")),
        );
        sidecar.wait_for("a few refreshes", || {
            sidecar.logs().matches("list_secrets").count() >= 3
        });
        watch.wait_for("a few refreshes", || {
            watch.logs().matches("list_secrets").count() >= 3
        });
        for (mode, done) in &runs {
            assert_eq!(done.code, Some(0), "{method} {mode}: {}", done.stderr);
        }
        runs.clear();
        for (mode, output) in [("sidecar", sidecar.logs()), ("exec --watch", watch.logs())] {
            for secret in &secrets {
                assert!(!output.contains(secret), "{method} {mode} logs a secret");
            }
        }
        for (mode, done) in [
            ("check", run(&mut base("check"))),
            (
                "init",
                run(base("init").args(["--out-dir", path_str(&out)])),
            ),
            ("exec", run(base("exec").args(["--", "true"]))),
        ] {
            for secret in &secrets {
                assert!(
                    !done.stderr.contains(secret) && !done.stdout.contains(secret),
                    "{method} {mode} shows a secret"
                );
            }
        }
    }
}

#[test]
fn errors_never_echo_a_body_that_holds_values() {
    let world: World = world_with(&[("API_KEY", VALUE)]);
    let fake = FakeInfisical::start(world);
    let dir = tempfile::tempdir().expect("dir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, sample::UA_CLIENT_SECRET).expect("write");
    let truncated = format!(r#"{{"secrets":[{{"secretKey":"API_KEY","secretValue":"{VALUE}""#);
    let not_json = format!("<html>{VALUE}</html>");
    let wrong_shape = format!(r#"{{"secrets":{{"API_KEY":"{VALUE}"}}}}"#);
    let error_with_value =
        format!(r#"{{"statusCode":500,"message":"boom","error":"x","details":"{VALUE}"}}"#);
    for body in [truncated, not_json, wrong_shape, error_with_value] {
        fake.clear_faults();
        let status = if body.contains("boom") { 500 } else { 200 };
        fake.inject(Fault::body(Route::ListSecrets, status, &body).times(usize::MAX));
        let done = run(materializer().args([
            "check",
            "--api-url",
            &fake.url(),
            "--client-id",
            sample::UA_CLIENT_ID,
            "--client-secret-file",
            path_str(&secret),
            "--project-id",
            sample::PROJECT_ID,
            "--env",
            "dev",
            "--retry-deadline",
            "1s",
            "--log-level",
            "trace",
        ]));
        assert_eq!(done.code, Some(69), "{}", done.stderr);
        assert!(
            !done.stderr.contains(VALUE),
            "an error echoes the body: {}",
            done.stderr
        );
    }
}
