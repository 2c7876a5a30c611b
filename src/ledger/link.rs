//! The ledger's connection, following its primary.
//!
//! A plain URL (`redis://`, `rediss://`) is one `ConnectionManager`, which
//! reconnects to that address by itself. A Sentinel URL
//! (`redis+sentinel://host:26379,host:26379/<service>/<db>`, or
//! `rediss+sentinel://` for TLS to the primary) is the primary the Sentinels
//! name: asked at the first call, and again whenever a call fails for a
//! reason a failover explains (the connection lost or timed out, `READONLY`
//! from a demoted primary), at most every `ASK_EVERY`. A new primary gets a
//! connection of its own; the scripts are loaded on it by `EVALSHA`'s
//! `NOSCRIPT` fallback (`redis::Script`), so nothing is cached per node.
//!
//! A cluster URL (`redis+cluster://host:6379,host:6379`, or
//! `rediss+cluster://`) is one cluster connection (redis-rs's), which follows
//! `MOVED`/`ASK` and a failover of a slot's primary by itself. Every key of a
//! sale shares one hash slot (`fs:{<sale>}:…`); the commands without a key
//! the ledger sends (`WAIT`, `INFO`, `CONFIG`, `SCAN`) go to that slot's
//! primary too ([`Con`]), so `WAIT` counts the replicas of the node that took.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::util::sync::lock;

/// How often the Sentinels are asked again while calls fail.
const ASK_EVERY: Duration = Duration::from_millis(250);

/// Connections to the primary, each its own: takes that wait for their
/// replicas (`WAIT` blocks the connection it is sent on until the writes
/// *of that connection* are replicated) go over lanes 1 to 4, so one
/// batch's wait holds up neither the next batch's take nor the poll, which
/// keeps lane 0 with every other call. Lazy: unused lanes cost nothing.
pub(crate) const LANES: usize = 5;

/// Where calls go.
#[derive(Clone)]
pub(crate) enum Link {
    /// One node: `LANES` connections to it.
    Direct(Arc<Vec<ConnectionManager>>),
    Sentinel(Arc<Followed>),
    Cluster(Arc<Clustered>),
}

/// A cluster, connected at the first call.
pub(crate) struct Clustered {
    client: ClusterClient,
    /// `LANES` cluster connections (each its own connection per node).
    lanes: Vec<tokio::sync::OnceCell<ClusterConnection>>,
    /// The hash slot of the sale's keys.
    slot: Slot,
}

/// The connection one call goes over.
#[derive(Clone)]
pub(crate) enum Con {
    Single(ConnectionManager),
    /// A cluster, and the slot whose primary the keyless commands go to.
    Cluster(ClusterConnection, Slot),
}

/// Whether `cmd` has no key for the cluster to route it by: then it goes
/// to the primary of the sale's slot.
fn keyless(cmd: &Cmd) -> bool {
    let name = match cmd.args_iter().next() {
        Some(redis::Arg::Simple(n)) => n.to_ascii_uppercase(),
        _ => return false,
    };
    matches!(
        name.as_slice(),
        b"WAIT" | b"WAITAOF" | b"INFO" | b"CONFIG" | b"SCAN"
    )
}

impl ConnectionLike for Con {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Con::Single(c) => c.req_packed_command(cmd),
            Con::Cluster(c, slot) => {
                if !keyless(cmd) {
                    return c.req_packed_command(cmd);
                }
                let primary = Route::with_slot(*slot, SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(primary));
                Box::pin(c.route_command(cmd.clone(), routing))
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Con::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Con::Cluster(c, _) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Con::Single(c) => c.get_db(),
            Con::Cluster(..) => 0,
        }
    }
}

/// A cluster URL's parts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ClusterUrl {
    pub(crate) seeds: Vec<(String, u16)>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) tls: bool,
}

/// `redis+cluster://[user[:password]@]host[:port],host[:port]` (port 6379
/// by default; any nodes of the cluster, the client finds the rest); `None`
/// when `url` is not a cluster URL.
pub(crate) fn parse_cluster(url: &str) -> Option<Result<ClusterUrl, String>> {
    let (tls, rest) = scheme(url, "cluster")?;
    Some(parse_cluster_rest(rest, tls))
}

fn parse_cluster_rest(rest: &str, tls: bool) -> Result<ClusterUrl, String> {
    let (auth, rest) = split_auth(rest);
    let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !path.trim_matches('/').is_empty() && path.trim_matches('/') != "0" {
        return Err(format!(
            "a cluster has only database 0, not `{path}`: write redis+cluster://host:6379,host:6379"
        ));
    }
    let seeds = hosts_of(hosts, 6379)?;
    if seeds.is_empty() {
        return Err("no node address: write redis+cluster://host:6379,host:6379".into());
    }
    let (username, password) = auth;
    Ok(ClusterUrl {
        seeds,
        username,
        password,
        tls,
    })
}

