//! `[gate]`: where the order gates answer, how much each admits, who the
//! customer is, and where winners and losers go.

use serde::Deserialize;
use toml::Spanned;

use super::{http_url, Checker};

/// Keys of `[gate]`, with an example line for each.
pub(crate) const GATE_KEYS: &[(&str, &str)] = &[
    ("url", "url = \"https://gate.example.com\""),
    ("quota", "quota = 10"),
    ("gates", "gates = 10"),
    ("identity_header", "identity_header = \"X-User-Id\""),
    ("identity_cookie", "identity_cookie = \"shop_user\""),
    ("forward", "forward = \"https://orders.example.com/flash\""),
    ("forward_attempts", "forward_attempts = 8"),
    (
        "confirm_url",
        "confirm_url = \"https://shop.example.com/orders/{order}\"",
    ),
    (
        "ended_url",
        "ended_url = \"https://sale.example.com/ended.html\"",
    ),
    ("tolerance", "tolerance = \"2s\""),
    ("fair_window", "fair_window = \"4s\""),
    ("rate_limit", "rate_limit = 5"),
    ("client_ip_header", "client_ip_header = \"X-Forwarded-For\""),
    ("client_ip_hops", "client_ip_hops = 1"),
    ("ipv6_prefix", "ipv6_prefix = 64"),
    (
        "trusted_proxies",
        "trusted_proxies = [\"10.0.0.0/8\", \"fd00::/8\"]",
    ),
    ("ledger", "ledger = \"redis://127.0.0.1:6379/0\""),
    ("fleet", "fleet = [\"g1\", \"g2\", \"g3\"]"),
    (
        "admin",
        "admin = [\"http://10.0.0.11:9180\", \"http://10.0.0.12:9180\"]",
    ),
    ("ledger_replicas", "ledger_replicas = 1"),
    ("ledger_ca", "ledger_ca = \"certs/redis-ca.pem\""),
    (
        "ledger_password_file",
        "ledger_password_file = \"/run/secrets/ledger-password\"",
    ),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGate {
    url: Spanned<String>,
    quota: Option<Spanned<i64>>,
    gates: Option<Spanned<i64>>,
    identity_header: Option<Spanned<String>>,
    identity_cookie: Option<Spanned<String>>,
    forward: Option<Spanned<String>>,
    forward_attempts: Option<Spanned<i64>>,
    confirm_url: Option<Spanned<String>>,
    ended_url: Option<Spanned<String>>,
    tolerance: Option<Spanned<String>>,
    fair_window: Option<Spanned<String>>,
    rate_limit: Option<Spanned<i64>>,
    client_ip_header: Option<Spanned<String>>,
    client_ip_hops: Option<Spanned<i64>>,
    ipv6_prefix: Option<Spanned<i64>>,
    trusted_proxies: Option<Spanned<Vec<String>>>,
    ledger: Option<Spanned<String>>,
    fleet: Option<Spanned<Vec<String>>>,
    admin: Option<Spanned<Vec<String>>>,
    ledger_ca: Option<Spanned<String>>,
    ledger_password_file: Option<Spanned<String>>,
    ledger_replicas: Option<Spanned<i64>>,
}

#[derive(Debug, Clone)]
pub(crate) struct GateConfig {
    /// Public address of the order gates, without a trailing `/`.
    pub(crate) url: String,
    /// Units each gate admits per item; `None` with `gates` set: stock / gates.
    pub(crate) quota: Option<u32>,
    /// How many gates share each item's stock.
    pub(crate) gates: u32,
    pub(crate) identity: Identity,
    /// The order system's webhook for winners.
    pub(crate) forward: Option<String>,
    /// Failed deliveries in a row after which a winner is set aside, if
    /// the order system accepted other winners meanwhile (a poison record).
    pub(crate) forward_attempts: u32,
    /// Where a winner without JavaScript is sent; `{order}` is replaced.
    pub(crate) confirm_url: Option<String>,
    /// Where losers are sent (default: the sale's ended.html).
    pub(crate) ended_url: String,
    /// Clock tolerance around the sale window, in milliseconds.
    pub(crate) tolerance_ms: i64,
    /// A fair start: orders in the first this many milliseconds after the
    /// start are entries of a draw (`sale::draw`); `None`: first come, first served.
    pub(crate) fair_window_ms: Option<i64>,
    /// Requests per second per client (token bucket, burst of twice that); `None`: no limit.
    pub(crate) rate_limit: Option<u32>,
    /// A header set by a trusted proxy that names the client's address.
    pub(crate) client_ip_header: Option<String>,
    /// Which entry of that header is the client, from the right: 1 when one
    /// trusted proxy appends it, 2 with two trusted proxies, ...
    pub(crate) client_ip_hops: usize,
    /// An IPv6 client is its network of this many bits for the rate limit
    /// and the connection cap (one /64 is one household); IPv4 addresses
    /// count whole.
    pub(crate) ipv6_prefix: u8,
    /// The peers whose `client_ip_header` and identity header are believed
    /// (default: loopback, a proxy on the gate's own machine). From anyone
    /// else the peer is the client and a header identity is refused.
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
    /// The fleet's shared ledger (`redis://...`); `None`: each gate its own quota.
    /// Holds a password, maybe: never print it.
    pub(crate) ledger: Option<String>,
    /// The gate ids of the fleet on the ledger (each started with that
    /// `--gate-id`): after a lost ledger, the stock is loaded again only
    /// once each has put its winners back. Empty: not listed.
    pub(crate) fleet: Vec<String>,
    /// The gates' admin URLs (`--admin-listen`), for `watch` and `close
    /// --when-sold-out` when no --gates is given.
    pub(crate) admin: Vec<String>,
    /// How the gates reach the ledger beyond its URL: a CA for `rediss://`
    /// and where its password is.
    pub(crate) ledger_access: LedgerAccess,
    /// Replicas that must confirm a winner before it is acknowledged
    /// (`WAIT`); `None`: 1 when the primary has replicas at the gate's
    /// start, else 0.
    pub(crate) ledger_replicas: Option<u32>,
}

/// How to reach a ledger beyond its URL. Paths as written (relative to the
/// sale's directory until `Config::parse` resolves them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LedgerAccess {
    /// PEM certificates of the CA that signed the ledger's TLS certificate
    /// (a private CA); `None`: the system's roots.
    pub(crate) ca_file: Option<std::path::PathBuf>,
    /// A file holding the ledger's password (its first line), e.g. a mounted
    /// secret. `$FLASHSALE_LEDGER_PASSWORD` wins over it, and a password
    /// written into the URL over both.
    pub(crate) password_file: Option<std::path::PathBuf>,
}

