//! `check` end to end against the fake Infisical: each auth method, and each bad input with its
//! exit code and one-line advice.

mod common;

use std::time::Duration;

use common::{materializer, path_str, run, Setup};
use fake_infisical::{sample, FakeInfisical, Fault, Route, World};

/// Every value the sample world serves, to prove none reaches the logs.
const SAMPLE_VALUES: &[&str] = &[
    "db.internal.example",
    "dev-api-key-123",
    "-----BEGIN TEST-----",
    "postgres://db.internal.example:5432/app",
    "staging-shared-value",
];

#[test]
fn universal_auth_lists_key_names_only() {
    let setup = Setup::sample();
    let done = run(setup.universal_auth("check").args(["--log-level", "trace"]));
    done.assert_code(0);
    let names: Vec<&str> = done.stdout.lines().collect();
    assert_eq!(
        names,
        [
            "API_KEY",
            "DATABASE_URL",
            "DB_HOST",
            "DB_PORT",
            "LOG_LEVEL",
            "MULTILINE_CERT",
            "SHARED_TOKEN"
        ]
    );
    for value in SAMPLE_VALUES.iter().chain([&sample::UA_CLIENT_SECRET]) {
        assert!(!done.stdout.contains(value), "stdout shows {value:?}");
        assert!(
            !done.stderr.contains(value),
            "trace logs show {value:?}:\n{}",
            done.stderr
        );
    }
    assert_eq!(setup.fake.logins(), 1);
}

#[test]
fn kubernetes_auth_reads_the_projected_token_file() {
    let setup = Setup::sample();
    let token = setup.file("sa-token", &format!("{}\n", sample::K8S_VALID_JWT));
    let done = run(materializer().args([
        "check",
        "--api-url",
        &setup.fake.url(),
        "--identity-id",
        sample::K8S_IDENTITY_ID,
        "--service-account-token-file",
        path_str(&token),
        "--project-slug",
        sample::PROJECT_SLUG,
        "--env",
        "dev",
        "--path",
        "/app/db",
    ]));
    done.assert_code(0);
    assert_eq!(
        done.stdout.lines().collect::<Vec<_>>(),
        ["DB_DSN", "DB_PASSWORD", "DB_USER"]
    );
    let login = setup
        .fake
        .requests()
        .into_iter()
        .find(|r| r.route == Route::KubernetesLogin)
        .expect("a kubernetes login");
    assert!(
        login.body.contains(sample::K8S_VALID_JWT),
        "the trimmed token file was sent"
    );
}

#[test]
fn token_auth_uses_the_token_directly_from_env_or_file() {
    let setup = Setup::sample();
    let token = setup.fake.issue_token(sample::TOKEN_IDENTITY_ID);
    let base = [
        "check",
        "--api-url",
        &setup.fake.url(),
        "--project-id",
        sample::PROJECT_ID,
        "--env",
        "dev",
        "--log-level",
        "trace",
    ];
    let from_env = run(materializer().args(base).env("INFISICAL_TOKEN", &token));
    from_env.assert_code(0);
    assert!(from_env.stdout.contains("DB_HOST"));
    assert!(
        !from_env.stderr.contains(&token),
        "the token leaked into the logs"
    );

    let file = setup.file("token", &token);
    let from_file = run(materializer()
        .args(base)
        .args(["--token-file", path_str(&file)]));
    from_file.assert_code(0);
    assert_eq!(setup.fake.logins(), 0, "token auth never logs in");
}

#[test]
fn options_come_from_the_environment_and_flags_win() {
    let setup = Setup::sample();
    let secret = setup.file("secret", sample::UA_CLIENT_SECRET);
    let done = run(materializer()
        .arg("check")
        .args(["--env", "prod"])
        .env("INFISICAL_API_URL", format!("{}/api/", setup.fake.url()))
        .env("INFISICAL_UNIVERSAL_AUTH_CLIENT_ID", sample::UA_CLIENT_ID)
        .env("INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET_FILE", &secret)
        .env("INFISICAL_PROJECT_ID", sample::PROJECT_ID)
        .env("INFISICAL_ENVIRONMENT", "dev"));
    done.assert_code(0);
    assert_eq!(
        done.stdout.lines().collect::<Vec<_>>(),
        ["API_KEY", "DB_HOST"],
        "--env prod beats INFISICAL_ENVIRONMENT=dev"
    );
}

