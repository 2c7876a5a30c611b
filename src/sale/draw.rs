//! The start draw of a fair start: orders that arrive in the first seconds
//! after the start are entries, and each item's units go to entrants drawn at
//! random, not to whoever arrived first. This module is the draw itself, pure
//! and public, so a shop, an auditor (`flashsale draw verify`) or a few lines
//! of JavaScript on the page can recompute it.
//!
//! Nobody can know or steer the draw before the entries are closed:
//!
//! - **The secret** `HMAC-SHA256(gate key, "draw|<sale>|<round>")`, the round
//!   being the sale's start in Unix milliseconds (one instant, one round,
//!   however `site.toml` spells it). Its commitment `SHA-256(secret)` is
//!   announced before the start (the open `sale.js`, the gate's start log);
//!   the secret is revealed after the draw. Every gate of a fleet computes
//!   it alone. A key holder knows it in advance — which is why it is not
//!   the seed alone.
//! - **The entrant set**: each entrant is a *leaf*,
//!   `HMAC-SHA256(gate key, "entry|<sale>|<sku>\0<user>")` (a customer's
//!   identity is not published; their receipt names their leaf). An item's
//!   *root* is `SHA-256` of its sorted leaves (hex, one per line), fixed
//!   when its entries close.
//! - **The seed** of an item, `SHA-256("flashsale-draw|<sale>|<round>|<sku>|
//!   <secret>|<root>")`: it changes with every entrant added or dropped, so
//!   whoever knows the secret learns the draw only once the set is closed,
//!   and cannot choose it without choosing entrants (minting identities is
//!   the identity provider's to stop, not the draw's).
//! - **Tickets**: `SHA-256("<seed>|<leaf>")`; the `units` lowest win, in
//!   ticket order — uniform, and independent of arrival order and speed.
//!
//! All hashes are over UTF-8 text with lowercase hex, so the page's runtime
//! recomputes them with `crypto.subtle.digest`.
//!
//! **Receipts.** An entrant's answer carries a receipt: the sale, the round,
//! the item, its leaf and an Ed25519 signature under a key derived from the
//! gate key (its public half announced with the commitment). After the draw
//! the sale publishes [`Published`] (`draw.json`): commitment, secret, and
//! per item the leaves, root, seed and winners. Holding a receipt, anyone can
//! check they were in the set and that the winners follow; a receipt whose
//! leaf is missing proves an entry was dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ring::signature::{self, Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::GateKey;

/// The published draw's file name, next to `ended.html`.
pub const PUBLISHED: &str = crate::config::headers::DRAW_PATH;

/// A sale's draw secret, committed to before the start. Printed only on
/// purpose (`to_hex`), after the draw.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; 32]);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(commitment {})", self.commitment())
    }
}

impl Secret {
    /// The secret of `sale`'s draw at the instant `round_ms` (its start).
    pub fn derive(key: &GateKey, sale: &str, round_ms: i64) -> Secret {
        let round = round_ms.to_string();
        Secret(key.derive(&[b"draw|", sale.as_bytes(), b"|", round.as_bytes()]))
    }

    /// The secret of `config`'s sale: its round is the start as an instant
    /// (Unix ms) — not as `site.toml` spells it, so rewriting `start` in
    /// another offset or with nanoseconds cannot choose among draws.
    pub(crate) fn of(key: &GateKey, config: &crate::config::Config) -> Secret {
        Secret::derive(key, &config.name, config.start.timestamp_millis())
    }

    /// A revealed secret, as [`Secret::to_hex`] wrote it.
    pub fn from_hex(text: &str) -> Option<Secret> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).ok()?;
        Some(Secret(bytes))
    }

    /// The secret, to reveal once the draw is done.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// `SHA-256(secret)` in hex: announced before the start.
    pub fn commitment(&self) -> String {
        hex::encode(Sha256::digest(self.0))
    }

    /// Whether this secret is the one `commitment` was made for.
    pub fn opens(&self, commitment: &str) -> bool {
        self.commitment().eq_ignore_ascii_case(commitment.trim())
    }
}

