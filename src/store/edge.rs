//! What a CDN cache behaviour does with the toggle, and whether that keeps the
//! promise of its headers (`config::headers::TOGGLE`): every edge answers polls
//! from a copy at most a second or two old, so the origin sees about one
//! request per edge cache per second however many pages poll.
//!
//! Read from CloudFront by `CloudFront::toggle_caching`; judged here, so the
//! rules are tested without a distribution.

use crate::config::headers::TOGGLE_SHARED_SECONDS;

/// The longest an edge may keep the toggle before `check --remote` fails: the
/// switch must show on every page within this plus one poll (1–3 s).
pub(crate) const MAX_EDGE_SECONDS: i64 = 2;

/// CloudFront's managed cache policies flashsale knows without asking (their
/// IDs are fixed and documented in "Use managed cache policies", CloudFront
/// Developer Guide): name, id, MinTTL, DefaultTTL, MaxTTL, query strings in the key.
pub(crate) const MANAGED_POLICIES: &[(&str, &str, i64, i64, i64, bool)] = &[
    (
        "CachingDisabled",
        "4135ea2d-6df8-44a3-9df3-4b5a84be39ad",
        0,
        0,
        0,
        false,
    ),
    (
        "CachingOptimized",
        "658327ea-f89d-4fab-a63d-7e88639e58f6",
        1,
        86400,
        31536000,
        false,
    ),
    (
        "CachingOptimizedForUncompressedObjects",
        "b2884449-e4de-46a7-ac36-70bc7f1ddd6d",
        1,
        86400,
        31536000,
        false,
    ),
];

/// How one cache behaviour caches the toggle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ToggleCaching {
    /// Which behaviour applies: "cache behaviour `/sale.js`" or "the default cache behaviour".
    pub(crate) behaviour: String,
    /// Where its TTLs come from: "the managed cache policy CachingOptimized",
    /// "cache policy `<id>`", or "its legacy cache settings".
    pub(crate) source: String,
    /// Whether `source` is a cache policy (its settings are named differently).
    pub(crate) policy: bool,
    pub(crate) min_ttl: i64,
    /// What the edge applies when a response has no Cache-Control.
    pub(crate) default_ttl: i64,
    pub(crate) max_ttl: i64,
    /// The setting that puts the query string in the cache key, if one does.
    pub(crate) query_in_key: Option<String>,
    /// The setting that puts cookies in the cache key, if one does.
    pub(crate) cookies_in_key: Option<String>,
    /// Whether the origin has Origin Shield: one cache in front of the origin
    /// instead of one per regional edge cache.
    pub(crate) origin_shield: bool,
}

impl ToggleCaching {
    /// Seconds an edge answers polls from its copy, given the toggle's
    /// `s-maxage` and the behaviour's TTL bounds; 0: every poll is forwarded.
    pub(crate) fn edge_seconds(&self) -> i64 {
        if self.max_ttl <= 0 {
            return 0;
        }
        TOGGLE_SHARED_SECONDS.clamp(self.min_ttl.max(0), self.max_ttl.max(self.min_ttl))
    }

    /// Whether every poll reaches the origin: caching off, or a per-request
    /// value (the random `v`, a visitor's cookies) in the cache key.
    pub(crate) fn forwards_every_poll(&self) -> bool {
        self.edge_seconds() == 0 || self.query_in_key.is_some() || self.cookies_in_key.is_some()
    }

    /// What keeps the toggle's promise from holding, each naming the setting
    /// to change. Empty: the edge shields the origin and switches in time.
    pub(crate) fn problems(&self, toggle: &str) -> Vec<String> {
        let mut out = Vec::new();
        let at = format!("{} ({})", self.behaviour, self.source);
        let fix_policy = format!(
            "give {toggle} a cache behaviour with a cache policy that caches (MaxTTL at least {TOGGLE_SHARED_SECONDS}) and keeps query strings and cookies out of the cache key, e.g. the managed CachingOptimized"
        );
        if self.edge_seconds() == 0 {
            let setting = if self.policy {
                "the policy's MaxTTL is 0"
            } else {
                "its MaxTTL is 0"
            };
            out.push(format!(
                "{at} does not cache {toggle} ({setting}), so every poll of every open page goes to the origin: {fix_policy}"
            ));
        }
        if let Some(setting) = &self.query_in_key {
            out.push(format!(
                "{at} puts the query string in the cache key ({setting}); each poll carries a random `v`, so every poll goes to the origin: set it to none, or {fix_policy}"
            ));
        }
        if let Some(setting) = &self.cookies_in_key {
            out.push(format!(
                "{at} puts cookies in the cache key ({setting}); visitors' cookies differ, so their polls go to the origin: set it to none, or {fix_policy}"
            ));
        }
        if self.min_ttl > MAX_EDGE_SECONDS {
            out.push(format!(
                "{at} keeps {toggle} at least {} s (MinTTL {}), so pages may see the switch up to {} s late (until the invalidation lands) despite its s-maxage={TOGGLE_SHARED_SECONDS}: set MinTTL to 0 or 1",
                self.min_ttl, self.min_ttl, self.min_ttl
            ));
        }
        out
    }

