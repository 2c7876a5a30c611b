//! `flashsale publish`, with its progress drawing and report.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use clap::Args;

use super::prelude::{connect, duration, AwsArgs, Global};
use crate::config::Config;
use crate::publish::{self, Outcome, Progress, ToggleAction};
use crate::store::{Cdn, DryRun, DryRunCdn, Remote};
use crate::util::sync::lock;

/// Upload the built sale (public/) to S3 and invalidate CloudFront for what changed.
///
/// Compares by content and header hashes against a state object kept in the
/// bucket, so an unchanged file is never re-uploaded and a header-only change
/// is a server-side copy. Uploads fingerprinted assets first, then pages, then
/// sale.js (only if the bucket has none: `open`/`close` own a live toggle),
/// deletions last and only with --prune. Safe to interrupt: a re-run converges.
/// Credentials come from the standard AWS chain (environment, profile, SSO,
/// instance role). Run `flashsale build` first.
#[derive(Args, Debug)]
pub(super) struct PublishArgs {
    /// Where to publish: `s3` (the [publish] section) or `dir:PATH` (a local
    /// directory with a headers sidecar, for previews and tests).
    #[arg(long, default_value = "s3", value_name = "TARGET")]
    target: String,
    /// Print the plan; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the plan or the result as JSON (for CI).
    #[arg(long)]
    json: bool,
    /// Delete remote objects that are no longer built (old assets included).
    #[arg(long)]
    prune: bool,
    /// Allow more deletions than max_deletes.
    #[arg(long)]
    force: bool,
    /// Upload the build's pending sale.js even though the bucket has one: for a
    /// new sale in a bucket whose previous sale ended. Never during a sale.
    #[arg(long)]
    reset_toggle: bool,
    /// Wait until the CloudFront invalidation has completed.
    #[arg(long)]
    wait: bool,
    /// Longest wait with --wait, e.g. 15m, 90s.
    #[arg(long, default_value = "15m", value_parser = duration)]
    wait_timeout: Duration,
    /// Uploads in flight at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    #[command(flatten)]
    aws: AwsArgs,
}

pub(super) fn run(g: &Global, a: PublishArgs) -> anyhow::Result<()> {
    let config = g.sale()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(publish_async(g, &config, &a))
}

async fn publish_async(g: &Global, config: &Config, a: &PublishArgs) -> anyhow::Result<()> {
    let publish_cfg = config.publish.clone();
    let opts = publish::Options {
        prune: a.prune,
        reset_toggle: a.reset_toggle,
        force: a.force,
        concurrency: a.concurrency as usize,
        wait: a.wait.then_some(a.wait_timeout),
        max_deletes: publish_cfg.as_ref().map_or(256, |p| p.max_deletes),
        max_invalidation_paths: publish_cfg
            .as_ref()
            .map_or(20, |p| p.max_invalidation_paths),
        base_path: config.base_path.clone(),
    };
    let (remote, cdn) = connect(config, &a.target, &a.aws).await?;
    go(g, config, a, &opts, &config.output_dir, remote, cdn).await
}

async fn go<R: Remote, C: Cdn>(
    g: &Global,
    config: &Config,
    a: &PublishArgs,
    opts: &publish::Options,
    out: &std::path::Path,
    remote: R,
    cdn: Option<C>,
) -> anyhow::Result<()> {
    let progress = Lines::new(g, a.json, a.dry_run);
    if a.dry_run {
        let remote = DryRun(remote);
        let cdn = cdn.map(DryRunCdn);
        let outcome = publish::publish(out, &remote, cdn.as_ref(), opts, &progress)
            .await
            .map_err(force_hint)?;
        return report(g, config, a, &outcome, true);
    }
    if !a.json {
        g.say(format!(
            "Publishing `{}` from {} to {}{}",
            config.name,
            out.display(),
            remote.describe(),
            cdn.as_ref()
                .map_or(String::new(), |c| format!(" ({})", c.describe()))
        ));
    }
    let outcome = publish::publish(out, &remote, cdn.as_ref(), opts, &progress)
        .await
        .map_err(force_hint)?;
    report(g, config, a, &outcome, false)
}

/// A refused plan says how to go ahead anyway.
fn force_hint(e: publish::Error) -> anyhow::Error {
    match e {
        publish::Error::TooManyDeletes { .. } => {
            anyhow::anyhow!("{e}; --force deletes them anyway")
        }
        e => e.into(),
    }
}

