//! `lkguard policies` and `lkguard explain`.

use std::fmt::Write as _;

use serde_json::json;

use crate::policy::Registry;

pub fn human(registry: &Registry) -> String {
    let mut out = String::new();
    for p in &registry.policies {
        let m = &p.metadata;
        let _ = writeln!(out, "{} {} ({})", m.id, m.version, p.source);
        for r in &m.rules {
            let _ = writeln!(out, "  {:<28} {}", r.id, r.summary);
        }
    }
    out
}

pub fn json(registry: &Registry) -> String {
    let policies: Vec<_> = registry
        .policies
        .iter()
        .map(|p| {
            let m = &p.metadata;
            json!({
                "id": m.id,
                "version": m.version,
                "source": p.source.to_string(),
                "rules": m.rules.iter().map(|r| json!({"id": r.id, "summary": r.summary, "rationale": r.rationale})).collect::<Vec<_>>(),
                "settingsSchema": serde_json::from_str::<serde_json::Value>(&m.settings_schema).unwrap_or_default(),
            })
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&json!({ "policies": policies })).unwrap_or_default();
    s.push('\n');
    s
}

/// The rationale of a rule, or of every rule of a policy named by its id
/// (`node-ip`: what `lkguard policies` prints first on each line). `Err`
/// says what there is instead, with the nearest id.
pub fn explain(registry: &Registry, id: &str) -> Result<String, String> {
    let rules: Vec<_> = match (registry.rule(id), registry.get(id)) {
        (Some((policy, info)), _) => vec![(policy, info)],
        (None, Some(policy)) => policy.metadata.rules.iter().map(|r| (policy, r)).collect(),
        (None, None) => {
            let known = registry.policies.iter().flat_map(|p| {
                std::iter::once(p.id()).chain(p.metadata.rules.iter().map(|r| r.id.as_str()))
            });
            let guess = crate::suggest::nearest(known, id)
                .map(|n| format!("; did you mean `{n}`?"))
                .unwrap_or_else(|| "; `lkguard policies` lists them".into());
            return Err(format!("no rule or policy `{id}`{guess}"));
        }
    };
    let mut out = String::new();
    for (policy, info) in rules {
        let _ = writeln!(out, "{}: {}\n", info.id, info.summary);
        let _ = writeln!(out, "{}\n", wrap(&info.rationale, 80));
        let _ = writeln!(
            out,
            "policy: {} {} ({})",
            policy.metadata.id, policy.metadata.version, policy.source
        );
    }
    Ok(out)
}

/// Wraps on spaces; rationales are written as one paragraph.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in text.split_whitespace() {
        if line > 0 && line + 1 + word.len() > width {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += word.len();
    }
    out
}
