//! The edge function held to the gate's rules, request by request: a corpus
//! of order requests of every kind — valid; a forged MAC; another sale's
//! order URL; early; late; an unknown item; a bad, missing or forged
//! cookie; another method; another site's page; after the sale ended; not
//! staged yet; and random mutations of valid ones — judged by
//! `gate::EdgeRules` (the gate's own steps) and by the generated function
//! in a JavaScript engine (Node, or njs: CloudFront Functions' crypto API is
//! njs's) with a small stand-in of the `cloudfront` module. Every verdict
//! must agree.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::process::Command;

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::Method;

use super::Edge;
use crate::config::Config;
use crate::gate::{sign_cookie, EdgeRules, EdgeVerdict};
use crate::sale::GateKey;

/// One request of the corpus and the edge's state when it arrives.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Case {
    class: Class,
    method: String,
    /// The path, without the query string.
    uri: String,
    /// The raw query string, without `?`.
    query: String,
    headers: Vec<(String, String)>,
    now: i64,
    staged: bool,
    ended: bool,
}

/// The kinds of request the corpus holds, and what the edge must do with each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Class {
    Valid,
    ForgedMac,
    OtherSale,
    Early,
    Late,
    UnknownItem,
    BadCookie,
    MissingCookie,
    ForgedCookie,
    WrongMethod,
    CrossSite,
    AfterSoldOut,
    /// After the sale ended, but while a fair start's entrants ask for
    /// their results (an `after_sold_out` request of that time).
    DrawResult,
    NotStaged,
    ItemInBody,
    Preflight,
    NotAnOrder,
    Mutated,
}

const CLASSES: [Class; 17] = [
    Class::Valid,
    Class::ForgedMac,
    Class::OtherSale,
    Class::Early,
    Class::Late,
    Class::UnknownItem,
    Class::BadCookie,
    Class::MissingCookie,
    Class::ForgedCookie,
    Class::WrongMethod,
    Class::CrossSite,
    Class::AfterSoldOut,
    Class::NotStaged,
    Class::ItemInBody,
    Class::Preflight,
    Class::NotAnOrder,
    Class::Mutated,
];

impl Class {
    /// Whether every request of the class must be refused at the edge
    /// (given an identity cookie where the class is about cookies).
    fn refused(self, cookies: bool) -> bool {
        match self {
            Class::BadCookie | Class::MissingCookie | Class::ForgedCookie => cookies,
            Class::ForgedMac
            | Class::OtherSale
            | Class::Early
            | Class::Late
            | Class::UnknownItem
            | Class::WrongMethod
            | Class::CrossSite
            | Class::AfterSoldOut => true,
            _ => false,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = serde_json::to_value(self).map_err(|_| fmt::Error)?;
        f.write_str(v.as_str().unwrap_or("?"))
    }
}

/// A verdict as the harness prints it: `pass`, `R<status>`, `E0` (ended,
/// a 303) or `E1` (ended, JSON).
fn spelled(v: EdgeVerdict) -> String {
    match v {
        EdgeVerdict::Pass => "pass".into(),
        EdgeVerdict::Refuse(s) => format!("R{s}"),
        EdgeVerdict::Ended { json } => format!("E{}", u8::from(json)),
    }
}

/// splitmix64: a corpus is the same for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[self.below(from.len())]
    }
}

/// What the corpus is made for: a sale, its keys, its items.
pub(crate) struct Setup<'a> {
    pub(crate) config: &'a Config,
    pub(crate) key: &'a GateKey,
    pub(crate) cookie_key: &'a [u8],
    pub(crate) items: &'a [String],
}

