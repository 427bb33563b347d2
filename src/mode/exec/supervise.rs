//! `exec --watch`: runs COMMAND as a child, forwards the signals the wrapper gets, reaps every
//! zombie (the wrapper is often PID 1 in its container), restarts the child when the secrets
//! change, and exits with the child's status when it exits on its own.
//!
//! The child is started with `std::process::Command` and waited for with `waitpid(-1)` on
//! SIGCHLD, never through `tokio::process`, whose reaper would not collect orphans and would
//! race with ours for the child's status.

use std::future::poll_fn;
use std::io;
use std::os::unix::process::CommandExt;
use std::task::Poll;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::{sleep_until, Instant};

use super::environment::{ChildEnv, EnvRecipe};
use super::error::ExecError;
use super::program::Program;
use crate::refresh::{Engine, Event as RefreshEvent};
use crate::sink::Outputs;

/// The catchable signals passed on to the child.
const FORWARDED: [(Signal, fn() -> SignalKind); 7] = [
    (Signal::SIGTERM, SignalKind::terminate),
    (Signal::SIGINT, SignalKind::interrupt),
    (Signal::SIGHUP, SignalKind::hangup),
    (Signal::SIGQUIT, SignalKind::quit),
    (Signal::SIGUSR1, SignalKind::user_defined1),
    (Signal::SIGUSR2, SignalKind::user_defined2),
    (Signal::SIGWINCH, SignalKind::window_change),
];

/// Whether a forwarded signal asks everything to stop: no restart may follow it.
fn is_termination(signal: Signal) -> bool {
    matches!(signal, Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT)
}

/// How the child is stopped before a restart.
#[derive(Clone, Copy, Debug)]
pub struct Supervision {
    /// Sent first (`--restart-signal`).
    pub restart_signal: Signal,
    /// How long to wait before SIGKILL (`--grace`).
    pub grace: Duration,
}

/// Something the wrapper was told by the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// SIGCHLD: some child (ours or an adopted orphan) changed state.
    ChildChanged,
    /// A signal to forward.
    Signal(Signal),
}

