//! A real S3 + CloudFront protocol server for the tests: moto, from PyPI, on a
//! free loopback port. Installed into target/moto on first use (the test
//! command does it up front), started per test, stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};

pub const ACCESS_KEY: &str = "AKIDFLASHSALETEST";
pub const SECRET_KEY: &str = "flashsale-test-secret";

pub struct Moto {
    child: Child,
    pub endpoint: String,
    pub log: PathBuf,
}

/// The venv with moto and awscli, installed once (concurrent callers wait).
pub fn venv() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/moto");
    let ready = dir.join(".installed");
    if ready.exists() {
        return dir;
    }
    let lock = dir.with_extension("lock");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if std::fs::create_dir_all(lock.parent().unwrap()).is_ok()
            && std::fs::create_dir(&lock).is_ok()
        {
            break;
        }
        if ready.exists() {
            return dir;
        }
        assert!(
            Instant::now() < deadline,
            "waited 10 min for another test to install moto"
        );
        std::thread::sleep(Duration::from_millis(500));
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
    pub fn start() -> Moto {
        Self::start_with(&[])
    }

    /// moto that checks signatures: the first `free` requests are unauthenticated
    /// (to create an IAM user and key), every later one must be signed correctly.
    pub fn start_with(env: &[(&str, &str)]) -> Moto {
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
        let deadline = Instant::now() + Duration::from_secs(30);
        while super::http()
            .get(&format!("{endpoint}/moto-api/"))
            .call()
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "moto did not start; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            child,
            endpoint,
            log,
        }
    }

    /// Requests served so far (moto logs one line per request).
    pub fn requests(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("HTTP/1.1\" "))
            .count()
    }

    pub fn sdk(&self) -> SdkConfig {
        sdk_config(&self.endpoint, ACCESS_KEY, SECRET_KEY)
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk())
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    pub fn cloudfront(&self) -> aws_sdk_cloudfront::Client {
        aws_sdk_cloudfront::Client::new(&self.sdk())
    }

    /// Environment for `flashsale` talking to this server.
    pub fn env(&self) -> Vec<(String, String)> {
        aws_env(ACCESS_KEY, SECRET_KEY)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn aws_env(key: &str, secret: &str) -> Vec<(String, String)> {
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

pub fn sdk_config(endpoint: &str, key: &str, secret: &str) -> SdkConfig {
    let creds = aws_credential_types::Credentials::new(key, secret, None, None, "test");
    rt().block_on(
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(endpoint)
            .load(),
    )
}

/// A runtime for the tests' own SDK calls.
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}
