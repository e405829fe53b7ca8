//! The policies that run: the members of the embedded LiveKit set plus
//! `--policy` components, each with its metadata and settings schema.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lkguard_policy_sdk::pointer;
use serde_json::Value;
use sha2::Digest as _;

use crate::engine::{EngineError, LoadedComponent, LoadedSet, PreparedBatch, Runtime};
use crate::model::{Batch, Finding, Metadata, RuleInfo};

mod bundle {
    include!(concat!(env!("OUT_DIR"), "/bundle.rs"));
}

/// The sha256 of the embedded policy set component.
pub fn embedded_sha256() -> [u8; 32] {
    bundle::SET.1
}

/// The ids of the embedded policies, in report order.
pub fn embedded_ids() -> &'static [&'static str] {
    bundle::MEMBERS
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
    runs: Runs,
    schema: jsonschema::Validator,
}

/// Where a policy's code is.
enum Runs {
    /// A component of its own (`--policy`).
    Own(LoadedComponent),
    /// This member of the embedded set.
    Member(u32),
    /// A `--policy` file that could not be loaded (not a component, another
    /// contract version, metadata that trapped): every evaluation fails
    /// with this, so a check never passes without it, and the other
    /// policies still report.
    Unloadable(String),
}

/// What one evaluation instantiates: the embedded set for its selected
/// members (indices into `Registry::policies`), or one policy's own component.
enum Unit {
    Set(Vec<usize>),
    Own(usize),
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

/// Settings a policy refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsProblem {
    /// Settings for a policy that is not loaded.
    UnknownPolicy(String),
    /// `pointer` is into the settings map: `/<policy id or *>/<key>...`.
    Invalid {
        policy: String,
        pointer: String,
        message: String,
    },
}

impl SettingsProblem {
    pub fn pointer(&self) -> String {
        match self {
            SettingsProblem::UnknownPolicy(id) => pointer::push("", id),
            SettingsProblem::Invalid { pointer, .. } => pointer.clone(),
        }
    }

    /// The top-level key of the settings map it is about.
    pub fn entry(&self) -> String {
        match self {
            SettingsProblem::UnknownPolicy(id) => id.clone(),
            SettingsProblem::Invalid { pointer, .. } => {
                pointer::unescape(pointer.split('/').nth(1).unwrap_or_default())
            }
        }
    }

    pub fn message(&self) -> String {
        match self {
            SettingsProblem::UnknownPolicy(id) => {
                format!("settings name policy `{id}`, which is not loaded")
            }
            SettingsProblem::Invalid { message, .. } => message.clone(),
        }
    }
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
    /// The embedded set, when any of its members is selected.
    set: Option<LoadedSet>,
    /// Members of the embedded set that were not selected, for messages
    /// about their rules ("not selected" is not "no such rule").
    pub unselected: Vec<Metadata>,
    units: Vec<Unit>,
}

