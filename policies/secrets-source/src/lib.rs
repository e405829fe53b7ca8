//! `livekit/secrets-source`: the API key/secret pair comes only from Key Vault.
//!
//! The pair is self-chosen and lives in Key Vault; an ExternalSecret syncs it
//! into the Secret `livekit-secrets`. livekit-server validates tokens with it
//! and every client (the BFF, the voice agent) signs tokens with it. A literal
//! in a manifest leaks the pair into git; a reference to another Secret
//! drifts from the pair the server holds, and token validation fails.

use k8s_openapi::api::core::v1::{Container, EnvVar};
use lkguard_policy_sdk::effective::Effective;
use lkguard_policy_sdk::livekit::{self, is_credential, Target};
use lkguard_policy_sdk::model::api_group;
use lkguard_policy_sdk::settings::{self, DEFAULT_SECRET};
use lkguard_policy_sdk::workload::{self, ContainerRef, Mounted, PodTemplate};
use lkguard_policy_sdk::{pointer, Batch, Finding, Metadata, Object, Policy, RuleInfo};
use serde::Deserialize;

pub const RULE: &str = "livekit/secrets-source";

pub struct SecretsSource;

#[derive(Debug, Deserialize)]
struct Settings {
    #[serde(flatten)]
    target: Target,
    #[serde(default = "secret")]
    secret: String,
    /// Env names that are credentials but do not look like one.
    #[serde(default)]
    extra_env: Vec<String>,
}

fn secret() -> String {
    DEFAULT_SECRET.to_string()
}

/// The ExternalSecret's target Secret: `spec.target.name`, which external-secrets
/// defaults to the ExternalSecret's own name.
fn external_secret_target(o: &Object) -> (String, bool) {
    match o
        .value()
        .pointer("/spec/target/name")
        .and_then(|v| v.as_str())
    {
        Some(t) if !t.is_empty() => (t.to_string(), true),
        _ => (o.name().to_string(), false),
    }
}

fn is_external_secret(o: &Object) -> bool {
    o.kind() == "ExternalSecret" && api_group(&o.resource.api_version) == "external-secrets.io"
}

impl Policy for SecretsSource {
    fn metadata() -> Metadata {
        Metadata {
            id: "secrets-source".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            rules: vec![RuleInfo {
                id: RULE.into(),
                summary: "LiveKit API keys and secrets come only from Secret livekit-secrets, synced from Key Vault".into(),
                rationale: "The API key/secret pair is self-chosen and lives in Key Vault; the ExternalSecret syncs it \
                    into Secret livekit-secrets. livekit-server (LIVEKIT_KEYS or a key file) and every client \
                    (POLYPHON_LIVEKIT_API_KEY/_API_SECRET, an agent's LIVEKIT_API_KEY/_SECRET) must read it from \
                    there: a literal value commits the secret to git, a reference to another Secret drifts from \
                    the pair the server validates with (tokens are rejected), and an inline keys: map in the \
                    livekit config is a literal too. The ExternalSecret must target exactly livekit-secrets. \
                    (Whether the server gets keys at all, and whether every key a workload reads is one the \
                    ExternalSecret writes, is livekit/secret-keys.) Values are never printed. Topology: all."
                    .into(),
            }],
            settings_schema: settings::schema(serde_json::json!({
                "secret": {"type": "string", "minLength": 1, "default": DEFAULT_SECRET,
                           "description": "The Secret the ExternalSecret produces."},
                "extra_env": {"type": "array", "items": {"type": "string", "minLength": 1}, "default": [],
                              "description": "More env names that carry LiveKit credentials."}
            })),
        }
    }

