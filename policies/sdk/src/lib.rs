//! Guest-side helpers shared by the lkguard policies.
//!
//! Everything here is plain Rust so that each rule is unit-tested natively and
//! then runs unchanged inside the wasm component. The wit-bindgen glue is one
//! macro, [`export_policy!`], so a policy crate's `lib.rs` stays a few lines.

pub mod effective;
pub mod env;
pub mod flags;
pub mod goyaml;
pub mod image;
pub mod livekit;
pub mod model;
pub mod place;
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
/// Compiled only for wasm32 and with the policy crate's `component` feature
/// (on by default): natively the policy is an ordinary library, so the host's
/// benchmark can link all of them side by side, and a policy set
/// ([`export_policy_set!`]) links them into one component without their own
/// exports clashing.
#[macro_export]
macro_rules! export_policy {
    ($policy:ident) => {
        #[cfg(all(target_arch = "wasm32", feature = "component"))]
        mod __lkguard_component {
            $crate::wit_bindgen::generate!({
                path: "../../wit",
                world: "policy",
                runtime_path: "lkguard_policy_sdk::wit_bindgen::rt",
            });

            use lkguard::policy::types as wit;

            $crate::__wit_conversions!();

            struct Component;

            impl Guest for Component {
                fn metadata() -> wit::Metadata {
                    to_wit_metadata(<super::$policy as $crate::Policy>::metadata())
                }

                fn validate(
                    batch: wit::Batch,
                    settings: String,
                ) -> Result<Vec<wit::Finding>, String> {
                    let batch = from_wit_batch(batch);
                    <super::$policy as $crate::Policy>::validate(&batch, &settings)
                        .map(to_wit_findings)
                }
            }

            export!(Component);
        }
    };
}

/// Exports several [`Policy`] implementations as one `lkguard:policy-set`
/// component, numbered in the order given.
///
/// The batch handed to `load` is kept in the instance for the `validate`
/// calls that follow; the host makes a fresh instance for every batch, so
/// nothing outlives it.
#[macro_export]
macro_rules! export_policy_set {
    ($($policy:path),+ $(,)?) => {
        #[cfg(target_arch = "wasm32")]
        mod __lkguard_policy_set {
            $crate::wit_bindgen::generate!({
                path: "../../wit",
                world: "policy-set",
                runtime_path: "lkguard_policy_sdk::wit_bindgen::rt",
            });

            use lkguard::policy::types as wit;

            $crate::__wit_conversions!();

            type Validate = fn(&$crate::Batch, &str) -> Result<Vec<$crate::Finding>, String>;

            const MEMBERS: &[(fn() -> $crate::Metadata, Validate)] = &[
                $((<$policy as $crate::Policy>::metadata, <$policy as $crate::Policy>::validate)),+
            ];

            ::std::thread_local! {
                static BATCH: ::std::cell::RefCell<Option<$crate::Batch>> =
                    const { ::std::cell::RefCell::new(None) };
            }

            struct Component;

            impl Guest for Component {
                fn members() -> Vec<wit::Metadata> {
                    MEMBERS.iter().map(|(metadata, _)| to_wit_metadata(metadata())).collect()
                }

                fn load(batch: wit::Batch) {
                    let batch = from_wit_batch(batch);
                    BATCH.with(|b| *b.borrow_mut() = Some(batch));
                }

                fn validate(member: u32, settings: String) -> Result<Vec<wit::Finding>, String> {
                    let (_, validate) = MEMBERS
                        .get(member as usize)
                        .ok_or_else(|| format!("no member {member} in a set of {}", MEMBERS.len()))?;
                    BATCH.with(|b| match &*b.borrow() {
                        Some(batch) => validate(batch, &settings).map(to_wit_findings),
                        None => Err("validate was called before load".to_string()),
                    })
                }
            }

            export!(Component);
        }
    };
}

/// The conversions between the SDK's types and one world's generated `wit`
/// types; expanded inside each export module, where `wit` is in scope.
#[doc(hidden)]
#[macro_export]
macro_rules! __wit_conversions {
    () => {
        fn to_wit_metadata(m: $crate::Metadata) -> wit::Metadata {
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

        fn from_wit_batch(batch: wit::Batch) -> $crate::Batch {
            $crate::Batch {
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
                ..Default::default()
            }
        }

        fn to_wit_findings(findings: Vec<$crate::Finding>) -> Vec<wit::Finding> {
            findings
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
                .collect()
        }
    };
}
