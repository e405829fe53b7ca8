//! A YAML stream -> documents, each a JSON value with its span index.

use lkguard_policy_sdk::pointer;
use serde::Deserialize;
use serde_json::Value;

use super::spans::{self, SpanIndex};

#[derive(Debug, Clone, Default)]
pub struct Document {
    pub value: Value,
    pub spans: SpanIndex,
}

/// A YAML error with the byte offset it was found at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    pub offset: usize,
}

/// Parses every document. Empty documents (`---` alone, comments) are kept as
/// `null` so document indexes stay aligned between the two parsers.
pub fn parse(text: &str) -> Result<Vec<Document>, SyntaxError> {
    let indexes = spans::index(text).map_err(|e| match e {
        spans::IndexError::Syntax(e, offset) => SyntaxError { message: explain(e.info()), offset },
        spans::IndexError::DuplicateKey { key, at } => SyntaxError {
            message: format!("duplicate key `{key}`: Kubernetes rejects it, and a YAML reader that keeps the last one hides the first"),
            offset: at.offset,
        },
    })?;
    let mut values = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(doc).map_err(|e| SyntaxError {
            message: explain(&strip_location(&e.to_string())),
            // An alias bomb has no position of its own: the document's start.
            offset: e.location().map_or_else(
                || indexes.get(i).and_then(|d| d.start).map_or(0, |m| m.offset),
                |l| l.index(),
            ),
        })?;
        values.push(value);
    }
    // serde_yaml yields no document for an empty stream, yaml-rust2 may yield
    // one empty document; pair them from the start and pad.
    let mut indexes = indexes.into_iter();
    Ok(values
        .into_iter()
        .map(|mut value| {
            let spans = indexes.next().unwrap_or_default();
            resolve_octal(&mut value, &spans, "");
            Document { value, spans }
        })
        .collect())
}

/// `defaultMode: 0400` is octal 256 to kubectl (sigs.k8s.io/yaml on
/// go-yaml v2) and to kustomize (yaml.v3 keeps the YAML 1.1 form), while
/// serde_yaml reads an unquoted number with a leading zero as a string.
/// Read as a string, a valid manifest fails its type check and goes
/// unjudged; so unquoted `0[0-7]+` becomes the number kubectl applies.
fn resolve_octal(value: &mut Value, spans: &SpanIndex, pointer: &str) {
    match value {
        Value::String(text) => {
            let (sign, digits) = match text.strip_prefix('-') {
                Some(d) => (-1, d),
                None => (1, text.strip_prefix('+').unwrap_or(text)),
            };
            let octal = digits.len() > 1
                && digits.starts_with('0')
                && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
            // Only then ask the span index whether it was written unquoted.
            let plain = || {
                spans
                    .get(pointer)
                    .is_some_and(|s| s.style == spans::Style::Plain)
            };
            if let (true, Ok(n)) = (octal, i64::from_str_radix(digits, 8)) {
                if plain() {
                    *value = Value::from(sign * n);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                resolve_octal(item, spans, &pointer::push(pointer, i.to_string()));
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                resolve_octal(item, spans, &pointer::push(pointer, key));
            }
        }
        _ => {}
    }
}

/// The readers' safety limits, named with their values: serde_yaml 0.9
/// (`de.rs`) refuses nesting past 128 levels and alias replays past 100
/// times the document's own event count; yaml-rust2, which runs first for
/// positions, refuses flow collections nested past 255 levels with the same
/// words, and 255 is past 128 as well.
fn explain(message: &str) -> String {
    match message {
        "recursion limit exceeded" => {
            "nested more than 128 levels deep (the YAML reader's recursion limit); refusing it".into()
        }
        "repetition limit exceeded" => "aliases expand to more than 100 times the document's own size (the YAML reader's limit against alias bombs); refusing it".into(),
        other => other.to_string(),
    }
}

/// serde_yaml appends " at line L column C"; the diagnostic shows that itself.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unquoted_leading_zero_number_is_octal_as_kubectl_reads_it() {
        let docs = parse("a: 0400\nb: '0400'\nc: [0644, 08, 0]\nd: -010\n").unwrap();
        let v = &docs[0].value;
        assert_eq!(v["a"], 256);
        assert_eq!(v["b"], "0400");
        // 08 is no octal number: left as serde_yaml reads it; 0 is zero.
        assert_eq!(v["c"], serde_json::json!([420, "08", 0]));
        assert_eq!(v["d"], -8);
    }

    #[test]
    fn documents_align_with_spans() {
        let text = "# comment\n---\na: 1\n---\n---\nb: [1, 2]\n";
        let docs = parse(text).unwrap();
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].value["a"], 1);
        assert!(docs[1].value.is_null());
        assert_eq!(docs[2].spans.get("/b/1").unwrap().value.line, 6);
    }

    #[test]
    fn empty_and_comment_only_streams_have_no_objects() {
        for text in ["", "# nothing\n"] {
            let docs = parse(text).unwrap();
            assert!(docs.iter().all(|d| d.value.is_null()), "{text:?}");
        }
    }

    #[test]
    fn syntax_errors_carry_an_offset() {
        let err = parse("a: 1\nb: [\n").unwrap_err();
        assert!(err.offset > 0, "{err:?}");
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert!(err.message.contains("duplicate"), "{err:?}");
        assert_eq!(err.offset, 5);
    }
}
