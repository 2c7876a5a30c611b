//! `flashsale build`.

use clap::Args;

use crate::site::{Report, Site};

use super::prelude::Global;

/// Render the sale into the output directory (default public/): pages,
/// fingerprinted assets, sale.js in its pending state, and manifest.json.
///
/// Only files whose bytes changed are written; files no longer produced are
/// removed. On any error nothing in the output changes.
#[derive(Args, Debug)]
pub(super) struct BuildArgs {}

pub(super) fn run(g: &Global, _a: BuildArgs) -> anyhow::Result<()> {
    let mut site = Site::from_config(g.sale()?)?;
    let report = site.build()?;
    summarize(g, &site, &report);
    Ok(())
}

fn summarize(g: &Global, site: &Site, r: &Report) {
    for f in &r.changes.written {
        g.detail(format!("  wrote   {f}"));
    }
    for f in &r.changes.removed {
        g.detail(format!("  removed {f}"));
    }
    let (made, cached) = site.assets.photos();
    if made + cached > 0 {
        g.say(format!(
            "Photos: {made} made responsive, {cached} taken from the cache ({})",
            crate::site::images::cache_dir(&site.config.root).display()
        ));
    }
    g.say(format!(
        "Built `{}`: {} items, {} files ({} written, {} unchanged, {} removed) in {} ms → {}",
        site.config.name,
        r.items,
        r.outputs,
        r.changes.written.len(),
        r.changes.unchanged,
        r.changes.removed.len(),
        r.elapsed.as_millis(),
        site.config.output_dir.display()
    ));
}
