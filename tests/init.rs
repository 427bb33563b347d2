//! `init` end to end: the atomic directory, single files, invalid keys, outages, tmpfs.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{path_str, run, snapshot, world_with, Setup, Tmpfs};
use fake_infisical::{prerequisite, Fault, Route};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn writes_one_file_per_secret_through_data_links() {
    let setup = Setup::sample();
    let out = setup.path("secrets");
    run(setup
        .universal_auth("init")
        .args(["--out-dir", path_str(&out)]))
    .assert_code(0);

    let data_target = std::fs::read_link(out.join("..data")).expect("..data is a symlink");
    assert!(
        data_target.to_string_lossy().starts_with(".."),
        "{data_target:?}"
    );
    for key in [
        "API_KEY",
        "DATABASE_URL",
        "DB_HOST",
        "DB_PORT",
        "LOG_LEVEL",
        "MULTILINE_CERT",
        "SHARED_TOKEN",
    ] {
        assert_eq!(
            std::fs::read_link(out.join(key)).unwrap(),
            Path::new("..data").join(key)
        );
        let mode = std::fs::metadata(out.join(key))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777;
        assert_eq!(mode, 0o440, "{key}");
    }
    // Exact bytes: no added newline, references expanded, local beats import, import included.
    assert_eq!(
        read(&out.join("MULTILINE_CERT")),
        "-----BEGIN TEST-----\nline1\nline2\n-----END TEST-----"
    );
    assert_eq!(
        read(&out.join("DATABASE_URL")),
        "postgres://db.internal.example:5432/app"
    );
    assert_eq!(read(&out.join("LOG_LEVEL")), "info");
    assert_eq!(read(&out.join("SHARED_TOKEN")), "staging-shared-value");
}

#[test]
fn the_last_import_wins_among_imports() {
    let world = world_with(&[("OWN", "local")])
        .secret("staging", "/", "SHARED", "from-staging")
        .secret("staging", "/", "OWN", "import-loses")
        .secret("prod", "/", "SHARED", "from-prod")
        .import("dev", "/", "staging", "/")
        .import("dev", "/", "prod", "/");
    let setup = Setup::with_world(world);
    let out = setup.path("secrets");
    run(setup
        .universal_auth("init")
        .args(["--out-dir", path_str(&out)]))
    .assert_code(0);
    assert_eq!(read(&out.join("SHARED")), "from-prod");
    assert_eq!(read(&out.join("OWN")), "local");
}

#[test]
fn same_secrets_change_nothing_and_changes_swap_data() {
    let setup = Setup::sample();
    let out = setup.path("secrets");
    let init = || {
        run(setup
            .universal_auth("init")
            .args(["--out-dir", path_str(&out)]))
        .assert_code(0)
        .code
    };
    init();
    let before = snapshot(&out);
    init();
    assert_eq!(
        snapshot(&out),
        before,
        "identical content means no write at all"
    );

    let old_target = std::fs::read_link(out.join("..data")).unwrap();
    setup.fake.set_secret("dev", "/", "API_KEY", "rotated");
    setup.fake.delete_secret("dev", "/", "DB_PORT");
    init();
    let new_target = std::fs::read_link(out.join("..data")).unwrap();
    assert_ne!(old_target, new_target, "..data swapped");
    assert!(
        !out.join(&old_target).exists(),
        "the old version is removed"
    );
    assert_eq!(read(&out.join("API_KEY")), "rotated");
    assert!(
        std::fs::symlink_metadata(out.join("DB_PORT")).is_err(),
        "a deleted secret's link disappears"
    );
}

#[test]
fn nothing_else_in_the_directory_is_touched() {
    let setup = Setup::sample();
    let out = setup.path("secrets");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("unrelated.txt"), "keep me").unwrap();
    run(setup
        .universal_auth("init")
        .args(["--out-dir", path_str(&out)]))
    .assert_code(0);
    assert_eq!(read(&out.join("unrelated.txt")), "keep me");
}

#[test]
fn single_file_formats_and_modes() {
    let setup = Setup::sample();
    for (format, probe) in [
        ("dotenv", "DB_HOST="),
        ("shell", "export DB_HOST='db.internal.example'"),
        ("json", "\"DB_HOST\": \"db.internal.example\""),
        ("yaml", "\"DB_HOST\": \"db.internal.example\""),
    ] {
        let file = setup.path(&format!("secrets.{format}"));
        run(setup.universal_auth("init").args([
            "--out-file",
            path_str(&file),
            "--format",
            format,
            "--file-mode",
            "0400",
        ]))
        .assert_code(0);
        let text = read(&file);
        assert!(text.contains(probe), "{format}: {text}");
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o7777,
            0o400
        );
    }
    let json: serde_json::Value = serde_json::from_str(&read(&setup.path("secrets.json"))).unwrap();
    assert_eq!(
        json["MULTILINE_CERT"],
        "-----BEGIN TEST-----\nline1\nline2\n-----END TEST-----"
    );
}

