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
use lkguard_policy_sdk::effective::{Document, Effective, Raw, Setting, Source};
use lkguard_policy_sdk::goyaml;
use lkguard_policy_sdk::livekit::{LivekitContainer, Target};
use lkguard_policy_sdk::place::Place;
use lkguard_policy_sdk::settings::{
    self, Topology, DEFAULT_SIGNAL_PORT, DEFAULT_TCP_PORT, DEFAULT_UDP_PORT,
};
use lkguard_policy_sdk::workload::PodTemplate;
use lkguard_policy_sdk::{pointer, workload, Batch, Finding, Metadata, Object, Policy, RuleInfo};
use serde::Deserialize;

pub const RULE: &str = "livekit/rtc-service";

pub struct RtcService;

#[derive(Debug, Deserialize)]
struct Settings {
    #[serde(flatten)]
    target: Target,
    #[serde(default = "udp")]
    udp_port: u32,
    #[serde(default)]
    topology: Topology,
}

fn udp() -> u32 {
    DEFAULT_UDP_PORT.into()
}

/// The UDP ports livekit-server listens on for media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Udp {
    Port(u32),
    /// A port range: one socket per port, which a LoadBalancer cannot forward.
    Range(u32, u32),
}

/// What the server will listen on, and the place that decided it.
struct MediaPorts {
    udp: Udp,
    /// What set the UDP port(s), for messages.
    udp_from: String,
    /// Where it was set; `None` for a built-in default with no config to
    /// point into.
    udp_place: Option<Place>,
    tcp: u32,
    /// The env var or arg that moved each port off the config, if one did:
    /// a finding about that port belongs where the effective value is set.
    udp_set_by: Option<SetBy>,
    tcp_set_by: Option<SetBy>,
    /// A UDP port setting that a port range overrides: the help for the
    /// range must not tell the user to set what is already set.
    udp_ignored: Option<Setting>,
    /// False when the config the server runs with is not in the render (a
    /// Secret, a CSI volume) and no env var or arg sets the port: it may
    /// set any port, so none is judged.
    udp_known: bool,
    tcp_known: bool,
    /// The livekit container's named ports, for named targetPorts.
    container_ports: Vec<(String, i32)>,
}

/// An override's description and place.
type SetBy = (String, Place);

fn set_by(s: &Setting) -> Option<SetBy> {
    match (&s.source, &s.place) {
        (Source::Env(_) | Source::Arg(_), Some(place)) => Some((s.describe(), place.clone())),
        _ => None,
    }
}

/// Reads a port or `start-end` range as livekit's `PortRange.UnmarshalString` does.
fn port_text(text: &str) -> Option<Udp> {
    match text.split_once('-') {
        Some((a, b)) => Some(Udp::Range(a.trim().parse().ok()?, b.trim().parse().ok()?)),
        None => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|p| *p != 0)
            .map(Udp::Port),
    }
}

fn port_of(setting: &Setting) -> Option<u32> {
    match &setting.raw {
        Raw::Yaml(v) => goyaml::yaml_port(v),
        _ => setting.text()?.trim().parse().ok(),
    }
}

/// livekit-server's media ports, in its own precedence (v1.13.3
/// `cmd/server/main.go`, mediatransportutil `rtcconfig` and
/// `NewWebRTCConfig`): a `rtc.port_range_start` wins over any `udp_port`;
/// `--udp-port` / `UDP_PORT` beat the generated `LIVEKIT_RTC_UDP_PORT_*`
/// which beat the YAML; with neither a port nor a range, a server without
/// `--dev` listens on UDP 50000-60000, one with `--dev` on 7882.
fn media_ports(e: &Effective) -> MediaPorts {
    let range_start = e
        .get("rtc.port_range_start")
        .filter(|s| port_of(s).is_some_and(|p| p != 0));
    let udp_setting = e
        .named_override("rtc.udp_port")
        .filter(|s| s.text().and_then(|t| port_text(&t)).is_some())
        .or_else(|| e.generated_override("rtc.udp_port.start"))
        .or_else(|| e.from_document("rtc.udp_port"))
        .filter(|s| s.text().and_then(|t| port_text(&t)).is_some());
    let mut udp_set_by = None;
    let mut udp_ignored = None;
    let (udp, udp_from, udp_place) = if let Some(start) = range_start {
        udp_ignored = udp_setting;
        let a = port_of(&start).unwrap_or_default();
        let b = e
            .get("rtc.port_range_end")
            .and_then(|s| port_of(&s))
            .unwrap_or_default();
        (
            Udp::Range(a, b),
            format!("rtc.port_range_start from {}", start.describe()),
            start.place.clone(),
        )
    } else if let Some(s) = udp_setting.as_ref() {
        let mut udp = s.text().and_then(|t| port_text(&t)).unwrap_or(Udp::Port(0));
        if let (Udp::Port(p), Source::Env(_) | Source::Arg(_)) = (&udp, &s.source) {
            // LIVEKIT_RTC_UDP_PORT_END alongside _START makes a range.
            if let Some(end) = e
                .generated_override("rtc.udp_port.end")
                .and_then(|s| port_of(&s))
                .filter(|end| *end > *p)
            {
                udp = Udp::Range(*p, end);
            }
        }
        udp_set_by = set_by(s);
        (udp, s.describe(), s.place.clone())
    } else if e.dev() {
        (
            Udp::Port(DEFAULT_UDP_PORT.into()),
            "the --dev default".into(),
            None,
        )
    } else {
        let rtc = e.config().map(|cfg| {
            let at = cfg.get("rtc").map(|(_, at)| at).unwrap_or_default();
            Place::new(cfg.object.index, cfg.path.clone()).inside(at)
        });
        (
            Udp::Range(50000, 60000),
            "the built-in default without rtc.udp_port".into(),
            rtc,
        )
    };
    let tcp_setting = e.get("rtc.tcp_port");
    let tcp = tcp_setting
        .as_ref()
        .and_then(port_of)
        .unwrap_or(DEFAULT_TCP_PORT.into());
    let tcp_set_by = tcp_setting.as_ref().and_then(set_by);
    let hidden = e.document.hidden();
    let udp_known = !hidden || udp_set_by.is_some();
    let tcp_known = !hidden || tcp_set_by.is_some();
    let container_ports = e.server.container.named_ports();
    MediaPorts {
        udp,
        udp_from,
        udp_place,
        tcp,
        udp_set_by,
        tcp_set_by,
        udp_ignored,
        udp_known,
        tcp_known,
        container_ports,
    }
}

