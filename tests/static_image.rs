//! The release image is `FROM scratch` with nothing but the static binary at
//! `/infisical-materializer`, run as uid 65532. Docker is not needed to prove that works: this
//! test runs exactly what the image holds. It copies the static release binary ALONE into an
//! empty directory, adds only what Kubernetes would mount (an `/etc/hosts`, the CA file and the
//! credential files, an output directory), `chroot`s into it as 65532:65532 and runs `init`
//! against the fake Infisical over TLS by a host name. So name resolution, TLS with `--ca-cert`
//! and writing the files must work with no shell, no libc, no CA store and no `/etc/passwd`.
//! The exec-wrapper pattern is proven the same way: `install` into a shared directory, then the
//! copy runs `exec -- COMMAND`. The webhook binary, which the image holds too, is started alone
//! in the same kind of root.
//!
//! The binary is the one `make static` (or `.ci/run`) builds:
//! `RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target x86_64-unknown-linux-gnu`.
//! This test never builds it (an LTO build takes minutes). It also needs root for `chroot` and
//! `mount`. When any of that is missing it says so through `fake_infisical::prerequisite`: the
//! test is skipped with the reason, except in CI (`CI=true`), where it fails.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use fake_infisical::{prerequisite, sample, FakeInfisical, Route, World};

const TARGET: &str = "x86_64-unknown-linux-gnu";
const BINARY: &str = "infisical-materializer";
/// The image's user (distroless "nonroot").
const UID: u32 = 65532;
/// The host name the binary reaches the fake by, through the chroot's `/etc/hosts` only.
const HOST: &str = "infisical.test";

/// Where the static release build puts the binary (honouring CARGO_TARGET_DIR).
fn static_binary() -> Option<PathBuf> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut target_dirs = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        target_dirs.push(manifest_dir.join(dir));
    }
    target_dirs.push(manifest_dir.join("target"));
    target_dirs
        .into_iter()
        .map(|dir| dir.join(TARGET).join("release").join(BINARY))
        .find(|path| path.is_file())
}

/// Warns when the binary is older than the sources it was built from (a stale `make static`).
fn warn_if_stale(binary: &Path) {
    fn newest(path: &Path) -> Option<std::time::SystemTime> {
        let meta = std::fs::metadata(path).ok()?;
        if meta.is_dir() {
            std::fs::read_dir(path)
                .ok()?
                .filter_map(|e| newest(&e.ok()?.path()))
                .max()
        } else {
            meta.modified().ok()
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = [
        root.join("src"),
        root.join("Cargo.toml"),
        root.join("Cargo.lock"),
    ];
    let built = std::fs::metadata(binary).and_then(|m| m.modified()).ok();
    let changed = sources.iter().filter_map(|p| newest(p)).max();
    if let (Some(built), Some(changed)) = (built, changed) {
        if changed > built {
            eprintln!(
                "note: {} is older than the sources; run `make static` to test the current code",
                binary.display()
            );
        }
    }
}

/// `chroot` from PATH or the usual sbin directories (root's PATH is not always the test's).
fn chroot_program() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join("chroot"))
        .find(|candidate| candidate.is_file())
}