impl Registry {
    /// The embedded bundle (all of it, or the ids selected), then each
    /// file, which replaces an embedded policy of the same id or adds a new
    /// one. A file pinned by sha256 that does not match is refused.
    pub fn load(runtime: Arc<Runtime>, selection: &Selection) -> Result<Self, PolicyError> {
        let selected = |id: &str| {
            selection
                .embedded
                .as_ref()
                .is_none_or(|ids| ids.iter().any(|s| s == id))
        };
        if let Some(ids) = &selection.embedded {
            if let Some(unknown) = ids
                .iter()
                .find(|id| !bundle::MEMBERS.contains(&id.as_str()))
            {
                return Err(PolicyError::NotEmbedded(unknown.clone()));
            }
        }
        let mut policies = Vec::new();
        let mut unselected = Vec::new();
        let mut set = None;
        if bundle::MEMBERS.iter().any(|id| selected(id)) {
            let (wasm, sha256) = bundle::SET;
            let err = |error| PolicyError::Load {
                policy: "embedded LiveKit set".into(),
                error,
            };
            let loaded = runtime.load_set(wasm, sha256).map_err(err)?;
            let members = runtime.members(&loaded).map_err(err)?;
            let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
            if ids != bundle::MEMBERS {
                return Err(err(EngineError::Link(format!(
                    "its members are {ids:?}, expected {:?}",
                    bundle::MEMBERS
                ))));
            }
            for (i, metadata) in members.into_iter().enumerate() {
                if selected(&metadata.id) {
                    let schema = schema(&metadata)?;
                    policies.push(Policy {
                        metadata,
                        source: PolicySource::Embedded,
                        runs: Runs::Member(i as u32),
                        schema,
                    });
                } else {
                    unselected.push(metadata);
                }
            }
            set = Some(loaded);
        }
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
            let p = match load_one(&runtime, path, &wasm) {
                Err(PolicyError::Load { error, .. }) => unloadable(path, error)?,
                loaded => loaded?,
            };
            match policies.iter().position(|q| q.id() == p.id()) {
                Some(i) => policies[i] = p,
                None => policies.push(p),
            }
        }
        let members: Vec<usize> = (0..policies.len())
            .filter(|&i| matches!(policies[i].runs, Runs::Member(_)))
            .collect();
        let mut units = Vec::new();
        if !members.is_empty() {
            units.push(Unit::Set(members));
        }
        units.extend(
            (0..policies.len())
                .filter(|&i| !matches!(policies[i].runs, Runs::Member(_)))
                .map(Unit::Own),
        );
        Ok(Registry {
            unselected,
            runtime,
            policies,
            set,
            units,
        })
    }

    /// The policies that could not be loaded, as the failures they cause.
    pub fn unloadable(&self) -> Vec<Failure> {
        self.policies
            .iter()
            .filter_map(|p| match &p.runs {
                Runs::Unloadable(message) => Some(Failure {
                    policy: p.id().to_string(),
                    message: EngineError::Unloadable(message.clone()).to_string(),
                }),
                _ => None,
            })
            .collect()
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
    ///
    /// `"*"` holds settings shared by every policy that declares them (the
    /// LiveKit `topology`, say, which several rules read): each policy gets
    /// the shared properties its schema names, under its own.
    pub fn settings(
        &self,
        given: &BTreeMap<String, Value>,
    ) -> Result<BTreeMap<String, String>, PolicyError> {
        let (out, problems) = self.check_settings(given);
        match problems.first() {
            None => Ok(out),
            Some(SettingsProblem::UnknownPolicy(id)) => Err(PolicyError::UnknownPolicy(id.clone())),
            Some(SettingsProblem::Invalid { policy, .. }) => Err(PolicyError::Settings {
                policy: policy.clone(),
                errors: problems
                    .iter()
                    .filter_map(|p| match p {
                        SettingsProblem::Invalid {
                            policy: q,
                            pointer,
                            message,
                        } if q == policy => {
                            Some(match pointer.get(1..).and_then(|p| p.split_once('/')) {
                                Some((_, rest)) => format!("/{rest}: {message}"),
                                None => message.clone(),
                            })
                        }
                        _ => None,
                    })
                    .collect(),
            }),
        }
    }

    /// Every problem with the settings at once (a configuration file is
    /// fixed in one pass, not one error per run), each at a JSON pointer
    /// into the settings map: `/<policy id>/<key>`, `/*/<key>`.
    pub fn check_settings(
        &self,
        given: &BTreeMap<String, Value>,
    ) -> (BTreeMap<String, String>, Vec<SettingsProblem>) {
        let mut problems: Vec<SettingsProblem> = given
            .keys()
            .filter(|id| *id != SHARED && self.get(id).is_none())
            .map(|id| SettingsProblem::UnknownPolicy(id.clone()))
            .collect();
        let shared = given
            .get(SHARED)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for orphan in shared.keys().filter(|k| {
            !self
                .policies
                .iter()
                .any(|p| declared(&p.metadata).contains(*k))
        }) {
            problems.push(SettingsProblem::Invalid {
                policy: SHARED.into(),
                pointer: pointer::push(&format!("/{SHARED}"), orphan),
                message: format!("`{orphan}` is a setting of no loaded policy"),
            });
        }
        let mut out = BTreeMap::new();
        for p in &self.policies {
            let names = declared(&p.metadata);
            let own = given.get(p.id());
            let mut merged: serde_json::Map<String, Value> = shared
                .iter()
                .filter(|(k, _)| names.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let value = match own {
                Some(Value::Object(own)) => {
                    merged.extend(own.clone());
                    Value::Object(merged)
                }
                // Not an object: the schema says so below.
                Some(other) => other.clone(),
                None => Value::Object(merged),
            };
            // A shared value is reported where it is written, under `*`.
            let written_at = |key: &str| {
                let own_has = own.and_then(|o| o.get(key)).is_some();
                let id = if own_has || !shared.contains_key(key) {
                    p.id()
                } else {
                    SHARED
                };
                pointer::push(&pointer::push("", id), key)
            };
            for e in p.schema.iter_errors(&value) {
                let at = e.instance_path().to_string();
                if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } =
                    e.kind()
                {
                    if at.is_empty() {
                        // The whole list, not a guess: `tcp_port` is one
                        // edit from `udp_port` and means something else.
                        for key in unexpected {
                            problems.push(SettingsProblem::Invalid {
                                policy: p.id().to_string(),
                                pointer: written_at(key),
                                message: format!(
                                    "`{key}` is not a setting of policy {} (its settings: {})",
                                    p.id(),
                                    names.join(", ")
                                ),
                            });
                        }
                        continue;
                    }
                }
                let first = at.split('/').nth(1).unwrap_or_default();
                let pointer = if first.is_empty() {
                    format!("/{}", p.id())
                } else {
                    let unescaped = pointer::unescape(first);
                    format!("{}{}", written_at(&unescaped), &at[1 + first.len()..])
                };
                problems.push(SettingsProblem::Invalid {
                    policy: p.id().to_string(),
                    pointer,
                    message: e.to_string(),
                });
            }
            out.insert(p.id().to_string(), value.to_string());
        }
        (out, problems)
    }

    /// Runs every policy on the batch, in fresh instances: the embedded
    /// set's members in one, each `--policy` component in its own, side by
    /// side on the cores. Results come back in policy order.
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
        let per_unit = on_workers(&self.units, |u| {
            crate::engine::block_on(self.run(u, &prepared, settings))
        });
        let mut results: Vec<Option<Outcome>> = self.policies.iter().map(|_| None).collect();
        for (unit, outcome) in self.units.iter().zip(per_unit) {
            // A unit that crashed its host thread leaves its policies `None`.
            for (i, r) in unit.policies().iter().zip(outcome.into_iter().flatten()) {
                results[*i] = Some(r);
            }
        }
        gather(batch, self.policies.iter().zip(results))
    }

    /// The units one after another on the calling task, each yielding at
    /// every epoch tick: what a server does per request, whose concurrency
    /// comes from its requests (a thread per request, or a hand-off to a
    /// blocking pool, only adds a spawn and a wake-up to each).
    pub async fn evaluate_in_turn(
        &self,
        batch: &Batch,
        settings: &BTreeMap<String, String>,
    ) -> Evaluated {
        let prepared = self.runtime.prepare(batch);
        let mut results: Vec<Option<Outcome>> = self.policies.iter().map(|_| None).collect();
        for unit in &self.units {
            let outcome = self.run(unit, &prepared, settings).await;
            for (i, r) in unit.policies().iter().zip(outcome) {
                results[*i] = Some(r);
            }
        }
        gather(batch, self.policies.iter().zip(results))
    }

    /// One unit's outcomes, in the order of [`Unit::policies`].
    async fn run(
        &self,
        unit: &Unit,
        prepared: &PreparedBatch,
        settings: &BTreeMap<String, String>,
    ) -> Vec<Outcome> {
        match unit {
            Unit::Own(i) => {
                let p = &self.policies[*i];
                let component = match &p.runs {
                    Runs::Own(component) => component,
                    Runs::Unloadable(message) => {
                        return vec![(
                            Err(EngineError::Unloadable(message.clone())),
                            Duration::ZERO,
                        )]
                    }
                    Runs::Member(_) => {
                        unreachable!("members are evaluated in the set's unit")
                    }
                };
                let started = Instant::now();
                let r = self
                    .runtime
                    .validate(component, prepared, settings_of(settings, p))
                    .await;
                vec![(r, started.elapsed())]
            }
            Unit::Set(members) => {
                let Some(set) = &self.set else {
                    unreachable!("a set unit is built only when the set is loaded")
                };
                let calls: Vec<(u32, &str)> = members
                    .iter()
                    .filter_map(|&i| match self.policies[i].runs {
                        Runs::Member(m) => Some((m, settings_of(settings, &self.policies[i]))),
                        Runs::Own(_) | Runs::Unloadable(_) => None,
                    })
                    .collect();
                self.runtime.validate_set(set, prepared, &calls).await
            }
        }
    }
}

