//! The fault matrix: every failure of README.md's "Failure behaviour" table, row by row, for
//! `init`, `sidecar` and `exec --watch`, against the fake Infisical.
//!
//! For each fault: `init` exits with the documented code and one line that says what happened,
//! and the files of an earlier run are intact; the sidecar keeps the last good files, says what
//! happened, and picks up a change once the fault is gone; `exec --watch` keeps the command
//! running with its secrets, says what happened, and restarts it with a change afterwards.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{path_str, run, snapshot, world_with, Running, Tmpfs};
use fake_infisical::{prerequisite, sample, FakeInfisical, Fault, Release, Route, World};

const VALUE: &str = "first-value-1b7c";
const CHANGED: &str = "changed-value-9e2d";

/// One fault: how to cause it after a good first fetch, what each mode says while it lasts,
/// and how to end it.
struct Row {
    name: &'static str,
    /// A world other than the default (e.g. a newer release), if the fault needs one.
    world: fn() -> World,
    /// Causes the fault.
    inject: fn(&mut Scene),
    /// `init`'s exit code and a phrase of its last line; `None`: not a one-shot failure.
    init: Option<(i32, &'static str)>,
    /// A phrase the sidecar and `exec --watch` log while it lasts.
    logged: &'static str,
    /// Ends the fault.
    recover: fn(&mut Scene),
    /// The server asked to wait longer than a test waits (a 429 saying "in 1 minute"): the
    /// retry is honoured, so recovery is not awaited here (the refresh engine's paused-clock
    /// tests cover the Retry-After floor).
    slow_recovery: bool,
}

fn default_world() -> World {
    world_with(&[("API_KEY", VALUE)])
}

/// A fake (which a row may stop and restart on the same address) and the files around it.
struct Scene {
    fake: Option<FakeInfisical>,
    addr: SocketAddr,
    world: World,
    dir: tempfile::TempDir,
    url: String,
    secret_file: PathBuf,
    extra_args: Vec<String>,
    tmpfs: Option<Tmpfs>,
}

impl Scene {
    fn new(world: World) -> Self {
        let fake = FakeInfisical::start(world.clone());
        let addr: SocketAddr = fake
            .url()
            .trim_start_matches("http://")
            .parse()
            .expect("address");
        let dir = tempfile::tempdir().expect("temp dir");
        let secret_file = dir.path().join("client-secret");
        std::fs::write(&secret_file, sample::UA_CLIENT_SECRET).expect("write");
        std::fs::create_dir(dir.path().join("out")).expect("out dir");
        Self {
            url: fake.url(),
            fake: Some(fake),
            addr,
            world,
            dir,
            secret_file,
            extra_args: Vec::new(),
            tmpfs: None,
        }
    }

