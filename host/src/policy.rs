//! The policy set: the embedded LiveKit bundle plus `--policy` components,
//! each with its metadata and settings schema.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::Digest as _;

use crate::engine::{EngineError, LoadedComponent, Runtime};
use crate::model::{Batch, Finding, Metadata, RuleInfo};

mod bundle {
    include!(concat!(env!("OUT_DIR"), "/bundle.rs"));
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    Embedded,
    File(PathBuf),
}

impl std::fmt::Display for PolicySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicySource::Embedded => f.write_str("embedded"),
            PolicySource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

pub struct Policy {
    pub metadata: Metadata,
    pub source: PolicySource,
    component: LoadedComponent,
    schema: jsonschema::Validator,
}

impl Policy {
    pub fn id(&self) -> &str {
        &self.metadata.id
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PolicyError {
    #[error("policy {policy}: {error}")]
    #[diagnostic(code(lkguard::policy_load))]
    Load { policy: String, error: EngineError },
    #[error("{path}: {message}")]
    #[diagnostic(code(lkguard::policy_io))]
    Io { path: String, message: String },
    #[error("policy {policy} ships an invalid settings schema: {message}")]
    #[diagnostic(code(lkguard::policy_schema))]
    Schema { policy: String, message: String },
    #[error("invalid settings for policy {policy}:\n{}", .errors.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    #[diagnostic(
        code(lkguard::settings),
        help("`lkguard policies --format json` prints each policy's settings schema")
    )]
    Settings { policy: String, errors: Vec<String> },
    #[error("policy `{0}` is selected but not embedded in this lkguard")]
    #[diagnostic(
        code(lkguard::policy_select),
        help("`lkguard policies` lists the embedded ids; a policy of your own goes in as a path with its sha256")
    )]
    NotEmbedded(String),
    #[error("{path}: its sha256 is {actual}, not the pinned {expected}; refusing to run it")]
    #[diagnostic(
        code(lkguard::policy_pin),
        help("if the new component is the one you meant, update its sha256 in lkguard.yaml")
    )]
    Pin {
        path: String,
        expected: String,
        actual: String,
    },
    #[error("settings name policy `{0}`, which is not loaded")]
    #[diagnostic(
        code(lkguard::settings),
        help("`lkguard policies` lists the loaded policy ids")
    )]
    UnknownPolicy(String),
}

/// A policy that could not evaluate a batch. Fail closed: the run exits 2.
#[derive(Debug, Clone)]
pub struct Failure {
    pub policy: String,
    pub message: String,
}

/// Which policies to load.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Embedded policy ids; `None` is all of them.
    pub embedded: Option<Vec<String>>,
    /// Component files, each optionally pinned by its sha256 (hex).
    pub files: Vec<(PathBuf, Option<String>)>,
}

pub struct Registry {
    runtime: Arc<Runtime>,
    pub policies: Vec<Policy>,
}

impl Registry {
    /// The embedded bundle (all of it, or the ids selected), then each
    /// file, which replaces an embedded policy of the same id or adds a new
    /// one. A file pinned by sha256 that does not match is refused.
    pub fn load(runtime: Arc<Runtime>, selection: &Selection) -> Result<Self, PolicyError> {
        if let Some(ids) = &selection.embedded {
            if let Some(unknown) = ids
                .iter()
                .find(|id| !bundle::BUNDLE.iter().any(|(b, ..)| b == id))
            {
                return Err(PolicyError::NotEmbedded(unknown.clone()));
            }
        }
        let bundle: Vec<_> = bundle::BUNDLE
            .iter()
            .filter(|(id, ..)| {
                selection
                    .embedded
                    .as_ref()
                    .is_none_or(|ids| ids.iter().any(|s| s == id))
            })
            .collect();
        // Mapping the cached code, pre-linking and compiling the settings
        // schema are independent per policy: do them side by side.
        let embedded: Vec<Result<Policy, PolicyError>> =
            on_workers(&bundle, |(id, wasm, sha256)| {
                load_one(&runtime, id, wasm, Some(*sha256), PolicySource::Embedded)
            })
            .into_iter()
            .zip(&bundle)
            .map(|(r, (id, ..))| {
                r.unwrap_or_else(|| {
                    Err(PolicyError::Load {
                        policy: id.to_string(),
                        error: EngineError::Trap("loading it crashed a host thread".into()),
                    })
                })
            })
            .collect();
        let mut policies = embedded
            .into_iter()
            .collect::<Result<Vec<Policy>, PolicyError>>()?;
        for (path, pin) in &selection.files {
            let wasm = read(path)?;
            if let Some(expected) = pin {
                let actual: String = sha2::Sha256::digest(&wasm)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                if !actual.eq_ignore_ascii_case(expected) {
                    return Err(PolicyError::Pin {
                        path: path.display().to_string(),
                        expected: expected.clone(),
                        actual,
                    });
                }
            }
            let p = load_one(
                &runtime,
                &path.display().to_string(),
                &wasm,
                None,
                PolicySource::File(path.clone()),
            )?;
            match policies.iter().position(|q| q.id() == p.id()) {
                Some(i) => policies[i] = p,
                None => policies.push(p),
            }
        }
        Ok(Registry { runtime, policies })
    }