fn sha_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// `user`'s leaf in `sku`'s draw of `sale`: what the entrant set, the
/// receipts and the published file name them by.
pub fn leaf(key: &GateKey, sale: &str, sku: &str, user: &str) -> String {
    hex::encode(key.derive(&[
        b"entry|",
        sale.as_bytes(),
        b"|",
        sku.as_bytes(),
        b"\0",
        user.as_bytes(),
    ]))
}

/// The commitment to an entrant set: `SHA-256` of its leaves, sorted and
/// each once, one per line.
pub fn root<'a>(leaves: impl IntoIterator<Item = &'a str>) -> String {
    let sorted: BTreeSet<&str> = leaves.into_iter().collect();
    sha_hex(&sorted.into_iter().collect::<Vec<_>>().join("\n"))
}

/// The seed of `sku`'s draw: from the round, the secret and the set's root.
pub fn seed(sale: &str, round_ms: i64, sku: &str, secret: &Secret, root: &str) -> String {
    sha_hex(&format!(
        "flashsale-draw|{sale}|{round_ms}|{sku}|{}|{root}",
        secret.to_hex()
    ))
}

/// A leaf's ticket under `seed`: the lower, the earlier drawn.
pub fn ticket(seed: &str, leaf: &str) -> String {
    sha_hex(&format!("{seed}|{leaf}"))
}

/// The `units` winning leaves among `leaves` (each counted once, whatever the
/// order or repetition they came in), in ticket order. Fewer leaves than
/// units: every one wins.
pub fn draw<'a>(
    seed: &str,
    leaves: impl IntoIterator<Item = &'a str>,
    units: usize,
) -> Vec<&'a str> {
    let unique: BTreeSet<&'a str> = leaves.into_iter().collect();
    let mut ranked: Vec<(String, &'a str)> =
        unique.into_iter().map(|l| (ticket(seed, l), l)).collect();
    ranked.sort_unstable();
    ranked.into_iter().take(units).map(|(_, l)| l).collect()
}

/// One item's draw as published: everything needed to recompute it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawnItem {
    pub sku: String,
    pub units: u32,
    /// How many leaves (entrants).
    pub entrants: usize,
    /// [`root`] of `leaves`.
    pub root: String,
    /// [`seed`] from the secret and `root`.
    pub seed: String,
    /// The drawn leaves, in ticket order.
    pub winners: Vec<String>,
    /// Every entrant's leaf, sorted.
    pub leaves: Vec<String>,
}

impl DrawnItem {
    /// `sku`'s draw of `units` among `leaves` under `secret`.
    pub fn new(
        sale: &str,
        round_ms: i64,
        secret: &Secret,
        sku: &str,
        units: u32,
        leaves: impl IntoIterator<Item = String>,
    ) -> DrawnItem {
        let leaves: Vec<String> = leaves
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let root = root(leaves.iter().map(String::as_str));
        let seed = seed(sale, round_ms, sku, secret, &root);
        let winners = draw(&seed, leaves.iter().map(String::as_str), units as usize)
            .into_iter()
            .map(str::to_string)
            .collect();
        DrawnItem {
            sku: sku.to_string(),
            units,
            entrants: leaves.len(),
            root,
            seed,
            winners,
            leaves,
        }
    }
}

/// What a sale publishes after its draw (`draw.json`, next to `ended.html`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub sale: String,
    /// The sale's start, Unix milliseconds: the draw's round.
    pub round: i64,
    /// `SHA-256(secret)`, as announced before the start.
    pub commitment: String,
    /// The secret, revealed.
    pub secret: String,
    /// The Ed25519 public key (hex) the entry receipts are signed with.
    pub receipt_key: String,
    pub items: Vec<DrawnItem>,
}

/// Where a receipt's entrant stands in a published draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub sku: String,
    pub entrants: usize,
    pub drawn: bool,
}

