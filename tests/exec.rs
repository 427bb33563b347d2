//! `exec` end to end: the command's environment, process replacement, exit codes, `--watch`
//! supervision (restarts, signals, zombies, outages) and `install`.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{binary, materializer, path_str, run, world_with, Running, Setup, Tmpfs, PATIENCE};
use fake_infisical::{prerequisite, sample, Route};
use nix::sys::signal::Signal;

/// The sample world's dev:/ secrets as the app must see them (references expanded, the
/// staging:/ import included, the local LOG_LEVEL winning over the imported one).
const SAMPLE_DEV: [(&str, &str); 7] = [
    ("API_KEY", "dev-api-key-123"),
    ("DATABASE_URL", "postgres://db.internal.example:5432/app"),
    ("DB_HOST", "db.internal.example"),
    ("DB_PORT", "5432"),
    ("LOG_LEVEL", "info"),
    (
        "MULTILINE_CERT",
        "-----BEGIN TEST-----\nline1\nline2\n-----END TEST-----",
    ),
    ("SHARED_TOKEN", "staging-shared-value"),
];

/// Every credential and setting through the environment, as a pod spec would give them.
fn with_credentials(command: &mut Command, setup: &Setup) {
    command
        .env("INFISICAL_API_URL", setup.fake.url())
        .env("INFISICAL_UNIVERSAL_AUTH_CLIENT_ID", sample::UA_CLIENT_ID)
        .env(
            "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET",
            sample::UA_CLIENT_SECRET,
        )
        .env("INFISICAL_PROJECT_ID", sample::PROJECT_ID)
        .env("INFISICAL_ENVIRONMENT", "dev")
        .env("INFISICAL_LOG_LEVEL", "debug");
}

/// `infisical-materializer exec` with credentials from the environment; add options, `--`
/// and the command.
fn exec(setup: &Setup) -> Command {
    let mut command = materializer();
    with_credentials(&mut command, setup);
    command.arg("exec");
    command
}

/// `exec --watch` polling every 200ms.
fn watch(setup: &Setup) -> Command {
    let mut command = exec(setup);
    command.args(["--watch", "--interval", "200ms", "--jitter", "0"]);
    command
}

