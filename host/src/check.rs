//! `lkguard check`: load, evaluate, locate. Rendering is `report`'s job.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use std::time::Duration;

use crate::config::{self, Config, ConfigError, PolicyRef};
use crate::engine::{Lifetime, Limits, Runtime};
use crate::exempt::{self, Exempted};
use crate::load::{self, Loaded};
use crate::locate::{self, Location};
use crate::model::{Finding, RuleInfo, Severity};
use crate::policy::{Failure, PolicyError, Registry, Selection};

pub struct Options {
    pub paths: Vec<PathBuf>,
    /// `--policy` files: added to what `lkguard.yaml` selects.
    pub policies: Vec<PathBuf>,
    /// `--settings`: over `lkguard.yaml`'s, per policy.
    pub settings: BTreeMap<String, Value>,
    pub cache_dir: Option<PathBuf>,
    /// Command-line limits, over `lkguard.yaml`'s, over the defaults.
    pub deadline_ms: Option<u64>,
    pub memory_mib: Option<usize>,
    /// `--config`; otherwise `lkguard.yaml` is looked for up from the first path.
    pub config: Option<PathBuf>,
    pub load: load::LoadOptions,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CheckError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigError),
}

/// What `lkguard.yaml` (if any) and the command line decide together.
pub struct Resolved {
    pub config: Option<Config>,
    pub selection: Selection,
    pub settings: BTreeMap<String, Value>,
    /// The policy ids `--settings` gave settings for (over `lkguard.yaml`).
    pub settings_from_flags: Vec<String>,
    pub limits: Limits,
}

impl Resolved {
    /// The settings each loaded policy receives, once everything
    /// `lkguard.yaml` says has been checked against the policies that
    /// were loaded: settings against each one's schema, and the rule ids of
    /// `severity:` and `exemptions:` against their rules. A mistake in the
    /// file is a diagnostic at its line (all of them at once), a mistake in
    /// `--settings` names the flag's policy. `lkguard config validate`
    /// runs exactly this, so it refuses what `check` would.
    pub fn policy_settings(
        &self,
        registry: &Registry,
    ) -> Result<BTreeMap<String, String>, CheckError> {
        let (out, problems) = registry.check_settings(&self.settings);
        let from_flags = problems
            .iter()
            .any(|p| self.settings_from_flags.contains(&p.entry()));
        match &self.config {
            Some(config) if !from_flags => {
                let mut located: Vec<(String, String)> = problems
                    .iter()
                    .map(|p| (format!("/settings{}", p.pointer()), p.message()))
                    .collect();
                located.extend(unknown_rules(registry, config));
                match located.is_empty() {
                    true => Ok(out),
                    false => Err(CheckError::Config(config.invalid(located))),
                }
            }
            _ if problems.is_empty() => Ok(out),
            // The same problems, as the flag's policy's error.
            _ => Ok(registry.settings(&self.settings)?),
        }
    }

    /// The embedded policies `lkguard.yaml`'s `policies:` leaves out: a
    /// list written for a smaller bundle quietly switches off what came
    /// later, so every report says what did not run.
    pub fn not_selected(&self) -> Vec<String> {
        match &self.selection.embedded {
            None => Vec::new(),
            Some(ids) => crate::policy::embedded_ids()
                .iter()
                .filter(|id| !ids.iter().any(|s| s == *id))
                .map(|id| id.to_string())
                .collect(),
        }
    }
}

