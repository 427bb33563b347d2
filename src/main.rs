//! The `infisical-materializer` binary: parse arguments, read the configuration file, set up
//! logging, run.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use infisical_materializer::cli::{Cli, Explicit};
use infisical_materializer::config::ConfigFile;
use infisical_materializer::error::exit;
use infisical_materializer::hardening;

/// glibc's default mmap threshold rises each time a large block is freed, after which the next
/// large answers (a 5 MiB list of 10,000 secrets) come from the heap and stay resident after
/// they are freed. A fixed threshold gives every block above it back to the system at once.
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

fn main() -> ExitCode {
    // SAFETY: mallopt only sets an allocator parameter; it takes no pointer, runs before any
    // other thread exists, and a refusal (0) leaves glibc's default in place.
    let _ = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
    // Before anything is read: no core dump, no ptrace and no /proc/PID/environ for processes
    // of the same user (the app beside `exec --watch`).
    let dumps_forbidden = hardening::forbid_dumps();
    let parsed = Cli::command().try_get_matches().and_then(|matches| {
        Ok((
            Cli::from_arg_matches(&matches)?,
            Explicit::from_matches(&matches),
        ))
    });
    let (cli, explicit) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            // clap's whole message: what is wrong, the usage, and its advice (a similar flag,
            // the possible values). --help and --version print to stdout and succeed.
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // The file comes before logging: it may set the log format and level.
    let file = match cli.config.as_deref().map(ConfigFile::load).transpose() {
        Ok(file) => file,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(error.exit_code());
        }
    };
    let (format, level) =
        match infisical_materializer::config::log_settings(&cli, &explicit, file.as_ref()) {
            Ok(settings) => settings,
            Err(error) => {
                eprintln!("{error}");
                return ExitCode::from(error.exit_code());
            }
        };
    infisical_materializer::logging::init(format, &level);
    if let Err(errno) = dumps_forbidden {
        tracing::warn!("cannot make the process non-dumpable (prctl PR_SET_DUMPABLE: {errno})");
    }
    infisical_materializer::run(cli, explicit, file)
}
