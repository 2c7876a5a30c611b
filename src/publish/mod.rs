//! `publish`: put a built sale on an object store with each file's own headers,
//! touching only what changed, in an order that never serves a page before its
//! assets, and invalidate exactly the changed paths on the CDN.
//!
//! The work is a [`Plan`] (computed from the manifest and the remote's state)
//! executed against a [`Remote`]; a dry run is the same execution against
//! [`crate::store::DryRun`]. An interrupted publish leaves the remote's state object
//! behind the objects; the next run notices (ETags differ from the state),
//! asks those objects for their metadata, and converges.

mod invalidation;
mod plan;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::site::manifest::Manifest;
use crate::store::{wait_completed, Cdn, Known, Remote, RemoteError, WaitError};
use plan::{phase, Change, Plan, Snapshot, View, STATE_KEY};

const STATE_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("{0}: no build to publish; run `flashsale build` first")]
    NoBuild(PathBuf),
    #[error(transparent)]
    Manifest(#[from] crate::site::manifest::ManifestError),
    #[error("{}: {error}", path.display())]
    Local {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: changed since `flashsale build` (its content no longer matches the manifest); run `flashsale build` again", .0.display())]
    Changed(PathBuf),
    #[error("the plan deletes {count} objects, more than max_deletes = {max}; check the target and prefix, or raise max_deletes in [publish]")]
    TooManyDeletes { count: usize, max: usize },
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error(transparent)]
    Wait(#[from] WaitError),
    /// Some writes were done: a re-run finishes the job.
    #[error("{0}; the publish stopped part-way: run it again to converge")]
    Partial(Box<Error>),
}

pub(crate) struct Options {
    pub(crate) prune: bool,
    /// Upload the build's pending toggle even over a live one.
    pub(crate) reset_toggle: bool,
    pub(crate) force: bool,
    pub(crate) concurrency: usize,
    /// Wait this long at most for the invalidation to complete.
    pub(crate) wait: Option<Duration>,
    pub(crate) max_deletes: usize,
    pub(crate) max_invalidation_paths: usize,
    /// The URL path the output is served under (`site.base_path`).
    pub(crate) base_path: String,
}

/// Reports progress; the command line draws a bar or prints lines.
pub(crate) trait Progress: Sync {
    fn phase(&self, name: &str, total: usize);
    fn done(&self, key: &str);
    fn note(&self, message: &str);
    fn finish(&self);
}

/// Requests sent to the remote and the CDN, by kind.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Requests {
    pub(crate) list: usize,
    pub(crate) get: usize,
    pub(crate) head: usize,
    pub(crate) put: usize,
    pub(crate) copy: usize,
    pub(crate) delete: usize,
    pub(crate) invalidate: usize,
    pub(crate) total: usize,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Invalidation {
    pub(crate) id: String,
    pub(crate) paths: Vec<String>,
    pub(crate) completed: Option<bool>,
}

/// What a publish does with the build's `sale.js`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ToggleAction {
    /// The store had none (or it was reset): the build's pending toggle went up.
    Uploaded,
    /// The store already has a toggle, which `open`/`close` own: left alone.
    Kept,
}

/// What a publish did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Outcome {
    pub(crate) target: String,
    pub(crate) cdn: Option<String>,
    pub(crate) uploaded: Vec<String>,
    pub(crate) headers_updated: Vec<String>,
    pub(crate) deleted: Vec<String>,
    /// No longer built, kept (without --prune).
    pub(crate) stale_kept: Vec<String>,
    pub(crate) unchanged: usize,
    /// What happened to `sale.js`.
    pub(crate) toggle: ToggleAction,
    pub(crate) invalidation: Option<Invalidation>,
    /// Paths that changed but were not invalidated because no CDN is configured.
    pub(crate) not_invalidated: Vec<String>,
    pub(crate) requests: Requests,
    pub(crate) elapsed_ms: u128,
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
            match serde_json::from_slice::<Snapshot>(&bytes) {
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
pub(crate) async fn publish<R: Remote, C: Cdn>(
    output_dir: &Path,
    remote: &R,
    cdn: Option<&C>,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Outcome, Error> {
    let started = Instant::now();
    let manifest =
        Manifest::read(output_dir)?.ok_or_else(|| Error::NoBuild(output_dir.to_path_buf()))?;
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
        Error::Wait(WaitError::Timeout { .. }) => e,
        e => Error::Partial(Box::new(e)),
    };
    let run = Run {
        output_dir,
        remote,
        cdn,
        opts,
        progress,
        started,
    };
    execute(&run, &manifest, &view, &plan, req)
        .await
        .map_err(partial)
}

/// One publish: where from, where to, how, and since when.
struct Run<'a, R, C> {
    output_dir: &'a Path,
    remote: &'a R,
    cdn: Option<&'a C>,
    opts: &'a Options,
    progress: &'a dyn Progress,
    started: Instant,
}

