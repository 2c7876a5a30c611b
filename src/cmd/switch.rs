//! What `open` and `close` share: their flags, connecting to the target, the
//! countdown while `sale::switch` waits, and the report. The policy (when to
//! switch and what) is `sale::switch`'s.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use clap::Args;

use super::prelude::{connect, time, AwsArgs, Global};
use crate::config::Config;
use crate::sale::switch::{self, Action, Error, Outcome, Reason, Switched};
use crate::sale::State;
use crate::store::{Cdn, Remote};
use crate::util::duration::{clock, words};

#[derive(Args, Debug)]
pub(super) struct SwitchArgs {
    /// When to switch, RFC 3339 with offset (default: the sale's start for
    /// open, its end for close).
    #[arg(long, value_name = "TIME", conflicts_with = "now")]
    at: Option<String>,
    /// Switch at once instead of waiting for the scheduled time.
    #[arg(long)]
    now: bool,
    /// The gate key (default: $FLASHSALE_GATE_KEY).
    #[arg(long, value_name = "PATH")]
    pub(super) key_file: Option<PathBuf>,
    /// `s3` (the [publish] section) or `dir:PATH`.
    #[arg(long, default_value = "s3", value_name = "TARGET")]
    target: String,
    /// Wait until the CloudFront invalidation has completed (at most 15 minutes).
    #[arg(long)]
    wait: bool,
    /// Print the result as JSON (for CI).
    #[arg(long)]
    pub(super) json: bool,
    /// Switch even when the sale's state or clock says not to.
    #[arg(long)]
    force: bool,
    /// The shop's cookie key, for the edge's store (default:
    /// $FLASHSALE_COOKIE_KEY); only with [edge] and identity_cookie.
    #[arg(long, value_name = "PATH")]
    pub(super) cookie_key_file: Option<PathBuf>,
    /// Leave the [edge] KeyValueStore alone (by default open stages the
    /// sale's keys there before waiting, and close marks the sale ended).
    #[arg(long)]
    pub(super) no_edge: bool,
    #[command(flatten)]
    pub(super) aws: AwsArgs,
}

/// Connects to the target, lets `sale::switch` decide, wait (drawing the
/// countdown) and switch, and reports.
pub(super) fn run(
    g: &Global,
    config: &Config,
    a: &SwitchArgs,
    action: Action,
    default_at: DateTime<FixedOffset>,
    early: impl Future<Output = String>,
) -> anyhow::Result<()> {
    let at: SystemTime = match (&a.at, a.now) {
        (_, true) => SystemTime::now(),
        (Some(text), _) => time("--at", text)?.into(),
        (None, _) => default_at.into(),
    };
    let verb = action.verb();
    let opts = switch::Options {
        at,
        force: a.force,
        wait: a.wait.then_some(Duration::from_secs(900)),
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let (remote, cdn) = connect(config, &a.target, &a.aws).await?;
        let mut countdown = Countdown::new(g, a, verb, at);
        let outcome = switch::run(
            config,
            &remote,
            cdn.as_ref(),
            &action,
            &opts,
            early,
            |left| countdown.tick(left),
        )
        .await;
        countdown.done();
        let outcome = outcome.map_err(|e| match e {
            Error::Closed => anyhow::anyhow!("{e}; pass --force to open it again"),
            Error::Over { .. } => anyhow::anyhow!("{e}; change `end`, or pass --force"),
            Error::Early { .. } => anyhow::anyhow!(
                "{e}; without --now or --at, `open` waits for the start; or change `start`, or pass --force"
            ),
            e => e.into(),
        })?;
        match outcome {
            Outcome::Unchanged { live, invalidation } => {
                let state = live.state_name();
                if a.json {
                    let v = serde_json::json!({
                        "action": verb, "changed": false, "state": state, "invalidation": invalidation,
                    });
                    println!("{v}");
                } else {
                    let hint = if verb == "open" {
                        " (--rotate mints a new order URL)"
                    } else {
                        ""
                    };
                    g.say(format!(
                        "sale.js is already `{state}` on {}: nothing to do{hint}",
                        remote.describe()
                    ));
                    if let Some(id) = invalidation {
                        g.say(format!("  CloudFront invalidation {id} for /sale.js (asked again, in case the last run stopped before it)"));
                    }
                }
            }
            Outcome::Switched(s) => report(
                g,
                a,
                verb,
                &s,
                &remote.describe(),
                cdn.as_ref().map(Cdn::describe),
            ),
        }
        Ok(())
    })
}

