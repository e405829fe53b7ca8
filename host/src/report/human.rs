//! The terminal format: one miette diagnostic per finding, with the source
//! snippet (secrets masked) at the `file:line:col` to edit.

use std::collections::HashMap;
use std::fmt::Write as _;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, MietteError,
    MietteSpanContents, Report, SourceCode, SourceSpan, SpanContents,
};

use crate::check::Outcome;
use crate::exempt::Via;
use crate::model::Severity;
use crate::redact;

/// Width fixed so output does not depend on the terminal (and snapshots hold).
const WIDTH: usize = 100;

/// Lines of source shown around a finding.
const CONTEXT: usize = 2;

/// The lines of a file's masked text around one finding, as miette's own
/// reader would show them from the whole file. Handing miette the whole
/// file made every finding copy and rescan it: 4,000 findings in one file
/// took 4 s, growing with the square of the count.
struct Window {
    name: String,
    text: String,
    /// Where `text` starts in the file: byte offset and 0-based line.
    offset: usize,
    first_line: usize,
}

impl Window {
    fn around(file: &crate::load::SourceFile, masked: &str, offset: usize, len: usize) -> Self {
        let starts = file.line_starts();
        let line_of = |at: usize| starts.partition_point(|&s| s <= at).saturating_sub(1);
        // One line more than the context on each side, so miette's reader
        // sees the same neighbourhood as in the whole file.
        let first_line = line_of(offset).saturating_sub(CONTEXT + 1);
        let last_line = line_of(offset + len) + CONTEXT + 1;
        let from = starts[first_line];
        let to = starts
            .get(last_line + 1)
            .map_or(masked.len(), |&e| e)
            .min(masked.len());
        Window {
            name: file.name.clone(),
            text: masked.get(from..to).unwrap_or_default().to_string(),
            offset: from,
            first_line,
        }
    }
}

impl SourceCode for Window {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let local = span
            .offset()
            .checked_sub(self.offset)
            .ok_or(MietteError::OutOfBounds)?;
        let c = self.text.as_bytes().read_span(
            &SourceSpan::new(local.into(), span.len()),
            context_lines_before,
            context_lines_after,
        )?;
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            c.data(),
            SourceSpan::new((c.span().offset() + self.offset).into(), c.span().len()),
            c.line() + self.first_line,
            c.column(),
            c.line_count() + self.first_line,
        )))
    }
}