    pub fn get(&self, id: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.id() == id)
    }

    pub fn rule(&self, rule: &str) -> Option<(&Policy, &RuleInfo)> {
        self.policies.iter().find_map(|p| {
            p.metadata
                .rules
                .iter()
                .find(|r| r.id == rule)
                .map(|r| (p, r))
        })
    }

    /// Checks every policy's settings against its schema, filling `{}` for
    /// policies given none. Returns the JSON each policy receives.
    pub fn settings(
        &self,
        given: &BTreeMap<String, Value>,
    ) -> Result<BTreeMap<String, String>, PolicyError> {
        if let Some(unknown) = given.keys().find(|id| self.get(id).is_none()) {
            return Err(PolicyError::UnknownPolicy(unknown.clone()));
        }
        let empty = Value::Object(Default::default());
        let mut out = BTreeMap::new();
        for p in &self.policies {
            let value = given.get(p.id()).unwrap_or(&empty);
            let errors: Vec<String> = p
                .schema
                .iter_errors(value)
                .map(|e| {
                    let at = e.instance_path().to_string();
                    if at.is_empty() {
                        e.to_string()
                    } else {
                        format!("{at}: {e}")
                    }
                })
                .collect();
            if !errors.is_empty() {
                return Err(PolicyError::Settings {
                    policy: p.id().to_string(),
                    errors,
                });
            }
            out.insert(p.id().to_string(), value.to_string());
        }
        Ok(out)
    }

    /// Runs every policy on the batch, each in a fresh instance, in
    /// parallel; results come back in policy order.
    pub fn evaluate(
        &self,
        batch: &Batch,
        settings: &BTreeMap<String, String>,
    ) -> (Vec<(String, Finding)>, Vec<Failure>) {
        let (findings, failures, _) = self.evaluate_timed(batch, settings);
        (findings, failures)
    }

    /// As [`Registry::evaluate`], with each policy's wall time.
    pub fn evaluate_timed(&self, batch: &Batch, settings: &BTreeMap<String, String>) -> Evaluated {
        let prepared = self.runtime.prepare(batch);
        let results = on_workers(&self.policies, |p| {
            let started = Instant::now();
            let r =
                self.runtime
                    .validate_blocking(&p.component, &prepared, settings_of(settings, p));
            (r, started.elapsed())
        });
        gather(batch, self.policies.iter().zip(results))
    }

    /// The policies one after another on the calling task, each yielding at
    /// every epoch tick: what a server does per request, whose concurrency
    /// comes from its requests (a thread per request, or a hand-off to a
    /// blocking pool, only adds a spawn and a wake-up to each).
    pub async fn evaluate_in_turn(
        &self,
        batch: &Batch,
        settings: &BTreeMap<String, String>,
    ) -> Evaluated {
        let prepared = self.runtime.prepare(batch);
        let mut results = Vec::with_capacity(self.policies.len());
        for p in &self.policies {
            let started = Instant::now();
            let r = self
                .runtime
                .validate(&p.component, &prepared, settings_of(settings, p))
                .await;
            results.push(Some((r, started.elapsed())));
        }
        gather(batch, self.policies.iter().zip(results))
    }
}

