//! The whole check pipeline on one document: load, the embedded policies in
//! wasm, locating every finding, and the human, JSON and SARIF reports. A
//! verdict or a diagnostic, never a panic; every finding's location inside
//! the file.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lkguard::check;
use lkguard::engine::{Lifetime, Limits};
use lkguard::load::Loaded;
use lkguard::policy::{Registry, Selection};

fn registry() -> &'static (Registry, BTreeMap<String, String>) {
    static R: OnceLock<(Registry, BTreeMap<String, String>)> = OnceLock::new();
    R.get_or_init(|| {
        let cache = std::env::temp_dir().join("lkguard-fuzz-cache");
        let registry = check::registry(
            &Selection::default(),
            Some(cache),
            Limits::default(),
            Lifetime::Serving,
        )
        .expect("the embedded policies load");
        let settings = registry.settings(&BTreeMap::new()).expect("default settings");
        (registry, settings)
    })
}

fuzz_target!(|data: &[u8]| {
    let (registry, settings) = registry();
    let loaded = Loaded::from_bytes("fuzz.yaml", data.to_vec());
    let outcome = check::evaluate(registry, settings, None, loaded);
    for l in &outcome.findings {
        if let Some(at) = l.location {
            let file = &outcome.loaded.files[at.file];
            assert!(at.offset + at.len <= file.text.len() + 1, "{:?}", l.finding);
        }
    }
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
    let _ = lkguard::report::human::render(&outcome, false);
    let _ = lkguard::report::json::render(&outcome);
    let _ = lkguard::report::sarif::render(&outcome);
});
