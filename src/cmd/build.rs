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
    let mut site = Site::with_progress(g.sale()?, photo_bar(g))?;
    let report = site.build()?;
    summarize(g, &site, &report);
    Ok(())
}

/// A progress bar for photos being made (on a terminal, once the first one
/// needs making: a build whose photos are all cached shows none).
fn photo_bar(g: &Global) -> Option<crate::site::images::Progress> {
    if g.quiet {
        return None;
    }
    let bar: std::sync::Mutex<Option<indicatif::ProgressBar>> = std::sync::Mutex::new(None);
    Some(std::sync::Arc::new(
        move |done: usize, total: usize, made: bool| {
            let mut bar = bar.lock().unwrap_or_else(|p| p.into_inner());
            if bar.is_none() && made {
                let b = indicatif::ProgressBar::new(total as u64);
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "making photos responsive {bar:30} {pos}/{len} {eta}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                *bar = Some(b);
            }
            if let Some(b) = bar.as_ref() {
                b.set_position(done as u64);
                if done == total {
                    b.finish_and_clear();
                }
            }
        },
    ))
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
