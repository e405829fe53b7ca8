//! What a repository keeps that is YAML but not a manifest to check as
//! written: Helm charts (their templates are Go templates until rendered)
//! and whatever `lkguard.yaml`'s `exclude:` globs name. Each skip is
//! reported, so a pass says what it did not look at.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// A path left out of the check, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skipped {
    /// A Helm chart's directory (it holds `Chart.yaml` and `templates/`).
    HelmChart { chart: String },
    /// A file or directory an `exclude:` glob matches.
    Excluded { path: String, pattern: String },
}

impl Skipped {
    /// One line for a person: what was skipped and how to check it anyway.
    pub fn describe(&self) -> String {
        match self {
            Skipped::HelmChart { chart } => format!(
                "Helm chart {chart} skipped: its templates are not manifests until rendered; check what it renders with kustomize's helmCharts: (lkguard check --kustomize 'kustomize build --enable-helm' <overlay>) or `helm template {chart} | lkguard check -`"
            ),
            Skipped::Excluded { path, pattern } => {
                format!("{path} excluded by lkguard.yaml's exclude: `{pattern}`")
            }
        }
    }
}

/// `exclude:` globs, relative to the directory of `lkguard.yaml`.
#[derive(Debug, Clone, Default)]
pub struct Exclude {
    base: PathBuf,
    patterns: Vec<String>,
    set: GlobSet,
}

/// A pattern globset refuses, by its index in the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPattern {
    pub index: usize,
    pub message: String,
}

impl Exclude {
    /// gitignore's reading of a pattern without a slash (it matches at any
    /// depth), and `**` across directories; a pattern that names a
    /// directory excludes everything below it.
    pub fn new(base: &Path, patterns: &[String]) -> Result<Self, Vec<BadPattern>> {
        let mut builder = GlobSetBuilder::new();
        let mut bad = Vec::new();
        for (index, raw) in patterns.iter().enumerate() {
            let trimmed = raw.trim_end_matches('/');
            let anchored = match trimmed.strip_prefix('/') {
                Some(rooted) => rooted.to_string(),
                None if trimmed.contains('/') => trimmed.to_string(),
                None => format!("**/{trimmed}"),
            };
            match glob(&anchored) {
                Ok(g) => {
                    builder.add(g);
                }
                Err(e) => bad.push(BadPattern {
                    index,
                    message: format!("`{raw}` is not a glob: {}", e.kind()),
                }),
            }
        }
        if !bad.is_empty() {
            return Err(bad);
        }
        let set = builder.build().map_err(|e| {
            vec![BadPattern {
                index: 0,
                message: e.to_string(),
            }]
        })?;
        Ok(Exclude {
            base: base.canonicalize().unwrap_or_else(|_| base.to_path_buf()),
            patterns: patterns.to_vec(),
            set,
        })
    }

    /// `path` as skipped, when a pattern excludes it.
    pub fn skipped(&self, path: &Path) -> Option<Skipped> {
        self.matches(path).map(|pattern| Skipped::Excluded {
            path: super::display_path(path),
            pattern: pattern.to_string(),
        })
    }

    /// The pattern that excludes `path` (it or a directory above it),
    /// if one does.
    pub fn matches(&self, path: &Path) -> Option<&str> {
        if self.patterns.is_empty() {
            return None;
        }
        let abs = path.canonicalize().ok().or_else(|| {
            let cwd = std::env::current_dir().ok()?;
            Some(cwd.join(path))
        })?;
        let rel = abs.strip_prefix(&self.base).ok()?;
        rel.ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .find_map(|a| self.set.matches(a).first().copied())
            .map(|i| self.patterns[i].as_str())
    }
}

fn glob(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern).literal_separator(true).build()
}

/// Whether `dir` is a Helm chart: `Chart.yaml` and `templates/`.
pub fn is_helm_chart(dir: &Path) -> bool {
    dir.join("Chart.yaml").is_file() && dir.join("templates").is_dir()
}

/// The Helm chart `path` is in (or is): the nearest such directory at or
/// above it.
pub fn helm_chart(path: &Path) -> Option<PathBuf> {
    let abs = path.canonicalize().ok()?;
    abs.ancestors()
        .find(|d| is_helm_chart(d))
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_files_and_everything_under_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in ["ci/pipeline.yaml", "deploy/dev/x.yaml", "a/b/values.yaml"] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "").unwrap();
        }
        let pats: Vec<String> = ["ci/", "deploy/*/x.yaml", "values.yaml"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let ex = Exclude::new(root, &pats).unwrap();
        assert_eq!(ex.matches(&root.join("ci/pipeline.yaml")), Some("ci/"));
        assert_eq!(
            ex.matches(&root.join("deploy/dev/x.yaml")),
            Some("deploy/*/x.yaml")
        );
        // No slash: at any depth, as in .gitignore.
        assert_eq!(
            ex.matches(&root.join("a/b/values.yaml")),
            Some("values.yaml")
        );
        assert_eq!(ex.matches(&root.join("deploy/dev")), None);
    }

    #[test]
    fn a_bad_glob_names_its_index() {
        let bad = Exclude::new(Path::new("."), &["ok/**".into(), "[unclosed".into()]).unwrap_err();
        assert_eq!(bad[0].index, 1);
        assert!(bad[0].message.contains("[unclosed"), "{}", bad[0].message);
    }

    #[test]
    fn a_file_inside_a_chart_is_in_the_chart() {
        let dir = tempfile::tempdir().unwrap();
        let chart = dir.path().join("charts/livekit");
        std::fs::create_dir_all(chart.join("templates")).unwrap();
        std::fs::write(chart.join("Chart.yaml"), "name: livekit\n").unwrap();
        std::fs::write(chart.join("templates/deployment.yaml"), "{{- if .x }}\n").unwrap();
        assert_eq!(
            helm_chart(&chart.join("templates/deployment.yaml")),
            Some(chart.canonicalize().unwrap())
        );
        assert_eq!(helm_chart(dir.path()), None);
    }
}
