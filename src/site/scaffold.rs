//! `new DIR`: a sale to start from, with one item and the theme's templates
//! copied in so they can be edited (delete one to fall back to the theme's).

use std::path::{Path, PathBuf};

use chrono::{DurationRound, Local, TimeDelta};

use crate::site::theme::Theme;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("{}: already exists and is not empty; choose a new directory", .0.display())]
    NotEmpty(PathBuf),
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

const IMAGE: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 200"><rect width="200" height="200" fill="#f3efe6"/><path d="M60 70h70v70a20 20 0 0 1-20 20H80a20 20 0 0 1-20-20z" fill="#2f6f8f"/><path d="M130 85h12a18 18 0 0 1 0 36h-12" fill="none" stroke="#2f6f8f" stroke-width="10"/></svg>
"##;

/// Creates the sale in `dir` (which must be missing or empty); returns the files written.
pub(crate) fn create(dir: &Path, name: &str) -> Result<Vec<PathBuf>, Error> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Error::NotEmpty(dir.to_path_buf()));
    }
    let start = (Local::now().fixed_offset() + TimeDelta::days(7))
        .duration_trunc(TimeDelta::hours(1))
        .expect("an hour divides a day");
    let end = start + TimeDelta::minutes(30);
    let site = format!(
        r#"# A flash sale. Every key is explained in flashsale's README, section `site.toml`.
name = "{name}"            # appears in order URLs: lowercase letters, digits, '-'
title = "My flash sale"
base_url = "https://sale.example.com/"
start = {start}   # always with the UTC offset
end = {end}
currency = "EUR"
items_dir = "items"        # one Markdown file per item

[gate]
url = "https://gate.example.com"   # where the order gates answer
# gates = 10                       # each gate admits stock / gates of every item
# identity_header = "X-User-Id"    # set by a trusted proxy (or identity_cookie, see README)
# trusted_proxies = ["10.0.0.0/8"] # whose identity header is believed (default: loopback only)
# forward = "https://orders.example.com/flash"   # winners go to the order system

# Where `flashsale publish` puts the sale:
# [publish]
# bucket = "my-sale-bucket"
# region = "eu-central-1"
# distribution_id = "E2QWRUHAPOMQZL"   # CloudFront, optional


# Per-file headers override the defaults (immutable assets, short HTML, no-cache sale.js):
# [[headers]]
# for = "*.html"
# values = {{ "Cache-Control" = "public, max-age=120" }}
"#,
        start = start.to_rfc3339(),
        end = end.to_rfc3339(),
    );
    let item = r#"+++
sku = "MUG-01"
title = "Enamel camping mug"
price = 4.90
original_price = 19.90
stock = 100
image = "images/mug.svg"
+++
A light **enamel mug** for coffee outdoors.

- 350 ml
- dishwasher safe
"#;
    let mut files: Vec<(PathBuf, Vec<u8>)> = vec![
        ("site.toml".into(), site.into_bytes()),
        ("items/mug-01.md".into(), item.as_bytes().to_vec()),
        ("static/images/mug.svg".into(), IMAGE.as_bytes().to_vec()),
        (
            ".gitignore".into(),
            b"/public/\n/.flashsale-cache/\n# Gate and cookie keys: never in version control.\n*.key\n".to_vec(),
        ),
    ];
    for (path, bytes) in Theme::builtin_files() {
        // The templates to edit in templates/, the message catalogues to
        // translate or reword in i18n/ (both override the built-in theme).
        if path.starts_with("i18n/") {
            files.push((PathBuf::from(path), bytes.to_vec()));
        } else if !path.starts_with("static/") {
            files.push((Path::new("templates").join(path), bytes.to_vec()));
        }
    }
    let mut written = Vec::new();
    for (rel, bytes) in files {
        let path = dir.join(&rel);
        let io = |error| Error::Io {
            path: path.clone(),
            error,
        };
        std::fs::create_dir_all(path.parent().expect("joined path has a parent")).map_err(io)?;
        crate::util::fs::write_atomically(&path, &bytes).map_err(io)?;
        written.push(rel);
    }
    Ok(written)
}
