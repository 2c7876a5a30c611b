//! The plan: what a publish will upload, update, delete and invalidate,
//! computed from the local manifest and what the remote holds. A value that can
//! be printed, tested and executed; computing it writes nothing.
//!
//! "Changed" is decided by content hash and headers hash, never by mtime or
//! size. The remote's hashes come from a state object kept in the bucket
//! (one GET instead of a HEAD per object); an object whose listed ETag is not
//! the one the state recorded was changed outside the last completed publish,
//! and only such objects are asked for their metadata (HEAD).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::invalidation;
use crate::config::headers::Class;
use crate::site::manifest::{Entry, Manifest};
use crate::store::{headers_hash, Known};

/// Where the state object lives, relative to the prefix. Never an output path
/// (outputs never start with a dot).
pub(super) const STATE_KEY: &str = ".flashsale/state.json";
/// Keys under this are flashsale's own, never deleted as stale.
pub(super) const OWN_PREFIX: &str = ".flashsale/";

/// The state object: what the store holds after the last completed publish.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Snapshot {
    pub(crate) version: u32,
    /// A fresh random id per completed publish.
    pub(crate) generation: String,
    pub(crate) objects: BTreeMap<String, Known>,
}

/// What a manifest entry will be known as once written.
pub(super) fn known(entry: &Entry) -> Known {
    Known {
        sha256: entry.sha256.clone(),
        headers: headers_hash(&entry.headers),
        etag: None,
    }
}

/// What the remote holds, as far as a publish needs to know.
#[derive(Debug, Clone, Default)]
pub(super) struct View {
    /// Every key under the prefix (relative to it) with its listed ETag.
    pub(crate) listed: BTreeMap<String, Option<String>>,
    pub(crate) state: Option<Snapshot>,
    /// Metadata read with HEAD for keys the state does not vouch for
    /// (`None`: the object carries no flashsale metadata).
    pub(crate) probed: BTreeMap<String, Option<Known>>,
}

impl View {
    /// Keys that must be probed before planning: listed, wanted locally (or
    /// remembered by the state), and not vouched for by the state.
    pub(super) fn needs_probe(&self, manifest: &Manifest) -> Vec<String> {
        manifest
            .files
            .iter()
            .filter(|e| e.class != Class::Toggle)
            .map(|e| &e.path)
            .filter(|k| self.listed.contains_key(*k) && self.vouched(k).is_none())
            .cloned()
            .collect()
    }

    /// The state's record, if the object is still the one it recorded.
    fn vouched(&self, key: &str) -> Option<&Known> {
        let etag = self.listed.get(key)?;
        let known = self.state.as_ref()?.objects.get(key)?;
        (known.etag.is_some() && &known.etag == etag).then_some(known)
    }

    /// What is known of a listed object: the state's record, else its metadata.
    fn known(&self, key: &str) -> (Option<&Known>, bool) {
        match self.vouched(key) {
            Some(k) => (Some(k), true),
            None => (self.probed.get(key).and_then(Option::as_ref), false),
        }
    }
}

/// Upload new bytes, or only replace the headers (a server-side copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Change {
    Upload,
    Headers,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Step {
    pub(crate) key: String,
    pub(crate) change: Change,
    #[serde(skip)]
    pub(crate) entry: Entry,
}

/// Everything a publish will do, in the order it will do it.
#[derive(Debug, Clone, Default, Serialize)]
pub(super) struct Plan {
    /// Fingerprinted assets first, then pages, then the toggle: no page is ever
    /// live before what it references.
    pub(crate) steps: Vec<Step>,
    /// Remote objects no longer built, deleted (with prune).
    pub(crate) deletions: Vec<String>,
    /// Remote objects no longer built, kept (without prune).
    pub(crate) stale: Vec<String>,
    pub(crate) unchanged: usize,
    /// The bucket already has a toggle: `open`/`close` own it now.
    pub(crate) toggle_live: bool,
    /// CDN paths to invalidate, already collapsed.
    pub(crate) invalidate: Vec<String>,
    /// The state generation this plan was made against.
    #[serde(skip)]
    pub(crate) from_generation: String,
}

pub(super) struct Options<'a> {
    pub(crate) prune: bool,
    /// Replace the bucket's toggle with the build's pending one (a new sale
    /// in a bucket whose last sale ended). Never the default.
    pub(crate) reset_toggle: bool,
    /// URL path the output is served under (`site.base_path`), for CDN paths.
    pub(crate) base_path: &'a str,
    pub(crate) max_invalidation_paths: usize,
}