    fn fake(&self) -> &FakeInfisical {
        self.fake.as_ref().expect("the fake is running")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn command(&self, mode: &str) -> Command {
        let mut command = common::materializer();
        command.arg(mode).args([
            "--api-url",
            &self.url,
            "--client-id",
            sample::UA_CLIENT_ID,
            "--client-secret-file",
            path_str(&self.secret_file),
            "--project-id",
            sample::PROJECT_ID,
            "--env",
            "dev",
            "--request-timeout",
            "1s",
            "--log-level",
            "debug",
        ]);
        command.args(&self.extra_args);
        command
    }

    fn init(&self) -> common::Finished {
        run(self.command("init").args([
            "--out-dir",
            path_str(&self.out()),
            "--retry-deadline",
            "2s",
        ]))
    }

    /// A sidecar writing to `out` every 100 ms (no jitter), logging to `log`.
    fn sidecar(&self, out: &Path, log: PathBuf) -> Running {
        Running::start(
            self.command("sidecar").args([
                "--out-dir",
                path_str(out),
                "--interval",
                "100ms",
                "--jitter",
                "0",
            ]),
            log,
        )
    }

    fn restart_fake(&mut self) {
        self.fake = Some(
            FakeInfisical::start_on(self.world.clone(), self.addr)
                .expect("restart on the same port"),
        );
    }
}

fn clear(scene: &mut Scene) {
    scene.fake().clear_faults();
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "connection refused",
            world: default_world,
            inject: |s| s.fake = None,
            init: Some((69, "cannot reach Infisical")),
            logged: "Connection refused",
            recover: Scene::restart_fake,
            slow_recovery: false,
        },
        Row {
            name: "connection dropped before an answer",
            world: default_world,
            inject: |s| {
                s.fake()
                    .inject(Fault::drop_connection(Route::ListSecrets).times(usize::MAX))
            },
            init: Some((69, "cannot reach Infisical")),
            logged: "cannot reach Infisical",
            recover: clear,
            slow_recovery: false,
        },
        Row {
            name: "server closes mid-body",
            world: default_world,
            inject: |s| {
                s.fake()
                    .inject(Fault::truncated_body(Route::ListSecrets).times(usize::MAX))
            },
            init: Some((69, "connection closed before message completed")),
            logged: "connection closed before message completed",
            recover: clear,
            slow_recovery: false,
        },
        Row {
            name: "slower than --request-timeout",
            world: default_world,
            inject: |s| {
                s.fake().inject(
                    Fault::delay(Route::ListSecrets, Duration::from_secs(3)).times(usize::MAX),
                )
            },
            init: Some((69, "did not answer within --request-timeout 1s")),
            logged: "did not answer within --request-timeout",
            recover: clear,
            slow_recovery: false,
        },
        Row {
            name: "500",
            world: default_world,
            inject: |s| {
                s.fake()
                    .inject(Fault::status(Route::ListSecrets, 500).times(usize::MAX))
            },
            init: Some((69, "Infisical is failing (HTTP 500")),
            logged: "Infisical is failing (HTTP 500",
            recover: clear,
            slow_recovery: false,
        },
        Row {
            name: "502",
            world: default_world,
            inject: |s| {
                s.fake()
                    .inject(Fault::status(Route::ListSecrets, 502).times(usize::MAX))
            },
            init: Some((69, "HTTP 502")),
            logged: "HTTP 502",
            recover: clear,
            slow_recovery: false,
        },
        Row {
            name: "503",
            world: default_world,
            inject: |s| {
                s.fake()
                    .inject(Fault::status(Route::ListSecrets, 503).times(usize::MAX))
            },
            init: Some((69, "HTTP 503")),
            logged: "HTTP 503",
            recover: clear,
            slow_recovery: false,
        },
        Row {
            name: "504",
            world: default_world,
            inject: |s| {
                s.fake()
                    .inject(Fault::status(Route::ListSecrets, 504).times(usize::MAX))
            },
            init: Some((69, "HTTP 504")),
            logged: "HTTP 504",
            recover: clear,
            slow_recovery: false,
        },
        Row {
            name: "429 with retry-after",
            world: default_world,
            inject: |s| {
                s.fake()
                    .inject(Fault::rate_limited(Route::ListSecrets, Some(1)).times(usize::MAX))
            },
            init: Some((69, "rate-limiting requests (it asked to wait 1s)")),
            logged: "rate-limiting",
            recover: clear,
            slow_recovery: false,
        },
        Row {
            name: "429 without retry-after",
            world: default_world,
            inject: |s| {
                s.fake()
                    .inject(Fault::rate_limited(Route::ListSecrets, None).times(usize::MAX))
            },
            init: Some((69, "rate-limiting requests")),
            logged: "rate-limiting",
            recover: clear,
            slow_recovery: true,
        },
        Row {
            name: "429 saying 'try again in N seconds'",
            world: default_world,
            inject: |s| {
                s.fake().inject(
                    Fault::body(
                        Route::ListSecrets,
                        429,
                        r#"{"statusCode":429,"message":"Rate limit exceeded. Please try again in 1 seconds","error":"RateLimitExceeded"}"#,
                    )
                    .times(usize::MAX),
                )
            },
            init: Some((69, "(it asked to wait 1s)")),
            logged: "rate-limiting",
            recover: clear,
            slow_recovery: false,
        },
        Row {
            name: "401 on every list (the new login's token too)",
            world: default_world,
            inject: |s| {
                s.fake()
                    .inject(Fault::status(Route::ListSecrets, 401).times(usize::MAX))
            },
            init: Some((77, "even after logging in again")),
            logged: "even after logging in again",
            recover: clear,
            slow_recovery: false,
        },
        Row {
            name: "403 TokenError mid-run",
            world: default_world,
            inject: |s| {
                s.fake()
                    .inject(Fault::token_expired(Route::ListSecrets).times(usize::MAX))
            },
            init: Some((77, "even after logging in again")),
            logged: "even after logging in again",
            recover: clear,
            slow_recovery: false,
        },
        Row {
            name: "identity removed from the project (403)",
            world: default_world,
            inject: |s| s.fake().set_member(sample::UA_IDENTITY_ID, false),
            init: Some((77, "is not a member of")),
            logged: "is not a member of",
            recover: |s| s.fake().set_member(sample::UA_IDENTITY_ID, true),
            slow_recovery: false,
        },
        Row {
            name: "folder deleted (404, 2026 server)",
            world: || default_world().release(Release::R2026),
            inject: |s| s.fake().delete_folder("dev", "/"),
            init: Some((66, "folder \"/\" does not exist")),
            logged: "does not exist",
            recover: |s| s.fake().set_secret("dev", "/", "API_KEY", VALUE),
            slow_recovery: false,
        },
        Row {
            name: "folder deleted (empty list, 2024 server)",
            world: default_world,
            inject: |s| s.fake().delete_folder("dev", "/"),
            init: Some((66, "no secrets found")),
            logged: "no secrets found",
            recover: |s| s.fake().set_secret("dev", "/", "API_KEY", VALUE),
            slow_recovery: false,
        },
        Row {
            name: "malformed JSON",
            world: default_world,
            inject: |s| {
                s.fake()
                    .inject(Fault::malformed_json(Route::ListSecrets).times(usize::MAX))
            },
            init: Some((69, "sent an answer that is not Infisical's")),
            logged: "sent an answer that is not Infisical's",
            recover: clear,
            slow_recovery: false,
        },
        Row {
            name: "JSON missing fields",
            world: default_world,
            inject: |s| {
                s.fake().inject(
                    Fault::body(Route::ListSecrets, 200, r#"{"imports":[]}"#).times(usize::MAX),
                )
            },
            init: Some((69, "sent an answer that is not Infisical's")),
            logged: "sent an answer that is not Infisical's",
            recover: clear,
            slow_recovery: false,
        },
        Row {
            name: "credential file emptied mid-run",
            world: default_world,
            inject: |s| {
                std::fs::write(&s.secret_file, "").expect("empty it");
                s.fake().revoke_tokens(sample::UA_IDENTITY_ID);
            },
            // init reads it before anything else: a configuration error.
            init: Some((64, "is empty")),
            logged: "using the last good client secret",
            recover: |s| std::fs::write(&s.secret_file, sample::UA_CLIENT_SECRET).expect("restore"),
            slow_recovery: false,
        },
        Row {
            name: "credential file deleted mid-run",
            world: default_world,
            inject: |s| {
                std::fs::remove_file(&s.secret_file).expect("delete it");
                s.fake().revoke_tokens(sample::UA_IDENTITY_ID);
            },
            init: Some((64, "cannot read the client secret file")),
            logged: "using the last good client secret",
            recover: |s| std::fs::write(&s.secret_file, sample::UA_CLIENT_SECRET).expect("restore"),
            slow_recovery: false,
        },
    ]
}

/// The logs written since `from` bytes.
fn logs_since(running: &Running, from: usize) -> String {
    running.logs().get(from..).unwrap_or_default().to_owned()
}

#[test]
fn init_fails_with_the_documented_code_and_keeps_earlier_files() {
    for row in rows() {
        let Some((code, phrase)) = row.init else {
            continue;
        };
        let mut scene = Scene::new((row.world)());
        scene.init().assert_code(0);
        let before = snapshot(&scene.out());
        (row.inject)(&mut scene);
        let done = scene.init();
        assert_eq!(
            done.code,
            Some(code),
            "{}: {}\n{}",
            row.name,
            done.error_line(),
            done.stderr
        );
        assert!(
            done.error_line().contains(phrase),
            "{}: expected {phrase:?} in: {}",
            row.name,
            done.error_line()
        );
        assert_eq!(
            snapshot(&scene.out()),
            before,
            "{}: files changed",
            row.name
        );
    }
}

#[test]
fn the_sidecar_keeps_the_last_good_files_says_why_and_recovers() {
    for row in rows() {
        let mut scene = Scene::new((row.world)());
        let out = scene.out();
        let running = Running::start(
            scene.command("sidecar").args([
                "--out-dir",
                path_str(&out),
                "--interval",
                "100ms",
                "--jitter",
                "0",
            ]),
            scene
                .dir
                .path()
                .join(format!("{}.log", row.name.replace([' ', '/', '\''], "-"))),
        );
        let file = out.join("API_KEY");
        running.wait_for("the first write", || file.exists());
        let before = snapshot(&out);
        let from = running.logs().len();
        (row.inject)(&mut scene);
        running.wait_for(&format!("{}: {:?} logged", row.name, row.logged), || {
            logs_since(&running, from).contains(row.logged)
        });
        assert_eq!(
            snapshot(&out),
            before,
            "{}: files changed during the fault",
            row.name
        );
        if row.slow_recovery {
            continue;
        }
        (row.recover)(&mut scene);
        scene.fake().set_secret("dev", "/", "API_KEY", CHANGED);
        running.wait_for(&format!("{}: the change after recovery", row.name), || {
            std::fs::read_to_string(&file).is_ok_and(|v| v == CHANGED)
        });
    }
}

#[test]
fn exec_watch_keeps_the_command_running_says_why_and_restarts_it_after() {
    for row in rows() {
        let mut scene = Scene::new((row.world)());
        let seen = scene.out().join("seen");
        let script = format!("echo \"$API_KEY\" > {}; exec sleep 600", path_str(&seen));
        let mut command = scene.command("exec");
        command.args([
            "--watch",
            "--interval",
            "100ms",
            "--jitter",
            "0",
            "--",
            "sh",
            "-c",
            &script,
        ]);
        let running = Running::start(&mut command, scene.dir.path().join("exec.log"));
        running.wait_for("the command's start", || {
            std::fs::read_to_string(&seen).is_ok_and(|v| v.trim() == VALUE)
        });
        let from = running.logs().len();
        (row.inject)(&mut scene);
        running.wait_for(&format!("{}: {:?} logged", row.name, row.logged), || {
            logs_since(&running, from).contains(row.logged)
        });
        let during = logs_since(&running, from);
        assert!(
            during.contains("the command keeps running with the previous secrets")
                || during.contains("last good"),
            "{}: {during}",
            row.name
        );
        assert_eq!(
            std::fs::read_to_string(&seen).expect("seen").trim(),
            VALUE,
            "{}: restarted during the fault",
            row.name
        );
        if row.slow_recovery {
            continue;
        }
        (row.recover)(&mut scene);
        scene.fake().set_secret("dev", "/", "API_KEY", CHANGED);
        running.wait_for(&format!("{}: the restart after recovery", row.name), || {
            std::fs::read_to_string(&seen).is_ok_and(|v| v.trim() == CHANGED)
        });
    }
}

#[test]
fn a_50_mb_answer_is_refused_without_being_read_whole() {
    let scene = Scene::new(default_world());
    scene.init().assert_code(0);
    let before = snapshot(&scene.out());
    let filler = "x".repeat(50 << 20);
    // Announced by its Content-Length; the client must refuse it before reading it (the fake
    // sends it as text: its JSON check would take seconds on 50 MB).
    let body = format!("{{\"secrets\":[{filler}]}}");
    scene
        .fake()
        .inject(Fault::body(Route::ListSecrets, 200, &body).times(usize::MAX));
    let done = scene.init();
    done.assert_code(65);
    assert!(
        done.error_line()
            .contains("larger than --max-response-size"),
        "{}",
        done.error_line()
    );
    assert_eq!(snapshot(&scene.out()), before);

    let out = scene.out();
    let running = scene.sidecar(&out, scene.dir.path().join("large.log"));
    running.wait_for("the refusal logged", || {
        running
            .logs()
            .matches("larger than --max-response-size")
            .count()
            >= 3
    });
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", running.child.id())).expect("status");
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM");
    assert!(
        peak_kib < 32 * 1024,
        "memory stays bounded: peak {peak_kib} KiB for a 50 MB answer"
    );
    assert_eq!(snapshot(&out), before, "files changed");
}

/// Target faults need root (a tiny tmpfs, a read-only remount).
fn root_tmpfs(scene: &mut Scene, options: &str) -> Option<PathBuf> {
    if !prerequisite::is_root() {
        prerequisite::missing("root, to mount a tmpfs for the disk-full and read-only faults");
        return None;
    }
    let out = scene.out();
    scene.tmpfs = Some(Tmpfs::mount(&out, options).expect("mount a tmpfs"));
    Some(out)
}

#[test]
fn a_full_or_read_only_target_keeps_the_last_good_files() {
    // Disk full: the new value does not fit in a 64 KiB tmpfs.
    let mut scene = Scene::new(default_world());
    let Some(out) = root_tmpfs(&mut scene, ",size=64k") else {
        return;
    };
    scene.init().assert_code(0);
    let before = snapshot(&out);
    scene
        .fake()
        .set_secret("dev", "/", "API_KEY", &"x".repeat(200 * 1024));
    let done = scene.init();
    done.assert_code(73);
    assert!(
        done.error_line().contains("no space left"),
        "{}",
        done.error_line()
    );
    assert_eq!(snapshot(&out), before, "a full disk left a partial version");

    let running = scene.sidecar(&out, scene.dir.path().join("full.log"));
    running.wait_for("the write failure logged", || {
        running.logs().contains("no space left")
    });
    assert_eq!(snapshot(&out), before, "the sidecar left a partial version");
    scene.fake().set_secret("dev", "/", "API_KEY", CHANGED);
    running.wait_for("the change once it fits", || {
        std::fs::read_to_string(out.join("API_KEY")).is_ok_and(|v| v == CHANGED)
    });
    drop(running);

    // Read-only: the target is remounted read-only mid-run.
    let before = snapshot(&out);
    let running = scene.sidecar(&out, scene.dir.path().join("ro.log"));
    running.wait_for("a good start", || {
        running
            .logs()
            .contains("endpoint=\"list_secrets\" status=200")
    });
    remount(&out, "ro");
    scene.fake().set_secret("dev", "/", "API_KEY", VALUE);
    running.wait_for("the read-only failure logged", || {
        running.logs().contains("read-only file system")
    });
    assert_eq!(snapshot(&out), before);
    remount(&out, "rw");
    running.wait_for("the change once writable", || {
        std::fs::read_to_string(out.join("API_KEY")).is_ok_and(|v| v == VALUE)
    });
    drop(running);
    remount(&out, "ro");
    let done = scene.init();
    done.assert_code(73);
    remount(&out, "rw");
}

fn remount(dir: &Path, mode: &str) {
    let status = Command::new("mount")
        .args(["-o", &format!("remount,{mode}")])
        .arg(dir)
        .status()
        .expect("mount");
    assert!(status.success(), "remount {mode}");
}

#[test]
fn dns_and_tls_failures_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, sample::UA_CLIENT_SECRET).expect("write");
    let fake = FakeInfisical::start_tls(world_with(&[("API_KEY", VALUE)]), &["localhost"]);
    let base = |url: &str| {
        let mut command = common::materializer();
        command.args([
            "init",
            "--api-url",
            url,
            "--client-id",
            sample::UA_CLIENT_ID,
            "--client-secret-file",
            path_str(&secret),
            "--project-id",
            sample::PROJECT_ID,
            "--env",
            "dev",
            "--out-dir",
            path_str(&dir.path().join("out")),
            "--retry-deadline",
            "1s",
        ]);
        command
    };
    let done = run(&mut base("http://infisical.invalid"));
    done.assert_code(69);
    assert!(
        done.error_line()
            .contains("cannot reach Infisical at http://infisical.invalid"),
        "{}",
        done.error_line()
    );
    // A server certificate from a CA we were not given: permanent, at once.
    let done = run(&mut base(&fake.url()));
    done.assert_code(69);
    assert!(
        done.error_line().contains("TLS certificate"),
        "{}",
        done.error_line()
    );
    assert!(
        done.error_line().contains("--ca-cert"),
        "{}",
        done.error_line()
    );
    assert!(
        !done.error_line().contains("gave up"),
        "not retried: {}",
        done.error_line()
    );
}
