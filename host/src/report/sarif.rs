//! `--format sarif`: SARIF 2.1.0 for code scanning.
//!
//! One `rule` per rule of the loaded policies (and lkguard's own), results at
//! the file and region a person must edit with URIs relative to the
//! repository root (what GitHub code scanning resolves against the
//! checkout), exempted findings as results with a `suppression` carrying
//! their justification, and input or policy failures as tool execution
//! notifications with `executionSuccessful: false`.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::check::{Located, Outcome};
use crate::exempt::Via;
use crate::load::Loaded;
use crate::model::Severity;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

pub fn render(outcome: &Outcome) -> String {
    let loaded = &outcome.loaded;
    let root = repository_root();
    let rules: Vec<Value> = outcome
        .rules
        .iter()
        .map(|(policy, r)| {
            json!({
                "id": r.id,
                "name": r.id.rsplit('/').next().unwrap_or(&r.id),
                "shortDescription": {"text": r.summary},
                "fullDescription": {"text": r.rationale},
                "help": {"text": format!("{}\n\nRun `lkguard explain {}` for the full rationale.", r.rationale, r.id)},
                "properties": {"policy": policy},
            })
        })
        .collect();
    let rule_index = |id: &str| outcome.rules.iter().position(|(_, r)| r.id == id);
    let result = |l: &Located| {
        let f = &l.finding;
        let mut r = json!({
            "ruleId": f.rule,
            "level": match f.severity { Severity::Error => "error", Severity::Warning => "warning" },
            "message": {"text": match &f.hint {
                Some(h) => format!("{} ({h})", f.message),
                None => f.message.clone(),
            }},
            "locations": location(loaded, l, &root).into_iter().collect::<Vec<_>>(),
            "properties": {
                "policy": l.policy,
                "pointer": f.path,
                "embeddedPointer": f.embedded_path,
                "origins": origins(loaded, l),
            },
        });
        if let Some(i) = rule_index(&f.rule) {
            r["ruleIndex"] = json!(i);
        }
        r
    };
    let mut results: Vec<Value> = outcome.findings.iter().map(result).collect();
    for x in &outcome.exempted {
        let mut r = result(&x.located);
        let (kind, written) = match &x.via {
            Via::Config { location, expires } => (
                "external",
                format!(
                    "lkguard.yaml{}, until {expires}",
                    location.map_or(String::new(), |p| format!(":{}", p.line))
                ),
            ),
            Via::Annotation { .. } => ("inSource", "lkguard.io/exempt annotation".to_string()),
        };
        r["suppressions"] = json!([{
            "kind": kind,
            "status": "accepted",
            "justification": format!("{} ({written})", x.reason),
        }]);
        results.push(r);
    }
    let mut notifications: Vec<Value> = loaded
        .errors
        .iter()
        .map(|e| json!({"level": "error", "message": {"text": e.to_string()}}))
        .collect();
    notifications.extend(outcome.failures.iter().map(|f| {
        json!({"level": "error", "message": {"text": format!("policy {} {}", f.policy, f.message)}})
    }));
    let doc = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "lkguard",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/lkguard/lkguard",
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": notifications.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut text = serde_json::to_string_pretty(&doc).expect("JSON values serialize");
    text.push('\n');
    text
}

fn origins(loaded: &Loaded, l: &Located) -> Vec<String> {
    let first = loaded
        .batch
        .resources
        .get(l.finding.resource as usize)
        .and_then(|r| loaded.batch.origins.get(r.origin as usize))
        .map(|o| o.name.clone());
    first.into_iter().chain(l.also_in.iter().cloned()).collect()
}

fn location(loaded: &Loaded, l: &Located, root: &Option<PathBuf>) -> Option<Value> {
    let p = l.location?;
    let file = &loaded.files[p.file];
    let text = &file.text;
    let (end_line, end_col) = crate::load::line_col(text, p.offset + p.len);
    Some(json!({
        "physicalLocation": {
            "artifactLocation": {"uri": uri(&file.name, root)},
            "region": {
                "startLine": p.line,
                "startColumn": p.col,
                "endLine": end_line,
                "endColumn": end_col,
            },
        },
    }))
}

/// The repository root: the nearest directory up from the working directory
/// holding `.git`.
pub fn repository_root() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?.canonicalize().ok()?;
    cwd.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// A file's URI relative to the repository root, `/`-separated and
/// percent-encoded where RFC 3986 requires it.
pub fn uri(name: &str, root: &Option<PathBuf>) -> String {
    let path = Path::new(name);
    let abs = std::env::current_dir()
        .map(|d| d.join(path))
        .and_then(|p| p.canonicalize());
    let rel = match (abs, root) {
        (Ok(abs), Some(root)) => abs.strip_prefix(root).map(Path::to_path_buf).unwrap_or(abs),
        (Ok(abs), None) => abs,
        (Err(_), _) => path.to_path_buf(),
    };
    let text = if rel.is_absolute() {
        format!("file://{}", rel.display())
    } else {
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/")
    };
    text.chars()
        .map(|c| match c {
            ' ' => "%20".to_string(),
            '%' => "%25".to_string(),
            '#' => "%23".to_string(),
            '?' => "%3F".to_string(),
            c => c.to_string(),
        })
        .collect()
}
