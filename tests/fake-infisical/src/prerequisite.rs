//! The one way a test says that something it needs is missing (root, a built binary, a tool).
//!
//! Outside CI the test prints why it did nothing and returns; with `CI=true` (where everything
//! must be in place) it fails, so a green CI run never hides work that was skipped.
//!
//! ```no_run
//! use fake_infisical::prerequisite;
//!
//! if !prerequisite::is_root() {
//!     return prerequisite::missing("mounting a tmpfs needs root");
//! }
//! ```

/// Whether this run is CI's (`CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value.eq_ignore_ascii_case("true"))
}

/// Whether the test runs as root (mounts, chown, chroot, PID namespaces).
pub fn is_root() -> bool {
    // The effective uid is the second field of `Uid:`; /proc keeps this crate free of libc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Reports a missing prerequisite: panics under `CI=true`, otherwise prints
/// `skipped: REASON` on stderr. Call it as `return prerequisite::missing(…)`.
#[track_caller]
pub fn missing(reason: impl std::fmt::Display) {
    if in_ci() {
        panic!("CI=true and a prerequisite is missing: {reason}");
    }
    eprintln!("skipped (prerequisite missing): {reason}");
}
