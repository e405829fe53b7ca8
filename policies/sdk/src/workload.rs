//! Pod templates, wherever a workload kind keeps one.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EnvVar, PodSpec, PodTemplateSpec, Volume, VolumeMount,
};
use serde::Deserialize;
use serde_json::Value;

use crate::model::Object;
use crate::pointer;

/// A pod template found in an object, typed with k8s-openapi.
#[derive(Debug, Clone)]
pub struct PodTemplate<'o, 'a> {
    pub object: &'o Object<'a>,
    /// Pointer to the `PodSpec` inside the object.
    pub spec_path: String,
    pub labels: &'o BTreeMap<String, String>,
    pub spec: &'o PodSpec,
}

/// A pod template as parsed once per batch (see `model::BatchCache`).
#[derive(Debug, Clone)]
pub struct Parsed {
    spec_path: String,
    labels: BTreeMap<String, String>,
    spec: PodSpec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    Init,
    Main,
}

/// One container of a pod template, with its pointer.
#[derive(Debug, Clone)]
pub struct ContainerRef<'t> {
    pub kind: ContainerKind,
    pub path: String,
    pub container: &'t Container,
}

/// Where each workload kind keeps its pod template. Argo Rollouts
/// (`argoproj.io/v1alpha1`) carry a Deployment-shaped template; a Rollout with
/// `workloadRef` instead borrows a Deployment's, which is checked on its own.
fn template_pointer(object: &Object) -> Option<&'static str> {
    let group = crate::model::api_group(&object.resource.api_version);
    match (group, object.kind()) {
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch", "Job")
        | ("", "ReplicationController")
        | ("argoproj.io", "Rollout") => Some("/spec/template"),
        ("batch", "CronJob") => Some("/spec/jobTemplate/spec/template"),
        ("", "PodTemplate") => Some("/template"),
        ("", "Pod") => Some(""),
        _ => None,
    }
}

/// `{"spec": ...}`, and so on: the path down to a pod template, typed, so
/// serde_json reads the template straight from the text and skips every
/// other field without building it.
#[derive(Deserialize)]
struct Spec<T> {
    spec: Option<T>,
}

#[derive(Deserialize)]
struct Template<T> {
    template: Option<T>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobTemplate<T> {
    job_template: Option<T>,
}

/// The pod template at `at` (one of [`template_pointer`]'s answers) in the
/// object's JSON; `None` when it is absent or not shaped like one.
fn template_at(json: &str, at: &str) -> Option<PodTemplateSpec> {
    match at {
        "/spec/template" => {
            serde_json::from_str::<Spec<Template<PodTemplateSpec>>>(json)
                .ok()?
                .spec?
                .template
        }
        "/spec/jobTemplate/spec/template" => {
            serde_json::from_str::<Spec<JobTemplate<Spec<Template<PodTemplateSpec>>>>>(json)
                .ok()?
                .spec?
                .job_template?
                .spec?
                .template
        }
        "/template" => {
            serde_json::from_str::<Template<PodTemplateSpec>>(json)
                .ok()?
                .template
        }
        // A Pod has a template's two fields, `metadata` and `spec`, at its top.
        "" => serde_json::from_str::<PodTemplateSpec>(json).ok(),
        _ => None,
    }
}

/// Every pod template in the objects, in batch order.
pub fn pod_templates<'o, 'a>(objects: &'o [Object<'a>]) -> Vec<PodTemplate<'o, 'a>> {
    objects.iter().filter_map(pod_template).collect()
}

pub fn pod_template<'o, 'a>(object: &'o Object<'a>) -> Option<PodTemplate<'o, 'a>> {
    let parsed = object
        .cache()
        .template
        .get_or_init(|| {
            let at = template_pointer(object)?;
            let template = template_at(&object.resource.json, at)?;
            let spec = template.spec?;
            let labels = template.metadata.and_then(|m| m.labels).unwrap_or_default();
            Some(Parsed {
                spec_path: format!("{at}/spec"),
                labels,
                spec,
            })
        })
        .as_ref()?;
    Some(PodTemplate {
        object,
        spec_path: parsed.spec_path.clone(),
        labels: &parsed.labels,
        spec: &parsed.spec,
    })
}

