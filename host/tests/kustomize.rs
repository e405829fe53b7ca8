//! Kustomize roots through the real binary and a real kustomize (kubectl's
//! built-in one, or `kustomize` when on PATH): which overlays a path reaches,
//! and that every finding points at the file and line a person must edit.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// (rule, file, line) of each finding, in report order.
fn places(doc: &serde_json::Value) -> Vec<(String, String, u64)> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["file"].as_str().unwrap_or("?").to_string(),
                f["line"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn place(rule: &str, file: &str, line: u64) -> (String, String, u64) {
    (rule.to_string(), file.to_string(), line)
}

/// The first non-comment line of `file` containing `needle`, so fixtures can
/// keep their comments without the tests hard-coding numbers twice.
fn line_of(file: &str, needle: &str) -> u64 {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    1 + text
        .lines()
        .position(|l| !l.trim_start().starts_with('#') && l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in {file}")) as u64
}

#[test]
fn the_fixture_overlays_render_clean_and_the_base_alone_is_not_deployable() {
    for path in [
        "fixtures/deploy/k8s",
        "fixtures/deploy/k8s/base",
        "fixtures/deploy/k8s/overlays/staging",
    ] {
        let out = lkguard(&["check", "--format", "json", path]);
        let doc = json(&out);
        assert_eq!(doc["findings"], serde_json::json!([]), "{path}: {doc:#}");
        assert_eq!(out.status.code(), Some(0), "{path}: {}", stderr(&out));
    }
    // The base directory reaches both overlays (20 objects), never itself.
    let doc = json(&lkguard(&[
        "check",
        "--format",
        "json",
        "fixtures/deploy/k8s/base",
    ]));
    assert_eq!(doc["summary"]["resources"], 20, "{doc:#}");
}

#[test]
fn a_changed_base_file_or_patch_rerenders_the_overlays_that_include_it() {
    // What the pre-commit hook passes: changed files, not overlays.
    let out = lkguard(&[
        "check",
        "--format",
        "json",
        "fixtures/deploy/k8s/overlays/staging/patches/livekit-node-ip.yaml",
    ]);
    let doc = json(&out);
    assert_eq!(doc["summary"]["resources"], 10, "staging only: {doc:#}");
    let out = lkguard(&[
        "check",
        "--format",
        "json",
        "fixtures/deploy/k8s/base/livekit.yaml",
    ]);
    let doc = json(&out);
    assert_eq!(doc["summary"]["resources"], 20, "both overlays: {doc:#}");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn each_mistake_points_at_the_file_and_line_to_edit() {
    let a = "fixtures/kustomize/overlay-mistakes/overlays";
    let e = "fixtures/kustomize/effective-mistakes/overlays";
    let cases = [
        (
            format!("{a}/node-ip-fieldref"),
            place(
                "livekit/node-ip",
                &format!("{a}/node-ip-fieldref/patches/livekit-node-ip.yaml"),
                line_of(
                    &format!("{a}/node-ip-fieldref/patches/livekit-node-ip.yaml"),
                    "valueFrom:",
                ),
            ),
        ),
        (
            format!("{a}/image-tag-only"),
            place(
                "livekit/image-digest",
                &format!("{a}/image-tag-only/kustomization.yaml"),
                line_of(&format!("{a}/image-tag-only/kustomization.yaml"), "newTag:"),
            ),
        ),
        (
            format!("{a}/json6902-node-ip"),
            place(
                "livekit/node-ip",
                &format!("{a}/json6902-node-ip/kustomization.yaml"),
                line_of(
                    &format!("{a}/json6902-node-ip/kustomization.yaml"),
                    "value: \"<LB_IP>\"",
                ),
            ),
        ),
        (
            format!("{e}/external-ip-env-override"),
            place(
                "livekit/use-external-ip",
                &format!("{e}/external-ip-env-override/patches/livekit-env.yaml"),
                line_of(
                    &format!("{e}/external-ip-env-override/patches/livekit-env.yaml"),
                    "value: \"true\"",
                ),
            ),
        ),
        (
            format!("{e}/replicas-count"),
            place(
                "livekit/replicas",
                &format!("{e}/replicas-count/kustomization.yaml"),
                line_of(
                    &format!("{e}/replicas-count/kustomization.yaml"),
                    "count: 2",
                ),
            ),
        ),
        (
            format!("{e}/config-typo-patch"),
            place(
                "livekit/config-schema",
                &format!("{e}/config-typo-patch/patches/livekit-config.yaml"),
                line_of(
                    &format!("{e}/config-typo-patch/patches/livekit-config.yaml"),
                    "tcp_prot: 7881",
                ),
            ),
        ),
        (
            format!("{e}/cloud-url"),
            place(
                "livekit/no-cloud",
                &format!("{e}/cloud-url/patches/agent-url.yaml"),
                line_of(
                    &format!("{e}/cloud-url/patches/agent-url.yaml"),
                    "value: wss://memql-staging-x7.livekit.cloud",
                ),
            ),
        ),
        (
            "fixtures/kustomize/base-mistake/overlays/staging".to_string(),
            place(
                "livekit/use-external-ip",
                "fixtures/kustomize/base-mistake/base/livekit.yaml",
                line_of(
                    "fixtures/kustomize/base-mistake/base/livekit.yaml",
                    "use_external_ip: true",
                ),
            ),
        ),
    ];
    for (overlay, expected) in cases {
        let out = lkguard(&["check", "--format", "json", &overlay]);
        let doc = json(&out);
        assert_eq!(places(&doc), [expected], "{overlay}: {doc:#}");
        assert_eq!(doc["findings"][0]["exact"], true, "{overlay}");
        assert_eq!(doc["findings"][0]["origin"], overlay.as_str());
        assert_eq!(out.status.code(), Some(1));
    }
}

/// A copy of the fixture tree in a fresh git repository, for mutations.
fn fixture_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join("fixtures/deploy"), &dir.path().join("deploy"));
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    dir
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn a_base_mistake_shows_once_naming_every_overlay_it_reaches() {
    let repo = fixture_repo();
    let base = repo.path().join("deploy/k8s/base/livekit.yaml");
    edit(&base, "use_external_ip: false", "use_external_ip: yes");
    let out = lkguard_in(
        repo.path(),
        &["check", "--format", "json", "deploy/k8s/base/livekit.yaml"],
    );
    let doc = json(&out);
    assert_eq!(
        places(&doc),
        [place(
            "livekit/use-external-ip",
            "deploy/k8s/base/livekit.yaml",
            16
        )],
        "{doc:#}"
    );
    assert_eq!(doc["findings"][0]["embeddedPath"], "/rtc/use_external_ip");
    let mut origins = vec![doc["findings"][0]["origin"].as_str().unwrap().to_string()];
    origins.extend(
        doc["findings"][0]["alsoIn"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap().to_string()),
    );
    origins.sort();
    assert_eq!(
        origins,
        [
            "deploy/k8s/overlays/production",
            "deploy/k8s/overlays/staging"
        ]
    );
    // kustomize's build metadata never reaches an output.
    let human = lkguard_in(repo.path(), &["check", "deploy/k8s"]);
    let all = format!("{}{}", stdout(&human), stderr(&human));
    assert!(!all.contains("config.kubernetes.io"), "{all}");
    assert!(all.contains("deploy/k8s/base/livekit.yaml:16:7"), "{all}");
}

#[test]
fn a_render_failure_is_an_input_error_with_kustomizes_message() {
    let repo = fixture_repo();
    edit(
        &repo
            .path()
            .join("deploy/k8s/overlays/staging/kustomization.yaml"),
        "- path: patches/livekit-node-ip.yaml",
        "- path: patches/no-such-patch.yaml",
    );
    let out = lkguard_in(repo.path(), &["check", "--format", "json", "deploy/k8s"]);
    let doc = json(&out);
    assert_eq!(out.status.code(), Some(2), "{doc:#}");
    let errors = doc["inputErrors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{doc:#}");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("deploy/k8s/overlays/staging: kustomize could not render it"),
        "{message}"
    );
    assert!(message.contains("no-such-patch.yaml"), "{message}");
    // The other overlay was still checked.
    assert_eq!(doc["summary"]["resources"], 10, "{doc:#}");
}

#[test]
fn without_kustomize_overlays_are_an_error_and_plain_files_are_still_checked() {
    let empty_path = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lkguard"))
        .args([
            "check",
            "--format",
            "json",
            "fixtures/deploy/k8s",
            "fixtures/rendered/bad/node-ip-empty.yaml",
        ])
        .current_dir(root())
        .env("PATH", empty_path.path())
        .env("LKGUARD_CACHE_DIR", cache_dir())
        .output_within_limit();
    let doc = json(&out);
    assert_eq!(out.status.code(), Some(2), "{doc:#}");
    assert_eq!(rules(&doc), ["livekit/node-ip"], "{doc:#}");
    let message = doc["inputErrors"][0]["message"].as_str().unwrap();
    assert!(message.contains("no kustomize found"), "{message}");
    // And the human form says how to install one.
    let out = Command::new(env!("CARGO_BIN_EXE_lkguard"))
        .args(["check", "fixtures/deploy/k8s"])
        .current_dir(root())
        .env("PATH", empty_path.path())
        .env("LKGUARD_CACHE_DIR", cache_dir())
        .env("NO_COLOR", "1")
        .output_within_limit();
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(all.contains("kubectl kustomize"), "{all}");
}

#[test]
fn the_kustomize_command_can_be_named() {
    let out = lkguard(&[
        "check",
        "--format",
        "json",
        "--kustomize",
        "kubectl kustomize",
        "fixtures/deploy/k8s/overlays/production",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = lkguard(&[
        "check",
        "--kustomize",
        "/nonexistent/kustomize build",
        "fixtures/deploy/k8s/overlays/production",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_literal_secret_in_a_base_or_patch_never_reaches_the_output() {
    let repo = fixture_repo();
    let planted = "s3cr3t-literal-value-do-not-print";
    // In the base: the voice agent's secret as a literal.
    edit(
        &repo.path().join("deploy/k8s/base/voice.yaml"),
        "            - name: LIVEKIT_API_SECRET\n              valueFrom:\n                secretKeyRef:\n                  name: livekit-secrets\n                  key: polyphon-livekit-api-secret\n",
        &format!("            - name: LIVEKIT_API_SECRET\n              value: {planted}\n"),
    );
    // In an overlay's inline patch, and its secretGenerator.
    let k = repo
        .path()
        .join("deploy/k8s/overlays/staging/kustomization.yaml");
    let text = std::fs::read_to_string(&k).unwrap();
    std::fs::write(
        &k,
        format!(
            "{text}  - target: {{kind: Deployment, name: voice-agent}}\n    patch: |-\n      - op: add\n        path: /spec/template/spec/containers/0/env/-\n        value:\n          name: LIVEKIT_API_KEY\n          value: {planted}-2\nsecretGenerator:\n  - name: other\n    literals:\n      - api-secret={planted}-3\n"
        ),
    )
    .unwrap();
    for format in ["human", "json"] {
        let out = lkguard_in(repo.path(), &["check", "--format", format, "deploy/k8s"]);
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(1), "{all}");
        assert!(all.contains("livekit/secrets-source"), "{all}");
        assert!(
            !all.contains(planted),
            "{format} printed the secret:\n{all}"
        );
    }
}

/// A tree whose lkguard.yaml declares a topology: its `clean` overlays pass;
/// under an empty config (the load-balancer default) exactly `as_default`
/// rules fire; each mistake overlay yields one finding, of `rule`, at the
/// first non-comment line of `file` (in the tree) holding `needle`.
fn judge_topology_tree(
    t: &str,
    clean: &[&str],
    as_default: &[&str],
    mistakes: &[(&str, &str, &str, &str)],
) {
    for clean in clean {
        let overlay = format!("{t}/overlays/{clean}");
        let out = lkguard(&["check", "--format", "json", &overlay]);
        let doc = json(&out);
        assert_eq!(doc["findings"], serde_json::json!([]), "{overlay}: {doc:#}");
        assert_eq!(out.status.code(), Some(0), "{overlay}");
    }
    let empty = tempfile::NamedTempFile::new().unwrap();
    let out = lkguard(&[
        "check",
        "--format",
        "json",
        "--config",
        empty.path().to_str().unwrap(),
        &format!("{t}/overlays/{}", clean[0]),
    ]);
    let mut rules: Vec<String> = places(&json(&out))
        .into_iter()
        .map(|(rule, _, _)| rule)
        .collect();
    rules.sort();
    assert_eq!(rules, as_default);
    for (overlay, rule, file, needle) in mistakes {
        let file = format!("{t}/{file}");
        let out = lkguard(&[
            "check",
            "--format",
            "json",
            &format!("{t}/overlays/{overlay}"),
        ]);
        let doc = json(&out);
        assert_eq!(
            places(&doc),
            [place(rule, &file, line_of(&file, needle))],
            "{overlay}: {doc:#}"
        );
        assert_eq!(out.status.code(), Some(1), "{overlay}");
    }
}

/// The livekit Helm chart's design (hostNetwork, STUN, no media
/// LoadBalancer), declared by the tree's lkguard.yaml `topology:
/// host-network`: the load-balancer rules stay quiet, and scaling out needs
/// Redis and a hostname anti-affinity instead; a pod taken off the host
/// network no longer fits the topology.
#[test]
fn host_network_topology_judges_the_helm_charts_design() {
    judge_topology_tree(
        "fixtures/kustomize/host-network",
        &["single", "scaled-with-redis"],
        &[
            "livekit/node-ip",
            "livekit/rtc-service",
            "livekit/use-external-ip",
        ],
        &[
            (
                "scaled-without-redis",
                "livekit/replicas",
                "overlays/scaled-without-redis/kustomization.yaml",
                "count: 3",
            ),
            (
                "scaled-without-anti-affinity",
                "livekit/replicas",
                "overlays/scaled-without-anti-affinity/kustomization.yaml",
                "- op: remove",
            ),
            (
                "off-host-network",
                "livekit/rtc-service",
                "overlays/off-host-network/kustomization.yaml",
                "- op: remove",
            ),
        ],
    );
}

/// STUNner's design (a TURN gateway relays media to the pods' own
/// addresses), declared by the tree's lkguard.yaml `topology: turn-gateway`:
/// no NODE_IP and no media LoadBalancer are needed, but clients must be
/// handed the relay, and several pods need Redis (not an anti-affinity).
#[test]
fn turn_gateway_topology_judges_stunners_design() {
    judge_topology_tree(
        "fixtures/kustomize/turn-gateway",
        &["single", "scaled-with-redis"],
        &["livekit/node-ip", "livekit/rtc-service"],
        &[
            (
                "scaled-without-redis",
                "livekit/replicas",
                "overlays/scaled-without-redis/kustomization.yaml",
                "count: 2",
            ),
            (
                "no-relay",
                "livekit/rtc-service",
                "overlays/no-relay/patches/livekit-config.yaml",
                "    rtc:",
            ),
        ],
    );
}

/// A ConfigMap made by `configMapGenerator`: a finding about one of its keys
/// points where the generator read it (the `literals:` item, the line of an
/// `envs:` file, or inside a `files:` file), not at the generator entry.
#[test]
fn generated_config_maps_point_into_their_sources() {
    let t = "fixtures/kustomize/generated-config/overlays";
    let out = lkguard(&["check", "--format", "json", &format!("{t}/clean")]);
    assert_eq!(json(&out)["findings"], serde_json::json!([]));
    assert_eq!(out.status.code(), Some(0));
    let cases = [
        (
            "env-literal",
            "livekit/use-external-ip",
            format!("{t}/env-literal/kustomization.yaml"),
            "- LIVEKIT_RTC_USE_EXTERNAL_IP=true",
        ),
        (
            "env-file",
            "livekit/use-external-ip",
            format!("{t}/env-file/livekit.env"),
            "LIVEKIT_RTC_USE_EXTERNAL_IP=true",
        ),
        (
            "config-file",
            "livekit/config-schema",
            format!("{t}/config-file/livekit-config.yaml"),
            "tcp_prot: 7881",
        ),
        // The envFrom a patch adds names the ConfigMap unhashed.
        (
            "env-from-hashed",
            "livekit/config-schema",
            format!("{t}/env-from-hashed/patches/livekit-env-from.yaml"),
            "- configMapRef:",
        ),
    ];
    for (overlay, rule, file, needle) in cases {
        let out = lkguard(&["check", "--format", "json", &format!("{t}/{overlay}")]);
        let doc = json(&out);
        assert_eq!(
            places(&doc),
            [place(rule, &file, line_of(&file, needle))],
            "{overlay}: {doc:#}"
        );
        assert_eq!(doc["findings"][0]["exact"], true, "{overlay}");
        assert_eq!(out.status.code(), Some(1), "{overlay}");
    }
}

/// The JSON findings of `lkguard check PATH`, and its exit code.
fn findings_of(path: &str) -> (Vec<serde_json::Value>, Option<i32>) {
    let out = lkguard(&["check", "--format", "json", path]);
    let doc = json(&out);
    (
        doc["findings"].as_array().cloned().unwrap_or_default(),
        out.status.code(),
    )
}

#[test]
fn a_selector_typo_in_the_base_is_one_finding_at_the_selector_for_both_overlays() {
    let tree = "fixtures/kustomize/first-use/selector-typo";
    let (f, code) = findings_of(tree);
    assert_eq!(code, Some(1));
    assert_eq!(f.len(), 1, "{f:#?}");
    let base = format!("{tree}/base/livekit.yaml");
    assert_eq!(
        (
            f[0]["rule"].as_str(),
            f[0]["file"].as_str(),
            f[0]["line"].as_u64()
        ),
        (
            Some("livekit/rtc-service"),
            Some(base.as_str()),
            Some(line_of(&base, "livekit-servr"))
        )
    );
    assert_eq!(f[0]["exact"], true);
    assert_eq!(f[0]["alsoIn"].as_array().map(Vec::len), Some(1), "{f:#?}");
    let message = f[0]["message"].as_str().unwrap();
    assert!(
        message.contains("livekit-servr") && message.contains("app.kubernetes.io/name=livekit,"),
        "names the near miss and the pods' label: {message}"
    );
}

#[test]
fn a_json6902_port_replace_is_reported_at_the_op_naming_what_is_exposed() {
    let tree = "fixtures/kustomize/first-use/port-replaced";
    let (f, code) = findings_of(tree);
    assert_eq!(code, Some(1));
    let k = format!("{tree}/overlays/staging/kustomization.yaml");
    assert_eq!(
        places(&serde_json::json!({ "findings": f })),
        [place("livekit/rtc-service", &k, line_of(&k, "value: 443"))],
        "{f:#?}"
    );
    assert_eq!(f[0]["exact"], true);
    assert!(
        f[0]["message"]
            .as_str()
            .unwrap()
            .contains("UDP 443, not 7882"),
        "{}",
        f[0]["message"]
    );
}

#[test]
fn of_two_environments_sharing_a_node_ip_only_the_one_that_does_not_own_it_is_wrong() {
    let tree = "fixtures/kustomize/first-use/shared-node-ip";
    let (f, code) = findings_of(tree);
    assert_eq!(code, Some(1));
    let staging = format!("{tree}/overlays/staging/node-ip.yaml");
    assert_eq!(
        places(&serde_json::json!({ "findings": f })),
        [place(
            "livekit/node-ip",
            &staging,
            line_of(&staging, "20.61.14.8")
        )],
        "production's NODE_IP is the IP its own Service pins: {f:#?}"
    );
    assert!(f[0]["message"]
        .as_str()
        .unwrap()
        .contains("overlays/production pins"));
}

#[test]
fn a_finding_about_a_whole_object_never_lands_on_a_patch_first_line() {
    // The same base with no media Service at all: the finding is about the
    // pods (their labels, in the base), not the NODE_IP patch that also
    // targets the Deployment.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &root().join("fixtures/kustomize/first-use/port-replaced"),
        dir.path(),
    );
    let base = dir.path().join("base/livekit.yaml");
    let text = std::fs::read_to_string(&base).unwrap();
    let without: Vec<&str> = text
        .split("\n---\n")
        .filter(|d| !d.contains("name: livekit-rtc"))
        .collect();
    std::fs::write(&base, without.join("\n---\n")).unwrap();
    for o in ["staging", "production"] {
        let k = dir.path().join(format!("overlays/{o}/kustomization.yaml"));
        let t = std::fs::read_to_string(&k).unwrap();
        let t = t
            .split("  - path: rtc-lb-ip.yaml")
            .next()
            .unwrap()
            .to_string();
        std::fs::write(&k, t).unwrap();
    }
    std::fs::write(dir.path().join("lkguard.yaml"), "{}\n").unwrap();
    let out = lkguard_in(dir.path(), &["check", "--format", "json", "."]);
    let doc = json(&out);
    let f = doc["findings"].as_array().unwrap();
    assert_eq!(f.len(), 1, "{doc:#}");
    assert_eq!(f[0]["rule"], "livekit/rtc-service");
    assert_eq!(f[0]["file"], "base/livekit.yaml", "{doc:#}");
    let labels = 1 + text.lines().position(|l| l.trim() == "labels:").unwrap() as u64;
    assert_eq!(f[0]["line"], labels, "{doc:#}");
    assert_eq!(f[0]["alsoIn"].as_array().map(Vec::len), Some(1));
}

#[test]
fn a_repository_with_a_helm_chart_and_excluded_paths_checks_what_it_can_and_says_what_it_left_out()
{
    let repo = "fixtures/first-use-repo";
    let out = lkguard(&["check", repo]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(
        text.contains("note: Helm chart fixtures/first-use-repo/charts/livekit skipped")
            && text
                .contains("helm template fixtures/first-use-repo/charts/livekit | lkguard check -"),
        "{text}"
    );
    assert!(
        text.contains("note: fixtures/first-use-repo/ci excluded by lkguard.yaml's exclude: `ci/`"),
        "{text}"
    );
    assert!(
        text.contains("ok: no findings (11 policies, 1 render"),
        "{text}"
    );
    let doc = json(&lkguard(&["check", "--format", "json", repo]));
    assert_eq!(
        doc["summary"]["skippedPaths"],
        serde_json::json!([
            {"path": "fixtures/first-use-repo/ci", "reason": "excluded", "pattern": "ci/"},
            {"path": "fixtures/first-use-repo/charts/livekit", "reason": "helm-chart"},
        ])
    );
    assert_eq!(
        doc["summary"]["skippedDocuments"], 0,
        "lkguard.yaml is not a manifest"
    );

    // What the pre-commit hook passes on an edit of a template or a CI file.
    for file in [
        "fixtures/first-use-repo/charts/livekit/templates/deployment.yaml",
        "fixtures/first-use-repo/ci/validate-job.yaml",
    ] {
        let out = lkguard(&["check", file]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{file}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(stdout(&out).contains("note: "), "{file}: {}", stdout(&out));
    }

    // Without the exclude, the CI template is an input error, never a pass.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join(repo), dir.path());
    std::fs::write(dir.path().join("lkguard.yaml"), "{}\n").unwrap();
    let out = lkguard_in(dir.path(), &["check", "."]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let report = stdout(&out) + &stderr(&out);
    assert!(report.contains("ci/validate-job.yaml:5:11"), "{report}");
}

#[test]
fn a_tree_without_livekit_says_so_instead_of_a_bare_pass() {
    let out = lkguard(&["check", "fixtures/first-use-repo/apps"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("note: no LiveKit server found in 1 resource"),
        "{}",
        stdout(&out)
    );
    let doc = json(&lkguard(&[
        "check",
        "--format",
        "json",
        "fixtures/first-use-repo/apps",
    ]));
    assert_eq!(doc["summary"]["livekitServers"], 0);
    let doc = json(&lkguard(&[
        "check",
        "--format",
        "json",
        "fixtures/deploy/k8s",
    ]));
    assert_eq!(doc["summary"]["livekitServers"], 2, "one per overlay");
}