/// The image's root file system, as Kubernetes would present it: the binary, plus mounts.
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new(binary: &Path) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        // The chroot's "/" must be searchable by the unprivileged user.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = Self { dir };
        let copy = root.path("/infisical-materializer");
        std::fs::copy(binary, &copy).expect("copy the binary");
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        root
    }

    /// The host path of `inside` (an absolute path in the chroot).
    fn path(&self, inside: &str) -> PathBuf {
        self.dir.path().join(inside.trim_start_matches('/'))
    }

    /// Writes a file (parents created 0755), owned by `owner` with `mode`.
    fn file(&self, inside: &str, content: &str, owner: u32, mode: u32) {
        let path = self.path(inside);
        let parent = path.parent().unwrap();
        std::fs::create_dir_all(parent).unwrap();
        self.open_up(parent);
        std::fs::write(&path, content).unwrap();
        std::os::unix::fs::chown(&path, Some(owner), Some(owner)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// An empty directory owned by the image's user, like an emptyDir volume.
    fn writable_dir(&self, inside: &str) {
        let path = self.path(inside);
        std::fs::create_dir_all(&path).unwrap();
        self.open_up(path.parent().unwrap());
        std::os::unix::fs::chown(&path, Some(UID), Some(UID)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o750)).unwrap();
    }

    /// Makes every directory from the root down to `dir` searchable (0755).
    fn open_up(&self, dir: &Path) {
        let mut current = Some(dir);
        while let Some(d) = current {
            if !d.starts_with(self.dir.path()) {
                break;
            }
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
            current = d.parent();
        }
    }

    /// Every path in the root, relative, sorted: to show that nothing else is there.
    fn listing(&self) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                out.push(path.strip_prefix(base).unwrap().display().to_string());
                if path.is_dir() && !path.is_symlink() {
                    walk(base, &path, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), self.dir.path(), &mut out);
        out.sort();
        out
    }

    /// Runs the binary inside the root as UID:UID with an empty environment.
    fn run(&self, chroot: &Path, args: &[&str]) -> Output {
        self.run_program(chroot, "/infisical-materializer", args)
    }

    /// Runs `program` (a path inside the root) as UID:UID with an empty environment.
    fn run_program(&self, chroot: &Path, program: &str, args: &[&str]) -> Output {
        let mut child = Command::new(chroot)
            .arg(format!("--userspec={UID}:{UID}"))
            .arg(self.dir.path())
            .arg(program)
            .args(args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chroot");
        // Bounded: a hang (e.g. a name lookup waiting on DNS) fails the test instead of CI.
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().expect("wait").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let output = child.wait_with_output().expect("collect output");
                panic!(
                    "the chrooted binary did not finish within 60 s\n--- stderr\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("collect output")
    }
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Everything the test needs, or None (reported through `prerequisite::missing`) when
/// something is missing.
fn prerequisites() -> Option<(PathBuf, PathBuf)> {
    let Some(binary) = static_binary() else {
        prerequisite::missing(format!(
            "no static release binary at target/{TARGET}/release/{BINARY}; build it with `make static` \
             (RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target {TARGET})"
        ));
        return None;
    };
    if !prerequisite::is_root() {
        prerequisite::missing(
            "chroot needs root; run the test as root to prove the scratch image works",
        );
        return None;
    }
    let Some(chroot) = chroot_program() else {
        prerequisite::missing("no chroot program (coreutils) on this machine");
        return None;
    };
    warn_if_stale(&binary);
    Some((binary, chroot))
}

/// A root with /etc/hosts, the CA, the credentials and an output directory.
fn prepared_root(binary: &Path, fake: &FakeInfisical) -> Root {
    let root = Root::new(binary);
    root.file(
        "/etc/hosts",
        &format!("127.0.0.1\tlocalhost {HOST}\n"),
        0,
        0o644,
    );
    let ca = fake.ca_pem().expect("a TLS fake has a CA");
    root.file("/etc/infisical/ca.pem", &ca, 0, 0o644);
    // Like a Secret volume with fsGroup: readable by the image's user only.
    root.file(
        "/var/run/infisical/clientId",
        sample::UA_CLIENT_ID,
        UID,
        0o400,
    );
    root.file(
        "/var/run/infisical/clientSecret",
        &format!("{}\n", sample::UA_CLIENT_SECRET),
        UID,
        0o400,
    );
    root.writable_dir("/run/secrets");
    root
}

fn init_args(url: &str) -> Vec<String> {
    [
        "init",
        "--api-url",
        url,
        "--client-id-file",
        "/var/run/infisical/clientId",
        "--client-secret-file",
        "/var/run/infisical/clientSecret",
        "--project-slug",
        sample::PROJECT_SLUG,
        "--env",
        "dev",
        "--out-dir",
        "/run/secrets/app",
        "--out-file",
        "/run/secrets/app.json",
        "--format",
        "json",
        "--retry-deadline",
        "3s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn the_binary_alone_fetches_over_tls_by_host_name_as_nonroot() {
    let Some((binary, chroot)) = prerequisites() else {
        return;
    };
    let fake = FakeInfisical::start_tls(World::sample(), &[HOST]);
    let root = prepared_root(&binary, &fake);

    let version = root.run(&chroot, &["--version"]);
    assert!(
        version.status.success(),
        "the binary does not start alone in an empty root:\n{}",
        describe(&version)
    );
    assert!(
        String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")),
        "{}",
        describe(&version)
    );

    let before = root.listing();
    let url = format!("https://{HOST}:{}", fake.port());
    let args = init_args(&url);
    let ca_args = ["--ca-cert", "/etc/infisical/ca.pem"];
    let all: Vec<&str> = args.iter().map(String::as_str).chain(ca_args).collect();
    let output = root.run(&chroot, &all);
    assert_eq!(
        output.status.code(),
        Some(0),
        "init inside the scratch root failed:\n{}",
        describe(&output)
    );

    // The files, byte for byte, written by the unprivileged user.
    let dir = root.path("/run/secrets/app");
    let read =
        |key: &str| std::fs::read_to_string(dir.join(key)).unwrap_or_else(|e| panic!("{key}: {e}"));
    assert_eq!(read("API_KEY"), "dev-api-key-123");
    assert_eq!(
        read("DATABASE_URL"),
        "postgres://db.internal.example:5432/app"
    );
    assert_eq!(
        read("MULTILINE_CERT"),
        "-----BEGIN TEST-----\nline1\nline2\n-----END TEST-----"
    );
    assert_eq!(read("SHARED_TOKEN"), "staging-shared-value");
    assert_eq!(
        std::fs::metadata(dir.join("API_KEY")).unwrap().uid(),
        UID,
        "written as the image's user"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.path("/run/secrets/app.json")).unwrap())
            .unwrap();
    assert_eq!(json["DB_PORT"], "5432");
    assert_eq!(json.as_object().map(|o| o.len()), Some(7), "{json}");
    assert_eq!(
        std::fs::metadata(root.path("/run/secrets/app.json"))
            .unwrap()
            .uid(),
        UID
    );

    // Nothing appeared outside the output directory (no cache, no temp files, no home).
    let after: Vec<String> = root
        .listing()
        .into_iter()
        .filter(|p| !p.starts_with("run/secrets/"))
        .collect();
    assert_eq!(
        after, before,
        "the binary wrote outside its output directory"
    );

    // It really reached the server by that name, over TLS.
    assert!(fake.logins() >= 1, "no login reached the fake");
    assert!(
        fake.count(Route::ListSecrets) >= 1,
        "no list request reached the fake"
    );
    let hosts: Vec<String> = fake
        .requests()
        .iter()
        .filter_map(|r| r.header("host").map(str::to_owned))
        .collect();
    assert!(
        hosts.iter().all(|h| h.starts_with(HOST)),
        "requests should name {HOST}: {hosts:?}"
    );
}

#[test]
fn without_the_ca_or_the_hosts_entry_it_fails_cleanly() {
    let Some((binary, chroot)) = prerequisites() else {
        return;
    };
    let fake = FakeInfisical::start_tls(World::sample(), &[HOST]);
    let root = prepared_root(&binary, &fake);

    // No --ca-cert: the built-in roots do not trust the fake's CA, so TLS must refuse.
    let url = format!("https://{HOST}:{}", fake.port());
    let args = init_args(&url);
    let all: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = root.run(&chroot, &all);
    // 69: Infisical unavailable (a TLS failure is reported as such, naming the fix).
    assert_eq!(
        output.status.code(),
        Some(69),
        "TLS without the CA must fail:\n{}",
        describe(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("certificate") && stderr.contains("--ca-cert"),
        "{stderr}"
    );
    assert!(
        !root.path("/run/secrets/app").exists(),
        "nothing is written on failure"
    );
    assert_eq!(
        fake.count(Route::ListSecrets),
        0,
        "no secrets were listed without trusting the server"
    );

    // A name missing from /etc/hosts does not resolve: /etc/hosts is what made the first test work.
    let url = format!("https://not-in-hosts.test:{}", fake.port());
    let args = init_args(&url);
    let all: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .chain(["--ca-cert", "/etc/infisical/ca.pem"])
        .collect();
    let output = root.run(&chroot, &all);
    assert_eq!(
        output.status.code(),
        Some(69),
        "an unknown host must fail:\n{}",
        describe(&output)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("not-in-hosts.test"),
        "{}",
        describe(&output)
    );
    assert!(
        !root.path("/run/secrets/app").exists(),
        "nothing is written on failure"
    );
}

/// `/proc` mounted in the root, as in every container (unmounted on drop).
struct ProcMount(PathBuf);

impl ProcMount {
    /// Mounts it, or says why it cannot.
    fn new(root: &Root) -> Result<Self, String> {
        let path = root.path("/proc");
        std::fs::create_dir_all(&path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "proc", "proc"])
            .arg(&path)
            .status();
        match status {
            Ok(status) if status.success() => Ok(Self(path)),
            Ok(status) => Err(format!("`mount -t proc` in the test root failed: {status}")),
            Err(error) => Err(format!("`mount` cannot be run: {error}")),
        }
    }
}

impl Drop for ProcMount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.0).status();
        if !unmounted.is_ok_and(|s| s.success()) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

#[test]
fn the_exec_wrapper_pattern_works_from_the_scratch_image() {
    // examples/kubernetes/exec-wrapper.yaml: an init container from the image runs `install`
    // into a shared volume, and the app container runs that copy as `exec -- COMMAND`.
    let Some((binary, chroot)) = prerequisites() else {
        return;
    };
    let fake = FakeInfisical::start_tls(World::sample(), &[HOST]);
    let root = prepared_root(&binary, &fake);
    root.writable_dir("/shared");
    // `install` copies /proc/self/exe; Kubernetes always mounts /proc in a container.
    let _proc = match ProcMount::new(&root) {
        Ok(mounted) => mounted,
        Err(reason) => return prerequisite::missing(reason),
    };

    let output = root.run(
        &chroot,
        &["install", "--to", "/shared/infisical-materializer"],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "install failed:\n{}",
        describe(&output)
    );
    let copy = root.path("/shared/infisical-materializer");
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(&binary).unwrap(),
        "the copy is the binary"
    );
    let meta = std::fs::metadata(&copy).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
    assert_eq!(meta.uid(), UID);

    // The copy fetches, then replaces itself with the command (here: the copy itself).
    let url = format!("https://{HOST}:{}", fake.port());
    let args = [
        "exec",
        "--api-url",
        &url,
        "--ca-cert",
        "/etc/infisical/ca.pem",
        "--client-id-file",
        "/var/run/infisical/clientId",
        "--client-secret-file",
        "/var/run/infisical/clientSecret",
        "--project-slug",
        sample::PROJECT_SLUG,
        "--env",
        "dev",
        "--",
        "/shared/infisical-materializer",
        "--version",
    ];
    let output = root.run_program(&chroot, "/shared/infisical-materializer", &args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "exec failed:\n{}",
        describe(&output)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(env!("CARGO_PKG_VERSION")),
        "the command ran:\n{}",
        describe(&output)
    );
    assert!(
        fake.count(Route::ListSecrets) >= 1,
        "exec fetched before running the command"
    );
}

