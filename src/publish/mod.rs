//! `publish`: put a built sale on an object store with each file's own headers,
//! touching only what changed, in an order that never serves a page before its
//! assets, and invalidate exactly the changed paths on the CDN.
//!
//! The work is a [`Plan`] (computed from the manifest and the remote's state)
//! executed against a [`Remote`]; a dry run is the same execution against
//! [`remote::DryRun`]. An interrupted publish leaves the remote's state object
//! behind the objects; the next run notices (ETags differ from the state),
//! asks those objects for their metadata, and converges.

pub mod cdn;
pub mod plan;
pub mod remote;
pub mod s3;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::manifest::Manifest;
use cdn::Cdn;
use plan::{headers_hash, phase, Known, STATE_KEY};
pub use plan::{Change, Plan, State, View};
use remote::{metadata, Remote, RemoteError};

const STATE_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}: no build to publish; run `flashsale build` first")]
    NoBuild(PathBuf),
    #[error("{0}")]
    Manifest(String),
    #[error("{}: {error}", path.display())]
    Local {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: changed since `flashsale build` (its content no longer matches the manifest); run `flashsale build` again", .0.display())]
    Changed(PathBuf),
    #[error("the plan deletes {count} objects, more than max_deletes = {max}; check the target and prefix, then pass --force, or raise max_deletes in [publish]")]
    TooManyDeletes { count: usize, max: usize },
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("invalidation {id} was not completed after {waited:?}; it goes on in the background (check it in the CloudFront console)")]
    WaitTimeout { id: String, waited: Duration },
    /// Some writes were done: a re-run finishes the job.
    #[error("{0}; the publish stopped part-way: run it again to converge")]
    Partial(Box<Error>),
}

pub struct Options {
    pub prune: bool,
    /// Upload the build's pending toggle even over a live one.
    pub reset_toggle: bool,
    pub force: bool,
    pub concurrency: usize,
    /// Wait this long at most for the invalidation to complete.
    pub wait: Option<Duration>,
    pub max_deletes: usize,
    pub max_invalidation_paths: usize,
    /// The URL path the output is served under (`site.base_path`).
    pub base_path: String,
}

/// Reports progress; the command line draws a bar or prints lines.
pub trait Progress: Sync {
    fn phase(&self, name: &str, total: usize);
    fn done(&self, key: &str);
    fn note(&self, message: &str);
    fn finish(&self);
}

/// No progress output.
pub struct Quiet;

impl Progress for Quiet {
    fn phase(&self, _: &str, _: usize) {}
    fn done(&self, _: &str) {}
    fn note(&self, _: &str) {}
    fn finish(&self) {}
}

/// Requests sent to the remote and the CDN, by kind.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Requests {
    pub list: usize,
    pub get: usize,
    pub head: usize,
    pub put: usize,
    pub copy: usize,
    pub delete: usize,
    pub invalidate: usize,
    pub total: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Invalidation {
    pub id: String,
    pub paths: Vec<String>,
    pub completed: Option<bool>,
}

/// What a publish did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub target: String,
    pub cdn: Option<String>,
    pub uploaded: Vec<String>,
    pub headers_updated: Vec<String>,
    pub deleted: Vec<String>,
    /// No longer built, kept (without --prune).
    pub stale_kept: Vec<String>,
    pub unchanged: usize,
    /// `uploaded`, or `kept` when the bucket already had a (live) toggle.
    pub toggle: &'static str,
    pub invalidation: Option<Invalidation>,
    /// Paths that changed but were not invalidated because no CDN is configured.
    pub not_invalidated: Vec<String>,
    pub requests: Requests,
    pub elapsed_ms: u128,
}

