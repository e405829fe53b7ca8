//! A container's environment and command line as the kubelet hands them over.
//!
//! livekit-server reads a good part of its configuration from env vars and
//! flags, so the rules must see the same environment the process sees: the
//! kubelet applies `envFrom` sources in order, then `env` entries (a later
//! definition of a name wins), expands `$(VAR)` references in env values,
//! `command` and `args`, and reads ConfigMap keys from the cluster. What the
//! render holds is resolved; what it cannot (Secrets, `fieldRef`, sources
//! outside the render) is kept as "set, value unknown" so no rule mistakes it
//! for absent.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Container;
use serde_json::Value;

use crate::model::Object;
use crate::place::Place;
use crate::{pointer, workload};

/// The value of one env var.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// A value the render spells out (literal, or a ConfigMap key).
    Text(String),
    /// Set, but from something the render does not show: a Secret, the
    /// downward API, or a ConfigMap outside the render. The string says which.
    Unknown(String),
}

impl EnvValue {
    pub fn text(&self) -> Option<&str> {
        match self {
            EnvValue::Text(t) => Some(t),
            EnvValue::Unknown(_) => None,
        }
    }
}

/// How an env var reached the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// An `env` entry (literal or `valueFrom`).
    Env,
    /// `envFrom` a ConfigMap or Secret: every key became a variable.
    EnvFrom { kind: &'static str, name: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvEntry {
    pub name: String,
    pub value: EnvValue,
    /// The env entry, or the ConfigMap data key it was read from.
    pub place: Place,
    /// The `env`/`envFrom` entry in the pod spec, even when the value came
    /// from a ConfigMap: where a fix in the workload goes.
    pub entry: Place,
    pub via: Via,
}

/// An `envFrom` source the render does not hold: it may set any name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSource {
    pub kind: &'static str,
    pub name: String,
    pub prefix: String,
    pub place: Place,
    /// The render's `name-<hash>` of a generated object this reference
    /// should have named (see [`renamed_by_kustomize`]).
    pub renamed: Option<String>,
    /// `optional: true`: a missing object leaves the variables unset
    /// instead of stopping the container.
    pub optional: bool,
}

/// The environment the kubelet builds for one container.
#[derive(Debug, Clone, Default)]
pub struct ContainerEnv {
    vars: BTreeMap<String, EnvEntry>,
    pub unknown_sources: Vec<UnknownSource>,
}

