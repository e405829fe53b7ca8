//! `lkguard.yaml` through the real binary: policy selection and pins,
//! severity overrides, exemptions (in the file and by annotation), and
//! diagnostics for a config that is wrong.

mod common;

use std::path::Path;

use common::*;

/// A scratch repository holding a copy of `fixtures/kustomize/overlay-mistakes`
/// (and of `effective-mistakes` beside it, whose overlays use that base).
fn repo_with(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &root().join("fixtures/kustomize/overlay-mistakes"),
        &dir.path().join("k8s"),
    );
    copy_dir(
        &root().join("fixtures/kustomize/effective-mistakes"),
        &dir.path().join("effective-mistakes"),
    );
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    std::fs::write(dir.path().join("lkguard.yaml"), config).unwrap();
    dir
}

fn check(dir: &Path, path: &str) -> (Option<i32>, serde_json::Value) {
    let out = lkguard_in(dir, &["check", "--format", "json", path]);
    (out.status.code(), json(&out))
}

const EXEMPTIONS: &str = "\
severity:
  livekit/image-digest: warning
exemptions:
  # Accepted on purpose, until the end of time for this test.
  - rule: livekit/node-ip
    resource: {kind: Deployment, namespace: memql, name: livekit}
    overlay: k8s/overlays/node-ip-fieldref
    reason: kind test cluster has no LoadBalancer
    expires: 2999-12-31
  # Past its date: no longer applies, and is itself an error.
  - rule: livekit/node-ip
    resource: {kind: Deployment, name: livekit}
    reason: waiting for the static IP
    expires: 2020-01-01
";

#[test]
fn exemptions_are_reported_never_silent_and_expired_ones_are_errors() {
    let repo = repo_with(EXEMPTIONS);
    let (code, doc) = check(repo.path(), "k8s");
    assert_eq!(code, Some(1), "{doc:#}");
    let got: Vec<(String, String, String)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().into(),
                f["severity"].as_str().unwrap().into(),
                format!("{}:{}", f["file"].as_str().unwrap(), f["line"]),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "lkguard/exemption-expired".into(),
                "error".into(),
                "lkguard.yaml:14".into()
            ),
            (
                "livekit/image-digest".into(),
                "warning".into(),
                "k8s/overlays/image-tag-only/kustomization.yaml:10".into()
            ),
            (
                "livekit/node-ip".into(),
                "error".into(),
                "k8s/overlays/json6902-node-ip/kustomization.yaml:24".into()
            ),
        ]
    );
    let ex = &doc["exemptions"];
    assert_eq!(ex.as_array().unwrap().len(), 1, "{ex:#}");
    assert_eq!(ex[0]["rule"], "livekit/node-ip");
    assert_eq!(ex[0]["via"], "lkguard.yaml");
    assert_eq!(ex[0]["exemptionLine"], 5);
    assert_eq!(ex[0]["reason"], "kind test cluster has no LoadBalancer");
    assert_eq!(ex[0]["expires"], "2999-12-31");
    assert_eq!(
        ex[0]["file"],
        "k8s/overlays/node-ip-fieldref/patches/livekit-node-ip.yaml"
    );
    assert_eq!(doc["summary"]["exempted"], 1);

    // The terminal says so too.
    let out = lkguard_in(repo.path(), &["check", "k8s"]);
    let text = stdout(&out);
    assert!(text.contains("exempted (1)"), "{text}");
    assert!(
        text.contains(
            "reason: kind test cluster has no LoadBalancer (lkguard.yaml:5, until 2999-12-31)"
        ),
        "{text}"
    );
    assert!(text.contains("1 exempted"), "{text}");
}