/// Whether `url` is `redis+<kind>://` (false) or `rediss+<kind>://` (true,
/// TLS), and what follows; `None` for any other URL.
fn scheme<'a>(url: &'a str, kind: &str) -> Option<(bool, &'a str)> {
    let (name, rest) = url.split_once("://")?;
    match name.strip_suffix(kind)?.strip_suffix('+')? {
        "redis" => Some((false, rest)),
        "rediss" => Some((true, rest)),
        _ => None,
    }
}

/// `user:password@rest` → ((user, password), rest), percent-decoded.
fn split_auth(rest: &str) -> ((Option<String>, Option<String>), &str) {
    let (auth, rest) = match rest.rsplit_once('@') {
        Some((a, r)) => (Some(a), r),
        None => (None, rest),
    };
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let auth = match auth {
        None => (None, None),
        Some(a) => match a.split_once(':') {
            Some((u, p)) => (Some(decode(u)).filter(|u| !u.is_empty()), Some(decode(p))),
            None => (Some(decode(a)).filter(|u| !u.is_empty()), None),
        },
    };
    (auth, rest)
}

/// `host:port,host,…` with `port` where none is given.
fn hosts_of(hosts: &str, port: u16) -> Result<Vec<(String, u16)>, String> {
    hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| match h.rsplit_once(':') {
            Some((host, p)) => Ok((
                host.to_string(),
                p.parse::<u16>()
                    .map_err(|_| format!("`{p}` is not a port"))?,
            )),
            None => Ok((h.to_string(), port)),
        })
        .collect()
}

impl Clustered {
    /// The cluster `url` names, for the sale whose keys start `prefix`;
    /// `password` is the nodes' (the URL's wins), `ca` their TLS roots.
    pub(crate) fn new(
        url: &ClusterUrl,
        password: Option<String>,
        ca: Option<Vec<u8>>,
        timeout: Duration,
        prefix: &str,
    ) -> redis::RedisResult<Clustered> {
        let scheme = if url.tls { "rediss" } else { "redis" };
        let seeds: Vec<String> = url
            .seeds
            .iter()
            .map(|(h, p)| format!("{scheme}://{h}:{p}"))
            .collect();
        let mut b = ClusterClientBuilder::new(seeds)
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(3)
            .min_retry_wait(50)
            .max_retry_wait(500);
        if let Some(u) = &url.username {
            b = b.username(u);
        }
        if let Some(p) = url.password.clone().or(password) {
            b = b.password(p);
        }
        if url.tls {
            b = cluster_tls(b, ca)?;
        }
        Ok(Clustered {
            client: b.build()?,
            lanes: (0..LANES).map(|_| tokio::sync::OnceCell::new()).collect(),
            slot: Slot::for_key(prefix),
        })
    }
}

/// TLS to the nodes, trusting `ca` (PEM) or the system's roots.
#[cfg(feature = "ledger-tls")]
fn cluster_tls(
    b: ClusterClientBuilder,
    ca: Option<Vec<u8>>,
) -> redis::RedisResult<ClusterClientBuilder> {
    let b = b.tls(redis::TlsMode::Secure);
    Ok(match ca {
        Some(root_cert) => b.certs(super::trusting(root_cert)),
        None => b,
    })
}

#[cfg(not(feature = "ledger-tls"))]
fn cluster_tls(
    _: ClusterClientBuilder,
    _: Option<Vec<u8>>,
) -> redis::RedisResult<ClusterClientBuilder> {
    Err(no_tls())
}

/// A primary found through Sentinel.
pub(crate) struct Followed {
    sentinel: tokio::sync::Mutex<SentinelClient>,
    config: ConnectionManagerConfig,
    /// The primary's connections (`LANES`) and address, once known.
    current: Mutex<Option<(Vec<ConnectionManager>, String)>>,
    /// How many times the primary changed since the first was found.
    changes: AtomicU64,
    asking: AtomicBool,
    asked: Mutex<Option<Instant>>,
    /// For messages: `sentinel <service> via host:port,…`.
    pub(crate) at: String,
}

/// A Sentinel URL's parts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SentinelUrl {
    pub(crate) sentinels: Vec<(String, u16)>,
    pub(crate) service: String,
    pub(crate) db: i64,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) tls: bool,
}

/// `redis+sentinel://[user[:password]@]host[:port],host[:port]/service[/db]`
/// (port 26379 by default); `None` when `url` is not a Sentinel URL.
pub(crate) fn parse_sentinel(url: &str) -> Option<Result<SentinelUrl, String>> {
    let (tls, rest) = scheme(url, "sentinel")?;
    Some(parse_rest(rest, tls))
}