/// Rule ids in `severity:` and `exemptions:` that no loaded policy has: a
/// typo there would otherwise exempt or silence nothing, in silence.
fn unknown_rules(registry: &Registry, config: &Config) -> Vec<(String, String)> {
    let own = exempt::own_rules();
    let known: Vec<&str> = registry
        .policies
        .iter()
        .flat_map(|p| p.metadata.rules.iter().map(|r| r.id.as_str()))
        .chain(own.iter().map(|r| r.id.as_str()))
        .collect();
    let problem = |pointer: String, rule: &str| {
        let owner = registry
            .unselected
            .iter()
            .find(|m| m.rules.iter().any(|r| r.id == rule));
        let message = match owner {
            Some(m) => format!(
                "`{rule}` is a rule of policy {}, which the policies: list does not select",
                m.id
            ),
            None => {
                let guess = crate::suggest::nearest(known.iter().copied(), rule)
                    .map(|n| format!("; did you mean `{n}`?"))
                    .unwrap_or_default();
                format!("`{rule}` is not a rule of the selected policies (`lkguard policies` lists them){guess}")
            }
        };
        (pointer, message)
    };
    let mut out: Vec<(String, String)> = config
        .severity
        .keys()
        .filter(|r| !known.contains(&r.as_str()))
        .map(|r| problem(lkguard_policy_sdk::pointer::push("/severity", r), r))
        .collect();
    out.extend(
        config
            .exemptions
            .iter()
            .filter(|e| !known.contains(&e.rule.as_str()))
            .map(|e| problem(format!("/exemptions/{}/rule", e.index), &e.rule)),
    );
    out
}

impl Options {
    pub fn resolve(&self) -> Result<Resolved, ConfigError> {
        let path = match &self.config {
            Some(p) => Some(p.clone()),
            None => {
                let start = self
                    .paths
                    .iter()
                    .find(|p| p.as_os_str() != "-")
                    .cloned()
                    .unwrap_or_else(|| PathBuf::from("."));
                config::discover(&start)
            }
        };
        let config = path.as_deref().map(config::load).transpose()?;
        let mut selection = Selection::default();
        let mut settings = BTreeMap::new();
        let mut limits = Limits::default();
        if let Some(c) = &config {
            if let Some(list) = &c.policies {
                let mut ids = Vec::new();
                for p in list {
                    match p {
                        PolicyRef::Embedded(id) => ids.push(id.clone()),
                        PolicyRef::File { path, sha256 } => {
                            selection.files.push((path.clone(), Some(sha256.clone())))
                        }
                    }
                }
                selection.embedded = Some(ids);
            }
            settings.extend(c.settings.clone());
            set_limits(&mut limits, c.deadline_ms, c.memory_mib);
        }
        selection
            .files
            .extend(self.policies.iter().map(|p| (p.clone(), None)));
        settings.extend(self.settings.clone());
        set_limits(&mut limits, self.deadline_ms, self.memory_mib);
        Ok(Resolved {
            config,
            selection,
            settings,
            settings_from_flags: self.settings.keys().cloned().collect(),
            limits,
        })
    }
}

/// Limits given (by `lkguard.yaml` or the command line) replace the ones
/// before them.
fn set_limits(limits: &mut Limits, deadline_ms: Option<u64>, memory_mib: Option<usize>) {
    if let Some(ms) = deadline_ms {
        limits.deadline = Duration::from_millis(ms);
    }
    if let Some(mib) = memory_mib {
        limits.memory_bytes = mib << 20;
    }
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
    /// Embedded policies `lkguard.yaml`'s `policies:` does not select.
    pub not_selected: Vec<String>,
    /// livekit-server containers in the batch, as the LiveKit policies
    /// recognise them (`None`: none of them ran). Zero makes a pass on the
    /// wrong directory say so.
    pub livekit_servers: Option<usize>,
    /// Findings accepted by an exemption: reported, never counted as errors.
    pub exempted: Vec<Exempted>,
    /// Findings of rules `lkguard.yaml` turns off.
    pub off: usize,
    /// Every rule that can report, with the policy that owns it, in policy
    /// order (lkguard's own rules last): what SARIF and JUnit describe.
    pub rules: Vec<(String, RuleInfo)>,
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
            || (self.loaded.files.is_empty() && self.loaded.skipped_paths.is_empty())
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
    selection: &Selection,
    cache_dir: Option<PathBuf>,
    limits: Limits,
    lifetime: Lifetime,
) -> Result<Registry, PolicyError> {
    let runtime = Runtime::new(cache_dir, limits, lifetime).map_err(|error| PolicyError::Load {
        policy: "engine".into(),
        error,
    })?;
    Registry::load(Arc::clone(&runtime), selection)
}