/// Who is ordering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Identity {
    /// A header set by a trusted proxy (default `X-User-Id`).
    Header(String),
    /// A cookie `<user>.<hex HMAC-SHA256(key, user)>` signed by the shop.
    Cookie(String),
}

impl RawGate {
    /// `length_ms`: the sale's length (a fair start's window must be shorter).
    pub(crate) fn check(&self, base_url: &str, length_ms: i64, cx: &mut Checker) -> GateConfig {
        let url = self.url.get_ref().trim_end_matches('/').to_string();
        if http_url(&url).is_none() {
            cx.push(
                self.url.span(),
                format!("`{url}` is not an http(s) URL"),
                "write the public address of the order gates, e.g. `url = \"https://gate.example.com\"`",
            );
        }
        let quota = positive(cx, &self.quota, "quota", "10");
        let gates = positive(cx, &self.gates, "gates", "10").unwrap_or(1);
        let rate_limit = positive(cx, &self.rate_limit, "rate_limit", "5");
        if let (Some(q), Some(_)) = (&self.quota, &self.gates) {
            cx.push(
                q.span(),
                "set either `quota` (units per gate) or `gates` (stock split evenly), not both",
                "remove one of them",
            );
        }
        let identity = match (&self.identity_header, &self.identity_cookie) {
            (Some(_), Some(c)) => {
                cx.push(
                    c.span(),
                    "set either `identity_header` or `identity_cookie`, not both",
                    "a trusted proxy's header, or the shop's signed cookie: choose one",
                );
                Identity::Cookie(c.get_ref().clone())
            }
            (_, Some(c)) => Identity::Cookie(c.get_ref().clone()),
            (Some(h), None) => Identity::Header(h.get_ref().clone()),
            (None, None) => Identity::Header("X-User-Id".to_string()),
        };
        let forward = url_field(cx, &self.forward, "forward");
        let forward_attempts = match positive(cx, &self.forward_attempts, "forward_attempts", "8") {
            Some(n) if n <= 100 => n,
            Some(n) => {
                cx.push(
                    self.forward_attempts.as_ref().map_or(0..0, |a| a.span()),
                    format!("`forward_attempts = {n}`: a poison winner would hold its slot for hours"),
                    "at most 100; the default, 8, is about 13 s of retries (backoff from 100 ms, doubling)",
                );
                FORWARD_ATTEMPTS
            }
            None => FORWARD_ATTEMPTS,
        };
        let confirm_url = url_field(cx, &self.confirm_url, "confirm_url");
        let ended_url = url_field(cx, &self.ended_url, "ended_url")
            .unwrap_or_else(|| format!("{}/ended.html", base_url.trim_end_matches('/')));
        let tolerance_ms = match &self.tolerance {
            None => 2_000,
            Some(t) => match crate::util::duration::parse(t.get_ref()) {
                Ok(d) if d.as_millis() <= 60_000 => d.as_millis() as i64,
                _ => {
                    cx.push(
                        t.span(),
                        format!("`{}` is not a clock tolerance", t.get_ref()),
                        "write a short duration, at most a minute, e.g. `tolerance = \"2s\"` or `\"500ms\"`",
                    );
                    2_000
                }
            },
        };
        let fair_window_ms = self.fair_window.as_ref().and_then(|w| {
            match crate::util::duration::parse(w.get_ref()) {
                Ok(d) if d.as_millis() as i64 >= length_ms && length_ms > 0 => {
                    cx.push(
                        w.span(),
                        format!("a fair-start window of `{}` is as long as the sale", w.get_ref()),
                        "the draw is at the window's end, so the window must be a short part of the sale: e.g. `fair_window = \"4s\"`",
                    );
                    None
                }
                Ok(d) if d.as_millis() > 0 && d <= MAX_FAIR_WINDOW => Some(d.as_millis() as i64),
                _ => {
                    cx.push(
                        w.span(),
                        format!("`{}` is not a fair-start window", w.get_ref()),
                        "write a duration above zero and at most 30 s, e.g. `fair_window = \"4s\"` (every page sees `open` within 3 s of the start); remove the line for first come, first served",
                    );
                    None
                }
            }
        });
        let ledger = self.ledger.as_ref().map(|l| {
            let text = l.get_ref();
            // Sentinel: `redis+sentinel://host:26379,host:26379/<service>/<db>`
            // (read whole by `ledger`); else one node's URL.
            let sentinel = ["redis+sentinel://", "rediss+sentinel://"]
                .iter()
                .find_map(|p| text.strip_prefix(p))
                .map(|rest| {
                    rest.split_once('/')
                        .is_some_and(|(hosts, service)| !hosts.is_empty() && !service.is_empty())
                });
            // Cluster: `redis+cluster://host:6379,host:6379` (any nodes).
            let cluster = ["redis+cluster://", "rediss+cluster://"]
                .iter()
                .find_map(|p| text.strip_prefix(p))
                .map(|rest| {
                    let hosts = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                    let hosts = hosts.split_once('/').map_or(hosts, |(h, _)| h);
                    hosts.split(',').all(|h| !h.is_empty())
                });
            let ok = sentinel.or(cluster).unwrap_or_else(|| {
                url::Url::parse(text)
                    .is_ok_and(|u| matches!(u.scheme(), "redis" | "rediss") && u.host_str().is_some())
            });
            if !ok {
                cx.push_redacted(
                    l.span(),
                    "`ledger` is not a Redis URL",
                    "write it like `ledger = \"redis://127.0.0.1:6379/0\"` (TLS: rediss://; a user as rediss://USER@host:port/db, its password in `ledger_password_file` or $FLASHSALE_LEDGER_PASSWORD, not here; Sentinel: redis+sentinel://host:26379,host:26379/mymaster/0; cluster mode: redis+cluster://host:6379,host:6379)",
                );
            }
            l.get_ref().clone()
        });
        let fleet = self.fleet.as_ref().map_or_else(Vec::new, |f| fleet(cx, f));
        let admin = self.admin.as_ref().map_or_else(Vec::new, |a| {
            for u in a.get_ref() {
                if super::http_url(u).is_none() {
                    cx.push(
                        a.span(),
                        format!("`{u}` is not an http(s) URL"),
                        "list each gate's admin listener, e.g. `admin = [\"http://10.0.0.11:9180\"]`",
                    );
                }
            }
            a.get_ref().iter().map(|u| u.trim_end_matches('/').to_string()).collect()
        });
        let mut path = |v: &Option<Spanned<String>>, key: &str, example: &str| {
            let v = v.as_ref()?;
            if v.get_ref().trim().is_empty() {
                cx.push(
                    v.span(),
                    format!("`{key}` is empty"),
                    format!("name a file, e.g. `{key} = \"{example}\"`, or remove the line"),
                );
                return None;
            }
            Some(std::path::PathBuf::from(v.get_ref()))
        };
        let ledger_access = LedgerAccess {
            ca_file: path(&self.ledger_ca, "ledger_ca", "certs/redis-ca.pem"),
            password_file: path(
                &self.ledger_password_file,
                "ledger_password_file",
                "/run/secrets/ledger-password",
            ),
        };
        let ledger_replicas = self.ledger_replicas.as_ref().and_then(|n| {
            match u32::try_from(*n.get_ref()) {
                Ok(x) if x <= 5 => Some(x),
                _ => {
                    cx.push(
                        n.span(),
                        format!("`ledger_replicas = {}` is not 0 to 5", n.get_ref()),
                        "the replicas that must have a winner before it is answered, e.g. `ledger_replicas = 1`; 0 waits for none",
                    );
                    None
                }
            }
        });
        GateConfig {
            url,
            quota,
            gates,
            identity,
            forward,
            forward_attempts,
            confirm_url,
            ended_url,
            tolerance_ms,
            fair_window_ms,
            rate_limit,
            client_ip_header: self.client_ip_header.as_ref().map(|h| h.get_ref().clone()),
            client_ip_hops: match positive(cx, &self.client_ip_hops, "client_ip_hops", "1") {
                Some(n) if n <= 10 => n as usize,
                Some(n) => {
                    cx.push(
                        self.client_ip_hops.as_ref().map_or(0..0, |h| h.span()),
                        format!("`client_ip_hops = {n}`: that many trusted proxies?"),
                        "count the proxies you run that append to the header, e.g. `client_ip_hops = 1`",
                    );
                    1
                }
                None => 1,
            },
            ipv6_prefix: match &self.ipv6_prefix {
                None => 64,
                Some(p) if (16..=128).contains(p.get_ref()) => *p.get_ref() as u8,
                Some(p) => {
                    cx.push(
                        p.span(),
                        format!("`ipv6_prefix = {}` is not a prefix length", p.get_ref()),
                        "the bits of an IPv6 address that name one client, 16 to 128: `ipv6_prefix = 64` (a household's allocation) is the usual",
                    );
                    64
                }
            },
            trusted_proxies: self
                .trusted_proxies
                .as_ref()
                .map_or_else(loopback_proxies, |t| trusted_proxies(cx, t)),
            ledger,
            fleet,
            admin,
            ledger_access,
            ledger_replicas,
        }
    }
}

