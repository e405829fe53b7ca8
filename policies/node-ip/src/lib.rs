//! `livekit/node-ip`: each environment advertises its own LoadBalancer IP.
//!
//! With `use_external_ip: false`, livekit-server advertises NODE_IP in its ICE
//! candidates. It must be the livekit-rtc LoadBalancer's public IP: the node IP
//! (`status.hostIP`), a placeholder or another environment's IP all yield
//! candidates browsers cannot reach, and calls join without audio or video.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use lkguard_policy_sdk::effective::{node_ip_is_struct, Effective, Raw};
use lkguard_policy_sdk::env::EnvValue;
use lkguard_policy_sdk::livekit::LivekitContainer;
use lkguard_policy_sdk::{settings, workload, Batch, Finding, Metadata, Object, Policy, RuleInfo};

pub const RULE: &str = "livekit/node-ip";
const AZURE_IPV4: &str = "service.beta.kubernetes.io/azure-load-balancer-ipv4";

pub struct NodeIp;

/// NODE_IP as livekit-server parses it (mediatransportutil `rtcconfig.NodeIP.
/// UnmarshalString`): up to two comma-separated addresses, at most one IPv4
/// and one IPv6. On error the server drops the value and auto-detects.
#[derive(Debug, PartialEq, Eq)]
pub struct NodeIpValue {
    pub v4: Option<IpAddr>,
    pub v6: Option<IpAddr>,
}

pub fn parse_node_ip(s: &str) -> Result<NodeIpValue, String> {
    if s.is_empty() {
        return Err("is empty".into());
    }
    let parts: Vec<&str> = s.split(',').collect();
    if parts.len() > 2 {
        return Err("has more than two comma-separated addresses".into());
    }
    let mut out = NodeIpValue { v4: None, v6: None };
    for part in parts {
        let ip: IpAddr = part
            .trim_matches(' ')
            .parse()
            .map_err(|_| "is not an IP address".to_string())?;
        // Go's To4() also accepts IPv4-mapped IPv6 (::ffff:a.b.c.d).
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let slot = if ip.is_ipv4() {
            &mut out.v4
        } else {
            &mut out.v6
        };
        if slot.is_some() {
            return Err("has two addresses of one family".into());
        }
        *slot = Some(ip);
    }
    Ok(out)
}

#[derive(Debug)]
struct Advertised {
    origin: u32,
    resource: u32,
    path: String,
    ip: IpAddr,
    /// The Service of its own render that pins this IP, if one does: then
    /// this environment is the IP's owner.
    pinned_by: Option<String>,
}

impl Policy for NodeIp {
    fn metadata() -> Metadata {
        Metadata {
            id: "node-ip".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            rules: vec![RuleInfo {
                id: RULE.into(),
                summary: "Each overlay sets NODE_IP on the livekit container to its own livekit-rtc LoadBalancer IP".into(),
                rationale: "With use_external_ip: false, livekit-server advertises NODE_IP in its ICE candidates. \
                    On AKS that must be the public IP of the livekit-rtc LoadBalancer Service: status.hostIP is \
                    the node's private IP, a placeholder or empty value is dropped (the server then auto-detects \
                    a node address), and an IP copied from another environment sends browsers to the wrong \
                    cluster. Where the Service pins its IP (spec.loadBalancerIP or the \
                    azure-load-balancer-ipv4 annotation) NODE_IP must equal it. Bases are exempt: NODE_IP is \
                    per environment. livekit-server v1.13.3 parses NODE_IP or --node-ip (the arg wins) with mediatransportutil rtcconfig.NodeIP: one IPv4 and/or one IPv6, comma-separated; on a parse error, or when rtc.node_ip already set that family in the YAML, the value is dropped without a word (cmd/server getConfig). Before v1.10.0 (judged by the image tag) rtc.node_ip was one address and NODE_IP replaced it outright, so the comma form is not read and a config value only matters without NODE_IP. Topology load-balancer: applies. host-network, turn-gateway: does not apply (no LoadBalancer IP to advertise)."
                    .into(),
            }],
            settings_schema: settings::schema(serde_json::json!({
                "topology": settings::topology_schema()
            })),
        }
    }