/// A local-development overlay that uses LiveKit Cloud on purpose is
/// exempted by its path alone; the same patch in another overlay is not.
#[test]
fn an_overlay_exemption_without_a_resource_covers_that_overlay_only() {
    let repo = repo_with(
        "exemptions:\n  - rule: livekit/no-cloud\n    overlay: effective-mistakes/overlays/cloud-url\n    reason: local development runs against a LiveKit Cloud project\n    expires: 2999-12-31\n",
    );
    let overlays = repo.path().join("effective-mistakes/overlays");
    copy_dir(&overlays.join("cloud-url"), &overlays.join("staging-copy"));
    let (code, doc) = check(repo.path(), "effective-mistakes/overlays/cloud-url");
    assert_eq!(code, Some(0), "{doc:#}");
    let ex = &doc["exemptions"];
    assert_eq!(ex.as_array().unwrap().len(), 1, "{ex:#}");
    assert_eq!(ex[0]["rule"], "livekit/no-cloud");
    assert_eq!(
        ex[0]["file"],
        "effective-mistakes/overlays/cloud-url/patches/agent-url.yaml"
    );
    let out = lkguard_in(
        repo.path(),
        &["check", "effective-mistakes/overlays/cloud-url"],
    );
    assert!(stdout(&out).contains("1 exempted"), "{}", stdout(&out));

    let (code, doc) = check(repo.path(), "effective-mistakes/overlays/staging-copy");
    assert_eq!(code, Some(1), "{doc:#}");
    assert_eq!(doc["findings"][0]["rule"], "livekit/no-cloud");
    assert_eq!(
        doc["findings"][0]["file"],
        "effective-mistakes/overlays/staging-copy/patches/agent-url.yaml"
    );
}

#[test]
fn an_annotation_exempts_its_object_only_with_a_reason() {
    let repo = repo_with("{}\n");
    let base = repo.path().join("k8s/base/livekit.yaml");
    let text = std::fs::read_to_string(&base).unwrap();
    let deployment = "kind: Deployment\nmetadata:\n  name: livekit\n";
    assert!(text.contains(deployment));
    let annotated = text.replacen(
        deployment,
        &format!("{deployment}  annotations:\n    lkguard.io/exempt: livekit/node-ip\n    lkguard.io/exempt-reason: NODE_IP comes from the overlay patches\n"),
        1,
    );
    std::fs::write(&base, &annotated).unwrap();
    let (code, doc) = check(repo.path(), "k8s/overlays/json6902-node-ip");
    assert_eq!(code, Some(0), "{doc:#}");
    assert_eq!(doc["exemptions"][0]["via"], "annotation");
    assert_eq!(
        doc["exemptions"][0]["exemptionFile"],
        "k8s/base/livekit.yaml"
    );

    // Without the reason it exempts nothing, and says so at the annotation.
    std::fs::write(
        &base,
        annotated.replacen(
            "    lkguard.io/exempt-reason: NODE_IP comes from the overlay patches\n",
            "",
            1,
        ),
    )
    .unwrap();
    let (code, doc) = check(repo.path(), "k8s/overlays/json6902-node-ip");
    assert_eq!(code, Some(1), "{doc:#}");
    assert_eq!(
        rules(&doc),
        ["lkguard/exemption-reason", "livekit/node-ip"],
        "{doc:#}"
    );
    let f = &doc["findings"][0];
    assert_eq!(f["file"], "k8s/base/livekit.yaml");
    assert_eq!(
        std::fs::read_to_string(&base)
            .unwrap()
            .lines()
            .nth(f["line"].as_u64().unwrap() as usize - 1)
            .unwrap()
            .trim(),
        "lkguard.io/exempt: livekit/node-ip"
    );
}