fn parse_rest(rest: &str, tls: bool) -> Result<SentinelUrl, String> {
    let ((username, password), rest) = split_auth(rest);
    let (hosts, path) = rest
        .split_once('/')
        .ok_or("no service name: write redis+sentinel://host:26379,host:26379/mymaster/0")?;
    let sentinels = hosts_of(hosts, 26379)?;
    if sentinels.is_empty() {
        return Err(
            "no Sentinel address: write redis+sentinel://host:26379,host:26379/mymaster/0".into(),
        );
    }
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let service = parts
        .next()
        .ok_or("no service name: write redis+sentinel://host:26379/mymaster/0")?
        .to_string();
    let db = match parts.next() {
        Some(d) => d
            .parse()
            .map_err(|_| format!("`{d}` is not a database number"))?,
        None => 0,
    };
    Ok(SentinelUrl {
        sentinels,
        service,
        db,
        username,
        password,
        tls,
    })
}

impl Followed {
    /// Follows the primary `url` names; `password` is the primary's (the
    /// Sentinels are asked without one), `certs` its TLS roots.
    pub(crate) fn new(
        url: &SentinelUrl,
        password: Option<String>,
        ca: Option<Vec<u8>>,
        config: ConnectionManagerConfig,
    ) -> redis::RedisResult<Followed> {
        let addrs = url
            .sentinels
            .iter()
            .map(|(h, p)| redis::ConnectionAddr::Tcp(h.clone(), *p));
        let mut b = SentinelClientBuilder::new(addrs, &url.service, SentinelServerType::Master)?
            .set_client_to_redis_db(url.db);
        if let Some(u) = &url.username {
            b = b.set_client_to_redis_username(u);
        }
        if let Some(p) = password.or_else(|| url.password.clone()) {
            b = b.set_client_to_redis_password(p);
        }
        if url.tls {
            b = tls(b, ca)?;
        }
        let hosts: Vec<String> = url
            .sentinels
            .iter()
            .map(|(h, p)| format!("{h}:{p}"))
            .collect();
        Ok(Followed {
            sentinel: tokio::sync::Mutex::new(b.build()?),
            config,
            current: Mutex::new(None),
            changes: AtomicU64::new(0),
            asking: AtomicBool::new(false),
            asked: Mutex::new(None),
            at: format!("sentinel {} via {}", url.service, hosts.join(",")),
        })
    }

    /// Asks the Sentinels which node is primary, and connects to it when it
    /// is another than the one known.
    async fn ask(&self) -> redis::RedisResult<Vec<ConnectionManager>> {
        let client = self.sentinel.lock().await.async_get_client().await?;
        let addr = client.get_connection_info().addr().to_string();
        if let Some((con, known)) = lock(&self.current).as_ref() {
            if *known == addr {
                return Ok(con.clone());
            }
        }
        let con = (0..LANES)
            .map(|_| ConnectionManager::new_lazy_with_config(client.clone(), self.config.clone()))
            .collect::<redis::RedisResult<Vec<_>>>()?;
        let before = {
            let mut current = lock(&self.current);
            if current.is_some() {
                self.changes.fetch_add(1, Ordering::AcqRel);
            }
            current.replace((con.clone(), addr.clone()))
        };
        match before {
            Some((_, old)) => {
                tracing::warn!(from = %old, to = %addr, at = %self.at, "ledger_primary_changed")
            }
            None => tracing::info!(primary = %addr, at = %self.at, "ledger_primary_found"),
        }
        Ok(con)
    }

    /// Asks again in the background (once at a time, at most every
    /// `ASK_EVERY`).
    fn ask_soon(self: &Arc<Self>) {
        {
            let mut asked = lock(&self.asked);
            if asked.is_some_and(|t| t.elapsed() < ASK_EVERY) {
                return;
            }
            *asked = Some(Instant::now());
        }
        if self.asking.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            me.asking.store(false, Ordering::Release);
            return;
        };
        rt.spawn(async move {
            if let Err(e) = me.ask().await {
                tracing::warn!(error = %e, at = %me.at, "ledger_sentinels_unanswered");
            }
            me.asking.store(false, Ordering::Release);
        });
    }
}

/// TLS to the primary, trusting `ca` (PEM) or the system's roots.
#[cfg(feature = "ledger-tls")]
fn tls(b: SentinelClientBuilder, ca: Option<Vec<u8>>) -> redis::RedisResult<SentinelClientBuilder> {
    let b = b.set_client_to_redis_tls_mode(redis::TlsMode::Secure);
    Ok(match ca {
        Some(root_cert) => b.set_client_to_redis_certificates(super::trusting(root_cert)),
        None => b,
    })
}

#[cfg(not(feature = "ledger-tls"))]
fn tls(_: SentinelClientBuilder, _: Option<Vec<u8>>) -> redis::RedisResult<SentinelClientBuilder> {
    Err(no_tls())
}

#[cfg(not(feature = "ledger-tls"))]
fn no_tls() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, super::NO_TLS))
}