    fn validate(batch: &Batch, settings: &str) -> Result<Vec<Finding>, String> {
        let scoped: settings::Scoped = settings::parse(settings)?;
        // The Helm chart's host-network design advertises each node's own
        // address found by STUN, and a TURN gateway relays to the pods'
        // own addresses: this rule exists for the load balancer.
        if scoped.topology != settings::Topology::LoadBalancer {
            return Ok(Vec::new());
        }
        let target = scoped.target;
        let objects = batch.objects();
        let templates = workload::pod_templates(&objects);
        let mut findings = Vec::new();
        let mut advertised = Vec::new();
        for lk in target.find(&templates) {
            if lk.template.object.origin.deployable {
                check_container(&lk, &objects, &mut findings, &mut advertised);
            }
        }
        cross_environment(batch, &advertised, &mut findings);
        Ok(findings)
    }
}

/// Where NODE_IP's literal value comes from: (resource, pointer, value).
enum Source {
    /// Resource, pointer, value, and the server's release (from its tag).
    Literal(u32, String, String, Option<(u32, u32, u32)>),
    Done,
}

fn resolve(lk: &LivekitContainer, objects: &[Object], findings: &mut Vec<Finding>) -> Source {
    let e = Effective::build(objects, lk.clone());
    let c = lk.container.container;
    let index = lk.template.object.index;
    // rtc.node_ip in the YAML (or its generated env vars) is set before the
    // named flag: NodeIP.UnmarshalString then fails on the taken IPv4 slot
    // and livekit-server drops the error, so NODE_IP is silently ignored
    // (cmd/server `getConfig`, mediatransportutil `rtcconfig.NodeIP`).
    let preset = e.from_document("rtc.node_ip").or_else(|| {
        ["rtc.node_ip", "rtc.node_ip.ipv4", "rtc.node_ip.ipv6"]
            .iter()
            .find_map(|p| e.generated_override(p))
    });
    // An older release lets NODE_IP replace the config's value.
    let replaced = !node_ip_is_struct(e.version) && e.named_override("rtc.node_ip").is_some();
    if let Some(preset) = preset.filter(|_| !replaced) {
        if let Some(place) = &preset.place {
            let shown = preset.text().unwrap_or_default();
            let ignored = match e.named_override("rtc.node_ip") {
                Some(n) => format!(
                    "livekit-server keeps it and silently ignores {}",
                    n.describe()
                ),
                None => "every environment that loads this config advertises it".to_string(),
            };
            findings.push(
                place
                    .error(RULE, format!("rtc.node_ip `{shown}` is set in {}: {ignored}, instead of its own LoadBalancer IP", preset.describe()))
                    .hint("remove rtc.node_ip from the config; set NODE_IP per overlay"),
            );
            return Source::Done;
        }
    }
    let Some(setting) = e.named_override("rtc.node_ip") else {
        if let Some(elsewhere) = e.env.maybe_set_elsewhere("NODE_IP") {
            findings.push(elsewhere.place.warning(
                RULE,
                format!(
                "NODE_IP may come from {} {}, which is not in this render, so it cannot be checked",
                elsewhere.kind, elsewhere.name
            ),
            ));
            return Source::Done;
        }
        let at = if c.env.is_some() {
            format!("{}/env", lk.container.path)
        } else {
            lk.container.path.clone()
        };
        findings.push(
            Finding::error(RULE, index, at, format!("container `{}` has no NODE_IP env, so livekit-server advertises an auto-detected node address instead of the LoadBalancer IP", c.name))
                .hint("set env NODE_IP to this environment's livekit-rtc LoadBalancer EXTERNAL-IP in the overlay"),
        );
        return Source::Done;
    };
    let Some(place) = setting.place.clone() else {
        return Source::Done;
    };
    // `--node-ip=$(POD_IP)`: the kubelet substitutes the variable, so the
    // value is whatever that variable is (a fieldRef, say).
    let raw = match &setting.raw {
        Raw::Text(text) if text.contains("$(") => {
            let whole = text
                .trim()
                .strip_prefix("$(")
                .and_then(|t| t.strip_suffix(')'))
                .and_then(|n| e.env.get(n));
            // A name the pod does not define stays as written.
            let defined = std::cell::Cell::new(false);
            lkguard_policy_sdk::env::expand_with(text, |n| {
                defined.set(defined.get() || e.env.get(n).is_some());
                None
            });
            match whole.map(|v| &v.value) {
                Some(EnvValue::Unknown(why)) => Raw::Unknown(why.clone()),
                _ if defined.get() => Raw::Unknown(format!("a variable in `{}`", text.trim())),
                _ => setting.raw.clone(),
            }
        }
        raw => raw.clone(),
    };
    match &raw {
        Raw::Text(text) => Source::Literal(place.resource, place.path, text.clone(), e.version),
        Raw::Unknown(why) if why.starts_with("fieldRef") => {
            let field = why.trim_start_matches("fieldRef ");
            findings.push(
                place
                    .error(RULE, format!("{} comes from fieldRef {field}, the pod's or node's own address, not the LoadBalancer IP browsers must reach", setting.describe()))
                    .hint("set NODE_IP to the livekit-rtc LoadBalancer EXTERNAL-IP as a literal value"),
            );
            Source::Done
        }
        _ => {
            findings.push(place.warning(RULE, format!("{} comes from a reference that is not in this render, so its value cannot be checked", setting.describe())));
            Source::Done
        }
    }
}

