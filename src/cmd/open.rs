use clap::Args;

use flashsale::config::Config;
use flashsale::sale::{self, GateKey, State, Toggle};
use flashsale::switch::Live;

use super::switching::{self, SwitchArgs};
use super::Global;

/// Open the sale: mint the order URL, switch sale.js to `open`, invalidate it.
///
/// Waits for --at (default: the sale's start), with everything prepared
/// before: the key read, credentials resolved, the connection to S3 warm, the
/// new toggle in memory only (never stored where a visitor could read it
/// early). At the second it does one small PUT and the invalidation, then
/// reports how late the switch landed. Running it again keeps the live URL
/// (--rotate mints a new one). The order URL is
/// <gate>/o/<sale>/<nonce>.<HMAC-SHA256(key, sale|nonce)>.
#[derive(Args, Debug)]
pub struct OpenArgs {
    #[command(flatten)]
    pub switch: SwitchArgs,
    /// Mint a new order URL even if the sale is open already.
    #[arg(long)]
    pub rotate: bool,
}

pub fn run(g: &Global, a: OpenArgs) -> anyhow::Result<()> {
    let config = Config::load(&g.config)?;
    let key = GateKey::load(a.switch.key_file.as_deref())?;
    let end_ms = config.end.timestamp_millis();
    if chrono::Utc::now().timestamp_millis() > end_ms && !a.switch.force {
        anyhow::bail!(
            "the sale ended at {} (site.toml `end`): nothing to open; change `end`, or pass --force",
            config.end.to_rfc3339()
        );
    }
    let (rotate, force) = (a.rotate, a.switch.force);
    let plan = move |config: &Config, live: &Live| -> anyhow::Result<Option<Toggle>> {
        if let Live::Toggle(t) = live {
            match &t.state {
                State::Open { order, .. } if !rotate && url_is_ours(config, &key, order) => {
                    return Ok(None)
                }
                State::Ended { .. } if !force => anyhow::bail!(
                    "sale.js is `ended`: the sale was closed; pass --force to open it again"
                ),
                _ => {}
            }
        }
        let token = key.mint(&config.name);
        let url = sale::order_url(&config.gate.url, &config.name, &token);
        Ok(Some(Toggle::switched(State::Open {
            order: url,
            end: end_ms,
        })))
    };
    switching::run(g, &config, &a.switch, "open", config.start, plan, None)
}

/// Whether a live order URL is this sale's and was minted with this key.
fn url_is_ours(config: &Config, key: &GateKey, url: &str) -> bool {
    url.starts_with(&config.gate.url) && sale::minted_for(key, &config.name, url)
}