#[test]
fn a_wrong_config_is_a_diagnostic_at_its_line() {
    let repo = repo_with("severity:\n  livekit/node-ip: fatal\n");
    let out = lkguard_in(repo.path(), &["check", "k8s"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("lkguard.yaml is not valid"), "{err}");
    assert!(err.contains("[lkguard.yaml:2:20]"), "{err}");
    assert!(err.contains("\"fatal\" is not one of"), "{err}");

    let out = lkguard_in(repo.path(), &["config", "validate"]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::write(
        repo.path().join("lkguard.yaml"),
        "policies:\n  - id: node-ip\n",
    )
    .unwrap();
    let out = lkguard_in(repo.path(), &["config", "validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// The README's own examples are run by `host/tests/readme.rs`.
#[test]
fn the_schema_is_printed() {
    let out = lkguard(&["config", "schema"]);
    assert_eq!(out.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["title"], "lkguard.yaml");
}

#[test]
fn policies_are_selected_and_a_pinned_file_must_match_its_sha256() {
    let repo = repo_with("policies:\n  - id: node-ip\n  - id: image-digest\n");
    let out = lkguard_in(repo.path(), &["policies"]);
    let listing = stdout(&out);
    let heads: Vec<&str> = listing
        .lines()
        .filter(|l| !l.starts_with(' '))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(heads, ["node-ip", "image-digest"]);

    let built = standalone("rtc-service");
    std::fs::copy(&built, repo.path().join("rtc.wasm")).unwrap();
    let sha = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(std::fs::read(&built).unwrap());
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let pinned = |sha: &str| {
        format!("policies:\n  - id: node-ip\n  - path: rtc.wasm\n    sha256: \"{sha}\"\n")
    };
    std::fs::write(repo.path().join("lkguard.yaml"), pinned(&sha)).unwrap();
    let out = lkguard_in(repo.path(), &["policies"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("rtc-service 0.1.0"),
        "{}",
        stdout(&out)
    );

    let wrong = "0".repeat(64);
    std::fs::write(repo.path().join("lkguard.yaml"), pinned(&wrong)).unwrap();
    let out = lkguard_in(repo.path(), &["check", "k8s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("refusing to run it"),
        "{}",
        stderr(&out)
    );

    std::fs::write(
        repo.path().join("lkguard.yaml"),
        "policies:\n  - id: no-such-policy\n",
    )
    .unwrap();
    let out = lkguard_in(repo.path(), &["check", "k8s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not embedded"), "{}", stderr(&out));
}

/// `settings: {"*": ...}` reaches every policy that declares the setting;
/// a policy's own entry wins; a shared setting nobody declares is refused.
#[test]
fn shared_settings_reach_every_policy_that_declares_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    std::fs::copy(
        root().join("fixtures/rendered/bad/node-ip-missing.yaml"),
        dir.path().join("render.yaml"),
    )
    .unwrap();
    let cfg = |text: &str| std::fs::write(dir.path().join("lkguard.yaml"), text).unwrap();

    let rules = |doc: &serde_json::Value| -> Vec<String> {
        let mut r: Vec<String> = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule"].as_str().unwrap().to_string())
            .collect();
        r.sort();
        r
    };
    // The Helm chart's design has no NODE_IP: node-ip does not apply, and
    // use-external-ip turns around (false with no node IP advertises the
    // node's private addresses on the host network); this pod is not on the
    // host network at all, which rtc-service reports.
    cfg("settings:\n  \"*\": {topology: host-network}\n");
    let (code, doc) = check(dir.path(), "render.yaml");
    assert_eq!(code, Some(1), "{doc:#}");
    assert_eq!(
        rules(&doc),
        ["livekit/rtc-service", "livekit/use-external-ip"],
        "{doc:#}"
    );

    cfg("settings:\n  \"*\": {topology: host-network}\n  node-ip: {topology: load-balancer}\n");
    let (code, doc) = check(dir.path(), "render.yaml");
    assert_eq!(code, Some(1), "{doc:#}");
    assert_eq!(
        rules(&doc),
        [
            "livekit/node-ip",
            "livekit/rtc-service",
            "livekit/use-external-ip"
        ],
        "{doc:#}"
    );

    cfg("settings:\n  \"*\": {topologyy: host-network}\n");
    let out = lkguard_in(dir.path(), &["check", "render.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("`topologyy` is a setting of no loaded policy"),
        "{text}"
    );
}

/// The summary's file count is what was checked: `lkguard.yaml` is read
/// (findings can point into it) but is not one of the checked files.
#[test]
fn the_summary_does_not_count_lkguard_yaml_as_a_checked_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    std::fs::copy(
        root().join("fixtures/rendered/production.yaml"),
        dir.path().join("render.yaml"),
    )
    .unwrap();
    let (code, doc) = check(dir.path(), "render.yaml");
    assert_eq!(code, Some(0), "{doc:#}");
    assert_eq!(doc["summary"]["files"], 1);
    std::fs::write(
        dir.path().join("lkguard.yaml"),
        "severity:\n  livekit/image-digest: warning\n",
    )
    .unwrap();
    let (code, doc) = check(dir.path(), "render.yaml");
    assert_eq!(code, Some(0), "{doc:#}");
    assert_eq!(doc["summary"]["files"], 1, "{doc:#}");
    let out = lkguard_in(dir.path(), &["check", "render.yaml"]);
    assert!(stdout(&out).contains("in 1 file)"), "{}", stdout(&out));
}

/// `config validate` refuses exactly what `check` refuses, each mistake at
/// its line: the README's old example (`tcp_port` is no setting of
/// rtc-service) passed `validate` and stopped `check`.
#[test]
fn config_validate_refuses_what_check_refuses_at_the_line_of_the_key() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "settings:\n  rtc-service: {udp_port: 7882, tcp_port: 7881}\n",
            "lkguard.yaml:2:33",
            "`tcp_port` is not a setting of policy rtc-service",
        ),
        (
            "settings:\n  rtc-service:\n    udp_port: 70000\n",
            "lkguard.yaml:3:5",
            "70000 is greater than the maximum of 65535",
        ),
        (
            "settings:\n  \"*\": {topolgy: host-network}\n",
            "lkguard.yaml:2:9",
            "`topolgy` is a setting of no loaded policy",
        ),
        (
            "settings:\n  rtc-servce: {}\n",
            "lkguard.yaml:2:3",
            "settings name policy `rtc-servce`, which is not loaded",
        ),
        (
            "severity:\n  livekit/nodeip: warning\n",
            "lkguard.yaml:2:3",
            "did you mean `livekit/node-ip`?",
        ),
        (
            "policies:\n  - id: node-ip\nexemptions:\n  - rule: livekit/image-digest\n    resource: {kind: Deployment, name: livekit}\n    reason: pinned elsewhere\n    expires: 2031-01-31\n",
            "lkguard.yaml:4:5",
            "`livekit/image-digest` is a rule of policy image-digest, which the policies: list does not select",
        ),
        (
            "exclude:\n  - \"[unclosed\"\n",
            "lkguard.yaml:2:5",
            "is not a glob",
        ),
        (
            "polices: []\n",
            "lkguard.yaml:1:1",
            "did you mean `policies`?",
        ),
    ];
    for (config, at, message) in cases {
        let repo = repo_with(config);
        for args in [&["config", "validate"][..], &["check", "k8s"][..]] {
            let out = lkguard_in(repo.path(), args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?} on {config:?}: {err}");
            assert!(
                err.contains(&format!("[{at}]")),
                "{args:?} on {config:?}: {err}"
            );
            assert!(err.contains(message), "{args:?} on {config:?}: {err}");
        }
    }
    // And what both accept.
    let repo = repo_with("settings:\n  \"*\": {topology: load-balancer}\n  rtc-service: {udp_port: 7882}\nseverity:\n  livekit/image-digest: warning\n");
    let out = lkguard_in(repo.path(), &["config", "validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("fit the 11 policies it selects"),
        "{}",
        stdout(&out)
    );
    let out = lkguard_in(repo.path(), &["check", "k8s/overlays/image-tag-only"]);
    assert_ne!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn a_policies_list_that_leaves_some_out_says_which_in_every_report() {
    let repo = repo_with("policies:\n  - id: node-ip\n  - id: image-digest\n");
    let out = lkguard_in(repo.path(), &["check", "k8s/overlays/image-tag-only"]);
    assert!(
        stdout(&out).contains("note: lkguard.yaml's policies: list leaves out 9 embedded policies: use-external-ip, rtc-service,"),
        "{}",
        stdout(&out)
    );
    let (_, doc) = check(repo.path(), "k8s/overlays/image-tag-only");
    assert_eq!(
        doc["summary"]["policiesNotSelected"]
            .as_array()
            .map(Vec::len),
        Some(9)
    );
}
