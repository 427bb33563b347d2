//! `bench-fake`: the project's fake Infisical serving a generated project, for `bench/report.sh`.
//!
//! ```text
//! bench-fake [--listen ADDR] [--secrets N] [--secrets-b N] [--value-bytes B]
//!            [--ttl-identity SECONDS] [--no-etag]
//! ```
//!
//! Serves `World::sample()` plus environments `bench` (N secrets `S00000`… of B bytes) and
//! `bench-b` (`--secrets-b` secrets `B00000`…), prints `KEY=value` lines like the standalone fake
//! (URL, CLIENT_ID, CLIENT_SECRET, PROJECT_ID, and TTL_CLIENT_ID / TTL_CLIENT_SECRET of an
//! identity whose token TTL and max TTL are `--ttl-identity` seconds), then `READY`.
//!
//! Commands, one per line on stdin, each acknowledged on stdout:
//! - `rotate` changes one value in `bench` (a new version: the list ETag changes) → `ROTATED n`
//! - `rotate-on-list on|off`: after every list request, change one value, so every refresh is
//!   a changed one → `OK`
//! - `etag on|off`: answer `If-None-Match` with 304 or ignore it (the naive pattern) → `OK`
//! - `stats` → `STATS list=… login=… renew=… other=… all=…` (requests since the start)

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fake_infisical::{sample, FakeInfisical, Route, World};

const TTL_IDENTITY_ID: &str = "0b3e5a1c-7d2f-4e6a-9c8b-1a2b3c4d5e6f";
const TTL_CLIENT_ID: &str = "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910";
const TTL_CLIENT_SECRET: &str = "e5f7a9b1c3d5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7";

fn usage() -> ! {
    eprintln!(
        "usage: bench-fake [--listen ADDR] [--secrets N] [--secrets-b N] [--value-bytes B] \
         [--ttl-identity SECONDS] [--no-etag]"
    );
    std::process::exit(2);
}

fn value(prefix: &str, i: usize, generation: u64, bytes: usize) -> String {
    let mut v = format!("{prefix}{i:06}-g{generation:08}-");
    while v.len() < bytes {
        v.push((b'a' + (v.len() % 26) as u8) as char);
    }
    v.truncate(bytes);
    v
}

fn main() {
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 8080));
    let (mut n, mut n_b, mut bytes, mut ttl, mut etag) =
        (100usize, 0usize, 100usize, 3600u64, true);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut next = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--listen" => listen = next().parse().unwrap_or_else(|_| usage()),
            "--secrets" => n = next().parse().unwrap_or_else(|_| usage()),
            "--secrets-b" => n_b = next().parse().unwrap_or_else(|_| usage()),
            "--value-bytes" => bytes = next().parse().unwrap_or_else(|_| usage()),
            "--ttl-identity" => ttl = next().parse().unwrap_or_else(|_| usage()),
            "--no-etag" => etag = false,
            _ => usage(),
        }
    }
    let mut world = World::sample()
        .project(
            sample::PROJECT_ID,
            sample::PROJECT_SLUG,
            &["bench", "bench-b"],
        )
        .universal_auth_identity(TTL_IDENTITY_ID, TTL_CLIENT_ID, TTL_CLIENT_SECRET, ttl, ttl);
    for i in 0..n {
        world = world.secret("bench", "/", &format!("S{i:05}"), &value("S", i, 0, bytes));
    }
    for i in 0..n_b {
        world = world.secret(
            "bench-b",
            "/",
            &format!("B{i:05}"),
            &value("B", i, 0, bytes),
        );
    }
    let fake = Arc::new(FakeInfisical::start_on(world, listen).unwrap_or_else(|e| {
        eprintln!("bench-fake: cannot listen on {listen}: {e}");
        std::process::exit(1);
    }));
    fake.set_etag_enabled(etag);

    let generation = Arc::new(AtomicU64::new(0));
    let rotate = {
        let (fake, generation) = (fake.clone(), generation.clone());
        move || {
            let g = generation.fetch_add(1, Ordering::SeqCst) + 1;
            if n > 0 {
                let i = (g as usize) % n;
                fake.set_secret("bench", "/", &format!("S{i:05}"), &value("S", i, g, bytes));
            }
            g
        }
    };
    let on_list = Arc::new(AtomicBool::new(false));
    {
        let (fake, on_list, rotate) = (fake.clone(), on_list.clone(), rotate.clone());
        std::thread::spawn(move || {
            let mut seen = 0;
            loop {
                std::thread::sleep(Duration::from_millis(2));
                if !on_list.load(Ordering::SeqCst) {
                    continue;
                }
                let lists = fake.count(Route::ListSecrets);
                if lists != seen {
                    seen = lists;
                    rotate();
                }
            }
        });
    }

    let mut out = std::io::stdout().lock();
    let lines = [
        ("URL", fake.url()),
        ("CLIENT_ID", sample::UA_CLIENT_ID.to_string()),
        ("CLIENT_SECRET", sample::UA_CLIENT_SECRET.to_string()),
        ("TTL_CLIENT_ID", TTL_CLIENT_ID.to_string()),
        ("TTL_CLIENT_SECRET", TTL_CLIENT_SECRET.to_string()),
        ("PROJECT_ID", sample::PROJECT_ID.to_string()),
        ("PROJECT_SLUG", sample::PROJECT_SLUG.to_string()),
    ];
    for (key, value) in lines {
        let _ = writeln!(out, "{key}={value}");
    }
    let _ = writeln!(out, "READY");
    let _ = out.flush();
    drop(out);

    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let reply = match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["rotate"] => format!("ROTATED {}", rotate()),
            ["rotate-on-list", s] => {
                on_list.store(*s == "on", Ordering::SeqCst);
                "OK".into()
            }
            ["etag", s] => {
                fake.set_etag_enabled(*s == "on");
                "OK".into()
            }
            ["stats"] => {
                let (list, all) = (fake.count(Route::ListSecrets), fake.count(Route::Any));
                let (login, renew) = (
                    fake.count(Route::UniversalAuthLogin),
                    fake.count(Route::Renew),
                );
                format!(
                    "STATS list={list} login={login} renew={renew} other={} all={all}",
                    all - list - login - renew
                )
            }
            [] => continue,
            _ => format!("ERROR unknown command {line:?}"),
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{reply}");
        let _ = out.flush();
    }
    // stdin closed: keep serving until killed (a background run without a control channel).
    loop {
        std::thread::park();
    }
}
