//! flashsale: build, preview, publish and run e-commerce flash sales.
//!
//! The subsystems, each a folder (`docs/DESIGN.md` draws how they depend on
//! each other):
//! - `config`: `site.toml`, read strictly, section by section;
//! - `site`: the build (content, theme, assets, render, output, manifest, check);
//! - `sale`: the toggle format, the order token, and the sale-day switch;
//! - `store`: object stores and CDNs (S3, CloudFront, a directory, memory, dry run);
//! - `publish`: uploading a build to a store, planned then executed;
//! - `gate`: the order gate;
//! - `journal`: JSON lines fsynced before anyone is told (winners, draw entries);
//! - `ledger`: the stock a fleet of gates shares, on Redis;
//! - `serve`: the local preview, with the whole sale in-process;
//! - `loadtest`: the rehearsal's simulated customers;
//! - `capacity`: the sale day's request rates on paper, against published limits;
//! - `audit`: after a sale, whether every promise held (journals, ledger, deliveries);
//! - `util`: small helpers that know nothing of sales;
//! - `cmd`: the command line, which only turns flags into library calls.
//!
//! The public API is what a shop (and the integration tests) use from
//! outside: the toggle format and order token ([`sale`]), the signed identity
//! cookie ([`gate::sign_cookie`]), and the program itself ([`cmd::main`]).

mod audit;
mod capacity;
pub mod cmd;
mod config;
mod edge;
pub mod gate;
mod journal;
mod ledger;
mod loadtest;
mod publish;
pub mod sale;
mod serve;
mod site;
mod store;
mod util;
mod watch;
