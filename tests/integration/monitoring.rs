//! Watching the sale: the Prometheus alert rules tested with `promtool test
//! rules` (Debian's `prometheus` package, installed by `scripts/test`) — each
//! fires on series that should fire it and stays silent on a healthy sale —
//! and the Grafana dashboard's queries checked as PromQL by promtool, every
//! metric they name one the gate exports.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/monitoring")
}

fn promtool(args: &[&str], cwd: &Path) -> String {
    let o = Command::new("promtool")
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("promtool (Debian package prometheus; scripts/test installs it)");
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(o.status.success(), "promtool {args:?}: {said}");
    said
}

/// The metric names the gate exports (its constants), with a histogram's series.
fn exported() -> BTreeSet<String> {
    let src =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/gate/metrics.rs"))
            .unwrap();
    let mut names = BTreeSet::new();
    for l in src.lines() {
        if let Some(name) = l
            .split("&str = \"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .filter(|n| n.starts_with("flashsale_gate_"))
        {
            for suffix in ["", "_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
    }
    names
}

/// Every `flashsale_gate_…` name in `text`.
fn named(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("flashsale_gate_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_alert_fires_when_it_should_and_stays_silent_on_a_healthy_sale() {
    let said = promtool(&["check", "rules", "alerts.yml"], &dir());
    assert!(said.contains("SUCCESS: 7 rules found"), "{said}");
    let said = promtool(&["test", "rules", "alerts.test.yml"], &dir());
    assert!(said.contains("SUCCESS"), "{said}");
    let rules = std::fs::read_to_string(dir().join("alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(dir().join("alerts.test.yml")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(alerts.len(), 7, "{alerts:?}");
    for a in &alerts {
        assert!(
            tests.contains(&format!(
                "{{eval_time: 100s, alertname: {a}, exp_alerts: []}}"
            )),
            "{a} is not held silent on the healthy sale"
        );
        let fires = tests
            .split("alertname: ")
            .skip(1)
            .any(|t| t.starts_with(&format!("{a}\n")) && t.contains("exp_labels"));
        assert!(fires, "{a} is never shown firing");
    }
    let unknown: Vec<String> = named(&rules).difference(&exported()).cloned().collect();
    assert!(
        unknown.is_empty(),
        "the rules name metrics no gate exports: {unknown:?}"
    );
}

#[test]
fn the_dashboards_queries_are_promql_over_metrics_the_gate_exports() {
    let text = std::fs::read_to_string(dir().join("dashboard.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let panels = dash["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    let mut exprs = Vec::new();
    for p in panels {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "panel id twice: {p}");
        assert!(p["gridPos"]["w"].as_u64().unwrap() <= 24);
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{} has no query", p["title"]);
        for t in targets {
            exprs.push(t["expr"].as_str().unwrap().replace("$sale", "demo"));
        }
    }
    // The RED view, stock, ledger, forwarding and the draw are all there.
    for needle in [
        "flashsale_gate_requests_total",
        "outcome=\"unavailable\"",
        "flashsale_gate_order_seconds_bucket",
        "flashsale_gate_remaining",
        "flashsale_gate_ledger_up",
        "flashsale_gate_forward_backlog",
        "flashsale_gate_forward_dead_letters_total",
        "flashsale_gate_draw_entries",
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(needle)),
            "no panel shows {needle}"
        );
    }
    // promtool checks PromQL in recording rules: one per query.
    let scratch = tempfile::tempdir().unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        rules.push_str(&format!(
            "      - record: dashboard:query{i}\n        expr: {}\n",
            serde_json::to_string(e).unwrap()
        ));
    }
    std::fs::write(scratch.path().join("queries.yml"), rules).unwrap();
    let said = promtool(&["check", "rules", "queries.yml"], scratch.path());
    assert!(
        said.contains(&format!("SUCCESS: {} rules found", exprs.len())),
        "{said}"
    );
    let unknown: Vec<String> = named(&text).difference(&exported()).cloned().collect();
    assert!(
        unknown.is_empty(),
        "the dashboard names metrics no gate exports: {unknown:?}"
    );
}
