//! A stand-in for the CloudFront KeyValueStore data plane (`kvs_standin.py`,
//! Python's standard library only) on a free loopback port, stopped on drop.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub(crate) const ARN: &str =
    "arn:aws:cloudfront::123456789012:key-value-store/5f1b0c5e-0000-4000-8000-000000000000";

pub(crate) struct KvsStandIn {
    child: Child,
    pub(crate) endpoint: String,
}

impl KvsStandIn {
    /// With the first `conflicts` UpdateKeys calls finding a stale ETag.
    pub(crate) fn start(conflicts: usize) -> KvsStandIn {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/integration/common/kvs_standin.py"
        );
        let child = Command::new("python3")
            .args([script, &port.to_string(), ARN, &conflicts.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .expect("python3");
        let endpoint = format!("http://127.0.0.1:{port}");
        super::wait_for(
            "the KeyValueStore stand-in",
            Duration::from_secs(10),
            || {
                super::http()
                    .get(&format!("{endpoint}/dump"))
                    .call()
                    .is_ok()
            },
        );
        KvsStandIn { child, endpoint }
    }

    /// The whole store and the calls' counts.
    pub(crate) fn dump(&self) -> Value {
        super::http()
            .get(&format!("{}/dump", self.endpoint))
            .call()
            .unwrap()
            .into_json()
            .unwrap()
    }

    /// The `[edge]` section that names this store.
    pub(crate) fn section(&self) -> String {
        format!(
            "\n[edge]\nkvs_arn = \"{ARN}\"\nendpoint = \"{}\"\nstage_ahead = \"1m\"\n",
            self.endpoint
        )
    }
}

impl Drop for KvsStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