impl<'o, 'a> PodTemplate<'o, 'a> {
    /// Init and main containers, each with its pointer. Ephemeral containers
    /// are added by `kubectl debug`, never written in a manifest.
    pub fn containers(&self) -> Vec<ContainerRef<'_>> {
        let mut out = Vec::new();
        for (i, c) in self.spec.init_containers.iter().flatten().enumerate() {
            out.push(ContainerRef {
                kind: ContainerKind::Init,
                path: format!("{}/initContainers/{i}", self.spec_path),
                container: c,
            });
        }
        for (i, c) in self.spec.containers.iter().enumerate() {
            out.push(ContainerRef {
                kind: ContainerKind::Main,
                path: format!("{}/containers/{i}", self.spec_path),
                container: c,
            });
        }
        out
    }

    /// What backs `file` in `container`: the deepest volumeMount whose path
    /// covers it decides, as in the container's mount table. `None` when no
    /// mount covers the file.
    pub fn mounted<'c>(&'c self, container: &'c Container, file: &str) -> Option<Mounted<'c>> {
        let mount = container
            .volume_mounts
            .iter()
            .flatten()
            .filter(|m| {
                let mp = m.mount_path.trim_end_matches('/');
                file == mp || file.starts_with(&format!("{mp}/"))
            })
            .max_by_key(|m| m.mount_path.trim_end_matches('/').len())?;
        let volume = self
            .spec
            .volumes
            .iter()
            .flatten()
            .enumerate()
            .find(|(_, v)| v.name == mount.name);
        let inner = file[mount.mount_path.trim_end_matches('/').len()..].trim_start_matches('/');
        // With subPath the mount is a path inside the volume (the file
        // itself when nothing follows).
        let in_volume = match mount.sub_path.as_deref().map(|s| s.trim_matches('/')) {
            Some(sub) if !sub.is_empty() && inner.is_empty() => sub.to_string(),
            Some(sub) if !sub.is_empty() => format!("{sub}/{inner}"),
            _ => inner.to_string(),
        };
        Some(Mounted {
            mount,
            volume,
            in_volume,
        })
    }

    /// Whether a Service selector picks this template's pods.
    pub fn selected_by(&self, selector: &BTreeMap<String, String>) -> bool {
        !selector.is_empty() && selector.iter().all(|(k, v)| self.labels.get(k) == Some(v))
    }

    /// Names of ConfigMaps mounted into `container`, with the mount and volume.
    pub fn config_map_mounts(&self, container: &Container) -> Vec<ConfigMapMount> {
        let volumes = self.spec.volumes.as_deref().unwrap_or_default();
        let mut out = Vec::new();
        for mount in container.volume_mounts.iter().flatten() {
            let Some(volume) = volumes.iter().find(|v| v.name == mount.name) else {
                continue;
            };
            let mut sources = Vec::new();
            if let Some(cm) = &volume.config_map {
                sources.push((cm.name.clone(), cm.items.clone().unwrap_or_default()));
            }
            if let Some(projected) = &volume.projected {
                for s in projected.sources.iter().flatten() {
                    if let Some(cm) = &s.config_map {
                        sources.push((cm.name.clone(), cm.items.clone().unwrap_or_default()));
                    }
                }
            }
            for (name, items) in sources {
                out.push(ConfigMapMount {
                    config_map: name,
                    mount_path: mount.mount_path.clone(),
                    sub_path: mount.sub_path.clone().filter(|s| !s.is_empty()),
                    items: items.into_iter().map(|i| (i.key, i.path)).collect(),
                });
            }
        }
        out
    }
}

/// The volume behind a path in a container (see [`PodTemplate::mounted`]).
#[derive(Debug, Clone)]
pub struct Mounted<'t> {
    pub mount: &'t VolumeMount,
    /// The pod's volume of that name, with its index in `volumes`; `None`
    /// when the mount names no volume of the pod.
    pub volume: Option<(usize, &'t Volume)>,
    /// The path inside the volume; empty for the volume's root.
    pub in_volume: String,
}

impl ContainerRef<'_> {
    /// The container's named ports, for named `targetPort`s and probes.
    pub fn named_ports(&self) -> Vec<(String, i32)> {
        self.container
            .ports
            .iter()
            .flatten()
            .filter_map(|p| Some((p.name.clone()?, p.container_port)))
            .collect()
    }
}

/// A ConfigMap volume as one container sees it.
#[derive(Debug, Clone)]
pub struct ConfigMapMount {
    pub config_map: String,
    pub mount_path: String,
    pub sub_path: Option<String>,
    /// `items`: (data key, file path inside the volume).
    pub items: Vec<(String, String)>,
}

impl ConfigMapMount {
    /// The data keys this mount exposes as files, given the ConfigMap's keys.
    pub fn keys<'k>(&self, all_keys: impl Iterator<Item = &'k String>) -> Vec<String> {
        let files: Vec<(String, String)> = if self.items.is_empty() {
            all_keys.map(|k| (k.clone(), k.clone())).collect()
        } else {
            self.items.clone()
        };
        match &self.sub_path {
            Some(sub) => files
                .into_iter()
                .filter(|(_, path)| path == sub)
                .map(|(k, _)| k)
                .collect(),
            None => files.into_iter().map(|(k, _)| k).collect(),
        }
    }
}

/// The env entries of a container named `name`, last one last: the kubelet
/// keeps the last definition of a duplicated name.
pub fn env_named<'c>(container: &'c Container, name: &str) -> Option<(usize, &'c EnvVar)> {
    container
        .env
        .iter()
        .flatten()
        .enumerate()
        .filter(|(_, e)| e.name == name)
        .last()
}

/// Expands `$(VAR)` references the way the kubelet does, from literal values
/// of env entries defined earlier in the same container. `$$` escapes `$`.
/// An unresolvable reference is kept as written, as the kubelet does.
pub fn expand_env(container: &Container, upto: usize, value: &str) -> String {
    let earlier: Vec<&EnvVar> = container.env.iter().flatten().take(upto).collect();
    crate::env::expand_with(value, |name| {
        earlier
            .iter()
            .rev()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    })
}

