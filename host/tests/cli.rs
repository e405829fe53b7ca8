//! CLI behaviour pinned by snapshots of real output: the snapshot is the spec.

mod common;

use std::path::PathBuf;

use common::*;

fn snapshot_of(args: &[&str]) -> String {
    let out = lkguard(args);
    format!(
        "$ lkguard {}\nexit: {:?}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        out.status.code(),
        stdout(&out),
        stderr(&out)
    )
}

macro_rules! cli_snapshot {
    ($name:ident, $($arg:expr),+) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(snapshot_of(&[$($arg),+]));
        }
    };
}

cli_snapshot!(
    good_renders,
    "check",
    "fixtures/rendered/staging.yaml",
    "fixtures/rendered/production.yaml"
);
cli_snapshot!(
    use_external_ip_yes,
    "check",
    "fixtures/rendered/bad/use-external-ip-yes.yaml"
);
cli_snapshot!(
    use_external_ip_env_config,
    "check",
    "fixtures/rendered/bad/use-external-ip-env-config.yaml"
);
cli_snapshot!(
    node_ip_host_ip,
    "check",
    "fixtures/rendered/bad/node-ip-host-ip-fieldref.yaml"
);
cli_snapshot!(
    image_digest_tag_only,
    "check",
    "fixtures/rendered/bad/image-digest-tag-only.yaml"
);
cli_snapshot!(
    rtc_service_missing,
    "check",
    "fixtures/rendered/bad/rtc-service-missing.yaml"
);
cli_snapshot!(
    secrets_literal,
    "check",
    "fixtures/rendered/bad/secrets-source-literal-api-secret.yaml"
);
cli_snapshot!(
    secrets_inline_keys,
    "check",
    "fixtures/rendered/bad/secrets-source-inline-keys.yaml"
);
cli_snapshot!(
    json_format,
    "check",
    "--format",
    "json",
    "fixtures/rendered/bad/node-ip-mismatch-annotation.yaml"
);
cli_snapshot!(policies, "policies");
cli_snapshot!(explain_node_ip, "explain", "livekit/node-ip");
cli_snapshot!(explain_unknown, "explain", "livekit/nope");
// What `lkguard policies` prints first on each line is a policy id.
cli_snapshot!(explain_policy_id, "explain", "node-ip");
cli_snapshot!(explain_near_miss, "explain", "livekit/node_ip");
// rtc.udp_port is set, and the range wins: the help says to remove the range.
cli_snapshot!(
    rtc_service_range_over_udp_port,
    "check",
    "fixtures/rendered/bad/rtc-service-port-range.yaml"
);
// A pass on a directory with no livekit-server says so.
cli_snapshot!(no_livekit_here, "check", "fixtures/first-use-repo/apps");
cli_snapshot!(helm_chart_and_exclude, "check", "fixtures/first-use-repo");
cli_snapshot!(
    bad_settings,
    "check",
    "--settings",
    "rtc-service={\"udp_port\":70000}",
    "fixtures/rendered/staging.yaml"
);
cli_snapshot!(
    settings_for_unknown_policy,
    "check",
    "--settings",
    "nope={}",
    "fixtures/rendered/staging.yaml"
);
cli_snapshot!(missing_path, "check", "fixtures/does-not-exist.yaml");

#[test]
fn settings_change_the_verdict() {
    // The staging render exposes UDP 7882; a policy told the mux port is 3478 disagrees.
    let out = lkguard(&[
        "check",
        "--format",
        "json",
        "--settings",
        "rtc-service={\"udp_port\":3478}",
        "fixtures/rendered/staging.yaml",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the config's rtc.udp_port wins over the default setting"
    );
    let out = lkguard(&[
        "check",
        "--format",
        "json",
        "--settings",
        "secrets-source={\"secret\":\"other\"}",
        "fixtures/rendered/staging.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn malformed_yaml_is_an_input_error_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.yaml"),
        "apiVersion: v1\nkind: ConfigMap\ndata:\n  a: [1, 2\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("dup.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nkind: Secret\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("types.yaml"), "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: two\n  selector: {}\n  template: {}\n").unwrap();
    let out = lkguard_in(dir.path(), &["check", "."]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("./broken.yaml:5:1:") || text.contains("./broken.yaml:4:"),
        "{text}"
    );
    assert!(
        text.contains("./dup.yaml:3:1: duplicate key `kind`"),
        "{text}"
    );
    assert!(
        text.contains("./types.yaml:5:3: /spec/replicas: wrong type"),
        "{text}"
    );
    assert!(!text.contains("two"), "{text}");
}

#[test]
fn stdin_is_read_with_dash() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let yaml =
        std::fs::read(root().join("fixtures/rendered/bad/image-digest-latest.yaml")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lkguard"))
        .args(["check", "--deadline-ms", "120000", "--format", "json", "-"])
        .env("LKGUARD_CACHE_DIR", cache_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&yaml).unwrap();
    let out = child.wait_with_output().unwrap();
    let doc = json(&out);
    assert_eq!(doc["findings"][0]["rule"], "livekit/image-digest");
    assert_eq!(doc["findings"][0]["file"], "<stdin>");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn policy_file_replaces_the_embedded_one_by_id_and_corrupt_wasm_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.wasm");
    std::fs::write(&corrupt, b"\0asm\x0d\0\x01\0garbage").unwrap();
    let out = lkguard(&[
        "check",
        "--policy",
        corrupt.to_str().unwrap(),
        "fixtures/rendered/staging.yaml",
    ]);
    // Reported as a policy that failed, next to the others' findings (the
    // hostile table below checks the message).
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("corrupt.wasm"), "{}", stdout(&out));

    let built = standalone("node-ip");
    let out = lkguard(&["policies", "--policy", built.to_str().unwrap()]);
    let text = stdout(&out);
    let line = text.lines().find(|l| l.starts_with("node-ip ")).unwrap();
    assert!(line.contains("lkguard_policy_node_ip.wasm"), "{text}");
    assert_eq!(
        text.lines().filter(|l| !l.starts_with(' ')).count(),
        lkguard::policy::embedded_ids().len(),
        "replaced, not added:\n{text}"
    );
}