/// Findings, failures, and each policy's wall time, in policy order.
pub type Evaluated = (
    Vec<(String, Finding)>,
    Vec<Failure>,
    Vec<(String, Duration)>,
);

fn settings_of<'s>(settings: &'s BTreeMap<String, String>, p: &Policy) -> &'s str {
    settings.get(p.id()).map(String::as_str).unwrap_or("{}")
}

/// `None` where evaluating the policy panicked a host thread.
fn gather<'p>(
    batch: &Batch,
    results: impl Iterator<
        Item = (
            &'p Policy,
            Option<(Result<Vec<Finding>, EngineError>, Duration)>,
        ),
    >,
) -> Evaluated {
    let mut timings = Vec::new();
    let mut findings = Vec::new();
    let mut failures = Vec::new();
    for (p, r) in results {
        let policy = p.id().to_string();
        let result = match r {
            Some((r, took)) => {
                timings.push((policy.clone(), took));
                r.map_err(|e| e.to_string())
            }
            None => Err("crashed the host thread evaluating it".to_string()),
        };
        match result {
            Ok(fs) => {
                for f in fs {
                    if (f.resource as usize) < batch.resources.len() {
                        findings.push((policy.clone(), f));
                    } else {
                        failures.push(Failure {
                            policy: policy.clone(),
                            message: format!(
                                "returned a finding for resource {} of a batch of {}",
                                f.resource,
                                batch.resources.len()
                            ),
                        });
                    }
                }
            }
            Err(message) => failures.push(Failure { policy, message }),
        }
    }
    (findings, failures, timings)
}

/// Runs `f` on every item, on at most one worker per core (the calling
/// thread is one of them), and returns the results in item order. A worker
/// thread per item cost more than the evaluations themselves on small batches:
/// spawning, and every extra thread widening the TLB shootdowns that resetting
/// a pooled instance's memory sends. `None` where `f` panicked.
pub fn on_workers<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<Option<R>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    let workers = cores().min(items.len());
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(item) = items.get(i) else { break };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(item))).ok();
        if let Ok(mut slot) = results[i].lock() {
            *slot = r;
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..workers {
            scope.spawn(work);
        }
        work();
    });
    results
        .into_iter()
        .map(|m| m.into_inner().ok().flatten())
        .collect()
}

/// `available_parallelism` reads the cgroup's CPU quota from /proc and /sys
/// on every call (7 % of a webhook evaluation's time when asked per request);
/// the answer does not change while the process lives.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn read(path: &Path) -> Result<Vec<u8>, PolicyError> {
    std::fs::read(path).map_err(|e| PolicyError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn load_one(
    runtime: &Runtime,
    name: &str,
    wasm: &[u8],
    sha256: Option<[u8; 32]>,
    source: PolicySource,
) -> Result<Policy, PolicyError> {
    let err = |error| PolicyError::Load {
        policy: name.to_string(),
        error,
    };
    let component = match sha256 {
        Some(h) => runtime.load_hashed(wasm, h),
        None => runtime.load(wasm),
    }
    .map_err(err)?;
    let metadata = runtime.metadata(&component).map_err(err)?;
    let schema_value: Value =
        serde_json::from_str(&metadata.settings_schema).map_err(|e| PolicyError::Schema {
            policy: metadata.id.clone(),
            message: e.to_string(),
        })?;
    let schema = jsonschema::validator_for(&schema_value).map_err(|e| PolicyError::Schema {
        policy: metadata.id.clone(),
        message: e.to_string(),
    })?;
    Ok(Policy {
        metadata,
        source,
        component,
        schema,
    })
}

#[cfg(test)]
mod tests {
    use super::on_workers;

    #[test]
    fn workers_keep_item_order_and_contain_a_panic() {
        let items: Vec<u32> = (0..9).collect();
        let out = on_workers(&items, |&i| {
            if i == 4 {
                panic!("policy thread crashed");
            }
            i * 10
        });
        let expected: Vec<Option<u32>> = (0..9)
            .map(|i| if i == 4 { None } else { Some(i * 10) })
            .collect();
        assert_eq!(out, expected);
        assert!(on_workers(&[] as &[u32], |&i| i).is_empty());
    }
}
