//! The sale-day switch: when `open` and `close` may replace the live
//! `sale.js`, and how. One policy for `open`, `close`, `close --when-sold-out`
//! and the preview of `serve --opens-in`; the command line only draws the
//! countdown and the report.
//!
//! A switch reads the live toggle and decides (open keeps a live order URL of
//! its own unless told to rotate; a closed sale is reopened only when forced;
//! closing a closed sale changes nothing), waits for its moment (or for an
//! early reason, such as every gate being sold out), reads the live toggle
//! again and decides again (so a waiting `open` never reopens a sale closed
//! meanwhile), then does one PUT with the toggle's headers and invalidates the
//! toggle's path. It works on any [`Remote`] and [`Cdn`]: S3 and CloudFront,
//! a directory, the preview's memory.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use super::draw::{Secret, Signer};
use super::{minted_for, order_url, wait_until, Draw, GateKey, State, Toggle};
use crate::config::headers::{self, TOGGLE_PATH};
use crate::config::Config;
use crate::store::{wait_completed, Cdn, Known, Remote, RemoteError, WaitError};

/// What the store holds at `sale.js`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Live {
    Missing,
    Unreadable(String),
    Toggle(Toggle),
}

impl Live {
    /// The live state's name, `missing` or `unreadable`.
    pub(crate) fn state_name(&self) -> &'static str {
        match self {
            Live::Missing => "missing",
            Live::Unreadable(_) => "unreadable",
            Live::Toggle(t) => t.state_name(),
        }
    }
}

/// Reads the live toggle.
pub(crate) async fn live<R: Remote>(remote: &R) -> Result<Live, RemoteError> {
    Ok(live_tagged(remote).await?.0)
}

/// Reads the live toggle and the version a conditional write names.
async fn live_tagged<R: Remote>(remote: &R) -> Result<(Live, Option<String>), RemoteError> {
    Ok(match remote.get_tagged(TOGGLE_PATH).await? {
        None => (Live::Missing, None),
        Some((bytes, etag)) => (Live::read(&bytes), Some(etag)),
    })
}

/// Conditional writes of the toggle before giving up (each lost to another
/// writer that landed between this one's read and write).
const WRITES: usize = 5;

impl Live {
    /// What a toggle script's bytes say.
    pub(crate) fn read(bytes: &[u8]) -> Live {
        match Toggle::parse_script(&String::from_utf8_lossy(bytes)) {
            Ok(t) => Live::Toggle(t),
            Err(e) => Live::Unreadable(e),
        }
    }
}

/// Which way to switch.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// Switch to `open` with an order URL minted with `key`; a live URL of
    /// this sale and key is kept unless `rotate`.
    Open { key: GateKey, rotate: bool },
    /// Switch to `ended`.
    Close,
}

impl Action {
    pub(crate) fn verb(&self) -> &'static str {
        match self {
            Action::Open { .. } => "open",
            Action::Close => "close",
        }
    }
}

/// When and how hard.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The moment to switch (now or in the past: at once).
    pub(crate) at: SystemTime,
    /// Switch even when the sale's state or clock says not to.
    pub(crate) force: bool,
    /// Wait this long at most for the CDN invalidation to complete.
    pub(crate) wait: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error(transparent)]
    Wait(#[from] WaitError),
    /// Opening after the sale's end.
    #[error("the sale ended at {end} (site.toml `end`): nothing to open")]
    Over { end: String },
    /// Opening before the sale's window: every gate would refuse the orders.
    #[error(
        "opening at {at} is before the sale's start, {start} (site.toml `start`): the gates \
         refuse every order until then (403), so pages would show a buy button that always fails"
    )]
    Early { at: String, start: String },
    /// Opening a sale whose live toggle says `ended`.
    #[error("sale.js is `ended`: the sale was closed")]
    Closed,
    /// Every conditional write found sale.js changed since it was read.
    #[error("sale.js changed under every one of {0} writes (another open or close running at the same time?): run it again once that one is done")]
    Contended(usize),
}

/// Why the switch happened when it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reason {
    Scheduled,
    /// Before its time, for this reason (e.g. sold out).
    Early(String),
}

