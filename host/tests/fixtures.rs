//! Every fixture through the real wasm path: the good renders pass clean, and
//! each bad render yields exactly the `# expect: RULE LINE` lines it declares.

mod common;

use common::*;

/// `# expect: livekit/node-ip 119` lines, sorted.
fn expectations(text: &str) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|l| {
            let (rule, line) = l.trim().rsplit_once(' ').expect("`# expect: RULE LINE`");
            (rule.to_string(), line.parse().expect("line number"))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn good_renders_pass_clean_alone_and_together() {
    for args in [
        vec!["fixtures/rendered/staging.yaml"],
        vec!["fixtures/rendered/production.yaml"],
        vec![
            "fixtures/rendered/staging.yaml",
            "fixtures/rendered/production.yaml",
        ],
    ] {
        let mut full = vec!["check", "--format", "json"];
        full.extend(args.iter());
        let out = lkguard(&full);
        let doc = json(&out);
        assert_eq!(doc["findings"], serde_json::json!([]), "{args:?}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn each_bad_render_yields_exactly_its_expected_rule_at_its_line() {
    let mut failures = Vec::new();
    let fixtures = bad_fixtures();
    for path in &fixtures {
        let text = std::fs::read_to_string(path).unwrap();
        let expected = expectations(&text);
        assert!(
            !expected.is_empty(),
            "{} has no `# expect:` line",
            path.display()
        );
        let rel = relative(path);
        let out = lkguard(&["check", "--format", "json", &rel]);
        let doc = json(&out);
        let mut got: Vec<(String, u64)> = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["rule"].as_str().unwrap().to_string(),
                    f["line"].as_u64().unwrap(),
                )
            })
            .collect();
        got.sort();
        if got != expected || out.status.code() != Some(1) {
            failures.push(format!(
                "{rel}: expected {expected:?}, got {got:?} (exit {:?})",
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_rule_has_at_least_three_bad_fixtures() {
    for rule in [
        "use-external-ip",
        "node-ip",
        "image-digest",
        "rtc-service",
        "secrets-source",
    ] {
        let n = bad_fixtures()
            .iter()
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&format!("{rule}-"))
            })
            .count();
        assert!(n >= 3, "{rule} has {n} bad fixtures");
    }
}

#[test]
fn planted_secrets_never_reach_any_output() {
    for path in bad_fixtures()
        .iter()
        .filter(|p| p.to_string_lossy().contains("secrets-source"))
    {
        let rel = relative(path);
        for format in ["human", "json"] {
            let out = lkguard(&["check", "--format", format, &rel]);
            let all = format!("{}{}", stdout(&out), stderr(&out));
            for s in PLANTED_SECRETS {
                assert!(!all.contains(s), "{rel} ({format}) printed {s}:\n{all}");
            }
        }
    }
}

#[test]
fn overlays_sharing_a_node_ip_are_caught_across_files() {
    // The same render twice under two names: two environments, one IP.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("fixtures/rendered/staging.yaml")).unwrap();
    for env in ["staging", "preview"] {
        std::fs::write(dir.path().join(format!("{env}.yaml")), &text).unwrap();
    }
    let out = lkguard_in(
        dir.path(),
        &["check", "--format", "json", "staging.yaml", "preview.yaml"],
    );
    let doc = json(&out);
    assert_eq!(
        rules(&doc),
        ["livekit/node-ip", "livekit/node-ip"],
        "{doc:#}"
    );
    assert!(doc["findings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("also the NODE_IP of"));
}

#[test]
fn kustomize_base_is_not_deployable() {
    // A base has no NODE_IP and no digest: neither is a finding there.
    let out = lkguard(&["check", "--format", "json", "fixtures/deploy/k8s/base"]);
    let doc = json(&out);
    assert_eq!(doc["findings"], serde_json::json!([]), "{doc:#}");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn files_of_a_kustomize_tree_are_sources_not_renders() {
    // What a pre-commit hook passes: a base file and an overlay patch. The base
    // lacks NODE_IP and a digest by design; the patch is a partial object.
    let out = lkguard(&[
        "check",
        "--format",
        "json",
        "fixtures/deploy/k8s/base/livekit.yaml",
        "fixtures/deploy/k8s/overlays/staging/patches/livekit-node-ip.yaml",
    ]);
    let doc = json(&out);
    assert_eq!(doc["findings"], serde_json::json!([]), "{doc:#}");
    assert_eq!(
        doc["summary"]["files"], 1,
        "the patch is not read as an object"
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_base_file_with_a_real_mistake_is_still_caught() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    std::fs::create_dir(&base).unwrap();
    std::fs::copy(
        root().join("fixtures/deploy/k8s/base/kustomization.yaml"),
        base.join("kustomization.yaml"),
    )
    .unwrap();
    let text =
        std::fs::read_to_string(root().join("fixtures/deploy/k8s/base/livekit.yaml")).unwrap();
    std::fs::write(
        base.join("livekit.yaml"),
        text.replace("use_external_ip: false", "use_external_ip: on"),
    )
    .unwrap();
    let out = lkguard_in(
        dir.path(),
        &["check", "--format", "json", "base/livekit.yaml"],
    );
    let doc = json(&out);
    assert_eq!(rules(&doc), ["livekit/use-external-ip"], "{doc:#}");
    assert_eq!(doc["findings"][0]["origin"], "base");
}
