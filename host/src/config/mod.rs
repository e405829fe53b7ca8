//! `lkguard.yaml`: the repository's choice of policies, their settings,
//! severity overrides, limits and exemptions.
//!
//! Validated against a schema lkguard ships (`lkguard config schema` prints
//! it for editors) before anything in it is used; a mistake is a diagnostic
//! at its line, never a silently ignored key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use miette::{LabeledSpan, NamedSource};
use serde_json::Value;

use crate::load::documents;
use crate::load::spans::SpanIndex;

pub const FILE_NAME: &str = "lkguard.yaml";
const SCHEMA: &str = include_str!("schema.json");

/// The JSON Schema of `lkguard.yaml`.
pub fn schema() -> &'static str {
    SCHEMA
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyRef {
    Embedded(String),
    File { path: PathBuf, sha256: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeverityOverride {
    Error,
    Warning,
    Off,
}

#[derive(Debug, Clone)]
pub struct Exemption {
    /// Index in the `exemptions` list (for its JSON pointer).
    pub index: usize,
    pub rule: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    /// The overlay directory it is limited to, resolved against the file.
    pub overlay: Option<PathBuf>,
    pub reason: String,
    pub expires: time::Date,
}

impl Exemption {
    /// Whether it names this resource; one without `resource` covers every
    /// resource (of its overlay).
    pub fn covers(&self, kind: &str, name: &str) -> bool {
        (self.kind.is_empty() || self.kind == kind) && (self.name.is_empty() || self.name == name)
    }

    pub fn describe(&self) -> String {
        match (&self.overlay, self.kind.is_empty()) {
            (Some(o), true) => format!("overlay {}", o.display()),
            _ => format!("{} {}", self.kind, self.name),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// As the user sees it.
    pub name: String,
    pub dir: PathBuf,
    pub text: String,
    pub spans: SpanIndex,
    pub policies: Option<Vec<PolicyRef>>,
    pub settings: BTreeMap<String, Value>,
    pub severity: BTreeMap<String, SeverityOverride>,
    pub deadline_ms: Option<u64>,
    pub memory_mib: Option<usize>,
    pub exemptions: Vec<Exemption>,
    /// `exclude:` globs, relative to `dir`.
    pub exclude: Vec<String>,
}

impl Config {
    /// The `exclude:` globs, compiled (they were checked when loaded).
    pub fn exclude(&self) -> crate::load::skip::Exclude {
        crate::load::skip::Exclude::new(&self.dir, &self.exclude).unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    #[diagnostic(code(lkguard::config))]
    Io { path: String, message: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Box<Invalid>),
}

/// Boxed: a diagnostic carries the whole file for its snippet.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{name} is not valid: {summary}")]
#[diagnostic(
    code(lkguard::config),
    help("`lkguard config schema` prints the schema; point your editor's YAML support at it")
)]
pub struct Invalid {
    pub name: String,
    pub summary: String,
    #[source_code]
    pub src: NamedSource<String>,
    #[label(collection)]
    pub labels: Vec<LabeledSpan>,
}

impl Config {
    /// A diagnostic at each pointer's line of this file: for what only the
    /// loaded policies can judge (settings against their schemas, rule ids).
    pub fn invalid(&self, mut problems: Vec<(String, String)>) -> ConfigError {
        problems.sort();
        let located: Vec<(usize, String)> = problems
            .into_iter()
            .map(|(pointer, message)| {
                let offset = self
                    .spans
                    .locate(&pointer)
                    .map_or(0, |(s, _)| s.anchor().offset);
                (offset, message)
            })
            .collect();
        invalid_at(&self.name, &self.text, located)
    }
}

fn invalid_at(name: &str, text: &str, problems: Vec<(usize, String)>) -> ConfigError {
    let summary = if problems.len() == 1 {
        problems[0].1.clone()
    } else {
        format!("{} problems", problems.len())
    };
    ConfigError::Invalid(Box::new(Invalid {
        name: name.to_string(),
        summary,
        src: NamedSource::new(name, text.to_string()),
        labels: problems
            .into_iter()
            .map(|(offset, m)| LabeledSpan::at(offset..offset + line_len(text, offset), m))
            .collect(),
    }))
}

/// The nearest `lkguard.yaml` at or above `start` (a file or directory).
pub fn discover(start: &Path) -> Option<PathBuf> {
    let abs = start.canonicalize().ok()?;
    let dir = if abs.is_dir() {
        abs
    } else {
        abs.parent()?.to_path_buf()
    };
    dir.ancestors()
        .map(|d| d.join(FILE_NAME))
        .find(|p| p.is_file())
}

pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let name = crate::load::display_path(&path.canonicalize().unwrap_or(path.to_path_buf()));
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        path: name.clone(),
        message: e.to_string(),
    })?;
    let invalid = |problems: Vec<(usize, String)>| invalid_at(&name, &text, problems);
    let docs = documents::parse(&text).map_err(|e| invalid(vec![(e.offset, e.message)]))?;
    let doc = docs.into_iter().next().unwrap_or_default();
    let value = if doc.value.is_null() {
        Value::Object(Default::default())
    } else {
        doc.value
    };
    // A wrong value is shown at the value, an unknown key at the key.
    let at = |pointer: &str| doc.spans.locate(pointer).map_or(0, |(s, _)| s.value.offset);
    let at_key = |pointer: &str| {
        doc.spans
            .locate(pointer)
            .map_or(0, |(s, _)| s.anchor().offset)
    };

    let schema: Value = serde_json::from_str(SCHEMA).expect("the shipped schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the shipped schema is valid");
    let mut problems: Vec<(usize, String)> = validator
        .iter_errors(&value)
        .flat_map(|e| {
            let pointer = e.instance_path().to_string();
            // An unknown key is shown at its own line, not its parent's.
            match e.kind() {
                jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                    unexpected
                        .iter()
                        .map(|k| {
                            (
                                at_key(&lkguard_policy_sdk::pointer::push(&pointer, k)),
                                unexpected_key(&schema, &pointer, k),
                            )
                        })
                        .collect::<Vec<_>>()
                }
                _ => vec![(at(&pointer), e.to_string())],
            }
        })
        .collect();
    if !problems.is_empty() {
        problems.sort();
        return Err(invalid(problems));
    }

    let dir = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let policies = value.get("policies").and_then(Value::as_array).map(|list| {
        list.iter()
            .map(|p| match s(p, "id") {
                Some(id) => PolicyRef::Embedded(id),
                None => PolicyRef::File {
                    path: dir.join(s(p, "path").unwrap_or_default()),
                    sha256: s(p, "sha256").unwrap_or_default(),
                },
            })
            .collect()
    });
    let settings = value
        .get("settings")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let severity = value
        .get("severity")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let level = match v.as_str() {
                        Some("warning") => SeverityOverride::Warning,
                        Some("off") => SeverityOverride::Off,
                        _ => SeverityOverride::Error,
                    };
                    (k.clone(), level)
                })
                .collect()
        })
        .unwrap_or_default();
    let limit = |k: &str| {
        value
            .pointer(&format!("/limits/{k}"))
            .and_then(Value::as_u64)
    };

    let format = time::macros::format_description!("[year]-[month]-[day]");
    let mut exemptions = Vec::new();
    for (index, e) in value
        .get("exemptions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let raw = s(e, "expires").unwrap_or_default();
        let expires = match time::Date::parse(&raw, &format) {
            Ok(d) => d,
            Err(_) => {
                problems.push((
                    at(&format!("/exemptions/{index}/expires")),
                    format!("`{raw}` is not a calendar date (YYYY-MM-DD)"),
                ));
                continue;
            }
        };
        exemptions.push(Exemption {
            index,
            rule: s(e, "rule").unwrap_or_default(),
            kind: e
                .pointer("/resource/kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .into(),
            name: e
                .pointer("/resource/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .into(),
            namespace: e
                .pointer("/resource/namespace")
                .and_then(Value::as_str)
                .map(str::to_string),
            overlay: s(e, "overlay").map(|o| {
                let joined = dir.join(&o);
                joined.canonicalize().unwrap_or(joined)
            }),
            reason: s(e, "reason").unwrap_or_default(),
            expires,
        });
    }
    let exclude: Vec<String> = value
        .get("exclude")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    if let Err(bad) = crate::load::skip::Exclude::new(&dir, &exclude) {
        problems.extend(
            bad.into_iter()
                .map(|b| (at(&format!("/exclude/{}", b.index)), b.message)),
        );
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    Ok(Config {
        exclude,
        name,
        dir,
        text,
        spans: doc.spans,
        policies,
        settings,
        severity,
        deadline_ms: limit("deadline_ms"),
        memory_mib: limit("memory_mib").map(|m| m as usize),
        exemptions,
    })
}

/// "`polices` is not a key of lkguard.yaml; did you mean `policies`?"
fn unexpected_key(schema: &Value, pointer: &str, key: &str) -> String {
    // The schema's own keys at this place: the top level and `limits`
    // have fixed ones; elsewhere (list items) none are guessed.
    let known = match pointer {
        "" => schema.get("properties"),
        "/limits" => schema.pointer("/properties/limits/properties"),
        _ => None,
    };
    let place = if pointer.is_empty() {
        "lkguard.yaml".to_string()
    } else {
        format!("`{}`", pointer.trim_start_matches('/').replace('/', "."))
    };
    let guess = known
        .and_then(Value::as_object)
        .and_then(|k| crate::suggest::nearest(k.keys().map(String::as_str), key))
        .map(|n| format!("; did you mean `{n}`?"))
        .unwrap_or_default();
    format!("`{key}` is not a key of {place}{guess}")
}

/// From `offset` to the end of its line, at least one byte.
fn line_len(text: &str, offset: usize) -> usize {
    text.get(offset..)
        .and_then(|t| t.split('\n').next())
        .map_or(1, |l| l.trim_end().len().max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_full_config_loads() {
        let (_d, path) = write(
            "policies:\n  - id: node-ip\n  - path: extra/p.wasm\n    sha256: \"0000000000000000000000000000000000000000000000000000000000000000\"\n\
             settings:\n  rtc-service: {udp_port: 3478}\n\
             severity:\n  livekit/image-digest: warning\n  livekit/rtc-service: off\n\
             limits: {deadline_ms: 2000, memory_mib: 64}\n\
             exemptions:\n  - rule: livekit/node-ip\n    resource: {kind: Deployment, namespace: memql, name: livekit}\n    overlay: deploy/k8s/overlays/dev\n    reason: kind cluster has no LoadBalancer\n    expires: 2031-01-31\n",
        );
        let c = load(&path).unwrap();
        assert_eq!(c.policies.as_ref().unwrap().len(), 2);
        assert_eq!(
            c.policies.as_ref().unwrap()[0],
            PolicyRef::Embedded("node-ip".into())
        );
        assert_eq!(c.settings["rtc-service"]["udp_port"], 3478);
        assert_eq!(c.severity["livekit/rtc-service"], SeverityOverride::Off);
        assert_eq!((c.deadline_ms, c.memory_mib), (Some(2000), Some(64)));
        assert_eq!(c.exemptions[0].expires.to_string(), "2031-01-31");
        assert!(c.exemptions[0]
            .overlay
            .as_ref()
            .unwrap()
            .ends_with("deploy/k8s/overlays/dev"));
    }

    #[test]
    fn mistakes_point_at_their_line() {
        let (_d, path) = write(
            "severity:\n  livekit/node-ip: fatal\nexemptions:\n  - rule: livekit/node-ip\n    resource: {kind: Deployment, name: livekit}\n    reason: because\n    expires: 2031-02-30\n",
        );
        let ConfigError::Invalid(invalid) = load(&path).unwrap_err() else {
            panic!("not Invalid")
        };
        let Invalid {
            labels, summary, ..
        } = *invalid;
        assert!(summary.contains("fatal"), "{summary}");
        assert_eq!(labels.len(), 1);
        let text = std::fs::read_to_string(&path).unwrap();
        let (line, _) = crate::load::line_col(&text, labels[0].offset());
        assert_eq!(line, 2);

        let (_d, path) = write(
            "exemptions:\n  - rule: livekit/node-ip\n    resource: {kind: Deployment, name: livekit}\n    reason: because\n    expires: 2031-02-30\n",
        );
        let ConfigError::Invalid(invalid) = load(&path).unwrap_err() else {
            panic!("not Invalid")
        };
        let labels = invalid.labels;
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(crate::load::line_col(&text, labels[0].offset()).0, 5);

        let (_d, path) = write("polices: []\n");
        assert!(matches!(load(&path), Err(ConfigError::Invalid(_))));
        let (_d, path) = write("exemptions:\n  - rule: livekit/node-ip\n");
        assert!(matches!(load(&path), Err(ConfigError::Invalid(_))));
    }

    #[test]
    fn the_nearest_file_up_the_tree_is_found() {
        let (d, path) = write("{}\n");
        let deep = d.path().join("deploy/k8s/base");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(discover(&deep), Some(path.canonicalize().unwrap()));
    }
}
