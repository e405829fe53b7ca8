//! The CI gate's formats through the real binary: SARIF validated against the
//! official 2.1.0 schema, JUnit read with an XML parser, GitHub workflow
//! commands, `--output`, `--changed-since`, and byte-identical reruns.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const MISTAKES: &str = "fixtures/kustomize/overlay-mistakes";

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = lkguard(args);
    (out.status.code(), stdout(&out))
}

fn sarif_validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("host/tests/data/sarif-schema-2.1.0.json")).unwrap(),
    )
    .unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn assert_valid_sarif(text: &str) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_str(text).unwrap();
    let errors: Vec<String> = sarif_validator()
        .iter_errors(&doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "invalid SARIF: {errors:#?}\n{text}");
    doc
}

#[test]
fn sarif_is_valid_and_points_at_the_file_to_edit() {
    // The validator can fail: a document missing `runs`, or with a bad level.
    let v = sarif_validator();
    assert!(!v.is_valid(&serde_json::json!({"version": "2.1.0"})));
    assert!(!v.is_valid(&serde_json::json!({"version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "x"}}, "results": [{"message": {"text": "m"}, "level": "fatal"}]
    }]})));
    let (code, text) = run(&["check", "--format", "sarif", MISTAKES]);
    assert_eq!(code, Some(1));
    let doc = assert_valid_sarif(&text);
    let sarif_run = &doc["runs"][0];
    let rules = sarif_run["tool"]["driver"]["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for id in [
        "livekit/use-external-ip",
        "livekit/node-ip",
        "livekit/image-digest",
        "livekit/rtc-service",
        "livekit/secrets-source",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    assert!(rules.iter().all(|r| r["fullDescription"]["text"]
        .as_str()
        .is_some_and(|t| t.len() > 40)));
    let results = sarif_run["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    let r = results
        .iter()
        .find(|r| r["ruleId"] == "livekit/image-digest")
        .unwrap();
    assert_eq!(r["level"], "error");
    assert_eq!(
        rules[r["ruleIndex"].as_u64().unwrap() as usize]["id"],
        "livekit/image-digest"
    );
    let loc = &r["locations"][0]["physicalLocation"];
    assert_eq!(
        loc["artifactLocation"]["uri"],
        format!("{MISTAKES}/overlays/image-tag-only/kustomization.yaml")
    );
    assert_eq!(loc["region"]["startLine"], 10);
    assert_eq!(loc["region"]["startColumn"], 5);
    assert_eq!(loc["region"]["endLine"], 10);
    assert!(loc["region"]["endColumn"].as_u64().unwrap() > 5);
    // A clean tree: valid, no results, execution successful.
    let (code, text) = run(&["check", "--format", "sarif", "fixtures/deploy/k8s"]);
    assert_eq!(code, Some(0));
    let doc = assert_valid_sarif(&text);
    assert_eq!(doc["runs"][0]["results"], serde_json::json!([]));
    assert_eq!(
        doc["runs"][0]["invocations"][0]["executionSuccessful"],
        true
    );
    // Input errors are notifications and the run is not successful.
    let (code, text) = run(&["check", "--format", "sarif", "no/such/file.yaml"]);
    assert_eq!(code, Some(2));
    let doc = assert_valid_sarif(&text);
    assert_eq!(
        doc["runs"][0]["invocations"][0]["executionSuccessful"],
        false
    );
}

#[test]
fn sarif_carries_exemptions_as_suppressions_with_their_justification() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join(MISTAKES), &dir.path().join("k8s"));
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    std::fs::write(
        dir.path().join("lkguard.yaml"),
        "severity:\n  livekit/image-digest: warning\nexemptions:\n  - rule: livekit/node-ip\n    resource: {kind: Deployment, name: livekit}\n    overlay: k8s/overlays/node-ip-fieldref\n    reason: kind cluster, no LoadBalancer\n    expires: 2999-01-01\n",
    )
    .unwrap();
    let out = lkguard_in(dir.path(), &["check", "--format", "sarif", "k8s"]);
    let doc = assert_valid_sarif(&stdout(&out));
    let results = doc["runs"][0]["results"].as_array().unwrap();
    let suppressed: Vec<&serde_json::Value> = results
        .iter()
        .filter(|r| r.get("suppressions").is_some())
        .collect();
    assert_eq!(suppressed.len(), 1);
    let s = &suppressed[0]["suppressions"][0];
    assert_eq!(s["kind"], "external");
    assert!(s["justification"]
        .as_str()
        .unwrap()
        .starts_with("kind cluster, no LoadBalancer (lkguard.yaml:"));
    let warning = results
        .iter()
        .find(|r| r["ruleId"] == "livekit/image-digest")
        .unwrap();
    assert_eq!(warning["level"], "warning");
    assert_eq!(
        warning["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "k8s/overlays/image-tag-only/kustomization.yaml",
        "relative to the repository root"
    );
}

