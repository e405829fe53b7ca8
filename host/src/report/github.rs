//! `--format github`: GitHub Actions workflow commands, one annotation per
//! finding at its file and region, escaped as the runner requires.

use std::fmt::Write as _;

use crate::check::Outcome;
use crate::model::Severity;

pub fn render(outcome: &Outcome) -> String {
    let loaded = &outcome.loaded;
    let root = super::sarif::repository_root();
    let mut out = String::new();
    for e in &loaded.errors {
        let _ = writeln!(out, "::error title=lkguard input::{}", data(&e.to_string()));
    }
    for f in &outcome.failures {
        let _ = writeln!(
            out,
            "::error title=lkguard policy {}::{}",
            property(&f.policy),
            data(&format!("policy {} {}", f.policy, f.message))
        );
    }
    for l in &outcome.findings {
        let f = &l.finding;
        let level = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut props = Vec::new();
        if let Some(p) = l.location {
            let file = &loaded.files[p.file];
            let (end_line, end_col) = file.line_col(p.offset + p.len);
            props.push(format!(
                "file={}",
                property(&super::sarif::uri(&file.name, &root))
            ));
            props.push(format!("line={}", p.line));
            props.push(format!("col={}", p.col));
            props.push(format!("endLine={end_line}"));
            props.push(format!("endColumn={end_col}"));
        }
        props.push(format!("title={}", property(&f.rule)));
        let message = match &f.hint {
            Some(h) => format!("{}\n{h}", f.message),
            None => f.message.clone(),
        };
        let _ = writeln!(out, "::{level} {}::{}", props.join(","), data(&message));
    }
    if !outcome.exempted.is_empty() {
        let _ = writeln!(
            out,
            "::notice title=lkguard exemptions::{}",
            data(&format!(
                "{} finding(s) exempted; see the human or JSON report for reasons",
                outcome.exempted.len()
            ))
        );
    }
    out
}

/// A command's message: `%`, CR and LF escaped.
pub fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A command's property value: also `:` and `,`.
pub fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_command_escaping() {
        assert_eq!(data("50% a\r\nb: c, d"), "50%25 a%0D%0Ab: c, d");
        assert_eq!(property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    }
}
