//! `--changed-since REF`: the manifests a pull request touches.
//!
//! Files changed between the merge base of REF and HEAD and the working
//! tree, as paths lkguard checks the way the pre-commit hook does: a changed
//! base file re-renders every overlay that includes it. A deleted file
//! inside a kustomize tree selects its directory, since removing a patch
//! changes the overlay; a deleted plain manifest has nothing left to check.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ChangedError {
    #[error("--changed-since {reference}: {message}")]
    #[diagnostic(
        code(lkguard::changed_since),
        help(
            "in CI, fetch enough history for the merge base (actions/checkout with fetch-depth: 0)"
        )
    )]
    Git { reference: String, message: String },
}

fn git(args: &[&str], reference: &str) -> Result<String, ChangedError> {
    let out = Command::new("git")
        .args(args)
        .output()
        .map_err(|e| ChangedError::Git {
            reference: reference.to_string(),
            message: format!("running git: {e}"),
        })?;
    if !out.status.success() {
        return Err(ChangedError::Git {
            reference: reference.to_string(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether lkguard reads a file of this name (what the hook's `files` matches).
fn is_manifest(path: &str) -> bool {
    path.ends_with(".yaml")
        || path.ends_with(".yml")
        || path.rsplit('/').next() == Some("Kustomization")
}

/// The paths to check for the changes since `reference`, relative to the
/// working directory when inside it.
pub fn since(reference: &str) -> Result<Vec<PathBuf>, ChangedError> {
    let top = PathBuf::from(git(&["rev-parse", "--show-toplevel"], reference)?.trim());
    let base = git(&["merge-base", reference, "HEAD"], reference)?;
    let base = base.trim();
    let names = git(
        &["diff", "--name-only", "--no-renames", "-z", base, "--"],
        reference,
    )?;
    let untracked = git(
        &["ls-files", "--others", "--exclude-standard", "-z"],
        reference,
    )?;
    let cwd = std::env::current_dir()
        .and_then(|d| d.canonicalize())
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut names: Vec<&str> = names.split('\0').chain(untracked.split('\0')).collect();
    names.sort();
    names.dedup();
    for name in names
        .into_iter()
        .filter(|n| !n.is_empty() && is_manifest(n))
    {
        let abs = top.join(name);
        let path = if abs.exists() {
            abs
        } else {
            match abs.parent().filter(|d| d.is_dir() && in_kustomize_tree(d)) {
                Some(dir) => dir.to_path_buf(),
                None => continue,
            }
        };
        let shown = path
            .canonicalize()
            .ok()
            .and_then(|p| p.strip_prefix(&cwd).ok().map(Path::to_path_buf))
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(path);
        if !out.contains(&shown) {
            out.push(shown);
        }
    }
    Ok(out)
}

fn in_kustomize_tree(dir: &Path) -> bool {
    dir.ancestors().any(|d| {
        crate::kustomize::tree::FILE_NAMES
            .iter()
            .any(|f| d.join(f).is_file())
    })
}
