//! Sources -> a batch of resources, remembering where each came from.

pub mod documents;
pub mod inputs;
pub mod skip;
pub mod spans;
pub mod typed;

pub use inputs::{
    display_path, list_items, load, resource, LoadOptions, Loaded, Place, Render, SourceFile,
};

/// Input that could not be turned into objects. Shown as `file:line:col:
/// message` with no source snippet: a file that does not parse cannot be
/// redacted, and its neighbouring lines may hold a secret.
#[derive(Debug, Clone, thiserror::Error, miette::Diagnostic)]
pub enum LoadError {
    #[error("{file}: {message}")]
    #[diagnostic(code(lkguard::io))]
    Io { file: String, message: String },
    #[error("{file}: {size} bytes is over the {limit}-byte limit for one file")]
    #[diagnostic(code(lkguard::too_large))]
    TooLarge {
        file: String,
        size: usize,
        limit: usize,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Render(#[from] crate::kustomize::RenderError),
    #[error("{file}:{line}:{col}: {message}")]
    #[diagnostic(code(lkguard::invalid_yaml))]
    Syntax {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
}

impl LoadError {
    pub fn syntax(file: &str, text: &str, offset: usize, message: String) -> Self {
        let (line, col) = line_col(text, offset);
        LoadError::Syntax {
            file: file.to_string(),
            line,
            col,
            message,
        }
    }

    pub fn file(&self) -> &str {
        match self {
            LoadError::Io { file, .. }
            | LoadError::TooLarge { file, .. }
            | LoadError::Syntax { file, .. } => file,
            LoadError::Render(crate::kustomize::RenderError::Failed { root, .. }) => root,
            LoadError::Render(crate::kustomize::RenderError::NotFound) => "kustomize",
        }
    }
}

/// 1-based line and character column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut start = offset;
    while start > 0 && !text.is_char_boundary(start) {
        start -= 1;
    }
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_line_index_agrees_with_counting_from_the_start() {
        let text = "a: 1\n\nb: \"é✓\"\n  c: x\r\nlast";
        let file = SourceFile::new("f.yaml".into(), text.into(), Vec::new());
        for offset in 0..=text.len() + 2 {
            assert_eq!(
                file.line_col(offset),
                line_col(text, offset),
                "offset {offset}"
            );
        }
    }
}