/// `trusted_proxies` unless given: a proxy on the gate's own machine. A
/// loopback peer is a process there, as trusted as the gate's own config;
/// a load balancer elsewhere must be named.
fn loopback_proxies() -> Vec<ipnet::IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .map(|n| n.parse().expect("a network"))
        .collect()
}

/// `trusted_proxies`: networks (`10.0.0.0/8`) or single addresses.
fn trusted_proxies(cx: &mut Checker, t: &Spanned<Vec<String>>) -> Vec<ipnet::IpNet> {
    let mut nets = Vec::new();
    for text in t.get_ref() {
        let parsed = text
            .parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
        match parsed {
            // `10.1.2.3/8` is `10.0.0.0/8`: what the operator meant.
            Ok(net) => nets.push(net.trunc()),
            Err(_) => cx.push(
                t.span(),
                format!("`{text}` in `trusted_proxies` is not an address or a network"),
                "list your load balancers' addresses or networks in CIDR form, e.g. `trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\"]`; `[]` trusts no peer",
            ),
        }
    }
    nets
}

/// Whether `id` can name a gate (`--gate-id`, `[gate] fleet`): 1 to 32
/// letters, digits and '-'. It starts every order id the gate makes.
pub(crate) fn is_gate_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `fleet`: distinct gate ids, at least one.
fn fleet(cx: &mut Checker, f: &Spanned<Vec<String>>) -> Vec<String> {
    let ids = f.get_ref();
    let help = "list each gate's --gate-id once, e.g. `fleet = [\"g1\", \"g2\", \"g3\"]`";
    if ids.is_empty() {
        cx.push(f.span(), "`fleet = []` lists no gate", help);
    }
    let mut seen = std::collections::BTreeSet::new();
    for id in ids {
        if !is_gate_id(id) {
            cx.push(
                f.span(),
                format!("`{id}` in `fleet` is not a gate id"),
                "a gate id is 1 to 32 ASCII letters, digits or `-` (it starts every order id)",
            );
        } else if !seen.insert(id) {
            cx.push(f.span(), format!("`{id}` is in `fleet` twice"), help);
        }
    }
    ids.clone()
}

