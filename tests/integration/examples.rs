//! The sale-day example (`examples/winter-sale/`) as its users copy it: the
//! GitHub Actions workflow validated against the workflow schema
//! (`@action-validator/cli` from npm), the systemd units by `systemd-analyze
//! verify`, the crontab's lines parsed, and every `flashsale …` command line
//! in all three parsed by the real binary (`FLASHSALE_CHECK_ARGS`), so a
//! renamed flag breaks this test and not a sale day.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

fn ci_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/winter-sale/ci")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(ci_dir().join(rel)).unwrap()
}

/// Stand-ins for what a runner or a shell would put in, so values that the
/// parser checks (paths, names) stay values.
fn substitute(line: &str) -> String {
    let mut out = line.to_string();
    // GitHub expressions: `${{ secrets.X }}` and the like.
    while let Some(at) = out.find("${{") {
        let end = out[at..].find("}}").map_or(out.len(), |e| at + e + 2);
        out.replace_range(at..end, "x");
    }
    for (var, value) in [
        ("$FLASHSALE_GATE_KEY_FILE", "/etc/flashsale/gate.key"),
        ("$RUNNER_TEMP", "/tmp"),
    ] {
        out = out.replace(var, value);
    }
    out
}

/// The `flashsale …` commands of one shell command line: split at `&&`, `||`,
/// `;` and `|`, redirections dropped, words split as the shell would.
fn flashsale_commands(shell: &str) -> Vec<Vec<String>> {
    let shell = substitute(shell);
    let mut found = Vec::new();
    for part in shell
        .split("&&")
        .flat_map(|p| p.split("||"))
        .flat_map(|p| p.split(';'))
    {
        let part = part.split('|').next().unwrap_or_default();
        let Some(words) = shlex::split(part.trim()) else {
            panic!("not a shell command: {part}");
        };
        let words: Vec<String> = words
            .into_iter()
            .take_while(|w| !w.starts_with('>') && !w.starts_with("2>") && !w.starts_with("1>"))
            .collect();
        let is_flashsale = words
            .first()
            .is_some_and(|w| w == "flashsale" || w.ends_with("/flashsale"));
        if is_flashsale {
            found.push(words[1..].to_vec());
        }
    }
    found
}

