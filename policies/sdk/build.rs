//! Derives livekit-server's generated flags from the shipped config schema.
//!
//! livekit-server gives every scalar config field a hidden flag named by its
//! dotted YAML path and an env var `LIVEKIT_<PATH>` (`pkg/config`
//! `GenerateCLIFlags`). The schema (`schema/livekit-server.schema.json`,
//! produced by `scripts/livekit-schema/gen.py` from the Go structs of one
//! named version) marks each such field with `x-flag` and its Go kind; this
//! turns them into a table the policies look names up in, so a newer schema
//! brings its new variables without a hand-kept list.

use std::fmt::Write;
use std::path::PathBuf;

use serde_json::Value;

const SCHEMA: &str = "schema/livekit-server.schema.json";

fn kind(go_kind: &str) -> Option<&'static str> {
    Some(
        match go_kind.strip_prefix("pointer-to-").unwrap_or(go_kind) {
            "bool" => "Bool",
            "int" => "Int",
            "uint" => "Uint",
            "float" => "Float",
            "string" => "String",
            "duration" => "Duration",
            _ => return None,
        },
    )
}

fn walk(node: &Value, out: &mut Vec<(String, &'static str, String)>) {
    let Some(map) = node.as_object() else { return };
    if let (Some(flag), Some(go_kind)) = (
        map.get("x-flag").and_then(Value::as_str),
        map.get("x-go-kind").and_then(Value::as_str),
    ) {
        let k = kind(go_kind)
            .unwrap_or_else(|| panic!("{SCHEMA}: x-flag {flag} has non-scalar kind {go_kind}"));
        let go_type = map
            .get("x-go-type")
            .and_then(Value::as_str)
            .unwrap_or(go_kind);
        let env = format!("LIVEKIT_{}", flag.to_ascii_uppercase().replace('.', "_"));
        if let Some(declared) = map.get("x-env").and_then(Value::as_str) {
            assert_eq!(declared, env, "{SCHEMA}: x-env of {flag}");
        }
        out.push((flag.to_string(), k, go_type.to_string()));
    }
    for key in ["properties", "x-go-struct-fields"] {
        if let Some(children) = map.get(key).and_then(Value::as_object) {
            for child in children.values() {
                walk(child, out);
            }
        }
    }
}

/// Drops keys no validator reads, except `x-go-type`.
fn strip(node: &mut Value) {
    match node {
        Value::Object(map) => {
            map.retain(|k, _| {
                !(k == "description" || k == "$comment" || k == "title")
                    && (!k.starts_with("x-") || k == "x-go-type")
            });
            for v in map.values_mut() {
                strip(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip),
        _ => {}
    }
}

fn main() {
    println!("cargo:rerun-if-changed={SCHEMA}");
    let text = std::fs::read_to_string(SCHEMA).expect("reading the livekit-server schema");
    let schema: Value = serde_json::from_str(&text).expect("the livekit-server schema is JSON");
    let mut flags = Vec::new();
    walk(&schema, &mut flags);
    flags.sort();
    assert!(
        flags.iter().any(|(f, _, _)| f == "rtc.use_external_ip"),
        "{SCHEMA}: no generated flag for rtc.use_external_ip"
    );
    let version = schema
        .get("x-livekit-version")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let mut rs = String::new();
    writeln!(
        rs,
        "/// The livekit-server version the schema was derived from.\npub const LIVEKIT_VERSION: &str = {version:?};"
    )
    .unwrap();
    writeln!(
        rs,
        "/// Every generated flag, sorted by path.\npub static GENERATED: &[Generated] = &["
    )
    .unwrap();
    for (flag, k, go_type) in &flags {
        let env = format!("LIVEKIT_{}", flag.to_ascii_uppercase().replace('.', "_"));
        writeln!(
            rs,
            "    Generated {{ path: {flag:?}, env: {env:?}, kind: Kind::{k}, go_type: {go_type:?} }},"
        )
        .unwrap();
    }
    writeln!(rs, "];").unwrap();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("generated_flags.rs"), rs).expect("writing generated_flags.rs");
    // The policies validate against the schema at run time, inside wasm:
    // ship it without the prose and the generator's annotations (a third of
    // the size to parse per batch), keeping x-go-type for messages.
    let mut lean = schema.clone();
    strip(&mut lean);
    // Validated as draft 7 (config-schema says why); the keywords used are
    // common to both drafts.
    lean["$schema"] = Value::String("http://json-schema.org/draft-07/schema#".into());
    std::fs::write(
        out.join("livekit-server.schema.min.json"),
        serde_json::to_string(&lean).expect("serialising the schema"),
    )
    .expect("writing the lean schema");
}
