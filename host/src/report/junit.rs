//! `--format junit`: one testcase per (policy, origin), so a CI test view
//! shows which policy failed for which overlay or file; each error finding is
//! a `<failure>` with its message and location. Warnings do not fail a
//! testcase; they are listed in its `<system-out>`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::check::{Located, Outcome};
use crate::model::Severity;

pub fn render(outcome: &Outcome) -> String {
    let loaded = &outcome.loaded;
    let policies: Vec<&str> = {
        let mut seen: Vec<&str> = Vec::new();
        for (p, _) in &outcome.rules {
            // lkguard's own rules are about lkguard.yaml, not an overlay.
            if p != "lkguard" && !seen.contains(&p.as_str()) {
                seen.push(p);
            }
        }
        seen
    };
    let origins: Vec<&str> = loaded
        .batch
        .origins
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    // (policy, origin) -> findings; lkguard's own findings (exemptions) go
    // to one testcase of their own.
    let mut cases: BTreeMap<(usize, usize), Vec<&Located>> = BTreeMap::new();
    for (pi, _) in policies.iter().enumerate() {
        for (oi, _) in origins.iter().enumerate() {
            cases.insert((pi, oi), Vec::new());
        }
    }
    let mut unplaced: Vec<&Located> = Vec::new();
    for l in &outcome.findings {
        let origin = loaded
            .batch
            .resources
            .get(l.finding.resource as usize)
            .map(|r| r.origin as usize);
        match (policies.iter().position(|p| *p == l.policy), origin) {
            (Some(pi), Some(oi)) => cases.entry((pi, oi)).or_default().push(l),
            _ => unplaced.push(l),
        }
    }
    let failures = |ls: &[&Located]| {
        ls.iter()
            .filter(|l| l.finding.severity == Severity::Error)
            .count()
    };
    let total_failures: usize =
        cases.values().map(|v| failures(v)).sum::<usize>() + failures(&unplaced);
    let errors = loaded.errors.len() + outcome.failures.len();
    let tests = cases.len() + usize::from(!unplaced.is_empty()) + errors;

    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"lkguard\" tests=\"{tests}\" failures=\"{total_failures}\" errors=\"{errors}\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"lkguard\" tests=\"{tests}\" failures=\"{total_failures}\" errors=\"{errors}\" skipped=\"0\">"
    );
    for ((pi, oi), ls) in &cases {
        case(&mut out, outcome, policies[*pi], origins[*oi], ls);
    }
    if !unplaced.is_empty() {
        case(&mut out, outcome, "lkguard", "its configuration", &unplaced);
    }
    for e in &loaded.errors {
        let _ = writeln!(
            out,
            "    <testcase classname=\"lkguard.input\" name=\"{}\">\n      <error message=\"{}\"/>\n    </testcase>",
            escape(e.file()),
            escape(&e.to_string())
        );
    }
    for f in &outcome.failures {
        let _ = writeln!(
            out,
            "    <testcase classname=\"{}\" name=\"policy {}\">\n      <error message=\"{}\"/>\n    </testcase>",
            escape(&f.policy),
            escape(&f.policy),
            escape(&format!("policy {} {}", f.policy, f.message))
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn case(out: &mut String, outcome: &Outcome, policy: &str, origin: &str, ls: &[&Located]) {
    let loaded = &outcome.loaded;
    let _ = write!(
        out,
        "    <testcase classname=\"{}\" name=\"{}\"",
        escape(policy),
        escape(&format!("{policy} on {origin}"))
    );
    if ls.is_empty() {
        out.push_str("/>\n");
        return;
    }
    out.push_str(">\n");
    let mut warnings = String::new();
    for l in ls {
        let at = l
            .location
            .map(|p| format!("{}:{}:{}", loaded.files[p.file].name, p.line, p.col))
            .unwrap_or_else(|| l.finding.path.clone());
        let text = format!("{}: {} at {at}", l.finding.rule, l.finding.message);
        if l.finding.severity == Severity::Error {
            let _ = writeln!(
                out,
                "      <failure type=\"{}\" message=\"{}\">{}</failure>",
                escape(&l.finding.rule),
                escape(&l.finding.message),
                escape(&text)
            );
        } else {
            let _ = writeln!(warnings, "warning {text}");
        }
    }
    if !warnings.is_empty() {
        let _ = writeln!(out, "      <system-out>{}</system-out>", escape(&warnings));
    }
    out.push_str("    </testcase>\n");
}

/// XML text and attribute escaping; control characters XML 1.0 cannot
/// carry are dropped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escaping_keeps_xml_well_formed() {
        assert_eq!(
            super::escape("a<b & \"c\"\n\u{1}"),
            "a&lt;b &amp; &quot;c&quot;&#10;"
        );
    }
}
