//! A real `redis-server` (Debian's) for the fleet tests: one per test, on a
//! free loopback port, in a directory of its own, with the settings a sale
//! needs (AOF with `appendfsync always`, no eviction). It can be killed and
//! restarted on the same data, or restarted empty.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(crate) struct Redis {
    child: Option<Child>,
    pub(crate) port: u16,
    dir: tempfile::TempDir,
    /// Settings over the sale's (`--appendonly no`, `--requirepass P`, ...).
    extra: Vec<String>,
    password: Option<String>,
    /// Serving TLS only (`start_tls`): up when it accepts connections.
    tls: bool,
}

/// A throwaway certificate authority and a server certificate for
/// 127.0.0.1 it signed, made with `openssl`; and a second CA that signed
/// nothing (the wrong one).
pub(crate) struct TestCa {
    pub(crate) dir: tempfile::TempDir,
}

impl TestCa {
    pub(crate) fn new() -> TestCa {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl (Debian package openssl)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for ca in ["ca", "other-ca"] {
            let (key, pem, subj) = (
                format!("{ca}.key"),
                format!("{ca}.pem"),
                format!("/CN=flashsale test {ca}"),
            );
            let mut a = vec![
                "req", "-x509", "-days", "2", "-subj", &subj, "-keyout", &key, "-out", &pem,
            ];
            a.extend(ec);
            run(&a);
        }
        let mut a = vec![
            "req",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ];
        a.extend(ec);
        run(&a);
        std::fs::write(
            dir.path().join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-extfile",
            "server.ext",
        ]);
        TestCa { dir }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Redis {
    pub(crate) fn start() -> Redis {
        Self::start_with(&[])
    }

    /// With settings over the sale's; `--requirepass P` goes into the URL too.
    pub(crate) fn start_with(extra: &[&str]) -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let password = extra
            .iter()
            .position(|a| *a == "--requirepass")
            .map(|i| extra[i + 1].to_string());
        let mut r = Redis {
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            password,
            tls: false,
        };
        r.spawn();
        r
    }

