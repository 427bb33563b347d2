//! `sidecar` end to end: refreshes, 304s, token lifecycle, outages, rate limits, notifications,
//! health endpoints and shutdown.
//!
//! The tests wait for what they can observe (the fake's request log, `/metrics`, the files), never
//! for a fixed time, and bound no duration from above: a loaded machine makes them slower, not red.
//! To show that something does NOT happen, they let a few more refreshes pass first.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{
    eventually, free_port, http_get, materializer, metric_value, path_str, Running, Setup, PATIENCE,
};
use fake_infisical::{sample, Fault, RecordedRequest, Route, World};
use nix::sys::signal::Signal;

struct Sidecar {
    running: Running,
    out: PathBuf,
    port: u16,
}

impl Sidecar {
    fn start(setup: &Setup, extra: &[&str]) -> Sidecar {
        Self::start_with(setup, setup.universal_auth("sidecar"), extra)
    }

    fn start_with(setup: &Setup, command: Command, extra: &[&str]) -> Sidecar {
        Self::start_every(setup, command, "1s", extra)
    }

    /// Starts it refreshing every `interval` (±10 %) and waits until it is ready.
    fn start_every(setup: &Setup, mut command: Command, interval: &str, extra: &[&str]) -> Sidecar {
        let out = setup.path("secrets");
        let port = free_port();
        command.args([
            "--out-dir",
            path_str(&out),
            "--interval",
            interval,
            "--jitter",
            "0.1",
        ]);
        command.args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-level",
            "debug",
        ]);
        command.args(extra);
        let running = Running::start(&mut command, setup.path(&format!("sidecar-{port}.log")));
        let sidecar = Sidecar { running, out, port };
        sidecar
            .running
            .wait_for("the sidecar to become ready", || sidecar.ready());
        sidecar
    }

    fn ready(&self) -> bool {
        matches!(http_get(self.port, "/readyz"), Some((200, _)))
    }

    /// The current `/metrics`, parsed (None while nothing answers).
    fn scrape(&self) -> Option<prometheus_parse::Scrape> {
        let (200, body) = http_get(self.port, "/metrics")? else {
            return None;
        };
        prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).ok()
    }

    /// `refreshes_total` over all results: refreshes finished so far.
    fn refreshes(&self) -> Option<f64> {
        self.scrape()
            .map(|scrape| metric_value(&scrape, "infisical_materializer_refreshes_total", None))
    }

    /// Waits until `more` refreshes have finished after this call. Whatever one refresh would
    /// do (write, notify, log in) has been done by the end of the next one.
    fn wait_refreshes(&self, more: u32, why: &str) {
        let start = self.refreshes().expect("/metrics answers");
        self.running
            .wait_for(&format!("{more} more refreshes ({why})"), || {
                self.refreshes()
                    .is_some_and(|now| now >= start + f64::from(more))
            });
    }

    fn data_target(&self) -> PathBuf {
        std::fs::read_link(self.out.join("..data")).expect("..data")
    }

    fn read(&self, key: &str) -> String {
        std::fs::read_to_string(self.out.join(key)).unwrap_or_default()
    }
}

/// The list requests the fake answered, in order.
fn list_requests(setup: &Setup) -> Vec<RecordedRequest> {
    setup
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.route == Route::ListSecrets)
        .collect()
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[test]
fn a_change_is_written_at_the_next_refresh_and_unchanged_sets_cost_a_304() {
    let setup = Setup::sample();
    let sidecar = Sidecar::start(&setup, &[]);
    let target = sidecar.data_target();

    // Several quiet refreshes: If-None-Match sent, 304 answered, nothing rewritten.
    sidecar.running.wait_for("three list requests", || {
        setup.fake.count(Route::ListSecrets) >= 3
    });
    let lists = list_requests(&setup);
    assert!(lists.len() >= 3, "{} list requests", lists.len());
    assert!(
        lists[1..]
            .iter()
            .all(|r| r.header("if-none-match").is_some()),
        "If-None-Match on every refresh"
    );
    assert!(
        lists[1..].iter().any(|r| r.status == 304),
        "the server answered 304"
    );
    assert_eq!(
        sidecar.data_target(),
        target,
        "unchanged secrets are not rewritten"
    );
    assert_eq!(setup.fake.logins(), 1, "no login per refresh");

    let before = setup.fake.count(Route::ListSecrets);
    setup
        .fake
        .set_secret("dev", "/", "API_KEY", "rotated-value");
    sidecar
        .running
        .wait_for("the rotated value in the file", || {
            sidecar.read("API_KEY") == "rotated-value"
        });
    assert_ne!(sidecar.data_target(), target);
    // One refresh more: it must send the new set's ETag and get a 304.
    let written = setup.fake.count(Route::ListSecrets);
    sidecar
        .running
        .wait_for("a list request after the write", || {
            setup.fake.count(Route::ListSecrets) > written
        });
    let statuses: Vec<u16> = list_requests(&setup)[before..]
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|&&status| status == 200).count(),
        1,
        "the first refresh after the change fetched the new set and later ones got 304s: \
         {statuses:?}\n{}",
        sidecar.running.logs()
    );
    assert!(
        statuses
            .iter()
            .all(|&status| status == 200 || status == 304),
        "{statuses:?}"
    );
}

