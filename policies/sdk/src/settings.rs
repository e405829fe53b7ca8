//! Settings shared by the LiveKit policies.
//!
//! The host has already validated the JSON against the policy's schema; serde
//! defaults fill in what the user left out, so the defaults live in one place.

use serde::de::DeserializeOwned;

pub const DEFAULT_IMAGE: &str = "livekit/livekit-server";
pub const DEFAULT_CONTAINER: &str = "livekit";
pub const DEFAULT_SECRET: &str = "livekit-secrets";
pub const DEFAULT_SIGNAL_PORT: u16 = 7880;
pub const DEFAULT_TCP_PORT: u16 = 7881;
pub const DEFAULT_UDP_PORT: u16 = 7882;

pub fn default_image() -> String {
    DEFAULT_IMAGE.to_string()
}

pub fn default_container() -> String {
    DEFAULT_CONTAINER.to_string()
}

/// Parses settings, treating an empty string as `{}`.
pub fn parse<T: DeserializeOwned>(settings: &str) -> Result<T, String> {
    let text = if settings.trim().is_empty() {
        "{}"
    } else {
        settings
    };
    serde_json::from_str(text).map_err(|e| format!("invalid settings: {e}"))
}

/// JSON Schema fragment for the two properties every LiveKit policy uses to
/// find the livekit-server container.
pub fn target_properties() -> serde_json::Value {
    serde_json::json!({
        "image": {
            "type": "string",
            "minLength": 1,
            "default": DEFAULT_IMAGE,
            "description": "Repository of the livekit-server image (a registry prefix such as myacr.azurecr.io/ also matches)."
        },
        "container": {
            "type": "string",
            "minLength": 1,
            "default": DEFAULT_CONTAINER,
            "description": "Name of the livekit-server container, for images mirrored under another repository."
        }
    })
}

/// A complete settings schema: the shared target properties plus `extra`.
pub fn schema(extra: serde_json::Value) -> String {
    let mut props = target_properties();
    if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            p.insert(k.clone(), v.clone());
        }
    }
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": false,
        "properties": props
    })
    .to_string()
}

/// How the media plane reaches livekit-server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    /// The runbook's: one LoadBalancer IP, advertised as NODE_IP, in front
    /// of one pod.
    #[default]
    LoadBalancer,
    /// The livekit Helm chart's: `hostNetwork: true`, each pod advertises
    /// its node's address (`use_external_ip: true`), ports on the node.
    HostNetwork,
    /// A TURN gateway in the cluster (STUNner, for one) relays media to
    /// the pods' own addresses: no media LoadBalancer in front of the pods,
    /// no NODE_IP, and clients learn the relay from `rtc.turn_servers` (or
    /// livekit-server's own `turn:` server).
    TurnGateway,
}

pub fn topology_schema() -> serde_json::Value {
    serde_json::json!({
        "enum": ["load-balancer", "host-network", "turn-gateway"],
        "default": "load-balancer",
        "description": "load-balancer: the runbook's design (one LoadBalancer IP as NODE_IP, one pod). host-network: the livekit Helm chart's (hostNetwork, STUN, one pod per node). turn-gateway: a TURN gateway in the cluster (STUNner) relays media to the pods' own addresses, announced in rtc.turn_servers."
    })
}

/// The settings of a rule that only exists in one topology: the target plus
/// the topology (shared across policies with `settings: {"*": {topology: ...}}`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Scoped {
    #[serde(flatten)]
    pub target: crate::livekit::Target,
    #[serde(default)]
    pub topology: Topology,
}
