//! Paths on the command line -> files and kustomize renders -> one batch.
//!
//! A path inside a kustomize tree is a source, not something applied: it
//! re-renders every root (overlay) whose build includes it, and the render is
//! what the policies see, one origin per root. YAML outside any
//! kustomization is checked as written: each file argument, and each
//! directory argument, is one origin.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::documents::{self, Document};
use super::skip::{self, Exclude, Skipped};
use super::typed;
use super::LoadError;
use crate::kustomize::render::Origin as RenderOrigin;
use crate::kustomize::{RenderError, RenderedObject, Renderer, Tree};
use crate::model::{Batch, Origin, Resource};

/// Files larger than this are refused rather than parsed.
pub const MAX_FILE_BYTES: usize = 32 << 20;

/// One file read from disk or stdin.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// As shown to the user (relative as given on the command line).
    pub name: String,
    pub text: String,
    pub documents: Vec<Document>,
    /// Byte offsets of the line starts, computed once on first use: every
    /// finding located in the file needs them, and counting lines from the
    /// start for each made 10,000 findings in one file take minutes.
    line_starts: std::sync::OnceLock<Vec<usize>>,
}

impl SourceFile {
    pub fn new(name: String, text: String, documents: Vec<Document>) -> Self {
        SourceFile {
            name,
            text,
            documents,
            line_starts: std::sync::OnceLock::new(),
        }
    }

    pub fn line_starts(&self) -> &[usize] {
        self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        })
    }

    /// 1-based line and character column of a byte offset, as
    /// [`crate::load::line_col`] gives them, in logarithmic time.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while offset > 0 && !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let starts = self.line_starts();
        let line = starts.partition_point(|&s| s <= offset);
        let start = starts[line - 1];
        (line, self.text[start..offset].chars().count() + 1)
    }
}

/// Where a resource of the batch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A document of a file, checked as written; `item`: an entry of the
    /// document's `items` when it is a List (`kubectl get -o yaml`).
    File {
        file: usize,
        document: usize,
        item: Option<usize>,
    },
    /// An object of a kustomize render.
    Rendered { render: usize, object: usize },
}

/// One kustomize root, rendered.
#[derive(Debug, Clone)]
pub struct Render {
    /// As the user sees it (relative to the working directory).
    pub name: String,
    /// Its kustomization file (canonical).
    pub kustomization: PathBuf,
    pub objects: Vec<RenderedObject>,
}

/// How to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The kustomize command (`kustomize build`, `kubectl kustomize`);
    /// `None` finds one on PATH.
    pub kustomize: Option<String>,
    /// `lkguard.yaml`'s `exclude:` globs.
    pub exclude: Exclude,
}

/// Everything loaded: the batch policies see and the way back to the files.
#[derive(Debug, Default)]
pub struct Loaded {
    pub files: Vec<SourceFile>,
    pub batch: Batch,
    /// Parallel to `batch.resources`.
    pub places: Vec<Place>,
    pub renders: Vec<Render>,
    /// Files read to map rendered fields back (bases, patches,
    /// kustomization files), by canonical path, as indexes into `files`.
    pub sources: HashMap<PathBuf, usize>,
    /// Documents that are not Kubernetes objects (no apiVersion/kind).
    pub skipped: usize,
    /// Paths left out on purpose: Helm charts, `exclude:` globs.
    pub skipped_paths: Vec<Skipped>,
    pub errors: Vec<LoadError>,
    /// The index in `files` of `lkguard.yaml`, added so findings can point
    /// into it: configuration, not a file that was checked.
    pub config_file: Option<usize>,
}

impl Loaded {
    /// How many files were checked: every file read, less `lkguard.yaml`.
    pub fn checked_files(&self) -> usize {
        self.files.len() - usize::from(self.config_file.is_some())
    }