/// The LoadBalancer IP a Service pins, if it pins one.
fn pinned_ip(service: &Service) -> Option<String> {
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() != Some("LoadBalancer") {
        return None;
    }
    service
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(AZURE_IPV4).cloned())
        .or_else(|| spec.load_balancer_ip.clone())
        .filter(|ip| !ip.is_empty())
}

fn check_container(
    lk: &LivekitContainer,
    objects: &[Object],
    findings: &mut Vec<Finding>,
    advertised: &mut Vec<Advertised>,
) {
    let Source::Literal(resource, at, value, version) = resolve(lk, objects, findings) else {
        return;
    };
    if !node_ip_is_struct(version) && value.contains(',') {
        let (a, b, c) = version.unwrap_or_default();
        findings.push(
            Finding::error(RULE, resource, at, format!("NODE_IP lists more than one address, but livekit-server v{a}.{b}.{c} takes NODE_IP as one address (the `ipv4,ipv6` form is read since v1.10.0), so it advertises no usable address"))
                .hint("set NODE_IP to the livekit-rtc LoadBalancer EXTERNAL-IP alone, or run livekit-server v1.10.0 or later"),
        );
        return;
    }
    let parsed = match parse_node_ip(&value) {
        Ok(p) => p,
        Err(why) => {
            // Never echo the value: a placeholder is harmless, but this path
            // also handles values pulled from ConfigMaps.
            findings.push(
                Finding::error(RULE, resource, at, format!("NODE_IP {why}, so livekit-server drops it and advertises an auto-detected node address"))
                    .hint("set NODE_IP to the livekit-rtc LoadBalancer EXTERNAL-IP, e.g. 20.61.14.7"),
            );
            return;
        }
    };
    let Some(ip) = parsed.v4.or(parsed.v6) else {
        return;
    };
    if ip.is_loopback() || ip.is_unspecified() {
        findings.push(Finding::error(
            RULE,
            resource,
            at,
            format!("NODE_IP {ip} is not an address browsers can reach"),
        ));
        return;
    }
    let object = lk.template.object;
    let mut pinned_by = None;
    for svc_obj in objects
        .iter()
        .filter(|o| o.is("", "Service") && o.origin == object.origin && o.same_namespace(object))
    {
        let Some(svc) = svc_obj.typed::<Service>() else {
            continue;
        };
        let selector: BTreeMap<String, String> = svc
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default();
        if !lk.template.selected_by(&selector) {
            continue;
        }
        let Some(pin) = pinned_ip(&svc) else { continue };
        let matches = pin
            .parse::<IpAddr>()
            .ok()
            .is_some_and(|p| Some(p) == parsed.v4 || Some(p) == parsed.v6);
        if matches {
            pinned_by = Some(svc_obj.name().to_string());
        } else {
            findings.push(
                Finding::error(RULE, resource, at.clone(), format!("NODE_IP {ip} is not the IP {pin} that Service {} pins for its LoadBalancer, so ICE candidates point at the wrong address", svc_obj.name()))
                    .hint(format!("set NODE_IP to {pin}")),
            );
        }
    }
    advertised.push(Advertised {
        origin: object.resource.origin,
        resource,
        path: at,
        ip,
        pinned_by,
    });
}

