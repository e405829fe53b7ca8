//! Every fenced block of README.md is checked here, by the directive in the
//! HTML comment right above it (`<!-- check: KIND [ARGS] -->`), so an
//! example that `check` refuses, a flag that no longer exists, or output the
//! tool no longer prints fails the build instead of a new user's first try.
//!
//! Kinds:
//! - `config`: a whole `lkguard.yaml`: `config validate` accepts it and
//!   `check fixtures/deploy/k8s` runs with it (exit 0 or 1, never 2);
//! - `pre-commit`: a `.pre-commit-config.yaml` whose hook ids this
//!   repository's `.pre-commit-hooks.yaml` defines;
//! - `yaml`: parses as YAML;
//! - `run`: shell lines; each `lkguard …` or `cargo run --release -- …` runs
//!   from the repository root and exits 0, or N with a trailing `# exit N`;
//! - `parse`: each `lkguard …` line is a command the CLI accepts (for what
//!   cannot run here: a server, a pull request's base branch);
//! - `output ARGS`: the block is the standard output of `lkguard ARGS`;
//!   `...` inside a line matches anything, a line of `...` any lines;
//! - `excerpt ARGS`: the block's lines appear in that output, in order;
//! - `json ARGS`: the block's JSON is contained in `lkguard ARGS`'s (`"..."`
//!   matches any value, `...` inside a string any text, and an array's
//!   items are found in the output's, in order);
//! - `skip REASON`: not checked, and the reason says why.

mod common;

use clap::Parser;
use common::*;
use serde_json::Value;

struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    directive: String,
    text: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut last = "";
    let mut open: Option<(usize, String, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        match &mut open {
            Some((start, directive, text)) => {
                if line.trim_start().starts_with("```") {
                    out.push(Block {
                        line: *start,
                        directive: directive.clone(),
                        text: std::mem::take(text),
                    });
                    open = None;
                    last = "";
                } else {
                    text.push_str(line);
                    text.push('\n');
                }
            }
            None if line.trim_start().starts_with("```") => {
                let directive = last
                    .trim()
                    .strip_prefix("<!-- check:")
                    .and_then(|d| d.strip_suffix("-->"))
                    .map(|d| d.trim().to_string())
                    .unwrap_or_default();
                open = Some((i + 1, directive, String::new()));
            }
            None => {
                if !line.trim().is_empty() {
                    last = line;
                }
            }
        }
    }
    out
}

fn readme() -> Vec<Block> {
    let text = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    blocks(&text)
}

/// The lkguard invocations of a shell block: `\`-continued lines joined,
/// comments dropped, with the exit code a trailing `# exit N` expects.
fn commands(text: &str) -> Vec<(Vec<String>, i32)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let whole = std::mem::take(&mut pending);
        let (command, comment) = match whole.split_once(" # ") {
            Some((c, m)) => (c.trim().to_string(), m.trim().to_string()),
            None if whole.starts_with('#') => continue,
            None => (whole.trim().to_string(), String::new()),
        };
        let args = shell_words::split(&command).expect("shell words");
        let args: Vec<String> = match args.first().map(String::as_str) {
            Some("lkguard") => args[1..].to_vec(),
            Some("cargo") if args.get(1).map(String::as_str) == Some("run") => {
                let at = args
                    .iter()
                    .position(|a| a == "--")
                    .expect("cargo run -- ARGS");
                args[at + 1..].to_vec()
            }
            _ => continue,
        };
        let exit = comment
            .strip_prefix("exit ")
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        out.push((args, exit));
    }
    out
}

fn run(args: &[String]) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    lkguard(&args)
}

/// `pattern` with `...` as "anything" matches all of `line`.
fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("...").collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let mut rest = line;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// Every line of `expected` matches `actual` line for line, a line of
/// `...` standing for any number of lines.
fn output_matches(expected: &[&str], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first.trim() == "..." => {
            (0..=actual.len()).any(|skip| output_matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual
            .split_first()
            .is_some_and(|(a, tail)| line_matches(first, a) && output_matches(rest, tail)),
    }
}

/// The lines of `expected` appear in `actual`, in order.
fn excerpt_matches(expected: &[&str], actual: &[&str]) -> bool {
    let mut at = 0;
    expected.iter().all(|e| {
        match actual[at..]
            .iter()
            .position(|a| line_matches(e.trim_end(), a.trim_end()))
        {
            Some(i) => {
                at += i + 1;
                true
            }
            None => false,
        }
    })
}

fn json_contains(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(s), _) if s == "..." => true,
        (Value::String(s), Value::String(a)) => line_matches(s, a),
        (Value::Object(e), Value::Object(a)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| json_contains(v, av))),
        // Each item shown is in the output, in order (a shortened list).
        (Value::Array(e), Value::Array(a)) => {
            let mut rest = a.iter();
            e.iter().all(|x| rest.any(|y| json_contains(x, y)))
        }
        (e, a) => e == a,
    }
}

