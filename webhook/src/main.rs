//! The `infisical-materializer-webhook` binary: parse the flags, run.

use std::process::ExitCode;

use clap::Parser;
use infisical_materializer_webhook::cli::Cli;

fn main() -> ExitCode {
    match Cli::try_parse() {
        Ok(cli) => infisical_materializer_webhook::run(cli),
        Err(error) => {
            let _ = error.print();
            if error.use_stderr() {
                ExitCode::from(infisical_materializer_webhook::EXIT_CONFIG)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
