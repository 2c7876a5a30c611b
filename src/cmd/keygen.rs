//! `flashsale keygen`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;

use crate::sale::{GateKey, KEY_ENV};

use super::prelude::Global;

/// Write a new random 256-bit gate key to a file readable only by you (0600).
///
/// `open` mints order URLs with it and every gate verifies them with it: give
/// the same file to both (--key-file) or put its contents in $FLASHSALE_GATE_KEY.
/// Never commit it, never put it in site.toml or public/. Refuses to overwrite.
#[derive(Args, Debug)]
pub(super) struct KeygenArgs {
    /// Where to write the key.
    #[arg(default_value = "gate.key")]
    path: PathBuf,
}

pub(super) fn run(g: &Global, a: KeygenArgs) -> anyhow::Result<()> {
    // A key among the sale's sources or output would be published.
    if let Ok(config) = g.sale() {
        let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        let parent = a
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = canon(parent);
        let mut published = vec![
            (
                config.output_dir.clone(),
                "the output directory, which is published",
            ),
            (
                config.in_root("static"),
                "static/, whose files are published",
            ),
            (config.in_root("templates"), "templates/, part of the build"),
            (
                config.in_root("themes"),
                "themes/, whose files are published",
            ),
        ];
        if let Some(items) = &config.items_dir {
            published.push((items.clone(), "the items directory, part of the build"));
        }
        for (place, what) in published {
            if dir.starts_with(canon(&place)) {
                bail!(
                    "{}: inside {what} ({}); write the key elsewhere, e.g. next to site.toml (and keep *.key out of version control)",
                    a.path.display(),
                    place.display()
                );
            }
        }
    }
    let key = GateKey::generate();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&a.path)
        .with_context(|| {
            format!(
                "cannot create {} (an existing key is never overwritten)",
                a.path.display()
            )
        })?;
    file.write_all(key.to_file_text().as_bytes())
        .and_then(|_| file.sync_all())
        .with_context(|| format!("cannot write {}", a.path.display()))?;
    g.say(format!(
        "Wrote a new gate key to {} (mode 0600).\nUse it with `flashsale open --key-file {0}` and on every gate (--key-file, or its contents in ${KEY_ENV}).\nKeep it out of version control and out of public/.",
        a.path.display()
    ));
    Ok(())
}