/// Carries out a plan: uploads by phase, deletions, invalidation, state.
async fn execute<R: Remote, C: Cdn>(
    run: &Run<'_, R, C>,
    manifest: &Manifest,
    view: &View,
    plan: &Plan,
    mut req: Requests,
) -> Result<Outcome, Error> {
    let Run {
        output_dir,
        remote,
        cdn,
        opts,
        progress,
        started,
    } = *run;
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
                let known = plan::known(&step.entry);
                let meta = known.metadata();
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
        let waited = wait_completed(cdn, &inv.id, wait).await;
        progress.finish();
        req.invalidate += waited?;
        inv.completed = Some(true);
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
        toggle: if plan.toggle_live {
            ToggleAction::Kept
        } else {
            ToggleAction::Uploaded
        },
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
fn next_state(view: &View, written: &BTreeMap<String, Known>, deleted: &[String]) -> Snapshot {
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
    Snapshot {
        version: STATE_VERSION,
        generation: crate::util::random::hex(8),
        objects,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::headers::{self, TOGGLE_PATH};
    use crate::site::manifest::Entry;
    use crate::store::{MemoryStore, NoCdn};

    struct Silent;

    impl Progress for Silent {
        fn phase(&self, _: &str, _: usize) {}
        fn done(&self, _: &str) {}
        fn note(&self, _: &str) {}
        fn finish(&self) {}
    }

    /// A built output: an asset, two pages and the toggle, with its manifest.
    fn build(dir: &Path, page: &str) {
        let files = [
            ("assets/style.0123456789abcdef.css", "body{}"),
            ("index.html", "<p>home</p>"),
            ("items/a/index.html", page),
            (TOGGLE_PATH, "flashsale({});"),
        ];
        let mut entries = Vec::new();
        for (path, body) in files {
            crate::util::fs::write_atomically(&dir.join(path), body.as_bytes()).unwrap();
            entries.push(Entry {
                path: path.to_string(),
                sha256: hex::encode(Sha256::digest(body.as_bytes())),
                size: body.len() as u64,
                class: headers::Class::of(path),
                headers: headers::for_path(path, &[]),
            });
        }
        let manifest = Manifest::new("demo", entries);
        crate::util::fs::write_atomically(
            &dir.join("manifest.json"),
            manifest.to_json().as_bytes(),
        )
        .unwrap();
    }

    fn options() -> Options {
        Options {
            prune: false,
            reset_toggle: false,
            force: false,
            // One request at a time, so "the Nth call" is the Nth in the plan's order.
            concurrency: 1,
            wait: None,
            max_deletes: 10,
            max_invalidation_paths: 20,
            base_path: "/".into(),
        }
    }

    async fn publish_to(dir: &Path, store: &MemoryStore) -> Result<Outcome, Error> {
        publish(dir, store, None::<&NoCdn>, &options(), &Silent).await
    }

    #[tokio::test]
    async fn publishes_everything_then_nothing() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path(), "<p>a</p>");
        let store = MemoryStore::default();
        let first = publish_to(dir.path(), &store).await.unwrap();
        assert_eq!(first.uploaded.len(), 4);
        assert_eq!(first.toggle, ToggleAction::Uploaded);
        assert_eq!(
            store.headers("items/a/index.html").unwrap()["Cache-Control"],
            headers::PAGE
        );
        assert!(store.keys().contains(&STATE_KEY.to_string()));
        let again = publish_to(dir.path(), &store).await.unwrap();
        assert!(again.uploaded.is_empty(), "{:?}", again.uploaded);
        assert_eq!(again.toggle, ToggleAction::Kept);
        assert_eq!(again.requests.total, 2, "a listing and the state object");
    }

    #[tokio::test]
    async fn a_failure_part_way_leaves_no_page_before_its_assets_and_a_rerun_converges() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path(), "<p>a</p>");
        // Call 1 lists, 2 puts the asset, 3 the first page: it fails there.
        let store = MemoryStore::failing_from(3);
        let err = publish_to(dir.path(), &store).await.unwrap_err();
        assert!(matches!(err, Error::Partial(_)), "{err}");
        assert!(err.to_string().contains("run it again"), "{err}");
        assert_eq!(store.keys(), ["assets/style.0123456789abcdef.css"]);
        assert_eq!(store.calls(), 3, "nothing after the failed call");

        // The store recovers; the next run uploads what is missing, and only that.
        store.fail_from(0);
        let rerun = publish_to(dir.path(), &store).await.unwrap();
        assert_eq!(
            rerun.uploaded,
            ["index.html", "items/a/index.html", TOGGLE_PATH],
            "the asset is found by its metadata and not sent again"
        );
        let mut keys = store.keys();
        keys.sort();
        assert_eq!(keys.len(), 5, "{keys:?}");

        // A later edit fails at the state object: the page is up, and the
        // next run, not vouched for by any state, checks and converges.
        build(dir.path(), "<p>a, edited</p>");
        store.fail_from(store.calls() + 4);
        let err = publish_to(dir.path(), &store).await.unwrap_err();
        assert!(matches!(err, Error::Partial(_)), "{err}");
        assert_eq!(
            store.bytes("items/a/index.html").unwrap(),
            b"<p>a, edited</p>"
        );
        store.fail_from(0);
        let last = publish_to(dir.path(), &store).await.unwrap();
        assert!(last.uploaded.is_empty(), "{:?}", last.uploaded);
    }
}
