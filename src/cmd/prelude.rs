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
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: {}: readable by others (mode {mode:04o}); `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
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