pub fn render(outcome: &Outcome, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(WIDTH)
        .with_context_lines(CONTEXT);
    let loaded = &outcome.loaded;
    let mut masked: HashMap<usize, String> = HashMap::new();
    let mut out = String::new();

    for e in &loaded.errors {
        let _ = writeln!(out, "error[input]: {e}");
        if let Some(help) = miette::Diagnostic::help(e) {
            let _ = writeln!(out, "  help: {help}");
        }
        let _ = writeln!(out);
    }
    for f in &outcome.failures {
        let _ = writeln!(out, "error[policy]: policy {} {}\n", f.policy, f.message);
    }
    for l in &outcome.findings {
        let f = &l.finding;
        let mut what = describe(outcome, f.resource);
        // A finding in a render: say which overlay(s), since the file shown
        // may be a base that several overlays share.
        if let (Some(crate::load::Place::Rendered { .. }), Some(r)) = (
            loaded.places.get(f.resource as usize),
            loaded.batch.resources.get(f.resource as usize),
        ) {
            let origin = &loaded.batch.origins[r.origin as usize].name;
            what = format!(
                "{what} in {}",
                [origin]
                    .into_iter()
                    .chain(&l.also_in)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let mut diag = MietteDiagnostic::new(f.message.clone())
            .with_code(f.rule.clone())
            .with_severity(match f.severity {
                Severity::Error => miette::Severity::Error,
                Severity::Warning => miette::Severity::Warning,
            });
        if let Some(h) = &f.hint {
            diag = diag.with_help(h.clone());
        }
        let report = match l.location {
            Some(p) => {
                let label = if p.exact {
                    what
                } else {
                    format!("{what} (nearest existing field)")
                };
                diag = diag.with_label(LabeledSpan::at(p.offset..p.offset + p.len, label));
                let file = &loaded.files[p.file];
                let text = masked.entry(p.file).or_insert_with(|| redact::masked(file));
                Report::new(diag).with_source_code(Window::around(file, text, p.offset, p.len))
            }
            None => Report::new(diag.with_help(format!("{what}, at {}", f.path))),
        };
        let _ = handler.render_report(&mut out, report.as_ref());
        out.push('\n');
    }

    if !outcome.exempted.is_empty() {
        let _ = writeln!(
            out,
            "exempted ({}), reported so they are revisited:",
            outcome.exempted.len()
        );
        for x in &outcome.exempted {
            let l = &x.located;
            let at = l
                .location
                .map(|p| format!("{}:{}:{}", loaded.files[p.file].name, p.line, p.col))
                .unwrap_or_else(|| l.finding.path.clone());
            let (source, until) = match &x.via {
                Via::Config { location, expires } => (
                    location.map_or("lkguard.yaml".to_string(), |p| {
                        format!("{}:{}", loaded.files[p.file].name, p.line)
                    }),
                    format!(", until {expires}"),
                ),
                Via::Annotation { location } => (
                    location.map_or("annotation".to_string(), |p| {
                        format!("annotation at {}:{}", loaded.files[p.file].name, p.line)
                    }),
                    String::new(),
                ),
            };
            let _ = writeln!(
                out,
                "  {} {} at {at}\n    reason: {} ({source}{until})",
                l.finding.rule,
                describe(outcome, l.finding.resource),
                x.reason
            );
        }
        out.push('\n');
    }

    let files = loaded.checked_files();
    let resources = loaded.batch.resources.len();
    // A pass is a claim about the tree: say what was examined, renders
    // included, so "ok" never hides an overlay that was not rendered.
    let renders = match loaded.renders.len() {
        0 => String::new(),
        n => format!("{n} {}, ", plural(n, "render", "renders")),
    };
    let scope = format!(
        "{} {}, {renders}{resources} {} in {files} {}",
        outcome.policies,
        plural(outcome.policies, "policy", "policies"),
        plural(resources, "resource", "resources"),
        plural(files, "file", "files"),
    );
    let mut scope = scope;
    if !outcome.exempted.is_empty() {
        scope.push_str(&format!(", {} exempted", outcome.exempted.len()));
    }
    if outcome.off > 0 {
        scope.push_str(&format!(
            ", {} {} of rules turned off in lkguard.yaml",
            outcome.off,
            plural(outcome.off, "finding", "findings")
        ));
    }
    // What the scope leaves out, so a pass is not read as more than it is.
    let mut notes = Vec::new();
    if outcome.livekit_servers == Some(0) && resources > 0 {
        notes.push(format!(
            "no LiveKit server found in {resources} {}: no container runs livekit/livekit-server (or the image and container the settings name), so the LiveKit rules had nothing to judge; is this the directory that deploys it?",
            plural(resources, "resource", "resources")
        ));
    }
    if !outcome.not_selected.is_empty() {
        notes.push(format!(
            "lkguard.yaml's policies: list leaves out {} embedded {}: {} (remove the list to run every one)",
            outcome.not_selected.len(),
            plural(outcome.not_selected.len(), "policy", "policies"),
            outcome.not_selected.join(", ")
        ));
    }
    let excluded: Vec<&crate::load::skip::Skipped> = loaded
        .skipped_paths
        .iter()
        .filter(|s| matches!(s, crate::load::skip::Skipped::Excluded { .. }))
        .collect();
    for s in &loaded.skipped_paths {
        if matches!(s, crate::load::skip::Skipped::HelmChart { .. }) || excluded.len() <= 3 {
            notes.push(s.describe());
        }
    }
    if excluded.len() > 3 {
        let shown: Vec<String> = excluded[..3].iter().map(|s| s.describe()).collect();
        notes.push(format!(
            "{} and {} more paths excluded by lkguard.yaml's exclude: (--format json lists them)",
            shown.join("; "),
            excluded.len() - 3
        ));
    }
    for note in &notes {
        let _ = writeln!(out, "note: {note}");
    }
    let problems = outcome.failures.len() + loaded.errors.len();
    if outcome.findings.is_empty() && problems == 0 {
        if files == 0 && !loaded.skipped_paths.is_empty() {
            let _ = writeln!(
                out,
                "ok: nothing left to check once the paths above were skipped"
            );
        } else if files == 0 {
            let _ = writeln!(out, "no YAML files found to check");
        } else if resources == 0 {
            // Not a pass of anything: say which files held nothing to check
            // (an emptied manifest, a YAML file of another tool).
            let names: Vec<&str> = loaded.files.iter().map(|f| f.name.as_str()).collect();
            let shown = match names.len() {
                n if n <= 3 => names.join(", "),
                n => format!("{} and {} more", names[..3].join(", "), n - 3),
            };
            let _ = writeln!(out, "no Kubernetes objects found in {shown} ({scope})");
        } else {
            let _ = writeln!(out, "ok: no findings ({scope})");
        }
    } else {
        let (e, w) = (outcome.errors(), outcome.warnings());
        let _ = write!(
            out,
            "{e} {}, {w} {}",
            plural(e, "error", "errors"),
            plural(w, "warning", "warnings")
        );
        if problems > 0 {
            let _ = write!(
                out,
                ", {problems} {} that stopped a check",
                plural(problems, "failure", "failures")
            );
        }
        let _ = writeln!(out, " ({scope})");
    }
    out
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// `Kind namespace/name` of a finding's resource; lkguard's own findings
/// (about `lkguard.yaml`) have none.
fn describe(outcome: &Outcome, resource: u32) -> String {
    match outcome.loaded.batch.resources.get(resource as usize) {
        Some(r) => match &r.namespace {
            Some(ns) => format!("{} {ns}/{}", r.kind, r.name),
            None => format!("{} {}", r.kind, r.name),
        },
        None => "lkguard.yaml".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The window renders exactly what miette renders from the whole file:
    /// at the first and last lines, in the middle, on a span over several
    /// lines, and without a final newline.
    #[test]
    fn a_window_renders_as_the_whole_file_does() {
        let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
            .with_width(WIDTH)
            .with_context_lines(CONTEXT);
        for text in [
            (0..30)
                .map(|i| format!("key{i}: value {i}\n"))
                .collect::<String>(),
            (0..30)
                .map(|i| format!("key{i}: value {i}\n"))
                .collect::<String>()
                + "last: x",
            "only: line".to_string(),
        ] {
            let file = crate::load::SourceFile::new("f.yaml".into(), text.clone(), Vec::new());
            let starts = file.line_starts().to_vec();
            let mut spans: Vec<(usize, usize)> = starts.iter().map(|&s| (s, 3)).collect();
            spans.push((starts[starts.len() / 2], text.len() / 4));
            spans.push((text.len().saturating_sub(2), 1));
            for (offset, len) in spans {
                let render = |report: Report| {
                    let mut out = String::new();
                    handler.render_report(&mut out, report.as_ref()).unwrap();
                    out
                };
                let diag = || {
                    Report::new(
                        MietteDiagnostic::new("m")
                            .with_label(LabeledSpan::at(offset..offset + len, "here")),
                    )
                };
                let whole = render(
                    diag().with_source_code(miette::NamedSource::new("f.yaml", text.clone())),
                );
                let window =
                    render(diag().with_source_code(Window::around(&file, &text, offset, len)));
                assert_eq!(window, whole, "span {offset}+{len} of {text:?}");
            }
        }
    }
}
