//! `livekit/no-cloud`: the deployment is self-hosted, end to end.
//!
//! The runbook says it plainly: self-hosted livekit-server, "no LiveKit Cloud
//! and no third-party credential". A `<project>.livekit.cloud` URL left in
//! a deployable render sends calls (and the API key that signs their
//! tokens) to a third party, and works, so nothing breaks to tell you. Teams
//! used to keep text-scanning guards in their test suites for this; a local
//! development overlay that points at LiveKit Cloud on purpose is exempted
//! in `lkguard.yaml` by overlay path, and reported like every exemption.

use k8s_openapi::api::core::v1::Secret;
use lkguard_policy_sdk::livekit::{self, Target};
use lkguard_policy_sdk::place::Place;
use lkguard_policy_sdk::{pointer, settings, workload, Batch, Finding, Metadata, Policy, RuleInfo};
use serde_json::Value;
use serde_yaml::Value as Yaml;

pub const RULE: &str = "livekit/no-cloud";
const DOMAIN: &str = ".livekit.cloud";

pub struct NoCloud;

fn host_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

/// The first `<project>.livekit.cloud` host in a string, if any.
pub fn cloud_host(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut from = 0;
    while let Some(i) = lower[from..].find(DOMAIN).map(|i| i + from) {
        let end = i + DOMAIN.len();
        from = end;
        // `x.livekit.cloudy` or `x.livekit.cloud.example.com` is another host.
        let after_ok = match bytes.get(end) {
            None => true,
            Some(b'.') => !bytes.get(end + 1).copied().is_some_and(host_char),
            Some(c) => !host_char(*c),
        };
        let mut start = i;
        while start > 0 && (host_char(bytes[start - 1]) || bytes[start - 1] == b'.') {
            start -= 1;
        }
        if after_ok && start < i {
            return Some(lower[start..end].to_string());
        }
    }
    None
}

fn finding(place: Place, host: &str, what: &str) -> Finding {
    let host = format!(" ({host})");
    cloud_finding(place, &host, what)
}

/// `host` is ` (name)`, or empty where the value is a Secret's and so never
/// quoted, not even in part.
fn cloud_finding(place: Place, host: &str, what: &str) -> Finding {
    place
        .error(RULE, format!("{what} points at LiveKit Cloud{host}: this deployment is self-hosted, and calls (and the API key that signs their tokens) would go to a third party"))
        .hint("point it at the in-cluster livekit-server (or its public wss URL); exempt a local-development overlay by path in lkguard.yaml")
}

/// Walks a JSON value; `at` is its pointer. `quote`: whether a message may
/// name the host (not inside a Secret).
fn walk_json(
    v: &Value,
    at: &str,
    resource: u32,
    (embedded_ok, quote): (bool, bool),
    out: &mut Vec<Finding>,
) {
    match v {
        Value::String(s) => {
            if !s.contains(DOMAIN) && !s.to_ascii_lowercase().contains(DOMAIN) {
                return;
            }
            // A YAML document inside a string (a livekit.yaml ConfigMap key):
            // point at the value inside it.
            if embedded_ok && s.contains('\n') {
                if let Ok(doc) = serde_yaml::from_str::<Yaml>(s) {
                    if doc.is_mapping() || doc.is_sequence() {
                        let before = out.len();
                        walk_yaml(&doc, "", &Place::new(resource, at), out);
                        if out.len() > before {
                            return;
                        }
                    }
                }
            }
            if let Some(host) = cloud_host(s) {
                let host = if quote {
                    format!(" ({host})")
                } else {
                    String::new()
                };
                out.push(cloud_finding(
                    Place::new(resource, at),
                    &host,
                    &describe(at),
                ));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_json(
                    item,
                    &pointer::push(at, i.to_string()),
                    resource,
                    (embedded_ok, quote),
                    out,
                );
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                walk_json(
                    item,
                    &pointer::push(at, k),
                    resource,
                    (embedded_ok, quote),
                    out,
                );
            }
        }
        _ => {}
    }
}

