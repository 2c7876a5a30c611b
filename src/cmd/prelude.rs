//! Flags and helpers several subcommands share, so subcommand files never
//! import each other.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::store::AwsFlags;

#[derive(Args, Debug, Clone)]
pub(super) struct Global {
    /// The sale's configuration file.
    #[arg(
        long,
        short = 'c',
        global = true,
        value_name = "PATH",
        default_value = "site.toml"
    )]
    pub(super) config: PathBuf,
    /// Print only errors.
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub(super) quiet: bool,
    /// Print more detail (every file written, every request served).
    #[arg(long, short = 'v', global = true)]
    pub(super) verbose: bool,
}

impl Global {
    /// Progress and summaries, unless --quiet.
    pub(super) fn say(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            println!("{}", msg.as_ref());
        }
    }

    /// Reads and checks the sale's configuration (--config).
    pub(super) fn sale(&self) -> anyhow::Result<crate::config::Config> {
        crate::config::Config::load(&self.config).map_err(|mut problems| {
            if !self.config.exists() {
                for d in &mut problems.0 {
                    d.help = Some("run this in the sale's directory, pass --config PATH, or create one with `flashsale new DIR`".into());
                }
            }
            problems.into()
        })
    }

    /// Details, only with --verbose.
    pub(super) fn detail(&self, msg: impl AsRef<str>) {
        if self.verbose {
            println!("{}", msg.as_ref());
        }
    }
}

/// AWS overrides, shared by the commands that talk to S3 and CloudFront.
#[derive(Args, Debug, Clone)]
pub(super) struct AwsArgs {
    /// AWS profile (from ~/.aws/config) to take credentials and region from.
    #[arg(long, value_name = "NAME")]
    pub(super) profile: Option<String>,
    /// AWS region (overrides [publish] region).
    #[arg(long)]
    pub(super) region: Option<String>,
    /// S3 endpoint (overrides [publish] endpoint): S3-compatible stores, local servers.
    #[arg(long, value_name = "URL")]
    pub(super) endpoint_url: Option<String>,
}

impl AwsArgs {
    pub(super) fn flags(&self) -> AwsFlags {
        AwsFlags {
            profile: self.profile.clone(),
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
        }
    }
}

/// The gate key from --key-file, else $FLASHSALE_GATE_KEY.
pub(super) fn gate_key(file: Option<&std::path::Path>) -> anyhow::Result<crate::sale::GateKey> {
    use crate::sale::{GateKey, KeyError};
    let key = GateKey::load(file).map_err(|e| match e {
        KeyError::Missing => anyhow::anyhow!("{e}, or pass --key-file PATH"),
        e => e.into(),
    })?;
    if let Some(path) = file {
        warn_if_shared(path);
    }
    Ok(key)
}

/// Warns when a key file can be read by others than its owner.
pub(super) fn warn_if_shared(path: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.mode() & 0o777;
        if let Some(who) = key_exposure(mode, meta.uid(), meta.gid(), &own_groups()) {
            eprintln!(
                "warning: {}: {who} (mode {mode:04o}); `chmod 600 {}`, or 0640 owned by root in a group of the user who runs flashsale",
                path.display(),
                path.display()
            );
        }
    }
}

/// Who besides its owner can use a key file with this mode, owner and
/// group, given the running user's groups; `None`: nobody who should not.
/// Group-readable is fine the way the shipped units prescribe it
/// (`root:flashsale`, 0640: root owns it, only the service's group reads it).
fn key_exposure(mode: u32, uid: u32, gid: u32, groups: &[u32]) -> Option<&'static str> {
    if mode & 0o007 != 0 {
        return Some("every user of the machine can read or change it");
    }
    if mode & 0o070 == 0 {
        return None;
    }
    if mode & 0o020 != 0 {
        return Some("its group can change it");
    }
    if uid == 0 && groups.contains(&gid) {
        return None;
    }
    Some("readable by its group")
}

/// The running user's groups (effective and supplementary).
fn own_groups() -> Vec<u32> {
    // SAFETY: getgroups with a buffer of the size it reported; getegid cannot fail.
    unsafe {
        let n = libc::getgroups(0, std::ptr::null_mut());
        let mut groups = vec![0 as libc::gid_t; n.max(0) as usize];
        let got = libc::getgroups(n, groups.as_mut_ptr());
        groups.truncate(got.max(0) as usize);
        groups.push(libc::getegid());
        groups
    }
}

