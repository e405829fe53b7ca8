//! `livekit/service-links`: Kubernetes' Service env vars must not feed
//! livekit-server's own.
//!
//! Unless a pod sets `enableServiceLinks: false`, the kubelet injects
//! `<NAME>_SERVICE_HOST`, `<NAME>_PORT=tcp://IP:PORT` and friends for every
//! Service of the pod's namespace. livekit-server reads every env var named
//! `LIVEKIT_` + a config path (v1.3+), so a Service named `livekit` sets
//! `LIVEKIT_PORT=tcp://10.0.12.7:7880`, which the server parses as its `port`,
//! fails on, and exits: a crash loop (livekit/livekit#2961; one public
//! post-mortem counted 3,138 restarts in 11 days). A Service named
//! `livekit-prometheus` does the same to `prometheus_port`.

use lkguard_policy_sdk::effective::{self, Effective, Kind};
use lkguard_policy_sdk::livekit::Target;
use lkguard_policy_sdk::{settings, workload, Batch, Finding, Metadata, Object, Policy, RuleInfo};
use serde_json::Value;

pub const RULE: &str = "livekit/service-links";

pub struct ServiceLinks;

/// One variable the kubelet injects for a Service, with a value of the
/// shape it will have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    pub name: String,
    pub example: String,
}