impl Published {
    /// What in the file does not follow from the file itself: the secret
    /// not opening the commitment, a root, seed or winner list that does not
    /// come from the leaves. Empty: it holds.
    pub fn problems(&self) -> Vec<String> {
        let mut why = Vec::new();
        let Some(secret) = Secret::from_hex(&self.secret) else {
            return vec![format!("the secret `{}` is not 64 hex digits", self.secret)];
        };
        if !secret.opens(&self.commitment) {
            why.push(format!(
                "the secret does not open the commitment {}",
                self.commitment
            ));
        }
        for item in &self.items {
            let again = DrawnItem::new(
                &self.sale,
                self.round,
                &secret,
                &item.sku,
                item.units,
                item.leaves.iter().cloned(),
            );
            let sku = &item.sku;
            if again.leaves != item.leaves {
                why.push(format!(
                    "{sku}: the leaves are not sorted, or one is listed twice"
                ));
            }
            if item.entrants != item.leaves.len() {
                why.push(format!(
                    "{sku}: {} entrants announced, {} leaves listed",
                    item.entrants,
                    item.leaves.len()
                ));
            }
            if again.root != item.root {
                why.push(format!(
                    "{sku}: the root {} does not open: the leaves give {}",
                    item.root, again.root
                ));
            }
            if again.seed != item.seed {
                why.push(format!(
                    "{sku}: the seed does not follow from the round, the secret and the root"
                ));
            }
            if again.winners != item.winners {
                why.push(format!(
                    "{sku}: the winners do not follow: the draw picks {}, the file says {}",
                    short(&again.winners),
                    short(&item.winners)
                ));
            }
        }
        why
    }

    pub fn item(&self, sku: &str) -> Option<&DrawnItem> {
        self.items.iter().find(|i| i.sku == sku)
    }

    /// Where `receipt`'s entrant stands, or why the receipt proves the draw
    /// wrong (or is not one of this sale's).
    pub fn standing(&self, receipt: &Receipt) -> Result<Standing, String> {
        if !receipt.signed_by(&self.receipt_key) {
            return Err(format!(
                "the receipt is not signed by the receipt key {} (another sale's, or altered)",
                self.receipt_key
            ));
        }
        if receipt.sale != self.sale || receipt.round != self.round {
            return Err(format!(
                "the receipt is for sale {} at {}, this draw is {} at {}",
                receipt.sale, receipt.round, self.sale, self.round
            ));
        }
        let Some(item) = self.item(&receipt.sku) else {
            return Err(format!(
                "DROPPED: the gate signed an entry for {}, and no draw of it is published",
                receipt.sku
            ));
        };
        if item.leaves.binary_search(&receipt.leaf).is_err() {
            return Err(format!(
                "DROPPED: the gate signed this entry ({}), and it is not among the {} published entrants of {}",
                receipt.leaf, item.entrants, item.sku
            ));
        }
        Ok(Standing {
            sku: item.sku.clone(),
            entrants: item.entrants,
            drawn: item.winners.contains(&receipt.leaf),
        })
    }
}

/// `a, b, c` of leaves, each shortened to 12 digits.
fn short(leaves: &[String]) -> String {
    if leaves.is_empty() {
        return "nobody".to_string();
    }
    leaves
        .iter()
        .map(|l| l.get(..12).unwrap_or(l))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An entrant's proof of entry, signed by the gate when it took the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub sale: String,
    pub round: i64,
    pub sku: String,
    pub leaf: String,
    /// Ed25519 over `flashsale-receipt|<sale>|<round>|<sku>|<leaf>`, hex.
    pub sig: String,
}

impl Receipt {
    fn message(sale: &str, round: i64, sku: &str, leaf: &str) -> String {
        format!("flashsale-receipt|{sale}|{round}|{sku}|{leaf}")
    }

    /// Whether the public key (hex) signed this receipt as it stands.
    pub fn signed_by(&self, public_hex: &str) -> bool {
        let (Ok(key), Ok(sig)) = (hex::decode(public_hex.trim()), hex::decode(&self.sig)) else {
            return false;
        };
        signature::UnparsedPublicKey::new(&signature::ED25519, key)
            .verify(
                Receipt::message(&self.sale, self.round, &self.sku, &self.leaf).as_bytes(),
                &sig,
            )
            .is_ok()
    }
}

/// Signs a sale's receipts: an Ed25519 key derived from the gate key, so
/// every gate of a fleet (and `open`, which announces its public half) has
/// the same one without another secret to hand out.
pub struct Signer {
    pair: Ed25519KeyPair,
    sale: String,
    round: i64,
}

impl Signer {
    pub fn new(key: &GateKey, sale: &str, round_ms: i64) -> Signer {
        let seed = key.derive(&[b"receipt|", sale.as_bytes()]);
        Signer {
            pair: Ed25519KeyPair::from_seed_unchecked(&seed)
                .expect("any 32 bytes are an Ed25519 seed"),
            sale: sale.to_string(),
            round: round_ms,
        }
    }

