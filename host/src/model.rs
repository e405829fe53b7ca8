//! The host's view of the contract: the same shapes the policies see, with no
//! wasmtime types, so loading and reporting never depend on the engine.

pub use lkguard_policy_sdk::model::{
    Batch, Finding, Metadata, Origin, Resource, RuleInfo, Severity,
};
