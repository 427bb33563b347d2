//! Soak: a sidecar against the fake for `SOAK_SECONDS` (default 600), with a random fault
//! injected every few seconds and every secret changing together every `SOAK_CHANGE_SECONDS`
//! (default 30). Ignored by default; run it with
//!
//! ```sh
//! SOAK_SECONDS=600 cargo test --release --test soak -- --ignored --nocapture
//! ```
//!
//! It checks that a reader polling the directory (resolving `..data` once per read, as an app
//! re-reading its files does) never saw a torn or mixed version, that the sidecar's open file
//! descriptors and memory did not grow, and that every change was materialized in the end. It
//! prints its figures.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{path_str, world_with, Running, Setup};
use fake_infisical::{Fault, Route};

const KEYS: [&str; 5] = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO"];

fn seconds(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// The value of `key` in version `n`; long enough that a torn write would show.
fn value(n: usize, key: &str) -> String {
    format!("v{n}:{key}:{}", "x".repeat(512))
}

/// Reads one version as an app would: resolve `..data` once, read every key in it. Returns
/// the version number all keys agree on, or what was wrong.
fn read_version(dir: &Path) -> Result<Option<usize>, String> {
    let Ok(version) = std::fs::read_link(dir.join("..data")) else {
        return Ok(None);
    };
    let version_dir = dir.join(version);
    let mut seen = BTreeMap::new();
    for key in KEYS {
        let text = match std::fs::read_to_string(version_dir.join(key)) {
            Ok(text) => text,
            // The version was replaced and removed while being read: read again.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(format!("{key}: {error}")),
        };
        let n: usize = text
            .strip_prefix('v')
            .and_then(|rest| rest.split(':').next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("{key}: unreadable value of {} bytes", text.len()))?;
        if text != value(n, key) {
            return Err(format!("{key}: torn value ({} bytes)", text.len()));
        }
        seen.insert(key, n);
    }
    let versions: Vec<usize> = seen.values().copied().collect();
    if versions.windows(2).any(|w| w[0] != w[1]) {
        return Err(format!("mixed versions: {seen:?}"));
    }
    Ok(versions.first().copied())
}

/// VmRSS in KiB and the number of open file descriptors of `pid`.
fn sample(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    (rss, fds)
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

#[test]
#[ignore = "a long soak; run it with --ignored (see the module docs)"]
fn sidecar_soak_with_random_faults() {
    let duration = seconds("SOAK_SECONDS", 600);
    let change_every = seconds("SOAK_CHANGE_SECONDS", 30);
    let initial: Vec<(String, String)> =
        KEYS.iter().map(|k| (k.to_string(), value(0, k))).collect();
    let pairs: Vec<(&str, &str)> = initial
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let setup = Setup::with_world(world_with(&pairs));
    let out: PathBuf = setup.path("out");
    let running = Running::start(
        setup.universal_auth("sidecar").args([
            "--out-dir",
            path_str(&out),
            "--interval",
            "1s",
            "--request-timeout",
            "2s",
        ]),
        setup.path("soak.log"),
    );
    running.wait_for("the first write", || {
        matches!(read_version(&out), Ok(Some(0)))
    });
    let pid = running.child.id();

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (stop, reads, out) = (stop.clone(), reads.clone(), out.clone());
        std::thread::spawn(move || -> Result<(), String> {
            let mut last = 0;
            while !stop.load(Ordering::Relaxed) {
                if let Some(n) = read_version(&out)? {
                    if n < last {
                        return Err(format!("went back from version {last} to {n}"));
                    }
                    last = n;
                    reads.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(())
        })
    };

    let faults = [
        Fault::status(Route::ListSecrets, 500),
        Fault::status(Route::ListSecrets, 503),
        Fault::drop_connection(Route::ListSecrets),
        Fault::truncated_body(Route::ListSecrets),
        Fault::malformed_json(Route::ListSecrets),
        Fault::delay(Route::ListSecrets, Duration::from_secs(3)),
        Fault::rate_limited(Route::ListSecrets, Some(2)),
        Fault::token_expired(Route::ListSecrets),
        Fault::status(Route::Any, 502),
    ];
    let started = Instant::now();
    let mut version = 0;
    let mut next_change = started + change_every;
    let mut next_fault = started + Duration::from_secs(2);
    let mut injected = 0;
    let mut samples: Vec<(Duration, u64, usize)> = Vec::new();
    while started.elapsed() < duration {
        let now = Instant::now();
        if now >= next_change {
            version += 1;
            let values: Vec<(String, String)> = KEYS
                .iter()
                .map(|k| (k.to_string(), value(version, k)))
                .collect();
            let pairs: Vec<(&str, &str)> = values
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            setup.fake.set_secrets("dev", "/", &pairs);
            next_change = now + change_every;
        }
        if now >= next_fault {
            let fault = faults[fastrand::usize(..faults.len())].clone();
            setup.fake.inject(fault.times(fastrand::usize(1..4)));
            injected += 1;
            next_fault = now + Duration::from_millis(fastrand::u64(2000..5000));
        }
        let (rss, fds) = sample(pid);
        samples.push((started.elapsed(), rss, fds));
        std::thread::sleep(Duration::from_secs(1));
    }
    setup.fake.clear_faults();
    running.wait_for(
        &format!("the last version ({version}) materialized"),
        || matches!(read_version(&out), Ok(Some(n)) if n == version),
    );
    stop.store(true, Ordering::Relaxed);
    reader
        .join()
        .expect("reader thread")
        .unwrap_or_else(|e| panic!("the reader saw: {e}"));

    // Growth: the first and the last fifth of the run, compared by their medians.
    let fifth = (samples.len() / 5).max(1);
    let first_rss = median(samples[..fifth].iter().map(|s| s.1).collect());
    let last_rss = median(
        samples[samples.len() - fifth..]
            .iter()
            .map(|s| s.1)
            .collect(),
    );
    let first_fds = samples[..fifth].iter().map(|s| s.2).max().unwrap_or(0);
    let last_fds = samples[samples.len() - fifth..]
        .iter()
        .map(|s| s.2)
        .max()
        .unwrap_or(0);
    let peak_rss = samples.iter().map(|s| s.1).max().unwrap_or(0);
    println!(
        "soak: {} s, {version} changes, {injected} faults injected, {} consistent reads; \
         RSS median {first_rss} KiB first fifth -> {last_rss} KiB last fifth (peak {peak_rss} KiB); \
         open fds {first_fds} -> {last_fds}",
        duration.as_secs(),
        reads.load(Ordering::Relaxed)
    );
    assert!(
        version >= 1 || duration < change_every,
        "no change happened"
    );
    assert!(
        last_rss <= first_rss + 512,
        "memory grew from {first_rss} KiB to {last_rss} KiB"
    );
    assert!(
        last_fds <= first_fds + 2,
        "fds grew from {first_fds} to {last_fds}"
    );
}
