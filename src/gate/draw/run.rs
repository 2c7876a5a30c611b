//! The draw itself, at the window's end: each item's units drawn among its
//! entrants (`sale::draw`), the drawn admitted through the stock and
//! recorded like any winner, the seed revealed; one gate alone, or one gate
//! per item of a fleet under the ledger's lease.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::super::record::Recorder;
use super::super::stock::{Admission, Stock, Verdict};
use super::{Closed, DrawError, Entrants, Phase, StartDraw, DRAW_GRACE};
use crate::journal::JournalError;
use crate::ledger::Ledger;
use crate::sale::draw::{self, Line};

/// Waits for the window's end (on the draw's clock), then draws every item:
/// the drawn are admitted through `stock` and recorded, then entrants get
/// their answers. Ends early if the gate stops during the window.
pub(in crate::gate) async fn run(d: Arc<StartDraw>, stock: Arc<Stock>, recorder: Arc<Recorder>) {
    let mut phase = d.phase.subscribe();
    tokio::select! {
        _ = d.clock.until(d.until_ms) => {}
        _ = phase.wait_for(|p| *p == Phase::Stopped) => return,
    }
    let mut result = draw_all(&d, &stock, &recorder).await;
    // A fleet's ledger may be away for a moment: try again while entrants wait.
    let give_up = tokio::time::Instant::now() + DRAW_GRACE;
    while let Err(e) = &result {
        if d.fleet.is_none() || tokio::time::Instant::now() >= give_up {
            break;
        }
        if d.phase() == Phase::Stopped {
            return;
        }
        tracing::warn!(error = %e, "draw_retry");
        tokio::time::sleep(Duration::from_millis(200)).await;
        result = draw_all(&d, &stock, &recorder).await;
    }
    match result {
        Ok(()) => {
            d.phase.send_if_modified(|p| {
                let go = *p == Phase::Entering;
                if go {
                    *p = Phase::Done;
                }
                go
            });
        }
        Err(e) => {
            tracing::error!(
                error = %e,
                hint = "entrants are answered 503; their entries stand and the gate draws when it starts again",
                "draw_failed"
            );
            d.stop();
        }
    }
}

/// Draws every item, then reveals the seed; the entrants' answers follow.
async fn draw_all(
    d: &StartDraw,
    stock: &Arc<Stock>,
    recorder: &Arc<Recorder>,
) -> Result<(), DrawError> {
    let items = d.close().await?;
    let all = match &d.fleet {
        None => draw_here(d, stock, recorder, items).await?,
        Some(ledger) => draw_in_fleet(d, stock, recorder, ledger, items).await?,
    };
    let seed = d.seed.to_hex();
    // Revealed once the draw is done, for `flashsale draw verify`.
    d.journal.append(Line::Seed { seed: seed.clone() }).await?;
    let _ = d.done.set(all);
    tracing::info!(
        seed,
        commitment = d.seed.commitment(),
        hint =
            "the seed is revealed; `flashsale draw verify` recomputes the draw from the journals",
        "draw_done"
    );
    Ok(())
}

/// One gate's draw: each item's units are what its stock has left (recorded
/// first; after a restart, what was recorded).
async fn draw_here(
    d: &StartDraw,
    stock: &Arc<Stock>,
    recorder: &Arc<Recorder>,
    items: Closed,
) -> Result<Entrants, DrawError> {
    let remaining: BTreeMap<String, u32> = stock
        .counts()
        .into_iter()
        .map(|c| (c.sku.clone(), c.remaining()))
        .collect();
    let mut all = Entrants::new();
    for (sku, entrants, recorded) in items {
        let entrants: Vec<String> = entrants.iter().map(|u| u.to_string()).collect();
        let units = match recorded {
            Some(u) => u,
            None => {
                let units = remaining.get(&sku).copied().unwrap_or(0);
                d.record_draw(&sku, units, entrants.len()).await?;
                units
            }
        };
        draw_item(stock, recorder, d, &sku, &entrants, units).await?;
        all.insert(sku, entrants.into_iter().map(Into::into).collect());
    }
    Ok(all)
}

/// A fleet's draw: per item, the gate holding the ledger's lease draws among
/// every gate's entrants; the others wait until it is done.
async fn draw_in_fleet(
    d: &StartDraw,
    stock: &Arc<Stock>,
    recorder: &Arc<Recorder>,
    ledger: &Ledger,
    items: Closed,
) -> Result<Entrants, DrawError> {
    let mut all = Entrants::new();
    for (sku, _, _) in items {
        // Until the fleet's draw of this item is done, by this gate or another.
        while !ledger.drawn(&sku).await? {
            if !ledger.lease_draw(&sku, &d.gate_id).await? {
                if d.phase() == Phase::Stopped {
                    return Err(DrawError::Unavailable);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            let (units, entrants) = ledger.close_entries(&sku).await?;
            d.record_draw(&sku, units, entrants.len()).await?;
            draw_item(stock, recorder, d, &sku, &entrants, units).await?;
            ledger.draw_done(&sku).await?;
        }
        // Every gate's entrants, read once (the answers after the draw must
        // not ask the ledger who entered).
        let (_, everyone) = ledger.close_entries(&sku).await?;
        all.insert(sku, everyone.into_iter().map(Into::into).collect());
    }
    Ok(all)
}

impl StartDraw {
    /// Records, before anyone is admitted, the units `sku`'s draw is for.
    async fn record_draw(&self, sku: &str, units: u32, entrants: usize) -> Result<(), DrawError> {
        self.journal
            .append(Line::Drawn {
                drawn: sku.to_string(),
                units,
                entrants: entrants as u32,
                commitment: self.seed.commitment(),
            })
            .await?;
        Ok(())
    }
}

/// Draws `units` of `sku` among `entrants` and admits the drawn together,
/// in ticket order, journaling them together (one group commit).
async fn draw_item(
    stock: &Arc<Stock>,
    recorder: &Arc<Recorder>,
    d: &StartDraw,
    sku: &str,
    entrants: &[String],
    units: u32,
) -> Result<(), DrawError> {
    let winners = draw::draw(
        &d.seed,
        sku,
        entrants.iter().map(String::as_str),
        units as usize,
    );
    let mut fresh = 0;
    let mut writes = Vec::new();
    // All at once: in a fleet the attempts go to the ledger together, as
    // many per call as it takes (not one round trip per winner), in ticket
    // order (each is queued at its first poll, in this order).
    let verdicts = futures_util::future::join_all(
        winners
            .iter()
            .map(|user| stock.admit(sku, user, || recorder.next_order())),
    )
    .await;
    for (user, verdict) in winners.iter().zip(verdicts) {
        match verdict {
            Verdict::Won(t) | Verdict::Adopt(t) => {
                fresh += 1;
                let (recorder, sku, user) = (recorder.clone(), sku.to_string(), user.to_string());
                writes.push(tokio::spawn(async move {
                    recorder.record(&t, &sku, &user).await
                }));
            }
            Verdict::Repeat(_) => {} // drawn before a restart or a takeover
            Verdict::SoldOut | Verdict::NoSuchItem => break,
            Verdict::Unavailable => return Err(DrawError::Unavailable),
        }
    }
    for w in writes {
        w.await.unwrap_or(Err(JournalError::Failed))?;
    }
    tracing::info!(
        sku,
        entrants = entrants.len(),
        units,
        drawn = winners.len(),
        admitted_now = fresh,
        "draw"
    );
    Ok(())
}