    /// The public key, hex: announced with the commitment.
    pub fn public_hex(&self) -> String {
        hex::encode(self.pair.public_key().as_ref())
    }

    /// The receipt of `leaf`'s entry into `sku`'s draw.
    pub fn sign(&self, sku: &str, leaf: &str) -> Receipt {
        let msg = Receipt::message(&self.sale, self.round, sku, leaf);
        Receipt {
            sale: self.sale.clone(),
            round: self.round,
            sku: sku.to_string(),
            leaf: leaf.to_string(),
            sig: hex::encode(self.pair.sign(msg.as_bytes()).as_ref()),
        }
    }
}

/// One line of a gate's `entries.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Line {
    /// An order that arrived in the window: `user` entered `sku`'s draw.
    Entry {
        sku: String,
        user: String,
        /// RFC 3339, UTC, milliseconds, by the gate's clock.
        time: String,
        gate: String,
        /// The entrant's [`leaf`] (what their receipt names).
        leaf: String,
    },
    /// `drawn`'s draw began: `units` units among `entrants` entrants whose
    /// set has the [`root`] `root`, under the secret whose commitment is
    /// `commitment`.
    Drawn {
        drawn: String,
        units: u32,
        entrants: u32,
        root: String,
        commitment: String,
    },
    /// The draw is done: its secret, revealed.
    Revealed { secret: String },
}

/// One item's draw, recomputed from the journals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub sku: String,
    pub units: u32,
    /// Entrants found in the entries (each once).
    pub entrants: usize,
    /// Entrants the gate counted when it drew (a larger number: entries lost).
    pub entrants_at_draw: u32,
    /// The root of the entries found, and the one recorded at the draw.
    pub root: String,
    pub root_at_draw: String,
    /// Whom the draw picks, in ticket order.
    pub expected: Vec<String>,
    /// Entrants the winners' journals name as winners of the item.
    pub published: Vec<String>,
    /// The entrants' leaves, sorted, and whose each is.
    pub leaves: BTreeMap<String, String>,
}

impl Check {
    /// The published winners are exactly the drawn ones, from every entry.
    pub fn holds(&self) -> bool {
        let mut expected = self.expected.clone();
        expected.sort();
        self.entrants as u32 == self.entrants_at_draw
            && self.root == self.root_at_draw
            && expected == self.published
    }

    /// What is wrong when it does not hold, in words.
    pub fn explain(&self) -> String {
        let but_not = |a: &[String], b: &[String]| -> Vec<String> {
            a.iter().filter(|u| !b.contains(u)).cloned().collect()
        };
        let mut why = Vec::new();
        if self.entrants as u32 != self.entrants_at_draw {
            why.push(format!(
                "the gate drew among {} entrants, the journals hold {}",
                self.entrants_at_draw, self.entrants
            ));
        } else if self.root != self.root_at_draw {
            why.push(format!(
                "the entries are not the set the gate drew among (root {}, recorded {})",
                self.root, self.root_at_draw
            ));
        }
        let missing = but_not(&self.expected, &self.published);
        let extra = but_not(&self.published, &self.expected);
        if !missing.is_empty() {
            why.push(format!("drawn but not winners: {}", missing.join(", ")));
        }
        if !extra.is_empty() {
            why.push(format!("winners not drawn: {}", extra.join(", ")));
        }
        why.join("; ")
    }

