//! Which CDN paths a publish invalidates: every URL a changed key is
//! reachable at, collapsed so one request stays within CloudFront's limits
//! and cost.

use std::collections::BTreeMap;

/// The URL paths a key is reachable at: `index.html` also as its directory.
pub(super) fn paths_of(base_path: &str, key: &str) -> Vec<String> {
    let mut out = vec![format!("{base_path}{key}")];
    if let Some(dir) = key.strip_suffix("index.html") {
        out.push(format!("{base_path}{dir}"));
    }
    out
}

/// At most `max` paths: while there are more, the deepest directory covering
/// several of them becomes one wildcard (`/items/*`); when no two share a
/// directory, everything becomes `<base_path>*`. Sorted. Callers never pass
/// fingerprinted assets (they never change), but that last resort covers
/// them too.
pub(super) fn collapse(mut paths: Vec<String>, max: usize, base_path: &str) -> Vec<String> {
    paths.sort();
    paths.dedup();
    while paths.len() > max.max(1) {
        // Count, for every directory prefix, the paths below it.
        let mut under: BTreeMap<String, usize> = BTreeMap::new();
        for p in &paths {
            let stem = p.trim_end_matches('*');
            let mut end = 0;
            while let Some(i) = stem[end..].find('/') {
                end += i + 1;
                if end < stem.len() && stem[..end].starts_with(base_path) {
                    *under.entry(stem[..end].to_string()).or_default() += 1;
                }
            }
        }
        // The deepest directory first (it invalidates the least that did not
        // change), the one covering most paths among equals.
        let best = under
            .into_iter()
            .filter(|(_, n)| *n >= 2)
            .max_by_key(|(dir, n)| (dir.matches('/').count(), *n));

        match best {
            Some((dir, _)) => {
                paths.retain(|p| !p.starts_with(&dir));
                paths.push(format!("{dir}*"));
                paths.sort();
            }
            None => return vec![format!("{base_path}*")],
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_paths_stay_exact() {
        let p = vec![
            "/items/a/".to_string(),
            "/items/a/index.html".into(),
            "/".into(),
            "/index.html".into(),
        ];
        assert_eq!(
            collapse(p.clone(), 20, "/"),
            ["/", "/index.html", "/items/a/", "/items/a/index.html"]
        );
    }

    #[test]
    fn many_paths_under_one_directory_become_a_wildcard() {
        let mut p: Vec<String> = (0..100)
            .flat_map(|i| [format!("/items/{i}/"), format!("/items/{i}/index.html")])
            .collect();
        p.push("/index.html".into());
        p.push("/".into());
        let c = collapse(p, 20, "/");
        assert_eq!(c, ["/", "/index.html", "/items/*"]);
    }

    #[test]
    fn collapses_within_the_base_path() {
        let p: Vec<String> = (0..30)
            .map(|i| format!("/shop/page/{i}/index.html"))
            .collect();
        assert_eq!(collapse(p, 10, "/shop/"), ["/shop/page/*"]);
        let p: Vec<String> = (0..30).map(|i| format!("/shop/p{i}.html")).collect();
        assert_eq!(collapse(p, 10, "/shop/"), ["/shop/*"]);
    }
}
