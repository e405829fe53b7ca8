//! `livekit/replicas`: one livekit-server behind one advertised media IP.
//!
//! In the runbook's design the whole media plane is one LoadBalancer IP that
//! every pod advertises as NODE_IP. With two pods behind it, a browser's UDP
//! can land on a pod that does not hold its ICE session, and without a
//! `redis:` section the pods do not even share rooms: calls split or fail at
//! random. So the livekit-server workload runs exactly one pod, and nothing
//! scales it out. With `topology: host-network` (the official Helm chart's
//! design: each pod on its own node, advertising that node's IP) several pods
//! are fine, if they share rooms through Redis and never share a node.

use lkguard_policy_sdk::effective::Effective;
use lkguard_policy_sdk::livekit::Target;
use lkguard_policy_sdk::settings::{self, Topology};
use lkguard_policy_sdk::{workload, Batch, Finding, Metadata, Object, Policy, RuleInfo};
use serde::Deserialize;
use serde_json::Value;

pub const RULE: &str = "livekit/replicas";

pub struct Replicas;

#[derive(Debug, Deserialize)]
struct Settings {
    #[serde(flatten)]
    target: Target,
    #[serde(default)]
    topology: Topology,
}

/// Where the workload's pod count can exceed one, and how far.
struct ScaleOut {
    resource: u32,
    path: String,
    what: String,
}

impl Policy for Replicas {
    fn metadata() -> Metadata {
        Metadata {
            id: "replicas".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            rules: vec![RuleInfo {
                id: RULE.into(),
                summary: "The livekit-server workload runs one pod (load-balancer topology), or spreads Redis-backed pods one per node (host-network)".into(),
                rationale: "load-balancer topology (the runbook's): the media plane is one LoadBalancer IP that every \
                    livekit-server pod advertises as NODE_IP. With two or more pods behind it, a browser's UDP can \
                    reach a pod that does not hold its ICE session, and without a redis: section the pods do not \
                    share rooms either. Error when the workload has replicas > 1, is a DaemonSet, or is the target \
                    of a HorizontalPodAutoscaler or KEDA ScaledObject in the render whose maximum is above 1 \
                    (KEDA's default maxReplicaCount is 100). host-network topology (the livekit Helm chart's): \
                    each pod advertises its own node's IP, so several pods work if they share rooms through Redis \
                    (redis.address, REDIS_HOST or --redis-host) and, when the pods are on the node's network (hostNetwork \
                    or a hostPort), a required pod anti-affinity on kubernetes.io/hostname keeps two of them off one \
                    node (their ports would clash). turn-gateway (a TURN gateway such as STUNner relays to each pod's own \
                    address): several pods work if they share rooms through Redis."
                    .into(),
            }],
            settings_schema: settings::schema(serde_json::json!({
                "topology": settings::topology_schema()
            })),
        }
    }

    fn validate(batch: &Batch, settings: &str) -> Result<Vec<Finding>, String> {
        let s: Settings = settings::parse(settings)?;
        let objects = batch.objects();
        let templates = workload::pod_templates(&objects);
        let mut findings = Vec::new();
        let mut seen = Vec::new();
        for server in s.target.find(&templates) {
            let object = server.template.object;
            if !object.origin.deployable || seen.contains(&object.index) {
                continue;
            }
            seen.push(object.index);
            let scale = scale_out(&objects, object);
            if scale.is_empty() {
                continue;
            }
            let effective = Effective::build(&objects, server);
            // A config the render does not show may name Redis.
            let redis = has_redis(&effective) || effective.document.hidden();
            match s.topology {
                Topology::LoadBalancer => {
                    for out in scale {
                        let tail = if redis {
                            ""
                        } else {
                            ", and the config livekit-server runs with has no Redis (redis.address, REDIS_HOST or --redis-host), so the pods do not even share rooms"
                        };
                        findings.push(
                            Finding::error(RULE, out.resource, out.path, format!(
                                "{}: livekit-server pods behind the one LoadBalancer IP all advertise it as NODE_IP, so a browser's UDP can reach a pod that does not hold its session{tail}",
                                out.what
                            ))
                            .hint("run one livekit-server pod per LoadBalancer IP (replicas: 1, no autoscaler)"),
                        );
                    }
                }
                Topology::HostNetwork | Topology::TurnGateway => {
                    let Some(first) = scale.first() else { continue };
                    if !redis {
                        findings.push(
                            Finding::error(RULE, first.resource, first.path.clone(), format!(
                                "{}, but livekit-server has no Redis (redis.address, REDIS_HOST or --redis-host), so each pod keeps its own rooms and participants of one room land apart",
                                first.what
                            ))
                            .hint("configure redis: in the livekit config"),
                        );
                    }
                    // Only ports on the node clash; a pod off the node is
                    // rtc-service's finding (it does not fit the topology).
                    if s.topology == Topology::HostNetwork
                        && effective.server.ports_on_node()
                        && !hostname_anti_affinity(object)
                        && object.kind() != "DaemonSet"
                    {
                        findings.push(
                            Finding::error(RULE, object.index, format!("{}/affinity", effective.server.template.spec_path), format!(
                                "{}, but no required pod anti-affinity on kubernetes.io/hostname keeps two livekit-server pods off one node, where their host ports clash",
                                first.what
                            ))
                            .hint("add requiredDuringSchedulingIgnoredDuringExecution podAntiAffinity with topologyKey: kubernetes.io/hostname"),
                        );
                    }
                }
            }
        }
        Ok(findings)
    }
}

