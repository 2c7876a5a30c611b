//! A real S3 + CloudFront protocol server for the tests: moto, from PyPI, on a
//! free loopback port. Installed into target/moto on first use (the test
//! command does it up front), started per test, stopped on drop.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use serde_json::Value;

use super::{bin, ok, Sale};

pub(crate) const ACCESS_KEY: &str = "AKIDFLASHSALETEST";
pub(crate) const SECRET_KEY: &str = "flashsale-test-secret";

pub(crate) struct Moto {
    child: Child,
    pub(crate) endpoint: String,
    pub(crate) log: PathBuf,
}

/// The venv with moto and awscli, installed once (concurrent callers wait).
pub(crate) fn venv() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/moto");
    let ready = dir.join(".installed");
    if ready.exists() {
        return dir;
    }
    let lock = dir.with_extension("lock");
    let mine = super::wait_for_some(
        "another test to install moto",
        Duration::from_secs(600),
        || {
            if std::fs::create_dir_all(lock.parent().unwrap()).is_ok()
                && std::fs::create_dir(&lock).is_ok()
            {
                Some(true)
            } else {
                ready.exists().then_some(false)
            }
        },
    );
    if !mine {
        return dir;
    }
    if !ready.exists() {
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .status()
            .expect("python3");
        assert!(status.success(), "python3 -m venv failed");
        let status = Command::new(dir.join("bin/pip"))
            .args([
                "install",
                "-q",
                "moto[s3,cloudfront]>=5,<6",
                "flask",
                "flask-cors",
                "awscli",
            ])
            .status()
            .expect("pip");
        assert!(status.success(), "pip install moto failed");
        std::fs::write(&ready, "").unwrap();
    }
    let _ = std::fs::remove_dir(&lock);
    dir
}

impl Moto {
    pub(crate) fn start() -> Moto {
        Self::start_with(&[])
    }

    /// moto that checks signatures: the first `free` requests are unauthenticated
    /// (to create an IAM user and key), every later one must be signed correctly.
    pub(crate) fn start_with(env: &[(&str, &str)]) -> Moto {
        let venv = venv();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::env::temp_dir().join(format!("flashsale-moto-{port}.log"));
        let child = Command::new(venv.join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start moto_server");
        let endpoint = format!("http://127.0.0.1:{port}");
        super::wait_for(
            &format!("moto to start (see {})", log.display()),
            Duration::from_secs(30),
            || {
                super::http()
                    .get(&format!("{endpoint}/moto-api/"))
                    .call()
                    .is_ok()
            },
        );
        Moto {
            child,
            endpoint,
            log,
        }
    }

    /// Requests served so far (moto logs one line per request).
    pub(crate) fn requests(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("HTTP/1.1\" "))
            .count()
    }

    pub(crate) fn sdk(&self) -> SdkConfig {
        sdk_config(&self.endpoint, ACCESS_KEY, SECRET_KEY)
    }

    pub(crate) fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk())
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    pub(crate) fn cloudfront(&self) -> aws_sdk_cloudfront::Client {
        aws_sdk_cloudfront::Client::new(&self.sdk())
    }

    /// Environment for `flashsale` talking to this server.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        aws_env(ACCESS_KEY, SECRET_KEY)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn aws_env(key: &str, secret: &str) -> Vec<(String, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID".into(), key.into()),
        ("AWS_SECRET_ACCESS_KEY".into(), secret.into()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        (
            "AWS_CONFIG_FILE".into(),
            "/nonexistent/flashsale-test".into(),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE".into(),
            "/nonexistent/flashsale-test".into(),
        ),
    ]
}

pub(crate) fn sdk_config(endpoint: &str, key: &str, secret: &str) -> SdkConfig {
    let creds = aws_credential_types::Credentials::new(key, secret, None, None, "test");
    rt().block_on(
        aws_config::defaults(BehaviorVersion::latest())
            // flashsale's own choice: rustls on ring (see Cargo.toml).
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(Provider::Rustls(CryptoMode::Ring))
                    .build_https(),
            )
            .region(Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(endpoint)
            .load(),
    )
}

