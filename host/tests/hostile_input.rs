//! Hostile input: every kind of bad file a platform engineer (or a
//! generator gone wrong) can hand lkguard. Each gets a diagnostic naming the
//! file and line, or a refusal naming the limit; never a panic, never a hang
//! past a bounded time, never a silent pass.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// What a case must produce: the exit code and lines the output contains.
struct Case {
    name: &'static str,
    content: Vec<u8>,
    exit: i32,
    expect: Vec<String>,
}

fn case(name: &'static str, content: impl Into<Vec<u8>>, exit: i32, expect: &[&str]) -> Case {
    Case {
        name,
        content: content.into(),
        exit,
        expect: expect.iter().map(|s| s.to_string()).collect(),
    }
}

fn cases() -> Vec<Case> {
    let config_map = |i: usize| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: lk-{i}}}\ndata:\n  livekit.yaml: |\n    rtc:\n      use_external_ip: true\n"
        )
    };
    // 10,000 documents, every one with a livekit config that turns STUN on.
    let many = (0..10_000)
        .map(config_map)
        .collect::<Vec<_>>()
        .join("---\n");
    // 50 MiB of one ConfigMap.
    let mut huge = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n");
    let mut i = 0;
    while huge.len() < 50 << 20 {
        huge.push_str(&format!("  k{i:07}: {}\n", "x".repeat(80)));
        i += 1;
    }
    // Nine levels of nine aliases: 9^9 nodes when expanded. In the second
    // document, so the diagnostic must find its line.
    let mut bomb = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: first}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\n",
    );
    bomb.push_str("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for l in 1..10 {
        let refs = vec![format!("*a{}", l - 1); 9].join(", ");
        bomb.push_str(&format!("a{l}: &a{l} [{refs}]\n"));
    }
    let deep = format!("a: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let deep_block = format!("{}x\n", "- ".repeat(10_000));
    let mut binary = b"\x89PNG\r\n\x1a\n".to_vec();
    binary.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 | 0x80));
    vec![
        case(
            "malformed.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n",
            2,
            &["malformed.yaml:4:1: while parsing a flow mapping, did not find expected ',' or '}'"],
        ),
        case(
            "latin1.yaml",
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \"caf\xe9\"}\n".to_vec(),
            2,
            &["latin1.yaml:3:22: not UTF-8 text (YAML must be UTF-8)"],
        ),
        case("binary.yaml", binary, 2, &["binary.yaml:1:1: not UTF-8 text (YAML must be UTF-8)"]),
        case("empty.yaml", "", 0, &["no Kubernetes objects found in empty.yaml"]),
        case(
            "huge.yaml",
            huge.clone(),
            2,
            &[&format!(
                "huge.yaml: {} bytes is over the 33554432-byte limit for one file",
                huge.len()
            )],
        ),
        case(
            "many.yaml",
            many,
            1,
            &[
                "many.yaml:79999:7",
                &format!(
                    "10000 errors, 0 warnings ({} policies, 10000 resources in 1 file)",
                    lkguard::policy::embedded_ids().len()
                ),
            ],
        ),
        case(
            "deep.yaml",
            deep,
            2,
            &["deep.yaml:1:", "nested more than 128 levels deep (the YAML reader's recursion limit); refusing it"],
        ),
        case(
            "deep-block.yaml",
            deep_block,
            2,
            &["deep-block.yaml:1:", "nested more than 128 levels deep (the YAML reader's recursion limit); refusing it"],
        ),
        case(
            "bomb.yaml",
            bomb,
            2,
            &["bomb.yaml:5:1: aliases expand to more than 100 times the document's own size (the YAML reader's limit against alias bombs); refusing it"],
        ),
        case(
            "duplicate.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dup}\ndata: {a: '1'}\ndata: {b: '2'}\n",
            2,
            &["duplicate.yaml:5:1: duplicate key `data`"],
        ),
        case(
            "types.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: livekit}\nspec:\n  replicas: \"two\"\n  template:\n    spec:\n      containers: [{name: livekit, image: livekit/livekit-server:v1.9.1}]\n",
            2,
            &["types.yaml:5:3: /spec/replicas: wrong type (string), expected i32"],
        ),
        case(
            "broken-config.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: livekit-config}\ndata:\n  livekit.yaml: |\n    port: 7880\n    rtc: {use_external_ip: false\n",
            1,
            &[
                "livekit/use-external-ip",
                "broken-config.yaml:5:3",
                "is not valid YAML",
            ],
        ),
    ]
}

#[test]
fn every_hostile_input_gets_a_located_diagnostic_in_bounded_time() {
    let dir = tempfile::tempdir().unwrap();
    for c in cases() {
        let path = dir.path().join(c.name);
        std::fs::write(&path, &c.content).unwrap();
        let started = Instant::now();
        let out = lkguard_in(dir.path(), &["check", c.name]);
        let took = started.elapsed();
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(c.exit), "{}: {text}", c.name);
        for e in &c.expect {
            assert!(
                text.contains(e.as_str()),
                "{}: no {e:?} in\n{}",
                c.name,
                &text[..text.len().min(4000)]
            );
        }
        assert!(!text.contains("panicked"), "{}: {text}", c.name);
        assert!(took < Duration::from_secs(60), "{}: took {took:?}", c.name);
        // The JSON report agrees on the exit code and parses.
        let out = lkguard_in(dir.path(), &["check", "--format", "json", c.name]);
        assert_eq!(out.status.code(), Some(c.exit), "{} (json)", c.name);
        json(&out);
    }
}
