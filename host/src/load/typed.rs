//! Typed checks of the kinds the policies read, so a wrong type is an input
//! error at its line instead of an object the policies silently skip.

use k8s_openapi::api::{apps, batch, core};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub struct TypeError {
    pub pointer: String,
    pub message: String,
}

fn check_as<T: DeserializeOwned>(value: &Value, base: &str) -> Result<(), TypeError> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(_) => Ok(()),
        Err(e) => {
            let pointer = format!(
                "{base}{}",
                e.path()
                    .iter()
                    .filter_map(|seg| match seg {
                        serde_path_to_error::Segment::Seq { index } => Some(format!("/{index}")),
                        serde_path_to_error::Segment::Map { key } =>
                            Some(lkguard_policy_sdk::pointer::push("", key)),
                        _ => None,
                    })
                    .collect::<String>()
            );
            let shown = if pointer.is_empty() {
                "/".to_string()
            } else {
                pointer.clone()
            };
            Err(TypeError {
                message: format!("{shown}: {}", hide_value(&e.inner().to_string())),
                pointer,
            })
        }
    }
}

/// serde quotes the offending value (`invalid type: string "two"`); it may be
/// a secret, so keep only what was expected.
fn hide_value(message: &str) -> String {
    if message.starts_with("invalid type") || message.starts_with("invalid value") {
        if let Some((_, expected)) = message.rsplit_once(", expected ") {
            let kind = message
                .split_whitespace()
                .nth(2)
                .unwrap_or("value")
                .trim_end_matches(['`', '"']);
            return format!("wrong type ({kind}), expected {expected}");
        }
    }
    message.to_string()
}

/// Checks objects of the kinds lkguard's policies read against k8s-openapi.
/// Secrets are left out: their values must never reach a message.
pub fn check(value: &Value) -> Result<(), TypeError> {
    let s = |p: &str| value.pointer(p).and_then(Value::as_str).unwrap_or_default();
    match (s("/apiVersion"), s("/kind")) {
        ("apps/v1", "Deployment") => check_as::<apps::v1::Deployment>(value, ""),
        ("apps/v1", "StatefulSet") => check_as::<apps::v1::StatefulSet>(value, ""),
        ("apps/v1", "DaemonSet") => check_as::<apps::v1::DaemonSet>(value, ""),
        ("apps/v1", "ReplicaSet") => check_as::<apps::v1::ReplicaSet>(value, ""),
        ("batch/v1", "Job") => check_as::<batch::v1::Job>(value, ""),
        ("batch/v1", "CronJob") => check_as::<batch::v1::CronJob>(value, ""),
        ("v1", "Pod") => check_as::<core::v1::Pod>(value, ""),
        ("v1", "Service") => check_as::<core::v1::Service>(value, ""),
        ("v1", "ConfigMap") => check_as::<core::v1::ConfigMap>(value, ""),
        (api, "Rollout") if api.starts_with("argoproj.io/") => {
            match value.pointer("/spec/template") {
                Some(t) => check_as::<core::v1::PodTemplateSpec>(t, "/spec/template"),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_type_names_the_field_but_not_the_value() {
        let v: Value = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
            "spec": {"replicas": "two", "selector": {}, "template": {}}
        });
        let e = check(&v).expect_err("replicas: two is a type error");
        assert_eq!(e.pointer, "/spec/replicas");
        assert!(!e.message.contains("two"), "{}", e.message);
    }

    #[test]
    fn env_value_type_errors_hide_the_value() {
        let v: Value = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
            "spec": {"containers": [{"name": "c", "env": [{"name": "LIVEKIT_API_SECRET", "value": 123456}]}]}
        });
        let e = check(&v).expect_err("a number is not a string");
        assert_eq!(e.pointer, "/spec/containers/0/env/0/value");
        assert!(!e.message.contains("123456"), "{}", e.message);
    }
}