fn check_block(b: &Block) -> Result<(), String> {
    let (kind, args) = b
        .directive
        .split_once(' ')
        .unwrap_or((b.directive.as_str(), ""));
    let lkguard_args = || shell_words::split(args).expect("directive arguments");
    match kind {
        "" => Err("has no `<!-- check: KIND -->` comment above it".into()),
        "skip" if args.trim().is_empty() => Err("`skip` needs a reason".into()),
        "skip" => Ok(()),
        "yaml" => serde_yaml::Deserializer::from_str(&b.text)
            .try_for_each(|d| Value::deserialize(d).map(drop))
            .map_err(|e| format!("does not parse as YAML: {e}")),
        "pre-commit" => {
            let config: Value = serde_yaml::from_str(&b.text).map_err(|e| e.to_string())?;
            let hooks: Value = serde_yaml::from_str(
                &std::fs::read_to_string(root().join(".pre-commit-hooks.yaml")).unwrap(),
            )
            .unwrap();
            let defined: Vec<&str> = hooks
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|h| h["id"].as_str())
                .collect();
            let used: Vec<&str> = config["repos"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| r["hooks"].as_array().into_iter().flatten())
                .filter_map(|h| h["id"].as_str())
                .collect();
            match used.iter().find(|id| !defined.contains(id)) {
                _ if used.is_empty() => Err("names no hook".into()),
                Some(id) => Err(format!("hook `{id}` is not in .pre-commit-hooks.yaml")),
                None => Ok(()),
            }
        }
        "config" => {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("lkguard.yaml");
            std::fs::write(&file, &b.text).unwrap();
            let file = file.to_str().unwrap();
            let out = lkguard(&["config", "validate", file]);
            if !out.status.success() {
                return Err(format!(
                    "`lkguard config validate` refuses it:\n{}",
                    stderr(&out)
                ));
            }
            let out = lkguard(&["check", "--config", file, "fixtures/deploy/k8s"]);
            match out.status.code() {
                Some(0 | 1) => Ok(()),
                code => Err(format!(
                    "`lkguard check --config` with it exits {code:?}:\n{}{}",
                    stdout(&out),
                    stderr(&out)
                )),
            }
        }
        "run" | "parse" => {
            let commands = commands(&b.text);
            if commands.is_empty() {
                return Err("holds no lkguard command".into());
            }
            for (args, exit) in commands {
                if kind == "parse" {
                    let argv = std::iter::once("lkguard".to_string()).chain(args.clone());
                    lkguard::cli::Cli::try_parse_from(argv).map_err(|e| {
                        format!("`lkguard {}` does not parse:\n{e}", args.join(" "))
                    })?;
                    continue;
                }
                let out = run(&args);
                if out.status.code() != Some(exit) {
                    return Err(format!(
                        "`lkguard {}` exits {:?}, not {exit}:\n{}{}",
                        args.join(" "),
                        out.status.code(),
                        stdout(&out),
                        stderr(&out)
                    ));
                }
            }
            Ok(())
        }
        "output" | "excerpt" | "json" => {
            let out = run(&lkguard_args());
            let actual = stdout(&out);
            let ok = match kind {
                "output" => output_matches(
                    &b.text.lines().collect::<Vec<_>>(),
                    &actual.lines().collect::<Vec<_>>(),
                ),
                "excerpt" => excerpt_matches(
                    &b.text.lines().collect::<Vec<_>>(),
                    &actual.lines().collect::<Vec<_>>(),
                ),
                _ => {
                    let expected: Value = serde_json::from_str(&b.text)
                        .map_err(|e| format!("the README's JSON does not parse: {e}"))?;
                    let actual: Value = serde_json::from_str(&actual)
                        .map_err(|e| format!("lkguard's output is not JSON: {e}"))?;
                    json_contains(&expected, &actual)
                }
            };
            match ok {
                true => Ok(()),
                false => Err(format!(
                    "does not match `lkguard {args}` (exit {:?}), which prints:\n{actual}{}",
                    out.status.code(),
                    stderr(&out)
                )),
            }
        }
        other => Err(format!("unknown check kind `{other}`")),
    }
}

use serde::Deserialize as _;

#[test]
fn every_example_in_the_readme_is_checked_and_holds() {
    let failures: Vec<String> = readme()
        .iter()
        .filter_map(|b| {
            check_block(b)
                .err()
                .map(|e| format!("README.md:{} ({}): {e}", b.line, b.directive))
        })
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn the_matchers_can_fail() {
    assert!(line_matches("a ... c", "a b c"));
    assert!(!line_matches("a ... c", "a b d"));
    assert!(output_matches(&["x", "...", "z"], &["x", "y", "y", "z"]));
    assert!(!output_matches(&["x", "z"], &["x", "y", "z"]));
    assert!(excerpt_matches(&["b", "d"], &["a", "b", "c", "d"]));
    assert!(!excerpt_matches(&["d", "b"], &["a", "b", "c", "d"]));
    let e = serde_json::json!({"a": "...", "b": [1]});
    assert!(json_contains(
        &e,
        &serde_json::json!({"a": 3, "b": [1, 2], "c": 0})
    ));
    assert!(!json_contains(&e, &serde_json::json!({"b": [1]})));
    assert!(json_contains(
        &serde_json::json!([2]),
        &serde_json::json!([1, 2])
    ));
    assert!(!json_contains(
        &serde_json::json!([2, 1]),
        &serde_json::json!([1, 2])
    ));
    let bad = blocks("<!-- check: config -->\n```yaml\npolicies: [{id: nope}]\n```\n");
    assert!(check_block(&bad[0]).is_err(), "a config check refuses");
    let unmarked = blocks("text\n```sh\nlkguard check .\n```\n");
    assert!(
        check_block(&unmarked[0]).is_err(),
        "a block needs a directive"
    );
    let wrong_exit = blocks(
        "<!-- check: run -->\n```sh\nlkguard check fixtures/rendered/bad/replicas-two.yaml\n```\n",
    );
    assert!(check_block(&wrong_exit[0]).is_err(), "exit 1 is not exit 0");
    let no_flag = blocks("<!-- check: parse -->\n```sh\nlkguard check --no-such-flag .\n```\n");
    assert!(check_block(&no_flag[0]).is_err());
}