fn has_redis(effective: &Effective) -> bool {
    ["redis.address", "redis.cluster_addresses", "redis.sentinel_addresses"]
        .iter()
        .any(|p| {
            effective.get(p).is_some_and(|s| {
                s.text().is_none_or(|t| !t.trim().is_empty())
                    || matches!(&s.raw, lkguard_policy_sdk::effective::Raw::Yaml(v) if v.is_sequence() && v.as_sequence().is_some_and(|l| !l.is_empty()))
            })
        })
}

/// A workload kind that runs a pod count from `spec.replicas`.
fn has_replicas(object: &Object) -> bool {
    matches!(
        object.kind(),
        "Deployment" | "StatefulSet" | "ReplicaSet" | "ReplicationController" | "Rollout"
    )
}

fn scale_out(objects: &[Object], workload: &Object) -> Vec<ScaleOut> {
    let mut out = Vec::new();
    let name = workload.name();
    let kind = workload.kind();
    if kind == "DaemonSet" {
        out.push(ScaleOut {
            resource: workload.index,
            path: "/kind".into(),
            what: format!("DaemonSet {name} runs a livekit-server pod on every node"),
        });
    }
    if has_replicas(workload) {
        if let Some(n) = workload
            .value()
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .filter(|n| *n > 1)
        {
            out.push(ScaleOut {
                resource: workload.index,
                path: "/spec/replicas".into(),
                what: format!("{kind} {name} has replicas: {n}"),
            });
        }
    }
    for scaler in objects
        .iter()
        .filter(|o| o.origin == workload.origin && o.same_namespace(workload))
    {
        let v = scaler.value();
        let target = |p: &str| v.pointer(p).and_then(Value::as_str);
        if scaler.kind() == "HorizontalPodAutoscaler"
            && scaler.resource.api_version.starts_with("autoscaling/")
        {
            if target("/spec/scaleTargetRef/name") != Some(name)
                || target("/spec/scaleTargetRef/kind") != Some(kind)
            {
                continue;
            }
            let max = v
                .pointer("/spec/maxReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if max > 1 {
                out.push(ScaleOut {
                    resource: scaler.index,
                    path: "/spec/maxReplicas".into(),
                    what: format!(
                        "HorizontalPodAutoscaler {} scales {kind} {name} up to {max} pods",
                        scaler.name()
                    ),
                });
            }
        } else if scaler.kind() == "ScaledObject"
            && scaler.resource.api_version.starts_with("keda.sh/")
        {
            // KEDA defaults the target kind to Deployment and the maximum to 100.
            let target_kind = target("/spec/scaleTargetRef/kind").unwrap_or("Deployment");
            if target("/spec/scaleTargetRef/name") != Some(name) || target_kind != kind {
                continue;
            }
            let (max, path) = match v.pointer("/spec/maxReplicaCount").and_then(Value::as_i64) {
                Some(m) => (m, "/spec/maxReplicaCount"),
                None => (100, "/spec"),
            };
            if max > 1 {
                out.push(ScaleOut {
                    resource: scaler.index,
                    path: path.into(),
                    what: format!(
                        "KEDA ScaledObject {} scales {kind} {name} up to {max} pods",
                        scaler.name()
                    ),
                });
            }
        }
    }
    out
}