    /// The loaded source file at `path`, if it was read.
    pub fn source(&self, path: &Path) -> Option<usize> {
        self.sources.get(path).copied().or_else(|| {
            let canonical = path.canonicalize().ok()?;
            self.sources.get(&canonical).copied()
        })
    }

    fn skip(&mut self, skipped: Skipped) {
        if !self.skipped_paths.contains(&skipped) {
            self.skipped_paths.push(skipped);
        }
    }

    /// One file's bytes as a deployable origin of its own, as `lkguard
    /// check FILE` reads it (for tests and fuzzing, which have no file).
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Loaded {
        let mut loaded = Loaded::default();
        let origin = loaded.origin(name.to_string(), true);
        loaded.add_file(name.to_string(), bytes, origin);
        loaded
    }

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
            // A List (what `kubectl get -o yaml` prints) is its items, each
            // an object of its own, positioned inside the list.
            let objects: Vec<(Option<usize>, &Value)> = match list_items(&doc.value) {
                Some(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (Some(i), v))
                    .collect(),
                None => vec![(None, &doc.value)],
            };
            for (item, value) in objects {
                let Some(resource) = resource(value, origin) else {
                    if !value.is_null() {
                        self.skipped += 1;
                    }
                    continue;
                };
                let prefix = item.map(|i| format!("/items/{i}")).unwrap_or_default();
                if let Err(e) = typed::check(value) {
                    let at = doc
                        .spans
                        .locate(&format!("{prefix}{}", e.pointer))
                        .map(|(s, _)| s.anchor().offset)
                        .unwrap_or(0);
                    self.errors
                        .push(LoadError::syntax(&name, &text, at, e.message));
                    continue;
                }
                self.batch.resources.push(resource);
                self.places.push(Place::File {
                    file,
                    document: d,
                    item,
                });
            }
        }
        self.files.push(SourceFile::new(name, text, docs));
    }
}

/// The items of a List: `kind: List` (kubectl's `get -o yaml|json`) or a
/// typed list (`DeploymentList`, the API's own list responses). Read as one
/// unknown object, a List passed every check in silence.
pub fn list_items(value: &Value) -> Option<&Vec<Value>> {
    let kind = value.get("kind")?.as_str()?;
    value.get("apiVersion")?.as_str()?;
    let items = value.get("items")?.as_array()?;
    let list = kind == "List" || (kind.ends_with("List") && value.get("spec").is_none());
    list.then_some(items)
}

/// The batch entry of a Kubernetes object; `None` without apiVersion/kind.
pub fn resource(value: &Value, origin: u32) -> Option<Resource> {
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
pub fn load(paths: &[PathBuf], opts: &LoadOptions) -> Loaded {
    let mut loaded = Loaded::default();
    let mut trees: HashMap<PathBuf, Tree> = HashMap::new();
    // Canonical root directory -> kustomization file, in path order.
    let mut roots: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
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
            continue;
        }
        if let Some(skipped) = left_out(path, opts) {
            loaded.skip(skipped);
            continue;
        }
        let top = search_top(path);
        let tree = trees
            .entry(top.clone())
            .or_insert_with(|| Tree::discover(&top));
        for root in tree.roots_affected_by(path) {
            match opts.exclude.skipped(&root.dir) {
                Some(skipped) => loaded.skip(skipped),
                None => {
                    roots.insert(root.dir.clone(), root.file.clone());
                }
            }
        }
        if path.is_dir() {
            let plain: Vec<PathBuf> = yaml_files(&mut loaded, path, opts)
                .into_iter()
                .filter(|f| tree.owner(f).is_none())
                .collect();
            if !plain.is_empty() {
                let origin = loaded.origin(display, true);
                for file in plain {
                    read_into(&mut loaded, &file, origin);
                }
            }
        } else if !path.exists() || tree.owner(path).is_none() {
            let origin = loaded.origin(display, true);
            read_into(&mut loaded, path, origin);
        }
    }
    if !roots.is_empty() {
        render_roots(&mut loaded, &roots, opts);
    }
    loaded
}

