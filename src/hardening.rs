//! Keeping the secrets in this process's memory private: the process is made non-dumpable at
//! start, and `--mlock` locks its memory so values are never written to swap.
//!
//! Non-dumpable means no core dump, no `ptrace` by processes of the same user, and `/proc/PID`
//! files such as `environ` and `mem` owned by root: an app running beside the wrapper as the
//! same user (`exec --watch`) cannot read the wrapper's credentials. A command started by
//! `exec` gets the usual dumpable flag back from `execve`: its memory is the app's business.

use nix::errno::Errno;
use nix::sys::mman::{mlockall, MlockAllFlags};
use nix::sys::resource::{getrlimit, Resource, RLIM_INFINITY};

use crate::error::{exit, Fatal};

/// Makes the process non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`). Called first thing, before any
/// credential is read.
pub fn forbid_dumps() -> Result<(), Errno> {
    nix::sys::prctl::set_dumpable(false)
}

/// Whether the process is dumpable (`prctl(PR_GET_DUMPABLE)`).
pub fn is_dumpable() -> Result<bool, Errno> {
    nix::sys::prctl::get_dumpable()
}

/// `--mlock` could not lock the process's memory (exit 64: the pod's settings must change).
#[derive(Debug, thiserror::Error)]
#[error(
    "--mlock: cannot lock the process's memory ({}): RLIMIT_MEMLOCK allows {limit}; give the \
     container the IPC_LOCK capability (securityContext.capabilities.add: [IPC_LOCK]) or raise \
     its memlock ulimit above the process's size, or drop --mlock",
    crate::sink::error::errno_text(*errno)
)]
pub struct MlockError {
    /// What `mlockall` said.
    pub errno: Errno,
    /// The soft and hard limit, in words.
    pub limit: String,
}

impl From<MlockError> for Fatal {
    fn from(error: MlockError) -> Self {
        Fatal::new(exit::USAGE, error.to_string())
    }
}

/// Locks every page the process has and will have (`mlockall(MCL_CURRENT | MCL_FUTURE)`), and
/// returns how much is locked now, in bytes (`VmLck`), when the kernel says.
pub fn lock_memory() -> Result<Option<u64>, MlockError> {
    mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE).map_err(|errno| {
        MlockError {
            errno,
            limit: memlock_limit(),
        }
    })?;
    Ok(locked_bytes())
}

/// `RLIMIT_MEMLOCK` in words: "64 KiB (hard limit 64 KiB)".
fn memlock_limit() -> String {
    let words = |limit: u64| {
        if limit == RLIM_INFINITY {
            "unlimited".to_owned()
        } else {
            format!("{} KiB", limit / 1024)
        }
    };
    match getrlimit(Resource::RLIMIT_MEMLOCK) {
        Ok((soft, hard)) => format!("{} (hard limit {})", words(soft), words(hard)),
        Err(errno) => format!(
            "an unknown amount ({})",
            crate::sink::error::errno_text(errno)
        ),
    }
}

/// `VmLck` of `/proc/self/status`, in bytes.
pub fn locked_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmLck:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_lock_names_the_limit_and_the_pod_setting() {
        let error = MlockError {
            errno: Errno::ENOMEM,
            limit: "64 KiB (hard limit 64 KiB)".into(),
        };
        let message = error.to_string();
        assert!(message.starts_with("--mlock: cannot lock"), "{message}");
        assert!(
            message.contains("RLIMIT_MEMLOCK allows 64 KiB (hard limit 64 KiB)"),
            "{message}"
        );
        assert!(message.contains("IPC_LOCK"), "{message}");
        assert!(message.contains("memlock ulimit"), "{message}");
        assert_eq!(Fatal::from(error).code, exit::USAGE);
    }

    #[test]
    fn the_limit_is_read() {
        let limit = memlock_limit();
        assert!(limit.contains("hard limit"), "{limit}");
    }
}