/// Reads the remote's view: the listing, the state object, and metadata of
/// the objects the state does not vouch for.
async fn view<R: Remote>(
    remote: &R,
    manifest: &Manifest,
    opts: &Options,
    req: &mut Requests,
    progress: &dyn Progress,
) -> Result<View, Error> {
    let (listed, pages) = remote.list().await?;
    req.list += pages;
    let mut view = View {
        listed: listed.into_iter().map(|l| (l.key, l.etag)).collect(),
        ..View::default()
    };
    if view.listed.contains_key(STATE_KEY) {
        req.get += 1;
        if let Some(bytes) = remote.get(STATE_KEY).await? {
            match serde_json::from_slice::<State>(&bytes) {
                Ok(s) if s.version == STATE_VERSION => view.state = Some(s),
                _ => progress.note("the remote's state object is unreadable; comparing objects by their metadata instead"),
            }
        }
    }
    let keys = view.needs_probe(manifest);
    if !keys.is_empty() {
        progress.phase("reading metadata", keys.len());
        req.head += keys.len();
        let mut probes = stream::iter(keys)
            .map(|k| async move {
                let r = remote.head(&k).await;
                (k, r)
            })
            .buffer_unordered(opts.concurrency.max(1));
        while let Some((k, r)) = probes.next().await {
            progress.done(&k);
            view.probed.insert(k, r?);
        }
    }
    Ok(view)
}

