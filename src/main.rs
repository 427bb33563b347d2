//! The `infisical-materializer` binary: parse arguments, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use infisical_materializer::cli::Cli;
use infisical_materializer::error::exit;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            // --help and --version.
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            // One line, with the documented usage exit code (clap's own would be 2).
            let rendered = error.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!("{first} (see --help)");
            return ExitCode::from(exit::USAGE);
        }
    };
    infisical_materializer::logging::init(cli.log_format, &cli.log_level);
    infisical_materializer::run(cli)
}
