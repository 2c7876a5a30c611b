//! The CDN side of a publish: which paths to invalidate, collapsed so one
//! request stays within CloudFront's limits and cost, and the `Cdn` trait.

use std::collections::BTreeMap;
use std::future::Future;

use super::remote::RemoteError;

/// A CDN that can drop cached copies of paths.
pub trait Cdn {
    /// Starts an invalidation; the same `caller_reference` never creates a
    /// second one. Returns its id.
    fn invalidate(
        &self,
        paths: &[String],
        caller_reference: &str,
    ) -> impl Future<Output = Result<String, RemoteError>>;
    /// `true` once the invalidation has completed at every edge.
    fn completed(&self, id: &str) -> impl Future<Output = Result<bool, RemoteError>>;
    /// One cheap request: checks the distribution exists and opens a connection.
    fn warm(&self) -> impl Future<Output = Result<(), RemoteError>>;

    fn describe(&self) -> String;
}

/// No CDN in front: nothing to invalidate (a preview, a bucket served directly).
pub struct NoCdn;

impl Cdn for NoCdn {
    async fn invalidate(&self, _: &[String], _: &str) -> Result<String, RemoteError> {
        Ok(String::new())
    }

    async fn completed(&self, _: &str) -> Result<bool, RemoteError> {
        Ok(true)
    }

    async fn warm(&self) -> Result<(), RemoteError> {
        Ok(())
    }

    fn describe(&self) -> String {
        "no CDN".to_string()
    }
}

/// At most `max` paths: while there are more, the directory covering the most
/// of them becomes one wildcard (`/items/*`). Never a path under `/assets/`
/// (fingerprinted files never change). Sorted.
pub fn collapse(mut paths: Vec<String>, max: usize, base_path: &str) -> Vec<String> {
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
