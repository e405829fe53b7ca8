//! How livekit-server (Go) reads scalars, so a verdict matches what runs.
//!
//! livekit-server decodes its YAML config with gopkg.in/yaml.v3 into typed Go
//! structs (livekit/mediatransportutil `pkg/rtcconfig`: `UseExternalIP bool
//! yaml:"use_external_ip"`). yaml.v3 resolves `true`/`True`/`TRUE` as booleans
//! and, when the target is a Go `bool`, also accepts the YAML 1.1 words
//! `y/yes/on` and `n/no/off` in any of their three casings, quoted or not.
//! Anything else (`1`, `"true"` quoted, `enabled`) is a decode error, so the
//! server refuses to start.

use serde_yaml::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoBool {
    Value(bool),
    /// `~`/`null`: yaml.v3 leaves the Go zero value, `false`.
    Null,
    /// The server fails to start; the string says what it saw.
    Invalid(String),
}

pub fn yaml_bool(value: &Value) -> GoBool {
    match value {
        Value::Bool(b) => GoBool::Value(*b),
        Value::Null => GoBool::Null,
        Value::String(s) => match s.as_str() {
            "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => GoBool::Value(true),
            "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => GoBool::Value(false),
            other => GoBool::Invalid(format!("string `{other}`")),
        },
        Value::Number(n) => GoBool::Invalid(format!("number `{n}`")),
        Value::Sequence(_) => GoBool::Invalid("a list".to_string()),
        Value::Mapping(_) => GoBool::Invalid("a mapping".to_string()),
        Value::Tagged(t) => yaml_bool(&t.value),
    }
}

/// Go's `strconv.ParseBool`, which reads boolean flags and `LIVEKIT_*` env.
pub fn strconv_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A YAML scalar as yaml.v3 hands it to a custom `UnmarshalYAML` reading
/// `value.Value` (livekit's `PortRange` and `NodeIP` do): the scalar's text.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        Value::Tagged(t) => scalar_text(&t.value),
        _ => None,
    }
}

/// Reads an unsigned port the way yaml.v3 decodes a `uint32`.
pub fn yaml_port(value: &Value) -> Option<u32> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::Tagged(t) => yaml_port(&t.value),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn yaml_v3_bool_words() {
        for t in [
            "true", "True", "TRUE", "yes", "Yes", "on", "ON", "y", "\"yes\"",
        ] {
            assert_eq!(yaml_bool(&v(t)), GoBool::Value(true), "{t}");
        }
        for f in ["false", "False", "no", "off", "N", "'no'"] {
            assert_eq!(yaml_bool(&v(f)), GoBool::Value(false), "{f}");
        }
        assert_eq!(yaml_bool(&v("~")), GoBool::Null);
        for bad in ["1", "\"true\"", "enabled", "[true]"] {
            assert!(matches!(yaml_bool(&v(bad)), GoBool::Invalid(_)), "{bad}");
        }
    }

    #[test]
    fn strconv_is_stricter_than_yaml() {
        assert_eq!(strconv_bool("true"), Some(true));
        assert_eq!(strconv_bool("1"), Some(true));
        assert_eq!(strconv_bool("yes"), None);
    }
}
