//! `livekit/use-external-ip`: the server must not discover its media IP by STUN.
//!
//! On AKS, STUN (`rtc.use_external_ip: true`) finds the node's egress SNAT IP,
//! not the livekit-rtc LoadBalancer IP that browsers must reach, so ICE fails
//! and calls connect without media. The runbook pins the media IP with NODE_IP
//! instead, which only works while `use_external_ip` is false.

use lkguard_policy_sdk::goyaml::{self, GoBool};
use lkguard_policy_sdk::livekit::{self, LivekitConfig, Target};
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
                    container beats the file."
                    .into(),
            }],
            settings_schema: settings::schema(serde_json::json!({})),
        }
    }

    fn validate(batch: &Batch, settings: &str) -> Result<Vec<Finding>, String> {
        let target: Target = settings::parse(settings)?;
        let objects = batch.objects();
        let templates = workload::pod_templates(&objects);
        let servers = target.find(&templates);
        let configs = livekit::configs(&objects, &servers);

        let mut findings = Vec::new();
        for cfg in &configs {
            check_config(cfg, &mut findings);
        }
        for lk in &servers {
            let c = lk.container.container;
            let object = lk.template.object;
            if let Some((i, env)) = workload::env_named(c, "LIVEKIT_RTC_USE_EXTERNAL_IP") {
                let at = format!("{}/value", workload::env_path(&lk.container.path, i));
                match env.value.as_deref().map(goyaml::strconv_bool) {
                    Some(Some(true)) => findings.push(
                        Finding::error(RULE, object.index, at, "env LIVEKIT_RTC_USE_EXTERNAL_IP=true overrides the config file and turns STUN discovery on")
                            .hint("remove the LIVEKIT_RTC_USE_EXTERNAL_IP env entry"),
                    ),
                    Some(None) => findings.push(Finding::error(
                        RULE,
                        object.index,
                        at,
                        "env LIVEKIT_RTC_USE_EXTERNAL_IP is not a Go boolean (strconv.ParseBool), so livekit-server fails to start",
                    )),
                    _ => {}
                }
            }
            let loader = (object.index, lk.container.path.clone());
            let has_config = configs.iter().any(|cfg| cfg.loaded_by.contains(&loader));
            if object.origin.complete && !has_config {
                let mounted: Vec<String> = lk
                    .template
                    .config_map_mounts(c)
                    .into_iter()
                    .map(|m| m.config_map)
                    .collect();
                let message = if mounted.is_empty() {
                    format!("container `{}` runs livekit-server with no config from this render, so rtc.use_external_ip is never set explicitly", c.name)
                } else {
                    format!(
                        "container `{}` mounts ConfigMap {} but no livekit config from it is in this render, so rtc.use_external_ip is never set explicitly",
                        c.name,
                        mounted.join(", ")
                    )
                };
                findings.push(
                    Finding::error(RULE, object.index, lk.container.path.clone(), message)
                        .hint(HINT),
                );
            }
        }
        Ok(findings)
    }
}

fn check_config(cfg: &LivekitConfig, findings: &mut Vec<Finding>) {
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
        findings.push(Finding::error(
            RULE,
            index,
            cfg.path.clone(),
            format!(
                "the livekit config in {} is not a YAML mapping",
                cfg.describe()
            ),
        ));
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
}