/// `forward_attempts` unless given: 8 attempts, about 13 s of backoff.
pub(crate) const FORWARD_ATTEMPTS: u32 = 8;

/// The longest fair-start window: entrants' requests are held that long, and
/// proxies in front of the gates must wait for them.
pub(crate) const MAX_FAIR_WINDOW: std::time::Duration = std::time::Duration::from_secs(30);

/// A whole number of at least 1, if given.
fn positive(cx: &mut Checker, v: &Option<Spanned<i64>>, key: &str, example: &str) -> Option<u32> {
    let n = v.as_ref()?;
    match u32::try_from(*n.get_ref()) {
        Ok(x) if x >= 1 => Some(x),
        _ => {
            cx.push(
                n.span(),
                format!(
                    "`{key} = {}` must be a whole number of at least 1",
                    n.get_ref()
                ),
                format!("e.g. `{key} = {example}`"),
            );
            None
        }
    }
}

fn url_field(cx: &mut Checker, v: &Option<Spanned<String>>, key: &str) -> Option<String> {
    let u = v.as_ref()?;
    if http_url(u.get_ref()).is_none() {
        cx.push(
            u.span(),
            format!("`{}` is not an http(s) URL", u.get_ref()),
            format!("write a full address, e.g. `{key} = \"https://shop.example.com/...\"`"),
        );
    }
    Some(u.get_ref().clone())
}