fn report(
    g: &Global,
    config: &Config,
    a: &PublishArgs,
    o: &Outcome,
    dry_run: bool,
) -> anyhow::Result<()> {
    if a.json {
        let mut v = serde_json::to_value(o)?;
        v["dry_run"] = serde_json::Value::Bool(dry_run);
        v["sale"] = serde_json::Value::String(config.name.clone());
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let verb = |done: &str, would: &str| {
        if dry_run {
            would.to_string()
        } else {
            done.to_string()
        }
    };
    if dry_run {
        // The target's description already says "(dry run)".
        g.say(format!("Plan for {}: nothing is written", o.target));
        let show = |label: &str, keys: &[String]| {
            for k in keys.iter().take(50) {
                g.say(format!("  {label} {k}"));
            }
            if keys.len() > 50 {
                g.say(format!("  ... and {} more", keys.len() - 50));
            }
        };
        show("upload ", &o.uploaded);
        show("headers", &o.headers_updated);
        show("delete ", &o.deleted);
    } else {
        for k in &o.uploaded {
            g.detail(format!("  uploaded {k}"));
        }
        for k in &o.headers_updated {
            g.detail(format!("  headers  {k}"));
        }
        for k in &o.deleted {
            g.detail(format!("  deleted  {k}"));
        }
    }
    g.say(format!(
        "  {} {}, {} {}, {} {}, {} unchanged",
        o.uploaded.len(),
        verb("uploaded", "to upload"),
        o.headers_updated.len(),
        verb("with new headers", "to get new headers"),
        o.deleted.len(),
        verb("deleted", "to delete"),
        o.unchanged
    ));
    if !o.stale_kept.is_empty() {
        g.say(format!(
            "  {} no longer built but kept (cached pages may still use old assets); --prune deletes them",
            o.stale_kept.len()
        ));
    }
    if o.toggle == ToggleAction::Kept {
        g.say("  sale.js: the bucket has one already; left alone (`flashsale open`/`close` own the live toggle)");
    }
    match &o.invalidation {
        Some(inv) => g.say(format!(
            "  {} {} path{}: {}{}",
            verb(&format!("invalidation {}", inv.id), "would invalidate"),
            if dry_run { "" } else { "for" },
            if inv.paths.len() == 1 { "" } else { "s" },
            inv.paths.join(" "),
            match inv.completed {
                Some(true) => " (completed)",
                _ if dry_run => "",
                _ => " (in progress; --wait waits for it)",
            }
        )),
        None if !o.not_invalidated.is_empty() => g.say(format!(
            "  no CloudFront distribution configured (distribution_id in [publish]): nothing invalidated; changed paths: {}",
            o.not_invalidated.join(" ")
        )),
        None => {}
    }
    g.say(format!(
        "  {} requests in {:.1} s",
        o.requests.total,
        o.elapsed_ms as f64 / 1000.0
    ));
    Ok(())
}

/// A progress bar on a terminal, a few plain lines otherwise, nothing with -q or --json.
struct Lines {
    quiet: bool,
    /// Phases are said as what would happen.
    dry_run: bool,
    bar: Mutex<Option<indicatif::ProgressBar>>,
    plain: Mutex<(String, usize)>,
    done: AtomicUsize,
}

impl Lines {
    fn new(g: &Global, json: bool, dry_run: bool) -> Lines {
        Lines {
            quiet: g.quiet || json,
            dry_run,
            bar: Mutex::new(None),
            plain: Mutex::new((String::new(), 0)),
            done: AtomicUsize::new(0),
        }
    }
}

/// A phase's name in a dry run: what would be done, not what is being done.
fn would(name: &str) -> String {
    for (doing, would) in [
        ("uploading ", "would upload "),
        ("deleting", "would delete"),
        ("deleted ", "would delete "),
    ] {
        if let Some(rest) = name.strip_prefix(doing) {
            return format!("{would}{rest}");
        }
    }
    name.to_string()
}

impl Progress for Lines {
    fn phase(&self, name: &str, total: usize) {
        if self.quiet {
            return;
        }
        let name = &if self.dry_run {
            would(name)
        } else {
            name.to_string()
        };
        self.finish();
        self.done.store(0, Ordering::Relaxed);
        if std::io::stderr().is_terminal() {
            let bar = if total == 0 {
                let b = indicatif::ProgressBar::new_spinner();
                b.enable_steady_tick(Duration::from_millis(120));
                b
            } else {
                indicatif::ProgressBar::new(total as u64)
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "  {spinner} {msg:<28} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_message(name.to_string());
            *lock(&self.bar) = Some(bar);
        } else {
            eprintln!(
                "  {name}{}",
                if total > 0 {
                    format!(": {total}")
                } else {
                    String::new()
                }
            );
            *lock(&self.plain) = (name.to_string(), total);
        }
    }

    fn done(&self, _key: &str) {
        if self.quiet {
            return;
        }
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = lock(&self.bar).as_ref() {
            bar.set_position(n as u64);
            return;
        }
        // About ten lines per phase in logs.
        let (name, total) = lock(&self.plain).clone();
        if total >= 20 && n.is_multiple_of((total / 10).max(1)) && n < total {
            eprintln!("  {name}: {n}/{total}");
        }
    }

    fn note(&self, message: &str) {
        if !self.quiet {
            let message = if self.dry_run {
                would(message)
            } else {
                message.to_string()
            };
            eprintln!("  {message}");
        }
    }

    fn finish(&self) {
        if let Some(bar) = lock(&self.bar).take() {
            bar.finish_and_clear();
        }
    }
}
