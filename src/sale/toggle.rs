//! The toggle script `sale.js`: `build` writes `pending`, `open` and `close`
//! write `open` and `ended`, the page runtime and `status` read it. All of
//! them go through this module, so they cannot disagree. The script is one
//! call, `flashsale({...});`, whose argument is JSON.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Upper bound on the script's size: it is fetched by every visitor, often.
pub const MAX_TOGGLE_BYTES: usize = 512;

/// The toggle's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Toggle {
    /// A version; a new one at every switch, so clients can tell switches apart.
    pub v: String,
    #[serde(flatten)]
    pub state: State,
}

/// What the page should do now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum State {
    /// Before the start: count down to `start` (Unix milliseconds).
    Pending { start: i64 },
    /// On sale: the buy form posts to `order`, until `end` (Unix milliseconds).
    Open {
        order: String,
        end: i64,
        /// A fair start: orders until `draw.until` are entries of a draw.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        draw: Option<Draw>,
    },
    /// Over (time is up or sold out): send visitors to `ended`.
    Ended { ended: String },
}

/// A fair start's draw, as the open toggle announces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draw {
    /// Orders until then (Unix milliseconds, the gates' clock) are entries;
    /// their answers come once the draw is done, shortly after.
    pub until: i64,
    /// `SHA-256(secret)` of the draw (`sale::draw::Secret::commitment`):
    /// the secret is revealed after the draw, and anyone can check it opens
    /// this.
    pub commitment: String,
    /// The Ed25519 public key (hex) that signs the entrants' receipts.
    #[serde(default)]
    pub receipt_key: String,
}

impl Toggle {
    /// The state written by `build`. Its version is derived from the sale, so the
    /// same input builds the same bytes.
    pub fn pending(sale: &str, start_ms: i64) -> Toggle {
        let digest = Sha256::digest(format!("pending|{sale}|{start_ms}"));
        Toggle {
            v: hex::encode(&digest[..8]),
            state: State::Pending { start: start_ms },
        }
    }

    /// A switched state with a fresh random version.
    pub fn switched(state: State) -> Toggle {
        Toggle {
            v: crate::util::random::hex(8),
            state,
        }
    }

    pub fn state_name(&self) -> &'static str {
        match self.state {
            State::Pending { .. } => "pending",
            State::Open { .. } => "open",
            State::Ended { .. } => "ended",
        }
    }

    /// The script text: `flashsale({...});` and a newline.
    pub fn to_script(&self) -> String {
        let json = serde_json::to_string(self).expect("a toggle always serialises");
        format!("flashsale({json});\n")
    }

    /// Reads a script written by [`Toggle::to_script`].
    pub fn parse_script(text: &str) -> Result<Toggle, String> {
        let inner = text
            .trim()
            .strip_prefix("flashsale(")
            .and_then(|s| s.trim_end_matches(';').strip_suffix(')'))
            .ok_or_else(|| "not a flashsale toggle: expected `flashsale({...});`".to_string())?;
        serde_json::from_str(inner).map_err(|e| format!("toggle JSON is invalid: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_state() {
        for state in [
            State::Pending {
                start: 1_796_000_000_000,
            },
            State::Open {
                order: "https://gate.example.com/o/demo/ab.cd".into(),
                end: 1_796_000_600_000,
                draw: None,
            },
            State::Open {
                order: "https://gate.example.com/o/demo/ab.cd".into(),
                end: 1_796_000_600_000,
                draw: Some(Draw {
                    until: 1_796_000_004_000,
                    commitment: "ab".repeat(32),
                    receipt_key: "cd".repeat(32),
                }),
            },
            State::Ended {
                ended: "/ended.html".into(),
            },
        ] {
            let t = Toggle::switched(state);
            let script = t.to_script();
            assert!(script.starts_with("flashsale({\"v\":\""), "{script}");
            assert!(script.len() <= MAX_TOGGLE_BYTES);
            assert_eq!(Toggle::parse_script(&script).unwrap(), t);
        }
    }

    #[test]
    fn pending_is_deterministic_and_switches_are_not() {
        assert_eq!(Toggle::pending("a", 1), Toggle::pending("a", 1));
        assert_ne!(Toggle::pending("a", 1).v, Toggle::pending("a", 2).v);
        let s = State::Ended {
            ended: "/ended.html".into(),
        };
        assert_ne!(Toggle::switched(s.clone()).v, Toggle::switched(s).v);
    }
}