/// Two environments advertising one IP means one of them sends its browsers
/// to the other's cluster. When the render shows whose IP it is (a Service
/// of that environment pins it), only the others are wrong.
fn cross_environment(batch: &Batch, advertised: &[Advertised], findings: &mut Vec<Finding>) {
    let name = |origin: u32| {
        batch
            .origins
            .get(origin as usize)
            .map_or("another environment", |o| o.name.as_str())
    };
    for a in advertised {
        let others: Vec<&Advertised> = advertised
            .iter()
            .filter(|b| b.ip == a.ip && b.origin != a.origin)
            .collect();
        let Some(first) = others.first() else {
            continue;
        };
        let owner = others.iter().find(|b| b.pinned_by.is_some());
        match (&a.pinned_by, owner) {
            // Its own Service pins it and no other environment's does.
            (Some(_), None) => {}
            (None, Some(owner)) => findings.push(
                Finding::error(RULE, a.resource, a.path.clone(), format!(
                    "NODE_IP {} is the LoadBalancer IP that Service {} of {} pins, so this environment sends its browsers to {}'s cluster",
                    a.ip,
                    owner.pinned_by.as_deref().unwrap_or_default(),
                    name(owner.origin),
                    name(owner.origin)
                ))
                .hint("set NODE_IP to this environment's own livekit-rtc LoadBalancer EXTERNAL-IP (kubectl get svc livekit-rtc -o wide in its cluster), and pin it on its Service"),
            ),
            _ => findings.push(Finding::error(
                RULE,
                a.resource,
                a.path.clone(),
                format!(
                    "NODE_IP {} is also the NODE_IP of {}; each environment has its own LoadBalancer IP",
                    a.ip,
                    name(first.origin)
                ),
            )),
        }
    }
}

lkguard_policy_sdk::export_policy!(NodeIp);

#[cfg(test)]
mod tests {
    use super::*;
    use lkguard_policy_sdk::testkit::{batch, render, Source as Src};

    fn deploy(env: &str) -> String {
        format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: livekit, namespace: memql}}
spec:
  template:
    metadata: {{labels: {{app: livekit}}}}
    spec:
      containers:
        - name: livekit
          image: livekit/livekit-server:v1.13.3
{env}
---
apiVersion: v1
kind: Service
metadata:
  name: livekit-rtc
  namespace: memql
  annotations: {{service.beta.kubernetes.io/azure-load-balancer-ipv4: 20.61.14.7}}
spec:
  type: LoadBalancer
  selector: {{app: livekit}}
