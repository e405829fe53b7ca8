//! `livekit/use-external-ip`: the server must not discover its media IP by STUN.
//!
//! On AKS, STUN (`rtc.use_external_ip: true`) finds the node's egress SNAT IP,
//! not the livekit-rtc LoadBalancer IP that browsers must reach, so ICE fails
//! and calls connect without media. The runbook pins the media IP with NODE_IP
//! instead, which only works while `use_external_ip` is false.

use lkguard_policy_sdk::effective::{Document, Effective, Source};
use lkguard_policy_sdk::goyaml::{self, GoBool};
use lkguard_policy_sdk::livekit::{self, LivekitConfig};
use lkguard_policy_sdk::{settings, workload, Batch, Finding, Metadata, Policy, RuleInfo};

pub const RULE: &str = "livekit/use-external-ip";
const HINT: &str =
    "set `rtc.use_external_ip: false` in the livekit config and pin the media IP with NODE_IP";

pub struct UseExternalIp;

impl Policy for UseExternalIp {
    fn metadata() -> Metadata {
        Metadata {
            id: "use-external-ip".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            rules: vec![RuleInfo {
                id: RULE.into(),
                summary: "The livekit-server config sets rtc.use_external_ip: false explicitly".into(),
                rationale: "On AKS, STUN discovery (rtc.use_external_ip: true) finds the node's egress IP, \
                    not the livekit-rtc LoadBalancer IP browsers must reach, so ICE fails and calls have no \
                    media. The config must say use_external_ip: false and each overlay pins NODE_IP to its \
                    LoadBalancer IP. livekit-server reads the YAML with Go's yaml.v3 into a bool, so `yes`, \
                    `on` and `True` are true too; an env override LIVEKIT_RTC_USE_EXTERNAL_IP=true on the \
                    container beats the file. livekit-server v1.13.3 reads rtc.use_external_ip from the YAML (yaml.v3 into a Go bool), then from the generated LIVEKIT_RTC_USE_EXTERNAL_IP env or --rtc.use_external_ip flag (strconv.ParseBool), later winning (pkg/config NewConfig, updateFromCLI); an override strconv cannot parse (`yes`) is livekit/config-schema's finding. Topology load-balancer: applies. host-network (the livekit Helm chart's design): each node advertises its own public address, so use_external_ip should be true unless a node IP is given (NODE_IP, --node-ip, rtc.node_ip); with false and none, livekit-server offers the node's private addresses and leaves the public one to STUN, which covers UDP only (mediatransportutil NewWebRTCConfig): a warning. turn-gateway (a TURN gateway such as STUNner relays to the pods' own addresses): the value is not judged. In every topology a config livekit-server cannot read (not YAML, a path in LIVEKIT_CONFIG, a --config file no volume provides, a mounted config never passed) is reported here."
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
        // address found by STUN: there the value is judged the other way,
        // and a config the server cannot read is a finding in both.
        // Behind a TURN gateway the value is not judged (the relay decides
        // what reaches the pods), but the config must still be readable.
        let topology = scoped.topology;
        let host_network = topology != settings::Topology::LoadBalancer;
        let target = scoped.target;
        let objects = batch.objects();
        let templates = workload::pod_templates(&objects);
        let servers = target.find(&templates);
        let configs = livekit::configs(&objects, &servers);

        let mut findings = Vec::new();
        for cfg in configs.iter().filter(|c| c.judged(&servers)) {
            check_config(cfg, host_network, &mut findings);
        }
        for lk in &servers {
            let e = Effective::build(&objects, lk.clone());
            if topology == settings::Topology::HostNetwork {
                check_host_network(&e, &mut findings);
            } else if host_network {
                check_readable(&e, &mut findings);
            } else {
                check_server(&e, &mut findings);
            }
        }
        Ok(findings)
    }
}

/// What one server container ends up with. The documents themselves are
/// judged by [`check_config`]; here, what overrides them or replaces them.
fn check_server(e: &Effective, findings: &mut Vec<Finding>) {
    let object = e.object();
    let Some(setting) = e.get("rtc.use_external_ip") else {
        return;
    };
    if let (Source::Env(_) | Source::Arg(_), Some(place)) = (&setting.source, &setting.place) {
        let what = setting.describe();
        let config_says = e
            .from_document("rtc.use_external_ip")
            .and_then(|d| d.bool().ok().flatten());
        // A value strconv refuses (`yes`) stops the server at startup:
        // livekit/config-schema reports every override that does not parse,
        // so it is not reported twice.
        if setting.bool() == Ok(Some(true)) {
            findings.push(
                place
                    .error(RULE, match config_says {
                        Some(false) => format!("{what} sets rtc.use_external_ip to true, overriding the config's `use_external_ip: false`, and turns STUN discovery on: livekit-server advertises the node's egress IP, not the LoadBalancer IP"),
                        _ => format!("{what} sets rtc.use_external_ip to true, which turns STUN discovery on: livekit-server advertises the node's egress IP, not the LoadBalancer IP"),
                    })
                    .hint(format!("remove {what}; keep `rtc.use_external_ip: false` in the config")),
            );
        }
        return;
    }
    if !object.origin.complete {
        return;
    }
    if let Some(message) = document_problem(e, false) {
        findings.push(e.container_place().error(RULE, message).hint(HINT));
    }
}

/// Whether the server can read its config (the whole check in turn-gateway
/// topology). `true` when it cannot, and that was reported.
fn check_readable(e: &Effective, findings: &mut Vec<Finding>) -> bool {
    if !e.object().origin.complete {
        return false;
    }
    let Some(message) = document_problem(e, true) else {
        return false;
    };
    findings.push(
        e.container_place().error(RULE, message).hint(
            "pass the config with --config FILE (mounted from its ConfigMap) or LIVEKIT_CONFIG",
        ),
    );
    true
}

/// Host-network topology: each node must advertise its own public address,
/// found by STUN (`use_external_ip: true`) or given (a node IP).
fn check_host_network(e: &Effective, findings: &mut Vec<Finding>) {
    if !e.object().origin.complete || check_readable(e, findings) {
        return;
    }
    // (Past `document_problem`, an unresolved document is a hidden one.)
    if e.document.hidden() {
        return;
    }
    let Some(setting) = e.get("rtc.use_external_ip") else {
        return;
    };
    if setting.bool() != Ok(Some(false)) {
        return;
    }
    let node_ip = e.named_override("rtc.node_ip").is_some()
        || e.from_document("rtc.node_ip").is_some()
        || e.generated_override("rtc.node_ip.ipv4").is_some()
        || e.env.maybe_set_elsewhere("NODE_IP").is_some();
    if node_ip {
        return;
    }
    let place = setting.place.clone().unwrap_or_else(|| e.container_place());
    findings.push(
        place
            .warning(RULE, format!(
                "rtc.use_external_ip is false ({}) and no node IP is given (NODE_IP, --node-ip, rtc.node_ip): on the host network livekit-server then offers the node's private interface addresses and leaves the public one to STUN (mediatransportutil NewWebRTCConfig adds STUN servers in this case), which finds it for UDP only and only through a NAT that keeps the mapping: ICE over TCP, the fallback where UDP is blocked, offers only the private address",
                setting.describe()
            ))
            .hint("set `rtc.use_external_ip: true` (each node finds its public address by STUN), as the livekit Helm chart does"),
    );
}

/// Why the server cannot run on the config it was meant to, if it cannot:
/// a `--config` file it cannot read, or no config at all (perhaps one
/// mounted and never passed). In host-network topology running with no
/// config at all is judged by the value check instead.
fn document_problem(e: &Effective, host_network: bool) -> Option<String> {
    let c = e.container_name();
    let unset = if host_network {
        ""
    } else {
        ", so rtc.use_external_ip is never set explicitly"
    };
    Some(match &e.document {
        // Judged where the document is (`check_config`).
        Document::Body { .. } | Document::File { .. } => return None,
        Document::Unresolved { hidden: true, .. } => return None,
        Document::Unresolved { file, why, .. } => {
            format!("container `{c}` runs livekit-server with --config {file}, but {why}: livekit-server cannot read its config{unset}")
        }
        Document::None => {
            let mounted: Vec<String> = e
                .server
                .template
                .config_map_mounts(e.server.container.container)
                .into_iter()
                .map(|m| m.config_map)
                .collect();
            if mounted.is_empty() && host_network {
                return None;
            }
            if mounted.is_empty() {
                format!("container `{c}` runs livekit-server with no config (neither --config nor LIVEKIT_CONFIG){unset}")
            } else {
                let and = if host_network {
                    ""
                } else {
                    " and rtc.use_external_ip is never set explicitly"
                };
                format!(
                    "container `{c}` mounts ConfigMap {} but never passes it with --config (nor LIVEKIT_CONFIG), so livekit-server runs on its built-in defaults{and}",
                    mounted.join(", ")
                )
            }
        }
    })
}

fn check_config(cfg: &LivekitConfig, host_network: bool, findings: &mut Vec<Finding>) {
    let index = cfg.object.index;
    let doc = match &cfg.parsed {
        Ok(doc) => doc,
        Err(e) => {
            findings.push(Finding::error(
                RULE,
                index,
                cfg.path.clone(),
                format!("the livekit config in {} is not valid YAML, so livekit-server will not start: {e}", cfg.describe()),
            ));
            return;
        }
    };
    if !doc.is_mapping() {
        let message = match doc.as_str() {
            // Real manifests do this: LIVEKIT_CONFIG is the YAML itself
            // (`--config-body`), never a path.
            Some(text) if text.starts_with('/') || text.ends_with(".yaml") || text.ends_with(".yml") => format!(
                "{} holds the path `{text}`, but livekit-server takes it as the config text itself (--config-body): it fails to decode a string as its config and does not start",
                cfg.describe()
            ),
            _ => format!(
                "the livekit config in {} is not a YAML mapping, so livekit-server does not start",
                cfg.describe()
            ),
        };
        findings.push(Finding::error(RULE, index, cfg.path.clone(), message).hint(
            "put the YAML in a ConfigMap key, mount it and pass --config FILE, or set LIVEKIT_CONFIG to the YAML text",
        ));
        return;
    }
    // The value is judged per server there, with its env and node IP.
    if host_network {
        return;
    }
    let finding = |embedded: String, message: String| {
        Finding::error(RULE, index, cfg.path.clone(), message)
            .embedded(embedded)
            .hint(HINT)
    };
    match (cfg.get("rtc"), cfg.get("rtc.use_external_ip")) {
        (None, _) => findings.push(finding(
            String::new(),
            format!("the livekit config in {} has no `rtc` section, so rtc.use_external_ip is not set explicitly", cfg.describe()),
        )),
        (Some((_, rtc_at)), None) => findings.push(finding(
            rtc_at,
            "rtc.use_external_ip is not set; set it to false explicitly so a config change cannot turn STUN discovery on".into(),
        )),
        (_, Some((value, at))) => match goyaml::yaml_bool(value) {
            GoBool::Value(false) => {}
            GoBool::Value(true) => {
                let shown = goyaml::scalar_text(value).unwrap_or_default();
                findings.push(finding(
                    at,
                    format!("rtc.use_external_ip is `{shown}`, which livekit-server reads as true: STUN finds the node's egress IP, not the LoadBalancer IP, and ICE fails"),
                ));
            }
            GoBool::Null => findings.push(Finding {
                severity: lkguard_policy_sdk::Severity::Warning,
                ..finding(at, "rtc.use_external_ip is null: it reads as false, but say `false` explicitly".into())
            }),
            GoBool::Invalid(what) => findings.push(finding(
                at,
                format!("rtc.use_external_ip is {what}, which Go's yaml.v3 cannot decode into a bool, so livekit-server will not start"),
            )),
        },
    }
}

lkguard_policy_sdk::export_policy!(UseExternalIp);

#[cfg(test)]
mod tests {
    use super::*;
    use lkguard_policy_sdk::testkit::render;

    const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: livekit-config}\ndata:\n  livekit.yaml: |\n";
    const DEPLOY: &str = r#"
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: livekit}
spec:
  template:
    metadata: {labels: {app: livekit}}
    spec:
      containers:
        - name: livekit
          image: livekit/livekit-server:v1.9.1
          args: ["--config", "/etc/livekit/livekit.yaml"]
          volumeMounts: [{name: config, mountPath: /etc/livekit}]
      volumes: [{name: config, configMap: {name: livekit-config}}]
"#;

    fn run(config: &str, extra: &str) -> Vec<Finding> {
        let indented: String = config.lines().map(|l| format!("    {l}\n")).collect();
        let yaml = format!("{CM}{indented}{DEPLOY}{extra}");
        UseExternalIp::validate(&render(&yaml), "{}").unwrap()
    }

    #[test]
    fn explicit_false_passes() {
        assert_eq!(
            run("port: 7880\nrtc:\n  use_external_ip: false", ""),
            vec![]
        );
    }

    #[test]
    fn yaml_v3_truthy_words_fail_at_the_key() {
        for v in ["true", "yes", "on", "True", "'Y'"] {
            let f = run(&format!("rtc:\n  use_external_ip: {v}"), "");
            assert_eq!(f.len(), 1, "{v}");
            assert_eq!(f[0].embedded_path.as_deref(), Some("/rtc/use_external_ip"));
            assert_eq!(f[0].path, "/data/livekit.yaml");
        }
    }

    #[test]
    fn missing_key_points_at_rtc() {
        let f = run("port: 7880\nrtc:\n  tcp_port: 7881", "");
        assert_eq!(f[0].embedded_path.as_deref(), Some("/rtc"));
    }

    #[test]
    fn undecodable_value_is_reported() {
        let f = run("rtc:\n  use_external_ip: 1", "");
        assert!(f[0].message.contains("will not start"), "{}", f[0].message);
    }

    #[test]
    fn env_override_beats_the_file() {
        let yaml = format!(
            "{CM}    rtc:\n      use_external_ip: false\n{}",
            DEPLOY.replace(
                "          args:",
                "          env: [{name: LIVEKIT_RTC_USE_EXTERNAL_IP, value: \"true\"}]\n          args:"
            )
        );
        let f = UseExternalIp::validate(&render(&yaml), "{}").unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, "/spec/template/spec/containers/0/env/0/value");
    }

