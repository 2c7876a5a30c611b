//! `flashsale status`.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use clap::Args;
use serde_json::json;

use super::prelude::{connect, AwsArgs, Global};
use crate::config::Config;
use crate::sale::switch::{self, Live};
use crate::sale::{minted_for, GateKey, State};
use crate::store::Remote;
use crate::util::duration::words;
use crate::util::http::Client;

/// Where the sale stands: its phase by the clock, the live sale.js as the
/// bucket has it, and as the CDN serves it at base_url (if it answers).
///
/// With a key (--key-file or $FLASHSALE_GATE_KEY) it also says whether the
/// live order URL verifies, and (a fair start) whether the draw's commitment
/// in sale.js is the one the gates' key makes.
#[derive(Args, Debug)]
pub(super) struct StatusArgs {
    /// `s3` (the [publish] section) or `dir:PATH`.
    #[arg(long, default_value = "s3", value_name = "TARGET")]
    target: String,
    /// The gate key, to verify the live order URL.
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// Do not ask the CDN (base_url).
    #[arg(long)]
    no_cdn: bool,
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    aws: AwsArgs,
}

pub(super) fn run(g: &Global, a: StatusArgs) -> anyhow::Result<()> {
    let config = g.sale()?;
    let now = Utc::now().timestamp_millis();
    let (start, end) = (
        config.start.timestamp_millis(),
        config.end.timestamp_millis(),
    );
    let (phase, when) = if now < start {
        (
            "pending",
            format!(
                "starts in {} ({})",
                words(ms(start - now)),
                config.start.to_rfc3339()
            ),
        )
    } else if now <= end {
        (
            "open",
            format!(
                "started {} ago, ends in {} ({})",
                words(ms(now - start)),
                words(ms(end - now)),
                config.end.to_rfc3339()
            ),
        )
    } else {
        (
            "ended",
            format!(
                "ended {} ago ({})",
                words(ms(now - end)),
                config.end.to_rfc3339()
            ),
        )
    };
    let key = GateKey::load(a.key_file.as_deref()).ok();
    let rt = tokio::runtime::Runtime::new()?;
    let (bucket, cdn) = rt.block_on(async {
        let bucket = if a.target == "s3" && config.publish.is_none() {
            json!({ "error": "no [publish] section" })
        } else {
            match connect(&config, &a.target, &a.aws).await {
                Ok((remote, _)) => match switch::live(&remote).await {
                    Ok(live) => describe_live(&config, key.as_ref(), &live, &remote.describe()),
                    Err(e) => json!({ "target": remote.describe(), "error": e.to_string() }),
                },
                Err(e) => json!({ "error": e.to_string() }),
            }
        };
        let cdn = if a.no_cdn {
            serde_json::Value::Null
        } else {
            let url = format!(
                "{}/sale.js?v={}",
                config.base_url.trim_end_matches('/'),
                crate::util::random::hex(6)
            );
            let answer = Client::new().get(&url, Duration::from_secs(5)).await;
            match answer {
                Ok(r) if r.status == 200 => {
                    let live = Live::read(&r.body);
                    let mut v = describe_live(&config, key.as_ref(), &live, &url);
                    v["date"] = json!(r.date);
                    v
                }
                Ok(r) => json!({ "target": url, "error": format!("HTTP {}", r.status) }),
                Err(e) => json!({ "target": url, "error": e.to_string() }),
            }
        };
        (bucket, cdn)
    });
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "sale": config.name, "phase": phase, "now_ms": now, "start_ms": start, "end_ms": end,
                "bucket": bucket, "cdn": cdn,
            }))?
        );
        return Ok(());
    }
    g.say(format!(
        "Sale `{}` ({}): {phase} by the clock: {when}",
        config.name, config.title
    ));
    for (label, v) in [("bucket", &bucket), ("CDN", &cdn)] {
        if v.is_null() {
            continue;
        }
        let target = v["target"].as_str().unwrap_or("");
        match v["error"].as_str() {
            Some(e) => g.say(format!("  {label} {target}: {e}")),
            None => g.say(format!(
                "  {label} {target}: sale.js `{}`{}{}",
                v["state"].as_str().unwrap_or("?"),
                v["version"]
                    .as_str()
                    .map_or(String::new(), |s| format!(" (version {s})")),
                match v["order_url_verifies"].as_bool() {
                    Some(true) => ", order URL verifies with the key",
                    Some(false) => ", order URL does NOT verify with this key",
                    None => "",
                }
            )),
        }
        if let Some(d) = v.get("draw").filter(|d| d.is_object()) {
            let until =
                chrono::DateTime::from_timestamp_millis(d["until_ms"].as_i64().unwrap_or(0))
                    .map_or_else(String::new, |t| {
                        t.with_timezone(config.start.offset()).to_rfc3339()
                    });
            g.say(format!(
                "    fair start: orders until {until} are entries of a draw; commitment {}{}",
                d["commitment"].as_str().unwrap_or("?"),
                match d["commitment_matches_key"].as_bool() {
                    Some(true) => " (the gates' key makes it)",
                    Some(false) => " (NOT this key's: the gates would draw with another secret)",
                    None => "",
                }
            ));
        }
    }
    Ok(())
}

fn ms(v: i64) -> Duration {
    Duration::from_millis(v.max(0) as u64)
}

fn describe_live(
    config: &Config,
    key: Option<&GateKey>,
    live: &Live,
    target: &str,
) -> serde_json::Value {
    match live {
        Live::Missing => json!({ "target": target, "state": "missing" }),
        Live::Unreadable(e) => json!({ "target": target, "state": "unreadable", "error": e }),
        Live::Toggle(t) => {
            let mut v = json!({ "target": target, "state": t.state_name(), "version": t.v });
            if let State::Open { order, draw, .. } = &t.state {
                v["order_url"] = json!(order);
                if let Some(key) = key {
                    v["order_url_verifies"] = json!(minted_for(
                        key,
                        &config.name,
                        config.start.timestamp_millis(),
                        order
                    ));
                }
                if let Some(d) = draw {
                    v["draw"] = json!({ "until_ms": d.until, "commitment": d.commitment });
                    if let Some(key) = key {
                        // The gates draw with this key's secret: the same commitment?
                        let secret = crate::sale::draw::Secret::of(key, config);
                        v["draw"]["commitment_matches_key"] = json!(secret.opens(&d.commitment));
                    }
                }
            }
            v
        }
    }
}
