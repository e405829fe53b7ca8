//! `livekit/rtc-service`: the media plane reaches the pods.
//!
//! Browsers send media to NODE_IP on the ports livekit-server advertises
//! (UDP `rtc.udp_port`, TCP `rtc.tcp_port` as fallback). The livekit-rtc
//! LoadBalancer must forward exactly those, keep the client's source address
//! (`externalTrafficPolicy: Local`, else SNAT breaks ICE consent and the
//! LB health check sends traffic to nodes without a livekit pod), and leave
//! signaling (7880) to the ClusterIP Service behind the wss Ingress.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use lkguard_policy_sdk::goyaml;
use lkguard_policy_sdk::livekit::{self, LivekitConfig, LivekitContainer, Target};
use lkguard_policy_sdk::settings::{self, DEFAULT_SIGNAL_PORT, DEFAULT_TCP_PORT, DEFAULT_UDP_PORT};
use lkguard_policy_sdk::{workload, Batch, Finding, Metadata, Object, Policy, RuleInfo};
use serde::Deserialize;

pub const RULE: &str = "livekit/rtc-service";

pub struct RtcService;

#[derive(Debug, Deserialize)]
struct Settings {
    #[serde(flatten)]
    target: Target,
    #[serde(default = "udp")]
    udp_port: u32,
    #[serde(default = "tcp")]
    tcp_port: u32,
    #[serde(default = "signal")]
    signal_port: u32,
}

fn udp() -> u32 {
    DEFAULT_UDP_PORT.into()
}
fn tcp() -> u32 {
    DEFAULT_TCP_PORT.into()
}
fn signal() -> u32 {
    DEFAULT_SIGNAL_PORT.into()
}

/// The UDP ports livekit-server listens on for media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Udp {
    Port(u32),
    /// A port range: one socket per port, which a LoadBalancer cannot forward.
    Range(u32, u32, &'static str),
}

/// What the server's config says about its media ports, and where.
struct MediaPorts<'c, 'o, 'a> {
    udp: Udp,
    tcp: u32,
    config: Option<&'c LivekitConfig<'o, 'a>>,
}

/// Reads a port or `start-end` range as livekit's `PortRange.UnmarshalString` does.
fn port_text(text: &str, from: &'static str) -> Option<Udp> {
    match text.split_once('-') {
        Some((a, b)) => Some(Udp::Range(
            a.trim().parse().ok()?,
            b.trim().parse().ok()?,
            from,
        )),
        None => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|p| *p != 0)
            .map(Udp::Port),
    }
}

/// livekit-server's media ports, in its own precedence (livekit/livekit
/// `cmd/server/main.go` and mediatransportutil `RTCConfig.Validate`): the
/// `--udp-port` flag or its env `UDP_PORT` beats `rtc.udp_port` in the YAML;
/// with neither that nor `rtc.port_range_start`, a server without `--dev`
/// listens on UDP 50000-60000, one with `--dev` on 7882.
fn media_ports<'c, 'o, 'a>(
    lk: &LivekitContainer,
    cfg: Option<&'c LivekitConfig<'o, 'a>>,
    s: &Settings,
) -> MediaPorts<'c, 'o, 'a> {
    let c = lk.container.container;
    let flag = livekit::flag_value(c, "udp-port").and_then(|t| port_text(&t, "--udp-port"));
    let env = workload::env_named(c, "UDP_PORT")
        .and_then(|(i, e)| e.value.as_deref().map(|v| workload::expand_env(c, i, v)))
        .and_then(|t| port_text(&t, "UDP_PORT"));
    let Some(cfg) = cfg else {
        return MediaPorts {
            udp: flag.or(env).unwrap_or(Udp::Port(s.udp_port)),
            tcp: s.tcp_port,
            config: None,
        };
    };
    let yaml = cfg
        .get("rtc.udp_port")
        .and_then(|(v, _)| goyaml::scalar_text(v))
        .and_then(|t| port_text(&t, "rtc.udp_port"));
    let range = || {
        let start = cfg
            .get("rtc.port_range_start")
            .and_then(|(v, _)| goyaml::yaml_port(v))
            .unwrap_or(0);
        let end = cfg
            .get("rtc.port_range_end")
            .and_then(|(v, _)| goyaml::yaml_port(v))
            .unwrap_or(0);
        let dev = c
            .command
            .iter()
            .flatten()
            .chain(c.args.iter().flatten())
            .any(|a| a == "--dev" || a == "-dev");
        if start != 0 {
            Udp::Range(start, end, "rtc.port_range_start")
        } else if dev {
            Udp::Port(DEFAULT_UDP_PORT.into())
        } else {
            Udp::Range(50000, 60000, "the built-in default without rtc.udp_port")
        }
    };
    let udp = flag.or(env).or(yaml).unwrap_or_else(range);
    let tcp = cfg
        .get("rtc.tcp_port")
        .and_then(|(v, _)| goyaml::yaml_port(v))
        .filter(|p| *p != 0)
        .unwrap_or(s.tcp_port);
    MediaPorts {
        udp,
        tcp,
        config: Some(cfg),
    }
}

