//! `serve`: the local preview. Serves the output exactly as the manifest says
//! (same headers as production), rebuilds what an edit affects, and reloads
//! the browser pages that changed.
//!
//! The parts: `http` answers requests (only paths listed in the manifest,
//! after percent-decoding and refusing `..`, and only from inside the output
//! directory, symlinks included), `live` pushes reloads to open pages,
//! `watch` rebuilds on edits, and `preview` runs the whole sale here too
//! (`--opens-in`). This file starts them and holds what they share.

mod http;
mod live;
mod preview;
mod watch;

pub(crate) use preview::SaleOptions;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::broadcast;

use crate::config::Config;
use crate::site::manifest::Manifest;
use crate::site::{self, Report, Site};
use preview::PreviewSale;

/// What `serve` tells its caller about.
#[derive(Debug)]
pub(crate) enum Event {
    Listening(SocketAddr),
    Rebuilt {
        report: Report,
        full: bool,
        /// The edited files (empty for the first build).
        because: Vec<PathBuf>,
    },
    Failed(String),
    /// The preview sale's toggle switched (`open`, `ended`) and why.
    Switched {
        state: &'static str,
        why: String,
    },
    /// The preview sale is scheduled.
    SaleScheduled {
        start: String,
        end: String,
        journal: PathBuf,
        /// Removed at exit (no --journal was given).
        temporary: bool,
    },
    Request {
        method: String,
        path: String,
        status: u16,
    },
}

pub(crate) struct Options {
    pub(crate) config: PathBuf,
    pub(crate) addr: SocketAddr,
    pub(crate) watch: bool,
    /// Run the whole sale in the preview.
    pub(crate) sale: Option<SaleOptions>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Build(#[from] site::Error),
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("cannot watch the sale's files")]
    Watch(#[from] notify::Error),
    #[error(transparent)]
    Gate(#[from] crate::gate::Error),
}

type Notify = Arc<dyn Fn(Event) + Send + Sync>;

/// What the HTTP side reads; replaced as a whole after each rebuild.
struct Served {
    root: PathBuf,
    base_path: String,
    files: Manifest,
}

struct Shared {
    served: RwLock<Arc<Served>>,
    /// The preview sale, and how it changes the configuration on every load.
    sale: Option<(Arc<PreviewSale>, SaleOptions, String)>,

    live: broadcast::Sender<String>,
    /// The last rebuild's error, until a build succeeds: open pages, and
    /// pages opened meanwhile, show it over the previous build.
    failed: std::sync::Mutex<Option<String>>,
    notify: Notify,
}

/// Loads the configuration, as changed by a preview sale.
fn load_config(path: &Path, sale: Option<&(SaleOptions, String)>) -> Result<Config, site::Error> {
    let mut config = Config::load(path)?;
    if let Some((opts, origin)) = sale {
        opts.apply(&mut config, origin);
    }
    Ok(config)
}

/// Builds, then serves until the process is stopped.
pub(crate) async fn run(
    opts: Options,
    notify: impl Fn(Event) + Send + Sync + 'static,
) -> Result<(), Error> {
    let notify: Notify = Arc::new(notify);
    let listener = TcpListener::bind(opts.addr)
        .await
        .map_err(|error| Error::Listen {
            addr: opts.addr,
            error,
        })?;
    let addr = listener.local_addr().map_err(|error| Error::Listen {
        addr: opts.addr,
        error,
    })?;
    let sale_cfg = opts.sale.clone().map(|s| (s, format!("http://{addr}")));
    let config = load_config(&opts.config, sale_cfg.as_ref())?;
    let mut site = Site::from_config(config)?;
    let report = site.build()?;
    notify(Event::Rebuilt {
        report,
        full: true,
        because: Vec::new(),
    });
    let mut _journal_cleanup = None;
    let sale = match &sale_cfg {
        Some((sale_opts, origin)) => {
            let preview = Arc::new(PreviewSale::start(&site.config, &site.items, sale_opts).await?);
            if preview.temporary() {
                _journal_cleanup = Some(preview::RemoveOnDrop(preview.journal().clone()));
            }
            notify(Event::SaleScheduled {
                start: site.config.start.to_rfc3339(),
                end: site.config.end.to_rfc3339(),
                journal: preview.journal().clone(),
                temporary: preview.temporary(),
            });
            let n = notify.clone();
            tokio::spawn(preview.clone().run(site.config.clone(), move |state, why| {
                n(Event::Switched { state, why })
            }));
            Some((preview, sale_opts.clone(), origin.clone()))
        }
        None => None,
    };
    let (live, _) = broadcast::channel(64);
    let shared = Arc::new(Shared {
        served: RwLock::new(Arc::new(served(&site))),
        sale,
        live,
        failed: std::sync::Mutex::new(None),
        notify: notify.clone(),
    });
    if opts.watch {
        watch::start(site, opts.config.clone(), shared.clone())?;
    }
    notify(Event::Listening(addr));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            // Out of file descriptors and the like: wait a moment rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(http::handle(&shared, req, peer).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn served(site: &Site) -> Served {
    let root = site
        .config
        .output_dir
        .canonicalize()
        .unwrap_or_else(|_| site.config.output_dir.clone());
    Served {
        root,
        base_path: site.config.base_path.clone(),
        files: site.manifest.clone(),
    }
}
