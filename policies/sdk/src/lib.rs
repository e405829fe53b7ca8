//! Guest-side helpers shared by the lkguard policies.
//!
//! Everything here is plain Rust so that each rule is unit-tested natively and
//! then runs unchanged inside the wasm component. The wit-bindgen glue is one
//! macro, [`export_policy!`], so a policy crate's `lib.rs` stays a few lines.

pub mod goyaml;
pub mod image;
pub mod livekit;
pub mod model;
pub mod pointer;
pub mod settings;
pub mod testkit;
pub mod workload;

pub use model::{Batch, Finding, Metadata, Object, Origin, Resource, RuleInfo, Severity};

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub use wit_bindgen;

/// What a policy crate implements; [`export_policy!`] turns it into a component.
pub trait Policy {
    fn metadata() -> Metadata;
    fn validate(batch: &Batch, settings: &str) -> Result<Vec<Finding>, String>;
}

/// Exports a [`Policy`] implementation as the `lkguard:policy` world.
///
/// Compiled only for wasm32: natively the policy is an ordinary library, so the
/// host's benchmark can link all of them side by side without symbol clashes.
#[macro_export]
macro_rules! export_policy {
    ($policy:ident) => {
        #[cfg(target_arch = "wasm32")]
        mod __lkguard_component {
            $crate::wit_bindgen::generate!({
                path: "../../wit",
                world: "policy",
                runtime_path: "lkguard_policy_sdk::wit_bindgen::rt",
            });

            use lkguard::policy::types as wit;

            struct Component;

            impl Guest for Component {
                fn metadata() -> wit::Metadata {
                    let m = <super::$policy as $crate::Policy>::metadata();
                    wit::Metadata {
                        id: m.id,
                        version: m.version,
                        rules: m
                            .rules
                            .into_iter()
                            .map(|r| wit::RuleInfo {
                                id: r.id,
                                summary: r.summary,
                                rationale: r.rationale,
                            })
                            .collect(),
                        settings_schema: m.settings_schema,
                    }
                }

                fn validate(
                    batch: wit::Batch,
                    settings: String,
                ) -> Result<Vec<wit::Finding>, String> {
                    let batch = $crate::Batch {
                        origins: batch
                            .origins
                            .into_iter()
                            .map(|o| $crate::Origin {
                                name: o.name,
                                deployable: o.deployable,
                                complete: o.complete,
                            })
                            .collect(),
                        resources: batch
                            .resources
                            .into_iter()
                            .map(|r| $crate::Resource {
                                api_version: r.api_version,
                                kind: r.kind,
                                name: r.name,
                                namespace: r.namespace,
                                origin: r.origin,
                                json: r.json,
                            })
                            .collect(),
                    };
                    let findings = <super::$policy as $crate::Policy>::validate(&batch, &settings)?;
                    Ok(findings
                        .into_iter()
                        .map(|f| wit::Finding {
                            rule: f.rule,
                            severity: match f.severity {
                                $crate::Severity::Error => wit::Severity::Error,
                                $crate::Severity::Warning => wit::Severity::Warning,
                            },
                            message: f.message,
                            resource: f.resource,
                            path: f.path,
                            embedded_path: f.embedded_path,
                            hint: f.hint,
                        })
                        .collect())
                }
            }

            export!(Component);
        }
    };
}