    fn validate(batch: &Batch, settings: &str) -> Result<Vec<Finding>, String> {
        let s: Settings = settings::parse(settings)?;
        let objects = batch.objects();
        let templates = workload::pod_templates(&objects);
        let mut findings = Vec::new();

        let mistargeted = check_external_secrets(&objects, &s, &mut findings);
        check_committed_secrets(&objects, &s, &mut findings);

        let mut first_reference: Option<(u32, String, u32)> = None;
        for template in &templates {
            for c in template.containers() {
                check_container(
                    template,
                    &c,
                    &objects,
                    &s,
                    &mut findings,
                    &mut first_reference,
                );
            }
        }

        let servers = s.target.find(&templates);
        let configs = livekit::configs(&objects, &servers);
        for cfg in &configs {
            // A committed pair: a key with a secret that is text in the
            // manifest (`keys: {}` commits nothing, and `$(NAME)` in a
            // LIVEKIT_CONFIG env value is expanded by the kubelet).
            let committed = |keys: &serde_yaml::Value| {
                keys.as_mapping().is_some_and(|m| {
                    m.iter().any(|(k, v)| {
                        let text = |y: &serde_yaml::Value| {
                            lkguard_policy_sdk::goyaml::scalar_text(y).unwrap_or_default()
                        };
                        let (k, v) = (text(k), text(v));
                        let expanded = cfg.kubelet_expands(&k) && cfg.kubelet_expands(&v);
                        let empty = k.is_empty() && v.is_empty();
                        !(expanded || empty)
                    })
                })
            };
            if let Some((_, at)) = cfg.get("keys").filter(|(keys, _)| committed(keys)) {
                findings.push(
                    Finding::error(RULE, cfg.object.index, cfg.path.clone(), format!("the livekit config in {} has an inline keys: map (***), which commits the API secret to git", cfg.describe()))
                        .embedded(at)
                        .hint(format!("remove keys: and set env LIVEKIT_KEYS from secretKeyRef {}", s.secret)),
                );
            }
        }
        for lk in &servers {
            // The key file livekit-server really opens: `--key-file`, its
            // env var or generated flag, else the config's key_file. A path
            // with `$VAR` or `~` is expanded by livekit-server at run time;
            // whether the server gets keys at all, and can read the file,
            // is livekit/secret-keys'.
            let e = Effective::build(&objects, lk.clone());
            let file = e
                .get("key_file")
                .and_then(|set| set.text())
                .map(|t| t.trim().to_string())
                .filter(|f| f.starts_with('/') && !f.contains('$'));
            if let Some(file) = file {
                check_key_file(
                    lk.template,
                    lk.container.container,
                    &file,
                    &s,
                    &mut findings,
                );
            }
        }

        if let Some((resource, at, origin)) = first_reference {
            let origin_complete = batch
                .origins
                .get(origin as usize)
                .is_some_and(|o| o.complete);
            let produced = objects.iter().any(|o| {
                o.resource.origin == origin
                    && ((is_external_secret(o) && external_secret_target(o).0 == s.secret)
                        || (o.is("", "Secret") && o.name() == s.secret))
            });
            // A mis-targeted ExternalSecret is the cause, reported already.
            if origin_complete && !produced && !mistargeted {
                findings.push(Finding::warning(
                    RULE,
                    resource,
                    at,
                    format!(
                        "Secret {} is referenced but no ExternalSecret in this render produces it",
                        s.secret
                    ),
                ));
            }
        }
        Ok(findings)
    }
}

