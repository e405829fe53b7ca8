//! Finding livekit-server in a batch: its containers and the config it loads.
//!
//! livekit-server reads one YAML document: `--config-body` / env
//! `LIVEKIT_CONFIG` when set, otherwise the file named by `--config`
//! (livekit/livekit `cmd/server/main.go`). On Kubernetes that file is a
//! ConfigMap key mounted as a volume, so the config is found by following the
//! container's `--config` argument through its volumeMounts to the ConfigMap
//! in the batch, and, for ConfigMaps no container in the batch mounts (a base,
//! or an admission request for the ConfigMap alone), by its content.

use serde::Deserialize;
use serde_yaml::Value as Yaml;

use crate::image;
use crate::model::Object;
use crate::pointer;
use crate::settings::{default_container, default_image};
use crate::workload::{self, ContainerKind, ContainerRef, PodTemplate};

/// Whether an env name carries a LiveKit credential: `LIVEKIT_KEYS`,
/// `LIVEKIT_API_KEY`, `POLYPHON_LIVEKIT_API_SECRET`, `LIVEKIT_SECRET`...
/// URLs and file paths are not credentials.
pub fn is_credential(name: &str, extra: &[String]) -> bool {
    if extra.iter().any(|e| e == name) {
        return true;
    }
    let n = name.to_ascii_uppercase();
    n.contains("LIVEKIT")
        && ["_API_KEY", "_API_SECRET", "_KEYS", "_SECRET", "_KEY"]
            .iter()
            .any(|s| n.ends_with(s))
}

/// Whether a name (env, data key) may hold any secret, LiveKit's or not.
/// Wider than [`is_credential`]: the host masks these in every snippet it shows.
pub fn is_sensitive_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase().replace(['-', '.'], "_");
    is_credential(&n, &[])
        || [
            "SECRET",
            "PASSWORD",
            "PASSWD",
            "TOKEN",
            "PRIVATE",
            "CREDENTIAL",
            "APIKEY",
        ]
        .iter()
        .any(|w| n.contains(w))
        || n.ends_with("_KEY")
        || n.ends_with("_KEYS")
        || n == "KEYS"
}

/// How a policy recognises the livekit-server container (from its settings).
#[derive(Debug, Clone, Deserialize)]
pub struct Target {
    #[serde(default = "default_image")]
    pub image: String,
    #[serde(default = "default_container")]
    pub container: String,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            image: default_image(),
            container: default_container(),
        }
    }
}

/// A livekit-server container and the pod template it lives in.
#[derive(Debug, Clone)]
pub struct LivekitContainer<'t, 'o, 'a> {
    pub template: &'t PodTemplate<'o, 'a>,
    pub container: ContainerRef<'t>,
}

impl LivekitContainer<'_, '_, '_> {
    /// Whether the server's ports are the node's: the pod sets
    /// `hostNetwork: true`, or the container binds a `hostPort`. The
    /// host-network topology needs it; without it nothing on the node's
    /// address reaches the pod, and two pods on one node cannot clash.
    pub fn ports_on_node(&self) -> bool {
        self.template.spec.host_network == Some(true)
            || self
                .container
                .container
                .ports
                .iter()
                .flatten()
                .any(|p| p.host_port.is_some_and(|h| h > 0))
    }
}

impl Target {
    /// By image (any registry prefix), or a main container with the configured
    /// name for images mirrored under another repository name.
    pub fn matches(&self, c: &ContainerRef) -> bool {
        let by_image = c
            .container
            .image
            .as_deref()
            .is_some_and(|i| image::parse(i).is_repository(&self.image));
        by_image || (c.kind == ContainerKind::Main && c.container.name == self.container)
    }

    pub fn find<'t, 'o, 'a>(
        &self,
        templates: &'t [PodTemplate<'o, 'a>],
    ) -> Vec<LivekitContainer<'t, 'o, 'a>> {
        let mut out = Vec::new();
        for template in templates {
            for container in template.containers() {
                // An init container that merely shares the image (a config
                // renderer, say) does not run the server.
                if container.kind == ContainerKind::Main && self.matches(&container) {
                    out.push(LivekitContainer {
                        template,
                        container,
                    });
                }
            }
        }
        out
    }
}

