//! `flashsale keygen`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

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
    // A key inside the output directory would be published.
    if let Ok(config) = g.sale() {
        let out = config
            .output_dir
            .canonicalize()
            .unwrap_or(config.output_dir.clone());
        let parent = a
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let dir = parent.canonicalize().unwrap_or(parent.to_path_buf());
        if dir.starts_with(&out) {
            bail!(
                "{}: inside the output directory {}, which is published; write the key elsewhere",
                a.path.display(),
                config.output_dir.display()
            );
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