#[test]
fn wrong_client_secret_is_refused_with_advice() {
    let setup = Setup::sample();
    let wrong = setup.file("wrong", "0000000000");
    let done =
        run(&mut setup.universal_auth_with("check", &[("--client-secret-file", path_str(&wrong))]));
    done.assert_code(77);
    let line = done.error_line();
    assert!(
        line.contains("Invalid credentials") && line.contains("client secret"),
        "{line}"
    );
    assert_eq!(
        setup.fake.count(Route::UniversalAuthLogin),
        1,
        "a refused login is not retried"
    );
}

#[test]
fn unknown_client_id_is_an_auth_failure() {
    let setup = Setup::sample();
    let done = run(&mut setup.universal_auth_with(
        "check",
        &[("--client-id", "00000000-0000-0000-0000-000000000000")],
    ));
    done.assert_code(77);
    assert!(
        done.error_line().contains("client id"),
        "{}",
        done.error_line()
    );
}

#[test]
fn wrong_project_slug_explains_slug_versus_name() {
    let setup = Setup::sample();
    let secret = setup.file("secret", sample::UA_CLIENT_SECRET);
    let done = run(materializer().args([
        "check",
        "--api-url",
        &setup.fake.url(),
        "--client-id",
        sample::UA_CLIENT_ID,
        "--client-secret-file",
        path_str(&secret),
        "--project-slug",
        "sidecar-test-typo",
        "--env",
        "dev",
    ]));
    done.assert_code(66);
    let line = done.error_line();
    assert!(
        line.contains("slug") && line.contains("display name"),
        "{line}"
    );
    assert_eq!(
        setup.fake.count(Route::ListSecrets),
        1,
        "an unknown slug is not retried"
    );
}

#[test]
fn a_display_name_given_as_slug_is_refused_before_any_request() {
    let setup = Setup::sample();
    let config = setup.file("config.yaml", "project-slug: Sidecar Test\n");
    let sources = setup.file(
        "sources.yaml",
        "sources:\n  - project-slug: Sidecar Test\n    environment: dev\n",
    );
    /// A name, the arguments, a variable, and how the message names where the value was.
    type Way<'a> = (&'a str, Vec<&'a str>, Option<(&'a str, &'a str)>, &'a str);
    let ways: [Way; 4] = [
        (
            "flag",
            vec!["--project-slug", "Sidecar Test"],
            None,
            "--project-slug \"Sidecar Test\"",
        ),
        (
            "variable",
            vec![],
            Some(("INFISICAL_PROJECT_SLUG", "Sidecar Test")),
            "--project-slug \"Sidecar Test\"",
        ),
        (
            "file",
            vec!["--config", path_str(&config)],
            None,
            "config.yaml: project-slug:",
        ),
        (
            "sources",
            vec!["--config", path_str(&sources)],
            None,
            "sources.yaml: sources[0].project-slug:",
        ),
    ];
    for (way, args, var, names) in ways {
        let secret = setup.file("secret", sample::UA_CLIENT_SECRET);
        let mut command = materializer();
        command.args([
            "check",
            "--api-url",
            &setup.fake.url(),
            "--client-id",
            sample::UA_CLIENT_ID,
            "--client-secret-file",
            path_str(&secret),
        ]);
        if way != "sources" {
            command.args(["--env", "dev"]);
        }
        command.args(args);
        if let Some((name, value)) = var {
            command.env(name, value);
        }
        let done = run(&mut command);
        done.assert_code(64);
        let line = done.error_line();
        assert!(line.contains(names), "{way}: {line}");
        assert!(
            line.contains("looks like the project's display name")
                && line.contains("Project Settings"),
            "{way}: {line}"
        );
    }
    assert_eq!(setup.fake.count(Route::Any), 0, "nothing was sent");
}

#[test]
fn a_slug_the_server_refuses_as_invalid_gets_the_unknown_slug_advice() {
    let setup = Setup::sample();
    setup.fake.set_v4(true);
    setup.fake.inject(Fault::body(
        Route::ListSecrets,
        422,
        r#"{"statusCode":422,"message":[{"code":"custom","message":"Slug field can only contain lowercase letters, numbers, and hyphens","path":["slug"]}],"error":"ValidationFailure"}"#,
    ));
    let done = run(&mut setup.universal_auth_with(
        "check",
        &[("--project-id", ""), ("--project-slug", "sidecar-test")],
    ));
    done.assert_code(66);
    let line = done.error_line();
    assert!(
        line.contains("no project with slug \"sidecar-test\"")
            && line.contains("display name")
            && line.contains("Project Settings"),
        "{line}"
    );
}