impl ContainerEnv {
    pub fn get(&self, name: &str) -> Option<&EnvEntry> {
        self.vars.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &EnvEntry> {
        self.vars.values()
    }

    /// Whether a name may be set by a source outside the render.
    pub fn maybe_set_elsewhere(&self, name: &str) -> Option<&UnknownSource> {
        self.unknown_sources
            .iter()
            .find(|s| name.starts_with(s.prefix.as_str()))
    }

    /// `$(VAR)` as the kubelet expands it: from variables defined so far with
    /// a known value; `$$` is `$`; an unresolvable reference stays as written.
    pub fn expand(&self, value: &str) -> String {
        expand_with(value, |name| {
            self.vars
                .get(name)
                .and_then(|e| e.value.text().map(str::to_string))
        })
    }
}

/// `$(VAR)` expansion with `lookup` for the variables in scope.
/// Whether `text` is made only of `$(NAME)` references that `is_ref`
/// accepts (at least one) and separators (whitespace, `:`, `,`), such as
/// `LIVEKIT_KEYS: "$(API_KEY): $(API_SECRET)"`: the kubelet composes it, and
/// the manifest holds no value of its own.
pub fn only_references(text: &str, is_ref: impl Fn(&str) -> bool) -> bool {
    let found = std::cell::Cell::new(false);
    let rest = expand_with(text, |name| {
        is_ref(name).then(|| {
            found.set(true);
            String::new()
        })
    });
    found.get()
        && rest
            .chars()
            .all(|c| c.is_whitespace() || matches!(c, ':' | ','))
}

pub fn expand_with(value: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some((name, tail)) = after
            .strip_prefix('(')
            .and_then(|inner| inner.split_once(')'))
        {
            match lookup(name) {
                Some(v) => out.push_str(&v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn find<'o, 'a>(
    objects: &'o [Object<'a>],
    near: &Object,
    group: &str,
    kind: &str,
    name: &str,
) -> Option<&'o Object<'a>> {
    objects.iter().find(|o| {
        o.is(group, kind) && o.name() == name && o.same_namespace(near) && o.origin == near.origin
    })
}

/// The name kustomize gave a generated object `name` (`name-<10 char
/// hash>`) when the render holds that and not `name` itself: a reference
/// kustomize did not rewrite (one added by a patch of the same
/// kustomization), which names an object that will not exist.
pub fn renamed_by_kustomize<'o>(
    objects: &'o [Object],
    near: &Object,
    kind: &str,
    name: &str,
) -> Option<&'o str> {
    if find(objects, near, "", kind, name).is_some() {
        return None;
    }
    objects
        .iter()
        .filter(|o| o.is("", kind) && o.same_namespace(near) && o.origin == near.origin)
        .map(|o| o.name())
        .find(|n| {
            n.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|hash| {
                    hash.len() == 10
                        && hash
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                })
        })
}

/// The data keys a Secret will hold: its own `data`/`stringData` when it is in
/// the render, or the keys an ExternalSecret in the render writes into it.
pub fn secret_keys(objects: &[Object], near: &Object, name: &str) -> Option<Vec<String>> {
    if let Some(secret) = find(objects, near, "", "Secret", name) {
        let mut keys = Vec::new();
        for field in ["data", "stringData"] {
            if let Some(map) = secret.value().get(field).and_then(Value::as_object) {
                keys.extend(map.keys().cloned());
            }
        }
        return Some(keys);
    }
    let es = objects.iter().find(|o| {
        o.kind() == "ExternalSecret"
            && o.resource.api_version.starts_with("external-secrets.io/")
            && o.same_namespace(near)
            && o.origin == near.origin
            && external_secret_target(o) == name
    })?;
    let v = es.value();
    // `dataFrom` writes keys only the provider knows.
    if v.pointer("/spec/dataFrom")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        return None;
    }
    Some(
        v.pointer("/spec/data")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.get("secretKey").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    )
}

/// The Secret an ExternalSecret writes: `spec.target.name`, defaulting to the
/// ExternalSecret's own name.
pub fn external_secret_target<'o>(es: &'o Object) -> &'o str {
    es.value()
        .pointer("/spec/target/name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| es.name())
}