/// Publishes the build in `output_dir`.
pub async fn publish<R: Remote, C: Cdn>(
    output_dir: &Path,
    remote: &R,
    cdn: Option<&C>,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Outcome, Error> {
    let started = Instant::now();
    let manifest = Manifest::read(output_dir)
        .map_err(Error::Manifest)?
        .ok_or_else(|| Error::NoBuild(output_dir.to_path_buf()))?;
    let mut req = Requests::default();
    let view = view(remote, &manifest, opts, &mut req, progress).await?;
    let plan = Plan::compute(
        &manifest,
        &view,
        &plan::Options {
            prune: opts.prune,
            reset_toggle: opts.reset_toggle,
            base_path: &opts.base_path,
            max_invalidation_paths: opts.max_invalidation_paths,
        },
    );
    if plan.deletions.len() > opts.max_deletes && !opts.force {
        return Err(Error::TooManyDeletes {
            count: plan.deletions.len(),
            max: opts.max_deletes,
        });
    }
    let partial = |e: Error| match e {
        Error::WaitTimeout { .. } => e,
        e => Error::Partial(Box::new(e)),
    };
    execute(
        output_dir, remote, cdn, opts, progress, &manifest, &view, &plan, req, started,
    )
    .await
    .map_err(partial)
}

/// Carries out a plan: uploads by phase, deletions, invalidation, state.
#[allow(clippy::too_many_arguments)]
async fn execute<R: Remote, C: Cdn>(
    output_dir: &Path,
    remote: &R,
    cdn: Option<&C>,
    opts: &Options,
    progress: &dyn Progress,
    manifest: &Manifest,
    view: &View,
    plan: &Plan,
    mut req: Requests,
    started: Instant,
) -> Result<Outcome, Error> {
    // Uploads and header updates, phase by phase.
    let mut written: BTreeMap<String, Known> = BTreeMap::new();
    let mut start = 0;
    while start < plan.steps.len() {
        let this = phase(plan.steps[start].entry.class);
        let end = start
            + plan.steps[start..]
                .iter()
                .take_while(|s| phase(s.entry.class) == this)
                .count();
        let batch = &plan.steps[start..end];
        progress.phase(
            [
                "uploading assets",
                "uploading pages",
                "uploading the toggle",
            ][this as usize],
            batch.len(),
        );
        let mut running = stream::iter(batch)
            .map(|step| async move {
                let known = Known {
                    sha256: step.entry.sha256.clone(),
                    headers: headers_hash(&step.entry.headers),
                    etag: None,
                };
                let meta = metadata(&known);
                let etag = match step.change {
                    Change::Upload => {
                        let path = output_dir.join(&step.key);
                        let body = std::fs::read(&path).map_err(|error| Error::Local {
                            path: path.clone(),
                            error,
                        })?;
                        if hex::encode(Sha256::digest(&body)) != step.entry.sha256 {
                            return Err(Error::Changed(path));
                        }
                        remote
                            .put(&step.key, body, &step.entry.headers, &meta)
                            .await?
                    }
                    Change::Headers => {
                        remote
                            .set_headers(&step.key, &step.entry.headers, &meta)
                            .await?
                    }
                };
                Ok::<_, Error>((step, Known { etag, ..known }))
            })
            .buffer_unordered(opts.concurrency.max(1));
        while let Some(r) = running.next().await {
            let (step, known) = r?;
            match step.change {
                Change::Upload => req.put += 1,
                Change::Headers => req.copy += 1,
            }
            progress.done(&step.key);
            written.insert(step.key.clone(), known);
        }
        start = end;
    }

    if !plan.deletions.is_empty() {
        progress.phase("deleting", plan.deletions.len());
        req.delete += remote.delete(&plan.deletions).await?;
        progress.note(&format!("deleted {} objects", plan.deletions.len()));
    }

    let mut invalidation = None;
    let mut not_invalidated = Vec::new();
    if !plan.invalidate.is_empty() {
        match cdn {
            Some(cdn) => {
                let reference = caller_reference(plan, manifest);
                req.invalidate += 1;
                let id = cdn.invalidate(&plan.invalidate, &reference).await?;
                invalidation = Some(Invalidation {
                    id,
                    paths: plan.invalidate.clone(),
                    completed: None,
                });
            }
            None => not_invalidated = plan.invalidate.clone(),
        }
    }

    // The state goes last: until it is written, a re-run re-checks what this run touched.
    let state_changed = !written.is_empty()
        || !plan.deletions.is_empty()
        || !view.probed.is_empty()
        || view.state.is_none();
    if state_changed {
        let state = next_state(view, &written, &plan.deletions);
        let body = serde_json::to_vec(&state).expect("state serialises");
        let headers = BTreeMap::from([
            ("Cache-Control".to_string(), "no-store".to_string()),
            ("Content-Type".to_string(), "application/json".to_string()),
        ]);
        req.put += 1;
        remote
            .put(STATE_KEY, body, &headers, &BTreeMap::new())
            .await?;
    }

    if let (Some(wait), Some(cdn), Some(inv)) = (opts.wait, cdn, invalidation.as_mut()) {
        progress.phase("waiting for the invalidation", 0);
        let deadline = Instant::now() + wait;
        let mut delay = Duration::from_millis(500);
        loop {
            req.invalidate += 1;
            if cdn.completed(&inv.id).await? {
                inv.completed = Some(true);
                break;
            }
            if Instant::now() + delay > deadline {
                progress.finish();
                return Err(Error::WaitTimeout {
                    id: inv.id.clone(),
                    waited: wait,
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }
    progress.finish();
    req.total = req.list + req.get + req.head + req.put + req.copy + req.delete + req.invalidate;

    let by = |c: Change| {
        plan.steps
            .iter()
            .filter(|s| s.change == c)
            .map(|s| s.key.clone())
            .collect()
    };
    Ok(Outcome {
        target: remote.describe(),
        cdn: cdn.map(Cdn::describe),
        uploaded: by(Change::Upload),
        headers_updated: by(Change::Headers),
        deleted: plan.deletions.clone(),
        stale_kept: plan.stale.clone(),
        unchanged: plan.unchanged,
        toggle: if plan.toggle_live { "kept" } else { "uploaded" },
        invalidation,
        not_invalidated,
        requests: req,
        elapsed_ms: started.elapsed().as_millis(),
    })
}

/// Same invalidation of the same change → same reference, so a retried or
/// re-run request never creates a second invalidation; a later, different
/// publish (another starting state) gets a new one.
fn caller_reference(plan: &Plan, manifest: &Manifest) -> String {
    let mut h = Sha256::new();
    h.update(plan.from_generation.as_bytes());
    for p in &plan.invalidate {
        h.update(b"\n");
        h.update(p.as_bytes());
    }
    for e in &manifest.files {
        h.update(e.sha256.as_bytes());
    }
    format!("flashsale-{}", &hex::encode(h.finalize())[..32])
}

/// The state after this publish: what was vouched for or probed, plus what was written.
fn next_state(view: &View, written: &BTreeMap<String, Known>, deleted: &[String]) -> State {
    let deleted: BTreeSet<&String> = deleted.iter().collect();
    let mut objects: BTreeMap<String, Known> = BTreeMap::new();
    if let Some(state) = &view.state {
        for (k, known) in &state.objects {
            if view.listed.get(k).is_some_and(|etag| &known.etag == etag) {
                objects.insert(k.clone(), known.clone());
            }
        }
    }
    for (k, probed) in &view.probed {
        if let Some(known) = probed {
            let etag = view.listed.get(k).cloned().flatten();
            objects.insert(
                k.clone(),
                Known {
                    etag,
                    ..known.clone()
                },
            );
        }
    }
    for (k, known) in written {
        objects.insert(k.clone(), known.clone());
    }
    objects.retain(|k, _| !deleted.contains(k) && k != STATE_KEY);
    State {
        version: STATE_VERSION,
        generation: crate::sale::random_hex(8),
        objects,
    }
}

/// A remote chosen at run time: the bucket of `[publish]`, or a directory.
pub enum Target {
    S3(s3::S3Remote),
    Dir(remote::DirRemote),
}

impl Target {
    /// `s3` (the `[publish]` section) or `dir:PATH`; for S3 also the
    /// CloudFront distribution, if configured. Credentials are resolved here.
    pub async fn connect(
        config: &crate::config::Config,
        target: &str,
        flags: &s3::AwsFlags,
    ) -> Result<(Target, Option<s3::CloudFront>), TargetError> {
        if let Some(dir) = target.strip_prefix("dir:") {
            return Ok((Target::Dir(remote::DirRemote::new(Path::new(dir))), None));
        }
        if target != "s3" {
            return Err(TargetError::Unknown {
                target: target.to_string(),
                config: config.path.clone(),
            });
        }
        let cfg = config
            .publish
            .as_ref()
            .ok_or_else(|| TargetError::NoPublish(config.path.clone()))?;
        let shared = s3::load(cfg, flags).await?;
        let cdn = cfg
            .distribution_id
            .as_deref()
            .map(|id| s3::CloudFront::new(&shared, id));
        Ok((Target::S3(s3::S3Remote::new(&shared, cfg)), cdn))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("unknown target `{target}`: use `s3` (the [publish] section of {}) or `dir:PATH`", config.display())]
    Unknown { target: String, config: PathBuf },
    #[error("{}: no [publish] section; add one, e.g.\n\n[publish]\nbucket = \"my-sale-bucket\"\nregion = \"eu-central-1\"\ndistribution_id = \"E2QWRUHAPOMQZL\"   # optional, CloudFront", .0.display())]
    NoPublish(PathBuf),
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

impl Remote for Target {
    fn describe(&self) -> String {
        match self {
            Target::S3(r) => r.describe(),
            Target::Dir(r) => r.describe(),
        }
    }

    async fn list(&self) -> Result<(Vec<remote::Listed>, usize), RemoteError> {
        match self {
            Target::S3(r) => r.list().await,
            Target::Dir(r) => r.list().await,
        }
    }

    async fn head(&self, key: &str) -> Result<Option<Known>, RemoteError> {
        match self {
            Target::S3(r) => r.head(key).await,
            Target::Dir(r) => r.head(key).await,
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        match self {
            Target::S3(r) => r.get(key).await,
            Target::Dir(r) => r.get(key).await,
        }
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        headers: &BTreeMap<String, String>,
        meta: &BTreeMap<String, String>,
    ) -> Result<Option<String>, RemoteError> {
        match self {
            Target::S3(r) => r.put(key, body, headers, meta).await,
            Target::Dir(r) => r.put(key, body, headers, meta).await,
        }
    }

    async fn set_headers(
        &self,
        key: &str,
        headers: &BTreeMap<String, String>,
        meta: &BTreeMap<String, String>,
    ) -> Result<Option<String>, RemoteError> {
        match self {
            Target::S3(r) => r.set_headers(key, headers, meta).await,
            Target::Dir(r) => r.set_headers(key, headers, meta).await,
        }
    }

    async fn delete(&self, keys: &[String]) -> Result<usize, RemoteError> {
        match self {
            Target::S3(r) => r.delete(keys).await,
            Target::Dir(r) => r.delete(keys).await,
        }
    }
}
