//! Command-line parsing and the shared flags; one module per subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod build;
mod check;
mod close;
mod gate;
mod keygen;
mod new;
mod open;
pub mod publish;
mod rehearse;
mod serve;
mod status;
mod switching;

/// Run e-commerce flash sales: static item pages on a CDN, a tiny toggle
/// script that switches the buy button on at the start, and order gates.
///
/// A sale is described in site.toml. Typical use: `flashsale new my-sale`,
/// edit, `flashsale serve` to preview, `flashsale check`, then publish.
#[derive(Parser, Debug)]
#[command(
    name = "flashsale",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// The sale's configuration file.
    #[arg(
        long,
        short = 'c',
        global = true,
        value_name = "PATH",
        default_value = "site.toml"
    )]
    pub config: PathBuf,
    /// Print only errors.
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more detail (every file written, every request served).
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
}

impl Global {
    /// Progress and summaries, unless --quiet.
    pub fn say(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            println!("{}", msg.as_ref());
        }
    }

    /// Details, only with --verbose.
    pub fn detail(&self, msg: impl AsRef<str>) {
        if self.verbose {
            println!("{}", msg.as_ref());
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    New(new::NewArgs),
    Build(build::BuildArgs),
    Check(check::CheckArgs),
    Serve(serve::ServeArgs),
    Publish(publish::PublishArgs),
    Keygen(keygen::KeygenArgs),
    Open(open::OpenArgs),
    Close(close::CloseArgs),
    Status(status::StatusArgs),
    Gate(gate::GateArgs),
    Rehearse(rehearse::RehearseArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::New(a) => new::run(&cli.global, a),
        Command::Build(a) => build::run(&cli.global, a),
        Command::Check(a) => check::run(&cli.global, a),
        Command::Serve(a) => serve::run(&cli.global, a),
        Command::Publish(a) => publish::run(&cli.global, a),
        Command::Keygen(a) => keygen::run(&cli.global, a),
        Command::Open(a) => open::run(&cli.global, a),
        Command::Close(a) => close::run(&cli.global, a),
        Command::Status(a) => status::run(&cli.global, a),
        Command::Gate(a) => gate::run(&cli.global, a),
        Command::Rehearse(a) => rehearse::run(&cli.global, a),
    }
}