/// `n` requests, every class in turn, from `seed`.
pub(crate) fn generate(s: &Setup, n: usize, seed: u64) -> Vec<Case> {
    let mut rng = Rng(seed);
    let c = s.config;
    let sale = &c.name;
    let (start, end, tol) = window(c);
    let origin = Edge::new(c).origin;
    let token = s.key.mint(sale, start);
    let cookie_name = match &c.gate.identity {
        crate::config::Identity::Cookie(name) => name.clone(),
        _ => "shop_user".into(),
    };
    (0..n)
        .map(|i| {
            let class = CLASSES[i % CLASSES.len()];
            let user = format!("user-{}", rng.below(1_000_000));
            let sku = rng.pick(s.items).clone();
            let mut case = Case {
                class,
                method: "POST".into(),
                uri: format!("/o/{sale}/{token}"),
                query: format!("sku={}", encode(&sku, &mut rng)),
                headers: vec![(
                    "cookie".into(),
                    format!("a=1; {cookie_name}={}", sign_cookie(s.cookie_key, &user)),
                )],
                now: start - tol + rng.below((end - start + 2 * tol).max(1) as usize) as i64,
                staged: true,
                ended: false,
            };
            if rng.below(2) == 0 {
                case.headers.push(("origin".into(), origin.clone()));
            }
            if rng.below(2) == 0 {
                case.headers
                    .push(("accept".into(), "application/json".into()));
            }
            shape(&mut case, s, &mut rng, &cookie_name);
            case
        })
        .collect()
}

/// The sale's start, end and clock tolerance, in ms.
fn window(c: &Config) -> (i64, i64, i64) {
    (
        c.start.timestamp_millis(),
        c.end.timestamp_millis(),
        c.gate.tolerance_ms,
    )
}

/// Percent-encodes some of a value's characters, as a client may.
fn encode(v: &str, rng: &mut Rng) -> String {
    v.chars()
        .map(|ch| match rng.below(4) {
            0 if ch.is_ascii() => format!("%{:02X}", ch as u32),
            _ => ch.to_string(),
        })
        .collect()
}

/// Turns a valid request into one of its class.
fn shape(case: &mut Case, s: &Setup, rng: &mut Rng, cookie_name: &str) {
    let c = s.config;
    let sale = &c.name;
    let (start, end, tol) = window(c);
    let set_cookie = |case: &mut Case, value: Option<String>| {
        case.headers.retain(|(n, _)| n != "cookie");
        if let Some(v) = value {
            case.headers.push(("cookie".into(), v));
        }
    };
    match case.class {
        Class::Valid => {
            // The edges of the window are inside it.
            match rng.below(10) {
                0 => case.now = start - tol,
                1 => case.now = end + tol,
                _ => {}
            }
            if rng.below(4) == 0 {
                case.query = format!("quantity=1&sku=+{}+", case.query.trim_start_matches("sku="));
            }
        }
        Class::ForgedMac => {
            let at = case.uri.len() - 1 - rng.below(64);
            let mut bytes = case.uri.clone().into_bytes();
            bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
            case.uri = String::from_utf8(bytes).unwrap_or_default();
        }
        Class::OtherSale => {
            let other = format!("{sale}-x");
            case.uri = match rng.below(3) {
                0 => format!("/o/{other}/{}", s.key.mint(&other, start)),
                1 => format!("/o/{sale}/{}", s.key.mint(&other, start)),
                // This sale, minted for another start (a preview's, an old schedule's).
                _ => format!(
                    "/o/{sale}/{}",
                    s.key.mint(sale, start + 1 + boundary_or(rng, 86_400_000))
                ),
            };
        }
        // One in ten a millisecond outside the window's edge.
        Class::Early => case.now = start - tol - 1 - boundary_or(rng, 3_600_000),
        Class::Late => case.now = end + tol + 1 + boundary_or(rng, 3_600_000),
        Class::UnknownItem => case.query = format!("sku=NOPE-{}", rng.below(1000)),
        Class::BadCookie => {
            let bad = *rng.pick(&["nodot", "alice.zz", "alice.", ".abc", "alice.12345"]);
            set_cookie(case, Some(format!("{cookie_name}={bad}")));
        }
        Class::MissingCookie => set_cookie(case, rng.below(2).eq(&0).then(|| "a=1".into())),
        Class::ForgedCookie => {
            let forged = match rng.below(2) {
                0 => sign_cookie(b"another shop's key", "alice"),
                _ => sign_cookie(s.cookie_key, "alice").replacen("alice", "mallory", 1),
            };
            set_cookie(case, Some(format!("{cookie_name}={forged}")));
        }
        Class::WrongMethod => {
            case.method = rng
                .pick(&["GET", "PUT", "DELETE", "HEAD", "PATCH"])
                .to_string();
        }
        Class::CrossSite => {
            case.headers.retain(|(n, _)| n != "origin");
            case.headers
                .push(("origin".into(), "https://evil.example".into()));
        }
        Class::AfterSoldOut => {
            case.ended = true;
            if case.now < EdgeRules::ended_from(c) {
                case.class = Class::DrawResult;
            }
        }
        Class::NotStaged => {
            case.staged = false;
            if rng.below(2) == 0 {
                case.uri = format!("/o/{sale}/{}", s.key.mint("elsewhere", start));
            }
        }
        Class::ItemInBody => case.query = "quantity=1".into(),
        Class::Preflight => case.method = "OPTIONS".into(),
        Class::NotAnOrder => {
            case.method = "GET".into();
            case.uri = "/items/mug-01/".into();
        }
        Class::Mutated => mutate(case, rng, cookie_name),
        // Made from `AfterSoldOut` above, never drawn as such.
        Class::DrawResult => {}
    }
}

