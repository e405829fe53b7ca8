//! Paths on the command line -> files -> one batch.
//!
//! Each file argument is one origin; each directory argument is one origin,
//! except that a directory holding a kustomization is a kustomize source: its
//! files are not deployable as written (a base lacks per-environment values,
//! an overlay holds only patches), so they form their own non-deployable
//! origin and the patch files listed in the kustomization are not objects.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::documents::{self, Document};
use super::typed;
use super::LoadError;
use crate::model::{Batch, Origin, Resource};

/// Files larger than this are refused rather than parsed.
pub const MAX_FILE_BYTES: usize = 32 << 20;

const KUSTOMIZATION_FILES: &[&str] = &["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// One file read from disk or stdin.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// As shown to the user (relative as given on the command line).
    pub name: String,
    pub text: String,
    pub documents: Vec<Document>,
}

/// Where a resource of the batch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub file: usize,
    pub document: usize,
}

/// Everything loaded: the batch policies see and the way back to the files.
#[derive(Debug, Default)]
pub struct Loaded {
    pub files: Vec<SourceFile>,
    pub batch: Batch,
    /// Parallel to `batch.resources`.
    pub places: Vec<Place>,
    /// Documents that are not Kubernetes objects (no apiVersion/kind).
    pub skipped: usize,
    pub errors: Vec<LoadError>,
}

impl Loaded {
    fn origin(&mut self, name: String, deployable: bool) -> u32 {
        if let Some(i) = self.batch.origins.iter().position(|o| o.name == name) {
            return i as u32;
        }
        self.batch.origins.push(Origin {
            name,
            deployable,
            complete: deployable,
        });
        (self.batch.origins.len() - 1) as u32
    }

    fn add_file(&mut self, name: String, bytes: Vec<u8>, origin: u32) {
        if bytes.len() > MAX_FILE_BYTES {
            self.errors.push(LoadError::TooLarge {
                file: name,
                size: bytes.len(),
                limit: MAX_FILE_BYTES,
            });
            return;
        }
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
                self.errors.push(LoadError::syntax(
                    &name,
                    &text,
                    offset,
                    "not UTF-8 text (YAML must be UTF-8)".into(),
                ));
                return;
            }
        };
        let docs = match documents::parse(&text) {
            Ok(d) => d,
            Err(e) => {
                self.errors
                    .push(LoadError::syntax(&name, &text, e.offset, e.message));
                return;
            }
        };
        let file = self.files.len();
        for (d, doc) in docs.iter().enumerate() {
            let Some(resource) = resource(&doc.value, origin) else {
                if !doc.value.is_null() {
                    self.skipped += 1;
                }
                continue;
            };
            if let Err(e) = typed::check(&doc.value) {
                let at = doc
                    .spans
                    .locate(&e.pointer)
                    .map(|(s, _)| s.anchor().offset)
                    .unwrap_or(0);
                self.errors
                    .push(LoadError::syntax(&name, &text, at, e.message));
                continue;
            }
            self.batch.resources.push(resource);
            self.places.push(Place { file, document: d });
        }
        self.files.push(SourceFile {
            name,
            text,
            documents: docs,
        });
    }
}

fn resource(value: &Value, origin: u32) -> Option<Resource> {
    let s = |p: &str| value.pointer(p).and_then(Value::as_str).map(str::to_string);
    let api_version = s("/apiVersion")?;
    let kind = s("/kind")?;
    Some(Resource {
        api_version,
        kind,
        name: s("/metadata/name")
            .or_else(|| s("/metadata/generateName"))
            .unwrap_or_default(),
        namespace: s("/metadata/namespace"),
        origin,
        json: value.to_string(),
    })
}