#[test]
fn directories_are_walked_and_non_manifests_skipped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::copy(
        root().join("fixtures/rendered/staging.yaml"),
        dir.path().join("sub/render.yml"),
    )
    .unwrap();
    std::fs::write(dir.path().join("values.yaml"), "replicaCount: 2\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not yaml").unwrap();
    let out = lkguard_in(dir.path(), &["check", "--format", "json", "."]);
    let doc = json(&out);
    assert_eq!(doc["summary"]["files"], 2);
    assert_eq!(doc["summary"]["skippedDocuments"], 1);
    assert_eq!(out.status.code(), Some(0), "{doc:#}");
}

/// A render repeated until evaluating it takes real time and memory.
fn big_render(dir: &std::path::Path, copies: usize) -> std::path::PathBuf {
    let one = std::fs::read_to_string(root().join("fixtures/rendered/staging.yaml")).unwrap();
    let path = dir.join("big.yaml");
    std::fs::write(&path, vec![one; copies].join("---\n")).unwrap();
    path
}

#[test]
fn a_policy_past_its_deadline_fails_closed_naming_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let big = big_render(dir.path(), 400);
    let out = lkguard(&["check", "--deadline-ms", "1", big.to_str().unwrap()]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("exceeded its deadline of 1 ms"), "{text}");
    assert!(text.contains("policy use-external-ip"), "{text}");
}

