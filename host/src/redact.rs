//! Masks secret values in the text a report shows.
//!
//! Findings never carry values, but a diagnostic shows source lines around
//! the finding, and those lines may hold a literal secret (often the very one
//! the finding is about). Every snippet is cut from a masked copy of the file.

use serde_json::Value;

use lkguard_policy_sdk::livekit::{is_sensitive_name, looks_like_config};

use crate::load::spans::{NodeSpan, Style};
use crate::load::SourceFile;
use crate::locate::{self, Lines};

/// The file's text with every secret value replaced by `*`, byte for byte,
/// so offsets and line numbers stay valid.
pub fn masked(file: &SourceFile) -> String {
    let lines = Lines::of(file);
    let mut bytes = file.text.as_bytes().to_vec();
    for doc in &file.documents {
        let mut pointers = Vec::new();
        sensitive(&doc.value, "", &mut pointers);
        for p in pointers {
            if let Some(span) = doc.spans.get(&p) {
                mask_node(&mut bytes, &lines, span);
            }
        }
        for (p, span) in doc.spans.iter() {
            let Some(text) = doc.value.pointer(p).and_then(Value::as_str) else {
                continue;
            };
            if !(text.contains(':') || text.contains('-')) {
                continue;
            }
            // A YAML document inside a string: the livekit config's `keys:`,
            // or an inline kustomize patch carrying an env literal. Parsed
            // once; the JSON view is converted from it.
            let Ok(config) = serde_yaml::from_str::<serde_yaml::Value>(text) else {
                continue;
            };
            let Ok(inner_value) = serde_json::to_value(&config) else {
                continue;
            };
            let mut inner_pointers = Vec::new();
            sensitive(&inner_value, "", &mut inner_pointers);
            let keys = looks_like_config(&config) || config.get("keys").is_some();
            if inner_pointers.is_empty() && !keys {
                continue;
            }
            let Some(inner) = locate::embedded_spans(&doc.value, p) else {
                continue;
            };
            if span.style != Style::Block {
                mask_node(&mut bytes, &lines, span);
                continue;
            }
            for (ip, ispan) in inner.iter() {
                let secret = (keys && ip.starts_with("/keys/")) || inner_pointers.contains(ip);
                if secret {
                    if let Some(offset) = locate::embedded_mark(span, text, ispan.anchor())
                        .and_then(|(l, c)| lines.offset(l, c))
                    {
                        mask_line_from(&mut bytes, offset);
                    }
                }
            }
        }
    }
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Pointers of values that may be secrets.
fn sensitive(value: &Value, at: &str, out: &mut Vec<String>) {
    // The objects of a List are objects at their own roots.
    if at.is_empty() {
        if let Some(items) = crate::load::list_items(value) {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("/items/{i}"), true, out);
            }
            return;
        }
    }
    walk(value, at, at.is_empty(), out);
}

/// `sensitive` below `at`; `root`: `value` is a whole object (a document, or
/// an item of a List), whose `kind` says what it is.
fn walk(value: &Value, at: &str, root: bool, out: &mut Vec<String>) {
    let kind = value.get("kind").and_then(Value::as_str);
    if root && kind == Some("Secret") {
        for field in ["data", "stringData"] {
            if let Some(map) = value.get(field).and_then(Value::as_object) {
                out.extend(map.keys().map(|k| {
                    format!(
                        "{at}{}",
                        lkguard_policy_sdk::pointer::join([field, k.as_str()])
                    )
                }));
            }
        }
    }
    // kustomize's secretGenerator literals: `KEY=value`.
    if let Some(generators) = value.get("secretGenerator").and_then(Value::as_array) {
        for (i, g) in generators.iter().enumerate() {
            for (j, _) in g
                .get("literals")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                out.push(format!("{at}/secretGenerator/{i}/literals/{j}"));
            }
        }
    }
    match value {
        Value::Object(map) => {
            // An env entry, or anything shaped like one ({name, value}).
            if let (Some(Value::String(name)), Some(_)) = (map.get("name"), map.get("value")) {
                if is_sensitive_name(name) {
                    out.push(format!("{at}/value"));
                }
            }
            for (k, v) in map {
                let child = lkguard_policy_sdk::pointer::push(at, k);
                if v.is_string() && is_sensitive_name(k) && k != "name" {
                    out.push(child.clone());
                }
                walk(v, &child, false, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, &format!("{at}/{i}"), false, out);
            }
        }
        _ => {}
    }
}

fn mask_line_from(bytes: &mut [u8], offset: usize) {
    for b in bytes.iter_mut().skip(offset) {
        if *b == b'\n' {
            break;
        }
        if !b.is_ascii_whitespace() {
            *b = b'*';
        }
    }
}

/// Masks a scalar: the rest of its line, and for a block scalar every more
/// indented line that follows.
fn mask_node(bytes: &mut [u8], lines: &Lines, span: &NodeSpan) {
    mask_line_from(bytes, span.value.offset);
    if span.style != Style::Block {
        return;
    }
    let key_indent = span.anchor().col - 1;
    let mut line = span.value.line + 1;
    while let Some(text) = lines.line(line) {
        let indent = text.chars().take_while(|c| *c == ' ').count();
        if !text.trim().is_empty() && indent <= key_indent {
            break;
        }
        if let Some(o) = lines.offset(line, 1) {
            mask_line_from(bytes, o);
        }
        line += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::documents;

    fn file(text: &str) -> SourceFile {
        SourceFile::new(
            "f.yaml".into(),
            text.into(),
            documents::parse(text).unwrap(),
        )
    }

    #[test]
    fn env_literals_secrets_and_inline_keys_are_masked() {
        let text = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - name: c\n      env:\n        - name: LIVEKIT_API_SECRET\n          value: hunter2-literal\n        - name: LIVEKIT_URL\n          value: wss://x\n---\napiVersion: v1\nkind: Secret\nstringData:\n  anything: |\n    hunter3\n    hunter4\n---\napiVersion: v1\nkind: ConfigMap\ndata:\n  livekit.yaml: |\n    port: 7880\n    keys:\n      hunter6: hunter5\n    rtc:\n      use_external_ip: false\n";
        let m = masked(&file(text));
        for s in ["hunter2", "hunter3", "hunter4", "hunter5", "hunter6"] {
            assert!(!m.contains(s), "{s} leaked:\n{m}");
        }
        assert!(m.contains("wss://x"));
        assert!(m.contains("use_external_ip: false"));
        assert_eq!(m.len(), text.len());
    }

    #[test]
    fn kustomization_literals_and_inline_patches_are_masked() {
        let text = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nsecretGenerator:\n  - name: livekit-secrets\n    literals:\n      - livekit-keys=hunter7\npatches:\n  - target: {kind: Deployment, name: bff}\n    patch: |-\n      - op: add\n        path: /spec/template/spec/containers/0/env/-\n        value:\n          name: POLYPHON_LIVEKIT_API_SECRET\n          value: hunter8\n      - op: replace\n        path: /spec/rules/0/host\n        value: livekit.example.com\n";
        let m = masked(&file(text));
        for s in ["hunter7", "hunter8"] {
            assert!(!m.contains(s), "{s} leaked:\n{m}");
        }
        assert!(m.contains("value: livekit.example.com"), "{m}");
        assert!(m.contains("name: POLYPHON_LIVEKIT_API_SECRET"), "{m}");
    }
}