#[test]
fn wrong_project_id_is_not_found() {
    let setup = Setup::sample();
    let done = run(&mut setup.universal_auth_with(
        "check",
        &[("--project-id", "00000000-0000-0000-0000-000000000000")],
    ));
    done.assert_code(66);
    assert!(
        done.error_line().contains("Project ID"),
        "{}",
        done.error_line()
    );
}

#[test]
fn wrong_environment_suggests_the_slug() {
    let setup = Setup::sample();
    let done = run(&mut setup.universal_auth_with("check", &[("--env", "production")]));
    done.assert_code(66);
    assert!(
        done.error_line().contains("did you mean --env prod"),
        "{}",
        done.error_line()
    );

    let done = run(&mut setup.universal_auth_with("check", &[("--env", "qa")]));
    done.assert_code(66);
    let line = done.error_line();
    assert!(
        line.contains("environment slug") && line.contains("--allow-empty"),
        "{line}"
    );
}

#[test]
fn wrong_path_is_not_found_unless_empty_is_allowed() {
    let setup = Setup::sample();
    let done = run(setup
        .universal_auth("check")
        .args(["--path", "/does/not/exist"]));
    done.assert_code(66);
    assert!(
        done.error_line().contains("/does/not/exist"),
        "{}",
        done.error_line()
    );

    let allowed =
        run(setup
            .universal_auth("check")
            .args(["--path", "/does/not/exist", "--allow-empty"]));
    allowed.assert_code(0);
    assert_eq!(allowed.stdout, "");
}

#[test]
fn identity_outside_the_project_is_told_to_join_it() {
    let setup = Setup::sample();
    let other = setup.file("other", sample::NO_ACCESS_CLIENT_SECRET);
    let done = run(&mut setup.universal_auth_with(
        "check",
        &[
            ("--client-id", sample::NO_ACCESS_CLIENT_ID),
            ("--client-secret-file", path_str(&other)),
        ],
    ));
    done.assert_code(77);
    assert!(
        done.error_line().contains("not a member"),
        "{}",
        done.error_line()
    );
}

#[test]
fn missing_credential_file_names_the_file() {
    let setup = Setup::sample();
    let missing = setup.path("not-mounted/client-secret");
    let done =
        run(&mut setup
            .universal_auth_with("check", &[("--client-secret-file", path_str(&missing))]));
    done.assert_code(64);
    assert!(
        done.error_line().contains(path_str(&missing)),
        "{}",
        done.error_line()
    );
    assert_eq!(
        setup.fake.requests().len(),
        0,
        "nothing is sent with a broken configuration"
    );
}

#[test]
fn unreachable_server_gives_up_after_the_deadline() {
    let setup = Setup::sample();
    let port = setup.fake.port();
    drop(setup.fake);
    let secret = setup.dir.path().join("s");
    std::fs::write(&secret, "x").unwrap();
    let done = run(materializer().args([
        "check",
        "--api-url",
        &format!("http://127.0.0.1:{port}"),
        "--client-id",
        "id",
        "--client-secret-file",
        path_str(&secret),
        "--project-id",
        "p",
        "--env",
        "dev",
        "--retry-deadline",
        "1s",
    ]));
    done.assert_code(69);
    assert!(
        done.error_line().contains("cannot reach Infisical"),
        "{}",
        done.error_line()
    );
}

#[test]
fn https_to_a_plain_http_port_fails_at_once_saying_so() {
    let setup = Setup::sample();
    let http = setup.fake.url();
    let https = http.replacen("http://", "https://", 1);
    assert_ne!(http, https, "the fake speaks plain HTTP");
    let started = std::time::Instant::now();
    let done = run(&mut setup.universal_auth_with(
        "check",
        &[("--api-url", &https), ("--retry-deadline", "1m")],
    ));
    done.assert_code(69);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "retried: {:?}",
        started.elapsed()
    );
    let line = done.error_line();
    assert!(line.contains("speaks plain HTTP"), "{line}");
    assert!(
        line.contains(&format!("use {http}/api or fix the port")),
        "{line}"
    );
    assert!(!line.contains("certificate"), "{line}");
}

