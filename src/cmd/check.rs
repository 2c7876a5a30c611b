use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use flashsale::check::{self, Secret, Severity};
use flashsale::site::Site;

use super::Global;

/// Check the sale before it goes live: configuration and items, templates,
/// links and images, the page-weight budget (each item page at most 14 KiB
/// gzip-compressed), the size of sale.js, and that no secret (the gate key,
/// AWS credentials) appears in what would be published.
///
/// Builds into a scratch directory; the output directory is only read.
/// Exits 1 when there is an error; warnings alone pass.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The gate's key file, so its contents are searched for too
    /// (the value of $FLASHSALE_GATE_KEY and AWS variables always are).
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
}

pub fn run(g: &Global, a: CheckArgs) -> anyhow::Result<()> {
    let mut site = Site::load(&g.config)?;
    let mut secrets = Secret::from_env();
    if let Some(path) = &a.key_file {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the key file {}", path.display()))?;
        secrets.extend(Secret::new(format!("the key in {}", path.display()), bytes));
    }
    let report = check::check(&mut site, &secrets)?;
    for f in &report.findings {
        match f.severity {
            Severity::Error => eprintln!("error: {}", f.message),
            Severity::Warning => eprintln!("warning: {}", f.message),
        }
    }
    if let Some((page, size)) = &report.heaviest {
        g.detail(format!(
            "heaviest item page: {page}, {size} bytes gzip-compressed (budget {})",
            check::PAGE_BUDGET_GZIP
        ));
    }
    let errors = report.errors();
    if errors > 0 {
        anyhow::bail!(
            "check found {errors} problem{}",
            if errors == 1 { "" } else { "s" }
        );
    }
    g.say(format!(
        "Checked `{}`: {} pages, {} items; heaviest item page {} bytes gzip (budget {}); sale.js {} bytes (budget {}); no secrets found.",
        site.config.name,
        report.pages,
        site.items.len(),
        report.heaviest.as_ref().map_or(0, |(_, s)| *s),
        check::PAGE_BUDGET_GZIP,
        report.toggle_bytes,
        flashsale::sale::MAX_TOGGLE_BYTES,
    ));
    Ok(())
}