#[test]
fn dangerous_keys_never_escape_the_directory() {
    let world = world_with(&[
        ("GOOD", "ok"),
        ("../evil", "x"),
        ("..data", "y"),
        ("a/b", "z"),
    ]);
    let setup = Setup::with_world(world);
    let out = setup.path("secrets");
    let done = run(setup
        .universal_auth("init")
        .args(["--out-dir", path_str(&out)]));
    done.assert_code(65);
    assert!(
        done.error_line().contains("--invalid-keys skip"),
        "{}",
        done.error_line()
    );
    assert!(
        !out.exists() || std::fs::read_dir(&out).unwrap().count() == 0,
        "fail changes nothing"
    );
    assert!(!setup.path("evil").exists());

    run(setup
        .universal_auth("init")
        .args(["--out-dir", path_str(&out), "--invalid-keys", "skip"]))
    .assert_code(0);
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".."))
        .collect();
    assert_eq!(names, ["GOOD"]);
    assert!(!setup.path("evil").exists());
    assert!(!out.join("a").exists());
}

#[test]
fn a_key_longer_than_a_file_name_can_be_is_refused_or_skipped() {
    let long_key = format!("LONG_{}", "K".repeat(295));
    assert_eq!(long_key.len(), 300);
    let setup = Setup::with_world(world_with(&[("GOOD", "ok"), (&long_key, "x")]));
    let out = setup.path("secrets");

    let done = run(setup
        .universal_auth("init")
        .args(["--out-dir", path_str(&out)]));
    done.assert_code(65);
    let line = done.error_line();
    assert!(line.contains("\"LONG_KKK"), "{line}");
    assert!(line.contains("longer than 255 bytes"), "{line}");
    assert!(line.contains("(300 bytes)"), "{line}");
    assert!(
        !line.contains(&long_key),
        "the key is cut short for display: {line}"
    );

    let done = run(setup.universal_auth("init").args([
        "--out-dir",
        path_str(&out),
        "--invalid-keys",
        "skip",
    ]));
    done.assert_code(0);
    assert!(
        done.stderr.contains("skipping secret key \"LONG_KKK"),
        "{}",
        done.stderr
    );
    assert_eq!(read(&out.join("GOOD")), "ok");
}

#[test]
fn an_answer_larger_than_max_response_size_is_refused_and_changes_nothing() {
    // 18 MiB of values: more than the default limit of 16 MiB.
    let big = "v".repeat(9 << 20);
    let setup = Setup::with_world(world_with(&[
        ("BIG_1", &big),
        ("BIG_2", &big),
        ("SMALL", "s"),
    ]));
    let out = setup.path("secrets");
    let started = std::time::Instant::now();
    let done = run(setup.universal_auth("init").args([
        "--out-dir",
        path_str(&out),
        "--retry-deadline",
        "1m",
    ]));
    done.assert_code(65);
    let line = done.error_line();
    assert!(
        line.contains("larger than --max-response-size 16 MiB")
            && line.contains("raise --max-response-size"),
        "{line}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "not retried"
    );
    assert!(!out.exists(), "nothing written");

    // A smaller limit by variable, with the same refusal.
    let done = run(setup
        .universal_auth("init")
        .args(["--out-dir", path_str(&out)])
        .env("INFISICAL_MAX_RESPONSE_SIZE", "1MiB"));
    done.assert_code(65);
    assert!(
        done.error_line().contains("--max-response-size 1 MiB"),
        "{}",
        done.error_line()
    );

    // Raised, the same answer is written.
    run(setup.universal_auth("init").args([
        "--out-dir",
        path_str(&out),
        "--max-response-size",
        "64MiB",
    ]))
    .assert_code(0);
    assert_eq!(std::fs::metadata(out.join("BIG_1")).unwrap().len(), 9 << 20);
}

#[test]
fn an_outage_past_the_deadline_leaves_the_previous_files() {
    let setup = Setup::sample();
    let out = setup.path("secrets");
    run(setup
        .universal_auth("init")
        .args(["--out-dir", path_str(&out)]))
    .assert_code(0);
    let before = snapshot(&out);
    setup.fake.set_down(true);
    let done = run(setup.universal_auth("init").args([
        "--out-dir",
        path_str(&out),
        "--retry-deadline",
        "1s",
    ]));
    done.assert_code(69);
    assert!(
        done.error_line().contains("--retry-deadline"),
        "{}",
        done.error_line()
    );
    assert_eq!(snapshot(&out), before);

    setup.fake.set_down(false);
    setup
        .fake
        .inject(Fault::status(Route::ListSecrets, 502).times(usize::MAX));
    run(setup
        .universal_auth("init")
        .args(["--out-dir", path_str(&out), "--retry-deadline", "1s"]))
    .assert_code(69);
    assert_eq!(snapshot(&out), before);
}