fn is_udp(p: &ServicePort) -> bool {
    p.protocol.as_deref() == Some("UDP")
}

fn is_tcp(p: &ServicePort) -> bool {
    matches!(p.protocol.as_deref(), None | Some("TCP"))
}

/// The container port a Service port forwards to, when it is a number.
fn target_port(p: &ServicePort) -> Option<i32> {
    match &p.target_port {
        None => Some(p.port),
        Some(IntOrString::Int(i)) => Some(*i),
        Some(IntOrString::String(_)) => None,
    }
}

impl Policy for RtcService {
    fn metadata() -> Metadata {
        Metadata {
            id: "rtc-service".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            rules: vec![RuleInfo {
                id: RULE.into(),
                summary: "A LoadBalancer Service forwards the media ports (UDP 7882, TCP 7881) with externalTrafficPolicy: Local, and not signaling 7880".into(),
                rationale: "Browsers send media to NODE_IP on the ports livekit-server advertises: UDP rtc.udp_port \
                    (7882) and TCP rtc.tcp_port (7881) as the fallback for UDP-blocked networks. The livekit-rtc \
                    LoadBalancer (mixed protocol) must forward exactly those; externalTrafficPolicy: Local keeps \
                    the client's source address and only routes to nodes running a livekit pod. Signaling (7880) \
                    belongs to the ClusterIP Service behind the wss Ingress, not on the public media IP. A config \
                    without rtc.udp_port makes the server listen on UDP 50000-60000, which the Service cannot \
                    forward. A deployable render without the RTC Service has no media path at all."
                    .into(),
            }],
            settings_schema: settings::schema(serde_json::json!({
                "udp_port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 7882},
                "tcp_port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 7881},
                "signal_port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 7880}
            })),
        }
    }

    fn validate(batch: &Batch, settings: &str) -> Result<Vec<Finding>, String> {
        let s: Settings = settings::parse(settings)?;
        let objects = batch.objects();
        let templates = workload::pod_templates(&objects);
        let servers = s.target.find(&templates);
        let configs = livekit::configs(&objects, &servers);
        let mut findings = Vec::new();
        let mut seen_templates = Vec::new();
        for lk in &servers {
            let object = lk.template.object;
            if seen_templates.contains(&object.index) {
                continue;
            }
            seen_templates.push(object.index);
            let loader = (object.index, lk.container.path.clone());
            let cfg = configs.iter().find(|c| c.loaded_by.contains(&loader));
            let ports = media_ports(lk, cfg, &s);
            check_server(lk, &objects, &ports, &s, &mut findings);
        }
        findings.dedup();
        Ok(findings)
    }
}