/// Runs `flashsale ARGS` in parse-only mode; the error if it does not parse.
fn parses(args: &[String]) -> Result<(), String> {
    let out = Command::new(bin())
        .args(args)
        .env("FLASHSALE_CHECK_ARGS", "1")
        .output()
        .unwrap();
    if out.status.success() {
        // `--version` and `--help` answer before anything else, as they should.
        let informational = args.iter().any(|a| a == "--version" || a == "--help");
        assert!(
            informational || String::from_utf8_lossy(&out.stdout).contains("nothing was run"),
            "{args:?} ran"
        );
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Every `flashsale` command of the workflow's `run:` steps (single lines and
/// `|` blocks).
fn workflow_commands(yaml: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut block: Option<usize> = None; // indentation of a `run: |` block's key
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim_start().trim_start_matches("- ");
        if let Some(key_indent) = block {
            if line.trim().is_empty() || indent > key_indent {
                commands.extend(flashsale_commands(line.trim()));
                continue;
            }
            block = None;
        }
        if let Some(run) = text.strip_prefix("run:") {
            let run = run.trim();
            if run == "|" {
                block = Some(indent);
            } else {
                commands.extend(flashsale_commands(run));
            }
        }
    }
    commands
}

#[test]
fn the_workflow_validates_and_installs_this_version_once() {
    let validator =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/npm/node_modules/.bin/action-validator");
    let check = |path: &Path| {
        Command::new(&validator)
            .arg(path)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}; scripts/test installs it", validator.display()))
    };
    let workflow = ci_dir().join("github-actions.yml");
    let out = check(&workflow);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The validator is no rubber stamp: a misspelt key fails.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yml");
    std::fs::write(
        &broken,
        read("github-actions.yml").replace("runs-on:", "runs_on:"),
    )
    .unwrap();
    assert!(!check(&broken).status.success());

    let yaml = read("github-actions.yml");
    // The version it installs is this one, from the repository at its tag,
    // with the lock file, and it is compiled in one job only.
    let version = format!("FLASHSALE_VERSION: \"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(yaml.contains(&version), "the example's {version}");
    let installs: Vec<&str> = yaml
        .lines()
        .filter(|l| l.contains("cargo install"))
        .collect();
    assert_eq!(installs.len(), 1, "{installs:?}");
    for part in [
        "--git \"$FLASHSALE_GIT\"",
        "--tag \"v$FLASHSALE_VERSION\"",
        "--locked",
    ] {
        assert!(installs[0].contains(part), "{part}: {}", installs[0]);
    }
    let repository = format!(
        "FLASHSALE_GIT: {}",
        env!("CARGO_PKG_REPOSITORY").trim_end_matches(".git")
    );
    assert!(yaml.contains(&repository), "the example's {repository}");
    assert_eq!(yaml.matches("actions/download-artifact@v4").count(), 3);
}

#[test]
fn every_flashsale_command_of_the_example_parses() {
    let mut all: Vec<(String, Vec<String>)> = Vec::new();
    let workflow = workflow_commands(&read("github-actions.yml"));
    assert!(workflow.len() >= 7, "{workflow:?}");
    all.extend(
        workflow
            .into_iter()
            .map(|c| ("github-actions.yml".to_string(), c)),
    );

    let crontab = read("crontab");
    let mut cron_lines = 0;
    for line in crontab.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((name, _)) = line.split_once('=') {
            if !name.contains(' ') {
                assert!(
                    name.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                    "crontab: {line}"
                );
                continue;
            }
        }
        // Five time fields (minute, hour, day, month, weekday), then the command.
        let mut rest = line;
        let mut time = Vec::new();
        for _ in 0..5 {
            let (field, tail) = rest
                .trim_start()
                .split_once(char::is_whitespace)
                .unwrap_or_else(|| panic!("crontab: fewer than 5 time fields: {line}"));
            time.push(field);
            rest = tail;
        }
        for (field, (lo, hi)) in time
            .iter()
            .zip([(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)])
        {
            let ok = *field == "*"
                || field
                    .split(',')
                    .all(|v| v.parse::<u32>().is_ok_and(|n| (lo..=hi).contains(&n)));
            assert!(ok, "crontab: `{field}` out of {lo}-{hi}: {line}");
        }
        let commands = flashsale_commands(rest.trim());
        assert!(!commands.is_empty(), "crontab: no flashsale in {line}");
        cron_lines += 1;
        all.extend(commands.into_iter().map(|c| ("crontab".to_string(), c)));
    }
    assert_eq!(cron_lines, 4);

    for unit in ["flashsale-open.service", "flashsale-close.service"] {
        let text = read(&format!("systemd/{unit}"));
        let exec: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("ExecStart="))
            .collect();
        assert_eq!(exec.len(), 1, "{unit}");
        let commands = flashsale_commands(exec[0]);
        assert_eq!(commands.len(), 1, "{unit}: {}", exec[0]);
        all.extend(commands.into_iter().map(|c| (unit.to_string(), c)));
    }

    let failures: Vec<String> = all
        .iter()
        .filter_map(|(file, args)| {
            parses(args)
                .err()
                .map(|e| format!("{file}: flashsale {}: {e}", args.join(" ")))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // And a renamed flag would be caught.
    let renamed: Vec<String> = ["open", "--jsn"].map(String::from).to_vec();
    assert!(parses(&renamed).unwrap_err().contains("--json"));
    eprintln!("{} flashsale command lines parse", all.len());
}

#[test]
fn the_systemd_units_verify() {
    // systemd-analyze verify wants the binary to exist: the one under test.
    let dir = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for entry in std::fs::read_dir(ci_dir().join("systemd")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("/usr/local/bin/flashsale", bin().to_str().unwrap());
        let to = dir.path().join(path.file_name().unwrap());
        std::fs::write(&to, text).unwrap();
        units.push(to);
    }
    units.sort();
    assert_eq!(units.len(), 4);
    let verify = |units: &[PathBuf]| {
        Command::new("systemd-analyze")
            .arg("verify")
            .args(units)
            .env("SYSTEMD_LOG_LEVEL", "warning")
            .output()
            .expect("systemd-analyze (Debian's systemd)")
    };
    let out = verify(&units);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
    // A broken calendar is an error: the check checks.
    let timer = units
        .iter()
        .find(|u| u.ends_with("flashsale-open.timer"))
        .unwrap();
    let text = std::fs::read_to_string(timer).unwrap();
    std::fs::write(
        timer,
        text.replace("OnCalendar=2026-12-12", "OnCalendar=2026-13-12"),
    )
    .unwrap();
    assert!(!verify(&units).status.success());
}