    #[test]
    fn inline_livekit_config_env_is_judged() {
        let yaml = DEPLOY.replace(
            "          args:",
            "          env: [{name: LIVEKIT_CONFIG, value: \"rtc:\\n  use_external_ip: true\\n\"}]\n          args:",
        );
        let yaml = format!("{CM}    rtc:\n      use_external_ip: false\n{yaml}");
        let f = UseExternalIp::validate(&render(&yaml), "{}").unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, "/spec/template/spec/containers/0/env/0/value");
        assert_eq!(f[0].embedded_path.as_deref(), Some("/rtc/use_external_ip"));
    }

    #[test]
    fn helm_chart_style_config_map_key_ref_is_followed() {
        // The livekit Helm chart passes config.yaml through LIVEKIT_CONFIG.
        let yaml = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: lk}}\ndata:\n  config.yaml: |\n    port: 7880\n    rtc:\n      use_external_ip: true\n{}",
            DEPLOY.replace(
                "          args:",
                "          env: [{name: LIVEKIT_CONFIG, valueFrom: {configMapKeyRef: {name: lk, key: config.yaml}}}]\n          args:"
            ).replace("volumes: [{name: config, configMap: {name: livekit-config}}]", "volumes: []")
        );
        let f = UseExternalIp::validate(&render(&yaml), "{}").unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].resource, f[0].path.as_str()),
            (0, "/data/config.yaml")
        );
        assert_eq!(f[0].embedded_path.as_deref(), Some("/rtc/use_external_ip"));
    }

    #[test]
    fn a_config_that_does_not_parse_fails_even_alone() {
        // A ConfigMap reviewed at admission comes without its Deployment; a
        // livekit.yaml broken by an edit must still be caught, not skipped
        // as "not a livekit config".
        let broken = format!("{CM}    port: 7880\n    rtc: {{use_external_ip: false\n");
        for yaml in [broken.clone(), format!("{broken}{DEPLOY}")] {
            let f = UseExternalIp::validate(&render(&yaml), "{}").unwrap();
            assert_eq!(f.len(), 1, "{f:?}");
            assert_eq!(
                (f[0].resource, f[0].path.as_str()),
                (0, "/data/livekit.yaml")
            );
            assert!(
                f[0].message.contains("is not valid YAML"),
                "{}",
                f[0].message
            );
            assert!(f[0].message.contains("line 3"), "{}", f[0].message);
        }
    }

    #[test]
    fn server_without_config_in_a_complete_render_fails() {
        let f = UseExternalIp::validate(&render(DEPLOY), "{}").unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].path, "/spec/template/spec/containers/0");
    }

    fn deploy_with(env: &str, args: &str) -> String {
        DEPLOY.replace(
            "          args: [\"--config\", \"/etc/livekit/livekit.yaml\"]",
            &format!("          args: {args}\n          env: {env}"),
        )
    }

    #[test]
    fn an_arg_or_env_from_override_points_at_its_place() {
        let cfg = format!("{CM}    rtc:\n      use_external_ip: false\n");
        let arg = format!(
            "{cfg}{}",
            deploy_with(
                "[]",
                "[--config, /etc/livekit/livekit.yaml, --rtc.use_external_ip=true]"
            )
        );
        let f = UseExternalIp::validate(&render(&arg), "{}").unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].path, "/spec/template/spec/containers/0/args/2");
        assert!(
            f[0].message.contains("overriding the config's"),
            "{}",
            f[0].message
        );

        let env_from = format!(
            "{cfg}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: lk-env}}\ndata: {{LIVEKIT_RTC_USE_EXTERNAL_IP: 'True'}}\n{}",
            deploy_with("[]", "[--config, /etc/livekit/livekit.yaml]")
                .replace("          env: []", "          envFrom: [{configMapRef: {name: lk-env}}]")
        );
        let f = UseExternalIp::validate(&render(&env_from), "{}").unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].resource, f[0].path.as_str()),
            (1, "/data/LIVEKIT_RTC_USE_EXTERNAL_IP")
        );
    }

    #[test]
    fn env_is_parsed_by_strconv_not_yaml() {
        let yaml = format!(
            "{CM}    rtc:\n      use_external_ip: false\n{}",
            deploy_with(
                "[{name: LIVEKIT_RTC_USE_EXTERNAL_IP, value: 'yes'}]",
                "[--config, /etc/livekit/livekit.yaml]"
            )
        );
        // Not true to strconv, and not false either: the server does not
        // start, which livekit/config-schema reports (not twice here).
        assert_eq!(UseExternalIp::validate(&render(&yaml), "{}").unwrap(), []);
        // `TRUE` spelled the Go way is true.
        let on = yaml.replace("value: 'yes'", "value: 'TRUE'");
        let f = UseExternalIp::validate(&render(&on), "{}").unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].message.contains("overriding the config"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn a_path_in_livekit_config_is_not_a_config() {
        let yaml = deploy_with(
            "[{name: LIVEKIT_CONFIG, value: /etc/livekit/livekit.yaml}]",
            "[]",
        );
        let f = UseExternalIp::validate(&render(&yaml), "{}").unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].path, "/spec/template/spec/containers/0/env/0/value");
        assert!(f[0].message.contains("holds the path"), "{}", f[0].message);
    }

    #[test]
    fn a_mounted_config_never_passed_runs_on_defaults() {
        let yaml = format!(
            "{CM}    rtc:\n      use_external_ip: false\n{}",
            deploy_with("[]", "[]")
        );
        let f = UseExternalIp::validate(&render(&yaml), "{}").unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].path, "/spec/template/spec/containers/0");
        assert!(
            f[0].message.contains("never passes it with --config"),
            "{}",
            f[0].message
        );
        // What that unread config says is not what runs: not judged too.
        let on = yaml.replace("use_external_ip: false", "use_external_ip: true");
        let f = UseExternalIp::validate(&render(&on), "{}").unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].path, "/spec/template/spec/containers/0");
        // Alone (a ConfigMap at admission, or a base), it is judged.
        let alone = on.split("---").next().unwrap().to_string();
        let f = UseExternalIp::validate(&render(&alone), "{}").unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].embedded_path.as_deref(), Some("/rtc/use_external_ip"));
    }

    #[test]
    fn host_network_wants_the_nodes_public_address() {
        const HN: &str = r#"{"topology": "host-network"}"#;
        let hn = |config: &str, env: &str| {
            let indented: String = config.lines().map(|l| format!("    {l}\n")).collect();
            let deploy = DEPLOY.replace(
                "          volumeMounts:",
                &format!("          env: {env}\n          volumeMounts:"),
            );
            UseExternalIp::validate(&render(&format!("{CM}{indented}{deploy}")), HN).unwrap()
        };
        // The Helm chart's way: STUN on each node.
        assert_eq!(hn("rtc:\n  use_external_ip: true", "[]"), vec![]);
        // False with no node IP: private host candidates, STUN for UDP
        // only (a warning: UDP may still work through the node's NAT).
        let f = hn("rtc:\n  use_external_ip: false", "[]");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].embedded_path.as_deref(), Some("/rtc/use_external_ip"));
        assert!(f[0].message.contains("private address"), "{}", f[0].message);
        assert_eq!(f[0].severity, lkguard_policy_sdk::Severity::Warning);
        // Unset is the default false, reported at the container.
        let f = hn("port: 7880", "[]");
        assert_eq!(f[0].path, "/spec/template/spec/containers/0");
        // A node IP given makes false fine.
        assert_eq!(
            hn(
                "rtc:\n  use_external_ip: false",
                "[{name: NODE_IP, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}]"
            ),
            vec![]
        );
        // A config it cannot read is a finding in this topology too.
        let unread = format!(
            "{CM}    rtc:\n      use_external_ip: true\n{}",
            DEPLOY.replace("[\"--config\", \"/etc/livekit/livekit.yaml\"]", "[]")
        );
        let f = UseExternalIp::validate(&render(&unread), HN).unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].message.contains("never passes it with --config"),
            "{}",
            f[0].message
        );
        assert!(
            !f[0].message.contains("never set explicitly"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn turn_gateway_judges_only_whether_the_config_is_read() {
        const TG: &str = r#"{"topology": "turn-gateway"}"#;
        let tg = |config: &str| {
            let indented: String = config.lines().map(|l| format!("    {l}\n")).collect();
            UseExternalIp::validate(&render(&format!("{CM}{indented}{DEPLOY}")), TG).unwrap()
        };
        // The relay decides what reaches the pods: the value is not judged.
        assert_eq!(tg("rtc:\n  use_external_ip: true"), vec![]);
        assert_eq!(tg("port: 7880"), vec![]);
        let unread = format!(
            "{CM}    rtc:\n      use_external_ip: false\n{}",
            DEPLOY.replace("[\"--config\", \"/etc/livekit/livekit.yaml\"]", "[]")
        );
        let f = UseExternalIp::validate(&render(&unread), TG).unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].message.contains("never passes it with --config"),
            "{}",
            f[0].message
        );
    }
}