/// The store and CDN of `--target`, with the flags to pass when AWS cannot be reached.
pub(super) async fn connect(
    config: &crate::config::Config,
    target: &str,
    aws: &AwsArgs,
) -> anyhow::Result<(crate::store::Target, Option<crate::store::CloudFront>)> {
    use crate::store::{AwsError, Target, TargetError};
    Target::connect(config, target, &aws.flags())
        .await
        .map_err(|e| match e {
            TargetError::Aws(AwsError::NoRegion) => anyhow::anyhow!("{e}; or pass --region"),
            TargetError::Aws(AwsError::NoCredentials) => {
                anyhow::anyhow!("{e}; or pass --profile NAME")
            }
            e => e.into(),
        })
}

/// The fleet's shared ledger: --ledger, else $FLASHSALE_LEDGER_URL, else
/// `[gate] ledger`. The URL may hold a password: never print it.
pub(super) fn ledger_url(flag: Option<&str>, config: &crate::config::Config) -> Option<String> {
    if let Some(f) = flag {
        if url::Url::parse(f).is_ok_and(|u| u.password().is_some()) {
            eprintln!(
                "warning: the ledger's password is on the command line (--ledger), where every process listing shows it; put it in ${} or a file named by `[gate] ledger_password_file`, and the URL without it",
                crate::ledger::PASSWORD_ENV
            );
        }
    }
    if let Some(file) = &config.gate.ledger_access.password_file {
        warn_if_shared(file);
    }
    flag.map(str::to_string)
        .or_else(|| {
            std::env::var("FLASHSALE_LEDGER_URL")
                .ok()
                .filter(|v| !v.trim().is_empty())
        })
        .or_else(|| config.gate.ledger.clone())
}

/// Durations on the command line: `500ms`, `30s`, `15m`, `2h`.
pub(super) fn duration(s: &str) -> Result<Duration, crate::util::duration::NotADuration> {
    crate::util::duration::parse(s)
}

/// A time on the command line, with what to write when it is not one.
pub(super) fn time(
    flag: &str,
    text: &str,
) -> anyhow::Result<chrono::DateTime<chrono::FixedOffset>> {
    crate::config::parse_time(text).map_err(|e| anyhow::anyhow!("{flag}: {e}; {}", e.help()))
}

/// Log events as JSON lines on stderr (what the gate writes).
pub(super) fn log_json() {
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}

/// What to run when a journal has a bad line: `gate`'s advice and `draw`'s.
pub(super) const REPAIR: &str = "`flashsale gate --repair-journal --journal DIR` keeps every line before it and sets the rest aside";

/// Shortest cookie key accepted: shorter is guessable.
const MIN_COOKIE_KEY: usize = 16;

/// The shop's key for signed identity cookies: from `file`, else
/// $FLASHSALE_COOKIE_KEY; `None` if neither. Refused when too short to be
/// secret; never printed.
pub(super) fn cookie_key(file: Option<&std::path::Path>) -> anyhow::Result<Option<Vec<u8>>> {
    use anyhow::Context;
    let check = |key: Vec<u8>, source: &str| -> anyhow::Result<Vec<u8>> {
        if key.len() < MIN_COOKIE_KEY {
            anyhow::bail!(
                "{source} holds {} bytes; a cookie key must be at least {MIN_COOKIE_KEY} (use 32 random bytes, e.g. `openssl rand -hex 32`)",
                key.len()
            );
        }
        Ok(key)
    };
    match (file, std::env::var("FLASHSALE_COOKIE_KEY")) {
        (Some(p), _) => {
            let bytes = std::fs::read(p)
                .with_context(|| format!("cannot read the cookie key file {}", p.display()))?;
            Ok(Some(check(
                bytes.trim_ascii().to_vec(),
                &format!("the cookie key file {}", p.display()),
            )?))
        }
        (None, Ok(v)) if !v.trim().is_empty() => Ok(Some(check(
            v.trim().as_bytes().to_vec(),
            "$FLASHSALE_COOKIE_KEY",
        )?)),
        _ => Ok(None),
    }
}

