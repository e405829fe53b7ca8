//! How lkguard ships: the wheel's and the pre-commit shim's metadata, the
//! two hooks, the shipped policy set, the release workflow, the image's
//! Containerfile and the deploy manifests that name it. The builds
//! themselves run in CI (scripts/build-release.sh, scripts/build-image.sh,
//! scripts/pre-commit-proof.sh); these tests keep the files that drive them
//! consistent with each other and with Cargo.toml.

mod common;

use common::*;
use serde_yaml::Value;

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Value {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn cargo_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

#[test]
fn the_shipped_policy_set_is_what_policies_build() {
    // A toolchain without wasm32-wasip2 embeds the shipped set; this build
    // (CI's, with the target) embedded what policies/ builds. They must be
    // the same bytes, or `cargo install` would ship stale policies.
    let shipped =
        std::fs::read(root().join("policies/livekit/prebuilt/lkguard_policy_livekit.wasm"))
            .expect("the shipped set");
    use sha2::Digest as _;
    let shipped: [u8; 32] = sha2::Sha256::digest(&shipped).into();
    let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(
        hex(&shipped),
        hex(&lkguard::policy::embedded_sha256()),
        "policies/livekit/prebuilt is stale: run scripts/update-policy-set.sh and commit it"
    );
    let sums = read("policies/livekit/prebuilt/SHA256SUMS");
    assert!(sums.starts_with(&hex(&shipped)), "SHA256SUMS: {sums}");
}

#[test]
fn the_wheel_is_a_maturin_bin_wheel_outside_the_root_and_the_root_is_a_shim_that_pins_it() {
    let wheel: toml::Value = toml::from_str(&read("packaging/pypi/pyproject.toml")).unwrap();
    assert_eq!(wheel["project"]["name"].as_str(), Some("lkguard"));
    assert_eq!(
        wheel["build-system"]["build-backend"].as_str(),
        Some("maturin")
    );
    assert_eq!(wheel["tool"]["maturin"]["bindings"].as_str(), Some("bin"));
    assert_eq!(
        wheel["tool"]["maturin"]["manifest-path"].as_str(),
        Some("../../Cargo.toml")
    );
    // The root: what pre-commit's `pip install .` builds. Not maturin (that
    // is a source build of lkguard), and pinned to this version's wheel.
    let shim: toml::Value = toml::from_str(&read("pyproject.toml")).unwrap();
    assert_ne!(
        shim["build-system"]["build-backend"].as_str(),
        Some("maturin")
    );
    let deps: Vec<&str> = shim["project"]["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d.as_str())
        .collect();
    assert_eq!(deps, [format!("lkguard=={}", cargo_version())]);
    assert_eq!(
        shim["project"]["version"].as_str(),
        Some(cargo_version().as_str())
    );
}

#[test]
fn the_default_hook_installs_the_wheel_and_lkguard_src_builds_from_source() {
    let hooks = yaml(".pre-commit-hooks.yaml");
    let hooks = hooks.as_sequence().unwrap();
    let hook = |id: &str| {
        hooks
            .iter()
            .find(|h| h["id"].as_str() == Some(id))
            .unwrap_or_else(|| panic!("no hook {id}"))
    };
    let (wheel, src) = (hook("lkguard"), hook("lkguard-src"));
    assert_eq!(wheel["language"].as_str(), Some("python"));
    assert_eq!(src["language"].as_str(), Some("rust"));
    for key in ["entry", "files", "pass_filenames", "require_serial"] {
        assert_eq!(wheel[key], src[key], "{key} differs between the hooks");
    }
    assert_eq!(wheel["entry"].as_str(), Some("lkguard check"));
    assert_eq!(wheel["require_serial"].as_bool(), Some(true));
    assert_eq!(
        wheel["files"].as_str(),
        Some("(\\.ya?ml$|(^|/)Kustomization$)")
    );
}

#[test]
fn the_release_workflow_builds_every_platform_and_publishes_by_digest() {
    let wf = yaml(".github/workflows/release.yml");
    let tags: Vec<&str> = wf["on"]["push"]["tags"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(tags, ["v*"]);
    let jobs = &wf["jobs"];
    let targets: Vec<&str> = jobs["wheels"]["strategy"]["matrix"]["include"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|m| m["target"].as_str())
        .collect();
    for t in [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
        "x86_64-pc-windows-msvc",
    ] {
        assert!(targets.contains(&t), "no wheel for {t}: {targets:?}");
    }
    // Linux wheels carry both tags; the maturin step uses packaging/pypi.
    for m in jobs["wheels"]["strategy"]["matrix"]["include"]
        .as_sequence()
        .unwrap()
    {
        if m["target"].as_str().unwrap().contains("linux") {
            assert_eq!(
                m["compatibility"].as_str(),
                Some("manylinux2014 musllinux_1_2")
            );
        }
    }
    let uses = |job: &str| -> Vec<String> {
        jobs[job]["steps"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|s| s["uses"].as_str().map(str::to_string))
            .collect()
    };
    let step_with = |job: &str, prefix: &str| {
        jobs[job]["steps"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(prefix)))
            .cloned()
            .unwrap_or_else(|| panic!("{job}: no {prefix} step in {:?}", uses(job)))
    };
    assert_eq!(
        step_with("wheels", "PyO3/maturin-action")["with"]["working-directory"].as_str(),
        Some("packaging/pypi")
    );
    let runs: String = jobs["wheels"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect();
    assert!(
        runs.contains("git diff --exit-code policies/livekit/prebuilt/"),
        "the shipped policy set is checked before it is embedded"
    );
    // Trusted publishing: an OIDC token, no password or API token.
    assert_eq!(
        jobs["pypi"]["permissions"]["id-token"].as_str(),
        Some("write")
    );
    let publish = step_with("pypi", "pypa/gh-action-pypi-publish");
    assert!(publish["with"]["password"].is_null());
    // Static binaries for both architectures, with their sums on the release.
    let arches: Vec<&str> = jobs["binaries"]["strategy"]["matrix"]["include"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|m| m["target"].as_str())
        .collect();
    assert_eq!(
        arches,
        ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"]
    );
    let release: String = jobs["github-release"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect();
    assert!(release.contains("SHA256SUMS") && release.contains("lkguard@${DIGEST}"));
    // A multi-arch image from the Containerfile, its digest handed on.
    let push = step_with("image", "docker/build-push-action");
    assert_eq!(
        push["with"]["file"].as_str(),
        Some("deploy/image/Containerfile")
    );
    assert_eq!(
        push["with"]["platforms"].as_str(),
        Some("linux/amd64,linux/arm64")
    );
    assert_eq!(
        jobs["image"]["outputs"]["digest"].as_str(),
        Some("${{ steps.push.outputs.digest }}")
    );
}

#[test]
fn the_image_holds_only_the_static_binary_and_runs_as_65532() {
    let file = read("deploy/image/Containerfile");
    let instructions: Vec<&str> = file
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(instructions.first(), Some(&"FROM scratch"));
    assert!(instructions.contains(&"USER 65532:65532"));
    assert!(instructions.contains(&"ENTRYPOINT [\"/lkguard\"]"));
    assert!(
        !file.contains("RUN "),
        "no shell in a scratch image to RUN with"
    );
}

#[test]
fn the_webhook_deployment_names_the_image_by_digest() {
    let deployment = yaml("deploy/webhook/deployment.yaml");
    let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    assert!(
        image.contains("/lkguard@sha256:"),
        "the webhook runs an image pinned by digest: {image}"
    );
}

#[test]
fn version_completions_and_man_page() {
    let out = lkguard(&["--version"]);
    let line = stdout(&out);
    assert!(
        line.starts_with(&format!("lkguard {} (policy set ", cargo_version()))
            && line.contains("11 policies")
            && line.contains("livekit-server config v1.13.3"),
        "{line}"
    );
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = lkguard(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let text = stdout(&out);
        assert!(
            text.contains("lkguard") && text.contains("changed-since"),
            "{shell}: {text}"
        );
    }
    let out = lkguard(&["man"]);
    let page = stdout(&out);
    assert!(
        page.starts_with(".ie") || page.contains(".TH lkguard"),
        "{page}"
    );
    assert!(page.contains("check"), "{page}");
}
