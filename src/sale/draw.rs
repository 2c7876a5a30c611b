//! The start draw of a fair start: orders that arrive in the first seconds
//! after the start are entries, and each item's units go to entrants drawn at
//! random, not to whoever arrived first. This module is the draw itself, pure
//! and public, so a shop (or `flashsale draw verify`) can recompute it.
//!
//! **Seed.** `HMAC-SHA256(key, "draw|<sale>|<round>")`, the round naming the
//! draw (the sale's start, so a re-opened order URL does not change it): every
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

use std::collections::BTreeSet;
use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(n: u8) -> Seed {
        Seed([n; 32])
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
