//! `--format json`: a stable, documented schema (see README, "JSON output").

use serde_json::{json, Value};

use crate::check::Outcome;
use crate::exempt::Via;
use crate::load::LoadError;
use crate::model::Resource;
use crate::model::Severity;

pub const SCHEMA_VERSION: u32 = 1;

pub fn render(outcome: &Outcome) -> String {
    let loaded = &outcome.loaded;
    let findings: Vec<Value> = outcome
        .findings
        .iter()
        .map(|l| {
            let f = &l.finding;
            let r = loaded.batch.resources.get(f.resource as usize);
            let origin = r.and_then(|r| loaded.batch.origins.get(r.origin as usize)).map(|o| o.name.clone());
            json!({
                "rule": f.rule,
                "policy": l.policy,
                "severity": match f.severity { Severity::Error => "error", Severity::Warning => "warning" },
                "message": f.message,
                "hint": f.hint,
                "file": l.location.map(|p| loaded.files[p.file].name.clone()),
                "line": l.location.map(|p| p.line),
                "column": l.location.map(|p| p.col),
                "exact": l.location.is_some_and(|p| p.exact),
                "origin": origin,
                "alsoIn": l.also_in,
                "resource": r.map(resource),
                "path": f.path,
                "embeddedPath": f.embedded_path,
            })
        })
        .collect();
    let exemptions: Vec<Value> = outcome
        .exempted
        .iter()
        .map(|x| {
            let l = &x.located;
            let r = loaded.batch.resources.get(l.finding.resource as usize);
            let (via, at, expires) = match &x.via {
                Via::Config { location, expires } => ("lkguard.yaml", *location, Some(expires.to_string())),
                Via::Annotation { location } => ("annotation", *location, None),
            };
            json!({
                "rule": l.finding.rule,
                "policy": l.policy,
                "message": l.finding.message,
                "file": l.location.map(|p| loaded.files[p.file].name.clone()),
                "line": l.location.map(|p| p.line),
                "column": l.location.map(|p| p.col),
                "origin": r.and_then(|r| loaded.batch.origins.get(r.origin as usize)).map(|o| o.name.clone()),
                "resource": r.map(resource),
                "reason": x.reason,
                "expires": expires,
                "via": via,
                "exemptionFile": at.map(|p| loaded.files[p.file].name.clone()),
                "exemptionLine": at.map(|p| p.line),
            })
        })
        .collect();
    let failures: Vec<Value> = outcome
        .failures
        .iter()
        .map(|f| json!({"policy": f.policy, "message": f.message}))
        .collect();
    let input_errors: Vec<Value> = loaded
        .errors
        .iter()
        .map(|e| match e {
            LoadError::Syntax { file, line, col, message } => {
                json!({"file": file, "line": line, "column": col, "message": message})
            }
            other => json!({"file": other.file(), "line": null, "column": null, "message": other.to_string()}),
        })
        .collect();
    let doc = json!({
        "version": SCHEMA_VERSION,
        "findings": findings,
        "failures": failures,
        "inputErrors": input_errors,
        "exemptions": exemptions,
        "summary": {
            "errors": outcome.errors(),
            "warnings": outcome.warnings(),
            "policies": outcome.policies,
            "files": loaded.checked_files(),
            "renders": loaded.renders.len(),
            "resources": loaded.batch.resources.len(),
            "skippedDocuments": loaded.skipped,
            "exempted": outcome.exempted.len(),
            "off": outcome.off,
            "livekitServers": outcome.livekit_servers,
            "policiesNotSelected": outcome.not_selected,
            "skippedPaths": loaded.skipped_paths.iter().map(|s| match s {
                crate::load::skip::Skipped::HelmChart { chart } => serde_json::json!({"path": chart, "reason": "helm-chart"}),
                crate::load::skip::Skipped::Excluded { path, pattern } => serde_json::json!({"path": path, "reason": "excluded", "pattern": pattern}),
            }).collect::<Vec<_>>(),
            "exitCode": outcome.exit_code(),
        }
    });
    let mut out = serde_json::to_string_pretty(&doc).unwrap_or_default();
    out.push('\n');
    out
}

fn resource(r: &Resource) -> Value {
    json!({
        "apiVersion": r.api_version,
        "kind": r.kind,
        "name": r.name,
        "namespace": r.namespace,
    })
}
