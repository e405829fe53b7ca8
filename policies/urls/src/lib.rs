//! `livekit/urls`: the URLs clients are given lead to livekit-server's
//! signaling port.
//!
//! Two kinds of clients talk to livekit-server, and both start with a URL
//! from their environment:
//!
//! - in-cluster services (a backend creating rooms and tokens through the
//!   server SDKs' RoomService, an agent worker joining rooms) use a
//!   cluster-internal URL such as `ws://livekit.memql.svc.cluster.local:7880`.
//!   It must name a Service that selects the livekit-server pods and forwards
//!   the URL's port to the port livekit-server serves signaling and its
//!   Twirp API on (`port`, 7880 by default). A URL that lands on the media
//!   port 7881 (ICE-TCP) or on a Service of another workload connects to
//!   something that does not speak LiveKit's API: room creation fails,
//!   agents never join, and nothing in the render looks wrong;
//! - browsers get a public URL (handed out by the backend with the token).
//!   livekit-client opens a WebSocket to it; a page served over https may
//!   only open `wss://`, so the URL must be `wss://` and its host must be
//!   terminated with TLS by an Ingress routing to the same signaling Service.
//!
//! Everything is judged within one deployable render. A Service or Ingress
//! the render does not hold may live elsewhere, so a missing one is only
//! reported where the render shows the namespace it should be in.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use lkguard_policy_sdk::effective::{Effective, Raw, Setting};
use lkguard_policy_sdk::env::{self, EnvEntry};
use lkguard_policy_sdk::livekit::Target;
use lkguard_policy_sdk::settings::{self, DEFAULT_UDP_PORT};
use lkguard_policy_sdk::workload::{self, PodTemplate};
use lkguard_policy_sdk::{goyaml, Batch, Finding, Metadata, Object, Policy, RuleInfo};
use serde::Deserialize;
use serde_json::Value;

pub const RULE: &str = "livekit/urls";

pub struct Urls;

/// Env names that carry an in-cluster LiveKit URL, unless the user says otherwise.
pub const DEFAULT_URL_ENV: &[&str] = &["LIVEKIT_URL", "POLYPHON_LIVEKIT_URL", "LIVEKIT_WS_URL"];

/// Env names that carry the URL browsers connect to.
pub const DEFAULT_PUBLIC_URL_ENV: &[&str] = &["LIVEKIT_PUBLIC_URL", "POLYPHON_LIVEKIT_PUBLIC_URL"];

/// The path livekit-client opens its signaling WebSocket on (`createRtcUrl`
/// appends `rtc` to the URL's path): what an Ingress must route.
const SIGNAL_PATH: &str = "/rtc";

#[derive(Debug, Deserialize)]
struct Settings {
    #[serde(flatten)]
    target: Target,
    #[serde(default = "default_url_env")]
    url_env: Vec<String>,
    #[serde(default = "default_public_url_env")]
    public_url_env: Vec<String>,
}

fn default_url_env() -> Vec<String> {
    DEFAULT_URL_ENV.iter().map(|s| s.to_string()).collect()
}

fn default_public_url_env() -> Vec<String> {
    DEFAULT_PUBLIC_URL_ENV
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Who reads a URL env var, which decides what it must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlKind {
    /// A server-side client in the cluster (server SDK, agent worker).
    Internal,
    /// A browser, through the backend that hands the URL out.
    Public,
}

/// Which kind of LiveKit URL an env var holds, if any.
///
/// The configured lists win; beyond them, a name with LIVEKIT and PUBLIC
/// ending in `_URL` is public (`POLYPHON_LIVEKIT_PUBLIC_URL`, and Next.js'
/// browser-exposed `NEXT_PUBLIC_LIVEKIT_URL`), and any other name ending in
/// `LIVEKIT_URL` is in-cluster, so a prefixed copy of the usual name is not
/// missed.
pub fn classify(name: &str, url_env: &[String], public_url_env: &[String]) -> Option<UrlKind> {
    if public_url_env.iter().any(|e| e == name) {
        return Some(UrlKind::Public);
    }
    if url_env.iter().any(|e| e == name) {
        return Some(UrlKind::Internal);
    }
    let n = name.to_ascii_uppercase();
    if n.contains("LIVEKIT") && n.contains("PUBLIC") && n.ends_with("_URL") {
        Some(UrlKind::Public)
    } else if n.ends_with("LIVEKIT_URL") {
        Some(UrlKind::Internal)
    } else {
        None
    }
}

/// The parts of a LiveKit URL this rule judges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Lower-cased: `ws`, `wss`, `http` or `https`.
    pub scheme: String,
    /// Lower-cased, without a trailing dot or IPv6 brackets.
    pub host: String,
    /// The explicit port, else the scheme's default (80 for ws/http, 443
    /// for wss/https).
    pub port: u16,
    pub explicit_port: bool,
    /// The URL as messages print it: without user info, query or fragment,
    /// so a credential someone put into the URL is never echoed.
    pub shown: String,
}

/// Parses a `ws(s)://` or `http(s)://` URL (the server SDKs take both, and
/// livekit-client turns `http(s)` into `ws(s)`). `None` for anything else,
/// including text with an unexpanded `$(VAR)`: nothing to judge.
pub fn parse_url(text: &str) -> Option<Url> {
    let text = text.trim();
    let (scheme, rest) = text.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "ws" | "http" => 80,
        "wss" | "https" => 443,
        _ => return None,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let path = &tail[..tail.find(['?', '#']).unwrap_or(tail.len())];
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (h, after) = v6.split_once(']')?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':')?),
            };
            (h, port)
        }
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() || host.contains(['$', '(', ')', ' ', '\t']) {
        return None;
    }
    let (port, explicit_port) = match port.filter(|p| !p.is_empty()) {
        Some(p) => (p.parse::<u16>().ok()?, true),
        None => (default_port, false),
    };
    Some(Url {
        shown: format!("{scheme}://{hostport}{path}"),
        scheme,
        host,
        port,
        explicit_port,
    })
}

/// A host name that cluster DNS resolves to a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterName {
    pub service: String,
    /// `None`: the client's own namespace.
    pub namespace: Option<String>,
    /// `<svc>.<ns>`, which also reads as a public domain (`livekit.io`).
    pub ambiguous: bool,
}

/// `<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc` or `<svc>.<ns>.svc.cluster.local`:
/// the names a pod's resolv.conf search path turns into a Service's
/// cluster IP. Anything else (a public name, an IP) is not a Service name.
pub fn cluster_name(host: &str) -> Option<ClusterName> {
    let labels: Vec<&str> = host.split('.').collect();
    let dns_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !labels.iter().all(|l| dns_label(l)) {
        return None;
    }
    // Service names are DNS-1035 labels: they start with a letter.
    if !labels[0].starts_with(|c: char| c.is_ascii_lowercase()) {
        return None;
    }
    let (service, namespace, ambiguous) = match labels.as_slice() {
        [svc] if *svc != "localhost" => (svc, None, false),
        [svc, ns] => (svc, Some(ns), true),
        [svc, ns, "svc"] | [svc, ns, "svc", "cluster", "local"] => (svc, Some(ns), false),
        _ => return None,
    };
    Some(ClusterName {
        service: service.to_string(),
        namespace: namespace.map(|n| n.to_string()),
        ambiguous,
    })
}

