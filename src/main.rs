//! The `infisical-materializer` binary: parse arguments, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use infisical_materializer::cli::Cli;
use infisical_materializer::error::exit;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
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
    infisical_materializer::logging::init(cli.log_format, &cli.log_level);
    infisical_materializer::run(cli)
}
