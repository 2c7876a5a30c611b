//! A real shared cache standing in for a CDN edge: Debian's Varnish in front
//! of an S3-protocol origin (moto), set up the way the README tells operators
//! to set up CloudFront for the toggle: cached for the origin's `s-maxage`,
//! the query string out of the cache key (and not forwarded, as CloudFront's
//! CachingOptimized does), kept at most 1 s whatever the origin says (the
//! README's `flashsale-toggle` cache policy, MaxTTL 1: moto answers Varnish's
//! revalidation with a 304 without Cache-Control, which a cache would
//! otherwise keep for its default TTL), no stale copies served while
//! refreshing, directory URLs resolved to `index.html` (the README's
//! CloudFront Function).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

pub(crate) struct Varnish {
    pub(crate) port: u16,
    dir: tempfile::TempDir,
}

impl Varnish {
    /// A cache in front of `origin` (`http://127.0.0.1:PORT`), whose objects
    /// live under `prefix` (`/bucket`). With `force_ttl`, every object is kept
    /// that long whatever its headers say (a CDN with a long minimum TTL).
    pub(crate) fn start(origin: &str, prefix: &str, force_ttl: Option<u32>) -> Varnish {
        let dir = tempfile::tempdir().unwrap();
        let origin = origin.trim_start_matches("http://");
        let (host, port) = origin.rsplit_once(':').unwrap();
        let ttl = force_ttl.map_or(
            "if (beresp.ttl > 1s) { set beresp.ttl = 1s; }".to_string(),
            |s| format!("set beresp.ttl = {s}s;"),
        );
        let vcl = format!(
            r#"vcl 4.1;
backend origin {{ .host = "{host}"; .port = "{port}"; }}
sub vcl_recv {{
  set req.url = "{prefix}" + regsub(req.url, "\?.*$", "");
  if (req.url ~ "/$") {{ set req.url = req.url + "index.html"; }}
  unset req.http.Cookie;
  return (hash);
}}
sub vcl_hash {{ hash_data(req.url); return (lookup); }}
sub vcl_backend_response {{ set beresp.grace = 0s; {ttl} }}
"#
        );
        let vcl_path = dir.path().join("edge.vcl");
        std::fs::write(&vcl_path, vcl).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Debian installs it in /usr/sbin, which is not on every PATH.
        let varnishd = ["/usr/sbin/varnishd", "/usr/local/sbin/varnishd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("varnishd");
        let status = Command::new(varnishd)
            .arg("-a")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-f")
            .arg(&vcl_path)
            .arg("-n")
            .arg(dir.path().join("work"))
            .args(["-s", "malloc,32m", "-P"])
            .arg(dir.path().join("pid"))
            .status()
            .expect("varnishd (Debian package varnish; scripts/test installs it)");
        assert!(status.success(), "varnishd did not start");
        let v = Varnish { port, dir };
        super::wait_for("varnish to listen", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        v
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Requests the cache has sent to the origin so far.
    pub(crate) fn origin_requests(&self) -> u64 {
        self.counter("MAIN.backend_req")
    }

    /// Requests the cache answered from its copy so far.
    pub(crate) fn hits(&self) -> u64 {
        self.counter("MAIN.cache_hit")
    }

    fn counter(&self, name: &str) -> u64 {
        let out = Command::new("varnishstat")
            .arg("-n")
            .arg(self.work())
            .args(["-1", "-f", name])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("varnishstat: {text}"))
    }

    pub(crate) fn dir(&self) -> String {
        self.dir.path().display().to_string()
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }
}

impl Drop for Varnish {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
        }
    }
}