/// The image's final stage also holds the webhook (deploy/webhook/ runs it as `command`): it
/// too must start alone in the empty root, as 65532, and fail cleanly without its certificate.
#[test]
fn the_webhook_binary_starts_alone_in_the_scratch_root() {
    let Some((binary, chroot)) = prerequisites() else {
        return;
    };
    const WEBHOOK: &str = "infisical-materializer-webhook";
    let Some(webhook) = binary
        .parent()
        .map(|dir| dir.join(WEBHOOK))
        .filter(|p| p.is_file())
    else {
        return prerequisite::missing(format!(
            "no static release webhook binary beside {}; build it with \
             RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target {TARGET} -p {WEBHOOK}",
            binary.display()
        ));
    };
    let root = Root::new(&binary);
    let inside = format!("/{WEBHOOK}");
    std::fs::copy(&webhook, root.path(&inside)).expect("copy the webhook");
    std::fs::set_permissions(root.path(&inside), std::fs::Permissions::from_mode(0o755)).unwrap();

    let version = root.run_program(&chroot, &inside, &["--version"]);
    assert!(version.status.success(), "{}", describe(&version));
    assert!(
        String::from_utf8_lossy(&version.stdout).contains(WEBHOOK),
        "{}",
        describe(&version)
    );
    let no_cert = root.run_program(
        &chroot,
        &inside,
        &[
            "--tls-cert-file=/etc/webhook/tls/tls.crt",
            "--tls-key-file=/etc/webhook/tls/tls.key",
        ],
    );
    assert_eq!(no_cert.status.code(), Some(64), "{}", describe(&no_cert));
    assert!(
        String::from_utf8_lossy(&no_cert.stderr).contains("/etc/webhook/tls/tls.crt"),
        "{}",
        describe(&no_cert)
    );
}