/// `lkguard config validate`: the file against lkguard.yaml's schema, then
/// against the policies it selects, loaded as `check` loads them. Returns
/// how many policies that is.
pub fn validate_config(
    path: &std::path::Path,
    cache_dir: Option<PathBuf>,
) -> Result<usize, CheckError> {
    let opts = Options {
        paths: Vec::new(),
        policies: Vec::new(),
        settings: BTreeMap::new(),
        cache_dir: cache_dir.clone(),
        deadline_ms: None,
        memory_mib: None,
        config: Some(path.to_path_buf()),
        load: load::LoadOptions::default(),
    };
    let resolved = opts.resolve()?;
    let registry = registry(
        &resolved.selection,
        cache_dir,
        resolved.limits,
        Lifetime::OneShot,
    )?;
    // A pinned component that does not load fails every check.
    if let Some(f) = registry.unloadable().into_iter().next() {
        return Err(CheckError::Policy(PolicyError::Io {
            path: f.policy,
            message: f.message,
        }));
    }
    resolved.policy_settings(&registry)?;
    Ok(registry.policies.len())
}

pub fn run(opts: &Options) -> Result<Outcome, CheckError> {
    let resolved = opts.resolve()?;
    let registry = registry(
        &resolved.selection,
        opts.cache_dir.clone(),
        resolved.limits,
        Lifetime::OneShot,
    )?;
    let settings = resolved.policy_settings(&registry)?;
    let mut load_options = opts.load.clone();
    if let Some(c) = &resolved.config {
        load_options.exclude = c.exclude();
    }
    let loaded = load::load(&opts.paths, &load_options);
    let mut outcome = evaluate(&registry, &settings, resolved.config.as_ref(), loaded);
    outcome.not_selected = resolved.not_selected();
    Ok(outcome)
}

/// The livekit-server containers of the batch, found as the embedded
/// policies find them (by image or container name, from their settings).
fn livekit_servers(
    registry: &Registry,
    settings: &BTreeMap<String, String>,
    batch: &crate::model::Batch,
) -> Option<usize> {
    let embedded = registry
        .policies
        .iter()
        .find(|p| p.source == crate::policy::PolicySource::Embedded)?;
    let target: lkguard_policy_sdk::livekit::Target = settings
        .get(embedded.id())
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    let objects = batch.objects();
    let templates = lkguard_policy_sdk::workload::pod_templates(&objects);
    Some(target.find(&templates).len())
}

/// Everything after loading: the policies on the batch, each finding
/// located in the file to edit, sorted, merged across overlays, and
/// `lkguard.yaml`'s severities and exemptions applied.
pub fn evaluate(
    registry: &Registry,
    settings: &BTreeMap<String, String>,
    config: Option<&Config>,
    mut loaded: Loaded,
) -> Outcome {
    let (findings, failures) = if loaded.batch.resources.is_empty() {
        (Vec::new(), registry.unloadable())
    } else {
        registry.evaluate(&loaded.batch, settings)
    };
    // lkguard.yaml is a file findings can point into (expired exemptions).
    let config_file = config.map(|c| {
        loaded.files.push(load::SourceFile::new(
            c.name.clone(),
            c.text.clone(),
            vec![load::documents::Document {
                value: Value::Null,
                spans: c.spans.clone(),
            }],
        ));
        loaded.files.len() - 1
    });
    loaded.config_file = config_file;
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
    // By file name, line, column, rule: the same input gives byte-identical
    // output whatever order files were read in.
    findings.sort_by(|a, b| {
        let key = |l: &Located| {
            (
                l.location.is_none(),
                l.location.map(|p| loaded.files[p.file].name.clone()),
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
    let applied = exempt::apply(findings, &loaded, config.zip(config_file), exempt::today());
    let livekit_servers = livekit_servers(registry, settings, &loaded.batch);
    Outcome {
        loaded,
        findings: applied.findings,
        exempted: applied.exempted,
        off: applied.off,
        failures,
        policies: registry.policies.len(),
        not_selected: Vec::new(),
        livekit_servers,
        rules: registry
            .policies
            .iter()
            .flat_map(|p| {
                p.metadata
                    .rules
                    .iter()
                    .map(|r| (p.id().to_string(), r.clone()))
            })
            .chain(
                exempt::own_rules()
                    .into_iter()
                    .map(|r| ("lkguard".to_string(), r)),
            )
            .collect(),
    }
}
