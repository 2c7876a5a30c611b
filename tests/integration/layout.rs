//! The code's shape, held as docs/DESIGN.md draws it: no import circle
//! between modules of `src/` (a parent using its children does not count:
//! it declares them), the gate's rooms small (files ≤ 500 lines, functions
//! ≤ 80), and no lint silenced for a whole crate or for a long parameter list.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, relative to it.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The module path of a file: `gate/stock/mod.rs` → `gate::stock`.
fn module_of(file: &Path) -> Vec<String> {
    let mut parts: Vec<String> = file
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The paths a file names: `crate::a::b…` and `super::…` (made absolute).
fn named_paths(module: &[String], text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    for start in ["crate::", "super::"] {
        let mut rest = text;
        while let Some(i) = rest.find(start) {
            let before = rest[..i].chars().next_back();
            let tail: String = rest[i..].chars().take_while(|c| ident(*c)).collect();
            rest = &rest[i + start.len()..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let mut segs: Vec<&str> = tail.split("::").filter(|s| !s.is_empty()).collect();
            let mut base: Vec<String> = match segs.first() {
                Some(&"crate") => {
                    segs.remove(0);
                    Vec::new()
                }
                _ => module.to_vec(),
            };
            while segs.first() == Some(&"super") {
                segs.remove(0);
                base.pop();
            }
            base.extend(segs.iter().map(|s| s.to_string()));
            out.push(base);
        }
    }
    out
}

#[test]
fn no_import_circle_anywhere_in_src() {
    let files = sources(&src());
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(f)).collect();
    // The module a path lands in: its longest prefix that is a file of ours.
    let owner = |path: &[String]| -> Option<Vec<String>> {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| modules.contains(p))
    };
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for f in &files {
        let from = module_of(f);
        let text = std::fs::read_to_string(src().join(f)).unwrap();
        // Comments name modules without using them.
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for path in named_paths(&from, &code) {
            let Some(to) = owner(&path) else { continue };
            // A parent declares its children: using them is no circle.
            if to == from || to.starts_with(&from) {
                continue;
            }
            edges.entry(from.clone()).or_default().insert(to);
        }
    }
    // The parse sees imports (else this test would pass on nothing).
    let m = |s: &str| s.split("::").map(str::to_string).collect::<Vec<_>>();
    assert!(
        edges
            .get(&m("gate::order"))
            .is_some_and(|e| e.contains(&m("gate::stock"))),
        "the parse misses `use super::stock::…` in gate/order.rs: {edges:?}"
    );
    // A circle: a module that reaches itself.
    let mut circles = Vec::new();
    for start in edges.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(Vec<String>, Vec<Vec<String>>)> = vec![(start.clone(), vec![])];
        while let Some((m, trail)) = stack.pop() {
            for next in edges.get(&m).into_iter().flatten() {
                let mut t = trail.clone();
                t.push(m.clone());
                if next == start {
                    circles.push(
                        t.iter()
                            .chain([next])
                            .map(|m| m.join("::"))
                            .collect::<Vec<_>>()
                            .join(" → "),
                    );
                } else if seen.insert(next.clone()) {
                    stack.push((next.clone(), t));
                }
            }
        }
    }
    assert!(circles.is_empty(), "import circles: {circles:#?}");
}

#[test]
fn the_gates_rooms_are_small() {
    let gate = src().join("gate");
    let mut over = Vec::new();
    let mut functions = 0;
    for f in sources(&gate) {
        let text = std::fs::read_to_string(gate.join(&f)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() > 500 {
            over.push(format!("gate/{}: {} lines", f.display(), lines.len()));
        }
        // rustfmt's layout: a function ends at the first `}` at its indentation.
        for (i, l) in lines.iter().enumerate() {
            let t = l.trim_start();
            // `[pub[(…)] ][async ]fn `, whatever the visibility.
            let mut rest = t;
            if let Some(r) = rest.strip_prefix("pub") {
                rest = match r.strip_prefix('(') {
                    Some(inner) => inner.split_once(") ").map_or("", |(_, after)| after),
                    None => r.strip_prefix(' ').unwrap_or(""),
                };
            }
            let rest = rest.strip_prefix("async ").unwrap_or(rest);
            let is_fn = rest.starts_with("fn ");
            if !is_fn || t.ends_with(';') {
                continue;
            }
            functions += 1;
            let indent = &l[..l.len() - t.len()];
            let end = lines[i..]
                .iter()
                .position(|e| *e == format!("{indent}}}"))
                .unwrap_or(0);
            if end + 1 > 80 {
                over.push(format!(
                    "gate/{}:{}: a function of {} lines",
                    f.display(),
                    i + 1,
                    end + 1
                ));
            }
        }
    }
    assert!(
        functions > 150,
        "the scan found only {functions} functions in the gate"
    );
    assert!(over.is_empty(), "{over:#?}");
}

#[test]
fn no_lint_is_silenced_for_a_crate_or_a_long_parameter_list() {
    let mut found = Vec::new();
    for f in sources(&src()) {
        let text = std::fs::read_to_string(src().join(&f)).unwrap();
        for (i, l) in text.lines().enumerate() {
            let crate_wide = l.starts_with("#![")
                && (l.contains("allow(dead_code") || l.contains("allow(unused"));
            if crate_wide || l.contains("too_many_arguments") {
                found.push(format!("src/{}:{}: {l}", f.display(), i + 1));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_layers_are_the_ones_design_md_draws() {
    let design =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/DESIGN.md"))
            .unwrap();
    // `| `gate` | journal, ledger, … | never |` rows of the layer table.
    let drawn: BTreeMap<String, BTreeSet<String>> = design
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let module = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let uses = cells.get(2)?;
            let uses = if *uses == "nothing of ours" {
                BTreeSet::new()
            } else {
                uses.split(',').map(|u| u.trim().to_string()).collect()
            };
            Some((module.to_string(), uses))
        })
        .collect();
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in sources(&src()) {
        let module = module_of(&f);
        let Some(top) = module.first() else { continue }; // lib.rs, main.rs
        let text = std::fs::read_to_string(src().join(&f)).unwrap();
        // What a module's tests use is not a dependency of the module.
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let entry = found.entry(top.clone()).or_default();
        for path in named_paths(&module, &code) {
            if let Some(other) = path.first().filter(|o| *o != top) {
                entry.insert(other.clone());
            }
        }
    }
    assert_eq!(
        found, drawn,
        "docs/DESIGN.md's layer table (left: the code's `crate::` paths)"
    );
}
