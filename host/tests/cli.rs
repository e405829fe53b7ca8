//! CLI behaviour pinned by snapshots of real output: the snapshot is the spec.

mod common;

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
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("corrupt.wasm"), "{}", stderr(&out));

    let built = standalone("node-ip");
    let out = lkguard(&["policies", "--policy", built.to_str().unwrap()]);
    let text = stdout(&out);
    let line = text.lines().find(|l| l.starts_with("node-ip ")).unwrap();
    assert!(line.contains("lkguard_policy_node_ip.wasm"), "{text}");
    assert_eq!(
        text.lines().filter(|l| !l.starts_with(' ')).count(),
        5,
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
    let cases = [
        ("loop", "hostile-loop", "exceeded its deadline of 300 ms"),
        // An hour-long sleep, again and again: the frozen clock ends each
        // at once, so it is a loop the deadline stops.
        ("sleep", "hostile-sleep", "exceeded its deadline of 300 ms"),
        (
            "trap",
            "hostile-trap",
            "trapped: wasm `unreachable` instruction executed",
        ),
        (
            "memory-bomb",
            "hostile-memory-bomb",
            "exceeded its memory cap of 32 MiB",
        ),
    ];
    for (krate, id, limit) in cases {
        let wasm = hostile(krate);
        let started = std::time::Instant::now();
        let out = lkguard(&[
            "check",
            "--format",
            "json",
            "--deadline-ms",
            "300",
            "--memory-mib",
            "32",
            "--policy",
            wasm.to_str().unwrap(),
            bad,
        ]);
        let took = started.elapsed();
        let doc = json(&out);
        assert_eq!(out.status.code(), Some(2), "{id}: {doc:#}");
        assert!(took < std::time::Duration::from_secs(60), "{id}: {took:?}");
        let failures = doc["failures"].as_array().unwrap();
        assert_eq!(failures.len(), 1, "{id}: {doc:#}");
        assert_eq!(failures[0]["policy"], id, "{doc:#}");
        assert_eq!(failures[0]["message"], limit, "{doc:#}");
        let rules: Vec<&str> = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["rule"].as_str())
            .collect();
        assert!(rules.contains(&"livekit/image-digest"), "{id}: {rules:?}");
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
