//! The draw itself, at the window's end: each item's units drawn among its
//! entrants (`sale::draw`), the drawn admitted through the stock and
//! recorded like any winner, the seed revealed; one gate alone, or one gate
//! per item of a fleet under the ledger's lease.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use super::super::record::Recorder;
use super::super::stock::{Admission, Stock, Verdict};
use super::{Closed, DrawError, Entrants, Phase, StartDraw, DRAW_GRACE};
use crate::journal::JournalError;
use crate::ledger::{Ledger, DRAW_LEASE};
use crate::sale::draw::{DrawnItem, Line, Published, PUBLISHED};

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
        Ok(drawn) => {
            d.phase.send_if_modified(|p| {
                let go = *p == Phase::Entering;
                if go {
                    *p = Phase::Done;
                }
                go
            });
            // The entrants are being answered: the published draw (a few
            // MB for 100,000 entrants) is written meanwhile, not before.
            let writer = d.clone();
            let _ = tokio::task::spawn_blocking(move || writer.write_published(drawn)).await;
            tracing::info!(
                secret = d.secret.to_hex(),
                commitment = d.secret.commitment(),
                hint = "the secret is revealed; `flashsale draw publish` publishes the draw, `flashsale draw verify` recomputes it",
                "draw_done"
            );
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

/// Draws every item, then reveals the secret; the entrants' answers follow,
/// and what the sale publishes (`draw.json` in the journal directory) is
/// written from the items returned.
async fn draw_all(
    d: &StartDraw,
    stock: &Arc<Stock>,
    recorder: &Arc<Recorder>,
) -> Result<Vec<DrawnItem>, DrawError> {
    let items = d.close().await?;
    let (all, drawn) = match &d.fleet {
        None => draw_here(d, stock, recorder, items).await?,
        Some(ledger) => draw_in_fleet(d, stock, recorder, ledger, items).await?,
    };
    // Revealed once the draw is done, for `flashsale draw verify`.
    d.journal
        .append(Line::Revealed {
            secret: d.secret.to_hex(),
        })
        .await?;
    let _ = d.done.set(all);
    Ok(drawn)
}

/// One gate's draw: each item's units are what its stock has left (recorded
/// first; after a restart, what was recorded).
async fn draw_here(
    d: &StartDraw,
    stock: &Arc<Stock>,
    recorder: &Arc<Recorder>,
    items: Closed,
) -> Result<(Entrants, Vec<DrawnItem>), DrawError> {
    let remaining: BTreeMap<String, u32> = stock
        .counts()
        .into_iter()
        .map(|c| (c.sku.clone(), c.remaining()))
        .collect();
    let mut all = Entrants::new();
    let mut drawn = Vec::new();
    for (sku, entrants, recorded) in items {
        let entrants: Vec<String> = entrants.iter().map(|u| u.to_string()).collect();
        let units = recorded.unwrap_or_else(|| remaining.get(&sku).copied().unwrap_or(0));
        let (item, whose) = d.item(&sku, units, &entrants);
        if recorded.is_none() {
            d.record_draw(&item).await?;
        }
        draw_item(stock, recorder, &item, &whose).await?;
        all.insert(sku, entrants.into_iter().map(Into::into).collect());
        drawn.push(item);
    }
    Ok((all, drawn))
}

/// A fleet's draw: per item, the gate holding the ledger's lease draws among
/// every gate's entrants; the others wait until it is done.
async fn draw_in_fleet(
    d: &StartDraw,
    stock: &Arc<Stock>,
    recorder: &Arc<Recorder>,
    ledger: &Ledger,
    items: Closed,
) -> Result<(Entrants, Vec<DrawnItem>), DrawError> {
    let mut all = Entrants::new();
    let mut drawn = Vec::new();
    for (sku, _, _) in items {
        // Until the fleet's draw of this item is done, by this gate or another.
        while !ledger.drawn(&sku).await? {
            if d.phase() == Phase::Stopped {
                return Err(DrawError::Unavailable);
            }
            if !ledger.lease_draw(&sku, &d.gate_id).await? {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            // Held while this gate draws, however long the draw takes.
            let _renewed = Renewal::start(ledger, &sku, &d.gate_id);
            // Closed by the ledger's clock, not this gate's (one ahead waits).
            let (units, entrants) = loop {
                if let Some(closed) = ledger.close_entries(&sku, d.until_ms).await? {
                    break closed;
                }
                if d.phase() == Phase::Stopped {
                    return Err(DrawError::Unavailable);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            let (item, whose) = d.item(&sku, units, &entrants);
            d.record_draw(&item).await?;
            draw_item(stock, recorder, &item, &whose).await?;
            ledger.draw_done(&sku).await?;
        }
        // Every gate's entrants, read once (the answers after the draw must
        // not ask the ledger who entered).
        let (units, everyone) = ledger
            .close_entries(&sku, d.until_ms)
            .await?
            .ok_or(DrawError::Unavailable)?;
        drawn.push(d.item(&sku, units, &everyone).0);
        all.insert(sku, everyone.into_iter().map(Into::into).collect());
    }
    Ok((all, drawn))
}

/// Renews a draw's lease in the ledger until dropped, so a draw longer
/// than [`DRAW_LEASE`] is not taken over (and done twice) by another gate.
struct Renewal(tokio::task::JoinHandle<()>);

impl Renewal {
    fn start(ledger: &Ledger, sku: &str, gate: &str) -> Renewal {
        let (ledger, sku, gate) = (ledger.clone(), sku.to_string(), gate.to_string());
        Renewal(tokio::spawn(async move {
            loop {
                tokio::time::sleep(DRAW_LEASE / 3).await;
                match ledger.lease_draw(&sku, &gate).await {
                    Ok(true) => tracing::info!(sku, "draw_lease_renewed"),
                    Ok(false) => {
                        tracing::warn!(sku, "draw_lease_lost");
                        return;
                    }
                    Err(e) => tracing::warn!(sku, error = %e, "draw_lease_renewal_failed"),
                }
            }
        }))
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whose each leaf of a draw is.
type Whose = HashMap<String, String>;

impl StartDraw {
    /// `sku`'s draw of `units` among `entrants`, and whose each leaf is.
    fn item(&self, sku: &str, units: u32, entrants: &[String]) -> (DrawnItem, Whose) {
        let whose: Whose = entrants
            .iter()
            .map(|u| (self.leaf(sku, u), u.clone()))
            .collect();
        let item = DrawnItem::new(
            &self.sale,
            self.round_ms,
            &self.secret,
            sku,
            units,
            whose.keys().cloned(),
        );
        (item, whose)
    }

    /// Records, before anyone is admitted, the units an item's draw is for
    /// and the root of its entrant set.
    async fn record_draw(&self, item: &DrawnItem) -> Result<(), DrawError> {
        self.journal
            .append(Line::Drawn {
                drawn: item.sku.clone(),
                units: item.units,
                entrants: item.entrants as u32,
                root: item.root.clone(),
                commitment: self.secret.commitment(),
            })
            .await?;
        Ok(())
    }

    /// Writes what the sale publishes after the draw, `draw.json`, into the
    /// journal directory (`flashsale draw publish` uploads it; the preview
    /// serves it). A failure is logged: the journals hold all of it.
    fn write_published(&self, items: Vec<DrawnItem>) {
        let published = Published {
            sale: self.sale.clone(),
            round: self.round_ms,
            commitment: self.secret.commitment(),
            secret: self.secret.to_hex(),
            receipt_key: self.receipt_key(),
            items,
        };
        let path = self.dir.join(PUBLISHED);
        let text = serde_json::to_vec(&published).expect("plain data serialises");
        if let Err(e) = crate::util::fs::write_durably(&path, &text) {
            tracing::error!(path = %path.display(), error = %e, "draw_file_failed");
        }
    }
}

/// Draws `units` of `sku` among `entrants` and admits the drawn together,
/// in ticket order, journaling them together (one group commit).
async fn draw_item(
    stock: &Arc<Stock>,
    recorder: &Arc<Recorder>,
    item: &DrawnItem,
    whose: &Whose,
) -> Result<(), DrawError> {
    let sku = item.sku.as_str();
    let winners: Vec<&str> = item.winners.iter().map(|l| whose[l].as_str()).collect();
    let mut fresh = 0;
    let mut writes = Vec::new();
    // All at once: in a fleet the attempts go to the ledger together, as
    // many per call as it takes (not one round trip per winner), in ticket
    // order (each is queued at its first poll, in this order).
    let verdicts = futures_util::future::join_all(
        winners
            .iter()
            .map(|user| stock.admit(sku, user, &**recorder)),
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
        entrants = item.entrants,
        units = item.units,
        drawn = winners.len(),
        admitted_now = fresh,
        "draw"
    );
    Ok(())
}