    /// Serving TLS only, with `ca`'s server certificate, and the ACL user
    /// `user` with `password` allowed only the commands the README lists
    /// (refused `CONFIG`; the default user off): as a managed Redis is.
    pub(crate) fn start_tls(ca: &TestCa, user: &str, password: &str) -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let path = |n: &str| ca.path(n).to_string_lossy().into_owned();
        let mut r = Redis {
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
            extra: vec![
                "--port".into(),
                "0".into(),
                "--tls-port".into(),
                port.to_string(),
                "--tls-cert-file".into(),
                path("server.pem"),
                "--tls-key-file".into(),
                path("server.key"),
                "--tls-ca-cert-file".into(),
                path("ca.pem"),
                "--tls-auth-clients".into(),
                "no".into(),
                // One argument each: redis-server joins them into the line.
                "--user".into(),
                user.into(),
                "on".into(),
                format!(">{password}"),
                // Exactly the commands the README's ledger section lists
                // (less `config|get`: refused, as managed services do).
                "~fs:*".into(),
                "-@all".into(),
                "+evalsha".into(),
                "+eval".into(),
                "+script|load".into(),
                "+get".into(),
                "+set".into(),
                "+del".into(),
                "+incr".into(),
                "+incrby".into(),
                "+hget".into(),
                "+hgetall".into(),
                "+hset".into(),
                "+hsetnx".into(),
                "+hexists".into(),
                "+hlen".into(),
                "+sadd".into(),
                "+smembers".into(),
                "+time".into(),
                "+pexpire".into(),
                "+xadd".into(),
                "+xreadgroup".into(),
                "+xack".into(),
                "+xclaim".into(),
                "+xpending".into(),
                "+xgroup".into(),
                "+scan".into(),
                "+info".into(),
                "+wait".into(),
                "+ping".into(),
                "--user".into(),
                "default".into(),
                "off".into(),
            ],
            password: None,
            tls: true,
        };
        r.spawn();
        r
    }

    pub(crate) fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.data())
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--maxmemory-policy",
                "noeviction",
                // A replica joining is sent its copy at once, not after 5 s.
                "--repl-diskless-sync-delay",
                "0",
            ])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server; scripts/test installs it)");
        self.child = Some(child);
        // Answers PONG, or asks for the password: up either way. TLS only:
        // accepting connections.
        super::wait_for("redis-server to start", Duration::from_secs(10), || {
            if self.tls {
                return TcpStream::connect(("127.0.0.1", self.port)).is_ok();
            }
            let pong = self.command("PING");
            pong == "+PONG" || pong.starts_with("-NOAUTH")
        });
    }

    /// One inline command; the first line of the answer ("" when it does not answer).
    pub(crate) fn command(&self, cmd: &str) -> String {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(format!("{cmd}\r\n").as_bytes()).is_err() {
            return String::new();
        }
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    }

    /// `INFO <section>`, whole (redis-cli, from redis-server's own redis-tools).
    pub(crate) fn info(&self, section: &str) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "info", section])
            .output()
            .expect("redis-cli (Debian package redis-tools, a dependency of redis-server)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A replica of `primary`, up and in sync.
    pub(crate) fn replica_of(primary: &Redis) -> Redis {
        let r = Redis::start_with(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
        r.wait_in_sync();
        r
    }

    /// Waits until this replica's link to its primary is up and it has
    /// rewritten its AOF after the sync (meanwhile its acknowledgements
    /// stall, and a `WAIT` may time out).
    pub(crate) fn wait_in_sync(&self) {
        super::wait_for("the replica to sync", Duration::from_secs(10), || {
            let persistence = self.info("persistence");
            self.info("replication").contains("master_link_status:up")
                && persistence.contains("aof_rewrite_in_progress:0")
                && persistence.contains("aof_rewrite_scheduled:0")
        });
    }

    /// SIGKILL: whatever was acknowledged is in the AOF (appendfsync always).
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Killed and started again on the same data.
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Started again on its data as a replica of `primary` (a killed primary
    /// rejoining after a promotion), and in sync.
    pub(crate) fn rejoin(&mut self, primary: u16) {
        self.kill();
        if let Some(i) = self.extra.iter().position(|a| a == "--replicaof") {
            self.extra.drain(i..i + 3);
        }
        self.extra.extend([
            "--replicaof".into(),
            "127.0.0.1".into(),
            primary.to_string(),
        ]);
        self.spawn();
        self.wait_in_sync();
    }

    /// Killed and started again with nothing: a Redis that lost its data.
    pub(crate) fn restart_empty(&mut self) {
        self.kill();
        for e in std::fs::read_dir(self.data()).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                std::fs::remove_dir_all(p).unwrap();
            } else {
                std::fs::remove_file(p).unwrap();
            }
        }
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three Sentinels (`redis-server --sentinel`, Debian's) watching `primary`
/// as `mymaster`: down after 2 s (1 s, on this 2-core machine under a
/// storm with `appendfsync always`, let Sentinels call a just-promoted
/// primary down and fail it over again), a quorum of 2.
pub(crate) struct Sentinels {
    children: Vec<Child>,
    pub(crate) ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl Sentinels {
    pub(crate) fn watch(primary: &Redis) -> Sentinels {
        let dir = tempfile::tempdir().unwrap();
        let mut children = Vec::new();
        let mut ports = Vec::new();
        for i in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let conf = dir.path().join(format!("sentinel-{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor mymaster 127.0.0.1 {} 2\nsentinel down-after-milliseconds mymaster 2000\nsentinel failover-timeout mymaster 5000\n",
                    dir.path().display(),
                    primary.port
                ),
            )
            .unwrap();
            let child = Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server --sentinel");
            children.push(child);
            ports.push(port);
        }
        let s = Sentinels {
            children,
            ports,
            _dir: dir,
        };
        super::wait_for(
            "the Sentinels to see the primary",
            Duration::from_secs(10),
            || s.primary() == Some(primary.port),
        );
        s
    }

    /// The primary's port, as the first Sentinel that answers names it.
    pub(crate) fn primary(&self) -> Option<u16> {
        self.ports.iter().find_map(|p| Self::named_by(*p))
    }

    /// The primary's port as the Sentinel on `port` names it.
    fn named_by(port: u16) -> Option<u16> {
        let out = Command::new("redis-cli")
            .args([
                "-p",
                &port.to_string(),
                "SENTINEL",
                "get-master-addr-by-name",
                "mymaster",
            ])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)?
            .trim()
            .parse()
            .ok()
    }

    /// Whether every Sentinel names `port` the primary, is done failing
    /// over (no failover in progress: a leader still reconfiguring replicas
    /// already names the new primary) and sees `replicas` replicas up.
    pub(crate) fn settled(&self, port: u16, replicas: usize) -> bool {
        self.ports.iter().all(|s| {
            let fields = |cmd: &str| -> Vec<String> {
                let out = Command::new("redis-cli")
                    .args(["-p", &s.to_string(), "SENTINEL", cmd, "mymaster"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                out.lines().map(str::to_string).collect()
            };
            let value = |f: &[String], key: &str| -> String {
                f.chunks(2)
                    .find(|kv| kv[0] == key)
                    .and_then(|kv| kv.get(1).cloned())
                    .unwrap_or_default()
            };
            let master = fields("master");
            let up = fields("replicas")
                .windows(2)
                .filter(|kv| kv[0] == "flags" && kv[1] == "slave")
                .count();
            value(&master, "port") == port.to_string()
                && value(&master, "flags") == "master"
                && up == replicas
        })
    }

    /// `redis+sentinel://…/mymaster/0`.
    pub(crate) fn url(&self) -> String {
        let hosts: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+sentinel://{}/mymaster/0", hosts.join(","))
    }
}

impl Drop for Sentinels {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A Redis cluster of 3 primaries and 3 replicas (Debian's `redis-server`
/// with `--cluster-enabled`, joined by `redis-cli --cluster create`); a node
/// is failed after 2 s without answers.
pub(crate) struct Cluster {
    pub(crate) nodes: Vec<Redis>,
}

impl Cluster {
    pub(crate) fn start() -> Cluster {
        let nodes: Vec<Redis> = (0..6)
            .map(|_| {
                // The bus on a free port of its own (port + 10000 may be
                // past 65535).
                let bus = std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
                    .to_string();
                Redis::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                    "--cluster-port",
                    &bus,
                ])
            })
            .collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for n in &nodes {
            create.arg(format!("127.0.0.1:{}", n.port));
        }
        let out = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let c = Cluster { nodes };
        super::wait_for("the cluster to be ok", Duration::from_secs(20), || {
            c.nodes.iter().all(Redis::cluster_ok)
        });
        for n in &c.nodes {
            if n.info("replication").contains("role:slave") {
                n.wait_in_sync();
            }
        }
        c
    }

    /// `redis+cluster://` with every node as a seed.
    pub(crate) fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// The port of the primary serving `key`'s slot, as a live node sees it.
    pub(crate) fn primary_of(&self, key: &str) -> Option<u16> {
        let live = self.nodes.iter().find(|n| n.child.is_some())?;
        let cli = |args: &[&str]| {
            Command::new("redis-cli")
                .args(["-p", &live.port.to_string()])
                .args(args)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        let slot: u16 = cli(&["CLUSTER", "KEYSLOT", key]).trim().parse().ok()?;
        cli(&["CLUSTER", "NODES"]).lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let flags = f.get(2)?;
            if !flags.contains("master") || flags.contains("fail") {
                return None;
            }
            let serves = f.iter().skip(8).any(|r| {
                let (a, b) = r.split_once('-').unwrap_or((r, r));
                match (a.parse::<u16>(), b.parse::<u16>()) {
                    (Ok(a), Ok(b)) => (a..=b).contains(&slot),
                    _ => false,
                }
            });
            let port = f.get(1)?.split(['@', ':']).nth(1)?.parse().ok()?;
            serves.then_some(port)
        })
    }

    pub(crate) fn node(&mut self, port: u16) -> &mut Redis {
        self.nodes.iter_mut().find(|n| n.port == port).unwrap()
    }
}

impl Redis {
    /// Whether this cluster node sees every slot served.
    fn cluster_ok(&self) -> bool {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "CLUSTER", "INFO"])
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok")
    }
}