/// Why `path` is not checked as written, if it is not: it is excluded, or
/// it is (in) a Helm chart.
fn left_out(path: &Path, opts: &LoadOptions) -> Option<Skipped> {
    opts.exclude.skipped(path).or_else(|| {
        skip::helm_chart(path).map(|chart| Skipped::HelmChart {
            chart: display_path(&chart),
        })
    })
}

/// Where to look for the kustomizations a path may belong to: the nearest
/// directory holding `lkguard.yaml` or `.git` (the repository), else the
/// working directory when the path is inside it, else the path itself.
fn search_top(path: &Path) -> PathBuf {
    let abs = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let start = if abs.is_dir() {
        abs.clone()
    } else {
        abs.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    if let Some(repo) = start
        .ancestors()
        .find(|d| d.join("lkguard.yaml").is_file() || d.join(".git").exists())
    {
        return repo.to_path_buf();
    }
    match std::env::current_dir().and_then(|d| d.canonicalize()) {
        Ok(cwd) if start.starts_with(&cwd) => cwd,
        _ => start,
    }
}

/// How a path is shown: relative to the working directory when inside it.
pub fn display_path(path: &Path) -> String {
    let cwd = std::env::current_dir().and_then(|d| d.canonicalize());
    match cwd
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
    {
        Some(rel) if rel.as_os_str().is_empty() => ".".into(),
        Some(rel) => rel.display().to_string(),
        None => path.display().to_string(),
    }
}

fn render_roots(loaded: &mut Loaded, roots: &BTreeMap<PathBuf, PathBuf>, opts: &LoadOptions) {
    let renderer = match Renderer::find(opts.kustomize.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            loaded.errors.push(LoadError::Render(e));
            return;
        }
    };
    let roots: Vec<(&PathBuf, &PathBuf)> = roots.iter().collect();
    let results =
        crate::policy::on_workers(&roots, |(dir, _)| renderer.render(dir, &display_path(dir)));
    for ((dir, kfile), result) in roots.into_iter().zip(results) {
        let name = display_path(dir);
        let objects = match result {
            Some(Ok(objects)) => objects,
            Some(Err(e)) => {
                loaded.errors.push(LoadError::Render(e));
                continue;
            }
            None => {
                loaded.errors.push(LoadError::Render(RenderError::Failed {
                    root: name,
                    message: "rendering crashed a host thread".into(),
                }));
                continue;
            }
        };
        add_render(loaded, name, kfile.clone(), objects);
    }
}

fn add_render(
    loaded: &mut Loaded,
    name: String,
    kustomization: PathBuf,
    objects: Vec<RenderedObject>,
) {
    let origin = loaded.origin(name.clone(), true);
    let render = loaded.renders.len();
    let mut wanted: Vec<PathBuf> = vec![kustomization.clone()];
    for (i, obj) in objects.iter().enumerate() {
        match &obj.origin {
            Some(RenderOrigin::File(p)) | Some(RenderOrigin::Generated(p)) => {
                wanted.push(p.clone())
            }
            _ => {}
        }
        wanted.extend(obj.transformed_by.iter().cloned());
        let Some(resource) = resource(&obj.value, origin) else {
            continue;
        };
        if let Err(e) = typed::check(&obj.value) {
            loaded.errors.push(LoadError::Render(RenderError::Failed {
                root: name.clone(),
                message: format!(
                    "{} {}: {} (at {})",
                    resource.kind, resource.name, e.message, e.pointer
                ),
            }));
            continue;
        }
        loaded.batch.resources.push(resource);
        loaded.places.push(Place::Rendered { render, object: i });
    }
    // Patch files of the kustomizations involved, so a field they set can be
    // pointed at.
    let kustomizations: Vec<PathBuf> = wanted
        .iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| crate::kustomize::tree::FILE_NAMES.contains(&n))
        })
        .cloned()
        .collect();
    // Each kustomization is read once: as a source to point into, and
    // from that parse, for the patch and generator files it names.
    for k in kustomizations {
        add_source(loaded, &k);
        let named = loaded
            .source(&k)
            .and_then(|i| loaded.files[i].documents.first())
            .map(|d| crate::kustomize::tree::source_files(&k, &d.value))
            .unwrap_or_default();
        wanted.extend(named);
    }
    for path in wanted {
        add_source(loaded, &path);
    }
    loaded.renders.push(Render {
        name,
        kustomization,
        objects,
    });
}