/// The env pointer of entry `i` of a container.
pub fn env_path(container_path: &str, i: usize) -> String {
    format!("{container_path}/env/{i}")
}

/// A pointer to a data key of a ConfigMap or Secret.
pub fn data_path(key: &str) -> String {
    pointer::push("/data", key)
}

/// Reads `data` of a ConfigMap object as strings.
pub fn config_map_data(object: &Object) -> BTreeMap<String, String> {
    object
        .value()
        .get("data")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(env: &[(&str, &str)]) -> Container {
        Container {
            name: "c".into(),
            env: Some(
                env.iter()
                    .map(|(n, v)| EnvVar {
                        name: n.to_string(),
                        value: Some(v.to_string()),
                        value_from: None,
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn expands_earlier_env_like_the_kubelet() {
        let c = container(&[("LB", "20.1.2.3"), ("NODE_IP", "$(LB)")]);
        assert_eq!(expand_env(&c, 1, "$(LB)"), "20.1.2.3");
        assert_eq!(expand_env(&c, 1, "$$(LB)"), "$(LB)");
        assert_eq!(expand_env(&c, 0, "$(LB)"), "$(LB)");
        assert_eq!(expand_env(&c, 1, "a$b"), "a$b");
    }

    /// The template is read straight from the JSON text by its path for
    /// each kind; a wrong type elsewhere in the object must not hide it.
    #[test]
    fn finds_the_template_of_every_workload_kind() {
        let batch = crate::testkit::render(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  replicas: "two"   # wrong type, outside the template
  template:
    metadata: {labels: {app: d}}
    spec: {containers: [{name: d, image: a}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: c}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec: {containers: [{name: c, image: b}]}
---
apiVersion: v1
kind: Pod
metadata: {name: p, labels: {app: p}}
spec: {containers: [{name: p, image: c}]}
status: {phase: Running}
---
apiVersion: v1
kind: PodTemplate
metadata: {name: t}
template:
  spec: {containers: [{name: t, image: d}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: broken}
spec:
  template:
    spec: {containers: "not a list"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {k: v}
"#,
        );
        let objects = batch.objects();
        let found: Vec<(String, String, String)> = pod_templates(&objects)
            .iter()
            .map(|t| {
                (
                    t.object.name().to_string(),
                    t.spec_path.clone(),
                    t.spec.containers[0].image.clone().unwrap_or_default(),
                )
            })
            .collect();
        let want = [
            ("d", "/spec/template/spec", "a"),
            ("c", "/spec/jobTemplate/spec/template/spec", "b"),
            ("p", "/spec", "c"),
            ("t", "/template/spec", "d"),
        ];
        assert_eq!(found, want.map(|(a, b, c)| (a.into(), b.into(), c.into())));
        let labels = &pod_templates(&objects)[2].labels;
        assert_eq!(labels.get("app").map(String::as_str), Some("p"));
        // The tree of a kind without a template is still there for rules.
        assert_eq!(
            config_map_data(&objects[5]).get("k").map(String::as_str),
            Some("v")
        );
    }

    #[test]
    fn last_duplicate_env_wins() {
        let c = container(&[("NODE_IP", "1.1.1.1"), ("NODE_IP", "2.2.2.2")]);
        assert_eq!(env_named(&c, "NODE_IP").unwrap().0, 1);
    }

    #[test]
    fn the_deepest_mount_decides_and_sub_path_is_inside_the_volume() {
        let batch = crate::testkit::render(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - name: c\n      image: x\n      ports: [{name: http, containerPort: 7880}, {containerPort: 9}]\n      volumeMounts:\n        - {name: etc, mountPath: /etc/}\n        - {name: keys, mountPath: /etc/lk/keys.yaml, subPath: lk/keys.yaml}\n        - {name: gone, mountPath: /gone}\n  volumes:\n    - {name: etc, emptyDir: {}}\n    - {name: keys, secret: {secretName: s}}\n",
        );
        let objects = batch.objects();
        let t = pod_template(&objects[0]).unwrap();
        let c = &t.containers()[0];
        let at = |file: &str| {
            t.mounted(c.container, file)
                .map(|m| (m.mount.name.clone(), m.volume.map(|(i, _)| i), m.in_volume))
        };
        assert_eq!(
            at("/etc/lk/keys.yaml"),
            Some(("keys".into(), Some(1), "lk/keys.yaml".into()))
        );
        assert_eq!(
            at("/etc/livekit.yaml"),
            Some(("etc".into(), Some(0), "livekit.yaml".into()))
        );
        // A path that only shares a prefix with a mount is not under it.
        assert_eq!(at("/etcetera"), None);
        assert_eq!(at("/gone/x"), Some(("gone".into(), None, "x".into())));
        assert_eq!(c.named_ports(), [("http".to_string(), 7880)]);
    }
}