    /// What the published file says that this item's journals do not: a
    /// dropped entrant (named), a leaf nobody entered, other winners or units.
    pub fn against(&self, published: &Published) -> Vec<String> {
        let sku = &self.sku;
        let Some(item) = published.item(sku) else {
            return vec![format!(
                "{sku}: drawn in the journals, absent from the published file"
            )];
        };
        let mut why = Vec::new();
        let listed: BTreeSet<&str> = item.leaves.iter().map(String::as_str).collect();
        let dropped: Vec<&str> = self
            .leaves
            .iter()
            .filter(|(l, _)| !listed.contains(l.as_str()))
            .map(|(_, u)| u.as_str())
            .collect();
        if !dropped.is_empty() {
            why.push(format!(
                "{sku}: entrants in the journals but not in the published set: {}",
                dropped.join(", ")
            ));
        }
        let unknown = listed
            .iter()
            .filter(|l| !self.leaves.contains_key(**l))
            .count();
        if unknown > 0 {
            why.push(format!(
                "{sku}: {unknown} published leaves that no journal's entry holds"
            ));
        }
        if item.units != self.units {
            why.push(format!(
                "{sku}: {} units published, {} drawn",
                item.units, self.units
            ));
        }
        let expected: Vec<&String> = self
            .expected
            .iter()
            .filter_map(|u| self.leaves.iter().find(|(_, w)| *w == u).map(|(l, _)| l))
            .collect();
        if item.winners.iter().collect::<Vec<_>>() != expected {
            why.push(format!(
                "{sku}: the published winners are not the drawn ones"
            ));
        }
        why
    }
}

/// What journals record of a sale's draw: its one commitment and, once the
/// draw is done, the secret revealed after it.
#[derive(Debug)]
pub struct Recorded<'a> {
    pub commitment: &'a str,
    pub secret: Option<Secret>,
}

/// The draw `lines` record: `None` before any draw began; an error (in
/// words) when they hold two commitments — journals of another sale or key.
pub fn recorded(lines: &[Line]) -> Result<Option<Recorded<'_>>, String> {
    let commitments: BTreeSet<&str> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Drawn { commitment, .. } => Some(commitment.as_str()),
            _ => None,
        })
        .collect();
    let Some(commitment) = commitments.first().copied() else {
        return Ok(None);
    };
    if commitments.len() > 1 {
        let all: Vec<&str> = commitments.into_iter().collect();
        return Err(format!(
            "the journals record {} commitments ({}): another sale's or key's journal is among them",
            all.len(),
            all.join(", ")
        ));
    }
    let secret = lines.iter().rev().find_map(|l| match l {
        Line::Revealed { secret } => Secret::from_hex(secret),
        _ => None,
    });
    Ok(Some(Recorded { commitment, secret }))
}

