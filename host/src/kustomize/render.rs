//! Running kustomize on a root, keeping where each object came from.
//!
//! The root is built through a temporary wrapper kustomization that asks for
//! kustomize's own build metadata (`originAnnotations`: the file an object was
//! read from; `transformerAnnotations`: the kustomization files whose patches,
//! images and namespaces touched it). Those annotations are taken off before
//! any policy or output sees the object.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

const ORIGIN: &str = "config.kubernetes.io/origin";
const TRANSFORMATIONS: &str = "alpha.config.kubernetes.io/transformations";

#[derive(Debug, Clone, thiserror::Error, miette::Diagnostic)]
pub enum RenderError {
    #[error(
        "no kustomize found: kustomize overlays cannot be rendered, so they were not checked \
         (plain manifests still were)"
    )]
    #[diagnostic(
        code(lkguard::kustomize_missing),
        help(
            "install kubectl (it has kustomize built in: `kubectl kustomize`) or the kustomize \
             binary (https://kubectl.docs.kubernetes.io/installation/kustomize/), or name one \
             with --kustomize 'PATH/TO/kustomize build'"
        )
    )]
    NotFound,
    #[error("{root}: kustomize could not render it: {message}")]
    #[diagnostic(code(lkguard::kustomize))]
    Failed { root: String, message: String },
}

/// How to call kustomize: `kustomize build` or `kubectl kustomize`, whichever
/// is on PATH, or the command the user named.
#[derive(Debug, Clone)]
pub struct Renderer {
    program: Vec<String>,
}

/// Where kustomize says an object came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Read from this file.
    File(PathBuf),
    /// Made by a generator (configMapGenerator, ...) in this kustomization.
    Generated(PathBuf),
    /// A remote resource; nothing local to point at.
    Remote,
}

/// One object of a render, build metadata removed.
#[derive(Debug, Clone)]
pub struct RenderedObject {
    pub value: Value,
    pub origin: Option<Origin>,
    /// Kustomization files whose transformers touched the object, outermost
    /// last (the order kustomize applied them).
    pub transformed_by: Vec<PathBuf>,
}

impl Renderer {
    pub fn find(choice: Option<&str>) -> Result<Renderer, RenderError> {
        if let Some(cmd) = choice {
            let program: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
            if program.is_empty() {
                return Err(RenderError::NotFound);
            }
            return Ok(Renderer { program });
        }
        if on_path("kustomize") {
            return Ok(Renderer {
                program: vec!["kustomize".into(), "build".into()],
            });
        }
        if on_path("kubectl") {
            return Ok(Renderer {
                program: vec!["kubectl".into(), "kustomize".into()],
            });
        }
        Err(RenderError::NotFound)
    }

    /// Renders the kustomization in `root` (a canonical directory); `name` is
    /// how the user sees it.
    pub fn render(&self, root: &Path, name: &str) -> Result<Vec<RenderedObject>, RenderError> {
        let failed = |message: String| RenderError::Failed {
            root: name.to_string(),
            message,
        };
        let wrapper = tempfile::Builder::new()
            .prefix("lkguard-render-")
            .tempdir()
            .map_err(|e| failed(format!("creating a temporary directory: {e}")))?;
        let wdir = wrapper
            .path()
            .canonicalize()
            .map_err(|e| failed(e.to_string()))?;
        let rel = relative(&wdir, root);
        let text = format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- {}\nbuildMetadata: [originAnnotations, transformerAnnotations]\n",
            serde_json::Value::String(rel.display().to_string())
        );
        std::fs::write(wdir.join("kustomization.yaml"), text)
            .map_err(|e| failed(format!("writing the wrapper kustomization: {e}")))?;
        let out = Command::new(&self.program[0])
            .args(&self.program[1..])
            .arg(&wdir)
            .output()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => RenderError::NotFound,
                _ => failed(format!("running {}: {e}", self.program.join(" "))),
            })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let message = stderr
                .replace(&format!("{}/", rel.display()), &format!("{name}/"))
                .replace(&rel.display().to_string(), name)
                .replace(&wdir.display().to_string(), "<render>");
            return Err(failed(tidy(&message)));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut objects = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(&stdout) {
            let mut value = Value::deserialize(doc)
                .map_err(|e| failed(format!("kustomize printed YAML that does not parse: {e}")))?;
            if value.is_null() {
                continue;
            }
            let (origin, transformed_by) = take_build_metadata(&mut value, &wdir);
            objects.push(RenderedObject {
                value,
                origin,
                transformed_by,
            });
        }
        Ok(objects)
    }
}