impl Link {
    /// The connection for a call: the primary's (asked for first when none
    /// is known yet).
    pub(crate) async fn con(&self) -> redis::RedisResult<Con> {
        Ok(self.con_at(0).await?.0)
    }

    /// The connection of lane `lane` (`< LANES`) for a call, and how many
    /// times the primary had changed when it was handed out (see
    /// [`Link::changes`]).
    pub(crate) async fn con_at(&self, lane: usize) -> redis::RedisResult<(Con, u64)> {
        let lane = lane % LANES;
        match self {
            Link::Direct(c) => Ok((Con::Single(c[lane].clone()), 0)),
            Link::Sentinel(f) => {
                let known = {
                    let current = lock(&f.current);
                    let changes = f.changes.load(Ordering::Acquire);
                    current.as_ref().map(|(c, _)| (c[lane].clone(), changes))
                };
                let (con, changes) = match known {
                    Some(known) => known,
                    None => {
                        let con = f.ask().await?.swap_remove(lane);
                        (con, f.changes.load(Ordering::Acquire))
                    }
                };
                Ok((Con::Single(con), changes))
            }
            Link::Cluster(c) => {
                let con = c.lanes[lane]
                    .get_or_try_init(|| c.client.get_async_connection())
                    .await?;
                Ok((Con::Cluster(con.clone(), c.slot), 0))
            }
        }
    }

    /// How many times the primary changed (a failover): a gate puts its
    /// journal back on each new primary before taking on it, since a
    /// promoted replica may lack the last takes its primary acknowledged.
    /// Always 0 for a plain URL.
    pub(crate) fn changes(&self) -> u64 {
        match self {
            Link::Direct(_) | Link::Cluster(_) => 0,
            Link::Sentinel(f) => f.changes.load(Ordering::Acquire),
        }
    }

    /// A call failed with `e`: when a failover explains it, ask the
    /// Sentinels again.
    pub(crate) fn failed(&self, e: &redis::RedisError) {
        let Link::Sentinel(f) = self else { return };
        let text = e.to_string();
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || text.contains("READONLY")
            || text.contains("LOADING")
            || text.contains("MASTERDOWN")
        {
            f.ask_soon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_urls_name_their_sentinels_service_and_database() {
        let u = parse_sentinel("redis+sentinel://a:26379,b:26380,c/mymaster/2")
            .unwrap()
            .unwrap();
        assert_eq!(
            u.sentinels,
            [
                ("a".to_string(), 26379),
                ("b".to_string(), 26380),
                ("c".to_string(), 26379)
            ]
        );
        assert_eq!((u.service.as_str(), u.db, u.tls), ("mymaster", 2, false));
        let u = parse_sentinel("rediss+sentinel://gate:p%40ss@h:1/svc")
            .unwrap()
            .unwrap();
        assert_eq!(u.username.as_deref(), Some("gate"));
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        assert!(u.tls && u.db == 0);
        assert!(parse_sentinel("redis://h:6379/0").is_none());
        let err = parse_sentinel("redis+sentinel://h:26379")
            .unwrap()
            .unwrap_err();
        assert!(err.contains("service"), "{err}");
        let err = parse_sentinel("redis+sentinel://h:x/m")
            .unwrap()
            .unwrap_err();
        assert!(err.contains("`x` is not a port"), "{err}");
    }

    #[test]
    fn cluster_urls_name_their_seeds_and_no_database() {
        let u = parse_cluster("redis+cluster://a:7000,b,c:7002")
            .unwrap()
            .unwrap();
        assert_eq!(
            u.seeds,
            [
                ("a".to_string(), 7000),
                ("b".to_string(), 6379),
                ("c".to_string(), 7002)
            ]
        );
        assert!(!u.tls && u.username.is_none() && u.password.is_none());
        let u = parse_cluster("rediss+cluster://gate:s%3Acret@clustercfg.example:6379/")
            .unwrap()
            .unwrap();
        assert_eq!(
            (u.username.as_deref(), u.password.as_deref(), u.tls),
            (Some("gate"), Some("s:cret"), true)
        );
        assert!(parse_cluster("redis://h:6379/0").is_none());
        let err = parse_cluster("redis+cluster://h:7000/3")
            .unwrap()
            .unwrap_err();
        assert!(err.contains("only database 0"), "{err}");
        let err = parse_cluster("redis+cluster://").unwrap().unwrap_err();
        assert!(err.contains("no node address"), "{err}");
    }

    #[test]
    fn the_keyless_commands_go_to_the_sales_slot() {
        assert!(keyless(&redis::cmd("WAIT")));
        assert!(keyless(&redis::cmd("info")));
        assert!(!keyless(&redis::cmd("EVALSHA")));
        assert!(!keyless(&redis::cmd("XADD")));
    }
}
