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
            ])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server; scripts/test installs it)");
        self.child = Some(child);
        // Answers PONG, or asks for the password: up either way.
        super::wait_for("redis-server to start", Duration::from_secs(10), || {
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