#[test]
fn a_short_lived_token_is_renewed_not_replaced() {
    let world = World::sample().universal_auth_identity(
        "short-ttl-identity",
        "short-ttl-client",
        "short-ttl-secret",
        3,
        60,
    );
    let setup = Setup::with_world(world);
    let secret = setup.file("short-secret", "short-ttl-secret");
    let command = setup.universal_auth_with(
        "sidecar",
        &[
            ("--client-id", "short-ttl-client"),
            ("--client-secret-file", path_str(&secret)),
        ],
    );
    let sidecar = Sidecar::start_with(&setup, command, &[]);
    // A 3 s token lives through three renewals only if each comes before it expires.
    sidecar
        .running
        .wait_for("three renewals", || setup.fake.renewals() >= 3);
    assert_eq!(setup.fake.logins(), 1, "renewal, not re-login");
    let refused = setup
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.status == 401 || r.status == 403)
        .count();
    assert_eq!(
        refused,
        0,
        "no request was refused:\n{}",
        sidecar.running.logs()
    );
    assert!(sidecar.ready());
}

#[test]
fn a_token_error_leads_to_exactly_one_new_login() {
    let setup = Setup::sample();
    let sidecar = Sidecar::start(&setup, &[]);
    setup.fake.inject(Fault::token_expired(Route::ListSecrets));
    sidecar
        .running
        .wait_for("a second login", || setup.fake.logins() >= 2);
    sidecar.wait_refreshes(2, "a needless third login would have happened by then");
    assert_eq!(setup.fake.logins(), 2, "{}", sidecar.running.logs());
    assert!(sidecar.ready());
}

#[test]
fn an_outage_keeps_the_files_and_reports_staleness_then_recovers() {
    let setup = Setup::sample();
    let sidecar = Sidecar::start(&setup, &["--max-staleness", "2s"]);
    let before = common::snapshot(&sidecar.out);
    setup.fake.set_down(true);
    sidecar.running.wait_for("/readyz to report max-staleness", || {
        matches!(http_get(sidecar.port, "/readyz"), Some((503, body)) if body.contains("max-staleness"))
    });
    assert_eq!(
        common::snapshot(&sidecar.out),
        before,
        "files untouched during the outage"
    );
    assert!(
        matches!(http_get(sidecar.port, "/healthz"), Some((200, _))),
        "alive though not ready"
    );
    // The outage line says what goes wrong, what the sidecar keeps doing, and when it retries;
    // it gives up on nothing, so it never speaks of a deadline.
    let logs = sidecar.running.logs();
    let outage = logs
        .lines()
        .find(|line| line.contains("cannot reach Infisical"))
        .unwrap_or_else(|| panic!("no outage line in:\n{logs}"));
    assert!(
        outage.contains("keeping the last good files; retrying in"),
        "{outage}"
    );
    assert!(!logs.contains("gave up"), "{logs}");

    setup.fake.set_down(false);
    setup.fake.set_secret("dev", "/", "DB_PORT", "6543");
    sidecar
        .running
        .wait_for("the change made after the outage", || {
            sidecar.read("DB_PORT") == "6543"
        });
    sidecar
        .running
        .wait_for("ready again after the outage", || sidecar.ready());
}

#[test]
fn retry_after_delays_the_next_request() {
    let setup = Setup::sample();
    let sidecar = Sidecar::start(&setup, &[]);
    setup.fake.clear_requests();
    setup
        .fake
        .inject(Fault::rate_limited(Route::ListSecrets, Some(2)));
    sidecar
        .running
        .wait_for("the list request after the 429", || {
            setup.fake.count(Route::ListSecrets) >= 2
        });
    let lists = list_requests(&setup);
    assert_eq!(lists[0].status, 429);
    let gap = lists[1].at.duration_since(lists[0].at);
    assert!(gap >= Duration::from_secs(2), "next request after {gap:?}");
}

