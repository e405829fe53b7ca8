//! The kustomizations of a repository and which of them are deployable.
//!
//! A *root* is a kustomization no other kustomization includes: an overlay,
//! or a lone base nobody builds on, which then is what gets applied. Bases
//! included by an overlay are not deployable on their own (they lack the
//! per-environment NODE_IP and digest) and are only checked through the
//! overlays that build on them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

pub const FILE_NAMES: &[&str] = &["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Directories never searched for kustomizations: build output, dependencies
/// and VCS metadata can be huge and never hold the deployment.
const SKIP_DIRS: &[&str] = &["target", "node_modules", "vendor"];

#[derive(Debug, Clone)]
pub struct Kustomization {
    /// Canonical directory.
    pub dir: PathBuf,
    /// The kustomization file in it.
    pub file: PathBuf,
    /// Parsed content; `Null` when it does not parse (kustomize then reports why).
    pub value: Value,
    /// Canonical directories of the local kustomizations it includes
    /// (`resources`, `bases`, `components`).
    pub includes: Vec<PathBuf>,
}

impl Kustomization {
    fn read(dir: &Path) -> Option<Kustomization> {
        let file = FILE_NAMES
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())?;
        let value = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| serde_yaml::from_str::<Value>(&t).ok())
            .unwrap_or(Value::Null);
        let mut includes = Vec::new();
        for entry in paths_in(&value, &["resources", "bases", "components"]) {
            if entry.contains("://") || entry.starts_with("git@") {
                continue;
            }
            let Ok(target) = dir.join(entry).canonicalize() else {
                continue;
            };
            if target.is_dir() && FILE_NAMES.iter().any(|f| target.join(f).is_file()) {
                includes.push(target);
            }
        }
        Some(Kustomization {
            dir: dir.to_path_buf(),
            file,
            value,
            includes,
        })
    }
}

/// The path entries of list fields of a kustomization: plain strings, or the
/// `path` of an object entry (`patches: [{path: ...}]`).
fn paths_in<'v>(
    value: &'v Value,
    fields: &'static [&'static str],
) -> impl Iterator<Item = &'v str> {
    fields
        .iter()
        .filter_map(move |f| value.get(*f).and_then(Value::as_array))
        .flatten()
        .filter_map(|item| {
            item.as_str()
                .or_else(|| item.get("path").and_then(Value::as_str))
        })
}

/// The files a kustomization reads besides resources, canonical: its patch
/// files (inline patches are read from the kustomization itself), and the
/// files its `configMapGenerator` reads, so a finding about a field they set
/// can point into them. `secretGenerator` files are left out on purpose:
/// pointing into them would show secret text.
pub fn source_files(kustomization: &Path, value: &Value) -> Vec<PathBuf> {
    let dir = kustomization.parent().unwrap_or(Path::new("."));
    paths_in(
        value,
        &["patches", "patchesStrategicMerge", "patchesJson6902"],
    )
    .filter(|p| !p.contains('\n'))
    .chain(generator_sources(value).map(|g| g.path))
    .filter_map(|p| dir.join(p).canonicalize().ok())
    .collect()
}

/// One file a `configMapGenerator` entry reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratorSource<'v> {
    /// Index of the entry in `configMapGenerator`.
    pub entry: usize,
    /// The key a `files:` item becomes (its `KEY=` prefix, else the file
    /// name); `None` for an `envs:` file, whose `KEY=value` lines are keys.
    pub key: Option<&'v str>,
    pub path: &'v str,
}

fn strings<'v>(entry: &'v Value, field: &str) -> Vec<&'v str> {
    entry
        .get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// Every file source of the `configMapGenerator` entries: `files:` items
/// and `envs:` (and the older `env:`) files.
pub fn generator_sources(kustomization: &Value) -> impl Iterator<Item = GeneratorSource<'_>> {
    kustomization
        .get("configMapGenerator")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .flat_map(move |(entry, e)| {
            let files = strings(e, "files").into_iter().map(move |f| {
                let (key, path) = match f.split_once('=') {
                    Some((k, p)) => (k, p),
                    None => (
                        Path::new(f)
                            .file_name()
                            .and_then(|n| n.to_str())
                            .unwrap_or(f),
                        f,
                    ),
                };
                GeneratorSource {
                    entry,
                    key: Some(key),
                    path,
                }
            });
            let envs = strings(e, "envs")
                .into_iter()
                .chain(e.get("env").and_then(Value::as_str))
                .map(move |path| GeneratorSource {
                    entry,
                    key: None,
                    path,
                });
            files.chain(envs)
        })
}

/// Every kustomization below a directory, plus any outside it that one of
/// them includes.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub kustomizations: BTreeMap<PathBuf, Kustomization>,
}

