//! Command-line misuse, run as a user would: each mistake exits 64 and the message names the
//! fix; help and version succeed; variables and `--listen` take the forms people write.

mod common;

use common::{
    eventually, free_port, http_get, materializer, path_str, run, world_with, Finished, Running,
    Setup,
};

/// Runs the binary with these arguments and a clean environment.
fn cli(args: &[&str]) -> Finished {
    run(materializer().args(args))
}

/// Asserts exit 64 and that stderr holds every one of `needles`.
fn assert_usage_error(done: &Finished, needles: &[&str]) {
    done.assert_code(64);
    for needle in needles {
        assert!(
            done.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            done.stderr
        );
    }
}

#[test]
fn exec_without_a_command_says_to_put_it_after_double_dash() {
    let done = cli(&["exec", "--env", "dev", "--project-id", "p"]);
    assert_usage_error(&done, &["required", "-- COMMAND"]);
}

#[test]
fn install_without_to_names_to() {
    let done = cli(&["install"]);
    assert_usage_error(&done, &["required", "--to <PATH>"]);
}

#[test]
fn a_wrong_auth_method_lists_the_possible_values() {
    let done = cli(&["check", "--auth-method", "universal"]);
    assert_usage_error(
        &done,
        &[
            "'universal'",
            "possible values: universal-auth, kubernetes, token",
        ],
    );
}

#[test]
fn a_misspelt_flag_gets_the_similar_one() {
    let done = cli(&["init", "--out-dri", "/tmp/x"]);
    assert_usage_error(&done, &["--out-dri", "similar argument", "--out-dir"]);
}

#[test]
fn no_arguments_shows_the_usage_and_asks_for_a_subcommand() {
    let done = cli(&[]);
    assert_usage_error(
        &done,
        &["subcommand", "Usage: infisical-materializer", "init"],
    );
}

#[test]
fn a_flag_of_another_mode_is_refused() {
    // The sidecar retries forever, so --retry-deadline is not one of its flags.
    let done = cli(&["sidecar", "--retry-deadline", "1m"]);
    assert_usage_error(&done, &["unexpected argument '--retry-deadline'"]);
}

#[test]
fn every_mode_has_help_with_exit_codes_and_an_example() {
    for mode in ["init", "sidecar", "exec", "check", "install"] {
        for flag in ["--help", "-h"] {
            let done = cli(&[mode, flag]);
            done.assert_code(0);
            for needle in [
                "Required: ",
                "Exit codes:",
                "  64 ",
                "Example:",
                &format!("infisical-materializer {mode} "),
            ] {
                assert!(
                    done.stdout.contains(needle),
                    "{mode} {flag} lacks {needle:?}:\n{}",
                    done.stdout
                );
            }
        }
    }
    let done = cli(&["--version"]);
    done.assert_code(0);
    assert!(done.stdout.starts_with("infisical-materializer "));
}

#[test]
fn a_boolean_variable_takes_1_and_names_itself_when_wrong() {
    let setup =
        Setup::with_world(world_with(&[("TOP", "t")]).secret("dev", "/nested", "DEEP", "d"));
    let keys = |recursive: Option<&str>| {
        let mut command = setup.universal_auth("check");
        if let Some(value) = recursive {
            command.env("INFISICAL_RECURSIVE", value);
        }
        let done = run(&mut command);
        done.assert_code(0);
        done.stdout.lines().map(str::to_owned).collect::<Vec<_>>()
    };
    assert_eq!(keys(None), ["TOP"]);
    assert_eq!(keys(Some("1")), ["DEEP", "TOP"]);
    assert_eq!(keys(Some("Yes")), ["DEEP", "TOP"]);
    assert_eq!(keys(Some("off")), ["TOP"]);

    let done = run(setup
        .universal_auth("check")
        .env("INFISICAL_RECURSIVE", "maybe"));
    assert_usage_error(
        &done,
        &["INFISICAL_RECURSIVE=\"maybe\": expected true or false"],
    );
}

#[test]
fn listen_takes_a_bare_port_or_colon_port() {
    let setup = Setup::sample();
    for form in ["{port}", ":{port}"] {
        let port = free_port();
        let listen = form.replace("{port}", &port.to_string());
        let out = setup.path(&format!("out-{port}"));
        let mut command = setup.universal_auth("sidecar");
        command.args(["--out-dir", path_str(&out), "--listen", &listen]);
        let mut sidecar = Running::start(&mut command, setup.path(&format!("sidecar-{port}.log")));
        let healthy = eventually(20, || matches!(http_get(port, "/healthz"), Some((200, _))));
        assert!(
            healthy,
            "--listen {listen}: no /healthz on port {port}:\n{}",
            sidecar.logs()
        );
        assert!(sidecar.is_running());
        assert!(
            sidecar.logs().contains(&format!("0.0.0.0:{port}")),
            "--listen {listen} means every interface:\n{}",
            sidecar.logs()
        );
    }
}

#[test]
fn a_bad_listen_address_fails_before_login_with_an_example() {
    let setup = Setup::sample();
    let out = setup.path("out");
    let done = run(setup.universal_auth("sidecar").args([
        "--out-dir",
        path_str(&out),
        "--listen",
        "port-9464",
    ]));
    done.assert_code(64);
    assert!(
        done.error_line().contains("--listen \"port-9464\"")
            && done.error_line().contains("e.g. 9464"),
        "{}",
        done.stderr
    );
    assert_eq!(
        setup.fake.count(fake_infisical::Route::UniversalAuthLogin),
        0
    );
}
