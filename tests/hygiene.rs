//! Secret hygiene of the process itself: it is not dumpable, so a process of the same user (the
//! app beside `exec --watch`) can read neither its environment nor its memory; and `--mlock`
//! locks its memory or says which pod setting is missing.
//!
//! These run the binary as an unprivileged user (65534), which needs root.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{binary, path_str, run, Running, Setup, PATIENCE};
use fake_infisical::{prerequisite, sample};

/// The unprivileged user the binary runs as.
const NOBODY: u32 = 65534;

/// A scratch directory the unprivileged user can use (the usual temp dir is root's alone).
fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod the temp dir");
    dir
}

/// `MODE` and universal-auth arguments for `setup`'s fake; the client secret goes in the
/// environment, the way a pod passes it from a Secret.
fn arguments(setup: &Setup, mode: &str) -> Vec<String> {
    [
        mode,
        "--api-url",
        &setup.fake.url(),
        "--client-id",
        sample::UA_CLIENT_ID,
        "--project-id",
        sample::PROJECT_ID,
        "--env",
        "dev",
    ]
    .map(String::from)
    .to_vec()
}

/// `program` run as [`NOBODY`] with a clean environment holding the client secret.
fn as_nobody(program: &str) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(
            "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET",
            sample::UA_CLIENT_SECRET,
        )
        .stdin(std::process::Stdio::null())
        .uid(NOBODY)
        .gid(NOBODY);
    command
}

fn wait_for_file(path: &Path) -> String {
    assert!(
        common::eventually(PATIENCE, || path.exists()),
        "{} never appeared",
        path.display()
    );
    std::fs::read_to_string(path).expect("read the report")
}

#[test]
fn the_app_beside_exec_watch_can_read_neither_the_wrappers_environment_nor_its_memory() {
    if !prerequisite::is_root() {
        return prerequisite::missing("running the binary as another user needs root");
    }
    let setup = Setup::sample();
    let shared = shared_dir();
    let report = shared.path().join("report");
    // The app: a process of the same user as the wrapper, trying what an attacker in it would.
    let script = format!(
        "{{ if cat /proc/$PPID/environ >/dev/null 2>&1; then echo environ=readable; \
         else echo environ=denied; fi; \
         if (exec 3</proc/$PPID/mem) 2>/dev/null; then echo mem=readable; \
         else echo mem=denied; fi; }} > {out}.tmp && mv {out}.tmp {out}; exec sleep 600",
        out = path_str(&report)
    );
    let mut wrapper = as_nobody(binary());
    wrapper.args(arguments(&setup, "exec")).args([
        "--watch",
        "--interval",
        "1h",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let mut running = Running::start(&mut wrapper, shared.path().join("log"));

    let found = wait_for_file(&report);
    assert_eq!(
        found,
        "environ=denied\nmem=denied\n",
        "the app could read the wrapper\n--- logs\n{}",
        running.logs()
    );
    // The premise: both ran as the same unprivileged user, and the wrapper's /proc files belong
    // to root because it is not dumpable.
    let wrapper_proc = PathBuf::from(format!("/proc/{}", running.child.id()));
    let status = std::fs::read_to_string(wrapper_proc.join("status")).expect("status");
    assert!(status.contains(&format!("\nUid:\t{NOBODY}\t")), "{status}");
    let owner = std::fs::metadata(wrapper_proc.join("environ"))
        .expect("stat environ")
        .uid();
    assert_eq!(owner, 0, "a non-dumpable process's /proc files are root's");
    assert!(running.is_running(), "{}", running.logs());
}

#[test]
fn the_sidecar_is_not_dumpable() {
    if !prerequisite::is_root() {
        return prerequisite::missing("running the binary as another user needs root");
    }
    let setup = Setup::sample();
    let shared = shared_dir();
    let out = shared.path().join("secrets");
    let mut sidecar = as_nobody(binary());
    sidecar.args(arguments(&setup, "sidecar")).args([
        "--out-dir",
        path_str(&out),
        "--interval",
        "1h",
    ]);
    let running = Running::start(&mut sidecar, shared.path().join("log"));
    running.wait_for("the first write", || out.join("API_KEY").exists());
    let proc = PathBuf::from(format!("/proc/{}", running.child.id()));
    for file in ["environ", "mem", "maps"] {
        let owner = std::fs::metadata(proc.join(file)).expect("stat").uid();
        assert_eq!(owner, 0, "/proc/PID/{file} belongs to uid {owner}");
    }
    // The same user cannot read it either.
    let reader = Command::new("cat")
        .arg(proc.join("environ"))
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .expect("cat runs");
    assert!(!reader.status.success(), "environ was readable");
}

#[test]
fn mlock_locks_memory_and_says_how_much() {
    if !prerequisite::is_root() {
        return prerequisite::missing(
            "locking all of a debug build's memory needs CAP_IPC_LOCK (root)",
        );
    }
    let setup = Setup::sample();
    let done = run(setup.universal_auth("check").arg("--mlock"));
    done.assert_code(0);
    let line = done
        .stderr
        .lines()
        .find(|line| line.contains("--mlock: locked "))
        .unwrap_or_else(|| panic!("no --mlock line\n{}", done.stderr));
    let kib: u64 = line
        .split("--mlock: locked ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(kib > 0, "{line}");
}

#[test]
fn mlock_refused_by_the_memlock_limit_says_how_to_raise_it() {
    if !prerequisite::is_root() {
        return prerequisite::missing("dropping CAP_IPC_LOCK to test the limit needs root");
    }
    let setup = Setup::sample();
    let shared = shared_dir();
    let config = shared.path().join("config.yaml");
    std::fs::write(&config, "mlock: true\n").expect("config file");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    /// How `--mlock` is asked for: a name, extra arguments and extra variables.
    type Way<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);
    let ways: [Way; 3] = [
        ("the flag", &["--mlock"], &[]),
        ("the variable", &[], &[("INFISICAL_MLOCK", "true")]),
        ("the file", &["--config", path_str(&config)], &[]),
    ];
    for (way, args, env) in ways {
        // prlimit lowers the limit, then execs the binary as the unprivileged user.
        let mut command = as_nobody("prlimit");
        command
            .args(["--memlock=65536:65536", "--", binary()])
            .args(arguments(&setup, "check"))
            .args(args)
            .envs(env.iter().copied());
        let done = run(&mut command);
        done.assert_code(64);
        let line = done.error_line();
        for part in [
            "--mlock: cannot lock",
            "RLIMIT_MEMLOCK allows 64 KiB (hard limit 64 KiB)",
            "IPC_LOCK",
            "memlock ulimit",
        ] {
            assert!(line.contains(part), "{way}: {part:?} missing: {line}");
        }
        assert_eq!(
            setup.fake.count(fake_infisical::Route::ListSecrets),
            0,
            "{way}: nothing is fetched"
        );
    }
}
