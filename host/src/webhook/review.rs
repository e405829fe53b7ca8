//! One AdmissionReview -> one verdict, with the same registry, settings,
//! severity overrides and exemptions as `lkguard check`.
//!
//! The object under review is the whole batch, in an origin that is
//! deployable but not complete: a rule that needs another object (NODE_IP
//! equal to the RTC Service's pinned IP, "no RTC Service in the render")
//! cannot see it, and the policies skip it rather than guess.

use std::collections::BTreeMap;
use std::time::Duration;

use kube_core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube_core::DynamicObject;
use serde_json::Value;

use crate::check::{self, Located};
use crate::config::Config;
use crate::engine::Lifetime;
use crate::exempt;
use crate::load::Loaded;
use crate::model::{Batch, Origin, Severity};
use crate::policy::Registry;

pub const API_VERSION: &str = "admission.k8s.io/v1";

/// Why a request could not be reviewed at all (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("expected apiVersion {API_VERSION} and kind AdmissionReview, got {0}")]
    Version(String),
    #[error("not an AdmissionReview request: {0}")]
    Shape(String),
}

/// What the webhook decided, before it is written into a response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// Denial reasons, one per error finding or failed policy.
    pub reasons: Vec<String>,
    pub warnings: Vec<String>,
    /// Rule ids of the error findings (for metrics).
    pub denied_rules: Vec<String>,
    /// Rule ids of every finding, errors and warnings (for tests and logs).
    pub rules: Vec<String>,
}

pub struct Reviewer {
    pub registry: Registry,
    pub settings: BTreeMap<String, String>,
    pub config: Option<Config>,
}

/// A parsed request: what to log, and how to answer.
pub struct Request {
    pub uid: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub operation: String,
    pub dry_run: bool,
    request: AdmissionRequest<DynamicObject>,
    object: Option<Value>,
}

pub fn parse(body: &[u8]) -> Result<Request, ReviewError> {
    let mut raw: Value =
        serde_json::from_slice(body).map_err(|e| ReviewError::Json(e.to_string()))?;
    let api = raw
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    let kind = raw.get("kind").and_then(Value::as_str).unwrap_or("<none>");
    if api != API_VERSION || kind != "AdmissionReview" {
        return Err(ReviewError::Version(format!("{api} {kind}")));
    }
    // Taken out, not copied, and oldObject dropped: the typed request is only
    // for answering (uid, kinds), and converting an object into kube-core's
    // DynamicObject (a flattened map) costs as much as a policy evaluating it.
    let object = raw
        .pointer_mut("/request/object")
        .map(Value::take)
        .filter(Value::is_object)
        .map(without_managed_fields);
    if let Some(old) = raw.pointer_mut("/request/oldObject") {
        old.take();
    }
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_value(raw).map_err(|e| ReviewError::Shape(e.to_string()))?;
    let request: AdmissionRequest<DynamicObject> =
        review
            .try_into()
            .map_err(|e: kube_core::admission::ConvertAdmissionReviewError| {
                ReviewError::Shape(e.to_string())
            })?;
    Ok(Request {
        uid: request.uid.clone(),
        kind: request.kind.kind.clone(),
        name: request.name.clone(),
        namespace: request.namespace.clone(),
        operation: format!("{:?}", request.operation).to_uppercase(),
        dry_run: request.dry_run,
        request,
        object,
    })
}

/// The API server adds `metadata.managedFields` (field names, no values) to
/// every object it sends, often larger than the spec itself. No policy reads
/// it and no rendered manifest carries it, so every policy would only parse
/// it for nothing.
fn without_managed_fields(mut object: Value) -> Value {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
    }
    object
}

impl Request {
    /// The AdmissionReview answering this request with `verdict`.
    pub fn respond(&self, verdict: &Verdict) -> AdmissionReview<DynamicObject> {
        let mut response = AdmissionResponse::from(&self.request);
        if !verdict.allowed {
            response = response.deny(verdict.reasons.join("; "));
        }
        if !verdict.warnings.is_empty() {
            response.warnings = Some(verdict.warnings.clone());
        }
        response.into_review()
    }

