//! How the tool copes with what newer Infisical releases answer differently from the recorded
//! 2024 one: values hidden by a permission (403, or masked), a missing `secretValue`, an unknown
//! folder (empty list, or 404 `SecretPathNotFound`), and a token past its number of uses.

mod common;

use common::{path_str, run, world_with, Running, Setup};
use fake_infisical::{sample, Fault, Release, Route};

const VALUE: &str = "release-test-value-4e1d";

fn setup(release: Release, list_only: bool) -> Setup {
    let mut world = world_with(&[("API_KEY", VALUE), ("DB_URL", "postgres://x")]).release(release);
    if list_only {
        world = world.list_only(sample::UA_IDENTITY_ID);
    }
    Setup::with_world(world)
}

#[test]
fn values_refused_by_a_permission_are_a_permanent_error_naming_the_permission() {
    // 2024/2025 Node servers refuse the whole list with 403.
    let refused = setup(Release::R2025, true);
    let done = run(refused
        .universal_auth("check")
        .args(["--retry-deadline", "60s"]));
    done.assert_code(77);
    let line = done.error_line();
    assert!(line.contains("may list but not read"), "{line}");
    assert!(line.contains("permission to read secret values"), "{line}");
    assert_eq!(refused.fake.count(Route::ListSecrets), 1, "not retried");

    // 2026 answers with masked values; the tool names the keys and writes nothing.
    let masked = setup(Release::R2026, true);
    let out = masked.path("out");
    let done = run(masked.universal_auth("init").args([
        "--out-dir",
        path_str(&out),
        "--retry-deadline",
        "60s",
    ]));
    done.assert_code(77);
    let line = done.error_line();
    assert!(
        line.contains("API_KEY") && line.contains("DB_URL"),
        "{line}"
    );
    assert!(line.contains("permission to read secret values"), "{line}");
    assert!(
        !out.join("API_KEY").exists(),
        "a mask was written as a value"
    );
    assert!(!done.stderr.contains("<hidden-by-infisical>"));
}

#[test]
fn a_missing_secret_value_is_treated_as_hidden_not_as_an_outage() {
    let setup = setup(Release::R2024, false);
    let body = r#"{"secrets":[{"id":"1","_id":"1","workspace":"p","environment":"dev","version":1,"type":"shared","secretKey":"API_KEY","secretComment":""}],"imports":[]}"#;
    setup
        .fake
        .inject(Fault::body(Route::ListSecrets, 200, body).times(10));
    let done = run(setup
        .universal_auth("check")
        .args(["--retry-deadline", "60s"]));
    done.assert_code(77);
    assert!(
        done.error_line().contains("API_KEY"),
        "{}",
        done.error_line()
    );
    assert_eq!(setup.fake.count(Route::ListSecrets), 1, "not retried");
}

#[test]
fn an_unknown_folder_is_reported_on_every_release() {
    for (release, expected) in [
        (Release::R2024, "no secrets found"),
        (Release::R2025, "no secrets found"),
        (Release::R2026, "folder \"/missing\" does not exist"),
    ] {
        let setup = setup(release, false);
        let done = run(setup.universal_auth("check").args(["--path", "/missing"]));
        done.assert_code(66);
        assert!(
            done.error_line().contains(expected),
            "{release:?}: {}",
            done.error_line()
        );
    }
}

#[test]
fn a_token_past_its_number_of_uses_is_replaced_by_a_new_login() {
    for release in [Release::R2024, Release::R2026] {
        let setup = Setup::with_world(
            world_with(&[("API_KEY", VALUE)])
                .release(release)
                .token_use_limit(sample::UA_IDENTITY_ID, 2),
        );
        let out = setup.path("out");
        let running = Running::start(
            setup.universal_auth("sidecar").args([
                "--out-dir",
                path_str(&out),
                "--interval",
                "100ms",
                "--jitter",
                "0",
            ]),
            setup.path("sidecar.log"),
        );
        running.wait_for("three logins (each token allows two calls)", || {
            setup.fake.logins() >= 3
        });
        assert_eq!(
            std::fs::read_to_string(out.join("API_KEY")).expect("written"),
            VALUE,
            "{release:?}"
        );
        assert!(
            !running.logs().contains("retrying in 30s"),
            "{release:?}: a used-up token is not a refused login:\n{}",
            running.logs()
        );
    }
}
