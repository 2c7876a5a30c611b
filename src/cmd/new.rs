//! `flashsale new`.

use std::path::PathBuf;

use clap::Args;

use super::prelude::Global;

/// Create a new sale in DIR: site.toml, one item, the theme's templates to edit.
#[derive(Args, Debug)]
pub(super) struct NewArgs {
    /// Directory to create (must not exist, or be empty).
    dir: PathBuf,
    /// The sale's name as used in order URLs (default: derived from DIR).
    #[arg(long)]
    name: Option<String>,
}

pub(super) fn run(g: &Global, a: NewArgs) -> anyhow::Result<()> {
    let name = a.name.unwrap_or_else(|| name_from(&a.dir));
    let files = crate::site::scaffold::create(&a.dir, &name)?;
    for f in &files {
        g.detail(format!("  created {}", a.dir.join(f).display()));
    }
    g.say(format!(
        "Created sale `{name}` in {} ({} files).\nNext: cd {} && flashsale serve",
        a.dir.display(),
        files.len(),
        a.dir.display()
    ));
    Ok(())
}

/// A valid sale name from a directory name: lowercase, other characters as '-'.
fn name_from(dir: &std::path::Path) -> String {
    let raw = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut name: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name = name.trim_matches('-').chars().take(40).collect();
    if name.is_empty() {
        "my-sale".into()
    } else {
        name
    }
}
