//! `cargo bench`: the figures the README quotes, medians measured in one run.
//!
//! 1. One evaluation of the five policies on the good render: through wasm
//!    (fresh instance per policy, as `lkguard check` does) and the same logic
//!    called natively; the ratio is the price of the sandbox.
//! 2. A whole `lkguard check` process on the fixture renders, with an empty
//!    compiled-component cache and with a warm one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use lkguard::engine::Limits;
use lkguard_policy_sdk::{Batch, Policy};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<F: FnMut()>(runs: usize, mut f: F) -> Duration {
    f(); // warm-up
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn native(batch: &Batch) -> usize {
    let mut n = 0;
    n += lkguard_policy_use_external_ip::UseExternalIp::validate(batch, "{}")
        .unwrap()
        .len();
    n += lkguard_policy_node_ip::NodeIp::validate(batch, "{}")
        .unwrap()
        .len();
    n += lkguard_policy_image_digest::ImageDigest::validate(batch, "{}")
        .unwrap()
        .len();
    n += lkguard_policy_rtc_service::RtcService::validate(batch, "{}")
        .unwrap()
        .len();
    n += lkguard_policy_secrets_source::SecretsSource::validate(batch, "{}")
        .unwrap()
        .len();
    n
}

/// The five policies on scoped threads, as the host runs the wasm ones.
fn native_parallel(batch: &Batch) -> usize {
    type Validate = fn(&Batch, &str) -> Result<Vec<lkguard_policy_sdk::Finding>, String>;
    let all: [Validate; 5] = [
        lkguard_policy_use_external_ip::UseExternalIp::validate,
        lkguard_policy_node_ip::NodeIp::validate,
        lkguard_policy_image_digest::ImageDigest::validate,
        lkguard_policy_rtc_service::RtcService::validate,
        lkguard_policy_secrets_source::SecretsSource::validate,
    ];
    std::thread::scope(|s| {
        let handles: Vec<_> = all
            .iter()
            .map(|v| s.spawn(move || v(batch, "{}").unwrap().len()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let renders = [
        root.join("fixtures/rendered/staging.yaml"),
        root.join("fixtures/rendered/production.yaml"),
    ];
    let loaded = lkguard::load::load(&renders[..1]);
    assert!(loaded.errors.is_empty());
    let batch = &loaded.batch;

    let cache = tempfile::tempdir().unwrap();
    let registry =
        lkguard::check::registry(&[], Some(cache.path().to_path_buf()), Limits::default()).unwrap();
    let settings = registry.settings(&BTreeMap::new()).unwrap();

    let runs = 500;
    let wasm = time(runs, || {
        let (f, failures) = registry.evaluate(batch, &settings);
        assert!(f.is_empty() && failures.is_empty());
    });
    let empty_batch = Batch {
        origins: batch.origins.clone(),
        resources: Vec::new(),
    };
    let overhead = time(runs, || {
        let (_, failures) = registry.evaluate(&empty_batch, &settings);
        assert!(failures.is_empty());
    });
    let nat = time(runs, || assert_eq!(native(batch), 0));
    let nat_par = time(runs, || assert_eq!(native_parallel(batch), 0));

    let bin = env!("CARGO_BIN_EXE_lkguard");
    let args: Vec<String> = renders.iter().map(|p| p.display().to_string()).collect();
    let check = |cache: &std::path::Path| {
        let out = Command::new(bin)
            .arg("check")
            .args(&args)
            .env("LKGUARD_CACHE_DIR", cache)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    };
    let cold_runs = 7;
    let empty = median(
        (0..cold_runs)
            .map(|_| {
                let dir = tempfile::tempdir().unwrap();
                let t = Instant::now();
                check(dir.path());
                t.elapsed()
            })
            .collect(),
    );
    let warm_dir = tempfile::tempdir().unwrap();
    check(warm_dir.path());
    let warm = time(31, || check(warm_dir.path()));
    let version = time(31, || {
        Command::new(bin).arg("--version").output().unwrap();
    });

    let row = |label: &str, d: Duration| println!("  {label:<58} {:>9.3} ms", ms(d));
    println!(
        "lkguard bench: medians, one run, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "evaluate 5 policies on fixtures/rendered/staging.yaml ({} resources), {runs} runs:",
        batch.resources.len()
    );
    row(
        "wasm as lkguard runs it (fresh instances, in parallel)",
        wasm,
    );
    row(
        "wasm on an empty batch (instantiate + call overhead)",
        overhead,
    );
    row("native, same Rust, in parallel", nat_par);
    row("native, same Rust, one after another", nat);
    println!(
        "  {:<58} {:>9.2}x",
        "ratio wasm / native (both in parallel)",
        wasm.as_secs_f64() / nat_par.as_secs_f64()
    );
    println!(
        "  {:<58} {:>9.2}x",
        "ratio wasm / native (native one after another)",
        wasm.as_secs_f64() / nat.as_secs_f64()
    );
    println!("lkguard check staging.yaml production.yaml, whole process:");
    row(&format!("empty component cache ({cold_runs} runs)"), empty);
    row("warm component cache (31 runs)", warm);
    row(
        "`lkguard --version` (process start alone, 31 runs)",
        version,
    );
}
