//! The command line: one file per subcommand, each turning its flags into
//! library calls and drawing progress and reports. Flags shared by several
//! subcommands live in `prelude`; what `open` and `close` share (their flags,
//! the countdown, the report) in `switch`. No sale logic lives here.
//!
//! The doc comments on flags are `--help` text, written for a terminal:
//! `[gate]` is a site.toml section and `<sale>` a placeholder there, not
//! rustdoc links or HTML.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

mod audit;
mod build;
mod capacity;
mod check;
mod close;
mod draw;
mod edge;
mod gate;
mod infra;
mod keygen;
mod ledger;
mod new;
mod open;
mod prelude;
mod publish;
mod rehearse;
mod serve;
mod status;
mod switch;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use prelude::Global;

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
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    New(new::NewArgs),
    Build(build::BuildArgs),
    Check(check::CheckArgs),
    Serve(serve::ServeArgs),
    Publish(publish::PublishArgs),
    Keygen(keygen::KeygenArgs),
    Open(open::OpenArgs),
    Close(close::CloseArgs),
    Status(status::StatusArgs),
    Draw(draw::DrawArgs),
    Edge(edge::EdgeArgs),
    Gate(gate::GateArgs),
    Infra(infra::InfraArgs),
    Ledger(ledger::LedgerArgs),
    Rehearse(rehearse::RehearseArgs),
    Capacity(capacity::CapacityArgs),
    Watch(watch::WatchArgs),
    Audit(audit::AuditArgs),
}

/// Set (to anything but `0`), flashsale only parses its command line and
/// exits 0, or 2 with clap's usage error: how CI checks the flashsale lines
/// of a workflow, a crontab or a unit file before the day they run.
pub const CHECK_ARGS_ENV: &str = "FLASHSALE_CHECK_ARGS";

/// The program: parses the command line, runs the subcommand, and exits 0 on
/// success, 1 on failure (the error on stderr) and 2 on a usage error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // A CI pipeline's or a unit file's command lines, checked ahead of sale
    // day: parse them (flags, values, required arguments), run nothing.
    if std::env::var_os(CHECK_ARGS_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
        println!("{CHECK_ARGS_ENV}: the command line parses; nothing was run");
        return ExitCode::SUCCESS;
    }
    let g = &cli.global;
    let result = match cli.command {
        Command::New(a) => new::run(g, a),
        Command::Build(a) => build::run(g, a),
        Command::Check(a) => check::run(g, a),
        Command::Serve(a) => serve::run(g, a),
        Command::Publish(a) => publish::run(g, a),
        Command::Keygen(a) => keygen::run(g, a),
        Command::Open(a) => open::run(g, a),
        Command::Close(a) => close::run(g, a),
        Command::Status(a) => status::run(g, a),
        Command::Draw(a) => draw::run(g, a),
        Command::Edge(a) => edge::run(g, a),
        Command::Gate(a) => gate::run(g, a),
        Command::Infra(a) => infra::run(g, a),
        Command::Ledger(a) => ledger::run(g, a),
        Command::Rehearse(a) => rehearse::run(g, a),
        Command::Audit(a) => audit::run(g, a),
        Command::Capacity(a) => capacity::run(g, a),
        Command::Watch(a) => watch::run(g, a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