/// The time left, on a terminal; a line now and then in a log; nothing with
/// --quiet or --json.
struct Countdown<'a> {
    verb: &'a str,
    at: SystemTime,
    tty: bool,
    plain: bool,
    last_line: SystemTime,
    ticked: bool,
}

impl<'a> Countdown<'a> {
    fn new(g: &Global, a: &SwitchArgs, verb: &'a str, at: SystemTime) -> Countdown<'a> {
        let tty = std::io::stderr().is_terminal() && !g.quiet && !a.json;
        Countdown {
            verb,
            at,
            tty,
            plain: !tty && !g.quiet && !a.json,
            last_line: SystemTime::now(),
            ticked: false,
        }
    }

    fn tick(&mut self, left: Duration) {
        let verb = self.verb;
        if !self.ticked && self.plain {
            eprintln!(
                "waiting to {verb} at {} (in {})",
                rfc3339(self.at),
                words(left)
            );
        }
        self.ticked = true;
        if self.tty {
            eprint!("\r  {verb} in {}   ", clock(left));
            let _ = std::io::stderr().flush();
        } else if self.plain {
            // A line every 10 minutes, every minute in the last 5, and at 10 s.
            let every = if left > Duration::from_secs(300) {
                600
            } else {
                60
            };
            let since = SystemTime::now()
                .duration_since(self.last_line)
                .unwrap_or_default();
            if since >= Duration::from_secs(every) || left.as_secs() == 10 {
                eprintln!("  {verb} in {}", words(left));
                self.last_line = SystemTime::now();
            }
        }
    }

    fn done(&self) {
        if self.tty && self.ticked {
            eprintln!("\r  {}: now          ", self.verb);
        }
    }
}

fn report(g: &Global, a: &SwitchArgs, verb: &str, s: &Switched, target: &str, cdn: Option<String>) {
    let late_ms = signed_ms(s.put_done, s.due);
    let put_ms = s
        .put_done
        .duration_since(s.put_started)
        .unwrap_or_default()
        .as_millis();
    let (order, draw) = match &s.toggle.state {
        State::Open { order, draw, .. } => (Some(order.clone()), draw.clone()),
        _ => (None, None),
    };
    let why = match &s.reason {
        Reason::Scheduled => None,
        Reason::Early(why) => Some(why.as_str()),
    };
    if a.json {
        let v = serde_json::json!({
            "action": verb,
            "changed": true,
            "state": s.toggle.state_name(),
            "version": s.toggle.v,
            "order_url": order,
            "draw": draw.as_ref().map(|d| serde_json::json!({
                "until": rfc3339(UNIX_EPOCH + Duration::from_millis(d.until.max(0) as u64)),
                "commitment": d.commitment,
                "receipt_key": d.receipt_key,
            })),
            "target": target,
            "scheduled": rfc3339(s.due),
            "switched": rfc3339(s.put_done),
            "lateness_ms": late_ms,
            "put_ms": put_ms,
            "bytes": s.toggle.to_script().len(),
            "invalidation": s.invalidation,
            "invalidation_completed": s.completed,
            "reason": why.unwrap_or("scheduled"),
        });
        println!("{v}");
        return;
    }
    if let Some(why) = why {
        g.say(format!("{verb}: {why}"));
    }
    g.say(format!(
        "sale.js is now `{}` on {target} since {} ({} the scheduled {}; the PUT took {put_ms} ms)",
        s.toggle.state_name(),
        rfc3339(s.put_done),
        if late_ms >= 0 {
            format!("{late_ms} ms after")
        } else {
            format!("{} ms before", -late_ms)
        },
        rfc3339(s.due),
    ));
    if let Some(order) = order {
        g.say(format!("  order URL: {order}"));
    }
    if let Some(d) = draw {
        g.say(format!(
            "  fair start: orders until {} are entries of a draw; its commitment (SHA-256 of the secret) is {}, its receipts are signed by {}",
            rfc3339(UNIX_EPOCH + Duration::from_millis(d.until.max(0) as u64)),
            d.commitment,
            d.receipt_key
        ));
    }
    match (&s.invalidation, cdn) {
        (Some(id), _) => g.say(format!(
            "  CloudFront invalidation {id} for /sale.js{}",
            if s.completed == Some(true) {
                " completed"
            } else {
                " created (--wait waits for it)"
            }
        )),
        (None, None) => g.say("  no CloudFront distribution configured: nothing to invalidate"),
        (None, Some(_)) => {}
    }
}

fn signed_ms(a: SystemTime, b: SystemTime) -> i64 {
    match a.duration_since(b) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

fn rfc3339(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Millis, true)
}