/// 0 one time in ten, else up to `max`.
fn boundary_or(rng: &mut Rng, max: usize) -> i64 {
    match rng.below(10) {
        0 => 0,
        _ => rng.below(max) as i64,
    }
}

/// One random change anywhere a client controls.
fn mutate(case: &mut Case, rng: &mut Rng, cookie_name: &str) {
    const ALPHABET: &[u8] = b"0123456789abcdefABCDEF%+./-_=&?; \"xyz";
    let flip = |text: &str, rng: &mut Rng| -> String {
        let mut bytes = text.as_bytes().to_vec();
        if bytes.is_empty() {
            return text.to_string();
        }
        let at = rng.below(bytes.len());
        match rng.below(3) {
            0 => bytes[at] = *rng.pick(ALPHABET),
            1 => {
                bytes.remove(at);
            }
            _ => bytes.insert(at, *rng.pick(ALPHABET)),
        }
        String::from_utf8(bytes).unwrap_or_default()
    };
    match rng.below(4) {
        0 => case.uri = flip(&case.uri, rng),
        1 => case.query = flip(&case.query, rng),
        2 => {
            if let Some(h) = case.headers.iter_mut().find(|(n, _)| n == "cookie") {
                h.1 = flip(&h.1, rng);
                if !h.1.contains(cookie_name) {
                    h.1.push_str("; x=1");
                }
            }
        }
        _ => case.query = format!("sku={}", flip("%E6%9D%AF%20MUG-01", rng)),
    }
    // Header values a client cannot send are not in a corpus.
    if case.uri.contains(' ') || case.query.contains(' ') {
        case.uri = case.uri.replace(' ', "%20");
        case.query = case.query.replace(' ', "+");
    }
}

/// The gate's verdict on a case.
pub(crate) fn judge(rules: &EdgeRules, case: &Case) -> EdgeVerdict {
    let mut headers = HeaderMap::new();
    for (n, v) in &case.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(n.as_str()), HeaderValue::from_str(v)) {
            headers.append(n, v);
        }
    }
    let method = Method::from_bytes(case.method.as_bytes()).unwrap_or(Method::GET);
    let target = match case.query.is_empty() {
        true => case.uri.clone(),
        false => format!("{}?{}", case.uri, case.query),
    };
    rules.verdict(
        &method,
        &target,
        &headers,
        case.now,
        case.staged,
        case.ended,
    )
}

