//! `cargo bench`: the figures the README quotes, medians measured in one run.
//!
//! 1. One evaluation of the five policies on the good render: through wasm
//!    (one fresh instance of the embedded set, with instance slots recycled
//!    as a server does and as a one-shot `lkguard check` does) and the same logic called
//!    natively on the same workers; the ratio is the price of the sandbox.
//! 2. A whole `lkguard check` process on the fixture renders, with an empty
//!    compiled-component cache and with a warm one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use lkguard::engine::{block_on, Lifetime, Limits};
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

/// The batch as a policy receives it: with nothing parsed yet. (Policies
/// keep their parses in the batch for the next policy; timing the same
/// `Batch` over and over would measure those instead.)
fn fresh(batch: &Batch) -> Batch {
    Batch {
        origins: batch.origins.clone(),
        resources: batch.resources.clone(),
        ..Default::default()
    }
}

fn native(batch: &Batch) -> usize {
    let batch = &fresh(batch);
    members()
        .iter()
        .map(|(_, v)| v(batch, "{}").unwrap().len())
        .sum()
}

type Validate = fn(&Batch, &str) -> Result<Vec<lkguard_policy_sdk::Finding>, String>;

/// The embedded policies as native Rust, by id.
fn members() -> [(&'static str, Validate); 11] {
    [
        (
            "use-external-ip",
            lkguard_policy_use_external_ip::UseExternalIp::validate,
        ),
        ("node-ip", lkguard_policy_node_ip::NodeIp::validate),
        (
            "image-digest",
            lkguard_policy_image_digest::ImageDigest::validate,
        ),
        (
            "rtc-service",
            lkguard_policy_rtc_service::RtcService::validate,
        ),
        (
            "secrets-source",
            lkguard_policy_secrets_source::SecretsSource::validate,
        ),
        (
            "service-links",
            lkguard_policy_service_links::ServiceLinks::validate,
        ),
        ("replicas", lkguard_policy_replicas::Replicas::validate),
        (
            "config-schema",
            lkguard_policy_config_schema::ConfigSchema::validate,
        ),
        ("no-cloud", lkguard_policy_no_cloud::NoCloud::validate),
        (
            "secret-keys",
            lkguard_policy_secret_keys::SecretKeys::validate,
        ),
        ("urls", lkguard_policy_urls::Urls::validate),
    ]
}

/// The policies on the host's own scheduler (one worker per core), as
/// the host runs the wasm ones: the ratio then compares like with like.
fn native_parallel(batch: &Batch) -> usize {
    let batch = &fresh(batch);
    let all: Vec<Validate> = members().iter().map(|(_, v)| *v).collect();
    lkguard::policy::on_workers(&all, |v| v(batch, "{}").unwrap().len())
        .into_iter()
        .map(|n| n.unwrap())
        .sum()
}

/// Where the time goes: each member inside one set instance (the host's
/// own per-policy clock) against the same Rust natively.
fn per_policy(
    title: &str,
    registry: &lkguard::policy::Registry,
    batch: &Batch,
    settings: &BTreeMap<String, String>,
    runs: usize,
) {
    let mut per: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for _ in 0..runs {
        let (_, _, timings) = block_on(registry.evaluate_in_turn(batch, settings));
        for (id, d) in timings {
            per.entry(id).or_default().push(d);
        }
    }
    println!("{title}");
    for (id, validate) in members() {
        let w = median(per.remove(id).unwrap_or_default());
        let n = time(runs, || {
            validate(&fresh(batch), "{}").unwrap();
        });
        println!(
            "  {id:<18} wasm {:>7.3} ms  native {:>7.3} ms  {:>5.2}x",
            ms(w),
            ms(n),
            w.as_secs_f64() / n.as_secs_f64()
        );
    }
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
    let loaded = lkguard::load::load(&renders[..1], &Default::default());
    assert!(loaded.errors.is_empty());
    let batch = &loaded.batch;

    let cache = tempfile::tempdir().unwrap();
    let load = |lifetime| {
        lkguard::check::registry(
            &Default::default(),
            Some(cache.path().to_path_buf()),
            Limits::default(),
            lifetime,
        )
        .unwrap()
    };
    let registry = load(Lifetime::Serving);
    let one_shot = load(Lifetime::OneShot);
    let settings = registry.settings(&BTreeMap::new()).unwrap();

    let runs = 500;
    let wasm = time(runs, || {
        let (f, failures) = registry.evaluate(batch, &settings);
        assert!(f.is_empty() && failures.is_empty());
    });
    let wasm_one_shot = time(runs, || {
        let (f, failures) = one_shot.evaluate(batch, &settings);
        assert!(f.is_empty() && failures.is_empty());
    });
    let empty_batch = Batch {
        origins: batch.origins.clone(),
        resources: Vec::new(),
        ..Default::default()
    };
    let overhead = time(runs, || {
        let (_, failures) = registry.evaluate(&empty_batch, &settings);
        assert!(failures.is_empty());
    });
    let nat = time(runs, || assert_eq!(native(batch), 0));
    let nat_par = time(runs, || assert_eq!(native_parallel(batch), 0));

    // What the webhook evaluates per request: one object (the livekit
    // Deployment), the policies one after another on the request's task.
    let webhook = load(Lifetime::Serving);
    let deployment = batch
        .resources
        .iter()
        .find(|r| r.kind == "Deployment" && r.name == "livekit")
        .expect("the staging render has the livekit Deployment");
    let single = Batch {
        origins: vec![lkguard_policy_sdk::Origin {
            name: "admission".into(),
            deployable: true,
            complete: false,
        }],
        resources: vec![lkguard_policy_sdk::Resource {
            origin: 0,
            ..deployment.clone()
        }],
        ..Default::default()
    };
    let one_object = time(runs * 4, || {
        let (f, failures, _) = block_on(webhook.evaluate_in_turn(&single, &settings));
        assert!(f.is_empty() && failures.is_empty());
    });
    let one_object_empty = time(runs * 4, || {
        let empty = Batch {
            origins: single.origins.clone(),
            resources: Vec::new(),
            ..Default::default()
        };
        let (_, failures, _) = block_on(webhook.evaluate_in_turn(&empty, &settings));
        assert!(failures.is_empty());
    });
    let one_object_native = time(runs * 4, || assert_eq!(native(&single), 0));

    let row = |label: &str, d: Duration| println!("  {label:<58} {:>9.3} ms", ms(d));
    println!(
        "lkguard bench: medians, one run, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "evaluate {} policies on fixtures/rendered/staging.yaml ({} resources), {runs} runs:",
        members().len(),
        batch.resources.len()
    );
    row("wasm, one fresh set instance, slots reused (serve)", wasm);
    row(
        "wasm, one fresh set instance, pages returned (check)",
        wasm_one_shot,
    );
    row(
        "wasm on an empty batch (instantiate + call overhead)",
        overhead,
    );
    row("native, same Rust, in parallel", nat_par);
    row("native, same Rust, one after another", nat);
    let ratio = |label: &str, a: Duration, b: Duration| {
        println!("  {label:<58} {:>9.2}x", a.as_secs_f64() / b.as_secs_f64())
    };
    ratio(
        "ratio wasm (serve) / native, both on the workers",
        wasm,
        nat_par,
    );
    ratio("ratio wasm (serve) / native one after another", wasm, nat);
    ratio(
        "ratio wasm (check) / native, both on the workers",
        wasm_one_shot,
        nat_par,
    );
    per_policy(
        "per policy on staging.yaml, one after another (wasm in one set instance):",
        &webhook,
        batch,
        &settings,
        200,
    );
    per_policy(
        "per policy on one admission object (the livekit Deployment):",
        &webhook,
        &single,
        &settings,
        500,
    );
    println!("one admission object (the livekit Deployment), policies one after another:");
    row("wasm (serve), one fresh set instance", one_object);
    row(
        "wasm (serve) on an empty batch (instantiate + call)",
        one_object_empty,
    );
    row("native, same Rust", one_object_native);
    ratio("ratio wasm / native", one_object, one_object_native);
    // The process figures below take minutes; skip them when only the
    // evaluation is of interest.
    if std::env::var_os("LKGUARD_BENCH_EVALUATE_ONLY").is_some() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_lkguard");
    // Given files, `check` looks through the repository for kustomizations
    // that include them (the pre-commit path): run it in a scratch
    // repository holding the two renders, so the figure is lkguard's own
    // time on them and not a walk of whatever lies in this working copy
    // (a local fuzz corpus is thousands of files).
    let scratch = tempfile::tempdir().unwrap();
    std::fs::create_dir(scratch.path().join(".git")).unwrap();
    let mut args: Vec<String> = Vec::new();
    for r in &renders {
        let name = r.file_name().unwrap();
        std::fs::copy(r, scratch.path().join(name)).unwrap();
        args.push(name.to_string_lossy().into_owned());
    }
    let check = |cache: &std::path::Path| {
        let out = Command::new(bin)
            .current_dir(scratch.path())
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
    // The fixture tree as a user runs it: both overlays rendered by
    // kustomize, then checked; and kustomize alone on one overlay, for scale.
    let tree = root.join("fixtures/deploy/k8s");
    let tree_run = time(11, || {
        let out = Command::new(bin)
            .arg("check")
            .arg(&tree)
            .env("LKGUARD_CACHE_DIR", warm_dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
    });
    let kustomize_alone = time(11, || {
        let out = Command::new("kubectl")
            .args(["kustomize"])
            .arg(tree.join("overlays/staging"))
            .output()
            .unwrap();
        assert!(out.status.success());
    });
    let version = time(31, || {
        Command::new(bin).arg("--version").output().unwrap();
    });

    println!("lkguard check staging.yaml production.yaml, whole process:");
    row(&format!("empty component cache ({cold_runs} runs)"), empty);
    row("warm component cache (31 runs)", warm);
    row(
        "`lkguard --version` (process start alone, 31 runs)",
        version,
    );
    println!("lkguard check fixtures/deploy/k8s (kustomize renders 2 overlays), warm cache:");
    row("whole process (11 runs)", tree_run);
    row(
        "`kubectl kustomize overlays/staging` alone (11 runs)",
        kustomize_alone,
    );
}