/// Recomputes every item's draw recorded in `lines` (the entries of one gate
/// or of several) under `secret`, next to `winners` ((sku, user) pairs from
/// the winners' journals; winners who were not entrants came after the draw,
/// first come first served, and are left out).
pub fn verify<'a>(
    secret: &Secret,
    sale: &str,
    round_ms: i64,
    lines: &[Line],
    winners: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<Check> {
    // Per item: leaf → user.
    let mut entrants: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    let mut draws: BTreeMap<&str, (u32, u32, &str)> = BTreeMap::new();
    for line in lines {
        match line {
            Line::Entry {
                sku, user, leaf, ..
            } => {
                entrants.entry(sku).or_default().insert(leaf, user);
            }
            Line::Drawn {
                drawn,
                units,
                entrants,
                root,
                ..
            } => {
                let d = draws.entry(drawn).or_insert((*units, *entrants, root));
                // Several gates of a fleet: the largest count drawn over.
                if *entrants > d.1 {
                    *d = (d.0.max(*units), *entrants, root);
                }
            }
            Line::Revealed { .. } => {}
        }
    }
    let mut won: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (sku, user) in winners {
        if entrants
            .get(sku)
            .is_some_and(|e| e.values().any(|u| *u == user))
        {
            won.entry(sku).or_default().insert(user);
        }
    }
    draws
        .into_iter()
        .map(|(sku, (units, at_draw, root_at_draw))| {
            let those = entrants.get(sku).cloned().unwrap_or_default();
            let item = DrawnItem::new(
                sale,
                round_ms,
                secret,
                sku,
                units,
                those.keys().map(|l| l.to_string()),
            );
            Check {
                sku: sku.to_string(),
                units,
                entrants: those.len(),
                entrants_at_draw: at_draw,
                root: item.root,
                root_at_draw: root_at_draw.to_string(),
                expected: item
                    .winners
                    .iter()
                    .map(|l| those[l.as_str()].to_string())
                    .collect(),
                published: won
                    .get(sku)
                    .map(|w| w.iter().map(|u| u.to_string()).collect())
                    .unwrap_or_default(),
                leaves: those
                    .iter()
                    .map(|(l, u)| (l.to_string(), u.to_string()))
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> GateKey {
        GateKey::parse(&"5a".repeat(32), "test").unwrap()
    }

    fn leaves(key: &GateKey, sku: &str, users: &[String]) -> Vec<String> {
        users.iter().map(|u| leaf(key, "s", sku, u)).collect()
    }

    fn users(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("u{i}")).collect()
    }

    fn published(key: &GateKey, users: &[String], units: u32) -> Published {
        let secret = Secret::derive(key, "s", 1_000);
        Published {
            sale: "s".into(),
            round: 1_000,
            commitment: secret.commitment(),
            secret: secret.to_hex(),
            receipt_key: Signer::new(key, "s", 1_000).public_hex(),
            items: vec![DrawnItem::new(
                "s",
                1_000,
                &secret,
                "A",
                units,
                leaves(key, "A", users),
            )],
        }
    }

    #[test]
    fn one_instant_is_one_draw_however_start_is_spelled() {
        let key = key();
        let of = |start: &str| {
            let toml = format!(
                "name = \"s\"\nbase_url = \"https://s.example.com/\"\nstart = {start}\nend = 2026-12-13T00:00:00Z\ncurrency = \"EUR\"\n[gate]\nurl = \"https://g.example.com/\"\n[[items]]\nsku = \"A\"\ntitle = \"A\"\nprice = 1\nstock = 3\n"
            );
            let config = crate::config::Config::parse(std::path::Path::new("site.toml"), toml)
                .unwrap_or_else(|e| panic!("{e:?}"));
            (Secret::of(&key, &config), config.start.timestamp_millis())
        };
        let utc = of("2026-12-12T21:36:46Z");
        assert_eq!(utc, of("2026-12-12T15:36:46-06:00"));
        assert_eq!(utc, of("2026-12-12T21:36:46.000000001+00:00"));
        assert_ne!(
            utc,
            of("2026-12-12T21:36:47Z"),
            "another instant, another draw"
        );
        // The same entrants: one draw for the three spellings.
        let set = leaves(&key, "A", &users(40));
        let winners = |(secret, round): (Secret, i64)| {
            let item = DrawnItem::new("s", round, &secret, "A", 3, set.clone());
            item.winners
        };
        assert_eq!(
            winners(utc.clone()),
            winners(of("2026-12-12T15:36:46-06:00"))
        );
        assert_eq!(
            winners(utc),
            winners(of("2026-12-12T21:36:46.000000001+00:00"))
        );
    }

    #[test]
    fn the_key_holder_cannot_know_the_winners_before_the_entries_close() {
        // Everything a key holder can compute before the close: the secret,
        // its commitment, the receipt key, every leaf so far — and the draw
        // as it would be if nobody else entered.
        let key = key();
        let secret = Secret::derive(&key, "s", 1_000);
        let so_far = leaves(&key, "A", &users(40));
        let predicted = DrawnItem::new("s", 1_000, &secret, "A", 3, so_far.clone()).winners;
        // One more entrant, any of twenty: the draw is another.
        let mut changed = 0;
        for late in 0..20 {
            let mut all = so_far.clone();
            all.push(leaf(&key, "s", "A", &format!("late-{late}")));
            let actual = DrawnItem::new("s", 1_000, &secret, "A", 3, all).winners;
            changed += usize::from(actual != predicted);
        }
        assert!(
            changed >= 18,
            "only {changed} of 20 late entrants changed the draw"
        );
        // And an entrant added to the published set after the fact breaks it.
        let mut p = published(&key, &users(40), 3);
        assert!(p.problems().is_empty(), "{:?}", p.problems());
        p.items[0].leaves.push(leaf(&key, "s", "A", "added-later"));
        p.items[0].leaves.sort();
        p.items[0].entrants += 1;
        let said = p.problems();
        assert!(said.iter().any(|w| w.contains("the root")), "{said:?}");
        // Re-rooting it too: then the seed draws others than published.
        let secret = Secret::from_hex(&p.secret).unwrap();
        p.items[0].root = root(p.items[0].leaves.iter().map(String::as_str));
        p.items[0].seed = seed("s", 1_000, "A", &secret, &p.items[0].root);
        let said = p.problems();
        assert!(
            said.iter().any(|w| w.contains("the winners do not follow")),
            "{said:?}"
        );
    }

    #[test]
    fn the_published_file_names_each_tampering() {
        let key = key();
        let good = published(&key, &users(30), 3);
        assert!(good.problems().is_empty(), "{:?}", good.problems());
        // A winner swapped for a leaf the draw did not pick.
        let mut p = good.clone();
        let other = p.items[0]
            .leaves
            .iter()
            .find(|l| !p.items[0].winners.contains(l))
            .unwrap()
            .clone();
        p.items[0].winners[0] = other;
        assert!(p.problems()[0].contains("the winners do not follow"));
        // Another secret: it does not open the commitment.
        let mut p = good.clone();
        p.secret = Secret::derive(&key, "s", 2_000).to_hex();
        assert!(p.problems()[0].contains("does not open the commitment"));
        // Another round (the start respelled to another instant): the seed.
        let mut p = good.clone();
        p.round = 1_001;
        assert!(
            p.problems()
                .iter()
                .any(|w| w.contains("the seed does not follow")),
            "{:?}",
            p.problems()
        );
        // Read back as written.
        let text = serde_json::to_string(&good).unwrap();
        assert_eq!(serde_json::from_str::<Published>(&text).unwrap(), good);
    }

    #[test]
    fn a_receipt_proves_an_entry_and_a_dropped_one() {
        let key = key();
        let signer = Signer::new(&key, "s", 1_000);
        let mut p = published(&key, &users(10), 2);
        let mine = signer.sign("A", &leaf(&key, "s", "A", "u3"));
        assert!(mine.signed_by(&p.receipt_key));
        let s = p.standing(&mine).unwrap();
        assert_eq!(
            (s.entrants, s.drawn),
            (10, p.items[0].winners.contains(&mine.leaf))
        );
        // Altered, or from another key: not a receipt of this sale.
        let mut forged = mine.clone();
        forged.leaf = leaf(&key, "s", "A", "u4");
        assert!(p.standing(&forged).unwrap_err().contains("not signed"));
        let stranger = Signer::new(&GateKey::generate(), "s", 1_000).sign("A", &mine.leaf);
        assert!(!stranger.signed_by(&p.receipt_key));
        // Dropped from the published set: the receipt says so.
        p.items[0].leaves.retain(|l| *l != mine.leaf);
        let said = p.standing(&mine).unwrap_err();
        assert!(said.starts_with("DROPPED"), "{said}");
        // Read back as written.
        let text = serde_json::to_string(&mine).unwrap();
        assert_eq!(serde_json::from_str::<Receipt>(&text).unwrap(), mine);
    }

    #[test]
    fn the_draw_does_not_depend_on_arrival_order_or_repeats() {
        let key = key();
        let set = leaves(&key, "MUG", &users(500));
        let s = "11".repeat(32);
        let forward = draw(&s, set.iter().map(String::as_str), 7);
        let mut shuffled: Vec<&str> = set.iter().rev().map(String::as_str).collect();
        shuffled.extend(set.iter().take(50).map(String::as_str)); // the eager ask twice
        assert_eq!(forward, draw(&s, shuffled, 7));
        assert_eq!(forward.len(), 7);
        assert_ne!(
            forward,
            draw(&"12".repeat(32), set.iter().map(String::as_str), 7)
        );
        // Fewer entrants than units: all of them.
        assert_eq!(draw(&s, ["b", "a", "b"], 5).len(), 2);
    }

    #[test]
    fn every_entrant_has_the_same_chance() {
        // 10 entrants, 1 unit, 20,000 seeds: each should win ~2,000 times.
        // Chi-square with 9 degrees of freedom; 27.88 is its 0.1 % critical value.
        let set = leaves(&key(), "MUG", &users(10));
        let mut wins = [0u32; 10];
        for n in 0..20_000u32 {
            let w = draw(&sha_hex(&n.to_string()), set.iter().map(String::as_str), 1)[0];
            wins[set.iter().position(|l| l == w).unwrap()] += 1;
        }
        let expected = 2_000.0;
        let chi2: f64 = wins
            .iter()
            .map(|&w| (f64::from(w) - expected).powi(2) / expected)
            .sum();
        assert!(chi2 < 27.88, "wins {wins:?}, chi-square {chi2:.1}");
    }

    #[test]
    fn verify_recomputes_a_draw_from_the_journals_and_names_a_tampered_one() {
        let key = key();
        let secret = Secret::derive(&key, "s", 1_000);
        let users = users(30);
        let entry = |user: &str| Line::Entry {
            sku: "MUG".into(),
            user: user.into(),
            time: "2026-12-12T12:00:00.100Z".into(),
            gate: "g1".into(),
            leaf: leaf(&key, "s", "MUG", user),
        };
        let mut lines: Vec<Line> = users.iter().map(|u| entry(u)).collect();
        let item = DrawnItem::new("s", 1_000, &secret, "MUG", 3, leaves(&key, "MUG", &users));
        lines.push(Line::Drawn {
            drawn: "MUG".into(),
            units: 3,
            entrants: 30,
            root: item.root.clone(),
            commitment: secret.commitment(),
        });
        let whose = |l: &String| {
            users
                .iter()
                .find(|u| leaf(&key, "s", "MUG", u) == *l)
                .unwrap()
        };
        let drawn: Vec<&String> = item.winners.iter().map(whose).collect();
        // A late customer won a leftover unit: not part of the draw.
        let mut winners: Vec<(&str, &str)> = drawn.iter().map(|u| ("MUG", u.as_str())).collect();
        winners.push(("MUG", "late-customer"));
        let checks = verify(&secret, "s", 1_000, &lines, winners.clone());
        assert_eq!(checks.len(), 1);
        assert!(checks[0].holds(), "{checks:?}");
        let p = Published {
            sale: "s".into(),
            round: 1_000,
            commitment: secret.commitment(),
            secret: secret.to_hex(),
            receipt_key: String::new(),
            items: vec![item.clone()],
        };
        assert!(
            checks[0].against(&p).is_empty(),
            "{:?}",
            checks[0].against(&p)
        );
        // One winner swapped for an entrant who was not drawn.
        let other = users.iter().find(|u| !drawn.contains(u)).unwrap();
        winners[0] = ("MUG", other);
        assert!(!verify(&secret, "s", 1_000, &lines, winners.clone())[0].holds());
        // Another secret draws others.
        let s2 = Secret::derive(&key, "s", 2_000);
        assert!(!verify(
            &s2,
            "s",
            1_000,
            &lines,
            drawn.iter().map(|u| ("MUG", u.as_str()))
        )[0]
        .holds());
        // An entry missing from the record: the count at the draw says so.
        let c = &verify(
            &secret,
            "s",
            1_000,
            &lines[1..],
            drawn.iter().map(|u| ("MUG", u.as_str())),
        )[0];
        assert!(
            c.explain()
                .contains("drew among 30 entrants, the journals hold 29"),
            "{}",
            c.explain()
        );
        // An entrant dropped from the published file: named.
        let mut dropped = p.clone();
        dropped.items[0]
            .leaves
            .retain(|l| *l != leaf(&key, "s", "MUG", "u7"));
        let said = checks[0].against(&dropped);
        assert!(said[0].contains("not in the published set: u7"), "{said:?}");
        // Lines read back as they were written.
        for l in &lines[29..] {
            let text = serde_json::to_string(l).unwrap();
            assert_eq!(&serde_json::from_str::<Line>(&text).unwrap(), l);
        }
        let revealed = Line::Revealed {
            secret: secret.to_hex(),
        };
        let text = serde_json::to_string(&revealed).unwrap();
        assert_eq!(serde_json::from_str::<Line>(&text).unwrap(), revealed);
    }

    #[test]
    fn the_secret_comes_from_the_key_and_the_round_and_matches_its_commitment() {
        let key = GateKey::generate();
        let a = Secret::derive(&key, "winter", 1_000);
        assert_eq!(
            a,
            Secret::derive(&key, "winter", 1_000),
            "every gate gets the same"
        );
        assert_ne!(a, Secret::derive(&key, "winter", 1_001));
        assert_ne!(a, Secret::derive(&GateKey::generate(), "winter", 1_000));
        let revealed = Secret::from_hex(&a.to_hex()).unwrap();
        assert!(revealed.opens(&a.commitment()));
        assert!(!Secret::derive(&key, "other", 1_000).opens(&a.commitment()));
        assert!(
            !format!("{a:?}").contains(&a.to_hex()),
            "Debug never shows the secret"
        );
    }
}