/// The harness around the function: the `cloudfront` module's stand-in
/// (the store as a map, the sale's `ended` key per case), each case made a
/// CloudFront event (headers, cookies and query string split as CloudFront
/// does), `Date.now()` the case's moment; one verdict per line.
fn harness(edge: &Edge, dir: &Path) -> String {
    let code: String = edge
        .function()
        .lines()
        .filter(|l| !l.starts_with("import "))
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = dir
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('\'', "\\'");
    format!(
        r#"var crypto = require('crypto');
var fs = require('fs');
var DIR = '{dir}';
var STORE = JSON.parse(fs.readFileSync(DIR + '/store.json', 'utf8'));
var ENDED_KEY = {ended_key};
var current = null;
var cf = {{ kvs: function () {{ return {{ get: async function (key) {{
  if (key === ENDED_KEY) {{ if (current.ended) return '1'; throw new Error('key not found'); }}
  if (!current.staged || !(key in STORE)) throw new Error('key not found');
  return STORE[key];
}} }}; }} }};
{code}
function add(to, k, v) {{
  if (to[k]) {{ to[k].multiValue = to[k].multiValue || [{{ value: to[k].value }}]; to[k].multiValue.push({{ value: v }}); }}
  else to[k] = {{ value: v }};
}}
function event(c) {{
  var headers = {{}}, cookies = {{}}, qs = {{}};
  c.headers.forEach(function (h) {{
    add(headers, h[0].toLowerCase(), h[1]);
    if (h[0].toLowerCase() !== 'cookie') return;
    h[1].split(';').forEach(function (p) {{
      var eq = p.indexOf('=');
      if (eq > 0) add(cookies, p.slice(0, eq).trim(), p.slice(eq + 1).trim());
    }});
  }});
  if (c.query !== '') c.query.split('&').forEach(function (p) {{
    var eq = p.indexOf('=');
    if (p !== '') add(qs, eq < 0 ? p : p.slice(0, eq), eq < 0 ? '' : p.slice(eq + 1));
  }});
  return {{ version: '1.0', context: {{ eventType: 'viewer-request' }}, viewer: {{ ip: '127.0.0.1' }},
    request: {{ method: c.method, uri: c.uri, querystring: qs, headers: headers, cookies: cookies }} }};
}}
function spelled(r) {{
  if (r.statusCode === undefined) return 'pass';
  var h = r.headers;
  if (!h['cache-control'] || h['access-control-allow-origin'].value !== ORIGIN) return 'BADHEADERS';
  if (r.statusCode === 303 && h.location.value === ENDED) return 'E0';
  if (r.statusCode === 200 && r.body.data === '{{"status":"sold_out"}}') return 'E1';
  return 'R' + r.statusCode;
}}
async function main() {{
  var lines = fs.readFileSync(process.argv[2], 'utf8').split('\n');
  var out = [];
  for (var i = 0; i < lines.length; i++) {{
    if (lines[i] === '') continue;
    current = JSON.parse(lines[i]);
    var now = current.now;
    Date.now = function () {{ return now; }};
    var r = await handler(event(current));
    out.push(spelled(r));
  }}
  fs.writeFileSync(process.argv[3], out.join('\n') + '\n');
}}
main().catch(function (e) {{ fs.writeFileSync(process.argv[3], 'ERROR ' + e + '\n'); }});
"#,
        ended_key = serde_json::to_string(&edge.ended_key()).unwrap_or_default(),
    )
}