impl Tree {
    pub fn discover(top: &Path) -> Tree {
        let mut tree = Tree::default();
        let Ok(top) = top.canonicalize() else {
            return tree;
        };
        let mut stack = vec![top];
        while let Some(dir) = stack.pop() {
            if let Some(k) = Kustomization::read(&dir) {
                tree.kustomizations.insert(dir.clone(), k);
            }
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') || SKIP_DIRS.contains(&name.as_ref()) {
                    continue;
                }
                // Symlinked directories are not followed: a link back up would loop.
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(entry.path());
                }
            }
        }
        // Bases outside the searched directory (`../shared/base`).
        let mut pending: Vec<PathBuf> = tree
            .kustomizations
            .values()
            .flat_map(|k| k.includes.clone())
            .collect();
        while let Some(dir) = pending.pop() {
            if tree.kustomizations.contains_key(&dir) {
                continue;
            }
            if let Some(k) = Kustomization::read(&dir) {
                pending.extend(k.includes.clone());
                tree.kustomizations.insert(dir, k);
            }
        }
        tree
    }

    /// Kustomizations nobody includes, in path order. A `kind: Component`
    /// is only ever mixed into another kustomization, never built alone.
    pub fn roots(&self) -> Vec<&Kustomization> {
        let included: BTreeSet<&PathBuf> = self
            .kustomizations
            .values()
            .flat_map(|k| &k.includes)
            .collect();
        self.kustomizations
            .values()
            .filter(|k| !included.contains(&k.dir))
            .filter(|k| k.value.get("kind").and_then(Value::as_str) != Some("Component"))
            .collect()
    }

    /// The root and everything it includes, transitively.
    pub fn closure(&self, root: &Path) -> Vec<&Kustomization> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            if !seen.insert(dir.clone()) {
                continue;
            }
            if let Some(k) = self.kustomizations.get(&dir) {
                stack.extend(k.includes.iter().cloned());
                out.push(k);
            }
        }
        out
    }

    /// The kustomization whose directory holds `path` (the nearest one).
    /// Kustomize only reads files below a kustomization's own directory
    /// (its default load restrictor), so this is the one that can use it.
    pub fn owner(&self, path: &Path) -> Option<&Kustomization> {
        let path = path.canonicalize().ok()?;
        path.ancestors()
            .find_map(|dir| self.kustomizations.get(dir))
    }

    /// The roots whose render can change when `path` (a file or directory)
    /// changes: those including the kustomization that owns it, and for a
    /// directory, those including any kustomization below it.
    pub fn roots_affected_by(&self, path: &Path) -> Vec<&Kustomization> {
        let Ok(abs) = path.canonicalize() else {
            return Vec::new();
        };
        let owner = self.owner(&abs).map(|k| k.dir.clone());
        self.roots()
            .into_iter()
            .filter(|root| {
                self.closure(&root.dir).iter().any(|k| {
                    Some(&k.dir) == owner.as_ref() || (abs.is_dir() && k.dir.starts_with(&abs))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn overlays_are_roots_and_a_base_change_reaches_every_overlay() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(d, "base/kustomization.yaml", "resources: [app.yaml]\n");
        write(d, "base/app.yaml", "kind: ConfigMap\n");
        for env in ["staging", "production"] {
            write(
                d,
                &format!("overlays/{env}/kustomization.yaml"),
                "resources: [../../base]\npatches: [{path: patches/p.yaml}]\n",
            );
            write(d, &format!("overlays/{env}/patches/p.yaml"), "kind: X\n");
        }
        write(d, "target/x/kustomization.yaml", "resources: []\n");
        write(
            d,
            "components/unused/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n",
        );
        let tree = Tree::discover(d);
        let names = |ks: Vec<&Kustomization>| -> Vec<String> {
            ks.iter()
                .map(|k| {
                    k.dir
                        .strip_prefix(d.canonicalize().unwrap())
                        .unwrap()
                        .display()
                        .to_string()
                })
                .collect()
        };
        assert_eq!(
            names(tree.roots()),
            ["overlays/production", "overlays/staging"]
        );
        assert_eq!(
            names(tree.roots_affected_by(&d.join("base/app.yaml"))),
            ["overlays/production", "overlays/staging"]
        );
        assert_eq!(
            names(tree.roots_affected_by(&d.join("overlays/staging/patches/p.yaml"))),
            ["overlays/staging"]
        );
        assert_eq!(
            names(tree.roots_affected_by(&d.join("base"))),
            ["overlays/production", "overlays/staging"]
        );
        assert!(tree.owner(&d.join("overlays")).is_none());
    }

    #[test]
    fn a_base_outside_the_searched_directory_is_followed() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(d, "shared/base/kustomization.yaml", "resources: []\n");
        write(
            d,
            "apps/env/kustomization.yaml",
            "resources: [../../shared/base, https://example.com/x.yaml]\n",
        );
        let tree = Tree::discover(&d.join("apps"));
        assert_eq!(tree.kustomizations.len(), 2);
        assert_eq!(tree.roots().len(), 1);
    }
}
