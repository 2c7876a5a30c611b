//! The start draw of a fair start: orders that arrive in the first seconds
//! after the start are entries, and each item's units go to entrants drawn at
//! random, not to whoever arrived first. This module is the draw itself, pure
//! and public, so a shop (or `flashsale draw verify`) can recompute it.
//!
//! **Seed.** `HMAC-SHA256(key, "draw|<sale>|<round>")`, the round naming the
//! draw (the sale's start in Unix ms, so a re-opened order URL does not
//! change it, nor does another spelling of the same instant): every
//! gate of a fleet computes the same seed from the gate key, without talking
//! to the others. Its commitment,
//! `SHA-256(seed)`, can be published before the draw (by `open`, in the gate's
//! start log); the seed itself after it. Knowing the seed tells nothing of the
//! key: it is an HMAC output.
//!
//! **Draw.** Each entrant's ticket for an item is
//! `SHA-256(seed ‖ sku ‖ 0x00 ‖ user)`; the `units` entrants with the lowest
//! tickets win, in ticket order. As uniform as SHA-256 is random, independent
//! of the order entries arrived in (so of who was fastest), and the same on
//! every gate and in every recomputation.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::GateKey;

/// A sale's draw seed. Printed only on purpose (`to_hex`), after the draw.
#[derive(Clone, PartialEq, Eq)]
pub struct Seed([u8; 32]);

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seed(commitment {})", self.commitment())
    }
}

impl Seed {
    /// The seed of `sale`'s draw named `round` (the sale's start).
    pub fn derive(key: &GateKey, sale: &str, round: &str) -> Seed {
        Seed(key.derive(&[b"draw|", sale.as_bytes(), b"|", round.as_bytes()]))
    }

    /// The seed of `config`'s sale: its round is the sale's start as an
    /// instant, in Unix milliseconds — not as `site.toml` spells it, so
    /// rewriting `start` in another offset or with nanoseconds (one instant,
    /// millions of spellings) cannot choose among draws.
    pub(crate) fn of(key: &GateKey, config: &crate::config::Config) -> Seed {
        Seed::derive(
            key,
            &config.name,
            &config.start.timestamp_millis().to_string(),
        )
    }

    /// A revealed seed, as [`Seed::to_hex`] wrote it.
    pub fn from_hex(text: &str) -> Option<Seed> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).ok()?;
        Some(Seed(bytes))
    }

    /// The seed, to reveal once the draw is done.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// `SHA-256(seed)` in hex: published before the draw, it binds the gates
    /// to this seed without telling it.
    pub fn commitment(&self) -> String {
        hex::encode(Sha256::digest(self.0))
    }

    /// Whether this seed is the one `commitment` was made for.
    pub fn opens(&self, commitment: &str) -> bool {
        self.commitment().eq_ignore_ascii_case(commitment.trim())
    }
}

/// `user`'s ticket for `sku`: the lower, the earlier drawn.
pub fn ticket(seed: &Seed, sku: &str, user: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed.0);
    h.update(sku.as_bytes());
    h.update([0u8]);
    h.update(user.as_bytes());
    h.finalize().into()
}

/// The winners of `units` units of `sku` among `entrants` (each counted once,
/// whatever the order or repetition they came in), in ticket order. Fewer
/// entrants than units: every entrant wins.
pub fn draw<'a>(
    seed: &Seed,
    sku: &str,
    entrants: impl IntoIterator<Item = &'a str>,
    units: usize,
) -> Vec<&'a str> {
    let unique: BTreeSet<&'a str> = entrants.into_iter().collect();
    let mut ranked: Vec<([u8; 32], &'a str)> = unique
        .into_iter()
        .map(|u| (ticket(seed, sku, u), u))
        .collect();
    ranked.sort_unstable();
    ranked.into_iter().take(units).map(|(_, u)| u).collect()
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
    },
    /// `drawn`'s draw began: `units` units among `entrants` entrants, under
    /// the seed whose commitment is `commitment`.
    Drawn {
        drawn: String,
        units: u32,
        entrants: u32,
        commitment: String,
    },
    /// The draw is done: its seed, revealed.
    Seed { seed: String },
}