/// Reads a file only to point into it; it adds no resources.
fn add_source(loaded: &mut Loaded, path: &Path) {
    if loaded.sources.contains_key(path) {
        return;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    if text.len() > MAX_FILE_BYTES {
        return;
    }
    // A generator's env file (`KEY=value` lines) need not be YAML: kept
    // as text to point into by line.
    let documents = documents::parse(&text).unwrap_or_default();
    loaded
        .sources
        .insert(path.to_path_buf(), loaded.files.len());
    loaded
        .files
        .push(SourceFile::new(display_path(path), text, documents));
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

/// Every *.yaml/*.yml below a directory, sorted; hidden entries, Helm
/// charts and excluded paths are skipped.
fn yaml_files(loaded: &mut Loaded, root: &Path, opts: &LoadOptions) -> Vec<PathBuf> {
    let mut stack = vec![root.to_path_buf()];
    let mut files = Vec::new();
    while let Some(dir) = stack.pop() {
        let entries: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                loaded.errors.push(LoadError::Io {
                    file: dir.display().to_string(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        for entry in entries {
            let hidden = entry
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            // lkguard's own configuration is read as configuration.
            let config = entry
                .file_name()
                .is_some_and(|n| n == crate::config::FILE_NAME);
            if hidden || config {
                continue;
            }
            let is_dir = entry.is_dir();
            if is_dir || is_yaml(&entry) {
                if let Some(skipped) = opts.exclude.skipped(&entry) {
                    loaded.skip(skipped);
                    continue;
                }
            }
            if is_dir && skip::is_helm_chart(&entry) {
                loaded.skip(Skipped::HelmChart {
                    chart: display_path(&entry),
                });
                continue;
            }
            if is_dir {
                stack.push(entry);
            } else if is_yaml(&entry) {
                files.push(entry);
            }
        }
    }
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_typed_lists_are_their_items_and_other_objects_are_not() {
        let lists = [
            serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [{"kind": "Service"}]}),
            serde_json::json!({"apiVersion": "apps/v1", "kind": "DeploymentList", "items": []}),
        ];
        for l in &lists {
            assert!(list_items(l).is_some(), "{l}");
        }
        let objects = [
            // A custom kind whose name ends in List, with a spec: an object.
            serde_json::json!({"apiVersion": "x/v1", "kind": "AllowList", "spec": {}, "items": []}),
            serde_json::json!({"apiVersion": "v1", "kind": "List"}),
            serde_json::json!({"kind": "List", "items": []}),
        ];
        for o in &objects {
            assert!(list_items(o).is_none(), "{o}");
        }
    }

    #[test]
    fn a_list_item_is_located_inside_the_list() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: a}\n  spec:\n    replicas: two\n- apiVersion: v1\n  kind: Service\n  metadata: {name: b}\n";
        let loaded = Loaded::from_bytes("list.yaml", text.as_bytes().to_vec());
        // The Deployment's type error is at its own line inside the list.
        assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
        assert!(
            loaded.errors[0].to_string().starts_with("list.yaml:8:"),
            "{}",
            loaded.errors[0]
        );
        assert_eq!(loaded.batch.resources.len(), 1);
        assert_eq!(loaded.batch.resources[0].kind, "Service");
        assert_eq!(
            loaded.places[0],
            Place::File {
                file: 0,
                document: 0,
                item: Some(1)
            }
        );
    }
}
