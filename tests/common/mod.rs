//! Helpers shared by the integration tests: run the real binary against the fake Infisical.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use fake_infisical::{sample, FakeInfisical, World};

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_infisical-materializer")
}

/// A command for the binary with a clean environment (only PATH and a trace-level log filter
/// unless overridden), so a developer's own INFISICAL_* variables cannot leak into a test.
pub fn materializer() -> Command {
    let mut command = Command::new(binary());
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    command
}

/// The finished run, with text output.
pub struct Finished {
    /// Exit code (None when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error (the logs).
    pub stderr: String,
}

impl From<Output> for Finished {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Finished {
    /// Asserts the exit code, showing the logs when it differs.
    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(expected),
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The last line of stderr: the one-line failure message.
    pub fn error_line(&self) -> &str {
        self.stderr.lines().last().unwrap_or("")
    }
}

/// Runs the command to completion.
pub fn run(command: &mut Command) -> Finished {
    command.output().expect("the binary runs").into()
}

/// A started fake with the sample world plus a temp dir holding credential files.
pub struct Setup {
    /// The fake Infisical.
    pub fake: FakeInfisical,
    /// Scratch space (credential files, outputs).
    pub dir: tempfile::TempDir,
}

impl Setup {
    /// The sample world (mirrors the recorded server's seed data).
    pub fn sample() -> Self {
        Self::with_world(World::sample())
    }

    /// A custom world.
    pub fn with_world(world: World) -> Self {
        Self {
            fake: FakeInfisical::start(world),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Writes a file in the scratch dir and returns its path.
    pub fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).expect("write file");
        path
    }

    /// A path in the scratch dir (not created).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `MODE` + universal-auth arguments for the sample identity, project id, env dev.
    pub fn universal_auth(&self, mode: &str) -> Command {
        self.universal_auth_with(mode, &[])
    }

    /// Like [`Setup::universal_auth`], with some of those flags given other values.
    pub fn universal_auth_with(&self, mode: &str, overrides: &[(&str, &str)]) -> Command {
        let secret = self.file("client-secret", &format!("{}\n", sample::UA_CLIENT_SECRET));
        let url = self.fake.url();
        let defaults = [
            ("--api-url", url.as_str()),
            ("--client-id", sample::UA_CLIENT_ID),
            ("--client-secret-file", path_str(&secret)),
            ("--project-id", sample::PROJECT_ID),
            ("--env", "dev"),
        ];
        let mut command = materializer();
        command.arg(mode);
        for (flag, value) in defaults {
            let value = overrides
                .iter()
                .find(|(f, _)| *f == flag)
                .map_or(value, |(_, v)| *v);
            command.args([flag, value]);
        }
        for (flag, value) in overrides {
            if !defaults.iter().any(|(f, _)| f == flag) {
                command.args([*flag, *value]);
            }
        }
        command
    }
}

/// A path as &str (test paths are UTF-8).
pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A world with the sample project and universal-auth identity but only the given dev:/ secrets.
pub fn world_with(secrets: &[(&str, &str)]) -> World {
    let placed: Vec<_> = secrets
        .iter()
        .map(|(key, value)| ("dev", "/", *key, *value))
        .collect();
    world_of(&placed)
}

/// A world with the sample project and universal-auth identity and exactly these secrets, as
/// (environment, folder, key, value).
pub fn world_of(secrets: &[(&str, &str, &str, &str)]) -> World {
    let mut world = World::empty()
        .project(
            sample::PROJECT_ID,
            sample::PROJECT_SLUG,
            &["dev", "staging", "prod"],
        )
        .universal_auth_identity(
            sample::UA_IDENTITY_ID,
            sample::UA_CLIENT_ID,
            sample::UA_CLIENT_SECRET,
            2_592_000,
            2_592_000,
        );
    for (env, path, key, value) in secrets {
        world = world.secret(env, path, key, value);
    }
    world
}

/// The sum of the samples of metric `name` in a scrape (with `label` only, if given).
pub fn metric_value(
    scrape: &prometheus_parse::Scrape,
    name: &str,
    label: Option<(&str, &str)>,
) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .sum()
}

/// Everything observable about a directory: names, link targets, modes, inodes and contents.
pub fn snapshot(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut lines = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if meta.file_type().is_symlink() {
            lines.push(format!(
                "{name} -> {}",
                std::fs::read_link(&path).unwrap().display()
            ));
        } else if meta.is_dir() {
            lines.push(format!(
                "{name}/ ino={} mode={:o}",
                meta.ino(),
                meta.mode() & 0o7777
            ));
            for inner in snapshot(&path) {
                lines.push(format!("{name}/{inner}"));
            }
        } else {
            let content = std::fs::read(&path).expect("read");
            lines.push(format!(
                "{name} ino={} mode={:o} {:?}",
                meta.ino(),
                meta.mode() & 0o7777,
                content
            ));
        }
    }
    lines
}

/// A free loopback port (bound then released; fine for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A plain HTTP/1.0 GET; returns (status, body), or None when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// How long a test waits for something that takes a few refresh intervals: long enough that
/// only a broken binary reaches it, not a loaded machine.
pub const PATIENCE: u64 = 60;

/// Polls `condition` every 50 ms for up to `seconds`; true when it held.
pub fn eventually(seconds: u64, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    condition()
}

/// A long-running process whose stderr goes to a file (read it with `logs`); killed on drop.
pub struct Running {
    /// The process.
    pub child: std::process::Child,
    log: PathBuf,
}

impl Running {
    /// Starts `command` with stderr captured to `log`.
    pub fn start(command: &mut Command, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).expect("log file");
        let child = command
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start the binary");
        Self { child, log }
    }

    /// Everything logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal)
            .expect("signal");
    }

    /// Waits up to [`PATIENCE`] for `condition`; if it never holds, fails saying what was awaited
    /// and showing the logs.
    #[track_caller]
    pub fn wait_for(&self, what: &str, condition: impl FnMut() -> bool) {
        assert!(
            eventually(PATIENCE, condition),
            "gave up after {PATIENCE} s waiting for {what}\n--- logs\n{}",
            self.logs()
        );
    }

    /// Still running?
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `path` lies on a memory-backed file system (tmpfs or ramfs).
pub fn in_memory(path: &Path) -> bool {
    use nix::sys::statfs::{statfs, TMPFS_MAGIC};
    /// ramfs's magic number (`linux/magic.h`); nix names only tmpfs's.
    const RAMFS_MAGIC: u32 = 0x8584_58f6;
    let kind = statfs(path).expect("statfs").filesystem_type();
    kind == TMPFS_MAGIC || kind.0 as u32 == RAMFS_MAGIC
}

/// A small tmpfs mounted on a test's directory (needs root and `mount`); unmounted on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts it on `dir` with extra mount options (`""`, `",ro"`), or says why it cannot.
    pub fn mount(dir: &Path, options: &str) -> Result<Self, String> {
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size=1m{options}"), "tmpfs"])
            .arg(dir)
            .stdin(Stdio::null())
            .output();
        match output {
            Ok(output) if output.status.success() => Ok(Self(dir.to_owned())),
            Ok(output) => Err(format!(
                "`mount -t tmpfs` failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )),
            Err(error) => Err(format!("`mount` cannot be run: {error}")),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.0).status();
        if !unmounted.is_ok_and(|status| status.success()) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}