/// A required pod anti-affinity on the hostname against the pod's own labels.
fn hostname_anti_affinity(object: &Object) -> bool {
    let Some(template) = workload::pod_template(object) else {
        return false;
    };
    template
        .spec
        .affinity
        .as_ref()
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|p| {
            p.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_some_and(|terms| {
            terms.iter().any(|t| {
                t.topology_key == "kubernetes.io/hostname"
                    && t.label_selector.as_ref().is_some_and(|s| {
                        s.match_labels.as_ref().is_some_and(|m| {
                            !m.is_empty()
                                && m.iter().all(|(k, v)| template.labels.get(k) == Some(v))
                        })
                    })
            })
        })
}

lkguard_policy_sdk::export_policy!(Replicas);

#[cfg(test)]
mod tests {
    use super::*;
    use lkguard_policy_sdk::testkit::render;

    const DEPLOY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: livekit}
spec:
  replicas: REPLICAS
  template:
    metadata: {labels: {app: livekit}}
    spec:
      enableServiceLinks: false
      containers:
        - name: livekit
          image: livekit/livekit-server:v1.9.1
"#;

    fn run(yaml: &str, settings: &str) -> Vec<(String, String)> {
        Replicas::validate(&render(yaml), settings)
            .unwrap()
            .into_iter()
            .map(|f| (f.path, f.message))
            .collect()
    }

    #[test]
    fn one_replica_passes_and_two_fail_at_the_field() {
        assert!(run(&DEPLOY.replace("REPLICAS", "1"), "{}").is_empty());
        let f = run(&DEPLOY.replace("REPLICAS", "2"), "{}");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].0, "/spec/replicas");
        assert!(f[0].1.contains("has no Redis"), "{}", f[0].1);
    }

    #[test]
    fn daemonset_and_autoscalers_fail() {
        let ds = DEPLOY
            .replace("kind: Deployment", "kind: DaemonSet")
            .replace("  replicas: REPLICAS\n", "");
        assert_eq!(run(&ds, "{}")[0].0, "/kind");
        let hpa = format!(
            "{}---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: lk}}\nspec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: livekit}}\n  minReplicas: 1\n  maxReplicas: 3\n",
            DEPLOY.replace("REPLICAS", "1")
        );
        let f = run(&hpa, "{}");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].0, "/spec/maxReplicas");
        // KEDA without maxReplicaCount scales to 100.
        let keda = format!(
            "{}---\napiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: lk}}\nspec:\n  scaleTargetRef: {{name: livekit}}\n",
            DEPLOY.replace("REPLICAS", "1")
        );
        assert!(run(&keda, "{}")[0].1.contains("up to 100 pods"));
        // An autoscaler of another workload is not this rule's business.
        assert!(run(
            &hpa.replace(
                "kind: Deployment, name: livekit}",
                "kind: Deployment, name: egress}"
            ),
            "{}"
        )
        .is_empty());
    }

    #[test]
    fn host_network_needs_redis_and_anti_affinity() {
        let off_node = DEPLOY.replace("REPLICAS", "2");
        let two = off_node.replace(
            "    metadata: {labels: {app: livekit}}\n    spec:\n",
            "    metadata: {labels: {app: livekit}}\n    spec:\n      hostNetwork: true\n",
        );
        let f = run(&two, r#"{"topology": "host-network"}"#);
        assert_eq!(f.len(), 2, "{f:?}");
        // A pod that is not on the node's network has no host ports to
        // clash (and rtc-service says it does not fit the topology).
        let f = run(&off_node, r#"{"topology": "host-network"}"#);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].1.contains("Redis"), "{}", f[0].1);
        // Behind a TURN gateway: Redis, and no host ports to spread.
        let f = run(&two, r#"{"topology": "turn-gateway"}"#);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].1.contains("Redis"), "{}", f[0].1);
        let spread = two
            .replace("    metadata: {labels: {app: livekit}}\n    spec:\n", "    metadata: {labels: {app: livekit}}\n    spec:\n      affinity:\n        podAntiAffinity:\n          requiredDuringSchedulingIgnoredDuringExecution:\n            - {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {app: livekit}}}\n")
            .replace("image: livekit/livekit-server:v1.9.1\n", "image: livekit/livekit-server:v1.9.1\n          env: [{name: REDIS_HOST, value: redis:6379}]\n");
        assert!(run(&spread, r#"{"topology": "host-network"}"#).is_empty());
    }

    #[test]
    fn a_config_the_render_does_not_show_may_name_redis() {
        // The config in a Secret volume: whether it names Redis is unknown.
        let hidden = DEPLOY.replace("REPLICAS", "2").replace(
            "image: livekit/livekit-server:v1.9.1\n",
            "image: livekit/livekit-server:v1.9.1\n          env: [{name: LIVEKIT_CONFIG, valueFrom: {secretKeyRef: {name: lk, key: config.yaml}}}]\n",
        );
        let f = run(&hidden, "{}");
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(!f[0].1.contains("Redis"), "{}", f[0].1);
        assert_eq!(run(&hidden, r#"{"topology": "turn-gateway"}"#), vec![]);
    }
}