/// Where a config document was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A ConfigMap data key.
    ConfigMap { name: String, key: String },
    /// A literal `LIVEKIT_CONFIG` env value (livekit-server's `--config-body`).
    Env { container: String },
}

/// One livekit-server config document in the batch.
#[derive(Debug, Clone)]
pub struct LivekitConfig<'o, 'a> {
    /// The ConfigMap, or the workload whose env holds the config.
    pub object: &'o Object<'a>,
    /// Pointer to the string holding the YAML.
    pub path: String,
    pub source: ConfigSource,
    /// The document as livekit-server's yaml.v3 would see it; `Err` holds the
    /// parse error (livekit-server refuses to start).
    pub parsed: Result<Yaml, String>,
    /// Livekit containers that load this document: (object index, container pointer).
    pub loaded_by: Vec<(u32, String)>,
}

impl LivekitConfig<'_, '_> {
    /// Whether a rule about what the server runs with should judge this
    /// document: one a server loads, or one that nothing in the batch could
    /// load (a base, a ConfigMap at admission), judged as a server would.
    /// A document no server of its render loads while servers are there is
    /// not what runs; the server's own findings say what does.
    pub fn judged(&self, servers: &[LivekitContainer]) -> bool {
        !self.loaded_by.is_empty()
            || !servers.iter().any(|s| {
                let o = s.template.object;
                o.origin == self.object.origin && o.same_namespace(self.object)
            })
    }

    /// The value at a dotted path (`rtc.use_external_ip`), with its pointer.
    pub fn get(&self, dotted: &str) -> Option<(&Yaml, String)> {
        let mut node = self.parsed.as_ref().ok()?;
        let mut at = String::new();
        for part in dotted.split('.') {
            node = node.as_mapping()?.get(part)?;
            at = pointer::push(&at, part);
        }
        Some((node, at))
    }

    /// Whether the kubelet replaces `text` before livekit-server sees it: a
    /// config given as a `LIVEKIT_CONFIG` env value is `$(NAME)`-expanded
    /// from the container's earlier variables, so a value made only of
    /// such references (and separators) is no literal in the manifest.
    pub fn kubelet_expands(&self, text: &str) -> bool {
        if !matches!(self.source, ConfigSource::Env { .. }) {
            return false;
        }
        crate::env::only_references(text, |_| true)
    }

    pub fn describe(&self) -> String {
        match &self.source {
            ConfigSource::ConfigMap { name, key } => format!("ConfigMap {name} key {key}"),
            ConfigSource::Env { container } => format!("LIVEKIT_CONFIG of container {container}"),
        }
    }
}

/// Top-level keys of a livekit-server config (livekit/livekit `pkg/config`).
const TOP_LEVEL_KEYS: &[&str] = &[
    "port",
    "bind_addresses",
    "prometheus_port",
    "prometheus",
    "rtc",
    "redis",
    "audio",
    "video",
    "room",
    "turn",
    "ingress",
    "sip",
    "webhook",
    "keys",
    "key_file",
    "logging",
    "log_level",
    "limit",
    "node_selector",
    "signal_relay",
    "psrpc",
    "region",
    "development",
];

/// Whether a parsed document is a livekit-server config: it has `rtc`, or API
/// keys next to another server section. Egress/ingress configs (`ws_url`,
/// `api_key`) are other programs' and do not match.
pub fn looks_like_config(doc: &Yaml) -> bool {
    let Some(map) = doc.as_mapping() else {
        return false;
    };
    let has = |k: &str| map.contains_key(k);
    if has("ws_url") {
        return false;
    }
    let known = map
        .keys()
        .filter(|k| k.as_str().is_some_and(|k| TOP_LEVEL_KEYS.contains(&k)))
        .count();
    has("rtc") || ((has("keys") || has("key_file")) && known >= 2)
}

