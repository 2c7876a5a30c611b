use clap::Args;

use flashsale::config::Config;
use flashsale::sale::{State, Toggle};
use flashsale::switch::Live;

use super::switching::{self, SwitchArgs};
use super::Global;

/// Close the sale: switch sale.js to `ended` (pages send everyone to
/// ended.html) and invalidate it. Waits for --at (default: the sale's end);
/// --now closes at once. Closing a closed sale changes nothing.
#[derive(Args, Debug)]
pub struct CloseArgs {
    #[command(flatten)]
    pub switch: SwitchArgs,
}

pub fn run(g: &Global, a: CloseArgs) -> anyhow::Result<()> {
    let config = Config::load(&g.config)?;
    let ended = format!("{}ended.html", config.base_path);
    let plan = move |_: &Config, live: &Live| -> anyhow::Result<Option<Toggle>> {
        if let Live::Toggle(Toggle {
            state: State::Ended { .. },
            ..
        }) = live
        {
            return Ok(None);
        }
        Ok(Some(Toggle::switched(State::Ended {
            ended: ended.clone(),
        })))
    };
    switching::run(g, &config, &a.switch, "close", config.end, plan)
}