fn check_server(
    lk: &LivekitContainer,
    objects: &[Object],
    ports: &MediaPorts,
    s: &Settings,
    findings: &mut Vec<Finding>,
) {
    let object = lk.template.object;
    let services: Vec<(&Object, Service)> = objects
        .iter()
        .filter(|o| o.is("", "Service") && o.origin == object.origin && o.same_namespace(object))
        .filter_map(|o| o.typed::<Service>().map(|svc| (o, svc)))
        .filter(|(_, svc)| {
            let spec = svc.spec.as_ref();
            let selector: BTreeMap<String, String> =
                spec.and_then(|s| s.selector.clone()).unwrap_or_default();
            spec.and_then(|s| s.type_.as_deref()) == Some("LoadBalancer")
                && lk.template.selected_by(&selector)
        })
        .collect();

    if services.is_empty() {
        if object.origin.deployable && object.origin.complete {
            findings.push(
                Finding::error(RULE, object.index, "", {
                    let base = format!(
                        "no LoadBalancer Service selects the pods of {} {}, so media (UDP {}, TCP {}) has no way in",
                        object.kind(),
                        object.name(),
                        describe_udp(&ports.udp),
                        ports.tcp
                    );
                    // The livekit Helm chart's default: media on node IPs,
                    // which on AKS are private and change with every node.
                    if lk.template.spec.host_network == Some(true) {
                        format!("{base} but the node's own address (hostNetwork), which is not a pinned public IP")
                    } else {
                        base
                    }
                })
                    .hint("add the livekit-rtc Service: type LoadBalancer, UDP 7882 + TCP 7881, externalTrafficPolicy: Local"),
            );
        }
        return;
    }

    let range_message = |a: &u32, b: &u32, from: &str| {
        format!("livekit-server listens on UDP {a}-{b} ({from}), one port per socket, which the LoadBalancer does not forward; use one UDP port")
    };
    let range_in_config = match (&ports.udp, ports.config) {
        (Udp::Range(a, b, from), Some(cfg))
            if !from.contains("UDP_PORT") && !from.contains("--udp-port") =>
        {
            let embedded = cfg.get("rtc").map(|(_, at)| at).unwrap_or_default();
            findings.push(
                Finding::error(
                    RULE,
                    cfg.object.index,
                    cfg.path.clone(),
                    range_message(a, b, from),
                )
                .embedded(embedded)
                .hint(format!(
                    "set rtc.udp_port: {} (UDP mux) and expose it on the RTC Service",
                    s.udp_port
                )),
            );
            true
        }
        _ => false,
    };

    for (svc_obj, svc) in services {
        let i = svc_obj.index;
        let spec = svc.spec.clone().unwrap_or_default();
        let list = spec.ports.clone().unwrap_or_default();
        let ports_at = if spec.ports.is_some() {
            "/spec/ports"
        } else {
            "/spec"
        };
        let name = svc_obj.name();

        match &ports.udp {
            Udp::Port(udp) => {
                check_forward(findings, i, name, ports_at, &list, *udp, "UDP", is_udp)
            }
            Udp::Range(a, b, from) if !range_in_config => {
                findings.push(Finding::error(RULE, i, ports_at, range_message(a, b, from)));
            }
            Udp::Range(..) => {}
        }
        if ports.tcp != 0 {
            check_forward(findings, i, name, ports_at, &list, ports.tcp, "TCP", is_tcp);
        }
        for (n, p) in list.iter().enumerate() {
            let signal = s.signal_port as i32;
            if p.port == signal || target_port(p) == Some(signal) {
                findings.push(
                    Finding::error(RULE, i, format!("/spec/ports/{n}"), format!("Service {name} exposes signaling port {signal} on the public media LoadBalancer; signaling belongs to the ClusterIP Service behind the wss Ingress"))
                        .hint("remove this port; keep 7880 on the ClusterIP Service"),
                );
            }
        }
        match spec.external_traffic_policy.as_deref() {
            Some("Local") => {}
            Some(other) => findings.push(
                Finding::error(RULE, i, "/spec/externalTrafficPolicy", format!("Service {name} has externalTrafficPolicy: {other}: the client's address is SNATed and traffic lands on nodes without a livekit pod"))
                    .hint("set externalTrafficPolicy: Local"),
            ),
            None => findings.push(
                Finding::error(RULE, i, "/spec", format!("Service {name} has no externalTrafficPolicy (defaults to Cluster): the client's address is SNATed and traffic lands on nodes without a livekit pod"))
                    .hint("set externalTrafficPolicy: Local"),
            ),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn check_forward(
    findings: &mut Vec<Finding>,
    index: u32,
    name: &str,
    ports_at: &str,
    list: &[ServicePort],
    port: u32,
    proto: &str,
    is_proto: fn(&ServicePort) -> bool,
) {
    let port = port as i32;
    match list.iter().enumerate().find(|(_, p)| is_proto(p) && p.port == port) {
        None => findings.push(
            Finding::error(RULE, index, ports_at, format!("Service {name} does not expose {proto} {port}, where livekit-server listens for media"))
                .hint(format!("add a port: {{name: rtc-{}, port: {port}, protocol: {proto}}}", proto.to_lowercase())),
        ),
        Some((n, p)) => {
            if let Some(t) = target_port(p).filter(|t| *t != port) {
                findings.push(Finding::error(
                    RULE,
                    index,
                    format!("/spec/ports/{n}/targetPort"),
                    format!("Service {name} forwards {proto} {port} to container port {t}; livekit-server advertises {port} and listens there"),
                ));
            }
        }
    }
}

fn describe_udp(udp: &Udp) -> String {
    match udp {
        Udp::Port(p) => p.to_string(),
        Udp::Range(a, b, _) => format!("{a}-{b}"),
    }
}

lkguard_policy_sdk::export_policy!(RtcService);

#[cfg(test)]
mod tests {
    use super::*;
    use lkguard_policy_sdk::testkit::render;

    fn yaml(config: &str, svc_spec: &str) -> String {
        let config: String = config.lines().map(|l| format!("    {l}\n")).collect();
        format!(
            r#"apiVersion: v1
kind: ConfigMap
metadata: {{name: livekit-config}}
data:
  livekit.yaml: |
{config}---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: livekit}}
spec:
  template:
    metadata: {{labels: {{app: livekit}}}}
    spec:
      containers:
        - name: livekit
          image: livekit/livekit-server:v1.9.1
          args: ["--config", "/etc/livekit/livekit.yaml"]
          volumeMounts: [{{name: c, mountPath: /etc/livekit}}]
      volumes: [{{name: c, configMap: {{name: livekit-config}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: livekit-rtc}}
spec:
  type: LoadBalancer
  selector: {{app: livekit}}
{svc_spec}
"#
        )
    }

    const GOOD_CFG: &str = "rtc:\n  udp_port: 7882\n  tcp_port: 7881\n  use_external_ip: false";
    const GOOD_SVC: &str = "  externalTrafficPolicy: Local\n  ports:\n    - {name: rtc-udp, port: 7882, protocol: UDP}\n    - {name: rtc-tcp, port: 7881, protocol: TCP}";

    fn run(y: &str) -> Vec<Finding> {
        RtcService::validate(&render(y), "{}").unwrap()
    }

    #[test]
    fn good_service_passes() {
        assert_eq!(run(&yaml(GOOD_CFG, GOOD_SVC)), vec![]);
    }

    #[test]
    fn each_mistake_points_at_its_field() {
        let f = run(&yaml(GOOD_CFG, &GOOD_SVC.replace("Local", "Cluster")));
        assert_eq!(
            f.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["/spec/externalTrafficPolicy"]
        );
        let f = run(&yaml(
            GOOD_CFG,
            &GOOD_SVC.replace("port: 7882, protocol: UDP", "port: 7882, protocol: TCP"),
        ));
        assert_eq!(
            f.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["/spec/ports"]
        );
        let f = run(&yaml(
            GOOD_CFG,
            &format!("{GOOD_SVC}\n    - {{name: http, port: 7880}}"),
        ));
        assert_eq!(
            f.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["/spec/ports/2"]
        );
    }

    #[test]
    fn ports_follow_the_config() {
        let cfg = "rtc:\n  udp_port: 3478\n  tcp_port: 7881";
        let f = run(&yaml(cfg, GOOD_SVC));
        assert_eq!(f.len(), 1);
        assert!(f[0].message.contains("UDP 3478"), "{}", f[0].message);
    }

    #[test]
    fn default_port_range_is_caught_at_the_config() {
        let f = run(&yaml("rtc:\n  tcp_port: 7881", GOOD_SVC));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, "/data/livekit.yaml");
        assert_eq!(f[0].embedded_path.as_deref(), Some("/rtc"));
        assert!(f[0].message.contains("50000-60000"));
    }

    #[test]
    fn udp_port_env_beats_the_config() {
        let y = yaml(GOOD_CFG, GOOD_SVC).replace(
            "          args:",
            "          env: [{name: UDP_PORT, value: \"50000-50100\"}]\n          args:",
        );
        let f = run(&y);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].resource, f[0].path.as_str()), (2, "/spec/ports"));
        assert!(f[0].message.contains("UDP_PORT"));
    }

    #[test]
    fn dev_mode_defaults_to_7882() {
        let y = yaml("rtc:\n  tcp_port: 7881", GOOD_SVC)
            .replace("[\"--config\"", "[\"--dev\", \"--config\"");
        assert_eq!(run(&y), vec![]);
    }

    #[test]
    fn target_port_must_match() {
        let svc = GOOD_SVC.replace(
            "port: 7882, protocol: UDP",
            "port: 7882, targetPort: 30000, protocol: UDP",
        );
        let f = run(&yaml(GOOD_CFG, &svc));
        assert_eq!(f[0].path, "/spec/ports/0/targetPort");
    }

    #[test]
    fn missing_service_is_reported_at_the_workload() {
        let y = yaml(GOOD_CFG, GOOD_SVC);
        let without: Vec<&str> = y.split("---\n").take(2).collect();
        let f = run(&without.join("---\n"));
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].resource, f[0].path.as_str()), (1, ""));
    }
}