/// The client's own machine: a dev overlay's `ws://localhost:7880` through
/// `kubectl port-forward`. Browsers treat localhost as a secure context, so
/// `ws://` to it is allowed from any page.
fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.ends_with(".localhost") || host.starts_with("127.") || host == "::1"
}

fn is_ip(host: &str) -> bool {
    host.contains(':') || host.parse::<std::net::Ipv4Addr>().is_ok()
}

/// An Ingress host pattern against a host: exact, or `*.example.com` for
/// exactly one more label (the Ingress spec's wildcard).
fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .and_then(|head| head.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        None => pattern == host,
    }
}

/// How a route names a Service port: an Ingress backend may use either.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PortRef {
    Number(i32),
    Name(String),
}

impl fmt::Display for PortRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(n) => write!(f, "`{n}`"),
        }
    }
}

/// What this rule can say about a Service as the way to signaling.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Selects livekit-server and forwards to its signaling port.
    Fine,
    Wrong(String),
    /// The render does not show enough (no livekit-server in it, an
    /// ExternalName, a signaling port from a Secret...).
    Unknown,
}

/// One livekit-server workload and the ports it really listens on.
struct Server<'o, 'a> {
    object: &'o Object<'a>,
    labels: BTreeMap<String, String>,
    /// The livekit container's named ports, for named targetPorts.
    named_ports: Vec<(String, i32)>,
    /// `None` when the value is not visible (set from a Secret).
    signal: Option<i32>,
    /// Where `signal` came from, for messages.
    signal_from: String,
    tcp: Option<i32>,
    udp: Option<i32>,
}

fn port_of(setting: &Setting) -> Option<i32> {
    let port = match &setting.raw {
        Raw::Yaml(v) => goyaml::yaml_port(v),
        _ => setting.text()?.trim().parse().ok(),
    }?;
    i32::try_from(port).ok().filter(|p| *p > 0)
}

/// An env var holding a LiveKit URL, and who reads it.
struct Client<'e, 'o, 'a> {
    object: &'o Object<'a>,
    container: &'e str,
    entry: &'e EnvEntry,
}

impl Client<'_, '_, '_> {
    fn describe(&self, url: &Url) -> String {
        format!(
            "{} ({}) of container `{}` in {} {}",
            self.entry.name,
            url.shown,
            self.container,
            self.object.kind(),
            self.object.name()
        )
    }
}

fn same_render(a: &Object, b: &Object) -> bool {
    a.resource.origin == b.resource.origin
}

/// Two namespaces, either of which may be unknown (`None` matches any, as
/// [`Object::same_namespace`]).
fn ns_match(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

fn ns_of<'x>(o: &'x Object) -> Option<&'x str> {
    o.resource.namespace.as_deref()
}

fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn show_selector(selector: &BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn show_ports(ports: &[ServicePort]) -> String {
    if ports.is_empty() {
        return "none".into();
    }
    ports
        .iter()
        .map(|p| match &p.name {
            Some(n) => format!("{} ({n})", p.port),
            None => p.port.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

struct Ctx<'c, 'o, 'a> {
    objects: &'o [Object<'a>],
    templates: &'c [PodTemplate<'o, 'a>],
    servers: Vec<Server<'o, 'a>>,
}

impl<'c, 'o, 'a> Ctx<'c, 'o, 'a> {
    fn new(
        objects: &'o [Object<'a>],
        templates: &'c [PodTemplate<'o, 'a>],
        target: &Target,
    ) -> Self {
        let mut servers: Vec<Server<'o, 'a>> = Vec::new();
        for lk in target.find(templates) {
            let object = lk.template.object;
            if servers.iter().any(|s| s.object.index == object.index) {
                continue;
            }
            let labels = lk.template.labels.clone();
            let named_ports = lk.container.named_ports();
            let e = Effective::build(objects, lk);
            let signal = e.get("port");
            servers.push(Server {
                object,
                labels,
                named_ports,
                signal: signal.as_ref().and_then(port_of),
                signal_from: signal
                    .as_ref()
                    .map(Setting::describe)
                    .unwrap_or_else(|| "the built-in default".into()),
                tcp: e.get("rtc.tcp_port").as_ref().and_then(port_of),
                udp: e.get("rtc.udp_port").as_ref().and_then(port_of),
            });
        }
        Ctx {
            objects,
            templates,
            servers,
        }
    }

    /// Whether the render holds anything of namespace `ns` (`None`: the
    /// client's own, unnamed namespace, which it holds by definition).
    fn namespace_in_render(&self, near: &Object, ns: Option<&str>) -> bool {
        let Some(ns) = ns else { return true };
        self.objects
            .iter()
            .any(|o| same_render(o, near) && ns_of(o) == Some(ns))
    }

    fn find_service(&self, near: &Object, name: &str, ns: Option<&str>) -> Option<&'o Object<'a>> {
        self.objects.iter().find(|o| {
            o.is("", "Service")
                && o.name() == name
                && same_render(o, near)
                && ns_match(ns_of(o), ns)
        })
    }

    /// Endpoints or EndpointSlices in the render for a selector-less Service.
    fn has_endpoints(&self, svc: &Object) -> bool {
        self.objects.iter().any(|o| {
            same_render(o, svc)
                && ns_match(ns_of(o), ns_of(svc))
                && ((o.is("", "Endpoints") && o.name() == svc.name())
                    || (o.is("discovery.k8s.io", "EndpointSlice")
                        && o.value()
                            .pointer("/metadata/labels/kubernetes.io~1service-name")
                            .and_then(Value::as_str)
                            == Some(svc.name())))
        })
    }

    /// Whether `svc` at `port` reaches livekit-server's signaling port.
    fn judge(&self, svc_obj: &Object, port: &PortRef) -> Verdict {
        let Some(svc) = svc_obj.typed::<Service>() else {
            return Verdict::Unknown;
        };
        let spec = svc.spec.unwrap_or_default();
        let name = svc_obj.name();
        // An ExternalName Service is a DNS alias to somewhere else.
        if spec.type_.as_deref() == Some("ExternalName") {
            return Verdict::Unknown;
        }
        // Without livekit-server in this render there is nothing to
        // compare the Service against.
        if !self.servers.iter().any(|s| same_render(s.object, svc_obj)) {
            return Verdict::Unknown;
        }
        let selector = spec.selector.clone().unwrap_or_default();
        if selector.is_empty() {
            if !svc_obj.origin.complete || self.has_endpoints(svc_obj) {
                return Verdict::Unknown;
            }
            return Verdict::Wrong(format!(
                "Service {name} has no selector and the render holds no Endpoints for it, so it has no endpoints"
            ));
        }
        let Some(server) = self.servers.iter().find(|s| {
            same_render(s.object, svc_obj)
                && ns_match(ns_of(s.object), ns_of(svc_obj))
                && selects(&selector, &s.labels)
        }) else {
            let selected: Vec<String> = self
                .templates
                .iter()
                .filter(|t| {
                    same_render(t.object, svc_obj)
                        && ns_match(ns_of(t.object), ns_of(svc_obj))
                        && t.selected_by(&selector)
                })
                .map(|t| format!("{} {}", t.object.kind(), t.object.name()))
                .collect();
            let what = if selected.is_empty() {
                "no pod of this render".to_string()
            } else {
                selected.join(", ")
            };
            return Verdict::Wrong(format!(
                "Service {name} does not select the livekit-server pods (selector {}: it selects {what})",
                show_selector(&selector)
            ));
        };
        let ports = spec.ports.unwrap_or_default();
        let Some(p) = ports.iter().find(|p| match port {
            PortRef::Number(n) => p.port == *n,
            PortRef::Name(n) => p.name.as_deref() == Some(n.as_str()),
        }) else {
            return Verdict::Wrong(format!(
                "Service {name} has no port {port} (its ports: {})",
                show_ports(&ports)
            ));
        };
        if let Some(proto) = p.protocol.as_deref().filter(|p| *p != "TCP") {
            return Verdict::Wrong(format!(
                "port {} of Service {name} is {proto}, but signaling is a TCP connection (WebSocket and HTTP)",
                p.port
            ));
        }
        let target = match &p.target_port {
            None => p.port,
            Some(IntOrString::Int(i)) => *i,
            Some(IntOrString::String(n)) => {
                match server.named_ports.iter().find(|(name, _)| name == n) {
                    Some((_, port)) => *port,
                    None => {
                        return Verdict::Wrong(format!(
                            "port {} of Service {name} forwards to targetPort `{n}`, which no port of the livekit container carries, so it has no endpoint",
                            p.port
                        ))
                    }
                }
            }
        };
        let Some(signal) = server.signal else {
            return Verdict::Unknown;
        };
        if target == signal {
            return Verdict::Fine;
        }
        let what = if Some(target) == server.tcp {
            " (the ICE-TCP media port, rtc.tcp_port, which does not speak HTTP)"
        } else if Some(target) == server.udp.or(Some(DEFAULT_UDP_PORT.into())) {
            " (the UDP media port, rtc.udp_port)"
        } else {
            ""
        };
        Verdict::Wrong(format!(
            "port {} of Service {name} forwards to {target}{what}, not to livekit-server's signaling port {signal} (from {})",
            p.port, server.signal_from
        ))
    }

    /// A cluster-internal URL that works, for hints: a Service in the
    /// render that selects livekit-server and forwards to its signaling
    /// port, preferring the client's namespace.
    fn working_url(&self, near: &Object) -> Option<String> {
        let mut services: Vec<&Object> = self
            .objects
            .iter()
            .filter(|o| o.is("", "Service") && same_render(o, near))
            .collect();
        services.sort_by_key(|o| !ns_match(ns_of(o), ns_of(near)));
        services.into_iter().find_map(|o| {
            let svc = o.typed::<Service>()?;
            let port = svc
                .spec?
                .ports?
                .into_iter()
                .find(|p| self.judge(o, &PortRef::Number(p.port)) == Verdict::Fine)?;
            Some(match ns_of(o) {
                Some(ns) => format!("ws://{}.{ns}.svc.cluster.local:{}", o.name(), port.port),
                None => format!("ws://{}:{}", o.name(), port.port),
            })
        })
    }

    /// Check 1: an in-cluster URL names the signaling Service.
    fn check_internal(&self, client: &Client, url: &Url) -> Option<Finding> {
        let name = cluster_name(&url.host)?;
        let object = client.object;
        let ns = name.namespace.as_deref().or(ns_of(object));
        let ns_known = self.namespace_in_render(object, ns);
        // `livekit.io` reads as Service livekit in namespace io: only a
        // namespace the render holds makes it a cluster name.
        if name.ambiguous && !ns_known {
            return None;
        }
        let problem = match self.find_service(object, &name.service, ns) {
            Some(svc) => match self.judge(svc, &PortRef::Number(url.port.into())) {
                Verdict::Wrong(p) => p,
                Verdict::Fine | Verdict::Unknown => return None,
            },
            None => {
                // A namespace the batch holds nothing of is deployed from
                // elsewhere; so may be a Service of an incomplete batch.
                if !object.origin.complete || !ns_known {
                    return None;
                }
                match ns {
                    Some(ns) => format!(
                        "there is no Service {} in namespace {ns} in this render, so the name does not resolve",
                        name.service
                    ),
                    None => format!(
                        "there is no Service {} in this render, so the name does not resolve",
                        name.service
                    ),
                }
            }
        };
        let hint = match self.working_url(object) {
            Some(u) => format!("point it at the signaling Service: {u}"),
            None => "point it at the ClusterIP Service that selects livekit-server and forwards to its signaling port (7880 by default)".into(),
        };
        Some(
            client
                .entry
                .place
                .error(
                    RULE,
                    format!(
                        "{}: {problem}; the server SDK calls (RoomService, an agent worker joining rooms) made with it do not reach livekit-server",
                        client.describe(url)
                    ),
                )
                .hint(hint),
        )
    }

    /// Check 2: a public URL is wss:// on a host an Ingress terminates with
    /// TLS and routes to the signaling Service.
    fn check_public(&self, client: &Client, url: &Url) -> Vec<Finding> {
        let mut out = Vec::new();
        if is_loopback(&url.host) {
            return out;
        }
        let place = &client.entry.place;
        let who = client.describe(url);
        if matches!(url.scheme.as_str(), "ws" | "http") {
            let how = if url.scheme == "http" {
                " (livekit-client turns http:// into ws://)"
            } else {
                ""
            };
            out.push(
                place
                    .error(
                        RULE,
                        format!(
                            "{who} is not TLS{how}: the browser opens its signaling WebSocket to this URL, which a page served over https may not do (mixed content is blocked), and the access token would travel in clear"
                        ),
                    )
                    .hint(format!("use wss://{}", url.host)),
            );
        }
        if cluster_name(&url.host).is_some_and(|n| !n.ambiguous) {
            out.push(
                place
                    .error(
                        RULE,
                        format!(
                            "{who} names the cluster-internal host {}, which browsers outside the cluster cannot resolve",
                            url.host
                        ),
                    )
                    .hint("use the public wss:// host of the livekit Ingress"),
            );
            return out;
        }
        if is_ip(&url.host) {
            return out;
        }
        self.check_ingress(client, url, &mut out);
        out
    }

    fn check_ingress(&self, client: &Client, url: &Url, out: &mut Vec<Finding>) {
        let object = client.object;
        let place = &client.entry.place;
        let who = client.describe(url);
        let host = url.host.as_str();
        let ingresses: Vec<&Object> = self
            .objects
            .iter()
            .filter(|o| o.is("networking.k8s.io", "Ingress") && same_render(o, object))
            .collect();
        let carrying: Vec<&&Object> = ingresses
            .iter()
            .filter(|o| {
                let v = o.value();
                rule_hosts(v)
                    .chain(tls_hosts(v))
                    .any(|h| host_matches(h, host))
            })
            .collect();
        if carrying.is_empty() {
            // No Ingress of the client's namespace in the render: the host
            // may be served from anywhere (another render, a cloud load
            // balancer). With Ingresses here, the host was likely
            // forgotten, but that is still a guess: a warning.
            let here: Vec<&str> = ingresses
                .iter()
                .filter(|o| o.same_namespace(object))
                .map(|o| o.name())
                .collect();
            if object.origin.complete && !here.is_empty() && !self.gateway_route_has(object, host) {
                out.push(
                    place
                        .warning(
                            RULE,
                            format!(
                                "{who}: no Ingress of this render carries host {host} (Ingresses here: {}), so nothing in it terminates TLS for the browser's connection",
                                here.join(", ")
                            ),
                        )
                        .hint(format!(
                            "add {host} to the livekit Ingress's rules and spec.tls hosts"
                        )),
                );
            }
            return;
        }
        for ing in carrying {
            let v = ing.value();
            let name = ing.name();
            let has_tls = tls_hosts(v).any(|h| host_matches(h, host));
            if !has_tls {
                out.push(
                    place
                        .error(
                            RULE,
                            format!(
                                "{who}: Ingress {name} routes host {host} without a spec.tls entry for it, so no certificate is configured for the host and the browser's wss:// handshake fails (the controller answers with its default certificate, or not at all)"
                            ),
                        )
                        .hint(format!(
                            "add {host} to spec.tls[].hosts of Ingress {name}, with the Secret holding its certificate"
                        )),
                );
            }
            let problem = match ingress_backend(v, host) {
                None => Some(format!(
                    "Ingress {name} carries host {host} but routes no backend for {SIGNAL_PATH}"
                )),
                // A `resource` backend (a bucket, say) is not a Service.
                Some(Backend::Other) => None,
                Some(Backend::Service { name: svc, port }) => {
                    match self.find_service(ing, &svc, ns_of(ing)) {
                        Some(s) => match self.judge(s, &port) {
                            Verdict::Wrong(p) => Some(format!(
                                "Ingress {name} routes {SIGNAL_PATH} on host {host} to Service {svc} port {port}: {p}"
                            )),
                            Verdict::Fine | Verdict::Unknown => None,
                        },
                        None if ing.origin.complete => Some(format!(
                            "Ingress {name} routes {SIGNAL_PATH} on host {host} to Service {svc}, which is not in this render"
                        )),
                        None => None,
                    }
                }
            };
            if let Some(p) = problem {
                out.push(
                    place
                        .error(
                            RULE,
                            format!("{who}: {p}; browsers cannot join rooms through it"),
                        )
                        .hint(format!(
                            "route host {host} of Ingress {name} to the ClusterIP Service that selects livekit-server, at the port that forwards to its signaling port"
                        )),
                );
            }
            if has_tls && url.explicit_port && url.port != 443 {
                out.push(
                    place
                        .warning(
                            RULE,
                            format!(
                                "{who} has port {}, but Ingress {name} serves host {host} with TLS on 443: the browser goes around the Ingress",
                                url.port
                            ),
                        )
                        .hint(format!("drop the port: wss://{host}")),
                );
            }
        }
    }

    /// A Gateway API HTTPRoute in the render that claims the host: the
    /// host is served, by something this rule does not read.
    fn gateway_route_has(&self, near: &Object, host: &str) -> bool {
        self.objects.iter().any(|o| {
            o.is("gateway.networking.k8s.io", "HTTPRoute")
                && same_render(o, near)
                && o.value()
                    .pointer("/spec/hostnames")
                    .and_then(Value::as_array)
                    .is_some_and(|hs| {
                        hs.iter()
                            .filter_map(Value::as_str)
                            .any(|h| host_matches(h, host))
                    })
        })
    }
}

fn rule_hosts(ingress: &Value) -> impl Iterator<Item = &str> {
    ingress
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("host").and_then(Value::as_str))
}

