//! `flashsale open`.

use clap::Args;

use super::prelude::{cookie_key, edge_step, gate_key, EdgeStep, Global};
use super::switch::{self, SwitchArgs};
use crate::sale::switch::Action;

/// Open the sale: mint the order URL, switch sale.js to `open`, invalidate it.
///
/// Waits for --at (default: the sale's start), with everything prepared
/// before: the key read, credentials resolved, the connection to S3 warm, the
/// new toggle in memory only (never stored where a visitor could read it
/// early). At the second it reads the live sale.js once more (a sale closed
/// meanwhile is not reopened), does one small PUT and the invalidation, then
/// reports how late the switch landed. Running it again keeps the live URL
/// (--rotate mints a new one). The order URL is
/// <gate>/o/<sale>/<nonce>.<HMAC-SHA256(order key, sale|nonce)>. With an [edge]
/// section it first stages the sale's keys in the edge's KeyValueStore
/// (the order key, the window, the items; --no-edge: not).
#[derive(Args, Debug)]
pub(super) struct OpenArgs {
    #[command(flatten)]
    switch: SwitchArgs,
    /// Mint a new order URL even if the sale is open already.
    #[arg(long)]
    rotate: bool,
}

pub(super) fn run(g: &Global, a: OpenArgs) -> anyhow::Result<()> {
    let config = g.sale()?;
    let key = gate_key(a.switch.key_file.as_deref())?;
    // The edge hears of the sale's keys ahead of the start: an edge that has
    // not yet passes every order to the gates.
    if config.edge.is_some() && !a.switch.no_edge {
        let cookie_key = match config.gate.identity {
            crate::config::Identity::Cookie(_) => cookie_key(a.switch.cookie_key_file.as_deref())?,
            crate::config::Identity::Header(_) => None,
        };
        edge_step(
            g,
            &config,
            &a.switch.aws,
            EdgeStep::Stage {
                key: key.clone(),
                cookie_key,
            },
        )?;
    }
    let action = Action::Open {
        key,
        rotate: a.rotate,
    };
    switch::run(
        g,
        &config,
        &a.switch,
        action,
        config.start,
        std::future::pending(),
    )
}