"#
        )
    }

    fn env(value: &str) -> String {
        format!("          env:\n            - name: NODE_IP\n              {value}")
    }

    fn run(yaml: &str) -> Vec<Finding> {
        NodeIp::validate(&render(yaml), "{}").unwrap()
    }

    #[test]
    fn parses_like_livekit() {
        assert!(parse_node_ip("20.61.14.7").is_ok());
        let p = parse_node_ip("20.61.14.7,2001:db8::7").unwrap();
        assert_eq!(p.v4, Some("20.61.14.7".parse().unwrap()));
        assert!(parse_node_ip("20.61.14.7, 20.61.14.8").is_err());
        assert!(parse_node_ip("a,b,c").is_err());
        assert!(parse_node_ip("<LB_IP>").is_err());
        assert!(parse_node_ip("").is_err());
        assert_eq!(
            parse_node_ip("::ffff:20.61.14.7").unwrap().v4,
            Some("20.61.14.7".parse().unwrap())
        );
    }

    #[test]
    fn literal_equal_to_pinned_ip_passes() {
        assert_eq!(run(&deploy(&env("value: \"20.61.14.7\""))), vec![]);
    }

    #[test]
    fn kubelet_expansion_is_followed() {
        let e = "          env:\n            - {name: LB, value: 20.61.14.7}\n            - {name: NODE_IP, value: $(LB)}";
        assert_eq!(run(&deploy(e)), vec![]);
        // `--node-ip=$(POD_IP)`: the kubelet substitutes the pod's address,
        // which is the finding, not "not an IP address".
        let arg = "          env:\n            - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}\n          args: ['--node-ip=$(POD_IP)']";
        let f = run(&deploy(arg));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].path, "/spec/template/spec/containers/0/args/0");
        assert!(
            f[0].message
                .starts_with("flag --node-ip comes from fieldRef status.podIP"),
            "{}",
            f[0].message
        );
        // A name the pod does not define stays `$(X)`, which is no address.
        let f = run(&deploy("          env: [{name: NODE_IP, value: $(NOPE)}]"));
        assert!(f[0].message.contains("is not"), "{}", f[0].message);
    }

    #[test]
    fn missing_host_ip_placeholder_and_mismatch_fail_where_they_are() {
        let f = run(&deploy("          env: []"));
        assert_eq!(f[0].path, "/spec/template/spec/containers/0/env");
        let f = run(&deploy(&env(
            "valueFrom: {fieldRef: {fieldPath: status.hostIP}}",
        )));
        assert_eq!(
            f[0].path,
            "/spec/template/spec/containers/0/env/0/valueFrom"
        );
        let f = run(&deploy(&env("value: REPLACE_ME")));
        assert_eq!(f[0].path, "/spec/template/spec/containers/0/env/0/value");
        assert!(!f[0].message.contains("REPLACE_ME"));
        let f = run(&deploy(&env("value: 20.61.99.21")));
        assert_eq!(f.len(), 1);
        assert!(f[0].message.contains("20.61.14.7"));
    }

    #[test]
    fn bases_are_exempt() {
        let b = batch(&[Src {
            name: "base",
            deployable: false,
            complete: false,
            yaml: &deploy("          env: []"),
        }]);
        assert_eq!(NodeIp::validate(&b, "{}").unwrap(), vec![]);
    }

    #[test]
    fn two_environments_may_not_share_an_ip() {
        let one = deploy(&env("value: \"20.61.14.7\""));
        let b = batch(&[
            Src {
                name: "overlays/staging",
                deployable: true,
                complete: true,
                yaml: &one,
            },
            Src {
                name: "overlays/production",
                deployable: true,
                complete: true,
                yaml: &one,
            },
        ]);
        let f = NodeIp::validate(&b, "{}").unwrap();
        assert_eq!(f.len(), 2);
        assert!(f[0].message.contains("overlays/production"));
    }

    #[test]
    fn of_two_environments_sharing_an_ip_the_one_that_pins_it_is_right() {
        let lb = "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: livekit-rtc\n  namespace: memql\n  annotations: {service.beta.kubernetes.io/azure-load-balancer-ipv4: \"20.61.14.8\"}\nspec:\n  type: LoadBalancer\n  selector: {app: livekit}\n";
        // The Deployment alone: staging pins no IP of its own.
        let full = deploy(&env("value: \"20.61.14.8\""));
        let copied = full.split("---").next().unwrap().to_string();
        let owner = format!("{copied}{lb}");
        let b = batch(&[
            Src {
                name: "overlays/staging",
                deployable: true,
                complete: true,
                yaml: &copied,
            },
            Src {
                name: "overlays/production",
                deployable: true,
                complete: true,
                yaml: &owner,
            },
        ]);
        let f = NodeIp::validate(&b, "{}").unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].resource, 0, "staging, not production: {f:?}");
        assert!(
            f[0].message
                .contains("Service livekit-rtc of overlays/production pins"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn dual_stack_node_ip_is_valid_and_its_ipv4_must_match() {
        assert_eq!(
            run(&deploy(&env("value: \"20.61.14.7,2001:db8::7\""))),
            vec![]
        );
        let f = run(&deploy(&env("value: \"2001:db8::7,20.61.99.21\"")));
        assert_eq!(f.len(), 1, "{f:?}");
        // A space-separated pair is not what livekit-server parses.
        let f = run(&deploy(&env("value: \"20.61.14.7 2001:db8::7\"")));
        assert!(f[0].message.contains("drops it"), "{}", f[0].message);
    }

    #[test]
    fn a_node_ip_arg_beats_the_env() {
        let e = "          args: [--node-ip, 20.61.99.21]\n          env: [{name: NODE_IP, value: 20.61.14.7}]";
        let f = run(&deploy(e));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].path, "/spec/template/spec/containers/0/args/1");
        let e = "          args: [--node-ip=20.61.14.7]\n          env: [{name: NODE_IP, value: 10.0.0.1}]";
        assert_eq!(run(&deploy(e)), vec![]);
    }

    #[test]
    fn node_ip_in_the_config_makes_livekit_ignore_the_env() {
        let cm = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: lk, namespace: memql}\ndata:\n  livekit.yaml: |\n    rtc:\n      use_external_ip: false\n      node_ip: 20.61.99.21\n";
        let e = "          args: [--config, /etc/livekit/livekit.yaml]\n          volumeMounts: [{name: c, mountPath: /etc/livekit}]\n          env: [{name: NODE_IP, value: 20.61.14.7}]\n      volumes: [{name: c, configMap: {name: lk}}]";
        let f = run(&format!("{}{cm}", deploy(e)));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].resource, f[0].path.as_str()),
            (2, "/data/livekit.yaml")
        );
        assert_eq!(f[0].embedded_path.as_deref(), Some("/rtc/node_ip"));
        assert!(
            f[0].message.contains("silently ignores env NODE_IP"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn before_v1_10_node_ip_replaces_the_config_and_is_one_address() {
        let v19 = |y: String| y.replace("livekit-server:v1.13.3", "livekit-server:v1.9.1");
        let cm = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: lk, namespace: memql}\ndata:\n  livekit.yaml: |\n    rtc:\n      use_external_ip: false\n      node_ip: 20.61.99.21\n";
        let e = "          args: [--config, /etc/livekit/livekit.yaml]\n          volumeMounts: [{name: c, mountPath: /etc/livekit}]\n          env: [{name: NODE_IP, value: 20.61.14.7}]\n      volumes: [{name: c, configMap: {name: lk}}]";
        // NODE_IP (the LoadBalancer IP) replaces the config's value.
        assert_eq!(run(&v19(format!("{}{cm}", deploy(e)))), vec![]);
        // Without NODE_IP the config's value is what every env advertises.
        let without = e.replace("\n          env: [{name: NODE_IP, value: 20.61.14.7}]", "");
        let f = run(&v19(format!("{}{cm}", deploy(&without))));
        assert_eq!(f[0].embedded_path.as_deref(), Some("/rtc/node_ip"), "{f:?}");
        // The `ipv4,ipv6` form is not read before v1.10.0.
        let f = run(&v19(deploy(&env("value: \"20.61.14.7,2001:db8::7\""))));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].message.contains("v1.9.1 takes NODE_IP as one address"),
            "{}",
            f[0].message
        );
        assert_eq!(run(&v19(deploy(&env("value: 20.61.14.7")))), vec![]);
    }
}