/// A runtime for the tests' own SDK calls.
pub(crate) fn rt() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

pub(crate) const BUCKET: &str = "sale-bucket";

/// A built sale, a moto server with a bucket and a distribution, and the
/// [publish] section pointing at them.
pub(crate) struct Setup {
    pub(crate) sale: Sale,
    pub(crate) moto: Moto,
    pub(crate) distribution: String,
}

impl Setup {
    pub(crate) fn new() -> Setup {
        Self::with(Sale::new())
    }

    pub(crate) fn with(sale: Sale) -> Setup {
        let moto = Moto::start();
        rt().block_on(moto.s3().create_bucket().bucket(BUCKET).send())
            .unwrap();
        let distribution = create_distribution(&moto, None);
        add_publish_section(&sale, &moto.endpoint, Some(&distribution));
        ok(sale.run(&["build", "-q"]));
        Setup {
            sale,
            moto,
            distribution,
        }
    }

    pub(crate) fn publish(&self, args: &[&str]) -> std::process::Output {
        Command::new(bin())
            .arg("publish")
            .args(args)
            .current_dir(self.sale.path())
            .envs(self.moto.env())
            .output()
            .unwrap()
    }

    /// `publish --json ARGS`, which must succeed.
    pub(crate) fn publish_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&ok(self.publish(&all))).unwrap()
    }

    /// Writes a toggle straight into the bucket, as `open`/`close` would.
    pub(crate) fn put_toggle(&self, toggle: &flashsale::sale::Toggle) {
        rt().block_on(
            self.moto
                .s3()
                .put_object()
                .bucket(BUCKET)
                .key("sale.js")
                .body(toggle.to_script().into_bytes().into())
                .send(),
        )
        .unwrap();
    }

    pub(crate) fn head(
        &self,
        key: &str,
    ) -> Option<aws_sdk_s3::operation::head_object::HeadObjectOutput> {
        rt().block_on(self.moto.s3().head_object().bucket(BUCKET).key(key).send())
            .ok()
    }

    pub(crate) fn get(&self, key: &str) -> Vec<u8> {
        let out = rt()
            .block_on(self.moto.s3().get_object().bucket(BUCKET).key(key).send())
            .unwrap();
        rt().block_on(out.body.collect())
            .unwrap()
            .into_bytes()
            .to_vec()
    }

    pub(crate) fn keys(&self) -> BTreeSet<String> {
        let out = rt()
            .block_on(self.moto.s3().list_objects_v2().bucket(BUCKET).send())
            .unwrap();
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(String::from))
            .collect()
    }

    pub(crate) fn manifest(&self) -> Value {
        serde_json::from_str(&self.sale.read("public/manifest.json")).unwrap()
    }

    /// Paths of every invalidation created so far, newest first.
    pub(crate) fn invalidations(&self) -> Vec<Vec<String>> {
        let cf = self.moto.cloudfront();
        let list = rt()
            .block_on(
                cf.list_invalidations()
                    .distribution_id(&self.distribution)
                    .send(),
            )
            .unwrap();
        let ids: Vec<String> = list
            .invalidation_list()
            .map(|l| l.items().iter().map(|i| i.id().to_string()).collect())
            .unwrap_or_default();
        // moto lists them oldest first.
        ids.iter()
            .rev()
            .map(|id| {
                let inv = rt()
                    .block_on(
                        cf.get_invalidation()
                            .distribution_id(&self.distribution)
                            .id(id)
                            .send(),
                    )
                    .unwrap();
                let mut paths: Vec<String> = inv
                    .invalidation()
                    .and_then(|i| i.invalidation_batch())
                    .and_then(|b| b.paths())
                    .map(|p| p.items().to_vec())
                    .unwrap_or_default();
                paths.sort();
                paths
            })
            .collect()
    }
}