impl Unit {
    fn policies(&self) -> &[usize] {
        match self {
            Unit::Set(members) => members,
            Unit::Own(i) => std::slice::from_ref(i),
        }
    }
}

/// One policy's result and wall time.
type Outcome = (Result<Vec<Finding>, EngineError>, Duration);

/// Findings, failures, and each policy's wall time, in policy order.
pub type Evaluated = (
    Vec<(String, Finding)>,
    Vec<Failure>,
    Vec<(String, Duration)>,
);

/// The key of settings shared by every policy that declares them.
pub const SHARED: &str = "*";

/// The property names a policy's settings schema declares.
fn declared(metadata: &Metadata) -> Vec<String> {
    serde_json::from_str::<Value>(&metadata.settings_schema)
        .ok()
        .and_then(|s| {
            s.get("properties")?
                .as_object()
                .map(|p| p.keys().cloned().collect())
        })
        .unwrap_or_default()
}

fn settings_of<'s>(settings: &'s BTreeMap<String, String>, p: &Policy) -> &'s str {
    settings.get(p.id()).map(String::as_str).unwrap_or("{}")
}

/// `None` where evaluating the policy panicked a host thread.
fn gather<'p>(
    batch: &Batch,
    results: impl Iterator<Item = (&'p Policy, Option<Outcome>)>,
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

fn load_one(runtime: &Runtime, path: &Path, wasm: &[u8]) -> Result<Policy, PolicyError> {
    let err = |error| PolicyError::Load {
        policy: path.display().to_string(),
        error,
    };
    let component = runtime.load(wasm).map_err(err)?;
    let metadata = runtime.metadata(&component).map_err(err)?;
    let schema = schema(&metadata)?;
    Ok(Policy {
        metadata,
        source: PolicySource::File(path.to_path_buf()),
        runs: Runs::Own(component),
        schema,
    })
}

/// A `--policy` file that did not load, kept as a policy that fails: named
/// by its path (its metadata is what could not be read).
fn unloadable(path: &Path, error: EngineError) -> Result<Policy, PolicyError> {
    let metadata = Metadata {
        id: path.display().to_string(),
        version: String::new(),
        rules: Vec::new(),
        settings_schema: r#"{"type": "object"}"#.into(),
    };
    let schema = schema(&metadata)?;
    Ok(Policy {
        metadata,
        source: PolicySource::File(path.to_path_buf()),
        runs: Runs::Unloadable(error.to_string()),
        schema,
    })
}

fn schema(metadata: &Metadata) -> Result<jsonschema::Validator, PolicyError> {
    let schema_value: Value =
        serde_json::from_str(&metadata.settings_schema).map_err(|e| PolicyError::Schema {
            policy: metadata.id.clone(),
            message: e.to_string(),
        })?;
    jsonschema::validator_for(&schema_value).map_err(|e| PolicyError::Schema {
        policy: metadata.id.clone(),
        message: e.to_string(),
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