/// A switch that happened.
#[derive(Debug, Clone)]
pub(crate) struct Switched {
    pub(crate) toggle: Toggle,
    /// The moment it was due (now, when it switched early).
    pub(crate) due: SystemTime,
    pub(crate) put_started: SystemTime,
    /// The new toggle is live at the origin from here on.
    pub(crate) put_done: SystemTime,
    pub(crate) invalidation: Option<String>,
    /// `Some(true)` once the invalidation completed (only when waited for).
    pub(crate) completed: Option<bool>,
    pub(crate) reason: Reason,
}

#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// Nothing to write: the live toggle already is what was asked for. Its
    /// invalidation is issued again (idempotent: it is the same request), in
    /// case the run that wrote it failed before invalidating.
    Unchanged {
        live: Live,
        invalidation: Option<String>,
    },
    Switched(Switched),
}

/// What a switch writes over the live toggle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// An open toggle with a newly minted order URL.
    Open,
    /// The ended toggle.
    Close,
}

/// The whole policy, pure: what to write over `live` for `action`, `Ok(None)`
/// when it already is what `action` asks for (an open toggle keeps a live
/// order URL of this key unless rotating), or why not (a closed sale is not
/// reopened without `force`). [`toggle`] makes what it decided.
pub(crate) fn decide(
    config: &Config,
    action: &Action,
    live: &Live,
    force: bool,
) -> Result<Option<Write>, Error> {
    let current = match live {
        Live::Toggle(t) => Some(&t.state),
        _ => None,
    };
    match (action, current) {
        (Action::Open { .. }, Some(State::Ended { .. })) if !force => Err(Error::Closed),
        (Action::Open { key, rotate: false }, Some(State::Open { order, .. }))
            if order.starts_with(&config.gate.url)
                && minted_for(key, &config.name, config.start.timestamp_millis(), order) =>
        {
            Ok(None)
        }
        (Action::Open { .. }, _) => Ok(Some(Write::Open)),
        (Action::Close, Some(State::Ended { .. })) => Ok(None),
        (Action::Close, _) => Ok(Some(Write::Close)),
    }
}

/// The toggle `decide` asked for: an open one mints a new order URL (a
/// random nonce) with the action's key.
pub(crate) fn toggle(config: &Config, action: &Action, write: Write) -> Toggle {
    match (write, action) {
        (Write::Open, Action::Open { key, .. }) => {
            let token = key.mint(&config.name, config.start.timestamp_millis());
            Toggle::switched(State::Open {
                order: order_url(&config.gate.url, &config.name, &token),
                end: config.end.timestamp_millis(),
                draw: config.gate.fair_window_ms.map(|w| Draw {
                    until: config.start.timestamp_millis() + w,
                    commitment: Secret::of(key, config).commitment(),
                    receipt_key: Signer::new(key, &config.name, config.start.timestamp_millis())
                        .public_hex(),
                }),
            })
        }
        _ => Toggle::switched(State::Ended {
            ended: format!("{}ended.html", config.base_path),
        }),
    }
}

/// Refuses to open at `at` when the gates would refuse every order then: after
/// the end, or before the start by more than the gates' clock tolerance.
fn outside_window(config: &Config, at: SystemTime) -> Result<(), Error> {
    if at > SystemTime::from(config.end) {
        return Err(Error::Over {
            end: config.end.to_rfc3339(),
        });
    }
    let tolerance = Duration::from_millis(config.gate.tolerance_ms.max(0) as u64);
    if at + tolerance < SystemTime::from(config.start) {
        let at: chrono::DateTime<chrono::Utc> = at.into();
        return Err(Error::Early {
            at: at
                .with_timezone(config.start.offset())
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            start: config.start.to_rfc3339(),
        });
    }
    Ok(())
}

/// Nothing to write; the live toggle's invalidation is asked for again.
async fn unchanged<C: Cdn>(config: &Config, cdn: Option<&C>, live: Live) -> Result<Outcome, Error> {
    let invalidation = match (cdn, &live) {
        (Some(cdn), Live::Toggle(t)) => Some(invalidate(config, cdn, t).await?),
        _ => None,
    };
    Ok(Outcome::Unchanged { live, invalidation })
}