fn tls_hosts(ingress: &Value) -> impl Iterator<Item = &str> {
    ingress
        .pointer("/spec/tls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("hosts").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
}

/// Where an Ingress sends a request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Backend {
    Service {
        name: String,
        port: PortRef,
    },
    /// A `resource` backend, or a service backend without a port.
    Other,
}

/// Whether an Ingress path matches `request`: `Exact` literally; `Prefix`
/// element by element (`/` and `/rtc` match `/rtc`, `/rt` does not).
/// `ImplementationSpecific` is read as `Prefix`, which is what
/// ingress-nginx does without regex annotations.
fn path_matches(path: &str, path_type: &str, request: &str) -> bool {
    if path_type == "Exact" {
        return path == request;
    }
    let p = path.trim_end_matches('/');
    p.is_empty() || request == p || request.starts_with(&format!("{p}/"))
}

/// The backend an Ingress picks for `host` and the signaling path: the
/// rules for the host (else those without a host), the most specific
/// matching path (an exact match first, then the longest), else
/// `spec.defaultBackend`.
fn ingress_backend(ingress: &Value, host: &str) -> Option<Backend> {
    let rules: Vec<&Value> = ingress
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .map(|r| r.iter().collect())
        .unwrap_or_default();
    let for_host: Vec<&Value> = rules
        .iter()
        .copied()
        .filter(|r| {
            r.get("host")
                .and_then(Value::as_str)
                .is_some_and(|h| host_matches(h, host))
        })
        .collect();
    let candidates = if for_host.is_empty() {
        rules
            .into_iter()
            .filter(|r| {
                r.get("host")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            })
            .collect()
    } else {
        for_host
    };
    let mut best: Option<((bool, usize), &Value)> = None;
    for rule in candidates {
        for p in rule
            .pointer("/http/paths")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let path = p.get("path").and_then(Value::as_str).unwrap_or("/");
            let path_type = p
                .get("pathType")
                .and_then(Value::as_str)
                .unwrap_or("ImplementationSpecific");
            if !path_matches(path, path_type, SIGNAL_PATH) {
                continue;
            }
            let rank = (path_type == "Exact", path.len());
            if best.as_ref().is_none_or(|(r, _)| rank > *r) {
                if let Some(b) = p.get("backend") {
                    best = Some((rank, b));
                }
            }
        }
    }
    let backend = best
        .map(|(_, b)| b)
        .or_else(|| ingress.pointer("/spec/defaultBackend"))?;
    let Some(svc) = backend.get("service") else {
        return Some(Backend::Other);
    };
    let name = svc.get("name").and_then(Value::as_str)?.to_string();
    let port = svc.get("port");
    let port = match (
        port.and_then(|p| p.get("number")).and_then(Value::as_i64),
        port.and_then(|p| p.get("name")).and_then(Value::as_str),
    ) {
        (Some(n), _) => PortRef::Number(i32::try_from(n).ok()?),
        (None, Some(n)) => PortRef::Name(n.to_string()),
        (None, None) => return Some(Backend::Other),
    };
    Some(Backend::Service { name, port })
}

