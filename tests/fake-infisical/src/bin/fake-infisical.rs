//! Standalone fake Infisical server for manual runs, demos and benchmarks.
//!
//! `fake-infisical [--listen 127.0.0.1:8080] [--v4]` serves `World::sample()` and prints the
//! URL and sample credentials as `KEY=value` lines, then serves until killed.

use std::io::Write;
use std::net::SocketAddr;

use fake_infisical::{sample, FakeInfisical, World};

fn usage() -> ! {
    eprintln!("usage: fake-infisical [--listen ADDR:PORT] [--v4]");
    std::process::exit(2);
}

fn main() {
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080));
    let mut v4 = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                let value = args.next().unwrap_or_else(|| usage());
                listen = value.parse().unwrap_or_else(|e| {
                    eprintln!("fake-infisical: bad --listen address {value:?}: {e}");
                    std::process::exit(2);
                });
            }
            "--v4" => v4 = true,
            "-h" | "--help" => usage(),
            other => {
                eprintln!("fake-infisical: unknown argument {other:?}");
                usage();
            }
        }
    }
    let fake = match FakeInfisical::start_on(World::sample().v4(v4), listen) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("fake-infisical: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    let token = fake.issue_token(sample::TOKEN_IDENTITY_ID);
    let lines = [
        ("URL", fake.url()),
        ("CLIENT_ID", sample::UA_CLIENT_ID.to_string()),
        ("CLIENT_SECRET", sample::UA_CLIENT_SECRET.to_string()),
        ("PROJECT_ID", sample::PROJECT_ID.to_string()),
        ("PROJECT_SLUG", sample::PROJECT_SLUG.to_string()),
        (
            "RENEWABLE_CLIENT_ID",
            sample::RENEWABLE_CLIENT_ID.to_string(),
        ),
        (
            "RENEWABLE_CLIENT_SECRET",
            sample::RENEWABLE_CLIENT_SECRET.to_string(),
        ),
        ("K8S_IDENTITY_ID", sample::K8S_IDENTITY_ID.to_string()),
        ("K8S_JWT", sample::K8S_VALID_JWT.to_string()),
        ("TOKEN_IDENTITY_ID", sample::TOKEN_IDENTITY_ID.to_string()),
        ("ACCESS_TOKEN", token),
        ("V4", v4.to_string()),
    ];
    let mut out = std::io::stdout().lock();
    for (key, value) in lines {
        let _ = writeln!(out, "{key}={value}");
    }
    let _ = out.flush();
    drop(out);
    loop {
        std::thread::park();
    }
}
