//! Runs the real `lkguard` binary from the repository root.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Longer than any lkguard run in these tests takes, cold compile on a busy
/// two-core runner included.
const LIMIT: Duration = Duration::from_secs(300);

/// `cmd.output()`, except that a process still running after [`LIMIT`] is
/// killed and fails the test: a hang (what lkguard's deadlines exist to
/// prevent) must fail here, not stall CI until its 90-minute limit.
pub trait OutputWithinLimit {
    fn output_within_limit(&mut self) -> Output;
}

impl OutputWithinLimit for Command {
    fn output_within_limit(&mut self) -> Output {
        use std::io::Read;
        let mut child = self
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running lkguard");
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                bytes
            })
        };
        let stdout = drain(Box::new(child.stdout.take().expect("piped")));
        let stderr = drain(Box::new(child.stderr.take().expect("piped")));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for lkguard") {
                break status;
            }
            if started.elapsed() > LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{self:?} still running after {LIMIT:?}: killed");
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        Output {
            status,
            stdout: stdout.join().expect("stdout reader"),
            stderr: stderr.join().expect("stderr reader"),
        }
    }
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One compiled-component cache for the whole test run: the first test pays
/// for Cranelift, the rest deserialize.
pub fn cache_dir() -> PathBuf {
    root().join("target").join("test-cache")
}

pub fn lkguard(args: &[&str]) -> Output {
    lkguard_in(&root(), args)
}

/// Compiles the components into the shared cache once, before any test's
/// process needs them, so parallel tests do not all run Cranelift at once.
fn warm_cache() {
    static WARM: std::sync::Once = std::sync::Once::new();
    WARM.call_once(|| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lkguard"));
        cmd.arg("policies").env("LKGUARD_CACHE_DIR", cache_dir());
        let out = cmd.output_within_limit();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

pub fn lkguard_in(dir: &Path, args: &[&str]) -> Output {
    warm_cache();
    let mut args: Vec<&str> = args.to_vec();
    // Dozens of lkguard processes share two cores while the tests run; the
    // default 5 s budget is for one. Tests of the deadline pass their own.
    if args.first() == Some(&"check") && !args.contains(&"--deadline-ms") {
        args.splice(1..1, ["--deadline-ms", "120000"]);
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lkguard"));
    cmd.args(&args)
        .current_dir(dir)
        .env("LKGUARD_CACHE_DIR", cache_dir())
        .env("NO_COLOR", "1");
    cmd.output_within_limit()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", stdout(o), stderr(o)))
}

/// Values planted in the fixtures that must never be printed.
pub const PLANTED_SECRETS: &[&str] = &["devkey-literal", "s3cr3t-literal-value-do-not-print"];

/// The bad rendered fixtures, sorted.
pub fn bad_fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures/rendered/bad"))
        .expect("fixtures/rendered/bad")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

pub fn relative(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

/// The rule ids of a JSON report's findings, in report order.
pub fn rules(doc: &serde_json::Value) -> Vec<String> {
    doc["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| f["rule"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Copies a fixture tree, for tests that mutate it.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A hostile policy component from `fixtures/hostile/<crate>`, built for
/// wasm32-wasip2 on first use in this test process (cargo's own lock keeps
/// test binaries that build at once from clashing). `name` is the crate
/// directory, e.g. `loop`.
pub fn hostile(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        build_wasm(
            &root().join("fixtures/hostile"),
            &["--release".to_string()],
            "hostile-policies",
            "release",
        )
    });
    let file = dir.join(format!("hostile_{}.wasm", name.replace('-', "_")));
    assert!(file.exists(), "{} was not built", file.display());
    file
}

/// One of the LiveKit policies as a component of its own (what `--policy`
/// takes), e.g. `node-ip`. lkguard embeds only the set of all five, so the
/// standalone components are built here, on first use, with the same
/// profile.
pub fn standalone(policy: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let mut args = vec!["--profile".to_string(), "policy".to_string()];
        for p in [
            "use-external-ip",
            "node-ip",
            "image-digest",
            "rtc-service",
            "secrets-source",
        ] {
            args.extend(["-p".to_string(), format!("lkguard-policy-{p}")]);
        }
        build_wasm(&root(), &args, "lkguard-policies", "policy")
    });
    let file = dir.join(format!("lkguard_policy_{}.wasm", policy.replace('-', "_")));
    assert!(file.exists(), "{} was not built", file.display());
    file
}

/// `cargo build --target wasm32-wasip2` in `workspace`, into its own target
/// directory under `target/` (the outer `cargo test` holds the lock on the
/// shared one); returns where the components are.
fn build_wasm(workspace: &Path, args: &[String], target_dir: &str, profile: &str) -> PathBuf {
    let target = root().join("target").join(target_dir);
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.arg("build")
        .args(args)
        .args(["--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target)
        .current_dir(workspace);
    // The outer `cargo test`'s settings describe the host build.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" && !key.starts_with("CARGO_NET_")
            || key == "RUSTFLAGS"
        {
            cmd.env_remove(&key);
        }
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running cargo in {}: {e}", workspace.display()));
    assert!(
        out.status.success(),
        "building components in {} failed:\n{}",
        workspace.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    target.join("wasm32-wasip2").join(profile)
}
