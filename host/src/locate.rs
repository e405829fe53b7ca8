//! A finding's JSON pointer -> the place in the file a person must edit.

use serde_json::Value;

use crate::load::spans::{self, Mark, NodeSpan, Style};
use crate::load::{Loaded, Place, SourceFile};
use crate::model::Finding;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub file: usize,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
    /// Byte offset and length of what to underline.
    pub offset: usize,
    pub len: usize,
    /// False when the pointer named a missing field and this is its nearest
    /// existing ancestor, or an embedded position could not be mapped.
    pub exact: bool,
}

/// Byte offsets of line starts, for line/column -> offset.
pub struct Lines<'t> {
    text: &'t str,
    starts: std::borrow::Cow<'t, [usize]>,
}

impl<'t> Lines<'t> {
    pub fn new(text: &'t str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines {
            text,
            starts: starts.into(),
        }
    }

    /// A loaded file's lines, counted once for all its findings.
    pub fn of(file: &'t SourceFile) -> Self {
        Lines {
            text: &file.text,
            starts: file.line_starts().into(),
        }
    }

    pub fn line(&self, line: usize) -> Option<&'t str> {
        let start = *self.starts.get(line.checked_sub(1)?)?;
        let end = self.starts.get(line).map_or(self.text.len(), |e| e - 1);
        self.text.get(start..end)
    }

    /// The byte offset of a 1-based line and character column.
    pub fn offset(&self, line: usize, col: usize) -> Option<usize> {
        let start = *self.starts.get(line.checked_sub(1)?)?;
        let text = self.line(line)?;
        let within = text
            .char_indices()
            .nth(col.saturating_sub(1))
            .map_or(text.len(), |(i, _)| i);
        Some(start + within)
    }

    /// From `offset` to the end of its line, without trailing blanks.
    pub fn rest_of_line(&self, offset: usize) -> usize {
        let tail = self.text.get(offset..).unwrap_or_default();
        let line = tail.split('\n').next().unwrap_or_default();
        line.trim_end().len().max(1)
    }
}

/// Maps a position inside an embedded document onto the outer file.
///
/// yaml-rust2 marks a block scalar at its first non-blank text line, while
/// the text keeps leading blank lines; count them back to find text line 1.
/// Block scalars keep lines and indentation, so the rest is arithmetic.
pub fn embedded_mark(outer: &NodeSpan, text: &str, inner: Mark) -> Option<(usize, usize)> {
    if outer.style != Style::Block {
        return None;
    }
    let leading_blank = text.chars().take_while(|c| *c == '\n').count();
    let first = outer.value.line.checked_sub(leading_blank)?;
    Some((first + inner.line - 1, outer.value.col - 1 + inner.col))
}

/// The embedded document at `path` (a string holding YAML) and its spans.
pub fn embedded_spans(doc_value: &Value, path: &str) -> Option<spans::SpanIndex> {
    let text = doc_value.pointer(path)?.as_str()?;
    spans::index(text).ok()?.into_iter().next()
}

pub fn locate(loaded: &Loaded, finding: &Finding) -> Option<Location> {
    match *loaded.places.get(finding.resource as usize)? {
        Place::File {
            file,
            document,
            item,
        } => {
            let pointer = match item {
                Some(i) => format!("/items/{i}{}", finding.path),
                None => finding.path.clone(),
            };
            in_document(
                loaded,
                file,
                document,
                &pointer,
                finding.embedded_path.as_deref(),
            )
        }
        Place::Rendered { render, object } => {
            crate::kustomize::source::locate(loaded, render, object, finding)
        }
    }
}

/// The place of `pointer` (and `embedded`, a pointer inside the YAML string
/// at `pointer`) in one document of a loaded file.
pub fn in_document(
    loaded: &Loaded,
    file_index: usize,
    document: usize,
    pointer: &str,
    embedded: Option<&str>,
) -> Option<Location> {
    let file: &SourceFile = loaded.files.get(file_index)?;
    let doc = file.documents.get(document)?;
    let lines = Lines::of(file);
    let (span, mut exact) = doc.spans.locate(pointer)?;
    let mut offset = span.anchor().offset;

    if let Some(inner_path) = embedded {
        let inner = exact
            .then(|| embedded_spans(&doc.value, pointer))
            .flatten()
            .and_then(|idx| {
                let (s, inner_exact) = match idx.locate(inner_path) {
                    Some((s, e)) => (s.anchor(), e),
                    None => (idx.start?, false),
                };
                let text = doc.value.pointer(pointer)?.as_str()?;
                let (line, col) = embedded_mark(span, text, s)?;
                Some((lines.offset(line, col)?, inner_exact))
            });
        match inner {
            Some((o, e)) => {
                offset = o;
                exact = e;
            }
            None => exact = false,
        }
    }
    let (line, col) = file.line_col(offset);
    Some(Location {
        file: file_index,
        line,
        col,
        offset,
        len: lines.rest_of_line(offset),
        exact,
    })
}
