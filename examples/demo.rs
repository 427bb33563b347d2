//! A tour with no Infisical account: starts the project's Infisical-compatible fake server on
//! 127.0.0.1 with sample secrets, runs the real binary in `init` mode into a temporary
//! directory, and prints what it wrote.
//!
//! Run it with `cargo run --example demo`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use fake_infisical::{sample, FakeInfisical, World};

fn main() -> ExitCode {
    let binary = match build_binary() {
        Ok(binary) => binary,
        Err(message) => {
            eprintln!("demo: {message}");
            return ExitCode::FAILURE;
        }
    };
    let fake = FakeInfisical::start(World::sample());
    let work = std::env::temp_dir().join(format!(
        "infisical-materializer-demo-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("create the demo directory");
    let secret_file = work.join("client-secret");
    std::fs::write(&secret_file, sample::UA_CLIENT_SECRET).expect("write the client secret file");
    let out_dir = work.join("secrets");
    let out_file = work.join("app.env");

    println!(
        "A fake Infisical is listening on {} with project {:?}:",
        fake.url(),
        sample::PROJECT_SLUG
    );
    println!(
        "  dev:/ holds DB_HOST, DB_PORT, DATABASE_URL (a ${{...}} reference), API_KEY, LOG_LEVEL"
    );
    println!("  and MULTILINE_CERT; it imports staging:/ (SHARED_TOKEN, and a LOG_LEVEL that dev overrides).\n");

    let args: Vec<String> = vec![
        "init".into(),
        "--api-url".into(),
        fake.url(),
        "--client-id".into(),
        sample::UA_CLIENT_ID.into(),
        "--client-secret-file".into(),
        display(&secret_file),
        "--project-slug".into(),
        sample::PROJECT_SLUG.into(),
        "--env".into(),
        "dev".into(),
        "--out-dir".into(),
        display(&out_dir),
        "--out-file".into(),
        display(&out_file),
        "--format".into(),
        "dotenv".into(),
    ];
    println!("$ infisical-materializer {}\n", args.join(" "));
    let status = Command::new(&binary)
        .args(&args)
        .status()
        .expect("run the binary");
    if !status.success() {
        eprintln!("demo: init failed ({status})");
        return ExitCode::FAILURE;
    }

    println!(
        "\n{}/ (one file per secret, swapped atomically through ..data):",
        display(&out_dir)
    );
    print_tree(&out_dir);
    println!("\n{} (all secrets, dotenv):", display(&out_file));
    print_mode(&out_file);
    println!(
        "\nsecrets/MULTILINE_CERT holds the exact value, newlines included, no newline added:"
    );
    let certificate =
        std::fs::read_to_string(out_dir.join("MULTILINE_CERT")).expect("read the certificate");
    println!("{certificate}");
    println!(
        "secrets/LOG_LEVEL = {:?} (the folder's own value wins over the import's)",
        std::fs::read_to_string(out_dir.join("LOG_LEVEL")).unwrap_or_default()
    );
    println!(
        "secrets/DATABASE_URL = {:?} (expanded by the server)",
        std::fs::read_to_string(out_dir.join("DATABASE_URL")).unwrap_or_default()
    );

    let before = std::fs::read_link(out_dir.join("..data")).ok();
    let again = Command::new(&binary)
        .args(&args)
        .status()
        .expect("run the binary");
    let after = std::fs::read_link(out_dir.join("..data")).ok();
    println!(
        "\nA second run with the same secrets ({again}) rewrote nothing: ..data still points to {:?}.",
        after.unwrap_or_default()
    );
    assert_eq!(before, std::fs::read_link(out_dir.join("..data")).ok());
    println!(
        "The demo files are in {} (delete them when done).",
        display(&work)
    );
    ExitCode::SUCCESS
}

/// `cargo run --example` does not build the binary, so build it (quietly, same profile).
fn build_binary() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--bin", "infisical-materializer"])
        .status()
        .map_err(|e| format!("cannot run cargo to build the binary: {e}"))?;
    if !status.success() {
        return Err("building the binary failed".into());
    }
    // target/<profile>/examples/demo → target/<profile>/infisical-materializer
    let example = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_dir = example
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot locate the target directory")?;
    Ok(profile_dir.join("infisical-materializer"))
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn print_tree(dir: &Path) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read the output directory")
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).unwrap_or_default();
            let real = std::fs::metadata(&path).expect("stat target");
            println!(
                "  {name:<16} -> {:<28} {:o} {:>4} bytes",
                target.display(),
                real.permissions().mode() & 0o7777,
                if real.is_dir() { 0 } else { real.size() }
            );
        } else {
            println!("  {name:<16} {:o}", meta.permissions().mode() & 0o7777);
        }
    }
}

fn print_mode(path: &Path) {
    let meta = std::fs::metadata(path).expect("stat");
    println!(
        "  mode {:o}, {} bytes",
        meta.permissions().mode() & 0o7777,
        meta.size()
    );
}