fn walk_yaml(v: &Yaml, at: &str, owner: &Place, out: &mut Vec<Finding>) {
    match v {
        Yaml::String(s) => {
            if let Some(host) = cloud_host(s) {
                let key = at
                    .rsplit('/')
                    .next()
                    .map(pointer::unescape)
                    .unwrap_or_default();
                out.push(finding(
                    owner.clone().inside(at),
                    &host,
                    &format!(
                        "`{}` in the embedded config",
                        if key.is_empty() {
                            "a value".into()
                        } else {
                            key
                        }
                    ),
                ));
            }
        }
        Yaml::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_yaml(item, &pointer::push(at, i.to_string()), owner, out);
            }
        }
        Yaml::Mapping(map) => {
            for (k, item) in map {
                let key = lkguard_policy_sdk::goyaml::scalar_text(k).unwrap_or_default();
                walk_yaml(item, &pointer::push(at, key), owner, out);
            }
        }
        Yaml::Tagged(t) => walk_yaml(&t.value, at, owner, out),
        _ => {}
    }
}

/// Names the value for a message: an env var by its name, else its key.
fn describe(at: &str) -> String {
    let key = at
        .rsplit('/')
        .next()
        .map(pointer::unescape)
        .unwrap_or_default();
    if key == "value" && at.contains("/env/") {
        "an env value".into()
    } else {
        format!("`{key}`")
    }
}

impl Policy for NoCloud {
    fn metadata() -> Metadata {
        Metadata {
            id: "no-cloud".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            rules: vec![RuleInfo {
                id: RULE.into(),
                summary: "No <project>.livekit.cloud host anywhere in a deployable render".into(),
                rationale: "The runbook's deployment is self-hosted: no LiveKit Cloud and no third-party \
                    credential. A <project>.livekit.cloud URL in an env value, a ConfigMap key or the embedded \
                    livekit config sends calls, and the API key that signs their tokens, to a third party, and \
                    it works, so nothing breaks to tell you. Every string of every object of a deployable \
                    render is read (Secret stringData included, and Secret data decoded from base64). A local \
                    development overlay that uses LiveKit Cloud on purpose is exempted in lkguard.yaml by \
                    overlay path (exemptions: - rule: livekit/no-cloud, overlay: overlays/local-dev), and \
                    reported as exempted like every exemption. Bases are not deployable and not judged. Topology: all."
                    .into(),
            }],
            settings_schema: settings::schema(serde_json::json!({})),
        }
    }

    fn validate(batch: &Batch, settings: &str) -> Result<Vec<Finding>, String> {
        let _: Target = settings::parse(settings)?;
        let mut findings = Vec::new();
        for object in batch.objects() {
            if !object.origin.deployable {
                continue;
            }
            // A Secret's `data` is base64: decoded (k8s-openapi's ByteString),
            // so an encoded URL is read like a stringData one.
            if object.is("", "Secret") {
                let secret = object.typed::<Secret>().unwrap_or_default();
                for (k, bytes) in secret.data.iter().flatten() {
                    let text = String::from_utf8_lossy(&bytes.0);
                    if cloud_host(&text).is_some() {
                        let at = pointer::push("/data", k);
                        findings.push(cloud_finding(
                            Place::new(object.index, at),
                            "",
                            &format!("Secret key `{k}` (base64-decoded)"),
                        ));
                    }
                }
            }
            // Cheap first: most objects never mention the domain.
            if !object.resource.json.to_ascii_lowercase().contains(DOMAIN) {
                continue;
            }
            let v = object.value();
            let config_map = object.is("", "ConfigMap");
            let data = workload::config_map_data(&object);
            for (k, item) in v.as_object().into_iter().flatten() {
                let at = pointer::push("", k);
                // Embedded documents are looked into where they are configs.
                let embedded_ok = config_map
                    && k == "data"
                    && data
                        .values()
                        .any(|t| livekit::looks_like_config_text(t) || t.contains('\n'));
                let quote = !object.is("", "Secret");
                walk_json(item, &at, object.index, (embedded_ok, quote), &mut findings);
            }
        }
        Ok(findings)
    }
}

