//! `lkguard check`: load, evaluate, locate. Rendering is `report`'s job.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use crate::engine::{Lifetime, Limits, Runtime};
use crate::load::{self, Loaded};
use crate::locate::{self, Location};
use crate::model::{Finding, Severity};
use crate::policy::{Failure, PolicyError, Registry};

pub struct Options {
    pub paths: Vec<PathBuf>,
    pub policies: Vec<PathBuf>,
    pub settings: BTreeMap<String, Value>,
    pub cache_dir: Option<PathBuf>,
    pub limits: Limits,
    pub load: load::LoadOptions,
}

/// A finding and where it is.
#[derive(Debug, Clone)]
pub struct Located {
    pub policy: String,
    pub finding: Finding,
    pub location: Option<Location>,
    /// Other origins (overlays) where the same finding is at the same place:
    /// a mistake in a base shows once, naming every overlay it reaches.
    pub also_in: Vec<String>,
}

pub struct Outcome {
    pub loaded: Loaded,
    pub findings: Vec<Located>,
    pub failures: Vec<Failure>,
    pub policies: usize,
}

impl Outcome {
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.finding.severity == Severity::Error)
            .count()
    }

    pub fn warnings(&self) -> usize {
        self.findings.len() - self.errors()
    }

    /// 0 clean (warnings allowed), 1 error findings, 2 input or policy
    /// failure: a check that could not run completely is never a pass.
    pub fn exit_code(&self) -> i32 {
        if !self.failures.is_empty()
            || !self.loaded.errors.is_empty()
            || self.loaded.files.is_empty()
        {
            2
        } else if self.errors() > 0 {
            1
        } else {
            0
        }
    }
}

/// One finding per place: the same rule and message at the same exact
/// location through several overlays is one mistake in a shared file.
fn merge_across_origins(loaded: &Loaded, findings: Vec<Located>) -> Vec<Located> {
    let origin_of = |l: &Located| {
        loaded
            .batch
            .resources
            .get(l.finding.resource as usize)
            .and_then(|r| loaded.batch.origins.get(r.origin as usize))
            .map(|o| o.name.clone())
            .unwrap_or_default()
    };
    let mut out: Vec<Located> = Vec::new();
    for l in findings {
        let same_place = out.last_mut().filter(|prev| {
            prev.location.is_some_and(|p| p.exact)
                && prev.location == l.location
                && prev.finding.rule == l.finding.rule
                && prev.finding.message == l.finding.message
        });
        match same_place {
            Some(prev) => {
                let origin = origin_of(&l);
                if origin != origin_of(prev) && !prev.also_in.contains(&origin) {
                    prev.also_in.push(origin);
                }
            }
            None => out.push(l),
        }
    }
    out
}

pub fn registry(
    policies: &[PathBuf],
    cache_dir: Option<PathBuf>,
    limits: Limits,
    lifetime: Lifetime,
) -> Result<Registry, PolicyError> {
    let runtime = Runtime::new(cache_dir, limits, lifetime).map_err(|error| PolicyError::Load {
        policy: "engine".into(),
        error,
    })?;
    Registry::load(Arc::clone(&runtime), policies)
}

pub fn run(opts: &Options) -> Result<Outcome, PolicyError> {
    let registry = registry(
        &opts.policies,
        opts.cache_dir.clone(),
        opts.limits,
        Lifetime::OneShot,
    )?;
    let settings = registry.settings(&opts.settings)?;
    let loaded = load::load(&opts.paths, &opts.load);
    let (findings, failures) = if loaded.batch.resources.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        registry.evaluate(&loaded.batch, &settings)
    };
    let mut findings: Vec<Located> = findings
        .into_iter()
        .map(|(policy, finding)| {
            let location = locate::locate(&loaded, &finding);
            Located {
                policy,
                finding,
                location,
                also_in: Vec::new(),
            }
        })
        .collect();
    findings.sort_by(|a, b| {
        let key = |l: &Located| {
            (
                l.location.map_or(usize::MAX, |p| p.file),
                l.location.map_or(0, |p| p.line),
                l.location.map_or(0, |p| p.col),
                l.finding.rule.clone(),
                l.finding.message.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    findings.dedup_by(|a, b| a.finding == b.finding);
    let findings = merge_across_origins(&loaded, findings);
    Ok(Outcome {
        loaded,
        findings,
        failures,
        policies: registry.policies.len(),
    })
}
