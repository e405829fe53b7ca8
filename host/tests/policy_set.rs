//! The embedded policies run as one `lkguard:policy-set` instance per batch.
//! A member that traps or overruns must fail alone, under its own name and
//! deadline, and the members after it must still run, in a fresh instance.

mod common;

use std::time::Duration;

use sha2::Digest as _;

use lkguard::engine::{block_on, EngineError, Lifetime, Limits, Runtime};
use lkguard::model::{Batch, Origin, Resource};

fn batch(resources: usize) -> Batch {
    Batch {
        origins: vec![Origin {
            name: "admission".into(),
            deployable: true,
            complete: false,
        }],
        resources: (0..resources)
            .map(|i| Resource {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: format!("cm-{i}"),
                namespace: None,
                origin: 0,
                json: format!(
                    r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{i}"}}}}"#
                ),
            })
            .collect(),
        ..Default::default()
    }
}

#[test]
fn each_member_is_blamed_alone_and_the_rest_run_in_a_fresh_instance() {
    let wasm = std::fs::read(common::hostile("set")).unwrap();
    let limits = Limits {
        deadline: Duration::from_millis(100),
        ..Limits::default()
    };
    let runtime = Runtime::new(None, limits, Lifetime::Serving).unwrap();
    let set = runtime
        .load_set(&wasm, sha2::Sha256::digest(&wasm).into())
        .unwrap();
    let ids: Vec<String> = runtime
        .members(&set)
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, ["set-first", "set-trap", "set-loop", "set-last"]);

    let prepared = runtime.prepare(&batch(2));
    let calls = [
        (0, "{}"),
        (1, "{}"),
        (0, "{}"),
        (2, "{}"),
        (3, "{}"),
        (7, "{}"),
    ];
    let results = block_on(runtime.validate_set(&set, &prepared, &calls));
    let outcome: Vec<String> = results
        .iter()
        .map(|(r, _)| match r {
            Ok(findings) => format!(
                "{} findings, {}",
                findings.len(),
                findings.first().map_or("-", |f| f.message.as_str())
            ),
            Err(e) => e.to_string(),
        })
        .collect();
    assert_eq!(
        outcome,
        [
            // The batch crossed once; the first call of the instance.
            "2 findings, call 1 of this instance",
            "trapped: wasm `unreachable` instruction executed",
            // After the trap: a new instance, loaded with the same batch.
            "2 findings, call 1 of this instance",
            "exceeded its deadline of 100 ms",
            "2 findings, call 1 of this instance",
            "returned an error: no member 7",
        ]
    );
    // The loop was stopped at its own deadline, not the sum of everyone's.
    let (_, looped) = &results[3];
    assert!(*looped < Duration::from_millis(1_000), "{looped:?}");
    assert!(matches!(results[3].0, Err(EngineError::Deadline(100))));
}