/// As [`looks_like_config`], for text that does not parse: its top-level
/// keys, read line by line. A livekit.yaml broken by an edit is still the
/// server's config, and livekit-server refuses to start on it; reading only
/// the documents that parse would pass it in silence.
pub fn looks_like_config_text(text: &str) -> bool {
    let keys: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with([' ', '\t', '#', '-']))
        .filter_map(|l| l.split_once(':').map(|(k, _)| k.trim()))
        .collect();
    let has = |k: &str| keys.contains(&k);
    if has("ws_url") {
        return false;
    }
    let known = keys.iter().filter(|k| TOP_LEVEL_KEYS.contains(k)).count();
    has("rtc") || ((has("keys") || has("key_file")) && known >= 2)
}

/// Whether a ConfigMap value is a livekit-server config, parsed or not.
fn is_config(parsed: &Result<Yaml, String>, text: &str) -> bool {
    match parsed {
        Ok(doc) => looks_like_config(doc),
        Err(_) => looks_like_config_text(text),
    }
}

/// Parses a config document as text.
pub fn parse(text: &str) -> Result<Yaml, String> {
    serde_yaml::from_str::<Yaml>(text).map_err(|e| e.to_string())
}

/// The value of a `--name VALUE` or `--name=VALUE` argument (urfave/cli also
/// accepts a single dash).
pub fn flag_value(container: &k8s_openapi::api::core::v1::Container, name: &str) -> Option<String> {
    let words: Vec<&String> = container
        .command
        .iter()
        .flatten()
        .chain(container.args.iter().flatten())
        .collect();
    let mut found = None;
    for (i, w) in words.iter().enumerate() {
        let Some(bare) = w.strip_prefix("--").or_else(|| w.strip_prefix('-')) else {
            continue;
        };
        if bare == name {
            found = words.get(i + 1).map(|s| s.to_string());
        } else if let Some(v) = bare.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            found = Some(v.to_string());
        }
    }
    found
}

