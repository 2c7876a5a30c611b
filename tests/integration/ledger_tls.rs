//! A ledger over TLS with an ACL user, as managed Redis services run it:
//! `rediss://` with a private CA (`[gate] ledger_ca`), the password from a
//! file (`[gate] ledger_password_file`) or the environment, never printed;
//! a wrong CA or password refused at start, clearly.

use crate::common::gate::{order, wait_healthy, GateProc, GateSale};
use crate::common::redis::{Redis, TestCa};
use crate::common::*;
use flashsale::sale;

const PASSWORD: &str = "tls-ledger-s3cret-pw";

fn sale_on(redis: &Redis, ca: &TestCa, ca_name: &str) -> GateSale {
    let s = GateSale::new(&format!(
        "ledger = \"rediss://gate@127.0.0.1:{}/0\"\nledger_ca = \"redis-ca.pem\"\nledger_password_file = \"ledger.pw\"",
        redis.port
    ));
    std::fs::copy(ca.path(ca_name), s.sale.path().join("redis-ca.pem")).unwrap();
    s.sale.write("ledger.pw", &format!("{PASSWORD}\n"));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        s.sale.path().join("ledger.pw"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    s
}

#[test]
fn a_tls_ledger_with_its_password_in_a_file_serves_the_fleet() {
    let ca = TestCa::new();
    let redis = Redis::start_tls(&ca, "gate", PASSWORD);
    let s = sale_on(&redis, &ca, "ca.pem");
    let load = s.sale.run(&["ledger", "load"]);
    // The service refuses CONFIG to its users: a warning, not a failure.
    let warned = stderr(&load);
    assert!(warned.contains("cannot read its settings"), "{warned}");
    let mut printed = ok(load);
    printed.push_str(&warned);
    let gate = GateProc::start(&s, &["--gate-id", "g1"]);
    wait_healthy(&gate);
    let token = s.token();
    let url = sale::order_url(&gate.base, "test-sale", &token);
    let (status, body, _) = order(&http(), &url, Some("tls-customer"), "A-1", true);
    assert!(status == 200 && body.contains("won"), "{status} {body}");
    let status = ok(s.sale.run(&["ledger", "status", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(v["items"]["A-1"]["winners"], 1, "{status}");
    // The password from the environment wins over the file.
    s.sale.write("ledger.pw", "not-the-password\n");
    let env = std::process::Command::new(bin())
        .args(["ledger", "status"])
        .current_dir(s.sale.path())
        .env("FLASHSALE_LEDGER_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    printed.push_str(&ok(env));
    printed.push_str(&status);
    printed.push_str(&gate.err.lock().unwrap().join("\n"));
    assert!(!printed.contains(PASSWORD), "the password was printed");
}

#[test]
fn a_wrong_ca_or_password_is_refused_at_start_without_showing_the_password() {
    let ca = TestCa::new();
    let redis = Redis::start_tls(&ca, "gate", PASSWORD);
    // A CA that did not sign the server's certificate.
    let s = sale_on(&redis, &ca, "other-ca.pem");
    let at = format!("127.0.0.1:{}", redis.port);
    let mut printed = String::new();
    let err = fails(s.sale.run(&["ledger", "status"]));
    assert!(err.contains(&at) && err.contains("refused"), "{err}");
    assert!(err.contains("ledger_ca"), "{err}");
    printed.push_str(&err);
    let out = s
        .gate_command("j1")
        .args(["--gate-id", "g1"])
        .output()
        .unwrap();
    let err = fails(out);
    assert!(err.contains("ledger_ca"), "{err}");
    printed.push_str(&err);
    // The right CA, the wrong password.
    std::fs::copy(ca.path("ca.pem"), s.sale.path().join("redis-ca.pem")).unwrap();
    s.sale.write("ledger.pw", "wrong-password-here\n");
    let err = fails(s.sale.run(&["ledger", "status"]));
    assert!(
        err.contains("refused") && err.contains("ledger_password_file"),
        "{err}"
    );
    printed.push_str(&err);
    let out = s
        .gate_command("j2")
        .args(["--gate-id", "g1"])
        .output()
        .unwrap();
    let err = fails(out);
    assert!(err.contains("refused"), "{err}");
    printed.push_str(&err);
    // A password given on the command line works and is warned about.
    let url = format!("rediss://gate:{PASSWORD}@{at}/0");
    let out = s.sale.run(&["ledger", "status", "--ledger", &url]);
    let warned = stderr(&out);
    ok(out);
    assert!(warned.contains("on the command line"), "{warned}");
    assert!(
        !printed.contains(PASSWORD) && !printed.contains("wrong-password-here"),
        "{printed}"
    );
    // A CA for a ledger without TLS is a mistake said so.
    let plain = Redis::start();
    let err = fails(s.sale.run(&["ledger", "status", "--ledger", &plain.url()]));
    assert!(
        err.contains("redis-ca.pem") && err.contains("rediss://"),
        "{err}"
    );
}