#[test]
fn output_errors_exit_73() {
    let setup = Setup::sample();
    let blocker = setup.file("not-a-dir", "");
    let done = run(setup
        .universal_auth("init")
        .args(["--out-dir", &format!("{}/sub", path_str(&blocker))]));
    done.assert_code(73);
}

#[test]
fn require_tmpfs_refuses_a_directory_on_disk() {
    let setup = Setup::sample();
    // /tmp may itself be a tmpfs; use a directory under the crate's target dir instead.
    let on_disk = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    if common::in_memory(on_disk.path()) {
        return prerequisite::missing(format!(
            "a directory on disk: {} is on tmpfs",
            env!("CARGO_TARGET_TMPDIR")
        ));
    }
    let done = run(setup.universal_auth("init").args([
        "--out-dir",
        path_str(on_disk.path()),
        "--require-tmpfs",
    ]));
    done.assert_code(73);
    assert!(done.error_line().contains("tmpfs"), "{}", done.error_line());
}

#[test]
fn require_tmpfs_accepts_a_tmpfs_mount() {
    if !prerequisite::is_root() {
        return prerequisite::missing("mounting a tmpfs needs root");
    }
    let setup = Setup::sample();
    let memory = setup.path("in-memory");
    std::fs::create_dir(&memory).unwrap();
    let _mounted = match Tmpfs::mount(&memory, "") {
        Ok(mounted) => mounted,
        Err(reason) => return prerequisite::missing(reason),
    };
    let done =
        run(setup
            .universal_auth("init")
            .args(["--out-dir", path_str(&memory), "--require-tmpfs"]));
    done.assert_code(0);
    assert_eq!(read(&memory.join("DB_HOST")), "db.internal.example");
}

/// A reader never sees a torn file or a mix of versions while other processes keep updating.
#[test]
fn readers_never_see_torn_files_or_mixed_versions() {
    let keys: Vec<String> = (0..8).map(|i| format!("KEY_{i}")).collect();
    let value =
        |version: usize, key: &str| format!("v{version}-{key}-{}", "x".repeat(version % 7 * 100));
    let initial: Vec<(String, String)> = keys.iter().map(|k| (k.clone(), value(0, k))).collect();
    let pairs: Vec<(&str, &str)> = initial
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let setup = Setup::with_world(world_with(&pairs));
    let out = setup.path("secrets");
    run(setup
        .universal_auth("init")
        .args(["--out-dir", path_str(&out)]))
    .assert_code(0);

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, out, keys) = (Arc::clone(&stop), out.clone(), keys.clone());
        std::thread::spawn(move || {
            let mut checks = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Through ..data resolved once: one consistent version.
                if let Ok(target) = std::fs::read_link(out.join("..data")) {
                    let base = out.join(target);
                    let versions: Option<Vec<String>> = keys
                        .iter()
                        .map(|k| std::fs::read_to_string(base.join(k)).ok())
                        .collect();
                    // The version may be removed under us after a swap; that is not a mix.
                    if let Some(values) = versions {
                        let tags: Vec<&str> = values
                            .iter()
                            .map(|v| v.split('-').next().unwrap())
                            .collect();
                        assert!(
                            tags.iter().all(|t| *t == tags[0]),
                            "mixed versions: {tags:?}"
                        );
                        checks += 1;
                    }
                }
                // Through DIR/KEY: never torn.
                for key in &keys {
                    let text =
                        std::fs::read_to_string(out.join(key)).expect("DIR/KEY always readable");
                    let version: usize = text[1..text.find('-').unwrap()].parse().unwrap();
                    assert_eq!(
                        text,
                        format!("v{version}-{key}-{}", "x".repeat(version % 7 * 100)),
                        "torn file"
                    );
                }
            }
            checks
        })
    };
    for version in 1..=25 {
        for key in &keys {
            setup.fake.set_secret("dev", "/", key, &value(version, key));
        }
        run(setup
            .universal_auth("init")
            .args(["--out-dir", path_str(&out)]))
        .assert_code(0);
    }
    stop.store(true, Ordering::Relaxed);
    let checks = reader
        .join()
        .expect("reader saw only whole, consistent versions");
    assert!(checks > 0);
    assert_eq!(read(&out.join("KEY_3")), value(25, "KEY_3"));
}