/// Appends a `[publish]` section pointing at `endpoint` (and a distribution).
pub(crate) fn add_publish_section(sale: &Sale, endpoint: &str, distribution: Option<&str>) {
    let mut toml = sale.read("site.toml");
    toml.push_str(&format!(
        "\n[publish]\nbucket = \"{BUCKET}\"\nregion = \"us-east-1\"\nendpoint = \"{endpoint}\"\n"
    ));
    if let Some(d) = distribution {
        toml.push_str(&format!("distribution_id = \"{d}\"\n"));
    }
    sale.write("site.toml", &toml);
}

/// How a test distribution caches `/sale.js` (its own cache behaviour).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Edge {
    /// A cache policy ID; without one, the legacy TTLs and forwarded values below.
    pub(crate) policy: Option<&'static str>,
    pub(crate) min_ttl: i64,
    pub(crate) default_ttl: i64,
    pub(crate) max_ttl: i64,
    pub(crate) query_string: bool,
    pub(crate) origin_shield: bool,
}

impl Edge {
    /// The README's `flashsale-toggle` policy in legacy settings: at most 1 s
    /// whatever the origin says, no query string in the key.
    pub(crate) const LEGACY: Edge = Edge {
        policy: None,
        min_ttl: 0,
        default_ttl: 1,
        max_ttl: 1,
        query_string: false,
        origin_shield: false,
    };
}

/// A distribution in front of the bucket whose default behaviour caches by the
/// origin's headers; with `toggle`, `/sale.js` has a behaviour of its own.
#[allow(deprecated)]
pub(crate) fn create_distribution(moto: &Moto, toggle: Option<Edge>) -> String {
    use aws_sdk_cloudfront::types::*;
    let origin = Origin::builder()
        .id("s3")
        .domain_name(format!("{BUCKET}.s3.amazonaws.com"))
        .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        .origin_shield(
            OriginShield::builder()
                .enabled(toggle.is_some_and(|e| e.origin_shield))
                .origin_shield_region("eu-central-1")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let forwarded = |query: bool| {
        ForwardedValues::builder()
            .query_string(query)
            .cookies(
                CookiePreference::builder()
                    .forward(ItemSelection::None)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    };
    let edge = Edge::LEGACY;
    let behaviour = DefaultCacheBehavior::builder()
        .target_origin_id("s3")
        .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
        .min_ttl(edge.min_ttl)
        .default_ttl(edge.default_ttl)
        .max_ttl(edge.max_ttl)
        .forwarded_values(forwarded(edge.query_string))
        .build()
        .unwrap();
    let mut behaviours = CacheBehaviors::builder().quantity(0);
    if let Some(e) = toggle {
        let b = CacheBehavior::builder()
            .path_pattern("/sale.js")
            .target_origin_id("s3")
            .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps);
        let b = match e.policy {
            Some(id) => b.cache_policy_id(id),
            None => b
                .min_ttl(e.min_ttl)
                .default_ttl(e.default_ttl)
                .max_ttl(e.max_ttl)
                .forwarded_values(forwarded(e.query_string)),
        };
        behaviours = behaviours.quantity(1).items(b.build().unwrap());
    }
    let config = DistributionConfig::builder()
        .caller_reference({
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            format!("test-{}-{n}", std::process::id())
        })
        .origins(
            Origins::builder()
                .quantity(1)
                .items(origin)
                .build()
                .unwrap(),
        )
        .default_cache_behavior(behaviour)
        .cache_behaviors(behaviours.build().unwrap())
        .comment("flashsale test")
        .enabled(true)
        .build()
        .unwrap();
    let out = rt()
        .block_on(
            moto.cloudfront()
                .create_distribution()
                .distribution_config(config)
                .send(),
        )
        .unwrap();
    out.distribution().unwrap().id().to_string()
}