fn is_udp(p: &ServicePort) -> bool {
    p.protocol.as_deref() == Some("UDP")
}

fn is_tcp(p: &ServicePort) -> bool {
    matches!(p.protocol.as_deref(), None | Some("TCP"))
}

/// The container port a Service port forwards to; a named targetPort is
/// looked up in the livekit container's ports (`None`: it names none, and
/// the Service gets no endpoint for it).
fn target_port(p: &ServicePort, named: &[(String, i32)]) -> Option<i32> {
    match &p.target_port {
        None => Some(p.port),
        Some(IntOrString::Int(i)) => Some(*i),
        Some(IntOrString::String(n)) => named
            .iter()
            .find(|(name, _)| name == n)
            .map(|(_, port)| *port),
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
                    forward. A deployable render without the RTC Service has no media path at all. livekit-server v1.13.3 puts its own local port in ICE candidates: rtc.udp_port (or UDP_PORT / --udp-port, or LIVEKIT_RTC_UDP_PORT_START), rtc.tcp_port; rtc.port_range_start/end win over udp_port, and with neither a non-dev server listens on 50000-60000 (mediatransportutil RTCConfig.Validate, NewWebRTCConfig). So the Service's port must equal its targetPort and that port. Media split over a UDP and a TCP LoadBalancer Service is judged as one, and the two must pin one address (spec.loadBalancerIP, azure-load-balancer-ipv4, azure-pip-name, MetalLB allow-shared-ip): livekit-server advertises one address for both. Topology load-balancer: applies. host-network: only that the pod is on the node's network (hostNetwork: true or a hostPort), since media goes to the node's own address. turn-gateway (a TURN gateway such as STUNner relays to the pods' own addresses): only that clients are handed a relay, rtc.turn_servers or livekit-server's own turn.enabled."
                    .into(),
            }],
            settings_schema: settings::schema(serde_json::json!({
                "udp_port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 7882,
                    "description": "The UDP port the fix hints suggest when the server listens on a range."},
                "topology": settings::topology_schema()
            })),
        }
    }

    fn validate(batch: &Batch, settings: &str) -> Result<Vec<Finding>, String> {
        let s: Settings = settings::parse(settings)?;
        let objects = batch.objects();
        let templates = workload::pod_templates(&objects);
        let servers = s.target.find(&templates);
        // With hostNetwork (the Helm chart's design) media reaches each node
        // directly: there is no LoadBalancer Service to shape, but the pod
        // must really be on the node's network.
        match s.topology {
            Topology::HostNetwork => return Ok(servers.iter().filter_map(off_the_node).collect()),
            Topology::TurnGateway => {
                return Ok(servers
                    .iter()
                    .filter_map(|lk| no_relay(&objects, lk))
                    .collect())
            }
            Topology::LoadBalancer => {}
        }
        let mut findings = Vec::new();
        let mut seen_templates = Vec::new();
        for lk in &servers {
            let object = lk.template.object;
            if seen_templates.contains(&object.index) {
                continue;
            }
            seen_templates.push(object.index);
            let e = Effective::build(&objects, lk.clone());
            let ports = media_ports(&e);
            check_server(&e, &objects, &ports, &s, &mut findings);
        }
        findings.dedup();
        Ok(findings)
    }
}

/// Whether the effective config lists TURN servers for clients.
fn relays(e: &Effective) -> bool {
    e.get("rtc.turn_servers").is_some_and(
        |s| matches!(&s.raw, Raw::Yaml(v) if v.as_sequence().is_some_and(|l| !l.is_empty())),
    )
}

/// `topology: turn-gateway` declares that media reaches the pods only
/// through a TURN relay (a gateway such as STUNner, with its own public
/// address): the pods' own addresses are unreachable from browsers, so
/// clients must be handed the relay. livekit-server hands out what
/// `rtc.turn_servers` lists, and its own TURN server when `turn.enabled`.
/// With neither, ICE has no candidate a browser can reach.
fn no_relay(objects: &[Object], lk: &LivekitContainer) -> Option<Finding> {
    let object = lk.template.object;
    if !object.origin.deployable {
        return None;
    }
    let e = Effective::build(objects, lk.clone());
    let listed = relays(&e);
    let own = e
        .get("turn.enabled")
        .is_some_and(|s| s.bool() == Ok(Some(true)));
    if listed || own {
        return None;
    }
    let place = match (&e.document, e.config()) {
        (_, Some(cfg)) => e
            .from_document("rtc")
            .and_then(|s| s.place)
            .unwrap_or_else(|| Place::new(cfg.object.index, cfg.path.clone())),
        // No config at all: built-in defaults, which list no relay.
        (Document::None, None) => e.container_place(),
        // A config the render does not show (or cannot be read, which
        // use-external-ip reports) may list one.
        _ => return None,
    };
    Some(
        place
            .error(RULE, format!(
                "topology is turn-gateway, but container `{}` runs livekit-server with no rtc.turn_servers and without its own turn: server, so browsers are handed no relay and cannot reach the pods' own addresses",
                e.container_name()
            ))
            .hint("list the gateway under rtc.turn_servers (host, port, protocol, and its credentials from a Secret), as STUNner's LiveKit guide does"),
    )
}

/// `topology: host-network` declares that browsers send media to each
/// node's own address. A pod without `hostNetwork: true` and without a
/// `hostPort` listens in its own network namespace, which nothing on the
/// node's address forwards to: STUN finds the node's public IP, and media
/// sent there reaches no socket.
fn off_the_node(lk: &LivekitContainer) -> Option<Finding> {
    let object = lk.template.object;
    if !object.origin.deployable || lk.ports_on_node() {
        return None;
    }
    Some(
        Finding::error(RULE, object.index, format!("{}/hostNetwork", lk.template.spec_path), format!(
            "topology is host-network, but the pods of {} {} set neither hostNetwork: true nor a hostPort: livekit-server listens in the pod's own network, while with use_external_ip it advertises the node's public address, where nothing forwards media to the pod",
            object.kind(),
            object.name()
        ))
        .hint("set hostNetwork: true (and dnsPolicy: ClusterFirstWithHostNet) on the pod, or use topology: load-balancer with a livekit-rtc LoadBalancer Service"),
    )
}