    /// What holds today but may not: each naming the setting to change.
    pub(crate) fn warnings(&self, toggle: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.edge_seconds() > 0 && self.default_ttl.min(self.max_ttl) > MAX_EDGE_SECONDS {
            out.push(format!(
                "{} ({}) keeps a response without Cache-Control {} s (DefaultTTL): when the origin revalidates {toggle} with a 304 Not Modified that omits Cache-Control, the edge keeps the old toggle that long (until open's invalidation lands); set DefaultTTL and MaxTTL to 1 (the README's flashsale-toggle cache policy)",
                self.behaviour,
                self.source,
                self.default_ttl.min(self.max_ttl)
            ));
        }
        out
    }
}

/// A managed cache policy's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ManagedPolicy {
    pub(crate) name: &'static str,
    pub(crate) min_ttl: i64,
    pub(crate) default_ttl: i64,
    pub(crate) max_ttl: i64,
    pub(crate) query_in_key: bool,
}

/// The managed policy with this ID, if flashsale knows it.
#[cfg_attr(
    not(feature = "aws"),
    expect(
        dead_code,
        reason = "only the CloudFront client asks for managed policies"
    )
)]
pub(crate) fn managed_policy(id: &str) -> Option<ManagedPolicy> {
    MANAGED_POLICIES
        .iter()
        .find(|p| p.1.eq_ignore_ascii_case(id))
        .map(|p| ManagedPolicy {
            name: p.0,
            min_ttl: p.2,
            default_ttl: p.3,
            max_ttl: p.4,
            query_in_key: p.5,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caching(min: i64, max: i64) -> ToggleCaching {
        ToggleCaching {
            behaviour: "cache behaviour `/sale.js`".into(),
            source: "its legacy cache settings".into(),
            policy: false,
            min_ttl: min,
            default_ttl: 1,
            max_ttl: max,
            query_in_key: None,
            cookies_in_key: None,
            origin_shield: false,
        }
    }

    #[test]
    fn the_toggle_is_kept_for_its_s_maxage_within_the_ttl_bounds() {
        assert_eq!(caching(0, 31536000).edge_seconds(), 1);
        assert_eq!(caching(1, 86400).edge_seconds(), 1);
        assert_eq!(caching(0, 0).edge_seconds(), 0);
        assert_eq!(caching(30, 86400).edge_seconds(), 30);
        assert!(caching(0, 31536000).problems("/sale.js").is_empty());
        assert!(caching(2, 31536000).problems("/sale.js").is_empty());
    }

    #[test]
    fn caching_disabled_fails_naming_max_ttl() {
        let c = caching(0, 0);
        assert!(c.forwards_every_poll());
        let p = c.problems("/sale.js");
        assert_eq!(p.len(), 1);
        assert!(
            p[0].contains("MaxTTL is 0") && p[0].contains("CachingOptimized"),
            "{p:?}"
        );
    }

    #[test]
    fn a_query_string_or_cookies_in_the_key_fail_naming_the_setting() {
        let mut c = caching(0, 86400);
        c.query_in_key = Some("QueryString true".into());
        c.cookies_in_key = Some("Cookies forward all".into());
        assert!(c.forwards_every_poll());
        let p = c.problems("/sale.js");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("QueryString true") && p[0].contains("random `v`"));
        assert!(p[1].contains("Cookies forward all"));
    }

    #[test]
    fn a_long_default_ttl_warns_about_revalidations_without_cache_control() {
        let mut c = caching(1, 31536000);
        c.default_ttl = 86400;
        assert!(c.problems("/sale.js").is_empty());
        let w = c.warnings("/sale.js");
        assert!(
            w.len() == 1 && w[0].contains("86400 s (DefaultTTL)") && w[0].contains("304"),
            "{w:?}"
        );
        c.max_ttl = 1;
        assert!(c.warnings("/sale.js").is_empty());
        assert!(caching(0, 0).warnings("/sale.js").is_empty());
    }

    #[test]
    fn a_long_minimum_ttl_fails() {
        let c = caching(30, 86400);
        assert!(!c.forwards_every_poll());
        let p = c.problems("/sale.js");
        assert!(
            p.len() == 1 && p[0].contains("MinTTL 30") && p[0].contains("0 or 1"),
            "{p:?}"
        );
    }

    #[test]
    fn managed_policies_are_known_by_id() {
        let p = managed_policy("4135EA2D-6df8-44a3-9df3-4b5a84be39ad").unwrap();
        assert_eq!(
            (p.name, p.min_ttl, p.max_ttl, p.query_in_key),
            ("CachingDisabled", 0, 0, false)
        );
        let p = managed_policy("658327ea-f89d-4fab-a63d-7e88639e58f6").unwrap();
        assert_eq!((p.name, p.default_ttl), ("CachingOptimized", 86400));
        assert!(managed_policy("00000000-0000-0000-0000-000000000000").is_none());
    }
}
