use std::time::Duration;

use clap::Args;

use flashsale::config::Config;
use flashsale::sale::{State, Toggle};
use flashsale::switch::{self, Live};

use super::switching::{self, SwitchArgs};
use super::Global;

/// Close the sale: switch sale.js to `ended` (pages send everyone to
/// ended.html) and invalidate it. Waits for --at (default: the sale's end);
/// --now closes at once; --when-sold-out closes as soon as every gate reports
/// every item sold out, and at the latest at --at. Closing a closed sale
/// changes nothing.
#[derive(Args, Debug)]
pub struct CloseArgs {
    #[command(flatten)]
    pub switch: SwitchArgs,
    /// Close as soon as all the gates are sold out (their /metrics show 0 remaining).
    #[arg(long, requires = "gates")]
    pub when_sold_out: bool,
    /// The gates' base URLs, comma-separated (http://10.0.0.1:8080,...).
    #[arg(long, value_delimiter = ',', value_name = "URL,URL")]
    pub gates: Vec<String>,
    /// How often to ask the gates.
    #[arg(long, default_value = "1s", value_parser = super::publish::parse_duration)]
    pub poll: Duration,
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
    let early: Option<switching::Early> = a.when_sold_out.then(|| {
        let gates = a.gates.clone();
        let every = a.poll;
        let (quiet, json) = (g.quiet, a.switch.json);
        let mut last = String::new();
        Box::pin(async move {
            switch::wait_sold_out(&gates, every, move |round| {
                let line: Vec<String> = round
                    .iter()
                    .map(|(gate, r)| match r {
                        Ok(n) => format!("{gate}: {n} left"),
                        Err(e) => format!("{gate}: {e}"),
                    })
                    .collect();
                let line = line.join("; ");
                if !quiet && !json && line != last {
                    eprintln!("  gates: {line}");
                    last = line;
                }
            })
            .await;
            format!("every gate is sold out ({})", gates.join(", "))
        }) as switching::Early
    });
    switching::run(g, &config, &a.switch, "close", config.end, plan, early)
}