/// Every livekit-server config in the batch, each once, with the containers
/// that load it.
pub fn configs<'o, 'a>(
    objects: &'o [Object<'a>],
    livekit: &[LivekitContainer<'_, 'o, 'a>],
) -> Vec<LivekitConfig<'o, 'a>> {
    let mut out: Vec<LivekitConfig<'o, 'a>> = Vec::new();
    let mut push = |cfg: LivekitConfig<'o, 'a>, loader: Option<(u32, String)>| {
        let existing = out
            .iter_mut()
            .find(|c| c.object.index == cfg.object.index && c.path == cfg.path);
        let slot = match existing {
            Some(slot) => slot,
            None => {
                out.push(cfg);
                out.last_mut().expect("just pushed")
            }
        };
        if let Some(l) = loader {
            if !slot.loaded_by.contains(&l) {
                slot.loaded_by.push(l);
            }
        }
    };

    for lk in livekit {
        let c = lk.container.container;
        let loader = (lk.template.object.index, lk.container.path.clone());
        // `--config-body` / LIVEKIT_CONFIG, when non-empty, replaces the
        // `--config` file entirely (cmd/server `getConfigString`). The
        // livekit Helm chart sets it from a ConfigMap key.
        if let Some((i, env)) = workload::env_named(c, "LIVEKIT_CONFIG") {
            let env_at = workload::env_path(&lk.container.path, i);
            let body = match (
                &env.value,
                env.value_from
                    .as_ref()
                    .and_then(|f| f.config_map_key_ref.as_ref()),
            ) {
                (Some(text), None) if !text.trim().is_empty() => Some(LivekitConfig {
                    object: lk.template.object,
                    path: format!("{env_at}/value"),
                    source: ConfigSource::Env {
                        container: c.name.clone(),
                    },
                    parsed: parse(text),
                    loaded_by: Vec::new(),
                }),
                (_, Some(r)) => objects
                    .iter()
                    .find(|o| {
                        o.is("", "ConfigMap")
                            && o.name() == r.name
                            && o.same_namespace(lk.template.object)
                            && o.origin == lk.template.object.origin
                    })
                    .and_then(|cm| {
                        let text = workload::config_map_data(cm).get(&r.key)?.clone();
                        Some(LivekitConfig {
                            object: cm,
                            path: workload::data_path(&r.key),
                            source: ConfigSource::ConfigMap {
                                name: cm.name().to_string(),
                                key: r.key.clone(),
                            },
                            parsed: parse(&text),
                            loaded_by: Vec::new(),
                        })
                    }),
                _ => None,
            };
            if let Some(cfg) = body {
                push(cfg, Some(loader.clone()));
                continue;
            }
        }
        let config_file = flag_value(c, "config");
        for mount in lk.template.config_map_mounts(c) {
            // The ConfigMap of the same render: a batch of two overlays
            // holds two of that name.
            let Some(cm) = objects.iter().find(|o| {
                o.is("", "ConfigMap")
                    && o.name() == mount.config_map
                    && o.same_namespace(lk.template.object)
                    && o.origin == lk.template.object.origin
            }) else {
                continue;
            };
            let data = workload::config_map_data(cm);
            for key in mount.keys(data.keys()) {
                let Some(text) = data.get(&key) else { continue };
                let parsed = parse(text);
                let file = match (&mount.sub_path, mount.items.iter().find(|(k, _)| *k == key)) {
                    (Some(_), _) => mount.mount_path.clone(),
                    (None, Some((_, path))) => {
                        format!("{}/{}", mount.mount_path.trim_end_matches('/'), path)
                    }
                    (None, None) => format!("{}/{}", mount.mount_path.trim_end_matches('/'), key),
                };
                // Without --config the server never opens the file, however
                // much it looks like a config (`effective::Document::None`).
                let chosen = config_file.as_ref().is_some_and(|f| *f == file);
                if chosen {
                    push(
                        LivekitConfig {
                            object: cm,
                            path: workload::data_path(&key),
                            source: ConfigSource::ConfigMap {
                                name: cm.name().to_string(),
                                key: key.clone(),
                            },
                            parsed,
                            loaded_by: Vec::new(),
                        },
                        Some(loader.clone()),
                    );
                }
            }
        }
    }

    for cm in objects.iter().filter(|o| o.is("", "ConfigMap")) {
        for (key, text) in workload::config_map_data(cm) {
            let parsed = parse(&text);
            if is_config(&parsed, &text) {
                push(
                    LivekitConfig {
                        object: cm,
                        path: workload::data_path(&key),
                        source: ConfigSource::ConfigMap {
                            name: cm.name().to_string(),
                            key,
                        },
                        parsed,
                        loaded_by: Vec::new(),
                    },
                    None,
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Yaml {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn recognises_server_config_but_not_egress() {
        assert!(looks_like_config(&yaml(
            "port: 7880\nrtc:\n  tcp_port: 7881\n"
        )));
        assert!(looks_like_config(&yaml("port: 7880\nkeys:\n  k: s\n")));
        assert!(!looks_like_config(&yaml(
            "api_key: k\napi_secret: s\nws_url: ws://x\n"
        )));
        assert!(!looks_like_config(&yaml("- a\n")));
    }

    #[test]
    fn recognises_a_server_config_that_does_not_parse() {
        let broken = "port: 7880\nrtc: {use_external_ip: false\n";
        assert!(serde_yaml::from_str::<Yaml>(broken).is_err());
        assert!(looks_like_config_text(broken));
        assert!(looks_like_config_text("keys:\n  k: [s\nport: 7880\n"));
        assert!(!looks_like_config_text("ws_url: x\nrtc: [\n"));
        assert!(!looks_like_config_text("  rtc: nested, not top level\n"));
    }

    #[test]
    fn reads_flag_forms() {
        let c = k8s_openapi::api::core::v1::Container {
            name: "livekit".into(),
            args: Some(vec![
                "--config=/etc/a.yaml".into(),
                "--node-ip".into(),
                "1.2.3.4".into(),
            ]),
            ..Default::default()
        };
        assert_eq!(flag_value(&c, "config").as_deref(), Some("/etc/a.yaml"));
        assert_eq!(flag_value(&c, "node-ip").as_deref(), Some("1.2.3.4"));
        assert_eq!(flag_value(&c, "bind"), None);
    }
}