fn check_container(
    template: &PodTemplate,
    c: &ContainerRef,
    objects: &[Object],
    s: &Settings,
    findings: &mut Vec<Finding>,
    first_reference: &mut Option<(u32, String, u32)>,
) {
    let index = template.object.index;
    let origin = template.object.resource.origin;
    for (i, env) in c.container.env.iter().flatten().enumerate() {
        let at = workload::env_path(&c.path, i);
        if first_reference.is_none() && references_secret(env, &s.secret) {
            *first_reference = Some((index, format!("{at}/valueFrom/secretKeyRef/name"), origin));
        }
        if !is_credential(&env.name, &s.extra_env) {
            continue;
        }
        let name = &env.name;
        let Some(from) = &env.value_from else {
            let value = env.value.as_deref().unwrap_or_default();
            if composed_from_secret(c.container, i, value) {
                continue;
            }
            findings.push(
                Finding::error(RULE, index, format!("{at}/value"), format!("env {name} is set to a literal value (***), which commits a LiveKit credential to git"))
                    .hint(format!("use valueFrom.secretKeyRef {{name: {}, key: ...}}", s.secret)),
            );
            continue;
        };
        let Some(r) = &from.secret_key_ref else {
            findings.push(Finding::error(
                RULE,
                index,
                format!("{at}/valueFrom"),
                format!(
                    "env {name} reads a LiveKit credential from something other than Secret {}",
                    s.secret
                ),
            ));
            continue;
        };
        if r.name != s.secret {
            findings.push(
                Finding::error(RULE, index, format!("{at}/valueFrom/secretKeyRef/name"), format!("env {name} reads Secret {} instead of {}: the pair lives only in {} (synced from Key Vault), and a copy in another Secret can drift from the pair livekit-server validates tokens with", r.name, s.secret, s.secret))
                    .hint(format!("set secretKeyRef.name: {}", s.secret)),
            );
            continue;
        }
        // Whether the key exists in the Secret is livekit/secret-keys'.
    }
    for (j, from) in c.container.env_from.iter().flatten().enumerate() {
        let at = format!("{}/envFrom/{j}", c.path);
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            if let Some(cm) = objects.iter().find(|o| {
                o.is("", "ConfigMap") && o.name() == r.name && o.resource.origin == origin
            }) {
                for key in workload::config_map_data(cm).keys() {
                    if is_credential(&format!("{prefix}{key}"), &s.extra_env) {
                        findings.push(Finding::error(
                            RULE,
                            cm.index,
                            workload::data_path(key),
                            format!("ConfigMap {} holds LiveKit credential {key} as plain text (***), and container `{}` loads it with envFrom", r.name, c.container.name),
                        ));
                    }
                }
            }
        }
        if let Some(r) = &from.secret_ref {
            if r.name == s.secret {
                continue;
            }
            let holds_credentials = objects
                .iter()
                .find(|o| o.is("", "Secret") && o.name() == r.name && o.resource.origin == origin)
                .is_some_and(|sec| {
                    secret_keys(sec)
                        .iter()
                        .any(|k| is_credential(&format!("{prefix}{k}"), &s.extra_env))
                });
            if holds_credentials {
                findings.push(Finding::error(
                    RULE,
                    index,
                    format!("{at}/secretRef/name"),
                    format!(
                        "container `{}` loads LiveKit credentials from Secret {} instead of {}",
                        c.container.name, r.name, s.secret
                    ),
                ));
            }
        }
    }
}

/// The key file must be a file of Secret `secret`.
fn check_key_file(
    template: &PodTemplate,
    c: &Container,
    file: &str,
    s: &Settings,
    findings: &mut Vec<Finding>,
) {
    let index = template.object.index;
    // Not mounted, or a mount naming no volume: the server cannot read the
    // file at all, which livekit/secret-keys reports.
    let Some(Mounted {
        volume: Some((v, volume)),
        ..
    }) = template.mounted(c, file)
    else {
        return;
    };
    let at = format!("{}/volumes/{v}", template.spec_path);
    let secret_names: Vec<String> = volume
        .secret
        .iter()
        .filter_map(|sv| sv.secret_name.clone())
        .chain(volume.projected.iter().flat_map(|p| {
            p.sources
                .iter()
                .flatten()
                .filter_map(|src| src.secret.as_ref().map(|x| x.name.clone()))
        }))
        .collect();
    if secret_names.is_empty() {
        findings.push(Finding::error(
            RULE,
            index,
            at,
            format!("livekit-server's key file {file} comes from volume `{}`, which is not Secret {}: the API secret sits in plain text", volume.name, s.secret),
        ));
    } else if let Some(other) = secret_names.iter().find(|n| **n != s.secret) {
        let field = if volume.secret.is_some() {
            format!("{at}/secret/secretName")
        } else {
            at
        };
        findings.push(Finding::error(
            RULE,
            index,
            field,
            format!(
                "livekit-server's key file {file} comes from Secret {other} instead of {}",
                s.secret
            ),
        ));
    }
}

