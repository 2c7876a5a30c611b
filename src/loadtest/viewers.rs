//! `rehearse --viewers`: a crowd of open pages that only poll `sale.js`, the
//! load a CDN edge takes on sale day. Each page polls on the runtime's
//! near-start schedule (its first poll at a random moment in the first 3 s,
//! then every 1–3 s after each answer, a fresh random `v` each time) for the
//! whole run, so N pages make about N/2 polls a second.
//!
//! Latency is counted from the moment a poll was due, not from when the
//! generator got round to sending it: if the generator falls behind, that
//! shows in the tail (and in `max_lag_ms`) instead of hiding (open model, no
//! coordinated omission). For each page the wall-clock moment it first saw
//! `open` (or `ended`) is kept, so a run across an `open` tells how long the
//! last page waited.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;

use super::{check_target, latency, unix_ms, Error, Latency};
use crate::sale::{polling, Toggle};
use crate::util::http::Client;
use crate::util::random;
use crate::util::sync::lock;

pub(crate) struct Options {
    /// Where `sale.js` is served (the CDN, or a cache standing in for one).
    pub(crate) url: String,
    pub(crate) viewers: usize,
    /// How long the crowd polls.
    pub(crate) duration: Duration,
    /// Requests in flight at once (connections).
    pub(crate) concurrency: usize,
    pub(crate) allow_hosts: Vec<String>,
}

/// What the crowd saw.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Report {
    pub(crate) viewers: usize,
    pub(crate) polls: usize,
    pub(crate) seconds: f64,
    /// Polls over the run's duration.
    pub(crate) polls_per_second: f64,
    /// From the moment each poll was due to its answer.
    pub(crate) latency: Latency,
    /// The furthest the generator fell behind the schedule.
    pub(crate) max_lag_ms: f64,
    /// Answers by HTTP status.
    pub(crate) statuses: BTreeMap<u16, usize>,
    /// Transport errors and bodies that are not a toggle.
    pub(crate) errors: usize,
    pub(crate) error_samples: Vec<String>,
    /// The oldest cached copy answered (its `Age` header, whole seconds).
    pub(crate) max_age_s: u64,
    /// The first state any page saw.
    pub(crate) first_state: Option<String>,
    /// Pages that saw the toggle change (e.g. `pending` to `open`).
    pub(crate) pages_switched: usize,
    /// Wall-clock (Unix ms) of the first and the last page first seeing the new state.
    pub(crate) first_switch_unix_ms: Option<i64>,
    pub(crate) last_switch_unix_ms: Option<i64>,
}

#[derive(Default)]
struct Tally {
    polls: usize,
    ms: Vec<f64>,
    max_lag_ms: f64,
    statuses: BTreeMap<u16, usize>,
    errors: usize,
    samples: Vec<String>,
    max_age: u64,
    first_state: Option<String>,
    switched: Vec<i64>,
}

impl Tally {
    fn error(&mut self, e: String) {
        self.errors += 1;
        if self.samples.len() < 5 {
            self.samples.push(e);
        }
    }
}

/// Bounded in time: a poll that hangs is an error, not a stuck page.
const POLL_TIMEOUT: Duration = Duration::from_secs(10);
/// One page: poll until the end, note when the state first changed.
async fn page(url: &str, http: &Client, slots: &Semaphore, tally: &Mutex<Tally>, end: Instant) {
    let mut due = Instant::now() + Duration::from_millis(random::below(polling::JITTER_MS));
    let mut seen: Option<String> = None;
    while due < end {
        tokio::time::sleep_until(due.into()).await;
        let answer = {
            let _slot = slots.acquire().await.expect("semaphore open");
            let lag = due.elapsed().as_secs_f64() * 1e3;
            let url = format!("{url}?v={}", random::hex(4));
            (lag, http.get(&url, POLL_TIMEOUT).await)
        };
        let done = Instant::now();
        let (lag, answer) = answer;
        let state = {
            let mut t = lock(tally);
            t.polls += 1;
            t.ms.push(done.duration_since(due).as_secs_f64() * 1e3);
            t.max_lag_ms = t.max_lag_ms.max(lag);
            match answer {
                Ok(r) => {
                    *t.statuses.entry(r.status).or_default() += 1;
                    t.max_age = t.max_age.max(r.age.unwrap_or(0));
                    if r.status == 200 {
                        match Toggle::parse_script(&String::from_utf8_lossy(&r.body)) {
                            Ok(toggle) => Some(toggle.state_name().to_string()),
                            Err(e) => {
                                t.error(format!("sale.js: {e}"));
                                None
                            }
                        }
                    } else {
                        None
                    }
                }
                Err(e) => {
                    t.error(format!("sale.js: {e}"));
                    None
                }
            }
        };
        if let Some(state) = state {
            match &seen {
                None => {
                    tally
                        .lock()
                        .expect("tally lock")
                        .first_state
                        .get_or_insert_with(|| state.clone());
                    seen = Some(state);
                }
                Some(before) if *before != state => {
                    lock(tally).switched.push(unix_ms());
                    seen = Some(state);
                }
                Some(_) => {}
            }
        }
        // Like the runtime: the next poll 1–3 s after this answer.
        due = Instant::now()
            + Duration::from_millis(polling::POLL_MIN_MS + random::below(polling::POLL_SPREAD_MS));
    }
}

pub(crate) async fn run(opts: Options) -> Result<Report, Error> {
    check_target(&opts.url, &opts.allow_hosts)?;
    let url = format!("{}/sale.js", opts.url.trim_end_matches('/'));
    let http = Client::with_pool(opts.concurrency, 64 * 1024);
    let slots = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let end = started + opts.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..opts.viewers {
        let (url, http, slots, tally) = (url.clone(), http.clone(), slots.clone(), tally.clone());
        tasks.spawn(async move { page(&url, &http, &slots, &tally, end).await });
    }
    // Every poll is bounded, so the crowd is done soon after the end.
    let _ = tokio::time::timeout(opts.duration + POLL_TIMEOUT * 2, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    let seconds = started.elapsed().as_secs_f64();
    let mut t = std::mem::take(&mut *lock(&tally));
    t.switched.sort_unstable();
    Ok(Report {
        viewers: opts.viewers,
        polls: t.polls,
        seconds,
        polls_per_second: t.polls as f64 / opts.duration.as_secs_f64().max(1e-9),
        latency: latency(t.ms),
        max_lag_ms: t.max_lag_ms,
        statuses: t.statuses,
        errors: t.errors,
        error_samples: t.samples,
        max_age_s: t.max_age,
        first_state: t.first_state,
        pages_switched: t.switched.len(),
        first_switch_unix_ms: t.switched.first().copied(),
        last_switch_unix_ms: t.switched.last().copied(),
    })
}