impl Policy for Urls {
    fn metadata() -> Metadata {
        Metadata {
            id: "urls".into(),
            version: std::env!("CARGO_PKG_VERSION").into(),
            rules: vec![RuleInfo {
                id: RULE.into(),
                summary: "Clients' LiveKit URLs reach livekit-server's signaling port: in-cluster URLs through a Service that selects it, public URLs as wss:// through a TLS Ingress".into(),
                rationale: "livekit-server serves signaling (the WebSocket clients join rooms on) and its Twirp API \
                    (RoomService, used by the server SDKs and agent workers) on one port, `port` (7880 by default); \
                    7881 is ICE-TCP media and 7882 UDP media, which do not speak HTTP. An in-cluster URL \
                    (LIVEKIT_URL, POLYPHON_LIVEKIT_URL, LIVEKIT_WS_URL, any name ending in LIVEKIT_URL, or the \
                    url_env setting) of the form ws(s)://<svc>[.<ns>[.svc[.cluster.local]]][:port] (http(s) too; \
                    port 80 for ws/http, 443 for wss/https) must name a Service of the render that selects the \
                    livekit-server pods and has that port, forwarding (targetPort: a number, a named port of the \
                    livekit container, or the port itself) to the effective signaling port. Otherwise room \
                    creation, token-based joins and agent dispatch fail at run time while every object looks \
                    healthy. A Service that is not in the render is reported only when the render holds its \
                    namespace and is complete: a namespace the batch holds nothing of is deployed from elsewhere \
                    and not judged. Public host names in these variables are not checked. The browser connects \
                    to the public URL (names with LIVEKIT and PUBLIC ending in _URL, or public_url_env): from a \
                    page served over https only wss:// is allowed (mixed content), and the access token travels \
                    in it, so it must be wss:// (https:// is accepted: livekit-client turns it into wss://), \
                    must not be a cluster-internal name, and an Ingress of the render that carries its host must \
                    list the host under spec.tls and route /rtc to the signaling Service. When Ingresses of the \
                    client's namespace exist but none carries the host, a warning; when the render has none, \
                    nothing (TLS may be terminated elsewhere). Env values from Secrets are not read, and URLs \
                    are printed without user info or query. Topology: all."
                    .into(),
            }],
            settings_schema: settings::schema(serde_json::json!({
                "url_env": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                    "default": DEFAULT_URL_ENV,
                    "description": "Env vars holding the in-cluster LiveKit URL of server-side clients; any name ending in LIVEKIT_URL is also read."
                },
                "public_url_env": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                    "default": DEFAULT_PUBLIC_URL_ENV,
                    "description": "Env vars holding the public URL browsers connect to; any name with LIVEKIT and PUBLIC ending in _URL is also read."
                }
            })),
        }
    }

    fn validate(batch: &Batch, settings: &str) -> Result<Vec<Finding>, String> {
        let s: Settings = settings::parse(settings)?;
        let objects = batch.objects();
        let templates = workload::pod_templates(&objects);
        let ctx = Ctx::new(&objects, &templates, &s.target);
        let mut findings: Vec<Finding> = Vec::new();
        for t in &templates {
            let object = t.object;
            if !object.origin.deployable {
                continue;
            }
            for c in t.containers() {
                let env = env::container_env(&objects, object, &c.path, c.container);
                for entry in env.iter() {
                    let Some(kind) = classify(&entry.name, &s.url_env, &s.public_url_env) else {
                        continue;
                    };
                    // From a Secret or the downward API: not visible, and
                    // never to be printed.
                    let Some(text) = entry.value.text() else {
                        continue;
                    };
                    let Some(url) = parse_url(text) else {
                        continue;
                    };
                    let client = Client {
                        object,
                        container: &c.container.name,
                        entry,
                    };
                    let found = match kind {
                        UrlKind::Internal => {
                            ctx.check_internal(&client, &url).into_iter().collect()
                        }
                        UrlKind::Public => ctx.check_public(&client, &url),
                    };
                    for f in found {
                        if !findings.contains(&f) {
                            findings.push(f);
                        }
                    }
                }
            }
        }
        Ok(findings)
    }
}

lkguard_policy_sdk::export_policy!(Urls);

#[cfg(test)]
mod tests {
    use super::*;
    use lkguard_policy_sdk::testkit::{batch, render, Source};
    use lkguard_policy_sdk::Severity;

    /// The runbook's production render, trimmed to what this rule reads.
    const RENDER: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: livekit-config, namespace: memql}
data:
  livekit.yaml: |
    port: 7880
    rtc:
      tcp_port: 7881
      udp_port: 7882
      use_external_ip: false
---
apiVersion: v1
kind: Service
metadata: {name: livekit, namespace: memql}
spec:
  type: ClusterIP
  selector: {app.kubernetes.io/name: livekit}
  ports:
    - {name: http, port: 7880, protocol: TCP, targetPort: 7880}
---
apiVersion: v1
kind: Service
metadata: {name: livekit-rtc, namespace: memql}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app.kubernetes.io/name: livekit}
  ports:
    - {name: rtc-udp, port: 7882, protocol: UDP, targetPort: 7882}
    - {name: rtc-tcp, port: 7881, protocol: TCP, targetPort: 7881}
---
apiVersion: v1
kind: Service
metadata: {name: bff, namespace: memql}
spec:
  selector: {app.kubernetes.io/name: bff}
  ports:
    - {name: http, port: 80, targetPort: http}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: livekit, namespace: memql}
spec:
  replicas: 1
  template:
    metadata:
      labels: {app.kubernetes.io/name: livekit}
    spec:
      enableServiceLinks: false
      containers:
        - name: livekit
          image: livekit/livekit-server:v1.9.1
          args: [--config, /etc/livekit/livekit.yaml]
          env:
            - name: LIVEKIT_KEYS
              valueFrom: {secretKeyRef: {name: livekit-secrets, key: livekit-keys}}
          ports:
            - {name: http, containerPort: 7880, protocol: TCP}
            - {name: rtc-tcp, containerPort: 7881, protocol: TCP}
            - {name: rtc-udp, containerPort: 7882, protocol: UDP}
          volumeMounts:
            - {name: config, mountPath: /etc/livekit, readOnly: true}
      volumes:
        - name: config
          configMap: {name: livekit-config}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: voice-agent, namespace: memql}
spec:
  template:
    metadata:
      labels: {app.kubernetes.io/name: voice-agent}
    spec:
      containers:
        - name: agent
          image: ghcr.io/example/voice-agent:0.3.0
          env:
            - name: LIVEKIT_URL
              value: AGENT-URL-HERE
            - name: LIVEKIT_API_SECRET
              valueFrom: {secretKeyRef: {name: livekit-secrets, key: polyphon-livekit-api-secret}}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: bff, namespace: memql}
spec:
  template:
    metadata:
      labels: {app.kubernetes.io/name: bff}
    spec:
      containers:
        - name: bff
          image: ghcr.io/example/memql-bff:1.4.2
          ports: [{name: http, containerPort: 8080}]
          env:
            - name: POLYPHON_LIVEKIT_URL
              value: ws://livekit:7880
            - name: POLYPHON_LIVEKIT_PUBLIC_URL
              value: PUBLIC-URL-HERE
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: livekit, namespace: memql}
spec:
  ingressClassName: nginx
  rules:
    - host: livekit.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: livekit
                port: {number: 7880}
  tls:
    - hosts: [livekit.example.com]
      secretName: livekit-tls