#[test]
fn untrusted_certificate_names_ca_cert() {
    let server = FakeInfisical::start_tls(World::sample(), &["localhost"]);
    let other = FakeInfisical::start_tls(World::empty(), &["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, sample::UA_CLIENT_SECRET).unwrap();
    let wrong_ca = dir.path().join("wrong-ca.pem");
    std::fs::write(&wrong_ca, other.ca_pem().unwrap()).unwrap();
    let right_ca = dir.path().join("ca.pem");
    std::fs::write(&right_ca, server.ca_pem().unwrap()).unwrap();
    let args = |ca: Option<&std::path::Path>| {
        let mut command = materializer();
        command.args([
            "check",
            "--api-url",
            &server.url(),
            "--client-id",
            sample::UA_CLIENT_ID,
            "--client-secret-file",
            path_str(&secret),
            "--project-id",
            sample::PROJECT_ID,
            "--env",
            "dev",
        ]);
        if let Some(ca) = ca {
            command.args(["--ca-cert", path_str(ca)]);
        }
        command
    };
    for ca in [None, Some(wrong_ca.as_path())] {
        let done = run(&mut args(ca));
        done.assert_code(69);
        let line = done.error_line();
        assert!(
            line.contains("certificate") && line.contains("--ca-cert"),
            "{line}"
        );
    }
    run(&mut args(Some(&right_ca))).assert_code(0);
}

#[test]
fn rate_limit_is_waited_out() {
    let setup = Setup::sample();
    setup
        .fake
        .inject(Fault::rate_limited(Route::ListSecrets, Some(1)));
    let done = run(&mut setup.universal_auth("check"));
    done.assert_code(0);
    let lists: Vec<_> = setup
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.route == Route::ListSecrets)
        .collect();
    assert_eq!(lists.len(), 2);
    assert!(
        lists[1].at.duration_since(lists[0].at) >= Duration::from_secs(1),
        "retry-after honoured"
    );
}

#[test]
fn server_errors_are_retried_then_reported() {
    let setup = Setup::sample();
    setup
        .fake
        .inject(Fault::status(Route::ListSecrets, 503).times(usize::MAX));
    let done = run(setup
        .universal_auth("check")
        .args(["--retry-deadline", "2s"]));
    done.assert_code(69);
    assert!(done.error_line().contains("503"), "{}", done.error_line());
    assert!(
        setup.fake.count(Route::ListSecrets) >= 2,
        "transient errors are retried"
    );
    assert_eq!(setup.fake.logins(), 1, "retries reuse the token");
}

#[test]
fn expired_token_leads_to_one_new_login() {
    let setup = Setup::sample();
    setup.fake.inject(Fault::token_expired(Route::ListSecrets));
    let done = run(&mut setup.universal_auth("check"));
    done.assert_code(0);
    assert_eq!(setup.fake.logins(), 2);
}

/// Runs `check` by project slug and returns the paths the fake received.
fn paths_of_a_check_by_slug(world: World) -> Vec<String> {
    let setup = Setup::with_world(world);
    let secret = setup.file("secret", sample::UA_CLIENT_SECRET);
    let done = run(materializer().args([
        "check",
        "--api-url",
        &setup.fake.url(),
        "--client-id",
        sample::UA_CLIENT_ID,
        "--client-secret-file",
        path_str(&secret),
        "--project-slug",
        sample::PROJECT_SLUG,
        "--env",
        "dev",
    ]));
    done.assert_code(0);
    setup.fake.requests().into_iter().map(|r| r.path).collect()
}

#[test]
fn the_first_fetch_is_one_login_and_one_list_on_every_server() {
    // The recorded 2024 server (no v4) and a newer one (v4 too): v3 takes the slug directly.
    for world in [World::sample(), World::sample().v4(true)] {
        assert_eq!(
            paths_of_a_check_by_slug(world),
            ["/api/v1/auth/universal-auth/login", "/api/v3/secrets/raw"]
        );
    }
    // A server without v3: one route-not-found, then v4 (with the slug looked up once).
    let paths = paths_of_a_check_by_slug(World::sample().v4(true).v3(false));
    assert_eq!(
        paths,
        [
            "/api/v1/auth/universal-auth/login",
            "/api/v3/secrets/raw",
            "/api/v1/projects/slug/sidecar-test",
            "/api/v4/secrets"
        ]
    );
}

#[test]
fn ambiguous_credentials_ask_for_auth_method() {
    let setup = Setup::sample();
    let done = run(setup.universal_auth("check").env("INFISICAL_TOKEN", "t"));
    done.assert_code(64);
    assert!(
        done.error_line().contains("--auth-method"),
        "{}",
        done.error_line()
    );
}

#[test]
fn bad_usage_exits_64_with_clap_error_and_usage() {
    // clap's whole error is printed: the first line says what is wrong, the usage how to fix it.
    let done = run(materializer().args(["check", "--no-such-flag"]));
    done.assert_code(64);
    assert!(
        done.stderr
            .starts_with("error: unexpected argument '--no-such-flag' found"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("Usage: infisical-materializer check"),
        "{}",
        done.stderr
    );
}
