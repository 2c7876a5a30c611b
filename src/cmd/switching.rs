//! What `open` and `close` share: when to switch, the countdown, the switch
//! itself and its report.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use clap::Args;

use flashsale::config::{self, Config};
use flashsale::publish::cdn::Cdn;
use flashsale::publish::remote::Remote;
use flashsale::publish::Target;
use flashsale::sale::{State, Toggle};
use flashsale::switch::{self, Live};

use super::publish::AwsArgs;
use super::Global;

#[derive(Args, Debug)]
pub struct SwitchArgs {
    /// When to switch, RFC 3339 with offset (default: the sale's start for
    /// open, its end for close).
    #[arg(long, value_name = "TIME", conflicts_with = "now")]
    pub at: Option<String>,
    /// Switch at once instead of waiting for the scheduled time.
    #[arg(long)]
    pub now: bool,
    /// The gate key (default: $FLASHSALE_GATE_KEY).
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// `s3` (the [publish] section) or `dir:PATH`.
    #[arg(long, default_value = "s3", value_name = "TARGET")]
    pub target: String,
    /// Wait until the CloudFront invalidation has completed.
    #[arg(long)]
    pub wait: bool,
    /// Print the result as JSON (for CI).
    #[arg(long)]
    pub json: bool,
    /// Switch even when the sale's state or clock says not to.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// Something that may make the switch happen before its time (sold out).
pub type Early = std::pin::Pin<Box<dyn std::future::Future<Output = String>>>;

/// Connects, reads the live toggle, lets `decide` build the new one (or say
/// there is nothing to do), waits for the time (or `early`), switches and reports.
pub fn run(
    g: &Global,
    config: &Config,
    a: &SwitchArgs,
    verb: &str,
    default_at: DateTime<FixedOffset>,
    decide: impl FnOnce(&Config, &Live) -> anyhow::Result<Option<Toggle>>,
    early: Option<Early>,
) -> anyhow::Result<()> {
    let at: SystemTime = match (&a.at, a.now) {
        (_, true) => SystemTime::now(),
        (Some(text), _) => config::parse_time(text)
            .map_err(|e| anyhow::anyhow!("--at: {}", e.replace("\nhelp: ", "; ")))?
            .0
            .into(),
        (None, _) => default_at.into(),
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let (remote, cdn) = Target::connect(config, &a.target, &a.aws.flags()).await?;
        if let Some(cdn) = &cdn {
            cdn.warm().await?;
        }
        // Reading the live toggle also opens the connection the switch will use.
        let live = switch::live(&remote).await?;
        let Some(toggle) = decide(config, &live)? else {
            let state = match &live {
                Live::Toggle(t) => t.state_name(),
                _ => "unknown",
            };
            if a.json {
                println!("{}", serde_json::json!({ "action": verb, "changed": false, "state": state }));
            } else {
                g.say(format!("sale.js is already `{state}` on {}: nothing to do{}", remote.describe(), if verb == "open" { " (--rotate mints a new order URL)" } else { "" }));
            }
            return Ok(());
        };
        let mut at = at;
        let mut why = None;
        if at > SystemTime::now() {
            match early {
                Some(early) => tokio::select! {
                    _ = countdown(g, a, verb, at, &remote) => {}
                    reason = early => {
                        at = SystemTime::now();
                        why = Some(reason);
                    }
                },
                None => countdown(g, a, verb, at, &remote).await,
            }
        }
        let switched = switch::switch(&remote, cdn.as_ref(), &toggle, &config.headers, &config.base_path).await?;
        if let Some(why) = &why {
            if !a.json {
                g.say(format!("{verb}: {why}"));
            }
        }
        let mut completed = None;
        if let (true, Some(cdn), Some(id)) = (a.wait, cdn.as_ref(), switched.invalidation.as_deref()) {
            let deadline = SystemTime::now() + Duration::from_secs(900);
            while !cdn.completed(id).await? {
                if SystemTime::now() > deadline {
                    anyhow::bail!("invalidation {id} not completed after 15 minutes; it goes on in the background");
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            completed = Some(true);
        }
        report(g, a, verb, &toggle, at, &switched, completed, &remote.describe(), cdn.is_some(), why.as_deref());
        Ok(())
    })
}

/// Waits for `at`, showing the time left; warms the connection again just before.
async fn countdown<R: Remote>(g: &Global, a: &SwitchArgs, verb: &str, at: SystemTime, remote: &R) {
    let tty = std::io::stderr().is_terminal() && !g.quiet && !a.json;
    let plain = !tty && !g.quiet && !a.json;
    if plain {
        eprintln!(
            "waiting to {verb} at {} (in {})",
            rfc3339(at),
            words(at.duration_since(SystemTime::now()).unwrap_or_default())
        );
    }
    let mut last_line = SystemTime::now();
    let rewarm = at.checked_sub(Duration::from_secs(3)).unwrap_or(at);
    switch::wait_until(rewarm, |left| {
        let left = left + Duration::from_secs(3);
        if tty {
            eprint!("\r  {verb} in {}   ", clock(left));
            let _ = std::io::stderr().flush();
        } else if plain {
            // A line every 10 minutes, every minute in the last 5, and at 10 s.
            let every = if left > Duration::from_secs(300) {
                600
            } else {
                60
            };
            let since = SystemTime::now()
                .duration_since(last_line)
                .unwrap_or_default();
            if since >= Duration::from_secs(every) || (left.as_secs() == 10) {
                eprintln!("  {verb} in {}", words(left));
                last_line = SystemTime::now();
            }
        }
    })
    .await;
    // Idle connections may have been closed during a long wait.
    let _ = remote.head(flashsale::headers::TOGGLE_PATH).await;
    switch::wait_until(at, |left| {
        if tty {
            eprint!("\r  {verb} in {}   ", clock(left));
            let _ = std::io::stderr().flush();
        }
    })
    .await;
    if tty {
        eprintln!("\r  {verb}: now          ");
    }
}

#[allow(clippy::too_many_arguments)]
fn report(
    g: &Global,
    a: &SwitchArgs,
    verb: &str,
    toggle: &Toggle,
    at: SystemTime,
    s: &switch::Switched,
    completed: Option<bool>,
    target: &str,
    has_cdn: bool,
    why: Option<&str>,
) {
    let late_ms = signed_ms(s.put_done, at);
    let put_ms = s
        .put_done
        .duration_since(s.put_started)
        .unwrap_or_default()
        .as_millis();
    let order = match &toggle.state {
        State::Open { order, .. } => Some(order.clone()),
        _ => None,
    };
    if a.json {
        let v = serde_json::json!({
            "action": verb,
            "changed": true,
            "state": toggle.state_name(),
            "version": toggle.v,
            "order_url": order,
            "target": target,
            "scheduled": rfc3339(at),
            "switched": rfc3339(s.put_done),
            "lateness_ms": late_ms,
            "put_ms": put_ms,
            "bytes": toggle.to_script().len(),
            "invalidation": s.invalidation,
            "invalidation_completed": completed,
            "reason": why.unwrap_or("scheduled"),
        });

        println!("{v}");
        return;
    }
    g.say(format!(
        "sale.js is now `{}` on {target} since {} ({} the scheduled {}; the PUT took {put_ms} ms)",
        toggle.state_name(),
        rfc3339(s.put_done),
        if late_ms >= 0 {
            format!("{late_ms} ms after")
        } else {
            format!("{} ms before", -late_ms)
        },
        rfc3339(at),
    ));
    if let Some(order) = order {
        g.say(format!("  order URL: {order}"));
    }
    match (&s.invalidation, has_cdn) {
        (Some(id), _) => g.say(format!(
            "  CloudFront invalidation {id} for /sale.js{}",
            if completed == Some(true) {
                " completed"
            } else {
                " created (--wait waits for it)"
            }
        )),
        (None, false) => g.say("  no CloudFront distribution configured: nothing to invalidate"),
        _ => {}
    }
}

fn signed_ms(a: SystemTime, b: SystemTime) -> i64 {
    match a.duration_since(b) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

pub fn rfc3339(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

pub fn words(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, s / 60 % 60),
        _ => format!("{} d {} h", s / 86_400, s / 3600 % 24),
    }
}
