//! The `flashsale` command line. Each subcommand lives in `cmd/<name>.rs`.

use std::process::ExitCode;

use clap::Parser;

mod cmd;

fn main() -> ExitCode {
    // Usage errors exit with 2 (clap), failures with 1.
    let cli = cmd::Cli::parse();
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
