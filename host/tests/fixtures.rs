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
        // Warnings alone pass the check; any error fails it.
        let errors = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["severity"] == "error");
        if got != expected || out.status.code() != Some(if errors { 1 } else { 0 }) {
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
    for rule in lkguard::policy::embedded_ids() {
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

/// `kubectl get -o yaml` (and `-o json`) prints a List: its items are the
/// objects, each judged and located inside the list file, and a Secret among
/// them is masked like any other. Read as one object, a List passed every
/// check in silence.
#[test]
fn a_kubectl_list_is_its_items_positioned_inside_the_list() {
    let planted = [
        "PLANTED-LIVE-LIST-SECRET",
        "UExBTlRFRC1MSVZFLUxJU1QtU0VDUkVU",
    ];
    for (file, line) in [
        (
            "fixtures/live/namespace-list.yaml",
            "image: livekit/livekit-server:v1.9.1",
        ),
        (
            "fixtures/live/namespace-list.json",
            "\"image\": \"livekit/livekit-server:v1.9.1\"",
        ),
    ] {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        let at = 1 + text.lines().position(|l| l.contains(line)).unwrap() as u64;
        let out = lkguard(&["check", "--format", "json", file]);
        let doc = json(&out);
        assert_eq!(
            doc["summary"]["resources"], 11,
            "{file}: the items, not one List"
        );
        let digest: Vec<&serde_json::Value> = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "livekit/image-digest")
            .collect();
        assert_eq!(digest.len(), 1, "{file}: {doc:#}");
        assert_eq!(digest[0]["line"], at, "{file}");
        assert_eq!(digest[0]["path"], "/spec/template/spec/containers/0/image");
        assert_eq!(out.status.code(), Some(1));
        for format in ["human", "json", "sarif"] {
            let out = lkguard(&["check", "--format", format, file]);
            let all = format!("{}{}", stdout(&out), stderr(&out));
            for s in planted {
                assert!(!all.contains(s), "{file} ({format}) printed {s}:\n{all}");
            }
        }
    }
}
