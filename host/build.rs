//! Builds the LiveKit policies (policies/*) as wasm32-wasip2 components and
//! embeds the set of every policy (`policies/livekit`), so `lkguard check` works
//! with no config and no files.
//!
//! The nested cargo gets its own target directory: the outer build holds the
//! lock on the shared one. Set `LKGUARD_PREBUILT_POLICIES=DIR` to embed an
//! already-built `lkguard_policy_livekit.wasm` instead (a machine without the
//! wasm target, or a packaging step). Without the wasm target and without
//! that variable, the set shipped in `policies/livekit/prebuilt` is embedded.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// The embedded set's members, in the order `policies/livekit` lists them
/// (the host checks the set's own metadata against this).
const MEMBERS: &[&str] = &[
    "use-external-ip",
    "node-ip",
    "image-digest",
    "rtc-service",
    "secrets-source",
    "service-links",
    "replicas",
    "config-schema",
    "no-cloud",
    "secret-keys",
    "urls",
];

/// The set that is embedded.
const SET_CRATE: &str = "lkguard-policy-livekit";

const TARGET: &str = "wasm32-wasip2";

/// The built set, shipped for toolchains without the wasm target
/// (scripts/update-policy-set.sh writes it).
const PREBUILT: &str = "policies/livekit/prebuilt";

fn main() {
    let root =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=policies");
    println!("cargo:rerun-if-changed=wit");
    println!("cargo:rerun-if-changed=Cargo.lock");
    // The `policy` profile lives in the root manifest.
    println!("cargo:rerun-if-changed=Cargo.toml");
    // Link arguments of the components (initial memory).
    println!("cargo:rerun-if-changed=.cargo/config.toml");
    println!("cargo:rerun-if-env-changed=LKGUARD_PREBUILT_POLICIES");

    println!(
        "cargo:rustc-env=LKGUARD_VERSION_LINE={}",
        version_line(&root)
    );

    let file = format!("{}.wasm", SET_CRATE.replace('-', "_"));
    let built = match env::var_os("LKGUARD_PREBUILT_POLICIES") {
        Some(dir) => {
            // A file replaced in the same directory must be embedded again:
            // the variable alone does not change, and a stale set would run
            // old policies under a new hash's name.
            let dir = PathBuf::from(dir);
            println!("cargo:rerun-if-changed={}", dir.join(&file).display());
            dir
        }
        None if target_installed() => {
            // Its own target directory: linked into the set, the policies
            // build without their own exports (feature `component` off), and
            // sharing a directory with their standalone builds (the tests',
            // `target/lkguard-policies`) would let one overwrite the other's
            // .wasm files: a cdylib's file name carries no feature hash.
            build_policies(&root, SET_CRATE, "lkguard-policy-set")
        }
        // A toolchain without the wasm target (`cargo install` on a fresh
        // rustup, pre-commit's lkguard-src hook): the set this repository
        // ships, which a test keeps equal to what policies/ builds. Cargo
        // runs this script after nearly every dependency has compiled, so
        // stopping here with "add the target" cost a newcomer minutes.
        None => {
            let shipped = root.join(PREBUILT);
            println!(
                "cargo:warning=no {TARGET} target in this toolchain: embedding the policy set shipped in {PREBUILT} (rustup target add {TARGET} builds it from policies/)"
            );
            if !shipped.join(&file).is_file() {
                panic!(
                    "\n\nlkguard embeds its policies as {TARGET} components; this toolchain lacks that target and {PREBUILT} holds no prebuilt set.\n\
                     Run:  rustup target add {TARGET}\n"
                );
            }
            shipped
        }
    };

    let from = built.join(&file);
    let to = out.join(&file);
    let bytes = std::fs::read(&from).unwrap_or_else(|e| panic!("reading {}: {e}", from.display()));
    std::fs::write(&to, &bytes).unwrap_or_else(|e| panic!("writing {}: {e}", to.display()));
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    let mut bundle = String::from(
        "/// The embedded LiveKit set: its member ids, component bytes, and sha256 of the bytes.\n",
    );
    writeln!(bundle, "pub static MEMBERS: &[&str] = &{MEMBERS:?};").expect("write to String");
    writeln!(
        bundle,
        "pub static SET: (&[u8], [u8; 32]) = (include_bytes!({:?}), {digest:?});",
        to.display().to_string()
    )
    .expect("write to String");
    std::fs::write(out.join("bundle.rs"), bundle).expect("writing bundle.rs");
}

fn build_policies(root: &Path, krate: &str, dir: &str) -> PathBuf {
    let target_dir = root.join("target").join(dir);
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--profile",
            "policy",
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(&target_dir);
    if env::var_os("CARGO_NET_OFFLINE").is_some() {
        cmd.arg("--offline");
    }
    cmd.args(["-p", krate]);
    // The outer cargo's settings describe the host build, not this one; a
    // clippy run's wrapper would lint the policies a second time.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let keep = key == "CARGO_HOME"
            || key.starts_with("CARGO_NET_")
            || key.starts_with("CARGO_REGISTRIES_");
        if (key.starts_with("CARGO_") && !keep)
            || matches!(
                key.as_str(),
                "RUSTFLAGS"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "RUSTC_WRAPPER"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "PROFILE"
                    | "OPT_LEVEL"
                    | "DEBUG"
                    | "NUM_JOBS"
            )
        {
            cmd.env_remove(&key);
        }
    }
    let status = cmd
        .status()
        .expect("running cargo to build the policy components");
    if !status.success() {
        panic!("building the policy components for {TARGET} failed (see the errors above)");
    }
    target_dir.join(TARGET).join("policy")
}

/// What `lkguard --version` says: the binary's version, the embedded policy
/// set's, the contract's, and the livekit-server release whose config
/// structs the schema was generated from (what the rules judge against).
fn version_line(root: &Path) -> String {
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_default();
    let first_between = |text: &str, from: &str, to: char| {
        text.split_once(from)
            .and_then(|(_, rest)| rest.split(to).next())
            .unwrap_or("?")
            .trim_matches('"')
            .to_string()
    };
    let set = first_between(&read("policies/livekit/Cargo.toml"), "\nversion = ", '\n');
    let contract = first_between(&read("wit/policy.wit"), "package lkguard:policy@", ';');
    let schema = read("policies/sdk/schema/livekit-server.schema.json");
    let release = first_between(&schema, "config structs of livekit-server ", ' ');
    println!("cargo:rerun-if-changed=policies/sdk/schema/livekit-server.schema.json");
    format!(
        "{} (policy set {set}: {} policies, contract lkguard:policy@{contract}; livekit-server config {release})",
        env::var("CARGO_PKG_VERSION").unwrap_or_default(),
        MEMBERS.len()
    )
}

fn target_installed() -> bool {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    sysroot.is_some_and(|s| Path::new(&s).join("lib/rustlib").join(TARGET).exists())
}
