//! `flashsale infra`: the CloudFormation template of a sale's CDN side,
//! checked offline by cfn-lint and checkov (pinned from PyPI into
//! target/iac by `scripts/test`): no error, no failed check, every skip
//! named with why.

use std::path::Path;
use std::process::Command;

use crate::common::*;

fn tool(name: &str) -> std::path::PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/iac/bin")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: scripts/test installs it",
        p.display()
    );
    p
}

#[test]
fn the_template_passes_cfn_lint_and_checkov_with_every_skip_justified() {
    for cookie in [false, true] {
        let sale = Sale::new();
        if cookie {
            sale.add_to_gate("identity_cookie = \"shop_user\"");
        }
        let said = ok(sale.run(&["infra", "-o", "sale.cfn.json"]));
        assert!(
            said.contains("aws cloudformation deploy --template-file sale.cfn.json"),
            "{said}"
        );
        let file = sale.path().join("sale.cfn.json");
        let lint = Command::new(tool("cfn-lint")).arg(&file).output().unwrap();
        assert!(
            lint.status.success(),
            "cfn-lint: {}{}",
            stdout(&lint),
            stderr(&lint)
        );
        let scan = Command::new(tool("checkov"))
            .args([
                "--framework",
                "cloudformation",
                "--skip-download",
                "-o",
                "json",
                "-f",
            ])
            .arg(&file)
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&scan.stdout)
            .unwrap_or_else(|e| panic!("checkov: {e}: {}{}", stdout(&scan), stderr(&scan)));
        let summary = &report["summary"];
        assert_eq!(summary["failed"], 0, "{report:#}");
        assert!(summary["passed"].as_u64().unwrap() >= 15, "{summary}");
        for s in report["results"]["skipped_checks"].as_array().unwrap() {
            let why = s["check_result"]["suppress_comment"].as_str().unwrap_or("");
            assert!(
                why.len() > 30,
                "{} skipped without a reason: {s}",
                s["check_id"]
            );
        }
        let t: serde_json::Value = serde_json::from_str(&sale.read("sale.cfn.json")).unwrap();
        let code = t["Resources"]["OrderCheck"]["Properties"]["FunctionCode"]
            .as_str()
            .unwrap();
        assert!(code.len() <= 10 * 1024);
        assert_eq!(code.contains("var COOKIE = 'shop_user';"), cookie);
    }
}

#[test]
fn the_templates_directory_index_function_finds_item_pages_in_njs_and_node() {
    let sale = Sale::new();
    let out = ok(sale.run(&["infra"]));
    let t: serde_json::Value = serde_json::from_str(&out).unwrap();
    let code = t["Resources"]["DirectoryIndex"]["Properties"]["FunctionCode"]
        .as_str()
        .unwrap();
    sale.write(
        "index.js",
        &format!(
            "{code}\nvar uris = ['/', '/items/mug/', '/items/mug', '/assets/style.1234.css', '/sale.js'];\nconsole.log(uris.map(function (u) {{ return handler({{ request: {{ uri: u }} }}).uri; }}).join(' '));\n"
        ),
    );
    for engine in ["node", "njs"] {
        let o = Command::new(engine)
            .arg(sale.path().join("index.js"))
            .output()
            .unwrap();
        assert_eq!(
            stdout(&o).trim(),
            "/index.html /items/mug/index.html /items/mug/index.html /assets/style.1234.css /sale.js",
            "{engine}: {}",
            stderr(&o)
        );
    }
}