/// `text` to `output` (atomically) when given, else to stdout.
pub(super) fn write_or_print(output: Option<&std::path::Path>, text: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    match output {
        None => print!("{text}"),
        Some(path) => crate::util::fs::write_atomically(path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?,
    }
    Ok(())
}

/// A step of the sale on its edge's KeyValueStore (`[edge]`).
#[cfg_attr(
    not(feature = "aws"),
    expect(dead_code, reason = "without the AWS SDK no step is taken")
)]
pub(super) enum EdgeStep {
    /// Put the sale's keys there (`open`, ahead of the start).
    Stage {
        key: crate::sale::GateKey,
        cookie_key: Option<Vec<u8>>,
    },
    /// Mark the sale closed or sold out (`close`).
    End,
    /// Take every key of the sale out (after it).
    Clear {
        key: crate::sale::GateKey,
        cookie_key: Option<Vec<u8>>,
    },
}

/// Does `step` on the store `[edge]` names, and says what it did.
#[cfg(feature = "aws")]
pub(super) fn edge_step(
    g: &Global,
    config: &crate::config::Config,
    aws: &AwsArgs,
    step: EdgeStep,
) -> anyhow::Result<()> {
    use crate::edge::{self, Edge};
    let Some(cfg) = &config.edge else {
        anyhow::bail!("site.toml has no [edge] section: add `[edge]` with `kvs_arn = \"arn:aws:cloudfront::…:key-value-store/…\"`");
    };
    let e = Edge::new(config);
    let entries = |key: &crate::sale::GateKey, cookie: Option<&[u8]>| -> anyhow::Result<_> {
        let items: Vec<String> = crate::site::items(config)?
            .into_iter()
            .map(|i| i.sku)
            .collect();
        Ok(e.entries(config, key, cookie, &items)?)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = crate::store::kvs::open(cfg, &aws.flags()).await?;
        let (what, w) = match &step {
            EdgeStep::Stage { key, cookie_key } => {
                let all = entries(key, cookie_key.as_deref())?;
                ("staged the sale's keys", edge::stage(&e, &store, &all).await?)
            }
            EdgeStep::End => ("marked the sale ended", edge::end(&e, &store).await?),
            EdgeStep::Clear { key, cookie_key } => {
                let all = entries(key, cookie_key.as_deref())?;
                ("took the sale's keys out", edge::clear(&e, &store, &all).await?)
            }
        };
        g.say(format!(
            "Edge: {what} in {} ({} calls, {} retried after a stale ETag; {} keys in the store)",
            cfg.kvs_arn, w.calls, w.conflicts, w.items
        ));
        if matches!(step, EdgeStep::Stage { .. }) {
            let ahead = (config.start.timestamp_millis() - crate::util::clock::Clock::system().now_ms()) / 1000;
            if ahead < cfg.stage_ahead.as_secs() as i64 {
                eprintln!(
                    "warning: the sale starts in {ahead} s, less than stage_ahead ({} s): edges that have not heard yet pass every order to the gates (they never refuse an honest one)",
                    cfg.stage_ahead.as_secs()
                );
            }
        }
        anyhow::Ok(())
    })
}

#[cfg(not(feature = "aws"))]
pub(super) fn edge_step(
    _: &Global,
    _: &crate::config::Config,
    _: &AwsArgs,
    _: EdgeStep,
) -> anyhow::Result<()> {
    anyhow::bail!("{}", crate::store::AwsError::NotBuilt)
}

#[cfg(test)]
mod tests {
    use super::key_exposure;

    #[test]
    fn a_key_the_units_way_is_fine_and_a_world_readable_one_is_not() {
        // root:flashsale 0640, run by a member of flashsale (gid 990).
        assert_eq!(key_exposure(0o640, 0, 990, &[990, 100]), None);
        assert_eq!(key_exposure(0o600, 1000, 1000, &[1000]), None);
        assert!(key_exposure(0o644, 0, 990, &[990]).is_some());
        assert!(
            key_exposure(0o640, 1000, 990, &[990]).is_some(),
            "not root's"
        );
        assert!(
            key_exposure(0o640, 0, 50, &[990]).is_some(),
            "a group we are not in"
        );
        assert!(
            key_exposure(0o660, 0, 990, &[990]).is_some(),
            "group-writable"
        );
    }
}