/// The signal handlers of the wrapper. Install them before the child starts, so no SIGCHLD and
/// no TERM is lost.
pub struct Signals {
    child: tokio::signal::unix::Signal,
    forwarded: Vec<(Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    /// Installs handlers for SIGCHLD and every forwarded signal.
    pub fn install() -> io::Result<Self> {
        let child = signal(SignalKind::child())?;
        let forwarded = FORWARDED
            .iter()
            .map(|(sig, kind)| Ok((*sig, signal(kind())?)))
            .collect::<io::Result<_>>()?;
        Ok(Self { child, forwarded })
    }

    /// The next event. Signals of one kind that arrive together count once (the kernel merges
    /// them too), which is why SIGCHLD is answered with a reaping loop.
    pub async fn next(&mut self) -> Event {
        poll_fn(|cx| {
            if self.child.poll_recv(cx).is_ready() {
                return Poll::Ready(Event::ChildChanged);
            }
            for (sig, stream) in &mut self.forwarded {
                if stream.poll_recv(cx).is_ready() {
                    return Poll::Ready(Event::Signal(*sig));
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Waits for TERM, INT or QUIT while there is no child, reaping stray zombies meanwhile.
    pub async fn termination(&mut self) -> Signal {
        loop {
            match self.next().await {
                Event::Signal(sig) if is_termination(sig) => return sig,
                Event::Signal(_) => {}
                Event::ChildChanged => {
                    reap(None);
                }
            }
        }
    }
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildStatus {
    /// It exited with this code.
    Exited(i32),
    /// It was killed by this signal.
    Killed(Signal),
}

impl ChildStatus {
    /// The exit code a shell would report: the code, or 128+N for signal N.
    pub fn exit_code(self) -> u8 {
        match self {
            // Exit codes are 0..=255 by construction of the wait status.
            ChildStatus::Exited(code) => (code & 0xff) as u8,
            ChildStatus::Killed(sig) => 128u8.wrapping_add(sig as u8),
        }
    }
}

impl std::fmt::Display for ChildStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChildStatus::Exited(code) => write!(f, "exited with status {code}"),
            ChildStatus::Killed(sig) => write!(f, "was killed by {sig}"),
        }
    }
}

/// Collects every child that has ended (adopted orphans included) without blocking, and
/// returns the status of `ours` if it was among them.
pub fn reap(ours: Option<Pid>) -> Option<ChildStatus> {
    let mut found = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if Some(pid) == ours => {
                found = Some(ChildStatus::Exited(code));
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if Some(pid) == ours => {
                found = Some(ChildStatus::Killed(sig));
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return found,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(error) => {
                tracing::warn!("waitpid failed: {error}");
                return found;
            }
        }
    }
}

/// Starts the command with this environment; stdin, stdout and stderr are the wrapper's.
pub fn spawn(program: &Program, env: &ChildEnv) -> Result<Pid, ExecError> {
    let mut command = std::process::Command::new(program.path());
    command
        .arg0(program.name())
        .args(program.args())
        .env_clear()
        .envs(env.vars());
    match command.spawn() {
        // The std handle is dropped without waiting: `reap` collects the status.
        Ok(child) => i32::try_from(child.id())
            .map(Pid::from_raw)
            .map_err(|_| ExecError::PidOutOfRange),
        Err(error) => Err(match error.raw_os_error() {
            Some(code) => ExecError::launch(program.name(), program.path(), Errno::from_raw(code)),
            None => ExecError::Unreadable {
                name: program.name().to_owned(),
                source: error,
            },
        }),
    }
}

/// The child being supervised.
struct Supervisor<'a> {
    program: &'a Program,
    signals: Signals,
    settings: Supervision,
    pid: Pid,
    /// Set once TERM, INT or QUIT was forwarded: from then on nothing is restarted.
    stopping: bool,
}

impl Supervisor<'_> {
    /// Handles one event; returns the child's status once it has ended.
    fn handle(&mut self, event: Event) -> Option<ChildStatus> {
        match event {
            Event::ChildChanged => reap(Some(self.pid)),
            Event::Signal(sig) => {
                self.forward(sig);
                if is_termination(sig) && !self.stopping {
                    self.stopping = true;
                    tracing::info!(
                        "{sig} received and passed on; waiting for {} to exit",
                        self.program.name()
                    );
                }
                None
            }
        }
    }

    fn forward(&self, sig: Signal) {
        match kill(self.pid, sig) {
            // Gone already: its status is on the way.
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(error) => tracing::warn!("cannot pass {sig} on to the command: {error}"),
        }
    }

    /// Stops the child with the restart signal, then SIGKILL after the grace period.
    async fn stop(&mut self) -> ChildStatus {
        self.forward(self.settings.restart_signal);
        let deadline = Instant::now() + self.settings.grace;
        let mut killed = false;
        loop {
            tokio::select! {
                event = self.signals.next() => {
                    if let Some(status) = self.handle(event) {
                        return status;
                    }
                }
                () = sleep_until(deadline), if !killed => {
                    tracing::warn!(
                        grace = %humantime::format_duration(self.settings.grace),
                        "{} did not stop after {}; sending SIGKILL",
                        self.program.name(),
                        self.settings.restart_signal
                    );
                    self.forward(Signal::SIGKILL);
                    killed = true;
                }
            }
        }
    }

    fn exited(&self, status: ChildStatus) -> u8 {
        tracing::info!(
            exit_code = status.exit_code(),
            "{} {status}; exiting with its status",
            self.program.name()
        );
        status.exit_code()
    }
}

/// Runs the command under supervision until it exits on its own (or after a forwarded TERM);
/// returns the exit code for the wrapper. The refresh engine runs beside it; an outage never
/// stops a running child, and a changed secret set restarts it.
pub async fn run(
    program: &Program,
    recipe: &EnvRecipe,
    templates: &mut Outputs,
    first: ChildEnv,
    engine: Engine,
    signals: Signals,
    settings: Supervision,
) -> Result<u8, ExecError> {
    tracing::info!(
        secrets = first.secret_count(),
        command = program.name(),
        "starting the command"
    );
    let mut current = first.secrets_hash();
    let mut supervisor = Supervisor {
        program,
        signals,
        settings,
        pid: spawn(program, &first)?,
        stopping: false,
    };
    drop(first);
    let mut refresh = engine.spawn();
    loop {
        let (secrets, ack) = tokio::select! {
            event = supervisor.signals.next() => {
                if let Some(status) = supervisor.handle(event) {
                    return Ok(supervisor.exited(status));
                }
                continue;
            }
            // Once TERM, INT or QUIT was passed on, nothing is restarted.
            event = refresh.next(), if !supervisor.stopping => match event {
                RefreshEvent::Changed(secrets, ack) => (secrets, ack),
                RefreshEvent::Unchanged | RefreshEvent::Failed | RefreshEvent::TokenExpiry(_) => continue,
            },
        };
        // The templates first: a restarted command must find its config files current.
        let prepared = match templates.write(&secrets) {
            Ok(_) => recipe
                .build(secrets)
                .map_err(|e| (e.exit_code(), e.to_string())),
            Err(error) => Err((error.exit_code(), error.to_string())),
        };
        let env = match prepared {
            Ok(env) => env,
            Err((exit_code, message)) => {
                tracing::error!(
                    exit_code,
                    "{message}; {} keeps running with the previous secrets",
                    program.name()
                );
                ack.applied(false);
                continue;
            }
        };
        if env.secrets_hash() == current {
            // Only secrets shadowed by --preserve-env changed: the child would see nothing new.
            ack.applied(true);
            continue;
        }
        tracing::info!(
            signal = %settings.restart_signal,
            "secrets changed; stopping {} to restart it",
            program.name()
        );
        let status = supervisor.stop().await;
        if supervisor.stopping {
            return Ok(supervisor.exited(status));
        }
        tracing::info!(
            secrets = env.secret_count(),
            command = program.name(),
            previous = %status,
            "restarting the command"
        );
        supervisor.pid = spawn(program, &env)?;
        current = env.secrets_hash();
        ack.applied(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_shell_exit_codes() {
        assert_eq!(ChildStatus::Exited(0).exit_code(), 0);
        assert_eq!(ChildStatus::Exited(42).exit_code(), 42);
        assert_eq!(ChildStatus::Killed(Signal::SIGKILL).exit_code(), 137);
        assert_eq!(ChildStatus::Killed(Signal::SIGTERM).exit_code(), 143);
    }

    #[test]
    fn only_stopping_signals_end_restarts() {
        assert!(is_termination(Signal::SIGTERM));
        assert!(!is_termination(Signal::SIGHUP));
        assert!(!is_termination(Signal::SIGWINCH));
    }
}