/// One item's draw, recomputed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub sku: String,
    pub units: u32,
    /// Entrants found in the entries (each once).
    pub entrants: usize,
    /// Entrants the gate counted when it drew (a larger number: entries lost).
    pub entrants_at_draw: u32,
    /// Whom the draw picks, in ticket order.
    pub expected: Vec<String>,
    /// Entrants the winners' journals name as winners of the item.
    pub published: Vec<String>,
}

impl Check {
    /// The published winners are exactly the drawn ones, from every entry.
    pub fn holds(&self) -> bool {
        let mut expected = self.expected.clone();
        expected.sort();
        self.entrants as u32 == self.entrants_at_draw && expected == self.published
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
}

/// Recomputes every item's draw recorded in `lines` (the entries of one gate
/// or of several) under `seed`, next to `winners` ((sku, user) pairs from the
/// winners' journals; winners who were not entrants came after the draw, first
/// come first served, and are left out).
pub fn verify<'a>(
    seed: &Seed,
    lines: &[Line],
    winners: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<Check> {
    let mut entrants: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut draws: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for line in lines {
        match line {
            Line::Entry { sku, user, .. } => {
                entrants.entry(sku).or_default().insert(user);
            }
            Line::Drawn {
                drawn,
                units,
                entrants,
                ..
            } => {
                let d = draws.entry(drawn).or_insert((*units, *entrants));
                // Several gates of a fleet: the largest count drawn over.
                *d = (d.0.max(*units), d.1.max(*entrants));
            }
            Line::Seed { .. } => {}
        }
    }
    let mut won: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (sku, user) in winners {
        if entrants.get(sku).is_some_and(|e| e.contains(user)) {
            won.entry(sku).or_default().insert(user);
        }
    }
    draws
        .into_iter()
        .map(|(sku, (units, at_draw))| {
            let those = entrants.get(sku).cloned().unwrap_or_default();
            Check {
                sku: sku.to_string(),
                units,
                entrants: those.len(),
                entrants_at_draw: at_draw,
                expected: draw(seed, sku, those.iter().copied(), units as usize)
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
                published: won
                    .get(sku)
                    .map(|w| w.iter().map(|u| u.to_string()).collect())
                    .unwrap_or_default(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(n: u8) -> Seed {
        Seed([n; 32])
    }

    #[test]
    fn one_instant_is_one_draw_however_start_is_spelled() {
        let key = GateKey::generate();
        let of = |start: &str| {
            let toml = format!(
                "name = \"s\"\nbase_url = \"https://s.example.com/\"\nstart = {start}\nend = 2026-12-13T00:00:00Z\ncurrency = \"EUR\"\n[gate]\nurl = \"https://g.example.com/\"\n[[items]]\nsku = \"A\"\ntitle = \"A\"\nprice = 1\nstock = 3\n"
            );
            let config = crate::config::Config::parse(std::path::Path::new("site.toml"), toml)
                .unwrap_or_else(|e| panic!("{e:?}"));
            Seed::of(&key, &config)
        };
        let utc = of("2026-12-12T21:36:46Z");
        assert_eq!(utc, of("2026-12-12T15:36:46-06:00"));
        assert_eq!(utc, of("2026-12-12T21:36:46.000000001+00:00"));
        assert_ne!(
            utc,
            of("2026-12-12T21:36:47Z"),
            "another instant, another draw"
        );
        let users: Vec<String> = (0..40).map(|i| format!("u{i}")).collect();
        assert_eq!(
            draw(&utc, "A", users.iter().map(String::as_str), 3),
            draw(
                &of("2026-12-12T15:36:46-06:00"),
                "A",
                users.iter().map(String::as_str),
                3
            )
        );
    }

    #[test]
    fn the_draw_does_not_depend_on_arrival_order_or_repeats() {
        let users: Vec<String> = (0..500).map(|i| format!("u{i}")).collect();
        let forward = draw(&seed(1), "MUG", users.iter().map(String::as_str), 7);
        let mut shuffled: Vec<&str> = users.iter().rev().map(String::as_str).collect();
        shuffled.extend(users.iter().take(50).map(String::as_str)); // the eager ask twice
        let backward = draw(&seed(1), "MUG", shuffled, 7);
        assert_eq!(forward, backward);
        assert_eq!(forward.len(), 7);
        // Another seed or another item: another draw.
        assert_ne!(
            forward,
            draw(&seed(2), "MUG", users.iter().map(String::as_str), 7)
        );
        assert_ne!(
            forward,
            draw(&seed(1), "SOCK", users.iter().map(String::as_str), 7)
        );
        // Fewer entrants than units: all of them.
        assert_eq!(draw(&seed(1), "MUG", ["b", "a", "b"], 5).len(), 2);
    }

    #[test]
    fn every_entrant_has_the_same_chance() {
        // 10 entrants, 1 unit, 20,000 seeds: each should win ~2,000 times.
        // Chi-square with 9 degrees of freedom; 27.88 is its 0.1 % critical value.
        let users: Vec<String> = (0..10).map(|i| format!("customer-{i}")).collect();
        let mut wins = [0u32; 10];
        for n in 0..20_000u32 {
            let mut bytes = [0u8; 32];
            bytes[..4].copy_from_slice(&n.to_le_bytes());
            let w = draw(&Seed(bytes), "MUG", users.iter().map(String::as_str), 1)[0];
            wins[users.iter().position(|u| u == w).unwrap()] += 1;
        }
        let expected = 2_000.0;
        let chi2: f64 = wins
            .iter()
            .map(|&w| (f64::from(w) - expected).powi(2) / expected)
            .sum();
        assert!(chi2 < 27.88, "wins {wins:?}, chi-square {chi2:.1}");
    }

    #[test]
    fn verify_recomputes_a_draw_and_names_a_tampered_one() {
        let s = seed(7);
        let entry = |user: &str| Line::Entry {
            sku: "MUG".into(),
            user: user.into(),
            time: "2026-12-12T12:00:00.100Z".into(),
            gate: "g1".into(),
        };
        let users: Vec<String> = (0..30).map(|i| format!("u{i}")).collect();
        let mut lines: Vec<Line> = users.iter().map(|u| entry(u)).collect();
        lines.push(Line::Drawn {
            drawn: "MUG".into(),
            units: 3,
            entrants: 30,
            commitment: s.commitment(),
        });
        let drawn = draw(&s, "MUG", users.iter().map(String::as_str), 3);
        // A late customer won a leftover unit: not part of the draw.
        let mut winners: Vec<(&str, &str)> = drawn.iter().map(|u| ("MUG", *u)).collect();
        winners.push(("MUG", "late-customer"));
        let checks = verify(&s, &lines, winners.clone());
        assert_eq!(checks.len(), 1);
        assert!(checks[0].holds(), "{checks:?}");
        // One winner swapped for an entrant who was not drawn.
        let other = users.iter().find(|u| !drawn.contains(&u.as_str())).unwrap();
        winners[0] = ("MUG", other);
        assert!(!verify(&s, &lines, winners.clone())[0].holds());
        // Another seed draws others.
        assert!(!verify(&seed(8), &lines, drawn.iter().map(|u| ("MUG", *u)))[0].holds());
        // An entry missing from the record: the count at the draw says so.
        assert!(!verify(&s, &lines[1..], drawn.iter().map(|u| ("MUG", *u)))[0].holds());
        // Lines read back as they were written.
        for l in &lines[29..] {
            let text = serde_json::to_string(l).unwrap();
            assert_eq!(&serde_json::from_str::<Line>(&text).unwrap(), l);
        }
        let seed_line = Line::Seed { seed: s.to_hex() };
        let text = serde_json::to_string(&seed_line).unwrap();
        assert_eq!(serde_json::from_str::<Line>(&text).unwrap(), seed_line);
    }

    #[test]
    fn the_seed_comes_from_the_key_and_the_round_and_matches_its_commitment() {
        let key = GateKey::generate();
        let start = "2026-12-12T20:00:00+08:00";
        let a = Seed::derive(&key, "winter", start);
        assert_eq!(
            a,
            Seed::derive(&key, "winter", start),
            "every gate gets the same"
        );
        assert_ne!(a, Seed::derive(&key, "winter", "2026-12-13T20:00:00+08:00"));
        assert_ne!(a, Seed::derive(&GateKey::generate(), "winter", start));
        let revealed = Seed::from_hex(&a.to_hex()).unwrap();
        assert!(revealed.opens(&a.commitment()));
        assert!(!Seed::derive(&key, "other", start).opens(&a.commitment()));
        assert!(
            !format!("{a:?}").contains(&a.to_hex()),
            "Debug never shows the seed"
        );
    }
}
