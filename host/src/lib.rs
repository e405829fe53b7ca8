//! lkguard: LiveKit-on-Kubernetes policies as WebAssembly components, run at
//! edit time, in CI and at admission with the same verdicts.
//!
//! Data path: `load` (files -> batch with spans) -> `engine` (wasm policies)
//! -> `locate` (pointer -> file:line:col) -> `report` (human, json).

pub mod changed;
pub mod check;
pub mod cli;
pub mod config;
pub mod engine;
pub mod exempt;
pub mod kustomize;
pub mod load;
pub mod locate;
pub mod model;
pub mod policy;
pub mod redact;
pub mod report;
pub mod suggest;
pub mod webhook;