lkguard_policy_sdk::export_policy!(NoCloud);

#[cfg(test)]
mod tests {
    use super::*;
    use lkguard_policy_sdk::testkit::{batch, render, Source};

    #[test]
    fn finds_project_hosts_only() {
        assert_eq!(
            cloud_host("wss://memql-abc123.livekit.cloud"),
            Some("memql-abc123.livekit.cloud".into())
        );
        assert_eq!(
            cloud_host("https://X.LiveKit.Cloud/twirp"),
            Some("x.livekit.cloud".into())
        );
        assert_eq!(
            cloud_host("wss://x.livekit.cloud."),
            Some("x.livekit.cloud".into())
        );
        assert_eq!(cloud_host("wss://livekit.memql.svc:7880"), None);
        assert_eq!(cloud_host("x.livekit.cloudy.example"), None);
        assert_eq!(cloud_host("a.livekit.cloud.example.com"), None);
        assert_eq!(cloud_host("see livekit.cloud"), None);
    }

    const AGENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: agent}
spec:
  template:
    spec:
      containers:
        - name: agent
          image: agent:1
          env:
            - {name: LIVEKIT_URL, value: "wss://memql-x1.livekit.cloud"}
"#;

    #[test]
    fn an_env_value_fails_at_the_value() {
        let f = NoCloud::validate(&render(AGENT), "{}").unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].path, "/spec/template/spec/containers/0/env/0/value");
        assert!(f[0].message.contains("memql-x1.livekit.cloud"));
    }

    #[test]
    fn the_embedded_config_is_pointed_into() {
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lk}\ndata:\n  livekit.yaml: |\n    port: 7880\n    webhook:\n      urls: [https://memql-x1.livekit.cloud/hook]\n";
        let f = NoCloud::validate(&render(cm), "{}").unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].path, "/data/livekit.yaml");
        assert_eq!(f[0].embedded_path.as_deref(), Some("/webhook/urls/0"));
    }

    #[test]
    fn bases_and_clean_renders_pass() {
        let b = batch(&[Source {
            name: "base",
            deployable: false,
            complete: false,
            yaml: AGENT,
        }]);
        assert!(NoCloud::validate(&b, "{}").unwrap().is_empty());
        let clean = AGENT.replace(
            "wss://memql-x1.livekit.cloud",
            "ws://livekit.memql.svc.cluster.local:7880",
        );
        assert!(NoCloud::validate(&render(&clean), "{}").unwrap().is_empty());
    }

    #[test]
    fn base64_secret_data_is_decoded_and_never_quoted() {
        let y2 = "apiVersion: v1\nkind: Secret\nmetadata: {name: agent}\nstringData: {LIVEKIT_URL: 'wss://acme-x7.livekit.cloud'}\n";
        let f = NoCloud::validate(&render(y2), "{}").unwrap();
        assert_eq!(f[0].path, "/stringData/LIVEKIT_URL");
        assert!(!f[0].message.contains("acme"), "{}", f[0].message);
        // "wss://acme-x7.livekit.cloud" in base64.
        let y = "apiVersion: v1\nkind: Secret\nmetadata: {name: agent}\ndata: {LIVEKIT_URL: d3NzOi8vYWNtZS14Ny5saXZla2l0LmNsb3Vk, other: aGVsbG8=}\n";
        let f = NoCloud::validate(&render(y), "{}").unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].path, "/data/LIVEKIT_URL");
        assert!(!f[0].message.contains("acme"), "{}", f[0].message);
    }
}