#[test]
fn junit_parses_with_one_testcase_per_policy_and_origin() {
    let (code, text) = run(&["check", "--format", "junit", MISTAKES]);
    assert_eq!(code, Some(1));
    let xml = roxmltree::Document::parse(&text).unwrap();
    let suites = xml.root_element();
    assert_eq!(suites.tag_name().name(), "testsuites");
    let cases: Vec<roxmltree::Node> = xml
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let n = lkguard::policy::embedded_ids().len();
    assert_eq!(cases.len(), n * 3, "{n} policies x 3 overlays");
    let failed: Vec<(&str, &str)> = cases
        .iter()
        .filter_map(|c| {
            let f = c.children().find(|n| n.has_tag_name("failure"))?;
            Some((c.attribute("name").unwrap(), f.attribute("type").unwrap()))
        })
        .collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(failed.contains(&(
        "image-digest on fixtures/kustomize/overlay-mistakes/overlays/image-tag-only",
        "livekit/image-digest"
    )));
    assert_eq!(suites.attribute("failures"), Some("3"));
    let text_of_failure = cases
        .iter()
        .flat_map(|c| c.children())
        .find(|n| n.has_tag_name("failure") && n.attribute("type") == Some("livekit/image-digest"))
        .and_then(|n| n.text())
        .unwrap();
    assert!(
        text_of_failure.ends_with("overlays/image-tag-only/kustomization.yaml:10:5"),
        "{text_of_failure}"
    );
}

#[test]
fn github_commands_carry_file_line_and_escaped_text() {
    let (code, text) = run(&["check", "--format", "github", MISTAKES]);
    assert_eq!(code, Some(1));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for l in &lines {
        assert!(l.starts_with("::error file="), "{l}");
        let (props, message) = l["::error ".len()..].split_once("::").unwrap();
        for p in props.split(',') {
            let (k, v) = p.split_once('=').unwrap();
            assert!(
                ["file", "line", "col", "endLine", "endColumn", "title"].contains(&k),
                "{k}"
            );
            assert!(
                !v.contains(':') && !v.contains(','),
                "unescaped property {p}"
            );
        }
        assert!(
            !message.contains('\n') && message.contains("%0A"),
            "{message}"
        );
    }
    assert!(text.contains(
        "::error file=fixtures/kustomize/overlay-mistakes/overlays/image-tag-only/kustomization.yaml,line=10,col=5,"
    ));
    assert!(text.contains("title=livekit/image-digest::"));
}