/// One chunk of the corpus through `engine`: its verdicts, a line each.
fn judge_chunk(
    engine: &str,
    script: &Path,
    dir: &Path,
    name: usize,
    chunk: &[Case],
) -> anyhow::Result<String> {
    use anyhow::Context;
    let (input, output) = (
        dir.join(format!("corpus-{name}.jsonl")),
        dir.join(format!("verdicts-{name}.txt")),
    );
    let mut lines = String::new();
    for c in chunk {
        lines.push_str(&serde_json::to_string(c)?);
        lines.push('\n');
    }
    std::fs::write(&input, lines)?;
    let out = Command::new(engine)
        .arg(script)
        .arg(&input)
        .arg(&output)
        .output()
        .with_context(|| {
            format!("cannot run {engine} (install Node or njs, or name one with --engine)")
        })?;
    let got = std::fs::read_to_string(&output).with_context(|| {
        format!(
            "{engine} wrote no verdicts: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if let Some(e) = got.strip_prefix("ERROR ") {
        anyhow::bail!("the function failed under {engine}: {}", e.trim());
    }
    Ok(got)
}

/// Requests per engine process.
const CHUNK: usize = 5_000;

/// How one engine judged the corpus.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) engine: String,
    pub(crate) cases: usize,
    pub(crate) disagreements: usize,
    /// The first few, described.
    pub(crate) examples: Vec<String>,
    /// Valid orders the edge refused.
    pub(crate) valid_refused: usize,
    /// Requests of a class that must be refused that the edge passed.
    pub(crate) invalid_passed: usize,
    /// Per class: how many, and how many the edge refused.
    pub(crate) classes: BTreeMap<String, (usize, usize)>,
    pub(crate) seconds: f64,
}

/// Runs the corpus through `engine` (`node` or `njs`, or a path to one) in
/// `dir` and compares every verdict with the gate's.
pub(crate) fn run(
    edge: &Edge,
    rules: &EdgeRules,
    store: &[(String, String)],
    cases: &[Case],
    engine: &str,
    dir: &Path,
) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(dir)?;
    let store: BTreeMap<&str, &str> = store
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    std::fs::write(dir.join("store.json"), serde_json::to_vec(&store)?)?;
    let script = dir.join("harness.js");
    std::fs::write(&script, harness(edge, dir))?;
    let started = std::time::Instant::now();
    // One process per chunk, as many at once as there are cores: njs frees
    // nothing until its VM ends (a whole corpus in one takes gigabytes), and
    // a CloudFront Function runs once per request anyway.
    let chunks: Vec<&[Case]> = cases.chunks(CHUNK).collect();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut verdicts = vec![String::new(); chunks.len()];
    let script = &script;
    let batches = chunks.chunks(cores).zip(verdicts.chunks_mut(cores));
    for (b, (batch, slots)) in batches.enumerate() {
        std::thread::scope(|scope| -> anyhow::Result<()> {
            let running: Vec<_> = batch
                .iter()
                .zip(slots.iter_mut())
                .enumerate()
                .map(|(i, (chunk, slot))| {
                    let n = b * cores + i;
                    scope.spawn(move || -> anyhow::Result<()> {
                        *slot = judge_chunk(engine, script, dir, n, chunk)?;
                        Ok(())
                    })
                })
                .collect();
            for r in running {
                r.join()
                    .map_err(|_| anyhow::anyhow!("a corpus thread panicked"))??;
            }
            Ok(())
        })?;
    }
    let verdicts = verdicts.concat();
    let seconds = started.elapsed().as_secs_f64();
    let cookies = edge.cookie.is_some();
    let mut o = Outcome {
        engine: engine.to_string(),
        cases: cases.len(),
        seconds,
        ..Outcome::default()
    };
    let got: Vec<&str> = verdicts.lines().collect();
    anyhow::ensure!(
        got.len() == cases.len(),
        "{engine} judged {} of {} requests",
        got.len(),
        cases.len()
    );
    for (case, js) in cases.iter().zip(got) {
        let gate = spelled(judge(rules, case));
        let entry = o.classes.entry(case.class.to_string()).or_default();
        entry.0 += 1;
        if js != "pass" {
            entry.1 += 1;
        }
        if js != gate {
            o.disagreements += 1;
            if o.examples.len() < 5 {
                o.examples.push(format!(
                    "{}: the gate says {gate}, the function {js}: {}",
                    case.class,
                    serde_json::to_string(case).unwrap_or_default()
                ));
            }
        }
        if case.class == Class::Valid && js != "pass" {
            o.valid_refused += 1;
        }
        if case.class.refused(cookies) && js == "pass" {
            o.invalid_passed += 1;
        }
    }
    Ok(o)
}