/// A value made only of `$(VAR)` references to variables read from a
/// Secret, and separators (`LIVEKIT_KEYS: "$(API_KEY): $(API_SECRET)"`): the
/// kubelet composes it at run time from earlier env entries, so nothing is
/// committed. A variable read from another Secret than `secret` is reported
/// at its own entry; the composed value is not a literal either way.
fn composed_from_secret(c: &Container, upto: usize, value: &str) -> bool {
    let earlier: Vec<&EnvVar> = c.env.iter().flatten().take(upto).collect();
    lkguard_policy_sdk::env::only_references(value, |name| {
        earlier
            .iter()
            .rev()
            .find(|e| e.name == name)
            .and_then(|e| e.value_from.as_ref())
            .is_some_and(|f| f.secret_key_ref.is_some())
    })
}

fn references_secret(env: &EnvVar, secret: &str) -> bool {
    env.value_from
        .as_ref()
        .and_then(|f| f.secret_key_ref.as_ref())
        .is_some_and(|r| r.name == secret)
}

fn secret_keys(o: &Object) -> Vec<String> {
    ["data", "stringData"]
        .iter()
        .filter_map(|f| o.value().get(*f).and_then(|v| v.as_object()))
        .flat_map(|m| m.keys().cloned())
        .collect()
}

/// Returns whether any LiveKit ExternalSecret writes the wrong Secret.
fn check_external_secrets(objects: &[Object], s: &Settings, findings: &mut Vec<Finding>) -> bool {
    let before = findings.len();
    for o in objects.iter().filter(|o| is_external_secret(o)) {
        let (target, explicit) = external_secret_target(o);
        let about_livekit =
            o.name() == s.secret || target.contains("livekit") || o.name().contains("livekit");
        if !about_livekit || target == s.secret {
            continue;
        }
        let at = if explicit {
            "/spec/target/name"
        } else {
            "/metadata/name"
        };
        findings.push(
            Finding::error(
                RULE,
                o.index,
                at,
                format!(
                    "ExternalSecret {} writes Secret {target}, but the LiveKit workloads read {}",
                    o.name(),
                    s.secret
                ),
            )
            .hint(format!("set spec.target.name: {}", s.secret)),
        );
    }
    findings.len() > before
}

/// A Secret object in the manifests is a committed secret: the pair must only
/// arrive through the ExternalSecret.
fn check_committed_secrets(objects: &[Object], s: &Settings, findings: &mut Vec<Finding>) {
    for o in objects.iter().filter(|o| o.is("", "Secret")) {
        for field in ["data", "stringData"] {
            let Some(map) = o.value().get(field).and_then(|v| v.as_object()) else {
                continue;
            };
            for key in map.keys() {
                if o.name() == s.secret || is_credential(key, &s.extra_env) {
                    findings.push(
                        Finding::error(RULE, o.index, pointer::join([field, key.as_str()]), format!("Secret {} commits LiveKit credential {key} (***) to git; it must come from Key Vault through the ExternalSecret", o.name()))
                            .hint("delete this Secret from the manifests and let the ExternalSecret produce it"),
                    );
                } else if holds_keys(o, field, key) {
                    findings.push(
                        Finding::error(RULE, o.index, pointer::join([field, key.as_str()]), format!("Secret {} key {key} is a livekit config whose keys: map (***) commits the API pair to git; a Secret in the manifests is as readable as a ConfigMap", o.name()))
                            .hint(format!("remove keys: from the config and set env LIVEKIT_KEYS from secretKeyRef {}", s.secret)),
                    );
                }
            }
        }
    }
}

/// Whether a committed Secret's value is a livekit config with a non-empty
/// `keys:` map (`stringData` as text, `data` decoded from base64).
fn holds_keys(o: &Object, field: &str, key: &str) -> bool {
    let text = if field == "data" {
        let secret = o
            .typed::<k8s_openapi::api::core::v1::Secret>()
            .unwrap_or_default();
        let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) else {
            return false;
        };
        String::from_utf8_lossy(&bytes.0).into_owned()
    } else {
        match o
            .value()
            .pointer(&pointer::join([field, key]))
            .and_then(|v| v.as_str())
        {
            Some(t) => t.to_string(),
            None => return false,
        }
    };
    livekit::looks_like_config_text(&text)
        && livekit::parse(&text).is_ok_and(|doc| {
            doc.get("keys")
                .and_then(|k| k.as_mapping())
                .is_some_and(|m| !m.is_empty())
        })
}

lkguard_policy_sdk::export_policy!(SecretsSource);