#[test]
fn the_rotated_kubernetes_token_is_used_at_the_next_login() {
    let setup = Setup::sample();
    let token_file = setup.file("sa-token", sample::K8S_VALID_JWT);
    let mut command = materializer();
    command.args([
        "sidecar",
        "--api-url",
        &setup.fake.url(),
        "--identity-id",
        sample::K8S_IDENTITY_ID,
        "--service-account-token-file",
        path_str(&token_file),
        "--project-id",
        sample::PROJECT_ID,
        "--env",
        "dev",
    ]);
    let sidecar = Sidecar::start_with(&setup, command, &[]);
    setup
        .fake
        .add_kubernetes_jwt("rotated-sa-jwt", "sidecar-ns", "app");
    // kubelet swaps projected files atomically; do the same.
    let staged = setup.file("sa-token.new", "rotated-sa-jwt\n");
    std::fs::rename(&staged, &token_file).unwrap();
    // Every login reads the file, so the next one must send the new token: nothing to wait for.
    setup.fake.inject(Fault::token_expired(Route::ListSecrets));
    sidecar
        .running
        .wait_for("a second login", || setup.fake.logins() >= 2);
    let logins: Vec<_> = setup
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.route == Route::KubernetesLogin)
        .collect();
    assert!(logins[0].body.contains(sample::K8S_VALID_JWT));
    assert!(
        logins[1].body.contains("rotated-sa-jwt"),
        "the new token was used: {}",
        logins[1].body
    );
}

#[test]
fn on_change_actions_fire_once_per_changed_refresh() {
    let setup = Setup::sample();
    // The "app": records every SIGHUP.
    let hups = setup.path("hups");
    let app_script = format!(
        "trap 'echo hup >> {}' HUP; echo $$ > {}; while :; do sleep 0.05; done",
        path_str(&hups),
        path_str(&setup.path("app.pid"))
    );
    let mut app = Command::new("sh")
        .args(["-c", &app_script])
        .spawn()
        .unwrap();
    assert!(
        eventually(PATIENCE, || setup.path("app.pid").exists()),
        "the app never wrote its pid file"
    );
    // The hook: run directly, no shell involved in how it is started.
    let hook_log = setup.path("hook-runs");
    let hook = setup.file(
        "hook.sh",
        &format!("#!/bin/sh\necho ran >> {}\n", path_str(&hook_log)),
    );
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // The reload endpoint: counts POSTs.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/reload", listener.local_addr().unwrap());
    let posts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let posts = std::sync::Arc::clone(&posts);
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for stream in listener.incoming().flatten() {
                let mut stream = stream;
                let mut buffer = [0u8; 4096];
                let n = stream.read(&mut buffer).unwrap_or(0);
                if String::from_utf8_lossy(&buffer[..n]).starts_with("POST /reload") {
                    posts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
    }
    let sidecar = Sidecar::start(
        &setup,
        &[
            "--on-change-signal",
            "SIGHUP",
            "--on-change-pid-file",
            path_str(&setup.path("app.pid")),
            "--on-change-exec",
            path_str(&hook),
            "--on-change-url",
            &url,
        ],
    );
    // The first write into an empty directory tells nobody; quiet refreshes neither.
    sidecar.wait_refreshes(2, "quiet refreshes");
    assert_eq!(
        (
            lines(&hups),
            lines(&hook_log),
            posts.load(std::sync::atomic::Ordering::SeqCst)
        ),
        (0, 0, 0)
    );

    for (round, value) in ["one", "two"].iter().enumerate() {
        // Two changes in one refresh cause one notification.
        setup.fake.set_secret("dev", "/", "API_KEY", value);
        setup.fake.set_secret("dev", "/", "DB_HOST", value);
        let expected = round + 1;
        let notified = || {
            (
                lines(&hups),
                lines(&hook_log),
                posts.load(std::sync::atomic::Ordering::SeqCst),
            )
        };
        sidecar
            .running
            .wait_for(&format!("notification round {expected}"), || {
                let (hups, hooks, posts) = notified();
                hups >= expected && hooks >= expected && posts >= expected
            });
        assert_eq!(
            notified(),
            (expected, expected, expected),
            "round {expected}: (hups, hooks, posts)"
        );
        sidecar.wait_refreshes(2, "unchanged refreshes after the change");
        assert_eq!(
            lines(&hups),
            expected,
            "no extra notification for unchanged refreshes"
        );
        assert_eq!(lines(&hook_log), expected);
        assert_eq!(posts.load(std::sync::atomic::Ordering::SeqCst), expected);
    }
    let _ = app.kill();
    let _ = app.wait();
}

#[test]
fn a_restart_over_different_files_notifies() {
    let setup = Setup::sample();
    let hook_log = setup.path("hook-runs");
    let hook = setup.file(
        "hook.sh",
        &format!("#!/bin/sh\necho ran >> {}\n", path_str(&hook_log)),
    );
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let first = Sidecar::start(&setup, &["--on-change-exec", path_str(&hook)]);
    drop(first);
    setup
        .fake
        .set_secret("dev", "/", "API_KEY", "changed-while-down");
    let second = Sidecar::start(&setup, &["--on-change-exec", path_str(&hook)]);
    second.running.wait_for(
        "the hook: the first write over different files notifies",
        || lines(&hook_log) >= 1,
    );
    assert_eq!(lines(&hook_log), 1, "{}", second.running.logs());
}

#[test]
fn metrics_parse_as_prometheus_text() {
    let setup = Setup::sample();
    let sidecar = Sidecar::start(&setup, &[]);
    // Until an unchanged refresh answered by a 304 shows up (the request is counted before the
    // refresh is).
    sidecar
        .running
        .wait_for("an unchanged refresh and a 304 in /metrics", || {
            sidecar.scrape().is_some_and(|scrape| {
                metric_value(
                    &scrape,
                    "infisical_materializer_refreshes_total",
                    Some(("result", "unchanged")),
                ) >= 1.0
                    && metric_value(
                        &scrape,
                        "infisical_materializer_requests_total",
                        Some(("status", "304")),
                    ) >= 1.0
            })
        });
    let (status, body) = http_get(sidecar.port, "/metrics").expect("metrics answer");
    assert_eq!(status, 200);
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned())))
        .expect("valid exposition format");
    let value = |name: &str, label: Option<(&str, &str)>| metric_value(&scrape, name, label);
    assert_eq!(
        value(
            "infisical_materializer_refreshes_total",
            Some(("result", "changed"))
        ),
        1.0
    );
    assert!(
        value(
            "infisical_materializer_refreshes_total",
            Some(("result", "unchanged"))
        ) >= 1.0
    );
    assert_eq!(value("infisical_materializer_secrets", None), 7.0);
    assert!(
        value(
            "infisical_materializer_requests_total",
            Some(("status", "304"))
        ) >= 1.0
    );
    assert!(
        value(
            "infisical_materializer_token_expiry_timestamp_seconds",
            None
        ) > 1.7e9
    );
    assert!(
        value(
            "infisical_materializer_last_success_timestamp_seconds",
            None
        ) > 1.7e9
    );
    assert_eq!(value("infisical_materializer_build_info", None), 1.0);
    assert!(
        !body.contains("db.internal.example") && !body.contains("API_KEY"),
        "no values or key names in metrics"
    );
}