impl Plan {
    pub(super) fn compute(manifest: &Manifest, view: &View, opts: &Options) -> Plan {
        let mut plan = Plan {
            from_generation: view
                .state
                .as_ref()
                .map_or(String::new(), |s| s.generation.clone()),
            ..Plan::default()
        };
        let mut touched: BTreeSet<String> = BTreeSet::new();
        for e in &manifest.files {
            let key = &e.path;
            if e.class == Class::Toggle {
                if view.listed.contains_key(key) && !opts.reset_toggle {
                    plan.toggle_live = true;
                } else {
                    plan.steps.push(Step {
                        key: key.clone(),
                        change: Change::Upload,
                        entry: e.clone(),
                    });
                    touched.insert(key.clone());
                }
                continue;
            }
            let hash = headers_hash(&e.headers);
            let change = if !view.listed.contains_key(key) {
                Some(Change::Upload)
            } else {
                match view.known(key) {
                    (Some(k), _) if k.sha256 != e.sha256 => Some(Change::Upload),
                    (Some(k), _) if k.headers != hash => Some(Change::Headers),
                    (Some(_), true) => None,
                    // Unchanged, but changed since the last completed publish
                    // (an interrupted one): edge caches may hold the old copy.
                    (Some(_), false) => {
                        touched.insert(key.clone());
                        None
                    }
                    (None, _) => Some(Change::Upload),
                }
            };
            match change {
                Some(change) => {
                    plan.steps.push(Step {
                        key: key.clone(),
                        change,
                        entry: e.clone(),
                    });
                    touched.insert(key.clone());
                }
                None => plan.unchanged += 1,
            }
        }
        plan.steps
            .sort_by_key(|s| (phase(s.entry.class), s.key.clone()));

        for key in view.listed.keys() {
            // The published draw is written after the build, by `draw publish`.
            let drawn = key == crate::config::headers::DRAW_PATH;
            if manifest.get(key).is_none() && !key.starts_with(OWN_PREFIX) && !drawn {
                if opts.prune {
                    plan.deletions.push(key.clone());
                    touched.insert(key.clone());
                } else {
                    plan.stale.push(key.clone());
                }
            }
        }
        // Recorded by the last completed publish but gone: deleted by an
        // interrupted one, so still to be invalidated.
        if let Some(state) = &view.state {
            for key in state.objects.keys() {
                if !view.listed.contains_key(key) && manifest.get(key).is_none() {
                    touched.insert(key.clone());
                }
            }
        }
        let paths: Vec<String> = touched
            .iter()
            .filter(|k| matches!(Class::of(k), Class::Page | Class::Other | Class::Toggle))
            .flat_map(|k| invalidation::paths_of(opts.base_path, k))
            .collect();
        plan.invalidate =
            invalidation::collapse(paths, opts.max_invalidation_paths, opts.base_path);
        plan
    }

    #[cfg(test)]
    fn uploads(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.change == Change::Upload)
            .count()
    }

    #[cfg(test)]
    fn header_updates(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.change == Change::Headers)
            .count()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.deletions.is_empty() && self.invalidate.is_empty()
    }
}