#[cfg(test)]
mod tests {
    use super::*;
    use lkguard_policy_sdk::testkit::render;

    const ES: &str = r#"apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata: {name: livekit-secrets}
spec:
  target: {name: livekit-secrets}
  data:
    - {secretKey: livekit-keys, remoteRef: {key: livekit-keys}}
    - {secretKey: api-key, remoteRef: {key: polyphon-livekit-api-key}}
"#;

    fn workload(env: &str) -> String {
        format!(
            "{ES}---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: voice}}\nspec:\n  template:\n    spec:\n      containers:\n        - name: agent\n          image: voice:1\n          env:\n{env}\n"
        )
    }

    fn run(y: &str) -> Vec<Finding> {
        SecretsSource::validate(&render(y), "{}").unwrap()
    }

    #[test]
    fn only_a_keys_map_that_holds_a_pair_commits_one() {
        let cm = |keys: &str| {
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: livekit-config}}\ndata:\n  livekit.yaml: |\n    port: 7880\n    rtc: {{tcp_port: 7881}}\n    keys: {keys}\n")
        };
        assert_eq!(run(&cm("{APIabc: s3cr3t-s3cr3t}")).len(), 1);
        assert_eq!(run(&cm("{}")), vec![]);
        // In a LIVEKIT_CONFIG env value the kubelet expands `$(NAME)`.
        let server = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: livekit}\nspec:\n  template:\n    spec:\n      containers:\n        - name: livekit\n          image: livekit/livekit-server:v1.13.3\n          env:\n            - {name: K, valueFrom: {secretKeyRef: {name: livekit-secrets, key: k}}}\n            - {name: S, valueFrom: {secretKeyRef: {name: livekit-secrets, key: s}}}\n            - name: LIVEKIT_CONFIG\n              value: |\n                keys:\n                  \"$(K)\": \"$(S)\"\n";
        let inline = |y: &str| {
            run(y)
                .into_iter()
                .filter(|f| f.message.contains("inline keys"))
                .count()
        };
        assert_eq!(inline(server), 0);
        assert_eq!(inline(&server.replace("\"$(S)\"", "s3cr3t")), 1);
    }

    #[test]
    fn names() {
        for n in [
            "LIVEKIT_API_KEY",
            "POLYPHON_LIVEKIT_API_SECRET",
            "LIVEKIT_KEYS",
            "livekit_api_secret",
        ] {
            assert!(is_credential(n, &[]), "{n}");
        }
        for n in [
            "LIVEKIT_URL",
            "POLYPHON_LIVEKIT_PUBLIC_URL",
            "MEMQL_DEEPGRAM_API_KEY",
            "LIVEKIT_KEY_FILE",
        ] {
            assert!(!is_credential(n, &[]), "{n}");
        }
    }

    #[test]
    fn secret_ref_to_livekit_secrets_passes() {
        let e = "            - name: LIVEKIT_API_KEY\n              valueFrom: {secretKeyRef: {name: livekit-secrets, key: api-key}}";
        assert_eq!(run(&workload(e)), vec![]);
    }

    #[test]
    fn literal_is_reported_without_its_value() {
        let f = run(&workload(
            "            - {name: LIVEKIT_API_SECRET, value: s3cr3t-literal}",
        ));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, "/spec/template/spec/containers/0/env/0/value");
        assert!(!f[0].message.contains("s3cr3t"));
    }

    #[test]
    fn other_secret_and_unknown_key_are_reported() {
        let e = "            - name: LIVEKIT_API_SECRET\n              valueFrom: {secretKeyRef: {name: memql-secrets, key: x}}";
        assert_eq!(
            run(&workload(e))[0].path,
            "/spec/template/spec/containers/0/env/0/valueFrom/secretKeyRef/name"
        );
    }

    #[test]
    fn external_secret_target_and_committed_secret() {
        let f = run(&ES.replace(
            "target: {name: livekit-secrets}",
            "target: {name: livekit-secret}",
        ));
        assert_eq!(f[0].path, "/spec/target/name");
        let f = run("apiVersion: v1\nkind: Secret\nmetadata: {name: livekit-secrets}\nstringData: {livekit-keys: 'k: s'}\n");
        assert_eq!(f[0].path, "/stringData/livekit-keys");
        // A config with a keys: map, committed in a Secret of another name.
        let config = "port: 7880\nrtc: {tcp_port: 7881}\nkeys: {APIabc: s3cr3t-s3cr3t}\n";
        let f = run(&format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: livekit-config}}\nstringData:\n  config.yaml: |\n    {}\n", config.trim_end().replace('\n', "\n    ")));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].path, "/stringData/config.yaml");
        assert!(!f[0].message.contains("s3cr3t"), "{}", f[0].message);
        let encoded =
            "cG9ydDogNzg4MApydGM6IHt0Y3BfcG9ydDogNzg4MX0Ka2V5czoge0FQSWFiYzogczNjcjN0LXMzY3IzdH0K";
        let f = run(&format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: livekit-config}}\ndata: {{config.yaml: {encoded}}}\n"));
        assert_eq!(
            f.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["/data/config.yaml"]
        );
    }

    #[test]
    fn a_value_composed_from_secret_variables_is_not_a_literal() {
        let refs = "            - {name: API_KEY, valueFrom: {secretKeyRef: {name: livekit-secrets, key: polyphon-livekit-api-key}}}\n            - {name: API_SECRET, valueFrom: {secretKeyRef: {name: livekit-secrets, key: polyphon-livekit-api-secret}}}\n";
        let ok = format!(
            "{refs}            - {{name: LIVEKIT_KEYS, value: '$(API_KEY): $(API_SECRET)'}}"
        );
        assert_eq!(run(&workload(&ok)), vec![]);
        // Text of its own besides the references is a committed value.
        let mixed = ok.replace("$(API_KEY): $(API_SECRET)", "APIabc: $(API_SECRET)");
        assert_eq!(run(&workload(&mixed)).len(), 1);
        // A variable defined after the entry is not expanded by the kubelet.
        let later = format!(
            "            - {{name: LIVEKIT_KEYS, value: '$(API_KEY): $(API_SECRET)'}}\n{refs}"
        );
        assert_eq!(run(&workload(later.trim_end())).len(), 1);
        // Composed from another Secret: the variables that read it are the
        // findings, the composed value is no literal.
        let other = ok
            .replace("name: livekit-secrets", "name: app-secrets")
            .replace("API_KEY", "LIVEKIT_API_KEY")
            .replace("API_SECRET", "LIVEKIT_API_SECRET");
        let f = run(&workload(&other));
        let paths: Vec<&str> = f.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/spec/template/spec/containers/0/env/0/valueFrom/secretKeyRef/name",
                "/spec/template/spec/containers/0/env/1/valueFrom/secretKeyRef/name"
            ],
            "{f:?}"
        );
    }

    #[test]
    fn key_file_must_come_from_the_secret() {
        let server = |volume: &str| {
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: livekit}}\nspec:\n  template:\n    spec:\n      containers:\n        - name: livekit\n          image: livekit/livekit-server:v1\n          args: [--key-file, /etc/lk/keys.yaml]\n          volumeMounts: [{{name: keys, mountPath: /etc/lk}}]\n      volumes: [{volume}]\n"
            )
        };
        assert_eq!(
            run(&server(
                "{name: keys, secret: {secretName: livekit-secrets}}"
            )),
            vec![]
        );
        let f = run(&server("{name: keys, secret: {secretName: lk-keys}}"));
        assert_eq!(f[0].path, "/spec/template/spec/volumes/0/secret/secretName");
        let f = run(&server("{name: keys, configMap: {name: lk-keys}}"));
        assert_eq!(f[0].path, "/spec/template/spec/volumes/0");
    }

    #[test]
    fn envfrom_configmap_with_credentials() {
        let y = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: lk}}\ndata: {{LIVEKIT_API_SECRET: x}}\n---\n{}",
            workload("            - {name: A, value: b}").replace("          env:", "          envFrom: [{configMapRef: {name: lk}}]\n          env:")
        );
        let f = run(&y);
        assert_eq!(
            (f[0].resource, f[0].path.as_str()),
            (0, "/data/LIVEKIT_API_SECRET")
        );
    }
}