#[test]
fn sigterm_stops_without_waiting_for_the_next_refresh_and_leaves_the_files() {
    let setup = Setup::sample();
    // The next refresh is an hour away: only a prompt stop ends within the wait below.
    let mut sidecar = Sidecar::start_every(&setup, setup.universal_auth("sidecar"), "1h", &[]);
    let before = common::snapshot(&sidecar.out);
    let lists = setup.fake.count(Route::ListSecrets);
    sidecar.running.signal(Signal::SIGTERM);
    let mut status = None;
    assert!(
        eventually(PATIENCE, || {
            status = sidecar.running.child.try_wait().unwrap();
            status.is_some()
        }),
        "still running {PATIENCE} s after SIGTERM\n{}",
        sidecar.running.logs()
    );
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    assert_eq!(
        setup.fake.count(Route::ListSecrets),
        lists,
        "no refresh on the way out"
    );
    assert_eq!(common::snapshot(&sidecar.out), before);
    assert!(!sidecar.running.is_running());
}

#[test]
fn a_failing_first_fetch_keeps_retrying_until_it_works() {
    let setup = Setup::sample();
    setup
        .fake
        .inject(Fault::status(Route::ListSecrets, 503).times(3));
    let sidecar = Sidecar::start(&setup, &[]);
    assert_eq!(sidecar.read("DB_HOST"), "db.internal.example");
    assert!(setup.fake.count(Route::ListSecrets) >= 4);
    // Before the first write the sidecar says it is not ready, not that it keeps any files.
    let logs = sidecar.running.logs();
    let failures: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("Infisical is failing (HTTP 503"))
        .collect();
    assert_eq!(failures.len(), 3, "{logs}");
    for line in failures {
        assert!(
            line.contains("not ready yet: nothing written; retrying in"),
            "{line}"
        );
    }
}