"#;

    const AGENT_URL: &str = "ws://livekit.memql.svc.cluster.local:7880";
    const PUBLIC_URL: &str = "wss://livekit.example.com";

    fn fixture() -> String {
        RENDER
            .replace("AGENT-URL-HERE", AGENT_URL)
            .replace("PUBLIC-URL-HERE", PUBLIC_URL)
    }

    fn run_with(yaml: &str, settings: &str) -> Vec<Finding> {
        Urls::validate(&render(yaml), settings).unwrap()
    }

    fn run(yaml: &str) -> Vec<Finding> {
        run_with(yaml, "{}")
    }

    /// The fixture with the agent's LIVEKIT_URL replaced.
    fn agent_url(url: &str) -> String {
        fixture().replace(AGENT_URL, url)
    }

    /// The fixture with the bff's public URL replaced.
    fn public_url(url: &str) -> String {
        fixture().replace(&format!("value: {PUBLIC_URL}"), &format!("value: {url}"))
    }

    /// Index of the resource named `name` of `kind` in the fixture.
    fn index(yaml: &str, kind: &str, name: &str) -> u32 {
        render(yaml)
            .resources
            .iter()
            .position(|r| r.kind == kind && r.name == name)
            .unwrap() as u32
    }

    fn one(f: &[Finding]) -> &Finding {
        assert_eq!(f.len(), 1, "{f:#?}");
        &f[0]
    }

    #[test]
    fn the_runbook_render_passes_clean() {
        assert_eq!(run(&fixture()), Vec::<Finding>::new());
    }

    #[test]
    fn wrong_url_port_is_reported_at_the_env_value() {
        let yaml = agent_url("ws://livekit.memql.svc.cluster.local:7881");
        let f = run(&yaml);
        let f = one(&f);
        assert_eq!(f.rule, RULE);
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.resource, index(&yaml, "Deployment", "voice-agent"));
        assert_eq!(f.path, "/spec/template/spec/containers/0/env/0/value");
        assert!(
            f.message
                .contains("Service livekit has no port 7881 (its ports: 7880 (http))"),
            "{}",
            f.message
        );
        assert!(f.message.contains("voice-agent"), "{}", f.message);
        assert_eq!(
            f.hint.as_deref(),
            Some("point it at the signaling Service: ws://livekit.memql.svc.cluster.local:7880")
        );
    }

    #[test]
    fn the_scheme_decides_the_default_port() {
        // ws:// without a port is port 80, which the Service does not have.
        let f = run(&agent_url("ws://livekit.memql.svc.cluster.local"));
        assert!(one(&f).message.contains("has no port 80"), "{f:?}");
        // wss:// is 443.
        let f = run(&agent_url("wss://livekit.memql"));
        assert!(one(&f).message.contains("has no port 443"), "{f:?}");
        // wss:// to an in-cluster Service port that is right is not judged
        // for its scheme, and http(s):// is what the server SDKs also take.
        assert!(run(&agent_url("wss://livekit.memql.svc:7880")).is_empty());
        assert!(run(&agent_url("http://livekit.memql.svc.cluster.local:7880/")).is_empty());
    }

    #[test]
    fn a_service_that_does_not_select_livekit_is_reported() {
        let yaml = fixture().replace(
            "metadata: {name: livekit, namespace: memql}\nspec:\n  type: ClusterIP\n  selector: {app.kubernetes.io/name: livekit}",
            "metadata: {name: livekit, namespace: memql}\nspec:\n  type: ClusterIP\n  selector: {app: livekit-server}",
        );
        let f = run(&yaml);
        // The agent's URL, the bff's short URL and the Ingress backend all
        // lead to it.
        assert_eq!(f.len(), 3, "{f:#?}");
        assert!(
            f.iter().all(|f| f
                .message
                .contains("Service livekit does not select the livekit-server pods (selector app=livekit-server: it selects no pod of this render)")),
            "{f:#?}"
        );
        assert!(
            f.iter()
                .any(|f| f.message.contains("Ingress livekit routes /rtc")),
            "{f:#?}"
        );
    }

    #[test]
    fn a_url_to_the_rtc_service_lands_on_media() {
        let f = run(&agent_url("ws://livekit-rtc.memql.svc.cluster.local:7881"));
        let m = &one(&f).message;
        assert!(
            m.contains("port 7881 of Service livekit-rtc forwards to 7881 (the ICE-TCP media port, rtc.tcp_port, which does not speak HTTP), not to livekit-server's signaling port 7880 (from the config file)"),
            "{m}"
        );
        let f = run(&agent_url("ws://livekit-rtc:7882"));
        assert!(one(&f).message.contains("is UDP"), "{f:?}");
    }

    #[test]
    fn the_target_port_must_be_the_signaling_port() {
        let svc = "    - {name: http, port: 7880, protocol: TCP, targetPort: 7880}";
        let f = run(&fixture().replace(
            svc,
            "    - {name: http, port: 7880, protocol: TCP, targetPort: 7882}",
        ));
        assert_eq!(f.len(), 3, "{f:#?}");
        assert!(
            f[0].message
                .contains("forwards to 7882 (the UDP media port"),
            "{}",
            f[0].message
        );
        // A named targetPort resolves through the livekit container's ports.
        assert!(run(&fixture().replace(
            svc,
            "    - {name: http, port: 7880, protocol: TCP, targetPort: http}"
        ))
        .is_empty());
        let f = run(&fixture().replace(
            svc,
            "    - {name: http, port: 7880, protocol: TCP, targetPort: rtc-tcp}",
        ));
        assert!(
            f[0].message.contains("forwards to 7881 (the ICE-TCP"),
            "{}",
            f[0].message
        );
        let f = run(&fixture().replace(
            svc,
            "    - {name: http, port: 7880, protocol: TCP, targetPort: signal}",
        ));
        assert!(
            f[0].message.contains("targetPort `signal`, which no port"),
            "{}",
            f[0].message
        );
        // Without targetPort the port itself is the target.
        assert!(run(&fixture().replace(svc, "    - {name: http, port: 7880}")).is_empty());
    }

    #[test]
    fn the_signaling_port_is_the_effective_one() {
        let moved = fixture().replace("    port: 7880\n", "    port: 7890\n");
        let f = run(&moved);
        assert_eq!(f.len(), 3, "{f:#?}");
        assert!(
            f[0].message
                .contains("not to livekit-server's signaling port 7890 (from the config file)"),
            "{}",
            f[0].message
        );
        let fixed = moved.replace(
            "{name: http, port: 7880, protocol: TCP, targetPort: 7880}",
            "{name: http, port: 7880, protocol: TCP, targetPort: 7890}",
        );
        assert!(run(&fixed).is_empty(), "{:#?}", run(&fixed));
        // LIVEKIT_PORT beats the config file.
        let env = fixed.replace(
            "          env:\n            - name: LIVEKIT_KEYS",
            "          env:\n            - {name: LIVEKIT_PORT, value: \"7880\"}\n            - name: LIVEKIT_KEYS",
        );
        let f = run(&env);
        assert!(
            f[0].message.contains("port 7880 (from env LIVEKIT_PORT)"),
            "{f:#?}"
        );
    }

    #[test]
    fn a_missing_service_is_reported_when_its_namespace_is_in_the_batch() {
        let f = run(&agent_url(
            "ws://livekit-signal.memql.svc.cluster.local:7880",
        ));
        assert!(
            one(&f)
                .message
                .contains("there is no Service livekit-signal in namespace memql in this render"),
            "{f:?}"
        );
        // The short form resolves in the client's own namespace.
        let f = run(&fixture().replace("value: ws://livekit:7880", "value: ws://lk:7880"));
        assert!(
            one(&f).message.contains("no Service lk in namespace memql"),
            "{f:?}"
        );
    }

    /// A namespace the batch holds nothing of is deployed by something else
    /// (another render, a Helm release): its Services cannot be judged.
    #[test]
    fn a_service_in_a_namespace_outside_the_batch_is_not_judged() {
        assert!(run(&agent_url("ws://livekit.livekit.svc.cluster.local:7880")).is_empty());
        assert!(run(&agent_url("ws://livekit.media:7880")).is_empty());
    }

    #[test]
    fn public_hosts_in_the_in_cluster_variable_are_not_judged() {
        assert!(run(&agent_url("wss://livekit.example.com")).is_empty());
        assert!(run(&agent_url("ws://10.0.12.7:7880")).is_empty());
        // `livekit.io` would read as Service livekit in namespace io.
        assert!(run(&agent_url("wss://livekit.io")).is_empty());
    }

    #[test]
    fn a_public_url_must_be_tls() {
        let yaml = public_url("ws://livekit.example.com");
        let f = run(&yaml);
        let f = one(&f);
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.resource, index(&yaml, "Rollout", "bff"));
        assert_eq!(f.path, "/spec/template/spec/containers/0/env/1/value");
        assert!(
            f.message
                .contains("POLYPHON_LIVEKIT_PUBLIC_URL (ws://livekit.example.com)"),
            "{}",
            f.message
        );
        assert!(f.message.contains("mixed content"), "{}", f.message);
        assert_eq!(f.hint.as_deref(), Some("use wss://livekit.example.com"));
        let f = run(&public_url("http://livekit.example.com"));
        assert!(
            one(&f).message.contains("turns http:// into ws://"),
            "{f:?}"
        );
        // livekit-client turns https:// into wss://.
        assert!(run(&public_url("https://livekit.example.com")).is_empty());
    }

    #[test]
    fn a_public_url_must_not_be_a_cluster_name() {
        let f = run(&public_url("wss://livekit.memql.svc.cluster.local:7880"));
        assert!(
            one(&f)
                .message
                .contains("browsers outside the cluster cannot resolve"),
            "{f:?}"
        );
        // Loopback, for a dev overlay behind `kubectl port-forward`, is fine.
        assert!(run(&public_url("ws://localhost:7880")).is_empty());
    }

    #[test]
    fn an_ingress_host_without_tls_is_reported() {
        let yaml = fixture().replace(
            "  tls:\n    - hosts: [livekit.example.com]\n      secretName: livekit-tls\n",
            "",
        );
        let f = run(&yaml);
        let f = one(&f);
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.resource, index(&yaml, "Rollout", "bff"));
        assert!(
            f.message.contains(
                "Ingress livekit routes host livekit.example.com without a spec.tls entry"
            ),
            "{}",
            f.message
        );
        // A TLS entry for another host does not cover it.
        let other = fixture().replace("hosts: [livekit.example.com]", "hosts: [app.example.com]");
        assert!(one(&run(&other))
            .message
            .contains("without a spec.tls entry"));
        // A wildcard covers one label.
        let wild = fixture().replace("hosts: [livekit.example.com]", "hosts: [\"*.example.com\"]");
        assert!(run(&wild).is_empty());
    }

    #[test]
    fn an_ingress_routed_to_another_service_is_reported() {
        let yaml = fixture().replace(
            "                name: livekit\n                port: {number: 7880}",
            "                name: bff\n                port: {number: 80}",
        );
        let f = run(&yaml);
        let m = &one(&f).message;
        assert!(
            m.contains("Ingress livekit routes /rtc on host livekit.example.com to Service bff port 80: Service bff does not select the livekit-server pods (selector app.kubernetes.io/name=bff: it selects Rollout bff)"),
            "{m}"
        );
        // A port name resolves through the Service's ports.
        let named = fixture().replace("port: {number: 7880}", "port: {name: http}");
        assert!(run(&named).is_empty());
        let wrong_name = fixture().replace("port: {number: 7880}", "port: {name: signal}");
        assert!(one(&run(&wrong_name))
            .message
            .contains("has no port `signal`"));
        // A backend Service the render lacks.
        let gone = fixture().replace(
            "                name: livekit\n                port: {number: 7880}",
            "                name: livekit-signal\n                port: {number: 7880}",
        );
        assert!(one(&run(&gone))
            .message
            .contains("Service livekit-signal, which is not in this render"));
    }

    #[test]
    fn the_most_specific_ingress_path_decides() {
        // `/` to the bff, `/rtc` to livekit: signaling reaches livekit.
        let split = fixture().replace(
            "          - path: /\n            pathType: Prefix\n            backend:\n              service:\n                name: livekit\n                port: {number: 7880}",
            "          - path: /\n            pathType: Prefix\n            backend:\n              service:\n                name: bff\n                port: {number: 80}\n          - path: /rtc\n            pathType: Prefix\n            backend:\n              service:\n                name: livekit\n                port: {number: 7880}",
        );
        assert!(run(&split).is_empty(), "{:#?}", run(&split));
        // `/rt` is not a prefix of `/rtc` element-wise.
        let no_route = fixture().replace("path: /\n", "path: /rt\n");
        assert!(one(&run(&no_route))
            .message
            .contains("routes no backend for /rtc"));
    }

    #[test]
    fn a_host_no_ingress_carries_is_a_warning_only_where_ingresses_exist() {
        let yaml = public_url("wss://meet.example.com");
        let f = run(&yaml);
        let f = one(&f);
        assert_eq!(f.severity, Severity::Warning);
        assert!(
            f.message.contains(
                "no Ingress of this render carries host meet.example.com (Ingresses here: livekit)"
            ),
            "{}",
            f.message
        );
        // No Ingress in the render: TLS may be terminated elsewhere.
        let cut = yaml.find("---\napiVersion: networking.k8s.io/v1").unwrap();
        assert!(run(&yaml[..cut]).is_empty());
        // An HTTPRoute that claims the host.
        let routed = format!(
            "{yaml}---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: lk, namespace: memql}}\nspec:\n  hostnames: [meet.example.com]\n"
        );
        assert!(run(&routed).is_empty());
    }

    #[test]
    fn an_explicit_port_goes_around_the_ingress() {
        let f = run(&public_url("wss://livekit.example.com:7880"));
        let f = one(&f);
        assert_eq!(f.severity, Severity::Warning);
        assert!(
            f.message.contains("goes around the Ingress"),
            "{}",
            f.message
        );
        assert!(run(&public_url("wss://livekit.example.com:443/")).is_empty());
    }

    /// A URL read from a ConfigMap is reported at the ConfigMap's key,
    /// which is what the user edits.
    #[test]
    fn a_config_map_url_points_at_its_key() {
        let yaml = format!(
            "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: agent-env, namespace: memql}}\ndata:\n  LIVEKIT_URL: ws://livekit-rtc.memql.svc.cluster.local:7881\n",
            fixture().replace(
                "          env:\n            - name: LIVEKIT_URL\n              value: ws://livekit.memql.svc.cluster.local:7880\n",
                "          envFrom: [{configMapRef: {name: agent-env}}]\n          env:\n",
            )
        );
        let f = run(&yaml);
        let f = one(&f);
        assert_eq!(f.resource, index(&yaml, "ConfigMap", "agent-env"));
        assert_eq!(f.path, "/data/LIVEKIT_URL");
        // And through a configMapKeyRef.
        let keyref = format!(
            "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: agent-env, namespace: memql}}\ndata:\n  url: ws://livekit:7881\n",
            fixture().replace(
                "              value: ws://livekit.memql.svc.cluster.local:7880\n",
                "              valueFrom: {configMapKeyRef: {name: agent-env, key: url}}\n",
            )
        );
        let f = run(&keyref);
        assert_eq!(one(&f).path, "/data/url");
    }

    #[test]
    fn secret_values_are_neither_read_nor_printed() {
        // A URL from a Secret is not visible: nothing to judge.
        let yaml = fixture().replace(
            "              value: ws://livekit.memql.svc.cluster.local:7880\n",
            "              valueFrom: {secretKeyRef: {name: livekit-secrets, key: url}}\n",
        );
        assert!(run(&yaml).is_empty());
        // User info and query in a URL are left out of the message.
        let f = run(&agent_url(
            "ws://key:hunter2@livekit.memql.svc.cluster.local:7881/?token=abc",
        ));
        let m = &one(&f).message;
        assert!(!m.contains("hunter2") && !m.contains("abc"), "{m}");
        assert!(
            m.contains("(ws://livekit.memql.svc.cluster.local:7881/)"),
            "{m}"
        );
    }

    #[test]
    fn only_deployable_complete_renders_are_judged() {
        let yaml = agent_url("ws://livekit.memql.svc.cluster.local:7881");
        let base = batch(&[Source {
            name: "base",
            deployable: false,
            complete: true,
            yaml: &yaml,
        }]);
        assert!(Urls::validate(&base, "{}").unwrap().is_empty());
        // Admission sees one object: a Service it does not see may exist.
        let missing = agent_url("ws://livekit-signal.memql.svc.cluster.local:7880");
        let admission = batch(&[Source {
            name: "admission",
            deployable: true,
            complete: false,
            yaml: &missing,
        }]);
        assert!(Urls::validate(&admission, "{}").unwrap().is_empty());
        // Objects of another render do not count.
        let clients = agent_url("ws://livekit.memql.svc.cluster.local:7881");
        let two = batch(&[
            Source {
                name: "a",
                deployable: true,
                complete: true,
                yaml: &fixture(),
            },
            Source {
                name: "b",
                deployable: true,
                complete: true,
                yaml: &clients[clients
                    .find(
                        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: voice-agent",
                    )
                    .unwrap()..],
            },
        ]);
        // Render b (the clients and the Ingress) has no Service livekit
        // but holds namespace memql, so the missing Service is reported
        // for each client, though render a has it.
        let f = Urls::validate(&two, "{}").unwrap();
        assert_eq!(f.len(), 3, "{f:#?}");
        assert!(
            f.iter().all(
                |f| f.message.contains("no Service livekit in namespace memql")
                    || f.message
                        .contains("Service livekit, which is not in this render")
            ),
            "{f:#?}"
        );
    }

    #[test]
    fn configured_and_suffixed_names_are_read() {
        let none: Vec<String> = Vec::new();
        let url = default_url_env();
        let public = default_public_url_env();
        assert_eq!(
            classify("LIVEKIT_URL", &url, &public),
            Some(UrlKind::Internal)
        );
        assert_eq!(
            classify("LIVEKIT_WS_URL", &url, &public),
            Some(UrlKind::Internal)
        );
        assert_eq!(
            classify("MEMQL_LIVEKIT_URL", &none, &none),
            Some(UrlKind::Internal)
        );
        assert_eq!(
            classify("POLYPHON_LIVEKIT_PUBLIC_URL", &none, &none),
            Some(UrlKind::Public)
        );
        assert_eq!(
            classify("NEXT_PUBLIC_LIVEKIT_URL", &none, &none),
            Some(UrlKind::Public)
        );
        assert_eq!(classify("LIVEKIT_API_KEY", &url, &public), None);
        assert_eq!(classify("REDIS_URL", &url, &public), None);
        // A configured name is read as configured.
        let f = run_with(
            &agent_url("ws://livekit:7881").replace("name: LIVEKIT_URL", "name: SIGNAL_ADDR"),
            r#"{"url_env": ["SIGNAL_ADDR"]}"#,
        );
        assert!(
            one(&f)
                .message
                .starts_with("SIGNAL_ADDR (ws://livekit:7881)"),
            "{f:?}"
        );
    }

    #[test]
    fn urls_parse_like_the_sdks_read_them() {
        let u = parse_url("WSS://LiveKit.Example.com./rtc?x=1#y").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.host.as_str(), u.port, u.explicit_port),
            ("wss", "livekit.example.com", 443, false)
        );
        assert_eq!(parse_url("http://[::1]:7880").unwrap().host, "::1");
        assert_eq!(parse_url("ws://livekit:").unwrap().port, 80);
        assert!(parse_url("livekit:7880").is_none());
        assert!(parse_url("grpc://livekit:7880").is_none());
        assert!(parse_url("ws://livekit:http").is_none());
        assert!(parse_url("ws://$(LIVEKIT_HOST):7880").is_none());
        let name = |h: &str| cluster_name(h).map(|n| (n.service, n.namespace, n.ambiguous));
        assert_eq!(name("livekit"), Some(("livekit".into(), None, false)));
        assert_eq!(
            name("livekit.memql.svc.cluster.local"),
            Some(("livekit".into(), Some("memql".into()), false))
        );
        assert_eq!(
            name("livekit.memql"),
            Some(("livekit".into(), Some("memql".into()), true))
        );
        assert_eq!(name("livekit.example.com"), None);
        assert_eq!(name("10.0.0.5"), None);
        assert_eq!(name("localhost"), None);
        assert!(host_matches("*.example.com", "livekit.example.com"));
        assert!(!host_matches("*.example.com", "a.livekit.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
    }

    #[test]
    fn metadata_and_settings_schema() {
        let m = Urls::metadata();
        assert_eq!(m.id, "urls");
        assert_eq!(m.rules[0].id, RULE);
        let schema: Value = serde_json::from_str(&m.settings_schema).unwrap();
        assert_eq!(
            schema.pointer("/properties/url_env/default/0"),
            Some(&Value::from("LIVEKIT_URL"))
        );
        assert!(schema.pointer("/properties/public_url_env").is_some());
        assert!(schema.pointer("/properties/image").is_some());
        let s: Settings = settings::parse("").unwrap();
        assert_eq!(s.url_env, default_url_env());
        assert_eq!(s.target.container, "livekit");
        assert!(Urls::validate(&render(""), r#"{"url_env": 1}"#).is_err());
    }
}