#[test]
fn output_writes_the_machine_format_and_the_terminal_gets_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lkguard.sarif");
    let out = lkguard(&[
        "check",
        "--format",
        "sarif",
        "--output",
        file.to_str().unwrap(),
        MISTAKES,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_valid_sarif(&std::fs::read_to_string(&file).unwrap());
    let terminal = stdout(&out);
    assert!(terminal.contains("3 errors, 0 warnings"), "{terminal}");
    assert!(terminal.contains("livekit/image-digest"), "{terminal}");
}

#[test]
fn every_format_is_byte_identical_across_runs() {
    for format in ["human", "json", "sarif", "junit", "github"] {
        let a = run(&[
            "check",
            "--format",
            format,
            MISTAKES,
            "fixtures/rendered/bad/node-ip-empty.yaml",
        ]);
        let b = run(&[
            "check",
            "--format",
            format,
            MISTAKES,
            "fixtures/rendered/bad/node-ip-empty.yaml",
        ]);
        assert_eq!(a, b, "{format}");
    }
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn changed_since_checks_what_the_branch_touched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_dir(&root().join("fixtures/deploy"), &d.join("deploy"));
    std::fs::create_dir_all(d.join("other")).unwrap();
    std::fs::write(
        d.join("other/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    )
    .unwrap();
    git(d, &["init", "-q", "-b", "main"]);
    git(d, &["add", "-A"]);
    git(d, &["commit", "-qm", "base"]);
    git(d, &["checkout", "-q", "-b", "feature"]);

    // Nothing changed yet.
    let out = lkguard_in(d, &["check", "--changed-since", "main"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("no manifests changed since main"));

    // A base change: both overlays re-rendered, the finding at the base line.
    let base = d.join("deploy/k8s/base/livekit.yaml");
    let text = std::fs::read_to_string(&base).unwrap();
    std::fs::write(
        &base,
        text.replace("use_external_ip: false", "use_external_ip: on"),
    )
    .unwrap();
    git(d, &["commit", "-qam", "stun"]);
    let out = lkguard_in(d, &["check", "--format", "json", "--changed-since", "main"]);
    let doc = json(&out);
    assert_eq!(out.status.code(), Some(1), "{doc:#}");
    assert_eq!(doc["summary"]["resources"], 20, "both overlays: {doc:#}");
    assert_eq!(doc["findings"][0]["file"], "deploy/k8s/base/livekit.yaml");
    assert_eq!(doc["findings"][0]["line"], 16);

    // A deleted patch file still re-checks its overlay (now without NODE_IP).
    git(
        d,
        &[
            "rm",
            "-q",
            "deploy/k8s/overlays/staging/patches/livekit-rtc-lb-ip.yaml",
        ],
    );
    let k = d.join("deploy/k8s/overlays/staging/kustomization.yaml");
    let text = std::fs::read_to_string(&k).unwrap();
    std::fs::write(
        &k,
        text.replace("  - path: patches/livekit-rtc-lb-ip.yaml\n", ""),
    )
    .unwrap();
    let out = lkguard_in(d, &["check", "--format", "json", "--changed-since", "main"]);
    let doc = json(&out);
    assert_eq!(doc["summary"]["resources"], 20, "{doc:#}");

    // An unknown ref is a clear error, exit 2.
    let out = lkguard_in(d, &["check", "--changed-since", "no-such-branch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--changed-since no-such-branch"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_example_workflow_is_valid_yaml_that_uploads_sarif() {
    let text = std::fs::read_to_string(root().join("examples/github-workflow.yml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let steps = doc["jobs"]["lkguard"]["steps"].as_sequence().unwrap();
    let runs: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    assert!(runs
        .iter()
        .any(|r| r.contains("--format sarif --output lkguard.sarif")));
    assert!(runs.iter().any(|r| r.contains("--changed-since")));
    // Installs the prebuilt wheel, pinned, instead of building from source.
    assert!(
        runs.iter().any(|r| r.contains("pipx install lkguard==")),
        "{runs:?}"
    );
    assert!(
        !runs.iter().any(|r| r.contains("cargo install")),
        "{runs:?}"
    );
    assert!(steps.iter().any(|s| s["uses"]
        .as_str()
        .is_some_and(|u| u.starts_with("github/codeql-action/upload-sarif"))));
}