/// kubectl prefixes its errors with a klog header; keep kustomize's words.
fn tidy(message: &str) -> String {
    let m = message.trim();
    let m = match m.find("err=\"") {
        Some(i) => m[i + 5..].trim_end_matches('"'),
        None => m.strip_prefix("Error: ").unwrap_or(m),
    };
    m.replace("\\'", "'").replace("\\\"", "\"")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let p = dir.join(program);
            #[cfg(unix)]
            let found = std::fs::metadata(&p).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            });
            #[cfg(not(unix))]
            let found = p.with_extension("exe").is_file() || p.is_file();
            found
        })
    })
}

/// `to` relative to `from` (both absolute): kustomize refuses absolute
/// resource paths.
pub fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for c in &to[common..] {
        out.push(c.as_os_str());
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// `base` joined with a relative path, `..` resolved without touching the disk.
pub fn normalize(base: &Path, rel: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in base.join(rel).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn take_build_metadata(value: &mut Value, wrapper: &Path) -> (Option<Origin>, Vec<PathBuf>) {
    let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) else {
        return (None, Vec::new());
    };
    let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) else {
        return (None, Vec::new());
    };
    let origin = annotations
        .remove(ORIGIN)
        .and_then(|v| v.as_str().map(str::to_string))
        .and_then(|text| serde_yaml::from_str::<Value>(&text).ok())
        .map(|o| {
            let s = |k: &str| o.get(k).and_then(Value::as_str);
            if s("repo").is_some() {
                Origin::Remote
            } else if let Some(p) = s("path") {
                Origin::File(normalize(wrapper, p))
            } else if let Some(p) = s("configuredIn") {
                Origin::Generated(normalize(wrapper, p))
            } else {
                Origin::Remote
            }
        });
    let transformed_by = annotations
        .remove(TRANSFORMATIONS)
        .and_then(|v| v.as_str().map(str::to_string))
        .and_then(|text| serde_yaml::from_str::<Vec<Value>>(&text).ok())
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t.get("configuredIn").and_then(Value::as_str))
        .map(|p| normalize(wrapper, p))
        .fold(Vec::new(), |mut acc: Vec<PathBuf>, p| {
            if acc.last() != Some(&p) {
                acc.retain(|q| q != &p);
                acc.push(p);
            }
            acc
        });
    if annotations.is_empty() {
        meta.remove("annotations");
    }
    (origin, transformed_by)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_to_the_common_ancestor() {
        assert_eq!(
            relative(Path::new("/tmp/w"), Path::new("/repo/overlays/staging")),
            PathBuf::from("../../repo/overlays/staging")
        );
        assert_eq!(
            normalize(Path::new("/tmp/w"), "../../repo/base/a.yaml"),
            PathBuf::from("/repo/base/a.yaml")
        );
    }

    #[test]
    fn build_metadata_is_taken_off_the_object() {
        let mut v = serde_json::json!({
            "kind": "ConfigMap",
            "metadata": {"name": "x", "annotations": {
                ORIGIN: "path: ../../repo/base/a.yaml\n",
                TRANSFORMATIONS: "- configuredIn: ../../repo/base/kustomization.yaml\n  configuredBy: {kind: NamespaceTransformer}\n- configuredIn: ../../repo/ov/kustomization.yaml\n  configuredBy: {kind: PatchTransformer}\n- configuredIn: ../../repo/ov/kustomization.yaml\n  configuredBy: {kind: ImageTagTransformer}\n",
            }}
        });
        let (origin, by) = take_build_metadata(&mut v, Path::new("/tmp/w"));
        assert_eq!(origin, Some(Origin::File("/repo/base/a.yaml".into())));
        assert_eq!(
            by,
            [
                PathBuf::from("/repo/base/kustomization.yaml"),
                PathBuf::from("/repo/ov/kustomization.yaml")
            ]
        );
        assert_eq!(v["metadata"], serde_json::json!({"name": "x"}));
    }

    #[test]
    fn kubectl_klog_prefix_is_dropped() {
        let m = "E1127 14:40:02.379826   16647 run.go:72] \"command failed\" err=\"accumulating resources: x\"";
        assert_eq!(tidy(m), "accumulating resources: x");
    }
}
