//! `flashsale edge`: the CloudFront Function on the order path, and its test.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::edge::{corpus, Edge, MAX_FUNCTION_BYTES};
use crate::gate::EdgeRules;
use crate::sale::GateKey;

use super::prelude::{cookie_key, edge_step, gate_key, write_or_print, EdgeStep, Global};

/// The CDN's edge: a CloudFront Function (cloudfront-js-2.0, viewer request)
/// on the order path /o/* that refuses what every gate would refuse — a forged
/// or another sale's order URL, no signed identity cookie, another site's page,
/// outside the window, an unknown item (sku= in the query string) — and, once
/// the sale is closed or sold out, answers the sold-out way at the edge. The
/// gates stay the authority: everything else passes to them unchanged.
///
/// The function reads the sale's order key (derived from the gate key; never
/// the gate key), its window, the cookie key and its items from the
/// distribution's KeyValueStore; until they are there it passes everything.
#[derive(Args, Debug)]
pub(super) struct EdgeArgs {
    #[command(subcommand)]
    command: EdgeCommand,
}

#[derive(Subcommand, Debug)]
enum EdgeCommand {
    /// Write the function's code (to stdout, or a file) and say its size.
    Function {
        /// Write it here (atomically) instead of to stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Hold the function to the gate's own rules: generated order requests of
    /// every kind (valid, forged, early, late, unknown item, bad cookie, after
    /// sold out, …), each judged by the gate's checks and by the function in a
    /// JavaScript engine; every verdict must agree. Exits 1 if one does not.
    Test {
        /// How many requests.
        #[arg(long, default_value_t = 100_000)]
        requests: usize,
        /// A JavaScript engine to run the function in (`node`, `njs`, or a
        /// path); give it more than once for several.
        #[arg(long = "engine", value_name = "ENGINE", default_value = "node")]
        engines: Vec<String>,
        /// The corpus's seed (the same seed, the same requests).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Put the sale's keys in the [edge] KeyValueStore now: its order key
    /// (derived from the gate key), window, items and, with identity_cookie,
    /// the cookie key; take back an `ended` mark. `open` does this itself;
    /// run it earlier to give the edges more time (at least [edge] stage_ahead).
    Stage(KeyArgs),
    /// Mark the sale ended in the store: edges answer the sold-out way.
    /// `close` does this itself.
    End(StoreArgs),
    /// Take every key of the sale out of the store (after the sale).
    Clear(KeyArgs),
}

#[derive(Args, Debug)]
struct StoreArgs {
    #[command(flatten)]
    aws: super::prelude::AwsArgs,
}

#[derive(Args, Debug)]
struct KeyArgs {
    /// The gate key (default: $FLASHSALE_GATE_KEY).
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// The shop's cookie key (default: $FLASHSALE_COOKIE_KEY); with identity_cookie.
    #[arg(long, value_name = "PATH")]
    cookie_key_file: Option<PathBuf>,
    #[command(flatten)]
    aws: super::prelude::AwsArgs,
}

pub(super) fn run(g: &Global, a: EdgeArgs) -> anyhow::Result<()> {
    let config = g.sale()?;
    let edge = Edge::new(&config);
    match a.command {
        EdgeCommand::Function { output } => {
            let code = edge.function();
            anyhow::ensure!(
                code.len() <= MAX_FUNCTION_BYTES,
                "the function is {} bytes, over CloudFront's {MAX_FUNCTION_BYTES}",
                code.len()
            );
            write_or_print(output.as_deref(), &code)?;
            if let Some(path) = &output {
                g.say(format!(
                    "Wrote {}: {} bytes (CloudFront allows {MAX_FUNCTION_BYTES})",
                    path.display(),
                    code.len()
                ));
            }
            Ok(())
        }
        EdgeCommand::Test {
            requests,
            engines,
            seed,
        } => test(g, &config, &edge, requests, &engines, seed),
        EdgeCommand::Stage(k) => {
            let (key, cookie_key) = keys(&config, &k)?;
            edge_step(g, &config, &k.aws, EdgeStep::Stage { key, cookie_key })
        }
        EdgeCommand::End(s) => edge_step(g, &config, &s.aws, EdgeStep::End),
        EdgeCommand::Clear(k) => {
            let (key, cookie_key) = keys(&config, &k)?;
            edge_step(g, &config, &k.aws, EdgeStep::Clear { key, cookie_key })
        }
    }
}

/// The gate key, and the cookie key when identities are signed cookies.
fn keys(config: &crate::config::Config, k: &KeyArgs) -> anyhow::Result<(GateKey, Option<Vec<u8>>)> {
    let key = gate_key(k.key_file.as_deref())?;
    let cookie = match config.gate.identity {
        crate::config::Identity::Cookie(_) => cookie_key(k.cookie_key_file.as_deref())?,
        crate::config::Identity::Header(_) => None,
    };
    Ok((key, cookie))
}

fn test(
    g: &Global,
    config: &crate::config::Config,
    edge: &Edge,
    requests: usize,
    engines: &[String],
    seed: u64,
) -> anyhow::Result<()> {
    let items: Vec<String> = crate::site::items(config)?
        .into_iter()
        .map(|i| i.sku)
        .collect();
    // Keys of the test's own: nothing secret is written to the scratch files.
    let key = GateKey::generate();
    let cookie_key = crate::util::random::hex(16).into_bytes();
    let rules = EdgeRules::new(
        config,
        key.order_key(&config.name, config.start.timestamp_millis()),
        Some(cookie_key.clone()),
        items.clone(),
    )?;
    let store = edge.entries(config, &key, Some(&cookie_key), &items)?;
    let setup = corpus::Setup {
        config,
        key: &key,
        cookie_key: &cookie_key,
        items: &items,
    };
    let cases = corpus::generate(&setup, requests, seed);
    let code = edge.function().len();
    g.say(format!(
        "Function: {code} bytes (CloudFront allows {MAX_FUNCTION_BYTES}); {requests} requests, seed {seed}; identity: {}",
        edge.cookie.as_deref().map_or("a trusted proxy's header (not checked at the edge)".to_string(), |c| format!("signed cookie {c}"))
    ));
    let scratch = std::env::temp_dir().join(format!(
        "flashsale-edge-{}-{}",
        std::process::id(),
        crate::util::random::hex(4)
    ));
    let mut failed = false;
    for (i, engine) in engines.iter().enumerate() {
        let dir = scratch.join(i.to_string());
        let o = corpus::run(edge, &rules, &store, &cases, engine, &dir);
        if std::env::var_os("FLASHSALE_EDGE_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        let o = o?;
        g.say(format!(
            "{}: {} requests in {:.1} s: {} disagreements with the gate, {} valid orders refused, {} that must be refused passed",
            o.engine, o.cases, o.seconds, o.disagreements, o.valid_refused, o.invalid_passed
        ));
        for (class, (n, refused)) in &o.classes {
            g.detail(format!(
                "  {class:<15} {n:>7} requests, {refused:>7} refused at the edge"
            ));
        }
        for e in &o.examples {
            eprintln!("  {e}");
        }
        failed |= o.disagreements > 0 || o.valid_refused > 0 || o.invalid_passed > 0;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    anyhow::ensure!(!failed, "the function and the gate disagree (above)");
    Ok(())
}