#[test]
fn hostile_policies_fail_closed_naming_the_limit_and_the_bundle_still_reports() {
    // Real components from fixtures/hostile, each loaded next to the bundle.
    let bad = "fixtures/rendered/bad/image-digest-tag-only.yaml";
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.wasm");
    std::fs::write(&corrupt, b"\0asm\x0d\0\x01\0garbage").unwrap();
    let wrong_wit = hostile("wrong-wit");
    // (component, settings, the failure's policy, how its message starts).
    // Deadline 300 ms and memory cap 32 MiB, except for the flood, which
    // needs room to build its 100 MB before the output limit can refuse it.
    let cases: Vec<(PathBuf, &str, String, &str)> = vec![
        (hostile("loop"), "", "hostile-loop".into(), "exceeded its deadline of 300 ms"),
        // An hour-long sleep, again and again: the frozen clock ends each
        // at once, so it is a loop the deadline stops.
        (hostile("sleep"), "", "hostile-sleep".into(), "exceeded its deadline of 300 ms"),
        (
            hostile("trap"),
            "",
            "hostile-trap".into(),
            "trapped: wasm `unreachable` instruction executed",
        ),
        (
            hostile("memory-bomb"),
            "",
            "hostile-memory-bomb".into(),
            "exceeded its memory cap of 32 MiB",
        ),
        (
            hostile("flood"),
            "",
            "hostile-flood".into(),
            "returned more than 64 MiB of findings, lkguard's limit on what one evaluation may return",
        ),
        (
            hostile("big-message"),
            "",
            "hostile-big-message".into(),
            "returned a finding message of 10485760 bytes, over the 64 KiB limit for one text",
        ),
        (
            hostile("escape"),
            r#"{"attempt": "file"}"#,
            "hostile-escape".into(),
            "returned an error: reading /etc/passwd failed: ",
        ),
        (
            hostile("escape"),
            r#"{"attempt": "env"}"#,
            "hostile-escape".into(),
            "returned an error: env PATH failed: environment variable not found (all: [])",
        ),
        (
            hostile("escape"),
            r#"{"attempt": "socket"}"#,
            "hostile-escape".into(),
            "returned an error: connecting to 127.0.0.1:22 failed: ",
        ),
        (
            wrong_wit.clone(),
            "",
            wrong_wit.display().to_string(),
            "could not be loaded: the component does not implement lkguard:policy@0.1.0: it is built against lkguard:policy@0.2.0 (it imports lkguard:policy/types@0.2.0)",
        ),
        (
            corrupt.clone(),
            "",
            corrupt.display().to_string(),
            "could not be loaded: not a policy component",
        ),
    ];
    let host_path = std::env::var("PATH").unwrap_or_default();
    for (wasm, settings, id, limit) in cases {
        let started = std::time::Instant::now();
        let (deadline, memory) = match id.as_str() {
            "hostile-flood" => ("20000", "512"),
            _ => ("300", "32"),
        };
        let mut args = vec![
            "check",
            "--format",
            "json",
            "--deadline-ms",
            deadline,
            "--memory-mib",
            memory,
            "--policy",
            wasm.to_str().unwrap(),
        ];
        let setting = format!("hostile-escape={settings}");
        if !settings.is_empty() {
            args.extend(["--settings", &setting]);
        }
        args.push(bad);
        let out = lkguard(&args);
        let took = started.elapsed();
        let doc = json(&out);
        assert_eq!(out.status.code(), Some(2), "{id}: {doc:#}");
        assert!(took < std::time::Duration::from_secs(60), "{id}: {took:?}");
        let failures = doc["failures"].as_array().unwrap();
        assert_eq!(failures.len(), 1, "{id}: {doc:#}");
        assert_eq!(failures[0]["policy"], id.as_str(), "{doc:#}");
        let message = failures[0]["message"].as_str().unwrap();
        assert!(message.starts_with(limit), "{id}: {message}");
        let rules: Vec<&str> = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["rule"].as_str())
            .collect();
        assert!(rules.contains(&"livekit/image-digest"), "{id}: {rules:?}");
        // Nothing of the host gets out, and no flood reaches the report.
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(all.len() < 64 << 10, "{id}: {} bytes of output", all.len());
        assert!(!all.contains("root:"), "{id}: {all}");
        assert!(
            host_path.is_empty() || !all.contains(&host_path),
            "{id}: {all}"
        );
    }
}

#[test]
fn a_policy_over_its_memory_cap_fails_closed_and_others_still_report() {
    let dir = tempfile::tempdir().unwrap();
    let big = big_render(dir.path(), 400);
    let out = lkguard(&[
        "check",
        "--format",
        "json",
        "--memory-mib",
        "8",
        big.to_str().unwrap(),
    ]);
    let doc = json(&out);
    assert_eq!(out.status.code(), Some(2), "{doc:#}");
    let failures = doc["failures"].as_array().unwrap();
    assert!(!failures.is_empty());
    for f in failures {
        assert_eq!(f["message"], "exceeded its memory cap of 8 MiB", "{f}");
    }
    // Below what a policy needs to instantiate (at load, or at evaluation
    // when its metadata is cached).
    let out = lkguard(&[
        "check",
        "--memory-mib",
        "1",
        "fixtures/rendered/staging.yaml",
    ]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(2));
    assert!(text.contains("exceeded its memory cap of 1 MiB"), "{text}");
}

#[test]
fn a_cache_filled_by_parallel_loads_runs_each_policy_as_itself() {
    // Policies compile on parallel threads into one cache directory. A write
    // that raced another once stored one policy's code under another's key,
    // and that policy's rule then silently passed on every later run.
    let one_per_rule = [
        ("image-digest-tag-only.yaml", "livekit/image-digest"),
        ("node-ip-empty.yaml", "livekit/node-ip"),
        ("rtc-service-missing.yaml", "livekit/rtc-service"),
        (
            "secrets-source-literal-api-key.yaml",
            "livekit/secrets-source",
        ),
        ("use-external-ip-true.yaml", "livekit/use-external-ip"),
    ];
    for _ in 0..2 {
        let cache = tempfile::tempdir().unwrap();
        let cache = cache.path().to_str().unwrap();
        let fill = lkguard(&["policies", "--cache-dir", cache]);
        assert!(fill.status.success(), "{}", stderr(&fill));
        for (file, rule) in one_per_rule {
            let path = format!("fixtures/rendered/bad/{file}");
            let out = lkguard(&["check", "--format", "json", "--cache-dir", cache, &path]);
            assert_eq!(rules(&json(&out)), [rule], "{file}");
        }
    }
}
