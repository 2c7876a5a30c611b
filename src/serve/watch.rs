//! Watching the sale's sources: editors' bursts are gathered, our own output
//! and editors' temporary files ignored, and each rebuild does only what the
//! edit affects (item files alone: only their pages).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use super::{load_config, served, Error, Event, Shared};
use crate::site::{content, Site};
use crate::util::sync::{lock, write};

/// Watches the sale's sources on a thread of its own and rebuilds on change.
pub(super) fn start(site: Site, config_path: PathBuf, shared: Arc<Shared>) -> Result<(), Error> {
    let (tx, rx) = std::sync::mpsc::channel::<notify::Result<notify::Event>>();
    let mut sources = Sources {
        watcher: notify::recommended_watcher(tx)?,
        watched: Vec::new(),
    };
    sources
        .watcher
        .watch(&site.config.root, RecursiveMode::NonRecursive)?;
    sources.add_new(&site.config)?;
    let mut site = site;
    std::thread::spawn(move || {
        while let Ok(first) = rx.recv() {
            let mut paths = event_paths(first);
            // Editors write in bursts (temp file, rename, chmod): wait for a quiet moment.
            while let Ok(more) = rx.recv_timeout(Duration::from_millis(8)) {
                paths.extend(event_paths(more));
            }
            // The watcher reports absolute paths; the site knows them as configured.
            let mut paths: Vec<PathBuf> = paths
                .iter()
                .filter_map(|p| site.config.local_path(p))
                .collect();
            let output = site.config.output_dir.clone();
            paths.retain(|p| {
                relevant(
                    p,
                    &output,
                    &sources.watched,
                    &config_path,
                    site.config.items_dir.as_deref(),
                )
            });
            // A source directory that did not exist before (a first template, say).
            let created = sources.add_new(&site.config).unwrap_or_default();
            paths.extend(created);
            paths.sort();
            paths.dedup();
            if paths.is_empty() {
                continue;
            }
            rebuild(&mut site, &config_path, &paths, &shared);
            let _ = sources.add_new(&site.config);
        }
    });
    Ok(())
}

/// The watcher and the source directories it watches recursively.
struct Sources {
    watcher: notify::RecommendedWatcher,
    watched: Vec<PathBuf>,
}

impl Sources {
    /// Starts watching source directories that exist now and were not watched;
    /// returns them.
    fn add_new(&mut self, config: &crate::config::Config) -> Result<Vec<PathBuf>, notify::Error> {
        let root = &config.root;
        let mut dirs = vec![
            root.join("templates"),
            root.join("themes"),
            root.join("static"),
        ];
        dirs.extend(config.items_dir.clone());
        let mut added = Vec::new();
        for dir in dirs {
            let dir = config
                .local_path(&std::path::absolute(&dir).unwrap_or(dir.clone()))
                .unwrap_or(dir);
            if dir.is_dir() && !self.watched.contains(&dir) {
                self.watcher.watch(&dir, RecursiveMode::Recursive)?;
                self.watched.push(dir.clone());
                added.push(dir);
            }
        }
        Ok(added)
    }
}

fn event_paths(e: notify::Result<notify::Event>) -> Vec<PathBuf> {
    match e {
        Ok(e) if !matches!(e.kind, notify::EventKind::Access(_)) => e.paths,
        _ => Vec::new(),
    }
}

/// The configuration file and files in the source directories count; our own
/// output, editors' swap and backup files, and non-item files among the items
/// (`sed -i` temporaries) do not.
fn relevant(
    path: &Path,
    output: &Path,
    dirs: &[PathBuf],
    config: &Path,
    items: Option<&Path>,
) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let source = path.file_name() == config.file_name() || dirs.iter().any(|d| path.starts_with(d));
    let stray = items.is_some_and(|i| path.starts_with(i) && !content::is_item_file(path));
    source
        && !stray
        && !(path.starts_with(output)
            || name.starts_with('.')
            || name.ends_with('~')
            || name.ends_with(".swp")
            || name.ends_with(".tmp"))
}

fn rebuild(site: &mut Site, config_path: &Path, paths: &[PathBuf], shared: &Shared) {
    let only_items = site.config.items_dir.as_ref().is_some_and(|dir| {
        paths
            .iter()
            .all(|p| p.starts_with(dir) && content::is_item_file(p))
    });
    let result = if only_items {
        site.update_items(paths).map(|r| (r, false))
    } else {
        let sale = shared
            .sale
            .as_ref()
            .map(|(_, o, origin)| (o.clone(), origin.clone()));
        load_config(config_path, sale.as_ref())
            .and_then(Site::from_config)
            .and_then(|mut fresh| {
                let r = fresh.build()?;
                *site = fresh;
                Ok((r, true))
            })
    };
    match result {
        // Nothing to reload, unless a page shows the last build's error.
        Ok((report, _))
            if report.changes.written.is_empty()
                && report.changes.removed.is_empty()
                && lock(&shared.failed).is_none() => {}
        Ok((report, full)) => {
            *write(&shared.served) = Arc::new(served(site));
            let base = &site.config.base_path;
            let changed: Vec<String> =
                if report.changes.written.len() + report.changes.removed.len() > 200 {
                    vec!["*".to_string()]
                } else {
                    report
                        .changes
                        .written
                        .iter()
                        .chain(&report.changes.removed)
                        .map(|p| url_of(base, p))
                        .collect()
                };
            *lock(&shared.failed) = None;
            let _ = shared
                .live
                .send(serde_json::json!({ "changed": changed }).to_string());
            (shared.notify)(Event::Rebuilt {
                report,
                full,
                because: paths.to_vec(),
            });
        }
        Err(e) => {
            let text = e.to_string();
            *lock(&shared.failed) = Some(text.clone());
            let _ = shared
                .live
                .send(serde_json::json!({ "error": text }).to_string());
            (shared.notify)(Event::Failed(text));
        }
    }
}

/// The URL path a browser shows for an output file.
fn url_of(base_path: &str, rel: &str) -> String {
    match rel.strip_suffix("index.html") {
        Some(dir) => format!("{base_path}{dir}"),
        None => format!("{base_path}{rel}"),
    }
}
