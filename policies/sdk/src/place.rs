//! The place in the batch that set a value: what a finding points at.
//!
//! A value livekit-server runs with can come from a line of the embedded
//! livekit.yaml, an env entry, a ConfigMap key read through `envFrom`, or a
//! command-line argument. Rules judge the value and point at whichever of
//! these set it, so the host can name the file (base, patch or overlay) the
//! user must edit.

use crate::model::{Finding, Severity};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// Index of the resource in the batch.
    pub resource: u32,
    /// JSON pointer inside that resource.
    pub path: String,
    /// Pointer inside an embedded document (the livekit.yaml string at `path`).
    pub embedded: Option<String>,
}

impl Place {
    pub fn new(resource: u32, path: impl Into<String>) -> Self {
        Place {
            resource,
            path: path.into(),
            embedded: None,
        }
    }

    pub fn inside(mut self, embedded: impl Into<String>) -> Self {
        self.embedded = Some(embedded.into());
        self
    }

    pub fn finding(&self, rule: &str, severity: Severity, message: impl Into<String>) -> Finding {
        let f = match severity {
            Severity::Error => Finding::error(rule, self.resource, self.path.clone(), message),
            Severity::Warning => Finding::warning(rule, self.resource, self.path.clone(), message),
        };
        match &self.embedded {
            Some(e) => f.embedded(e.clone()),
            None => f,
        }
    }

    pub fn error(&self, rule: &str, message: impl Into<String>) -> Finding {
        self.finding(rule, Severity::Error, message)
    }

    pub fn warning(&self, rule: &str, message: impl Into<String>) -> Finding {
        self.finding(rule, Severity::Warning, message)
    }
}