    /// The object to evaluate: CREATE and UPDATE carry one; DELETE and
    /// CONNECT are not changes to a manifest and are allowed.
    fn subject(&self) -> Option<&Value> {
        match self.request.operation {
            Operation::Create | Operation::Update => self.object.as_ref(),
            Operation::Delete | Operation::Connect => None,
        }
    }
}

impl Reviewer {
    /// The registry, settings and `lkguard.yaml` that `options` select, as
    /// `lkguard check` would resolve them. A server passes its request
    /// deadline as `max_deadline`: an evaluation allowed to outlive the
    /// answer would go on burning a core for a request already denied.
    pub fn load(
        options: &check::Options,
        lifetime: Lifetime,
        max_deadline: Option<Duration>,
    ) -> Result<Self, check::CheckError> {
        let mut resolved = options.resolve()?;
        if let Some(max) = max_deadline.filter(|max| resolved.limits.deadline > *max) {
            tracing::warn!(
                policy_deadline_ms = resolved.limits.deadline.as_millis() as u64,
                request_deadline_ms = max.as_millis() as u64,
                "the policy deadline is longer than the request deadline; using the request deadline"
            );
            resolved.limits.deadline = max;
        }
        let registry = check::registry(
            &resolved.selection,
            options.cache_dir.clone(),
            resolved.limits,
            lifetime,
        )?;
        let settings = resolved.policy_settings(&registry)?;
        Ok(Reviewer {
            registry,
            settings,
            config: resolved.config,
        })
    }

    /// Evaluates the request's object; `timings` receives each policy's
    /// evaluation time. Fails closed: a policy that could not run denies.
    /// The policies run one after another on the calling task (see
    /// [`crate::policy::Registry::evaluate_in_turn`]).
    pub async fn review(&self, req: &Request, timings: &mut Vec<(String, Duration)>) -> Verdict {
        let allowed = Verdict {
            allowed: true,
            ..Verdict::default()
        };
        let Some(object) = req.subject() else {
            return allowed;
        };
        let Some(mut resource) = crate::load::resource(object, 0) else {
            return allowed;
        };
        // A namespaced object may leave its namespace to the request.
        if resource.namespace.is_none() {
            resource.namespace = req.namespace.clone();
        }
        let loaded = Loaded {
            batch: Batch {
                origins: vec![Origin {
                    name: "admission".into(),
                    deployable: true,
                    complete: false,
                }],
                resources: vec![resource],
                ..Default::default()
            },
            ..Loaded::default()
        };
        let (findings, failures, times) = self
            .registry
            .evaluate_in_turn(&loaded.batch, &self.settings)
            .await;
        timings.extend(times);
        let located: Vec<Located> = findings
            .into_iter()
            .map(|(policy, finding)| Located {
                policy,
                finding,
                location: None,
                also_in: Vec::new(),
            })
            .collect();
        let applied = exempt::apply(
            located,
            &loaded,
            self.config.as_ref().map(|c| (c, usize::MAX)),
            exempt::today(),
        );
        let describe = |l: &Located| {
            let f = &l.finding;
            match &f.embedded_path {
                Some(inner) => format!("{}: {} ({}#{inner})", f.rule, f.message, f.path),
                None => format!("{}: {} ({})", f.rule, f.message, f.path),
            }
        };
        let mut verdict = allowed;
        for f in &failures {
            verdict.allowed = false;
            verdict.reasons.push(format!(
                "lkguard could not evaluate policy {}: it {}",
                f.policy, f.message
            ));
        }
        for l in &applied.findings {
            verdict.rules.push(l.finding.rule.clone());
            // lkguard.yaml's own findings (an expired exemption) are for the
            // repository to fix; at admission they warn rather than block
            // every apply.
            let about_config = l.finding.resource == exempt::NO_RESOURCE;
            match l.finding.severity {
                _ if about_config => verdict
                    .warnings
                    .push(format!("{}: {}", l.finding.rule, l.finding.message)),
                Severity::Error => {
                    verdict.allowed = false;
                    verdict.reasons.push(describe(l));
                    verdict.denied_rules.push(l.finding.rule.clone());
                }
                Severity::Warning => verdict.warnings.push(describe(l)),
            }
        }
        verdict
    }
}