/// Upload order: assets, then pages and other files, then the toggle.
pub(super) fn phase(class: Class) -> u8 {
    match class {
        Class::Asset => 0,
        Class::Page | Class::Other => 1,
        Class::Toggle => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn entry(path: &str, body: &str) -> Entry {
        let mut headers = crate::config::headers::for_path(path, &[]);
        headers.insert("X".into(), "1".into());
        headers.remove("X");
        Entry {
            path: path.into(),
            sha256: hex::encode(Sha256::digest(body.as_bytes())),
            size: body.len() as u64,
            class: Class::of(path),
            headers,
        }
    }

    fn manifest(files: &[(&str, &str)]) -> Manifest {
        Manifest::new("t", files.iter().map(|(p, b)| entry(p, b)).collect())
    }

    /// The remote exactly as a completed publish of `m` left it.
    fn published(m: &Manifest) -> View {
        let mut v = View::default();
        let mut state = Snapshot {
            version: 1,
            generation: "g1".into(),
            objects: BTreeMap::new(),
        };
        for e in &m.files {
            let etag = Some(format!("\"{}\"", &e.sha256[..8]));
            v.listed.insert(e.path.clone(), etag.clone());
            state.objects.insert(
                e.path.clone(),
                Known {
                    sha256: e.sha256.clone(),
                    headers: headers_hash(&e.headers),
                    etag,
                },
            );
        }
        v.state = Some(state);
        v
    }

    const OPTS: Options = Options {
        prune: false,
        reset_toggle: false,
        base_path: "/",
        max_invalidation_paths: 20,
    };

    const FILES: &[(&str, &str)] = &[
        ("assets/style.0123456789abcdef.css", "css"),
        ("index.html", "home"),
        ("items/a/index.html", "a"),
        ("items/b/index.html", "b"),
        ("sale.js", "pending"),
    ];

    #[test]
    fn first_publish_uploads_everything_in_safe_order() {
        let m = manifest(FILES);
        let plan = Plan::compute(&m, &View::default(), &OPTS);
        let keys: Vec<&str> = plan.steps.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "assets/style.0123456789abcdef.css",
                "index.html",
                "items/a/index.html",
                "items/b/index.html",
                "sale.js"
            ]
        );
        assert!(plan.steps.iter().all(|s| s.change == Change::Upload));
        assert!(
            !plan.invalidate.iter().any(|p| p.starts_with("/assets/")),
            "{:?}",
            plan.invalidate
        );
    }

    #[test]
    fn nothing_changed_means_nothing_to_do() {
        let m = manifest(FILES);
        let plan = Plan::compute(&m, &published(&m), &OPTS);
        assert!(plan.is_empty(), "{plan:?}");
        assert_eq!(plan.unchanged, 4);
        assert!(plan.toggle_live);
    }

    #[test]
    fn one_changed_page_is_uploaded_and_invalidated_with_its_directory() {
        let before = manifest(FILES);
        let view = published(&before);
        let mut files = FILES.to_vec();
        files[2] = ("items/a/index.html", "a, edited");
        let plan = Plan::compute(&manifest(&files), &view, &OPTS);
        assert_eq!(plan.steps.len(), 1);
        assert_eq!(plan.steps[0].key, "items/a/index.html");
        assert_eq!(plan.invalidate, ["/items/a/", "/items/a/index.html"]);
    }

    #[test]
    fn header_change_is_a_copy_not_an_upload() {
        let before = manifest(FILES);
        let view = published(&before);
        let mut after = before.clone();
        for e in &mut after.files {
            if e.class == Class::Page {
                e.headers
                    .insert("Cache-Control".into(), "public, max-age=5".into());
            }
        }
        let plan = Plan::compute(&after, &view, &OPTS);
        assert_eq!(plan.uploads(), 0);
        assert_eq!(plan.header_updates(), 3);
    }

    #[test]
    fn stale_objects_are_kept_unless_pruned() {
        let view = published(&manifest(FILES));
        let fewer = manifest(&[FILES[0], FILES[1], FILES[2], FILES[4]]);
        let plan = Plan::compute(&fewer, &view, &OPTS);
        assert_eq!(plan.stale, ["items/b/index.html"]);
        assert!(plan.deletions.is_empty() && plan.invalidate.is_empty());
        let pruned = |view: &View| {
            Plan::compute(
                &fewer,
                view,
                &Options {
                    prune: true,
                    ..OPTS
                },
            )
        };
        let plan = pruned(&view);
        assert_eq!(plan.deletions, ["items/b/index.html"]);
        assert_eq!(plan.invalidate, ["/items/b/", "/items/b/index.html"]);
        // A fair start's published draw is not the build's: never pruned.
        let mut view = view;
        view.listed.insert("draw.json".into(), Some("\"d\"".into()));
        assert_eq!(pruned(&view).deletions, ["items/b/index.html"]);
    }

    #[test]
    fn objects_changed_outside_a_completed_publish_are_probed_and_invalidated() {
        let m = manifest(FILES);
        let mut view = published(&m);
        // An interrupted publish re-uploaded items/a: new ETag, same content.
        view.listed
            .insert("items/a/index.html".into(), Some("\"new\"".into()));
        assert_eq!(view.needs_probe(&m), ["items/a/index.html"]);
        let e = m.get("items/a/index.html").unwrap();
        view.probed.insert(
            e.path.clone(),
            Some(Known {
                sha256: e.sha256.clone(),
                headers: headers_hash(&e.headers),
                etag: None,
            }),
        );
        let plan = Plan::compute(&m, &view, &OPTS);
        assert_eq!(plan.uploads(), 0);
        assert_eq!(plan.invalidate, ["/items/a/", "/items/a/index.html"]);
    }

    #[test]
    fn without_state_or_metadata_everything_listed_is_uploaded_again() {
        let m = manifest(FILES);
        let mut view = published(&m);
        view.state = None;
        let plan = Plan::compute(&m, &view, &OPTS);
        assert_eq!(plan.uploads(), 4);
        assert!(plan.toggle_live, "a live toggle is never overwritten");
    }
}