/// The Services of one `type` in the server's render and namespace whose
/// selector picks its pods.
fn selecting<'o>(
    objects: &'o [Object],
    lk: &LivekitContainer,
    kind: &str,
) -> Vec<(&'o Object<'o>, Service)> {
    let object = lk.template.object;
    objects
        .iter()
        .filter(|o| o.is("", "Service") && o.origin == object.origin && o.same_namespace(object))
        .filter_map(|o| o.typed::<Service>().map(|svc| (o, svc)))
        .filter(|(_, svc)| {
            let spec = svc.spec.as_ref();
            let selector: BTreeMap<String, String> =
                spec.and_then(|s| s.selector.clone()).unwrap_or_default();
            spec.and_then(|s| s.type_.as_deref()) == Some(kind)
                && lk.template.selected_by(&selector)
        })
        .collect()
}

fn check_server(
    e: &Effective,
    objects: &[Object],
    ports: &MediaPorts,
    s: &Settings,
    findings: &mut Vec<Finding>,
) {
    let lk = &e.server;
    let object = lk.template.object;
    let signal = e
        .get("port")
        .and_then(|p| port_of(&p))
        .unwrap_or(DEFAULT_SIGNAL_PORT.into()) as i32;
    let services = selecting(objects, lk, "LoadBalancer");

    if services.is_empty() {
        if object.origin.deployable && object.origin.complete {
            findings.push(unselected(e, objects, ports));
        }
        return;
    }

    let range_message = |a: &u32, b: &u32| {
        format!("livekit-server listens on UDP {a}-{b} ({}), one port per socket, which the LoadBalancer does not forward; use one UDP port", ports.udp_from)
    };
    let range_at_source = match (&ports.udp, &ports.udp_place) {
        _ if !ports.udp_known => true,
        (Udp::Range(a, b), Some(place)) => {
            findings.push(range_at_config(
                place,
                range_message(a, b),
                ports.udp_ignored.as_ref(),
                s.udp_port,
            ));
            true
        }
        _ => false,
    };

    let lbs: Vec<Lb> = services
        .iter()
        .map(|(o, svc)| {
            let spec = svc.spec.clone().unwrap_or_default();
            Lb {
                index: o.index,
                name: o.name(),
                ports_at: if spec.ports.is_some() {
                    "/spec/ports"
                } else {
                    "/spec"
                },
                list: spec.ports.clone().unwrap_or_default(),
                address: shared_address(svc),
                policy: spec.external_traffic_policy,
            }
        })
        .collect();

    // Media may be split over several LoadBalancer Services (one UDP, one
    // TCP): each port is judged against all of them together.
    let mut udp_carriers = Vec::new();
    match &ports.udp {
        _ if !ports.udp_known => {}
        Udp::Port(udp) => {
            udp_carriers = check_forward(
                findings,
                &lbs,
                (*udp, "UDP", is_udp),
                &[ports.tcp as i32, signal],
                ports.udp_set_by.as_ref(),
                &ports.container_ports,
            )
        }
        Udp::Range(a, b) if !range_at_source => {
            for lb in &lbs {
                findings.push(Finding::error(
                    RULE,
                    lb.index,
                    lb.ports_at,
                    range_message(a, b),
                ));
            }
        }
        Udp::Range(..) => {}
    }
    let mut tcp_carriers = Vec::new();
    if ports.tcp != 0 && ports.tcp_known {
        let mut judged = vec![signal];
        if let Udp::Port(udp) = ports.udp {
            judged.push(udp as i32);
        }
        tcp_carriers = check_forward(
            findings,
            &lbs,
            (ports.tcp, "TCP", is_tcp),
            &judged,
            ports.tcp_set_by.as_ref(),
            &ports.container_ports,
        );
    }
    check_one_address(&lbs, &udp_carriers, &tcp_carriers, findings);

    for lb in &lbs {
        let (i, name) = (lb.index, lb.name);
        for (n, p) in lb.list.iter().enumerate() {
            if p.port == signal || target_port(p, &ports.container_ports) == Some(signal) {
                findings.push(
                    Finding::error(RULE, i, format!("/spec/ports/{n}"), format!("Service {name} exposes signaling port {signal} on the public media LoadBalancer; signaling belongs to the ClusterIP Service behind the wss Ingress"))
                        .hint("remove this port; keep 7880 on the ClusterIP Service"),
                );
            }
        }
        match lb.policy.as_deref() {
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

/// No LoadBalancer Service selects the livekit-server pods. A finding on
/// the whole workload lands on line 1 of whatever file the host maps it
/// to, so it names the Service whose selector is one typo off, if there
/// is one, and otherwise the labels a Service would have to select.
fn unselected(e: &Effective, objects: &[Object], ports: &MediaPorts) -> Finding {
    let lk = &e.server;
    let object = lk.template.object;
    let media = format!(
        "media (UDP {}, TCP {})",
        describe_udp(&ports.udp),
        ports.tcp
    );
    if let Some(f) = mistyped_selector(objects, lk, ports, &media) {
        return f;
    }
    let base = format!(
        "no LoadBalancer Service selects the pods of {} {}, so {media}",
        object.kind(),
        object.name(),
    );
    // A NodePort Service (or hostNetwork, the livekit Helm chart's default)
    // puts media on node addresses, which on AKS are private and change
    // with every node.
    let node_port = selecting(objects, lk, "NodePort").into_iter().next();
    let message = if let Some((o, _)) = node_port {
        format!("{base} reaches them only through NodePort Service {} on each node's own address, which is not one pinned public IP that NODE_IP can name", o.name())
    } else if lk.template.spec.host_network == Some(true) {
        format!("{base} reaches them only at the node's own address (hostNetwork), which is not a pinned public IP")
    } else {
        format!("{base} has no way in")
    };
    Finding::error(RULE, object.index, labels_at(lk.template), message).hint(if relays(e) {
        "this config lists rtc.turn_servers: if a TURN gateway (STUNner) relays media to the pods, declare topology: turn-gateway in lkguard.yaml; otherwise add the livekit-rtc Service: type LoadBalancer, UDP 7882 + TCP 7881, externalTrafficPolicy: Local"
    } else {
        "add the livekit-rtc Service: type LoadBalancer, UDP 7882 + TCP 7881, externalTrafficPolicy: Local"
    })
}

/// Where a pod template's labels are, or the nearest thing that exists:
/// what a Service has to select.
fn labels_at(t: &PodTemplate) -> String {
    // A Pod's template is the object itself, whose metadata always exists.
    let template = t.spec_path.strip_suffix("/spec").unwrap_or_default();
    let value = t.object.value();
    let labels = format!("{template}/metadata/labels");
    let metadata = format!("{template}/metadata");
    if value.pointer(&labels).is_some() {
        labels
    } else if value.pointer(&metadata).is_some() {
        metadata
    } else if !template.is_empty() {
        template.to_string()
    } else {
        t.spec_path.clone()
    }
}

/// `a=1, b=2`, for messages.
fn label_text(labels: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(", ")
}

/// A LoadBalancer Service in the server's render and namespace that looks
/// like the media Service (a UDP port, or a media port) but whose selector
/// picks no pod template at all: a typo in the selector, reported at the
/// selector entry that differs from the livekit-server pods' labels.
fn mistyped_selector(
    objects: &[Object],
    lk: &LivekitContainer,
    ports: &MediaPorts,
    media: &str,
) -> Option<Finding> {
    let object = lk.template.object;
    let templates = workload::pod_templates(objects);
    let media_port = |p: &ServicePort| {
        let port = u32::try_from(p.port).unwrap_or_default();
        is_udp(p) || port == ports.tcp || ports.udp == Udp::Port(port)
    };
    let (svc_object, spec) = objects
        .iter()
        .filter(|o| o.is("", "Service") && o.origin == object.origin && o.same_namespace(object))
        .filter_map(|o| Some((o, o.typed::<Service>()?.spec?)))
        .find(|(o, spec)| {
            let selector = spec.selector.clone().unwrap_or_default();
            spec.type_.as_deref() == Some("LoadBalancer")
                && spec.ports.iter().flatten().any(media_port)
                && !templates.iter().any(|t| {
                    t.object.origin == o.origin
                        && t.object.same_namespace(o)
                        && t.selected_by(&selector)
                })
        })?;
    let name = svc_object.name();
    let pods = lk.template.labels;
    let workload = format!("{} {}", object.kind(), object.name());
    // The selector the pods would match: each key at the pods' value, the
    // keys they lack dropped, or all their labels when that leaves none.
    let mut fixed: BTreeMap<String, String> = spec
        .selector
        .iter()
        .flatten()
        .filter_map(|(k, _)| Some((k.clone(), pods.get(k)?.clone())))
        .collect();
    if fixed.is_empty() {
        fixed = pods.clone();
    }
    let hint = if fixed.is_empty() {
        format!("label the pod template of {workload} and set the selector to those labels")
    } else {
        let pairs: Vec<String> = fixed.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        format!(
            "set the selector to the pods' labels: {{{}}}",
            pairs.join(", ")
        )
    };
    let labelled = if pods.is_empty() {
        "carry no labels".to_string()
    } else {
        format!("are labelled {}", label_text(pods))
    };
    let selector = spec.selector.unwrap_or_default();
    let differs = selector.iter().find(|(k, v)| pods.get(*k) != Some(*v));
    let Some((key, value)) = differs else {
        let at = if spec_has_selector(svc_object) {
            "/spec/selector"
        } else {
            "/spec"
        };
        return Some(Finding::error(RULE, svc_object.index, at, format!(
            "Service {name} has no selector, so it selects no pod; the livekit-server pods of {workload} {labelled}, so {media} has no way in"
        )).hint(hint));
    };
    let carried = templates.iter().any(|t| {
        t.object.origin == svc_object.origin
            && t.object.same_namespace(svc_object)
            && t.labels.get(key) == Some(value)
    });
    let whose = if carried {
        "which the livekit-server pods lack"
    } else {
        "which no pod carries"
    };
    let theirs = match pods.get(key) {
        Some(v) => format!("are labelled {key}={v}"),
        None if pods.is_empty() => format!("have no label {key} (they carry no labels)"),
        None => format!("have no label {key} (theirs: {})", label_text(pods)),
    };
    Some(
        Finding::error(RULE, svc_object.index, pointer::push("/spec/selector", key), format!(
            "Service {name} selects {key}={value}, {whose}; the livekit-server pods of {workload} {theirs}, so {media} has no way in"
        ))
        .hint(hint),
    )
}

fn spec_has_selector(o: &Object) -> bool {
    o.value()
        .pointer("/spec/selector")
        .is_some_and(|v| !v.is_null())
}

/// The finding for a UDP port range, at the setting that made it. When
/// the range overrides a UDP port that is also set, the fix is to remove the
/// range, not to set the port again.
fn range_at_config(
    place: &Place,
    message: String,
    ignored: Option<&Setting>,
    suggested: u32,
) -> Finding {
    let Some(udp) = ignored else {
        return place.error(RULE, message).hint(format!(
            "set rtc.udp_port: {suggested} (UDP mux) and expose it on the RTC Service"
        ));
    };
    let value = udp.text().and_then(|t| port_text(&t));
    let shown = value.as_ref().map(describe_udp).unwrap_or_default();
    let message = format!(
        "{message}; {} also sets rtc.udp_port {shown}, which is ignored because the port range wins",
        udp.describe()
    );
    let hint = match value {
        Some(Udp::Port(p)) => format!(
            "remove rtc.port_range_start and rtc.port_range_end, so that the rtc.udp_port {p} already set applies (UDP mux), and expose it on the RTC Service"
        ),
        _ => format!(
            "remove rtc.port_range_start and rtc.port_range_end, and set rtc.udp_port to one port ({suggested}, UDP mux) instead of {shown}; expose it on the RTC Service"
        ),
    };
    place.error(RULE, message).hint(hint)
}

/// A LoadBalancer Service that selects the livekit-server pods.
struct Lb<'o> {
    index: u32,
    name: &'o str,
    /// Where a missing port is reported.
    ports_at: &'static str,
    list: Vec<ServicePort>,
    /// What makes this Service share its address with another, if anything.
    address: Vec<(&'static str, String)>,
    policy: Option<String>,
}

/// Annotations by which two LoadBalancer Services get one address: the
/// address itself (Azure, MetalLB, `spec.loadBalancerIP`), an Azure public
/// IP resource by name, or a MetalLB sharing key.
const SHARED_ADDRESS: [&str; 6] = [
    "service.beta.kubernetes.io/azure-load-balancer-ipv4",
    "service.beta.kubernetes.io/azure-pip-name",
    "metallb.universe.tf/loadBalancerIPs",
    "metallb.io/loadBalancerIPs",
    "metallb.universe.tf/allow-shared-ip",
    "metallb.io/allow-shared-ip",
];

fn shared_address(svc: &Service) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(a) = &svc.metadata.annotations {
        for key in SHARED_ADDRESS {
            if let Some(v) = a.get(key).filter(|v| !v.trim().is_empty()) {
                // An address pinned either way is the same address.
                let kind = if key.ends_with("ipv4") || key.ends_with("loadBalancerIPs") {
                    "ip"
                } else {
                    key
                };
                out.push((kind, v.trim().to_string()));
            }
        }
    }
    if let Some(ip) = svc
        .spec
        .as_ref()
        .and_then(|s| s.load_balancer_ip.as_deref())
        .filter(|ip| !ip.trim().is_empty())
    {
        out.push(("ip", ip.trim().to_string()));
    }
    out
}

/// livekit-server advertises one address (NODE_IP) for UDP and TCP alike.
/// When no Service carries both, the UDP and TCP Services must be pinned
/// to one address, or ICE over TCP goes to an address with no TCP listener.
fn check_one_address(
    lbs: &[Lb],
    udp: &[(usize, usize)],
    tcp: &[(usize, usize)],
    findings: &mut Vec<Finding>,
) {
    if udp.is_empty() || tcp.is_empty() || udp.iter().any(|(u, _)| tcp.iter().any(|(t, _)| t == u))
    {
        return;
    }
    let shares = udp.iter().any(|(u, _)| {
        tcp.iter()
            .any(|(t, _)| lbs[*u].address.iter().any(|a| lbs[*t].address.contains(a)))
    });
    if shares {
        return;
    }
    let (u, t) = (&lbs[udp[0].0], &lbs[tcp[0].0]);
    findings.push(
        Finding::error(RULE, t.index, format!("/spec/ports/{}", tcp[0].1), format!(
            "Service {} carries the TCP media port and Service {} the UDP one: two LoadBalancer Services get two addresses unless both pin the same one, and livekit-server advertises one address for both, so ICE over TCP (the fallback where UDP is blocked) reaches no listener",
            t.name, u.name
        ))
        .hint("put UDP and TCP on one mixed-protocol LoadBalancer Service, or pin both Services to the same IP (spec.loadBalancerIP, azure-load-balancer-ipv4, azure-pip-name or MetalLB allow-shared-ip)"),
    );
}

/// ICE candidates carry livekit-server's own port, so a Service must
/// forward `port` to the same container port. When an env var or arg moved
/// the port off the config, the finding points there: that is the place
/// that set the value the Services no longer match. `judged` are the port
/// numbers other checks own (the other media port, signaling): a port
/// there is not a near miss of this one. Returns the Services (index into
/// `lbs`) and port entries that carry the port.
fn check_forward(
    findings: &mut Vec<Finding>,
    lbs: &[Lb],
    (port, proto, is_proto): (u32, &str, fn(&ServicePort) -> bool),
    judged: &[i32],
    set_by: Option<&SetBy>,
    named: &[(String, i32)],
) -> Vec<(usize, usize)> {
    let port = port as i32;
    let at = |index: u32, pointer: String, message: String| match set_by {
        Some((what, place)) => place.error(
            RULE,
            format!("{what} sets livekit-server's {proto} port to {port}, but {message}"),
        ),
        None => Finding::error(RULE, index, pointer, message),
    };
    let carrying: Vec<(usize, usize)> = lbs
        .iter()
        .enumerate()
        .flat_map(|(l, lb)| {
            lb.list
                .iter()
                .enumerate()
                .filter(|(_, p)| is_proto(p) && p.port == port)
                .map(move |(n, _)| (l, n))
        })
        .collect();
    if carrying.is_empty() {
        let Some(first) = lbs.first() else {
            return carrying;
        };
        let exposed: Vec<(usize, usize)> = lbs
            .iter()
            .enumerate()
            .flat_map(|(l, lb)| {
                lb.list
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| is_proto(p))
                    .map(move |(n, _)| (l, n))
            })
            .collect();
        let near: Vec<&(usize, usize)> = exposed
            .iter()
            .filter(|(l, n)| {
                let p = &lbs[*l].list[*n];
                !judged.contains(&p.port)
                    && !target_port(p, named).is_some_and(|t| judged.contains(&t))
            })
            .collect();
        // One port of the protocol under another number is this port
        // renumbered (a JSON6902 `replace` of `/spec/ports/0/port` does
        // that): its own entry is what to change. An override that moved
        // the server's port is reported where it is set, as below.
        if let ([&(l, n)], None) = (near.as_slice(), set_by) {
            let (lb, p) = (&lbs[l], &lbs[l].list[n]);
            findings.push(
                Finding::error(
                    RULE,
                    lb.index,
                    format!("/spec/ports/{n}/port"),
                    format!(
                        "Service {} exposes {proto} {}, not {port} where livekit-server listens for media",
                        lb.name, p.port
                    ),
                )
                .hint(format!("set port (and targetPort) to {port}")),
            );
            return carrying;
        }
        let mut numbers: Vec<String> = Vec::new();
        for &(l, n) in &exposed {
            let number = lbs[l].list[n].port.to_string();
            if !numbers.contains(&number) {
                numbers.push(number);
            }
        }
        let verb = if lbs.len() == 1 {
            "it exposes"
        } else {
            "they expose"
        };
        let shown = match numbers.split_last() {
            None => format!("{verb} no {proto} port"),
            Some((last, [])) => format!("{verb} {proto} {last}"),
            Some((last, rest)) => format!("{verb} {proto} {} and {last}", rest.join(", ")),
        };
        let message = if lbs.len() == 1 {
            format!(
                "Service {} does not expose {proto} {port}, where livekit-server listens for media ({shown})",
                first.name
            )
        } else {
            let names: Vec<&str> = lbs.iter().map(|lb| lb.name).collect();
            format!("none of the LoadBalancer Services selecting the livekit-server pods ({}) exposes {proto} {port}, where livekit-server listens for media ({shown})", names.join(", "))
        };
        findings.push(
            at(first.index, first.ports_at.to_string(), message).hint(format!(
                "add a port: {{name: rtc-{}, port: {port}, protocol: {proto}}}",
                proto.to_lowercase()
            )),
        );
    }
    for &(l, n) in &carrying {
        let (lb, p) = (&lbs[l], &lbs[l].list[n]);
        let (index, name) = (lb.index, lb.name);
        match target_port(p, named) {
            Some(t) if t != port => findings.push(at(
                index,
                format!("/spec/ports/{n}/targetPort"),
                format!("Service {name} forwards {proto} {port} to container port {t}; livekit-server advertises {port} in its ICE candidates and listens there"),
            )),
            Some(_) => {}
            None => findings.push(Finding::error(
                RULE,
                index,
                format!("/spec/ports/{n}/targetPort"),
                format!("Service {name} forwards {proto} {port} to a named targetPort that no port of the livekit container carries, so the port gets no endpoint"),
            )),
        }
    }
    carrying
}

fn describe_udp(udp: &Udp) -> String {
    match udp {
        Udp::Port(p) => p.to_string(),
        Udp::Range(a, b) => format!("{a}-{b}"),
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
        assert_eq!(
            (f[0].resource, f[0].path.as_str()),
            (2, "/spec/ports/0/port")
        );
        assert_eq!(
            f[0].message,
            "Service livekit-rtc exposes UDP 7882, not 3478 where livekit-server listens for media"
        );
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
        // At the env entry that set the range, not at the Service.
        assert_eq!(
            (f[0].resource, f[0].path.as_str()),
            (1, "/spec/template/spec/containers/0/env/0/value")
        );
        assert!(f[0].message.contains("UDP_PORT"));
    }

    #[test]
    fn a_config_the_render_does_not_show_leaves_its_ports_unjudged() {
        // LIVEKIT_CONFIG from a Secret: the document may set any port.
        let y = yaml(GOOD_CFG, &GOOD_SVC.replace("port: 7881", "port: 7999")).replace(
            "          args:",
            "          env: [{name: LIVEKIT_CONFIG, valueFrom: {secretKeyRef: {name: lk, key: config.yaml}}}]\n          args:",
        );
        assert_eq!(run(&y), vec![]);
        // An env var still sets what it sets.
        let y = y.replace(
            "          env: [",
            "          env: [{name: UDP_PORT, value: '3478'}, ",
        );
        let f = run(&y);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("UDP 3478"), "{}", f[0].message);
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
        assert_eq!(
            (f[0].resource, f[0].path.as_str()),
            (1, "/spec/template/metadata/labels")
        );
        assert!(f[0].message.ends_with("has no way in"), "{}", f[0].message);
        // A NodePort Service carries media, but on node addresses.
        let f = run(&y.replace("type: LoadBalancer", "type: NodePort"));
        assert_eq!(f.len(), 1);
        assert!(
            f[0].message
                .contains("only through NodePort Service livekit-rtc"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn a_port_range_wins_over_udp_port() {
        let cfg = "rtc:\n  udp_port: 7882\n  port_range_start: 50000\n  port_range_end: 50100\n  tcp_port: 7881";
        let f = run(&yaml(cfg, GOOD_SVC));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].embedded_path.as_deref(), Some("/rtc/port_range_start"));
        assert!(f[0].message.contains("50000-50100"), "{}", f[0].message);
    }

    #[test]
    fn generated_env_and_udp_port_flag_count() {
        let y = yaml(GOOD_CFG, GOOD_SVC).replace(
            "          args:",
            "          env: [{name: LIVEKIT_RTC_TCP_PORT, value: \"7999\"}]\n          args:",
        );
        let f = run(&y);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("TCP 7999"), "{}", f[0].message);
        // At the override that moved the port, not at the Service.
        assert_eq!(
            (f[0].resource, f[0].path.as_str()),
            (1, "/spec/template/spec/containers/0/env/0/value")
        );
        let y = yaml(GOOD_CFG, GOOD_SVC)
            .replace("[\"--config\"", "[\"--udp-port\", \"3478\", \"--config\"");
        let f = run(&y);
        assert!(f[0].message.contains("UDP 3478"), "{}", f[0].message);
        assert_eq!(
            (f[0].resource, f[0].path.as_str()),
            (1, "/spec/template/spec/containers/0/args/1")
        );
        // Set in the config, the Service is what is reported.
        let f = run(&yaml(
            GOOD_CFG,
            &GOOD_SVC.replace("port: 7881", "port: 7999"),
        ));
        assert_eq!(
            (f[0].resource, f[0].path.as_str()),
            (2, "/spec/ports/1/port")
        );
    }

    #[test]
    fn named_target_ports_resolve_through_the_container() {
        let with_ports = |svc: &str| {
            yaml(GOOD_CFG, svc).replace(
                "          volumeMounts:",
                "          ports: [{name: rtc-udp, containerPort: 7882, protocol: UDP}, {name: rtc-tcp, containerPort: 7881}]\n          volumeMounts:",
            )
        };
        let named = GOOD_SVC
            .replace(
                "port: 7882, protocol: UDP",
                "port: 7882, targetPort: rtc-udp, protocol: UDP",
            )
            .replace(
                "port: 7881, protocol: TCP",
                "port: 7881, targetPort: rtc-tcp, protocol: TCP",
            );
        assert_eq!(run(&with_ports(&named)), vec![]);
        let f = run(&with_ports(
            &named.replace("targetPort: rtc-udp", "targetPort: media"),
        ));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].path, "/spec/ports/0/targetPort");
    }

    #[test]
    fn signaling_is_the_effective_port() {
        let cfg = "port: 8080\nrtc:\n  udp_port: 7882\n  tcp_port: 7881";
        let f = run(&yaml(
            cfg,
            &format!("{GOOD_SVC}\n    - {{name: http, port: 8080}}"),
        ));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].message.contains("signaling port 8080"),
            "{}",
            f[0].message
        );
        // 7880 is not signaling for this server.
        assert_eq!(
            run(&yaml(
                cfg,
                &format!("{GOOD_SVC}\n    - {{name: x, port: 7880}}")
            )),
            vec![]
        );
    }

    #[test]
    fn a_mistyped_selector_is_reported_at_its_entry() {
        let y = yaml(GOOD_CFG, GOOD_SVC).replace(
            "  selector: {app: livekit}",
            "  selector: {app: livekit-servr}",
        );
        let f = run(&y);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].resource, f[0].path.as_str()),
            (2, "/spec/selector/app")
        );
        assert_eq!(
            f[0].message,
            "Service livekit-rtc selects app=livekit-servr, which no pod carries; the livekit-server pods of Deployment livekit are labelled app=livekit, so media (UDP 7882, TCP 7881) has no way in"
        );
        assert_eq!(
            f[0].hint.as_deref(),
            Some("set the selector to the pods' labels: {app: livekit}")
        );
        // The first entry that differs, its key escaped as a pointer token;
        // a key the pods do not carry at all counts as differing.
        let y = yaml(GOOD_CFG, GOOD_SVC)
            .replace(
                "labels: {app: livekit}",
                "labels: {app: livekit, app.kubernetes.io/name: livekit}",
            )
            .replace(
                "  selector: {app: livekit}",
                "  selector: {app: livekit, app.kubernetes.io/name: livekit-servr, x~y: z}",
            );
        let f = run(&y);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].path, "/spec/selector/app.kubernetes.io~1name");
        assert_eq!(
            f[0].hint.as_deref(),
            Some("set the selector to the pods' labels: {app: livekit, app.kubernetes.io/name: livekit}")
        );
        let y = yaml(GOOD_CFG, GOOD_SVC).replace(
            "  selector: {app: livekit}",
            "  selector: {app: livekit, x~y: z}",
        );
        let f = run(&y);
        assert_eq!(f[0].path, "/spec/selector/x~0y");
        assert_eq!(
            f[0].message,
            "Service livekit-rtc selects x~y=z, which no pod carries; the livekit-server pods of Deployment livekit have no label x~y (theirs: app=livekit), so media (UDP 7882, TCP 7881) has no way in"
        );
        // No selector at all: the Service's spec.
        let y = yaml(GOOD_CFG, GOOD_SVC).replace("  selector: {app: livekit}\n", "");
        let f = run(&y);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].resource, f[0].path.as_str()), (2, "/spec"));
        assert!(
            f[0].message
                .starts_with("Service livekit-rtc has no selector"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn only_a_media_service_selecting_nothing_is_a_near_miss() {
        // A LoadBalancer without a UDP or media port is someone else's.
        let y = yaml(GOOD_CFG, "  ports:\n    - {name: https, port: 443}")
            .replace("  selector: {app: livekit}", "  selector: {app: gateway}");
        let f = run(&y);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].resource, f[0].path.as_str()),
            (1, "/spec/template/metadata/labels")
        );
        assert!(f[0].message.ends_with("has no way in"), "{}", f[0].message);
        // A selector that picks other pods is no typo.
        let other = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: turn}\nspec:\n  template:\n    metadata: {labels: {app: turn}}\n    spec:\n      containers: [{name: turn, image: coturn/coturn}]\n";
        let y = yaml(GOOD_CFG, GOOD_SVC)
            .replace("  selector: {app: livekit}", "  selector: {app: turn}")
            + other;
        let f = run(&y);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].resource, f[0].path.as_str()),
            (1, "/spec/template/metadata/labels")
        );
    }

    #[test]
    fn without_labels_the_template_metadata_is_the_place() {
        let y = yaml(GOOD_CFG, GOOD_SVC);
        let without: Vec<&str> = y.split("---\n").take(2).collect();
        let y = without.join("---\n");
        let f = run(&y.replace(
            "metadata: {labels: {app: livekit}}",
            "metadata: {annotations: {a: b}}",
        ));
        assert_eq!(f[0].path, "/spec/template/metadata");
        let f = run(&y.replace("    metadata: {labels: {app: livekit}}\n", ""));
        assert_eq!(f[0].path, "/spec/template");
        // The NodePort message too is about the labels, not the workload.
        let f = run(&yaml(GOOD_CFG, GOOD_SVC).replace("type: LoadBalancer", "type: NodePort"));
        assert_eq!(
            (f[0].resource, f[0].path.as_str()),
            (1, "/spec/template/metadata/labels")
        );
    }

    #[test]
    fn a_lone_port_under_another_number_is_the_one_to_change() {
        // What a JSON6902 `replace /spec/ports/0/port value: 443` leaves.
        let f = run(&yaml(
            GOOD_CFG,
            &GOOD_SVC.replace("port: 7882", "port: 443"),
        ));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].resource, f[0].path.as_str()),
            (2, "/spec/ports/0/port")
        );
        assert_eq!(
            f[0].message,
            "Service livekit-rtc exposes UDP 443, not 7882 where livekit-server listens for media"
        );
        assert_eq!(
            f[0].hint.as_deref(),
            Some("set port (and targetPort) to 7882")
        );
        // Two candidates: the Service's ports, and what they are instead.
        let svc = format!("{GOOD_SVC}\n    - {{name: turn, port: 3478, protocol: UDP}}")
            .replace("port: 7882", "port: 443");
        let f = run(&yaml(GOOD_CFG, &svc));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].resource, f[0].path.as_str()), (2, "/spec/ports"));
        assert_eq!(
            f[0].message,
            "Service livekit-rtc does not expose UDP 7882, where livekit-server listens for media (it exposes UDP 443 and 3478)"
        );
        // The other media port and signaling are not candidates.
        for port in ["7881", "7880"] {
            let svc = GOOD_SVC.replace("port: 7882", &format!("port: {port}"));
            let f = run(&yaml(GOOD_CFG, &svc));
            let f: Vec<_> = f.iter().filter(|f| f.message.contains("7882")).collect();
            assert_eq!(f.len(), 1, "{f:?}");
            assert_eq!(f[0].path, "/spec/ports", "{port}");
            assert!(
                f[0].message.ends_with(&format!("(it exposes UDP {port})")),
                "{}",
                f[0].message
            );
        }
        let f = run(&yaml(
            GOOD_CFG,
            &GOOD_SVC.replace("protocol: UDP", "protocol: TCP"),
        ));
        assert!(
            f[0].message.ends_with("(it exposes no UDP port)"),
            "{}",
            f[0].message
        );
        // An env var that moved the port is still the place.
        let y = yaml(GOOD_CFG, GOOD_SVC).replace(
            "          args:",
            "          env: [{name: UDP_PORT, value: \"3478\"}]\n          args:",
        );
        let f = run(&y);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].resource, f[0].path.as_str()),
            (1, "/spec/template/spec/containers/0/env/0/value")
        );
        assert_eq!(
            f[0].message,
            "env UDP_PORT sets livekit-server's UDP port to 3478, but Service livekit-rtc does not expose UDP 3478, where livekit-server listens for media (it exposes UDP 7882)"
        );
    }

    #[test]
    fn a_range_over_a_set_udp_port_says_to_remove_the_range() {
        let cfg = "rtc:\n  udp_port: 7882\n  port_range_start: 50000\n  port_range_end: 50100\n  tcp_port: 7881";
        let f = run(&yaml(cfg, GOOD_SVC));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            f[0].message,
            "livekit-server listens on UDP 50000-50100 (rtc.port_range_start from the config file), one port per socket, which the LoadBalancer does not forward; use one UDP port; the config file also sets rtc.udp_port 7882, which is ignored because the port range wins"
        );
        assert_eq!(
            f[0].hint.as_deref(),
            Some("remove rtc.port_range_start and rtc.port_range_end, so that the rtc.udp_port 7882 already set applies (UDP mux), and expose it on the RTC Service")
        );
        // Without a udp_port, setting one is the fix.
        let f = run(&yaml(&cfg.replace("  udp_port: 7882\n", ""), GOOD_SVC));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            f[0].hint.as_deref(),
            Some("set rtc.udp_port: 7882 (UDP mux) and expose it on the RTC Service")
        );
        assert!(!f[0].message.contains("ignored"), "{}", f[0].message);
    }

    const UDP_SVC: &str = "  externalTrafficPolicy: Local\n  ports:\n    - {name: rtc-udp, port: 7882, protocol: UDP}";

    /// The fixture with a second LoadBalancer Service, `livekit-rtc-tcp`.
    fn split(udp_meta: &str, tcp_meta: &str) -> String {
        yaml(GOOD_CFG, UDP_SVC).replace("metadata: {name: livekit-rtc}", &format!("metadata: {{name: livekit-rtc{udp_meta}}}"))
            + &format!("---\napiVersion: v1\nkind: Service\nmetadata: {{name: livekit-rtc-tcp{tcp_meta}}}\nspec:\n  type: LoadBalancer\n  selector: {{app: livekit}}\n  externalTrafficPolicy: Local\n  ports:\n    - {{name: rtc-tcp, port: 7881, protocol: TCP}}\n")
    }

    #[test]
    fn split_udp_and_tcp_services_are_judged_together() {
        // Each port is on one of them: no "does not expose" on either. But
        // two Services get two addresses unless pinned to one.
        let f = run(&split("", ""));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].resource, f[0].path.as_str()), (3, "/spec/ports/0"));
        assert!(f[0].message.contains("one address"), "{}", f[0].message);
        for pin in [
            ", annotations: {service.beta.kubernetes.io/azure-load-balancer-ipv4: 20.61.14.7}",
            ", annotations: {metallb.universe.tf/allow-shared-ip: livekit}",
        ] {
            assert_eq!(run(&split(pin, pin)), vec![], "{pin}");
        }
        // An annotation on one and spec.loadBalancerIP on the other: one IP.
        let y = split(", annotations: {service.beta.kubernetes.io/azure-load-balancer-ipv4: 20.61.14.7}", "")
            .replace("  type: LoadBalancer\n  selector: {app: livekit}\n  externalTrafficPolicy: Local\n  ports:\n    - {name: rtc-tcp", "  type: LoadBalancer\n  loadBalancerIP: 20.61.14.7\n  selector: {app: livekit}\n  externalTrafficPolicy: Local\n  ports:\n    - {name: rtc-tcp");
        assert_eq!(run(&y), vec![]);
        // A port on neither, and no one port it could be: one finding
        // naming both, and what they expose instead.
        let y = split("", "").replace(
            "    - {name: rtc-tcp, port: 7881, protocol: TCP}",
            "    - {name: rtc-tcp, port: 7999, protocol: TCP}\n    - {name: alt, port: 8443, protocol: TCP}",
        );
        let f = run(&y);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].resource, f[0].path.as_str()), (2, "/spec/ports"));
        assert_eq!(
            f[0].message,
            "none of the LoadBalancer Services selecting the livekit-server pods (livekit-rtc, livekit-rtc-tcp) exposes TCP 7881, where livekit-server listens for media (they expose TCP 7999 and 8443)"
        );
        // One TCP port under another number, on either Service: that one.
        let y = split("", "").replace("port: 7881, protocol: TCP", "port: 7999, protocol: TCP");
        let f = run(&y);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].resource, f[0].path.as_str()),
            (3, "/spec/ports/0/port")
        );
        assert_eq!(
            f[0].message,
            "Service livekit-rtc-tcp exposes TCP 7999, not 7881 where livekit-server listens for media"
        );
    }

    #[test]
    fn host_network_topology_needs_the_pod_on_the_node() {
        let host =
            |y: &str| RtcService::validate(&render(y), r#"{"topology": "host-network"}"#).unwrap();
        let y = yaml(GOOD_CFG, GOOD_SVC);
        let f = host(&y);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].resource, f[0].path.as_str()),
            (1, "/spec/template/spec/hostNetwork")
        );
        let on_node = y.replace(
            "    spec:\n      containers:",
            "    spec:\n      hostNetwork: true\n      containers:",
        );
        assert_eq!(host(&on_node), vec![]);
        let host_port = y.replace(
            "          volumeMounts:",
            "          ports: [{containerPort: 7882, hostPort: 7882, protocol: UDP}]\n          volumeMounts:",
        );
        assert_eq!(host(&host_port), vec![]);
    }

    #[test]
    fn turn_gateway_topology_needs_a_relay_for_clients() {
        let gw =
            |y: &str| RtcService::validate(&render(y), r#"{"topology": "turn-gateway"}"#).unwrap();
        // No media LoadBalancer, a port range: fine behind a relay.
        let y = yaml(
            "rtc:\n  port_range_start: 50000\n  port_range_end: 60000\n  use_external_ip: false",
            GOOD_SVC,
        );
        let without_svc: Vec<&str> = y.split("---\n").take(2).collect();
        let f = gw(&without_svc.join("---\n"));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].path.as_str(), f[0].embedded_path.as_deref()),
            ("/data/livekit.yaml", Some("/rtc"))
        );
        assert!(f[0].message.contains("turn_servers"), "{}", f[0].message);
        let relay = y.replace(
            "      use_external_ip: false\n",
            "      use_external_ip: false\n      turn_servers:\n        - {host: turn.example.com, port: 3478, protocol: udp}\n",
        );
        assert_eq!(gw(&relay), vec![]);
        // livekit-server's own TURN server is a relay too.
        let own = y.replace(
            "      use_external_ip: false\n",
            "      use_external_ip: false\n    turn:\n      enabled: true\n      udp_port: 3478\n",
        );
        assert_eq!(gw(&own), vec![]);
    }
}