/// Loads every path; `-` reads stdin.
pub fn load(paths: &[PathBuf]) -> Loaded {
    let mut loaded = Loaded::default();
    for path in paths {
        let display = path.display().to_string();
        if display == "-" {
            let mut bytes = Vec::new();
            match std::io::stdin()
                .take(MAX_FILE_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
            {
                Ok(_) => {
                    let origin = loaded.origin("<stdin>".into(), true);
                    loaded.add_file("<stdin>".into(), bytes, origin);
                }
                Err(e) => loaded.errors.push(LoadError::Io {
                    file: display,
                    message: e.to_string(),
                }),
            }
        } else if path.is_dir() {
            load_dir(&mut loaded, path);
        } else {
            // A file inside a kustomize directory is a base or overlay file,
            // as in the directory walk: not deployable, and a patch is no object.
            match kustomize_owner(path) {
                Some((_, k)) if is_patch(&k, path) => loaded.skipped += 1,
                Some((dir, _)) => {
                    let origin = loaded.origin(dir.display().to_string(), false);
                    read_into(&mut loaded, path, origin);
                }
                None => {
                    let origin = loaded.origin(display.clone(), true);
                    read_into(&mut loaded, path, origin);
                }
            }
        }
    }
    loaded
}

fn read_into(loaded: &mut Loaded, path: &Path, origin: u32) {
    let name = path.display().to_string();
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_FILE_BYTES as u64 => {
            loaded.errors.push(LoadError::TooLarge {
                file: name,
                size: m.len() as usize,
                limit: MAX_FILE_BYTES,
            });
            return;
        }
        Err(e) => {
            loaded.errors.push(LoadError::Io {
                file: name,
                message: e.to_string(),
            });
            return;
        }
        Ok(_) => {}
    }
    match std::fs::read(path) {
        Ok(bytes) => loaded.add_file(name, bytes, origin),
        Err(e) => loaded.errors.push(LoadError::Io {
            file: name,
            message: e.to_string(),
        }),
    }
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

fn kustomization_in(dir: &Path) -> Option<PathBuf> {
    KUSTOMIZATION_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
}

/// Files a kustomization uses as patches: partial objects, not resources.
fn patch_files(kustomization: &Path) -> BTreeSet<PathBuf> {
    let dir = kustomization.parent().unwrap_or(Path::new("."));
    let Ok(text) = std::fs::read_to_string(kustomization) else {
        return BTreeSet::new();
    };
    let Ok(value) = serde_yaml::from_str::<Value>(&text) else {
        return BTreeSet::new();
    };
    let mut out = BTreeSet::new();
    for field in ["patches", "patchesStrategicMerge", "patchesJson6902"] {
        for item in value
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let path = item
                .as_str()
                .or_else(|| item.get("path").and_then(Value::as_str));
            if let Some(p) = path {
                out.insert(dir.join(p));
            }
        }
    }
    out
}

/// The kustomization a file belongs to: in its directory, or one level up
/// (an overlay's `patches/` folder).
fn kustomize_owner(file: &Path) -> Option<(PathBuf, PathBuf)> {
    let parent = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    [parent.to_path_buf(), parent.join("..")]
        .into_iter()
        .find_map(|dir| kustomization_in(&dir).map(|k| (dir, k)))
}

fn is_patch(kustomization: &Path, file: &Path) -> bool {
    let Ok(file) = file.canonicalize() else {
        return false;
    };
    patch_files(kustomization)
        .iter()
        .any(|p| p.canonicalize().is_ok_and(|p| p == file))
}

fn load_dir(loaded: &mut Loaded, root: &Path) {
    let root_origin = root.display().to_string();
    let mut stack = vec![(root.to_path_buf(), None::<(u32, BTreeSet<PathBuf>)>)];
    let mut files = Vec::new();
    while let Some((dir, inherited)) = stack.pop() {
        let kustomize = match kustomization_in(&dir) {
            Some(k) => {
                let origin = loaded.origin(dir.display().to_string(), false);
                Some((origin, patch_files(&k)))
            }
            None => inherited,
        };
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                loaded.errors.push(LoadError::Io {
                    file: dir.display().to_string(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        entries.sort();
        for entry in entries.into_iter().rev() {
            let hidden = entry
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            if entry.is_dir() {
                stack.push((entry, kustomize.clone()));
            } else if is_yaml(&entry) {
                let is_kustomization = entry
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| KUSTOMIZATION_FILES.contains(&n));
                let is_patch = kustomize
                    .as_ref()
                    .is_some_and(|(_, patches)| patches.contains(&entry));
                if !is_kustomization && !is_patch {
                    files.push((entry, kustomize.as_ref().map(|(o, _)| *o)));
                }
            }
        }
    }
    files.sort();
    for (file, origin) in files {
        let origin = match origin {
            Some(o) => o,
            None => loaded.origin(root_origin.clone(), true),
        };
        read_into(loaded, &file, origin);
    }
}