/// Parses `env -0` output exactly: NUL-terminated NAME=VALUE entries.
fn parse_env0(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .split_terminator('\0')
        .map(|entry| {
            let (name, value) = entry.split_once('=').expect("NAME=VALUE");
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

fn child_env(command: &mut Command) -> BTreeMap<String, String> {
    let done = run(command.args(["--", "env", "-0"]));
    done.assert_code(0);
    parse_env0(&done.stdout)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits for the process to exit, up to `seconds`.
fn wait_exit(running: &mut Running, seconds: u64) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if let Some(status) = running.child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Ends a watched run the way Kubernetes does (SIGTERM, passed on to the command) and returns
/// the wrapper's exit code.
fn terminate(mut running: Running) -> Option<i32> {
    running.signal(Signal::SIGTERM);
    let status = wait_exit(&mut running, PATIENCE)
        .unwrap_or_else(|| panic!("the wrapper did not exit after SIGTERM\n{}", running.logs()));
    status.code()
}

#[test]
fn the_command_sees_every_secret_and_none_of_the_wrappers_credentials() {
    let setup = Setup::sample();
    let env = child_env(
        exec(&setup)
            .env("INHERITED_ONLY", "kept as is")
            .env("API_KEY", "from the parent"),
    );
    let mut expected: BTreeMap<String, String> = SAMPLE_DEV
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    expected.insert("INHERITED_ONLY".into(), "kept as is".into());
    expected.insert("PATH".into(), std::env::var("PATH").unwrap_or_default());
    // Exactly: every secret with its exact value (the secret beats the inherited API_KEY), the
    // inherited variables, and no INFISICAL_* variable at all.
    assert_eq!(env, expected);
}

#[test]
fn preserve_env_lets_inherited_variables_win() {
    let setup = Setup::sample();
    let env = child_env(
        exec(&setup)
            .env("API_KEY", "from the parent")
            .arg("--preserve-env"),
    );
    assert_eq!(env["API_KEY"], "from the parent");
    assert_eq!(env["DB_HOST"], "db.internal.example");
    assert_eq!(env["MULTILINE_CERT"], SAMPLE_DEV[5].1);
}

#[test]
fn keep_env_passes_one_credential_variable_on() {
    let setup = Setup::sample();
    let env = child_env(exec(&setup).args(["--keep-env", "INFISICAL_PROJECT_ID"]));
    assert_eq!(env["INFISICAL_PROJECT_ID"], sample::PROJECT_ID);
    let leaked: Vec<_> = env
        .keys()
        .filter(|name| name.starts_with("INFISICAL_") && *name != "INFISICAL_PROJECT_ID")
        .collect();
    assert!(leaked.is_empty(), "leaked to the command: {leaked:?}");
}

#[test]
fn credentials_from_files_are_not_passed_on_either() {
    let setup = Setup::sample();
    let secret_file = setup.file("client-secret", sample::UA_CLIENT_SECRET);
    let mut command = materializer();
    command
        .env("INFISICAL_API_URL", setup.fake.url())
        .env("INFISICAL_UNIVERSAL_AUTH_CLIENT_ID", sample::UA_CLIENT_ID)
        .env(
            "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET_FILE",
            path_str(&secret_file),
        )
        .env("INFISICAL_PROJECT_SLUG", sample::PROJECT_SLUG)
        .env("INFISICAL_ENVIRONMENT", "dev")
        .arg("exec");
    let env = child_env(&mut command);
    assert!(
        env.keys().all(|name| !name.starts_with("INFISICAL_")),
        "{env:?}"
    );
    assert_eq!(env["API_KEY"], "dev-api-key-123");
}

#[test]
fn invalid_key_names_fail_or_are_skipped() {
    let setup = Setup::with_world(world_with(&[("GOOD", "1"), ("not-an-env-name", "2")]));
    let done = run(exec(&setup).args(["--", "env", "-0"]));
    done.assert_code(65);
    assert!(
        done.error_line().contains("not-an-env-name"),
        "{}",
        done.stderr
    );
    assert!(done.stdout.is_empty(), "the command must not run");

    let env = child_env(exec(&setup).args(["--invalid-keys", "skip"]));
    assert_eq!(env["GOOD"], "1");
    assert!(!env.contains_key("not-an-env-name"));
}

#[test]
fn a_value_with_a_nul_byte_fails_naming_the_key_only() {
    let setup = Setup::with_world(world_with(&[("TOKEN", "visible\0hidden-tail")]));
    let done = run(exec(&setup).args(["--", "env", "-0"]));
    done.assert_code(65);
    assert!(done.error_line().contains("TOKEN"), "{}", done.stderr);
    assert!(!done.stderr.contains("hidden-tail"), "{}", done.stderr);
    assert!(!done.stderr.contains("visible"), "{}", done.stderr);
}

#[test]
fn secret_values_never_reach_the_logs() {
    let setup = Setup::sample();
    let done = run(exec(&setup).args(["--", "true"]));
    done.assert_code(0);
    assert!(
        done.stderr.contains("starting the command"),
        "{}",
        done.stderr
    );
    for (key, value) in SAMPLE_DEV {
        // Short values like "info" or "5432" can appear in any log line; the distinctive ones not.
        if value.len() > 8 {
            assert!(
                !done.stderr.contains(value),
                "{key} logged:\n{}",
                done.stderr
            );
        }
    }
    assert!(!done.stderr.contains(sample::UA_CLIENT_SECRET));
}

#[test]
fn without_watch_the_command_replaces_the_wrapper_and_keeps_its_pid() {
    let setup = Setup::sample();
    let mut child = exec(&setup)
        .args(["--", "sh", "-c", "echo $$"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let wrapper_pid = child.id();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(stdout.trim(), wrapper_pid.to_string());
}

#[test]
fn the_command_does_not_inherit_an_ignored_sigpipe() {
    // Rust ignores SIGPIPE in its own processes; `app | head` must still end the app quietly.
    let setup = Setup::sample();
    let done = run(exec(&setup).args(["--", "cat", "/proc/self/status"]));
    done.assert_code(0);
    let ignored = done
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .map(|hex| u64::from_str_radix(hex.trim(), 16).expect("hex mask"))
        .expect("SigIgn line");
    let sigpipe_bit = 1u64 << (Signal::SIGPIPE as i32 - 1);
    assert_eq!(ignored & sigpipe_bit, 0, "SIGPIPE ignored: {ignored:x}");
}

#[test]
fn exit_codes_are_the_commands() {
    let setup = Setup::sample();
    for code in [0, 3, 42] {
        let script = format!("exit {code}");
        run(exec(&setup).args(["--", "sh", "-c", &script])).assert_code(code);
        run(watch(&setup).args(["--", "sh", "-c", &script])).assert_code(code);
    }
    // Supervised: a child killed by signal N gives 128+N, like a shell.
    run(watch(&setup).args(["--", "sh", "-c", "kill -9 $$"])).assert_code(137);
    // Replaced: the shell is the process, so the process itself dies of the signal.
    let status = exec(&setup)
        .args(["--", "sh", "-c", "kill -9 $$"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.signal(), Some(9), "{status:?}");
}

#[test]
fn a_missing_command_is_127_and_fails_before_any_request() {
    let setup = Setup::sample();
    for command in ["no-such-command-anywhere", "/no/such/dir/program"] {
        for mode in [&mut exec(&setup), &mut watch(&setup)] {
            let done = run(mode.args(["--", command]));
            done.assert_code(127);
            assert!(done.error_line().contains(command), "{}", done.stderr);
        }
    }
    assert_eq!(setup.fake.count(Route::UniversalAuthLogin), 0);
}

#[test]
fn a_command_that_is_not_executable_is_126() {
    let setup = Setup::sample();
    let script = setup.file("script.sh", "#!/bin/sh\necho should not run\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let done = run(exec(&setup).args(["--", path_str(&script)]));
    done.assert_code(126);
    assert!(done.error_line().contains("script.sh"), "{}", done.stderr);
    assert!(done.stdout.is_empty());

    // Found in PATH, but not executable.
    let dir = setup.dir.path();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let done = run(exec(&setup).env("PATH", path).args(["--", "script.sh"]));
    done.assert_code(126);
    assert!(done.error_line().contains("script.sh"), "{}", done.stderr);
}

#[test]
fn watch_restarts_the_command_once_per_change_and_never_for_unchanged_refreshes() {
    let setup = Setup::with_world(world_with(&[("VERSION", "one"), ("OTHER", "x")]));
    let starts = setup.path("starts");
    let script = format!(
        "printf '%s\\n' \"$VERSION\" >> '{}'; exec sleep 60",
        starts.display()
    );
    let running = Running::start(
        watch(&setup).args(["--grace", "5s", "--", "sh", "-c", &script]),
        setup.path("log"),
    );
    running.wait_for("the first start", || !lines(&starts).is_empty());
    assert_eq!(lines(&starts), ["one"], "{}", running.logs());

    // Several refreshes that change nothing (304s and same-content 200s) restart nothing.
    let polled = setup.fake.count(Route::ListSecrets);
    running.wait_for("five unchanged refreshes", || {
        setup.fake.count(Route::ListSecrets) >= polled + 5
    });
    assert_eq!(lines(&starts), ["one"], "{}", running.logs());

    setup.fake.set_secret("dev", "/", "VERSION", "two");
    running.wait_for("a restart after the change", || lines(&starts).len() >= 2);
    let polled = setup.fake.count(Route::ListSecrets);
    running.wait_for("five refreshes after the restart", || {
        setup.fake.count(Route::ListSecrets) >= polled + 5
    });
    assert_eq!(lines(&starts), ["one", "two"], "{}", running.logs());
    assert!(running.logs().contains("restarting the command"));

    // sleep dies of the forwarded SIGTERM: 128 + 15.
    assert_eq!(terminate(running), Some(143));
}

#[test]
fn watch_passes_signals_on_to_the_command() {
    let setup = Setup::sample();
    let record = setup.path("signals");
    let script = format!(
        r#"out='{}'
trap 'echo HUP >> "$out"' HUP
trap 'echo USR1 >> "$out"' USR1
trap 'echo TERM >> "$out"; exit 7' TERM
echo ready >> "$out"
i=0
while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done"#,
        record.display()
    );
    let mut running = Running::start(
        watch(&setup).args(["--", "sh", "-c", &script]),
        setup.path("log"),
    );
    running.wait_for("the command to start", || !lines(&record).is_empty());
    running.signal(Signal::SIGHUP);
    running.wait_for("the command to record SIGHUP", || lines(&record).len() >= 2);
    running.signal(Signal::SIGUSR1);
    running.wait_for("the command to record SIGUSR1", || {
        lines(&record).len() >= 3
    });
    assert_eq!(
        lines(&record),
        ["ready", "HUP", "USR1"],
        "{}",
        running.logs()
    );
    assert!(
        running.is_running(),
        "HUP and USR1 must not stop the wrapper"
    );
    running.signal(Signal::SIGTERM);
    let status = wait_exit(&mut running, PATIENCE).expect("the wrapper exits after the command");
    assert_eq!(lines(&record), ["ready", "HUP", "USR1", "TERM"]);
    assert_eq!(status.code(), Some(7), "the command's own exit status");
}

#[test]
fn watch_keeps_the_command_running_through_an_outage() {
    let setup = Setup::with_world(world_with(&[("VERSION", "one")]));
    let starts = setup.path("starts");
    let script = format!(
        "printf '%s\\n' \"$VERSION\" >> '{}'; exec sleep 60",
        starts.display()
    );
    let mut running = Running::start(
        watch(&setup).args(["--", "sh", "-c", &script]),
        setup.path("log"),
    );
    running.wait_for("the first start", || !lines(&starts).is_empty());
    assert_eq!(lines(&starts), ["one"], "{}", running.logs());

    setup.fake.set_down(true);
    // Each failed refresh logs one line; three of them show the command outliving the outage.
    running.wait_for("three failed refreshes logged", || {
        running.logs().matches("keeps running").count() >= 3
    });
    assert!(running.is_running(), "{}", running.logs());
    assert_eq!(
        lines(&starts),
        ["one"],
        "the command was not restarted or stopped"
    );

    // Back up: a change is picked up again.
    setup.fake.set_down(false);
    setup.fake.set_secret("dev", "/", "VERSION", "two");
    running.wait_for("a restart after the outage", || lines(&starts).len() >= 2);
    assert_eq!(lines(&starts), ["one", "two"], "{}", running.logs());
    assert_eq!(terminate(running), Some(143));
}

/// Why this machine cannot give the wrapper a PID namespace of its own (root + util-linux's
/// `unshare`), if it cannot.
fn pid_namespaces_missing() -> Option<String> {
    if !prerequisite::is_root() {
        return Some("a PID namespace needs root".into());
    }
    match Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => None,
        Ok(status) => Some(format!(
            "`unshare --pid --fork --mount-proc` failed: {status}"
        )),
        Err(error) => Some(format!("`unshare` (util-linux) cannot be run: {error}")),
    }
}

#[test]
fn as_pid_1_watch_reaps_orphaned_grandchildren() {
    if let Some(reason) = pid_namespaces_missing() {
        return prerequisite::missing(reason);
    }
    let setup = Setup::sample();
    let dir = setup.dir.path().display().to_string();
    // The inner shell exits at once, so its background sleep is adopted by PID 1 (the wrapper).
    // Once that sleep ends, only PID 1 can collect it; a zombie would keep its /proc entry.
    let script = format!(
        r#"d='{dir}'
sh -c "sleep 0.5 & echo \$! > '$d/orphan'"
orphan=$(cat "$d/orphan")
ppid=$(sed 's/^.*) . \([0-9]*\) .*/\1/' /proc/$orphan/stat)
sleep 2
if [ -e /proc/$orphan ]; then state=$(sed 's/^.*) \(.\) .*/\1/' /proc/$orphan/stat); else state=reaped; fi
zombies=$(cat /proc/[0-9]*/stat 2>/dev/null | sed -n 's/^.*) \(.\) .*/\1/p' | grep -c Z)
echo "wrapper=$PPID ppid=$ppid orphan=$state zombies=$zombies" > "$d/report""#
    );
    let mut command = Command::new("unshare");
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    with_credentials(&mut command, &setup);
    command.args([
        "--pid",
        "--fork",
        "--mount-proc",
        binary(),
        "exec",
        "--watch",
        "--",
        "sh",
        "-c",
    ]);
    command.arg(&script);
    run(&mut command).assert_code(0);
    let report = std::fs::read_to_string(setup.dir.path().join("report")).expect("report");
    assert_eq!(
        report.trim(),
        "wrapper=1 ppid=1 orphan=reaped zombies=0",
        "the orphan must be adopted by the wrapper (PID 1) and collected"
    );
}

#[test]
fn install_copies_a_working_binary_with_mode_0755() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("infisical-materializer");
    let done = run(materializer().args(["install", "--to", path_str(&target)]));
    done.assert_code(0);
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755);
    let version = run(Command::new(&target).arg("--version").stdin(Stdio::null()));
    version.assert_code(0);
    assert!(
        version.stdout.contains(&format!(
            "infisical-materializer {}",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        version.stdout
    );
    // Installing again replaces the copy in place, leaving no temp file behind.
    run(materializer().args(["install", "--to", path_str(&target)])).assert_code(0);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("infisical-materializer")]);
}

#[test]
fn install_into_a_directory_that_cannot_be_written_is_73() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("not-mounted");
    let done = run(materializer().args([
        "install",
        "--to",
        path_str(&missing.join("infisical-materializer")),
    ]));
    done.assert_code(73);
    assert!(done.error_line().contains("not-mounted"), "{}", done.stderr);

    // A directory the binary may not write to. Root writes through permission bits, so for root
    // it is a read-only mount instead.
    let read_only = dir.path().join("read-only");
    std::fs::create_dir(&read_only).unwrap();
    let _mounted = if prerequisite::is_root() {
        match Tmpfs::mount(&read_only, ",ro") {
            Ok(mounted) => Some(mounted),
            Err(reason) => return prerequisite::missing(reason),
        }
    } else {
        std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o555)).unwrap();
        None
    };
    let done = run(materializer().args(["install", "--to", path_str(&read_only.join("bin"))]));
    done.assert_code(73);
    assert!(done.error_line().contains("read-only"), "{}", done.stderr);
}
