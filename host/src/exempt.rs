//! Severity overrides and exemptions, applied to located findings.
//!
//! An exemption is a decision someone made and must revisit, so it is never
//! silent: every exempted finding is reported (with its reason and where the
//! exemption is written), and an exemption past its expiry no longer applies
//! and is itself an error at its line in `lkguard.yaml`.

use serde_json::Value;

use crate::check::Located;
use crate::config::{Config, SeverityOverride};
use crate::load::Loaded;
use crate::locate::{self, Location};
use crate::model::{Finding, Severity};

/// The annotation that exempts its object from the rules it lists
/// (comma-separated), with the reason in [`REASON`].
pub const ANNOTATION: &str = "lkguard.io/exempt";
pub const REASON: &str = "lkguard.io/exempt-reason";

/// Findings about lkguard's own configuration carry this resource index.
pub const NO_RESOURCE: u32 = u32::MAX;

#[derive(Debug, Clone)]
pub enum Via {
    /// An entry of `lkguard.yaml`, at this location.
    Config {
        location: Option<Location>,
        expires: time::Date,
    },
    /// The object's own annotation.
    Annotation { location: Option<Location> },
}

#[derive(Debug, Clone)]
pub struct Exempted {
    pub located: Located,
    pub reason: String,
    pub via: Via,
}

#[derive(Debug, Default)]
pub struct Applied {
    pub findings: Vec<Located>,
    pub exempted: Vec<Exempted>,
    /// Findings of rules turned `off` in `lkguard.yaml`.
    pub off: usize,
}

/// `config_file`: the index of `lkguard.yaml` in `loaded.files`.
pub fn apply(
    findings: Vec<Located>,
    loaded: &Loaded,
    config: Option<(&Config, usize)>,
    today: time::Date,
) -> Applied {
    let mut out = Applied::default();
    let config_location = |pointer: &str| {
        let (_, file) = config?;
        locate::in_document(loaded, file, 0, pointer, None)
    };
    // Expired exemptions: an error wherever they are, matched or not.
    if let Some((c, _)) = config {
        for e in c.exemptions.iter().filter(|e| e.expires < today) {
            let at = format!("/exemptions/{}/expires", e.index);
            out.findings.push(Located {
                policy: "lkguard".into(),
                finding: Finding::error(
                    EXPIRED,
                    NO_RESOURCE,
                    at.clone(),
                    format!(
                        "the exemption of {} for {} expired on {}; its findings are reported again",
                        e.rule,
                        e.describe(),
                        e.expires
                    ),
                )
                .hint("fix the finding and delete the exemption, or renew it with a new reason and date"),
                location: config_location(&at),
                also_in: Vec::new(),
            });
        }
    }
    let mut bad_annotations = std::collections::BTreeSet::new();
    for mut l in findings {
        if let Some((c, _)) = config {
            match c.severity.get(&l.finding.rule) {
                Some(SeverityOverride::Off) => {
                    out.off += 1;
                    continue;
                }
                Some(SeverityOverride::Warning) => l.finding.severity = Severity::Warning,
                Some(SeverityOverride::Error) => l.finding.severity = Severity::Error,
                None => {}
            }
        }
        let Some(resource) = loaded.batch.resources.get(l.finding.resource as usize) else {
            out.findings.push(l);
            continue;
        };
        let origin = loaded
            .batch
            .origins
            .get(resource.origin as usize)
            .map(|o| o.name.as_str())
            .unwrap_or_default();
        let by_config = config.and_then(|(c, _)| {
            c.exemptions.iter().find(|e| {
                e.expires >= today
                    && e.rule == l.finding.rule
                    && e.covers(&resource.kind, &resource.name)
                    && e.namespace
                        .as_ref()
                        .is_none_or(|ns| resource.namespace.as_ref() == Some(ns))
                    && e.overlay.as_ref().is_none_or(|o| same_dir(o, origin))
            })
        });
        if let Some(e) = by_config {
            out.exempted.push(Exempted {
                reason: e.reason.clone(),
                via: Via::Config {
                    location: config_location(&format!("/exemptions/{}", e.index)),
                    expires: e.expires,
                },
                located: l,
            });
            continue;
        }
        let annotations = serde_json::from_str::<Value>(&resource.json)
            .ok()
            .and_then(|v| v.pointer("/metadata/annotations").cloned());
        let listed = annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION))
            .and_then(Value::as_str)
            .is_some_and(|rules| rules.split(',').any(|r| r.trim() == l.finding.rule));
        if listed {
            let at = format!("/metadata/annotations/{}", ANNOTATION.replace('/', "~1"));
            let anchor = Finding::error("", l.finding.resource, at, "");
            let location = locate::locate(loaded, &anchor);
            let reason = annotations
                .as_ref()
                .and_then(|a| a.get(REASON))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|r| !r.is_empty());
            match reason {
                Some(reason) => {
                    out.exempted.push(Exempted {
                        reason: reason.to_string(),
                        via: Via::Annotation { location },
                        located: l,
                    });
                    continue;
                }
                None => {
                    if bad_annotations.insert(l.finding.resource) {
                        out.findings.push(Located {
                            policy: "lkguard".into(),
                            finding: Finding::error(
                                NO_REASON,
                                l.finding.resource,
                                anchor.path.clone(),
                                format!(
                                    "`{ANNOTATION}` has no `{REASON}` beside it, so it exempts nothing"
                                ),
                            )
                            .hint(format!("say why in a `{REASON}` annotation")),
                            location,
                            also_in: Vec::new(),
                        });
                    }
                }
            }
        }
        out.findings.push(l);
    }
    out
}

/// Whether an origin (a render's display name) is the overlay directory.
fn same_dir(overlay: &std::path::Path, origin: &str) -> bool {
    let origin = std::path::Path::new(origin);
    let abs = std::env::current_dir()
        .map(|d| d.join(origin))
        .and_then(|p| p.canonicalize());
    abs.is_ok_and(|p| p == overlay)
}

pub const EXPIRED: &str = "lkguard/exemption-expired";
pub const NO_REASON: &str = "lkguard/exemption-reason";

/// lkguard's own rules, about exemptions rather than manifests.
pub fn own_rules() -> Vec<crate::model::RuleInfo> {
    vec![
        crate::model::RuleInfo {
            id: EXPIRED.into(),
            summary: "An lkguard.yaml exemption is past its expiry date".into(),
            rationale: "An exemption is a decision with a deadline: after `expires` it no longer \
                applies, the findings it covered are reported again, and the stale entry itself is an \
                error so it is fixed or renewed with a new reason."
                .into(),
        },
        crate::model::RuleInfo {
            id: NO_REASON.into(),
            summary: "An lkguard.io/exempt annotation has no lkguard.io/exempt-reason".into(),
            rationale: "An exemption without a reason cannot be reviewed; the annotation exempts \
                nothing until `lkguard.io/exempt-reason` says why."
                .into(),
        },
    ]
}

/// Today's date in UTC, for expiry.
pub fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}
