//! `flashsale check`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::prelude::{connect, AwsArgs, Global};
use crate::config::Config;
use crate::site::check::{self, Secret, Severity};
use crate::site::Site;

/// Check the sale before it goes live: configuration and items, templates,
/// links and images, the page-weight budget (each item page at most 14 KiB
/// gzip-compressed), the size of sale.js, and that no secret (the gate key,
/// AWS credentials) appears in what would be published.
///
/// Builds into a scratch directory; the output directory is only read.
/// With --remote, also reads the CloudFront distribution's cache behaviour for
/// sale.js. Exits 1 when there is an error; warnings alone pass.
#[derive(Args, Debug)]
pub(super) struct CheckArgs {
    /// The gate's key file, so its contents are searched for too
    /// (the value of $FLASHSALE_GATE_KEY and AWS variables always are).
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// Also check how the CloudFront distribution of [publish] caches sale.js:
    /// fails when every poll would reach the origin (caching disabled, the
    /// query string or cookies in the cache key) or when the edge would keep
    /// it longer than 2 s (the button would switch on late).
    #[arg(long)]
    remote: bool,
    #[command(flatten)]
    aws: AwsArgs,
}

/// `site.toml` has problems: the other files are checked all the same (with a
/// stand-in configuration), so one run reports the problems of every file.
fn with_other_files(g: &Global, e: anyhow::Error) -> anyhow::Error {
    let Ok(mut problems) = e.downcast::<crate::util::diag::Diagnostics>() else {
        unreachable!("Global::sale fails with diagnostics")
    };
    if let Some(stand_in) = Config::stand_in(&g.config) {
        if let Err(crate::site::Error::Input(more)) = Site::from_config(stand_in) {
            problems.0.extend(more.0);
        }
    }
    problems.into()
}

pub(super) fn run(g: &Global, a: CheckArgs) -> anyhow::Result<()> {
    let config = match g.sale() {
        Ok(c) => c,
        Err(e) => return Err(with_other_files(g, e)),
    };
    let mut site = Site::from_config(config)?;
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
    if a.remote {
        check_remote(g, &site.config, &a.aws)?;
    }
    let errors = report.errors();
    if errors > 0 {
        anyhow::bail!(
            "check found {errors} problem{}",
            if errors == 1 { "" } else { "s" }
        );
    }
    let (phone_page, phone) = report
        .phone_heaviest
        .clone()
        .unwrap_or_else(|| ("-".to_string(), 0));
    g.say(format!(
        "Checked `{}`: {} pages, {} items; heaviest item page {} bytes gzip (budget {}); a phone downloads at most {:.1} KiB per page ({phone_page}; budget {} KiB); sale.js {} bytes (budget {}); no secrets found.",
        site.config.name,
        report.pages,
        site.items.len(),
        report.heaviest.as_ref().map_or(0, |(_, s)| *s),
        check::PAGE_BUDGET_GZIP,
        phone as f64 / 1024.0,
        check::PHONE_BUDGET / 1024,
        report.toggle_bytes,
        crate::sale::MAX_TOGGLE_BYTES,
    ));
    Ok(())
}

/// Fails when CloudFront would pass every poll of sale.js to the origin, or
/// keep it so long that pages switch late.
fn check_remote(g: &Global, config: &Config, aws: &AwsArgs) -> anyhow::Result<()> {
    let Some(publish) = &config.publish else {
        anyhow::bail!(
            "{}: --remote needs a [publish] section with `distribution_id`",
            config.path.display()
        );
    };
    let Some(id) = &publish.distribution_id else {
        eprintln!("warning: {}: no `distribution_id` in [publish]; nothing to check remotely (without a CDN every visitor's poll reaches the bucket)", config.path.display());
        return Ok(());
    };
    let toggle = format!("{}sale.js", config.base_path);
    let rt = tokio::runtime::Runtime::new()?;
    let caching = rt.block_on(async {
        let (_, cdn) = connect(config, "s3", aws).await?;
        #[cfg_attr(not(feature = "aws"), expect(unused_variables, reason = "no CloudFront client can be made without the AWS SDK: what follows never runs"))]
        let cdn = cdn.expect("a distribution_id gives a CloudFront client");
        anyhow::Ok(cdn.toggle_caching(&toggle).await?)
    })?;
    for w in caching.warnings(&toggle) {
        eprintln!("warning: CloudFront distribution {id}: {w}");
    }
    let problems = caching.problems(&toggle);
    for p in &problems {
        eprintln!("error: CloudFront distribution {id}: {p}");
    }
    if !problems.is_empty() {
        anyhow::bail!(
            "check --remote found {} problem{} with how CloudFront distribution {id} caches {toggle}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
    }
    g.say(format!(
        "CloudFront distribution {id}: {} ({}) keeps {toggle} {} s at the edge, query string and cookies out of the cache key{}: the origin sees about one poll per edge cache per {} s.",
        caching.behaviour,
        caching.source,
        caching.edge_seconds(),
        if caching.origin_shield { ", Origin Shield on" } else { "" },
        caching.edge_seconds(),
    ));
    Ok(())
}