/// Invalidates the toggle's path. The caller reference is the toggle's
/// version: the same toggle never causes two invalidations, however often asked.
async fn invalidate<C: Cdn>(
    config: &Config,
    cdn: &C,
    toggle: &Toggle,
) -> Result<String, RemoteError> {
    let paths = [format!("{}{TOGGLE_PATH}", config.base_path)];
    cdn.invalidate(&paths, &format!("flashsale-toggle-{}", toggle.v))
        .await
}

/// Switches the live toggle of `config`'s sale: decides, waits for
/// `opts.at` (calling `tick` with the time left about once a second) unless
/// `early` resolves first with a reason, decides again on what is live then,
/// and switches.
pub(crate) async fn run<R: Remote, C: Cdn>(
    config: &Config,
    remote: &R,
    cdn: Option<&C>,
    action: &Action,
    opts: &Options,
    early: impl Future<Output = String>,
    mut tick: impl FnMut(Duration),
) -> Result<Outcome, Error> {
    if matches!(action, Action::Open { .. }) && !opts.force {
        outside_window(config, opts.at.max(SystemTime::now()))?;
    }
    if let Some(cdn) = cdn {
        cdn.warm().await?;
    }
    // Reading the live toggle also opens the connection the switch will use.
    let (first, mut read) = live_tagged(remote).await?;
    let Some(write) = decide(config, action, &first, opts.force)? else {
        return unchanged(config, cdn, first).await;
    };
    let mut toggle = self::toggle(config, action, write);
    let mut due = opts.at;
    let mut reason = Reason::Scheduled;
    if due > SystemTime::now() {
        let on_time = async {
            // Idle connections may be closed during a long wait: read the
            // live toggle once more shortly before, which opens one again
            // and tells how long a read takes.
            let rewarm = due.checked_sub(Duration::from_secs(3)).unwrap_or(due);
            wait_until(rewarm, |left| tick(left + Duration::from_secs(3))).await;
            let started = Instant::now();
            let _ = live(remote).await;
            // The last look (below) starts one read before the moment, so it
            // ends at the moment and costs the switch no lateness.
            let read = started.elapsed().min(Duration::from_millis(500));
            wait_until(due.checked_sub(read).unwrap_or(due), &mut tick).await;
        };
        tokio::select! {
            _ = on_time => {}
            why = early => {
                due = SystemTime::now();
                reason = Reason::Early(why);
            }
        }
        // Someone may have switched meanwhile (a `close` while this `open` waited).
        let (now, tag) = live_tagged(remote).await?;
        read = tag;
        if now != first {
            match decide(config, action, &now, opts.force)? {
                Some(w) => toggle = self::toggle(config, action, w),
                None => return unchanged(config, cdn, now).await,
            }
        }
        // Never before the moment.
        wait_until(due, &mut tick).await;
    }
    // The write holds only over the version last read: one that lands in
    // between (a `close` after this `open`'s last look) is decided on again,
    // never overwritten.
    let headers = headers::for_path(TOGGLE_PATH, &config.headers);
    let mut writes = 0;
    let (put_started, put_done) = loop {
        let body = toggle.to_script().into_bytes();
        let meta = Known::of(&body, &headers).metadata();
        let started = SystemTime::now();
        if remote
            .put_if(TOGGLE_PATH, body, &headers, &meta, read.as_deref())
            .await?
        {
            break (started, SystemTime::now());
        }
        writes += 1;
        if writes == WRITES {
            return Err(Error::Contended(writes));
        }
        let (now, tag) = live_tagged(remote).await?;
        read = tag;
        match decide(config, action, &now, opts.force)? {
            Some(w) => toggle = self::toggle(config, action, w),
            None => return unchanged(config, cdn, now).await,
        }
    };
    let mut switched = Switched {
        toggle,
        due,
        put_started,
        put_done,
        invalidation: None,
        completed: None,
        reason,
    };
    if let Some(cdn) = cdn {
        let id = invalidate(config, cdn, &switched.toggle).await?;
        if let Some(wait) = opts.wait {
            wait_completed(cdn, &id, wait).await?;
            switched.completed = Some(true);
        }
        switched.invalidation = Some(id);
    }
    Ok(Outcome::Switched(switched))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::store::{DirRemote, MemoryStore, NoCdn};

    fn config(start_in: i64, end_in: i64) -> Config {
        let t = |s: i64| (chrono::Utc::now() + chrono::Duration::seconds(s)).to_rfc3339();
        let text = format!(
            "name = \"demo\"\nbase_url = \"https://sale.example.com/shop/\"\nstart = \"{}\"\nend = \"{}\"\ncurrency = \"EUR\"\n[gate]\nurl = \"https://gate.example.com\"\n[[items]]\nsku = \"A\"\ntitle = \"A\"\nprice = 1\nstock = 1\n",
            t(start_in),
            t(end_in)
        );
        Config::parse(Path::new("site.toml"), text).unwrap()
    }

    fn now() -> Options {
        Options {
            at: SystemTime::now(),
            force: false,
            wait: None,
        }
    }

    fn open(key: &GateKey) -> Action {
        Action::Open {
            key: key.clone(),
            rotate: false,
        }
    }

    #[test]
    fn the_policy_decides_without_minting_anything() {
        let c = config(-60, 3600);
        let key = GateKey::generate();
        let live_open = Live::Toggle(toggle(&c, &open(&key), Write::Open));
        let live_ended = Live::Toggle(toggle(&c, &Action::Close, Write::Close));
        let rotate = Action::Open {
            key: key.clone(),
            rotate: true,
        };
        let other_key = open(&GateKey::generate());
        let d = |action: &Action, live: &Live, force: bool| decide(&c, action, live, force);
        assert_eq!(
            d(&open(&key), &Live::Missing, false).unwrap(),
            Some(Write::Open)
        );
        assert_eq!(
            d(&open(&key), &live_open, false).unwrap(),
            None,
            "keeps its URL"
        );
        assert_eq!(d(&rotate, &live_open, false).unwrap(), Some(Write::Open));
        assert_eq!(d(&other_key, &live_open, false).unwrap(), Some(Write::Open));
        assert!(matches!(
            d(&open(&key), &live_ended, false),
            Err(Error::Closed)
        ));
        assert_eq!(
            d(&open(&key), &live_ended, true).unwrap(),
            Some(Write::Open)
        );
        assert_eq!(
            d(&Action::Close, &live_open, false).unwrap(),
            Some(Write::Close)
        );
        assert_eq!(d(&Action::Close, &live_ended, false).unwrap(), None);
        // The same decision twice: the same answer (nothing random in it).
        assert_eq!(
            d(&open(&key), &Live::Missing, false).unwrap(),
            d(&open(&key), &Live::Missing, false).unwrap()
        );
    }

    async fn switch<R: Remote>(
        c: &Config,
        r: &R,
        a: &Action,
        o: &Options,
    ) -> Result<Outcome, Error> {
        run(c, r, None::<&NoCdn>, a, o, std::future::pending(), |_| {}).await
    }

    fn order(outcome: &Outcome) -> String {
        match outcome {
            Outcome::Switched(Switched {
                toggle:
                    Toggle {
                        state: State::Open { order, .. },
                        ..
                    },
                ..
            }) => order.clone(),
            other => panic!("not opened: {other:?}"),
        }
    }

    #[tokio::test]
    async fn open_mints_once_keeps_its_url_and_rotates_on_request() {
        let c = config(-5, 3600);
        let store = MemoryStore::default();
        let key = GateKey::generate();
        let first = order(&switch(&c, &store, &open(&key), &now()).await.unwrap());
        assert!(
            first.starts_with("https://gate.example.com/o/demo/"),
            "{first}"
        );
        let start = c.start.timestamp_millis();
        assert!(minted_for(&key, "demo", start, &first));
        let headers = store.headers(TOGGLE_PATH).unwrap();
        assert_eq!(headers["Cache-Control"], headers::TOGGLE);
        // Again: the live URL is ours, so nothing changes.
        let again = switch(&c, &store, &open(&key), &now()).await.unwrap();
        assert!(
            matches!(
                again,
                Outcome::Unchanged {
                    live: Live::Toggle(_),
                    ..
                }
            ),
            "{again:?}"
        );
        // Another key's URL is not ours: a new one is minted.
        let other = GateKey::generate();
        let replaced = order(&switch(&c, &store, &open(&other), &now()).await.unwrap());
        assert!(minted_for(&other, "demo", start, &replaced));
        let rotate = Action::Open {
            key: other,
            rotate: true,
        };
        let rotated = order(&switch(&c, &store, &rotate, &now()).await.unwrap());
        assert_ne!(rotated, replaced);
        let live = Live::read(&store.bytes(TOGGLE_PATH).unwrap());
        assert_eq!(live.state_name(), "open");
    }

    #[tokio::test]
    async fn close_ends_once_and_a_closed_sale_reopens_only_when_forced() {
        let c = config(-5, 3600);
        let store = MemoryStore::default();
        let key = GateKey::generate();
        switch(&c, &store, &open(&key), &now()).await.unwrap();
        let closed = switch(&c, &store, &Action::Close, &now()).await.unwrap();
        let Outcome::Switched(s) = closed else {
            panic!("not closed: {closed:?}")
        };
        assert_eq!(
            s.toggle.state,
            State::Ended {
                ended: "/shop/ended.html".into()
            }
        );
        let again = switch(&c, &store, &Action::Close, &now()).await.unwrap();
        assert!(matches!(again, Outcome::Unchanged { .. }), "{again:?}");
        let err = switch(&c, &store, &open(&key), &now()).await.unwrap_err();
        assert!(matches!(err, Error::Closed), "{err}");
        let forced = Options {
            force: true,
            ..now()
        };
        order(&switch(&c, &store, &open(&key), &forced).await.unwrap());
    }

    #[tokio::test]
    async fn open_after_the_end_is_refused_unless_forced() {
        let c = config(-7200, -3600);
        let store = MemoryStore::default();
        let key = GateKey::generate();
        let err = switch(&c, &store, &open(&key), &now()).await.unwrap_err();
        assert!(matches!(err, Error::Over { .. }), "{err}");
        assert_eq!(store.calls(), 0, "refused before touching the store");
        let forced = Options {
            force: true,
            ..now()
        };
        order(&switch(&c, &store, &open(&key), &forced).await.unwrap());
    }

    #[tokio::test]
    async fn a_waiting_open_never_reopens_a_sale_closed_meanwhile() {
        let c = config(1, 3600);
        let store = MemoryStore::default();
        let key = GateKey::generate();
        let at = SystemTime::now() + Duration::from_millis(400);
        let opts = Options {
            at,
            force: false,
            wait: None,
        };
        let action = open(&key);
        let waiting = switch(&c, &store, &action, &opts);
        let closing = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            switch(&c, &store, &Action::Close, &now()).await.unwrap()
        };
        let (opened, closed) = tokio::join!(waiting, closing);
        assert!(matches!(closed, Outcome::Switched(_)));
        assert!(matches!(opened, Err(Error::Closed)), "{opened:?}");
        let live = Live::read(&store.bytes(TOGGLE_PATH).unwrap());
        assert_eq!(live.state_name(), "ended");
    }

    /// The narrowest race: a `close` lands after an `open`'s last read and
    /// before its write. The write is conditional on what was read, so the
    /// open sees the close and stops; the other way round, the close still
    /// closes; only `--force` writes over it.
    #[tokio::test]
    async fn an_open_racing_a_close_never_reopens() {
        let c = config(-5, 3600);
        let key = GateKey::generate();
        let ended = toggle(&c, &Action::Close, Write::Close)
            .to_script()
            .into_bytes();
        let opened = toggle(&c, &open(&key), Write::Open)
            .to_script()
            .into_bytes();

        let store = MemoryStore::default();
        store.before_next_write(TOGGLE_PATH, ended.clone());
        let raced = switch(&c, &store, &open(&key), &now()).await;
        assert!(matches!(raced, Err(Error::Closed)), "{raced:?}");
        let live = Live::read(&store.bytes(TOGGLE_PATH).unwrap());
        assert_eq!(live.state_name(), "ended");

        let store = MemoryStore::default();
        store.before_next_write(TOGGLE_PATH, opened);
        let closed = switch(&c, &store, &Action::Close, &now()).await.unwrap();
        assert!(matches!(closed, Outcome::Switched(_)), "{closed:?}");
        let live = Live::read(&store.bytes(TOGGLE_PATH).unwrap());
        assert_eq!(live.state_name(), "ended");

        let store = MemoryStore::default();
        store.before_next_write(TOGGLE_PATH, ended);
        let forced = Options {
            force: true,
            ..now()
        };
        let reopened = switch(&c, &store, &open(&key), &forced).await.unwrap();
        assert!(matches!(reopened, Outcome::Switched(_)), "{reopened:?}");
        let live = Live::read(&store.bytes(TOGGLE_PATH).unwrap());
        assert_eq!(live.state_name(), "open");
    }

    #[tokio::test]
    async fn a_switch_waits_for_its_moment_or_an_early_reason() {
        let c = config(-5, 3600);
        let store = MemoryStore::default();
        let at = SystemTime::now() + Duration::from_millis(300);
        let opts = Options {
            at,
            force: false,
            wait: None,
        };
        let key = GateKey::generate();
        let mut ticks = 0;
        let opened = run(
            &c,
            &store,
            None::<&NoCdn>,
            &open(&key),
            &opts,
            std::future::pending(),
            |_| ticks += 1,
        )
        .await
        .unwrap();
        let Outcome::Switched(s) = opened else {
            panic!("{opened:?}")
        };
        assert!(s.put_started >= at, "switched before its time");
        assert_eq!(s.reason, Reason::Scheduled);
        assert!(ticks >= 1);

        let in_an_hour = Options {
            at: SystemTime::now() + Duration::from_secs(3600),
            ..opts
        };
        let sold_out = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            "sold out".to_string()
        };
        let closed = run(
            &c,
            &store,
            None::<&NoCdn>,
            &Action::Close,
            &in_an_hour,
            sold_out,
            |_| {},
        )
        .await
        .unwrap();
        let Outcome::Switched(s) = closed else {
            panic!("{closed:?}")
        };
        assert_eq!(s.reason, Reason::Early("sold out".into()));
        assert!(s.due < in_an_hour.at);
    }

    #[tokio::test]
    async fn works_on_a_directory_and_fails_cleanly_when_the_store_does() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(-5, 3600);
        let remote = DirRemote::new(dir.path());
        let key = GateKey::generate();
        order(&switch(&c, &remote, &open(&key), &now()).await.unwrap());
        assert_eq!(live(&remote).await.unwrap().state_name(), "open");
        // The store answers the read and fails the write: an error, nothing half done.
        let store = MemoryStore::failing_from(2);
        let err = switch(&c, &store, &Action::Close, &now())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Remote(_)), "{err}");
        assert_eq!(store.bytes(TOGGLE_PATH), None);
    }

    /// A CDN whose first invalidation fails (after the toggle was written).
    #[derive(Default)]
    struct FlakyCdn {
        calls: std::sync::Mutex<Vec<String>>,
    }

    impl Cdn for FlakyCdn {
        async fn invalidate(&self, _: &[String], reference: &str) -> Result<String, RemoteError> {
            let mut calls = self.calls.lock().unwrap();
            calls.push(reference.to_string());
            if calls.len() == 1 {
                return Err(RemoteError::new(
                    crate::store::ErrorKind::Unreachable,
                    "timed out",
                ));
            }
            Ok(format!("I{}", reference.len()))
        }

        async fn completed(&self, _: &str) -> Result<bool, RemoteError> {
            Ok(true)
        }

        async fn warm(&self) -> Result<(), RemoteError> {
            Ok(())
        }

        fn describe(&self) -> String {
            "flaky".into()
        }
    }

    #[tokio::test]
    async fn a_rerun_invalidates_what_a_failed_run_left_uninvalidated() {
        let c = config(-5, 3600);
        let store = MemoryStore::default();
        let cdn = FlakyCdn::default();
        let opts = now();
        let close = || {
            run(
                &c,
                &store,
                Some(&cdn),
                &Action::Close,
                &opts,
                std::future::pending(),
                |_| {},
            )
        };
        assert!(
            matches!(close().await, Err(Error::Remote(_))),
            "the invalidation failed"
        );
        assert_eq!(
            Live::read(&store.bytes(TOGGLE_PATH).unwrap()).state_name(),
            "ended"
        );
        let again = close().await.unwrap();
        let Outcome::Unchanged {
            invalidation: Some(_),
            ..
        } = again
        else {
            panic!("{again:?}")
        };
        let calls = cdn.calls.lock().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            calls[0], calls[1],
            "the same caller reference: never two invalidations"
        );
    }
}