/// Builds the environment of the container at `container_path` in `object`.
pub fn container_env(
    objects: &[Object],
    object: &Object,
    container_path: &str,
    c: &Container,
) -> ContainerEnv {
    let mut env = ContainerEnv::default();
    let index = object.index;
    for (i, from) in c.env_from.iter().flatten().enumerate() {
        let at = Place::new(index, format!("{container_path}/envFrom/{i}"));
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match find(objects, object, "", "ConfigMap", &r.name) {
                Some(cm) => {
                    for (key, text) in workload::config_map_data(cm) {
                        let name = format!("{prefix}{key}");
                        env.vars.insert(
                            name.clone(),
                            EnvEntry {
                                name,
                                value: EnvValue::Text(text),
                                place: Place::new(cm.index, workload::data_path(&key)),
                                entry: at.clone(),
                                via: Via::EnvFrom {
                                    kind: "ConfigMap",
                                    name: r.name.clone(),
                                },
                            },
                        );
                    }
                }
                None => env.unknown_sources.push(UnknownSource {
                    kind: "ConfigMap",
                    name: r.name.clone(),
                    prefix,
                    place: at,
                    renamed: renamed_by_kustomize(objects, object, "ConfigMap", &r.name)
                        .map(str::to_string),
                    optional: r.optional == Some(true),
                }),
            }
        } else if let Some(r) = &from.secret_ref {
            match secret_keys(objects, object, &r.name) {
                Some(keys) => {
                    for key in keys {
                        let name = format!("{prefix}{key}");
                        env.vars.insert(
                            name.clone(),
                            EnvEntry {
                                name,
                                value: EnvValue::Unknown(format!("Secret {}", r.name)),
                                place: at.clone(),
                                entry: at.clone(),
                                via: Via::EnvFrom {
                                    kind: "Secret",
                                    name: r.name.clone(),
                                },
                            },
                        );
                    }
                }
                None => env.unknown_sources.push(UnknownSource {
                    kind: "Secret",
                    name: r.name.clone(),
                    prefix,
                    place: at,
                    renamed: renamed_by_kustomize(objects, object, "Secret", &r.name)
                        .map(str::to_string),
                    optional: r.optional == Some(true),
                }),
            }
        }
    }
    for (i, e) in c.env.iter().flatten().enumerate() {
        let entry = Place::new(index, workload::env_path(container_path, i));
        let (value, place) = match &e.value_from {
            None => (
                EnvValue::Text(env.expand(e.value.as_deref().unwrap_or_default())),
                Place::new(index, format!("{}/value", entry.path)),
            ),
            Some(from) => {
                let at = Place::new(index, format!("{}/valueFrom", entry.path));
                if let Some(r) = &from.config_map_key_ref {
                    match find(objects, object, "", "ConfigMap", &r.name)
                        .and_then(|cm| Some((cm, workload::config_map_data(cm).remove(&r.key)?)))
                    {
                        Some((cm, text)) => (
                            EnvValue::Text(text),
                            Place::new(cm.index, workload::data_path(&r.key)),
                        ),
                        None => (
                            EnvValue::Unknown(format!(
                                "ConfigMap {} key {} (not in this render)",
                                r.name, r.key
                            )),
                            at,
                        ),
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    (
                        EnvValue::Unknown(format!("Secret {} key {}", r.name, r.key)),
                        at,
                    )
                } else if let Some(f) = &from.field_ref {
                    (EnvValue::Unknown(format!("fieldRef {}", f.field_path)), at)
                } else if let Some(r) = &from.resource_field_ref {
                    (
                        EnvValue::Unknown(format!("resourceFieldRef {}", r.resource)),
                        at,
                    )
                } else {
                    (EnvValue::Unknown("an empty valueFrom".into()), at)
                }
            }
        };
        env.vars.insert(
            e.name.clone(),
            EnvEntry {
                name: e.name.clone(),
                value,
                place,
                entry,
                via: Via::Env,
            },
        );
    }
    env
}

/// One word of the container's command line, `$(VAR)`-expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub place: Place,
}

/// `command` then `args`, expanded as the kubelet does. A shell wrapper
/// (`sh -c "exec livekit-server --config ..."`) is split into words at
/// whitespace, with quotes removed: enough to read flags, and every word
/// points at the script.
pub fn command_line(
    object: &Object,
    container_path: &str,
    c: &Container,
    env: &ContainerEnv,
) -> Vec<Word> {
    let mut words = Vec::new();
    let lists = [("command", &c.command), ("args", &c.args)];
    let mut shell = false;
    for (field, list) in lists {
        for (i, w) in list.iter().flatten().enumerate() {
            let place = Place::new(
                object.index,
                pointer::push(&format!("{container_path}/{field}"), i.to_string()),
            );
            let text = env.expand(w);
            let is_shell_name = |s: &str| {
                matches!(
                    s.rsplit('/').next().unwrap_or(s),
                    "sh" | "bash" | "ash" | "dash"
                )
            };
            if words.is_empty() && is_shell_name(&text) {
                shell = true;
            }
            if shell && words.last().is_some_and(|w: &Word| w.text == "-c") {
                for part in text.split_whitespace() {
                    words.push(Word {
                        text: part.trim_matches(['"', '\'']).to_string(),
                        place: place.clone(),
                    });
                }
                continue;
            }
            words.push(Word { text, place });
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_references_and_separators() {
        let any = |_: &str| true;
        assert!(only_references("$(A): $(B)", any));
        assert!(only_references("$(A),$(B)", any));
        assert!(!only_references("key: $(B)", any));
        assert!(!only_references(": ,", any));
        assert!(!only_references("$(A): $(B)", |n| n == "A"));
    }

    #[test]
    fn expands_like_the_kubelet() {
        let look = |n: &str| (n == "A").then(|| "x".to_string());
        assert_eq!(expand_with("$(A)-$(B)-$$(A)-$", look), "x-$(B)-$(A)-$");
        assert_eq!(expand_with("$(A", look), "$(A");
    }
}