/// The variables the kubelet derives from a Service (`pkg/kubelet/envvars`):
/// the name upper-cased with `-` as `_`, for a Service with a cluster IP.
pub fn injected(service: &Value) -> Vec<Injected> {
    let name = service
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let spec = service.get("spec");
    let cluster_ip = spec
        .and_then(|s| s.get("clusterIP"))
        .and_then(Value::as_str)
        .unwrap_or("<cluster-ip>");
    let kind = spec
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    // Headless and ExternalName Services get no variables.
    if cluster_ip == "None" || kind == "ExternalName" {
        return Vec::new();
    }
    let prefix = name.to_ascii_uppercase().replace('-', "_");
    let ports: Vec<(i64, String, Option<String>)> = spec
        .and_then(|s| s.get("ports"))
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| {
                    Some((
                        p.get("port")?.as_i64()?,
                        p.get("protocol")
                            .and_then(Value::as_str)
                            .unwrap_or("TCP")
                            .to_string(),
                        p.get("name").and_then(Value::as_str).map(str::to_string),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = vec![Injected {
        name: format!("{prefix}_SERVICE_HOST"),
        example: cluster_ip.to_string(),
    }];
    let Some((first, first_proto, _)) = ports.first() else {
        return out;
    };
    out.push(Injected {
        name: format!("{prefix}_SERVICE_PORT"),
        example: first.to_string(),
    });
    out.push(Injected {
        name: format!("{prefix}_PORT"),
        example: format!(
            "{}://{cluster_ip}:{first}",
            first_proto.to_ascii_lowercase()
        ),
    });
    for (port, proto, port_name) in &ports {
        if let Some(n) = port_name {
            out.push(Injected {
                name: format!(
                    "{prefix}_SERVICE_PORT_{}",
                    n.to_ascii_uppercase().replace('-', "_")
                ),
                example: port.to_string(),
            });
        }
        let base = format!("{prefix}_PORT_{port}_{}", proto.to_ascii_uppercase());
        let lower = proto.to_ascii_lowercase();
        out.push(Injected {
            name: base.clone(),
            example: format!("{lower}://{cluster_ip}:{port}"),
        });
        out.push(Injected {
            name: format!("{base}_PROTO"),
            example: lower.clone(),
        });
        out.push(Injected {
            name: format!("{base}_PORT"),
            example: port.to_string(),
        });
        out.push(Injected {
            name: format!("{base}_ADDR"),
            example: cluster_ip.to_string(),
        });
    }
    out
}

/// Whether urfave/cli parses `text` as a flag of this kind (Go's strconv).
fn parses(kind: Kind, text: &str) -> bool {
    match kind {
        Kind::Bool => lkguard_policy_sdk::goyaml::strconv_bool(text).is_some(),
        Kind::Int | Kind::Duration => text.parse::<i64>().is_ok(),
        Kind::Uint => text.parse::<u64>().is_ok(),
        Kind::Float => text.parse::<f64>().is_ok(),
        Kind::String => true,
    }
}

impl Policy for ServiceLinks {
    fn metadata() -> Metadata {
        Metadata {
            id: "service-links".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            rules: vec![RuleInfo {
                id: RULE.into(),
                summary: "No Service of the livekit-server pod's namespace injects an env var livekit-server reads".into(),
                rationale: "Unless the pod sets enableServiceLinks: false, the kubelet injects <NAME>_SERVICE_HOST, \
                    <NAME>_PORT=tcp://IP:PORT, <NAME>_PORT_<port>_<PROTO>... for every Service of the namespace \
                    (name upper-cased, - as _). livekit-server (v1.3+, pkg/config GenerateCLIFlags) reads an env var \
                    LIVEKIT_<PATH> for every scalar config field, plus NODE_IP, UDP_PORT, REDIS_HOST and the other \
                    named flags' variables. A Service named livekit yields LIVEKIT_PORT=tcp://...: livekit-server \
                    fails to parse its port, prints the error and exits, and the pod crash-loops \
                    (livekit/livekit#2961). Where the value happens to parse it silently overrides the config. \
                    Judged for the whole render: the Services of the pod's namespace must be in the batch; the \
                    container's own env entry of the same name wins over the injected one. Topology: all."
                    .into(),
            }],
            settings_schema: settings::schema(serde_json::json!({})),
        }
    }

    fn validate(batch: &Batch, settings: &str) -> Result<Vec<Finding>, String> {
        let target: Target = settings::parse(settings)?;
        let objects = batch.objects();
        let templates = workload::pod_templates(&objects);
        let mut findings = Vec::new();
        for server in target.find(&templates) {
            let template = server.template;
            if template.spec.enable_service_links == Some(false) {
                continue;
            }
            let object = template.object;
            let services = services_of(&objects, object);
            if services.is_empty() {
                continue;
            }
            let effective = Effective::build(&objects, server.clone());
            let at = match template.spec.enable_service_links {
                Some(true) => format!("{}/enableServiceLinks", template.spec_path),
                _ => template.spec_path.clone(),
            };
            for svc in services {
                for var in injected(svc.value()) {
                    // The container's own definition beats the kubelet's.
                    if effective.env.get(&var.name).is_some() {
                        continue;
                    }
                    let message = if let Some(g) = effective::generated_by_env(&var.name) {
                        if parses(g.kind, &var.example) {
                            format!(
                                "Service {} makes the kubelet inject {}={} into container `{}`, which livekit-server reads as `{}` and silently runs with",
                                svc.name(), var.name, var.example, effective.container_name(), g.path
                            )
                        } else {
                            format!(
                                "Service {} makes the kubelet inject {}={} into container `{}`; livekit-server reads it as `{}` ({}), fails to parse it and exits, so the pod crash-loops",
                                svc.name(), var.name, var.example, effective.container_name(), g.path, g.go_type
                            )
                        }
                    } else if effective::reads_env(&var.name) {
                        format!(
                            "Service {} makes the kubelet inject {}={} into container `{}`, which livekit-server reads as a flag",
                            svc.name(), var.name, var.example, effective.container_name()
                        )
                    } else {
                        continue;
                    };
                    findings.push(
                        Finding::error(RULE, object.index, at.clone(), message)
                            .hint("set enableServiceLinks: false on the livekit-server pod (or rename the Service)"),
                    );
                }
            }
        }
        Ok(findings)
    }
}

/// Services whose variables the pod gets: those of its namespace.
fn services_of<'o, 'a>(objects: &'o [Object<'a>], near: &Object) -> Vec<&'o Object<'a>> {
    objects
        .iter()
        .filter(|o| o.is("", "Service") && o.origin == near.origin && o.same_namespace(near))
        .collect()
}

lkguard_policy_sdk::export_policy!(ServiceLinks);

#[cfg(test)]
mod tests {
    use super::*;
    use lkguard_policy_sdk::testkit::render;

    const DEPLOY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: livekit}
spec:
  template:
    metadata: {labels: {app: livekit}}
    spec:
      LINKS
      containers:
        - name: livekit
          image: livekit/livekit-server:v1.13.3
"#;

    fn service(name: &str) -> String {
        format!("---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  selector: {{app: livekit}}\n  ports: [{{name: http, port: 7880}}]\n")
    }

    fn run(links: &str, services: &[&str]) -> Vec<Finding> {
        let mut yaml = DEPLOY.replace("LINKS", links);
        for s in services {
            yaml.push_str(&service(s));
        }
        ServiceLinks::validate(&render(&yaml), "{}").unwrap()
    }

    #[test]
    fn a_service_named_livekit_crash_loops_the_server() {
        let f = run("", &["livekit"]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].path, "/spec/template/spec");
        assert!(
            f[0].message.contains("LIVEKIT_PORT=tcp://"),
            "{}",
            f[0].message
        );
        assert!(f[0].message.contains("crash-loops"), "{}", f[0].message);
    }

    #[test]
    fn prometheus_port_collides_too() {
        let f = run("", &["livekit-prometheus"]);
        assert!(
            f.iter()
                .any(|f| f.message.contains("LIVEKIT_PROMETHEUS_PORT")),
            "{f:?}"
        );
    }

    #[test]
    fn disabled_links_or_harmless_names_pass() {
        assert!(run("enableServiceLinks: false", &["livekit"]).is_empty());
        assert!(run("", &["livekit-signal", "redis"]).is_empty());
        let f = run("enableServiceLinks: true", &["livekit"]);
        assert_eq!(f[0].path, "/spec/template/spec/enableServiceLinks");
    }

    #[test]
    fn kubelet_names_every_port_variable() {
        let svc: Value = serde_json::json!({
            "metadata": {"name": "livekit-rtc"},
            "spec": {"clusterIP": "10.0.0.5", "ports": [{"name": "rtc-udp", "port": 7882, "protocol": "UDP"}]}
        });
        let names: Vec<String> = injected(&svc).into_iter().map(|i| i.name).collect();
        assert_eq!(
            names,
            [
                "LIVEKIT_RTC_SERVICE_HOST",
                "LIVEKIT_RTC_SERVICE_PORT",
                "LIVEKIT_RTC_PORT",
                "LIVEKIT_RTC_SERVICE_PORT_RTC_UDP",
                "LIVEKIT_RTC_PORT_7882_UDP",
                "LIVEKIT_RTC_PORT_7882_UDP_PROTO",
                "LIVEKIT_RTC_PORT_7882_UDP_PORT",
                "LIVEKIT_RTC_PORT_7882_UDP_ADDR",
            ]
        );
        assert!(injected(
            &serde_json::json!({"metadata": {"name": "x"}, "spec": {"clusterIP": "None"}})
        )
        .is_empty());
    }
}
