//! `livekit/config-schema`: livekit-server must be able to read its config.
//!
//! livekit-server decodes its YAML with gopkg.in/yaml.v3 into typed Go
//! structs with `KnownFields(true)` (`pkg/config.NewConfig`): an unknown key
//! or a value of the wrong type stops it at startup, it prints the error and
//! exits, and the pod crash-loops. Env overrides (`LIVEKIT_<PATH>`) are
//! parsed by urfave/cli with Go's strconv, which fails on what YAML accepts.
//! The shipped JSON Schema is derived from the config structs of a named
//! livekit-server version (`scripts/livekit-schema/gen.py`).

use std::cell::OnceCell;

use lkguard_policy_sdk::effective::{
    self, Effective, Generated, Kind, Launch, Raw, Setting, IMAGE_BINARY,
};
use lkguard_policy_sdk::env::{EnvValue, Via};
use lkguard_policy_sdk::livekit::{self, LivekitConfig, Target};
use lkguard_policy_sdk::place::Place;
use lkguard_policy_sdk::{
    settings, workload, Batch, Finding, Metadata, Policy, RuleInfo, Severity,
};
use serde_json::Value;
use serde_yaml::Value as Yaml;

pub const RULE: &str = "livekit/config-schema";

pub struct ConfigSchema;

thread_local! {
    /// One instance judges one batch; the schema is parsed on first use,
    /// and only when a batch holds a config to validate.
    static SCHEMA: OnceCell<Value> = const { OnceCell::new() };
}

fn with_schema<R>(f: impl FnOnce(&Value) -> R) -> R {
    SCHEMA.with(|cell| {
        f(cell.get_or_init(|| {
            serde_json::from_str(effective::SCHEMA_JSON).expect("the shipped schema is JSON")
        }))
    })
}

/// The part of the schema a document can reach: for each object, only the
/// properties it has (an unknown key still fails `additionalProperties:
/// false`). Compiling the whole schema (366 properties, the node_ip and port
/// range patterns) costs milliseconds inside wasm on every batch; a config
/// touches a few dozen fields.
fn prune(schema: &Value, instance: &Value) -> Value {
    let (Some(map), Some(obj)) = (schema.as_object(), instance.as_object()) else {
        return match schema.as_object() {
            // A non-object where the schema wants one: keep everything but
            // the properties, so the type error is still reported.
            Some(map) if map.contains_key("properties") => Value::Object(
                map.iter()
                    .filter(|(k, _)| *k != "properties")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            _ => schema.clone(),
        };
    };
    let mut out = serde_json::Map::new();
    for (k, v) in map {
        if k == "properties" {
            let props = v
                .as_object()
                .map(|props| {
                    props
                        .iter()
                        .filter_map(|(name, sub)| Some((name.clone(), prune(sub, obj.get(name)?))))
                        .collect()
                })
                .unwrap_or_default();
            out.insert(k.clone(), Value::Object(props));
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// The YAML document as the JSON the schema speaks. Keys become strings (the
/// Go structs only have string keys); tags are dropped.
fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or_else(|| Value::String(n.to_string()))
            }
        }
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Mapping(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    (
                        lkguard_policy_sdk::goyaml::scalar_text(k).unwrap_or_default(),
                        to_json(v),
                    )
                })
                .collect(),
        ),
        Yaml::Tagged(t) => to_json(&t.value),
    }
}

fn tokens(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(lkguard_policy_sdk::pointer::unescape)
        .collect()
}

/// The schema node that describes the instance at `pointer`.
fn schema_at<'s>(schema: &'s Value, pointer: &str) -> Option<&'s Value> {
    let mut node = schema;
    for token in tokens(pointer) {
        node = node
            .get("properties")
            .and_then(|p| p.get(&token))
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))
            .or_else(|| node.get("items"))?;
    }
    Some(node)
}

/// The allowed key closest to an unknown one, when it is a likely typo.
fn did_you_mean<'s>(schema: &'s Value, at: &str, key: &str) -> Option<&'s str> {
    let props = schema_at(schema, at)?.get("properties")?.as_object()?;
    nearest(props.keys().map(String::as_str), key, 4)
}

/// The candidate closest to `name` by edit distance, when close enough to
/// be a typo of it: at most 2 edits, or one in `per` characters of the
/// candidate for longer ones, and fewer edits than the candidate is long.
fn nearest<'s>(
    candidates: impl Iterator<Item = &'s str>,
    name: &str,
    per: usize,
) -> Option<&'s str> {
    candidates
        .map(|k| (strsim::damerau_levenshtein(k, name), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / per) && *d < k.len())
        .min()
        .map(|(_, k)| k)
}

fn dotted(pointer: &str) -> String {
    let t = tokens(pointer);
    if t.is_empty() {
        "the config".into()
    } else {
        t.join(".")
    }
}

/// A value fit to quote in a message: never one under a key that may hold a
/// secret.
fn shown(pointer: &str, value: &Value) -> String {
    if tokens(pointer)
        .iter()
        .any(|t| t == "keys" || livekit::is_sensitive_name(t))
    {
        return "a value".into();
    }
    let text = match value {
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
        other => format!("`{other}`"),
    };
    if text.len() > 80 {
        "a value".into()
    } else {
        text
    }
}

/// Validates one document. `strict`: without `--disable-strict-config`.
fn validate_document(cfg: &LivekitConfig, strict: bool, findings: &mut Vec<Finding>) {
    let Ok(doc) = &cfg.parsed else {
        // livekit/use-external-ip reports YAML that does not parse.
        return;
    };
    if !doc.is_mapping() {
        return;
    }
    let instance = to_json(doc);
    let place = |pointer: &str| Place::new(cfg.object.index, cfg.path.clone()).inside(pointer);
    with_schema(|schema| {
        // Draft 7: the generator's keywords mean the same there, and every
        // fresh wasm instance builds the draft's meta-schema validator
        // before the first schema; 2020-12's took the warm `check` of the
        // two fixture renders from 13.8 to 18.1 ms.
        let validator = match jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .build(&prune(schema, &instance))
        {
            Ok(v) => v,
            Err(e) => {
                findings.push(place("").error(
                    RULE,
                    format!("lkguard could not compile the livekit-server schema: {e}"),
                ));
                return;
            }
        };
        for error in validator.iter_errors(&instance) {
            let at = error.instance_path().as_str().to_string();
            match error.kind() {
                jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                    for key in unexpected {
                        let key_at = lkguard_policy_sdk::pointer::push(&at, key);
                        let hint = did_you_mean(schema, &at, key);
                        let within = if at.is_empty() {
                            "at the top level".to_string()
                        } else {
                            format!("in `{}`", dotted(&at))
                        };
                        let (severity, effect) = if strict {
                            (
                                Severity::Error,
                                "livekit-server decodes its config strictly and refuses to start",
                            )
                        } else {
                            (
                                Severity::Warning,
                                "livekit-server ignores it (--disable-strict-config)",
                            )
                        };
                        let mut message = format!("unknown key `{key}` {within}: {effect}");
                        if let Some(h) = hint {
                            message.push_str(&format!("; did you mean `{h}`?"));
                        }
                        let mut f = place(&key_at).finding(RULE, severity, message);
                        if let Some(h) = hint {
                            f = f.hint(format!("rename `{key}` to `{h}`"));
                        }
                        findings.push(f);
                    }
                }
                kind => {
                    let go_type = schema_at(schema, &at)
                        .and_then(|n| n.get("x-go-type"))
                        .and_then(Value::as_str)
                        .unwrap_or("its Go type");
                    let value = shown(&at, error.instance());
                    let why = match kind {
                        jsonschema::error::ValidationErrorKind::Minimum { .. }
                        | jsonschema::error::ValidationErrorKind::Maximum { .. }
                            if dotted(&at).contains("port") =>
                        {
                            format!("`{}` is {value}, outside the port range 0-65535: livekit-server cannot listen on it", dotted(&at))
                        }
                        jsonschema::error::ValidationErrorKind::Minimum { .. }
                        | jsonschema::error::ValidationErrorKind::Maximum { .. } => {
                            format!("`{}` is {value}, out of range for {go_type}: livekit-server refuses to start", dotted(&at))
                        }
                        _ => format!(
                            "`{}` is {value}, which yaml.v3 cannot decode into {go_type}: livekit-server refuses to start",
                            dotted(&at)
                        ),
                    };
                    findings.push(place(&at).error(RULE, why));
                }
            }
        }
    });
}

/// Whether urfave/cli (Go's strconv) parses an env var or flag value of
/// this kind; `Err` says what Go would complain about.
fn parse_flag(kind: Kind, text: &str) -> Result<Option<i128>, &'static str> {
    let int = |s: &str| -> Option<i128> {
        // strconv.ParseInt(s, 0, 64): an optional sign, then decimal or a
        // 0x/0o/0b prefix, underscores allowed only with a prefix.
        let (neg, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let lower = body.to_ascii_lowercase();
        let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
            (16, d.replace('_', ""))
        } else if let Some(d) = lower.strip_prefix("0o") {
            (8, d.replace('_', ""))
        } else if let Some(d) = lower.strip_prefix("0b") {
            (2, d.replace('_', ""))
        } else {
            (10, lower.clone())
        };
        let v = i128::from_str_radix(&digits, radix).ok()?;
        if digits.starts_with(['+', '-']) {
            return None;
        }
        Some(if neg { -v } else { v })
    };
    match kind {
        Kind::Bool => lkguard_policy_sdk::goyaml::strconv_bool(text)
            .map(|_| None)
            .ok_or("a Go boolean (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False)"),
        Kind::Int => int(text)
            .filter(|v| i64::try_from(*v).is_ok())
            .map(Some)
            .ok_or("a Go integer"),
        Kind::Duration => int(text)
            .filter(|v| i64::try_from(*v).is_ok())
            .map(Some)
            .ok_or(
            "an integer count of nanoseconds (a duration flag is an int64: `5s` does not parse)",
        ),
        Kind::Uint => int(text)
            .filter(|v| u64::try_from(*v).is_ok())
            .map(Some)
            .ok_or("a non-negative Go integer"),
        Kind::Float => text
            .trim()
            .parse::<f64>()
            .map(|_| None)
            .map_err(|_| "a Go float"),
        Kind::String => Ok(None),
    }
}

fn check_override(g: &Generated, setting: &Setting, findings: &mut Vec<Finding>) {
    let (Raw::Text(text), Some(place)) = (&setting.raw, &setting.place) else {
        return;
    };
    let what = setting.describe();
    match parse_flag(g.kind, text) {
        Err(expected) => {
            let value = if livekit::is_sensitive_name(g.path) {
                String::new()
            } else {
                format!(" `{text}`")
            };
            findings.push(place.error(
                RULE,
                format!("{what}{value} sets `{}` ({}), but is not {expected}: livekit-server fails to parse it and exits at startup", g.path, g.go_type),
            ));
        }
        Ok(Some(n))
            if g.path.ends_with("port")
                || g.path.ends_with("_port")
                || g.path.contains("port_range") =>
        {
            if !(0..=65535).contains(&n) {
                findings.push(place.error(
                    RULE,
                    format!("{what} sets `{}` to {n}, outside the port range 0-65535: livekit-server cannot listen on it", g.path),
                ));
            }
        }
        Ok(_) => {}
    }
}

/// `turn.enabled` needs a TLS or a UDP port (`pkg/service/turn.go`
/// `NewTurnServer`: "invalid TURN ports").
fn check_turn(e: &Effective, findings: &mut Vec<Finding>) {
    let Some(enabled) = e.get("turn.enabled") else {
        return;
    };
    if enabled.bool() != Ok(Some(true)) {
        return;
    }
    let port = |p: &str| {
        e.get(p).and_then(|s| match &s.raw {
            Raw::Yaml(v) => v.as_i64(),
            Raw::Unknown(_) => Some(1),
            _ => s.text()?.trim().parse().ok(),
        })
    };
    let tls = port("turn.tls_port").unwrap_or(0);
    let udp = port("turn.udp_port").unwrap_or(0);
    if tls <= 0 && udp <= 0 {
        if let Some(place) = &enabled.place {
            findings.push(
                place
                    .error(RULE, "turn.enabled is true but neither turn.tls_port nor turn.udp_port is set: livekit-server fails with \"invalid TURN ports\" and does not start")
                    .hint("set turn.udp_port (e.g. 3478) or turn.tls_port with turn.domain and a certificate, or turn.enabled: false"),
            );
        }
    }
    if tls <= 0 || e.document.hidden() {
        return;
    }
    // TURN over TLS (pkg/service/turn.go NewTurnServer, v1.13.3): a domain,
    // and unless a load balancer terminates TLS (external_tls), a
    // certificate pair; without them the server exits at startup.
    let text = |p: &str| e.get(p).map(|s| s.text().map(|t| t.trim().to_string()));
    // Unset, or empty; a value from a Secret counts as set.
    let unset = |p: &str| match text(p) {
        None => true,
        Some(t) => t.is_some_and(|t| t.is_empty()),
    };
    let external_tls = e
        .get("turn.external_tls")
        .is_some_and(|s| s.bool() != Ok(Some(false)));
    let missing = if unset("turn.domain") {
        Some((
            "turn.domain is not set",
            "\"TURN domain required\"",
            "set turn.domain to the TURN host clients reach (a name on the certificate)",
        ))
    } else if !external_tls && (unset("turn.cert_file") || unset("turn.key_file")) {
        Some(("turn.cert_file and turn.key_file are not both set (and turn.external_tls is not on)", "\"TURN tls cert required\"", "mount the certificate from a Secret and set turn.cert_file and turn.key_file, or set turn.external_tls: true when a load balancer terminates TLS, or drop turn.tls_port"))
    } else {
        None
    };
    let Some((what, error, hint)) = missing else {
        return;
    };
    let place = e
        .get("turn.tls_port")
        .and_then(|s| s.place)
        .unwrap_or_else(|| e.container_place());
    findings.push(
        place
            .error(RULE, format!("turn.tls_port is set, but {what}: livekit-server fails with {error} when it starts its TURN server, and exits"))
            .hint(hint),
    );
}

/// Names a LiveKit client SDK reads (`livekit/secret-keys` explains the
/// API pair on the server); harmless on the server container.
const CLIENT_ENV: [&str; 3] = ["LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"];

/// A `LIVEKIT_*` variable livekit-server does not read: a typo of a
/// generated name (`LIVEKIT_RTC_USE_EXTERNALIP`), a list field (lists and
/// maps get no env var: `LIVEKIT_BIND_ADDRESSES`), or an invented one. It
/// has no effect, while whoever set it believes it does.
fn check_unread_names(e: &Effective, findings: &mut Vec<Finding>) {
    for entry in e.env.iter() {
        let name = entry.name.as_str();
        if !name.starts_with("LIVEKIT_") || effective::reads_env(name) || CLIENT_ENV.contains(&name)
        {
            continue;
        }
        let near = nearest(
            effective::env_names().filter(|k| k.starts_with("LIVEKIT_")),
            name,
            6,
        );
        let (message, hint) = match near {
            Some(k) => (
                format!("env {name} is read by nothing in livekit-server {}: did you mean {k}? As written it has no effect", effective::LIVEKIT_VERSION),
                format!("rename it to {k}"),
            ),
            None => (
                format!("env {name} is read by nothing in livekit-server {}: only scalar config fields get a LIVEKIT_<PATH> env var (lists and maps such as bind_addresses do not), so it has no effect", effective::LIVEKIT_VERSION),
                "set the field in the config file instead, or remove the env var".to_string(),
            ),
        };
        // The name is the mistake: point at it, not at the value.
        let place = match entry.via {
            Via::Env => Place::new(entry.entry.resource, format!("{}/name", entry.entry.path)),
            Via::EnvFrom { .. } => entry.place.clone(),
        };
        findings.push(place.warning(RULE, message).hint(hint));
    }
}

/// Kubernetes `command` replaces the image's entrypoint (it is not Docker's
/// CMD): words meant as livekit-server's flags become the program, and a
/// bare `livekit-server` is looked up on a PATH that livekit's image does
/// not put the binary on. Either way the container never starts.
fn check_launch(e: &Effective, findings: &mut Vec<Finding>) {
    let name = e.container_name();
    match e.launch() {
        Launch::Entrypoint => {}
        Launch::Other(w) if w.text.starts_with('-') => findings.push(
            w.place
                .error(RULE, format!(
                    "container `{name}` sets command, which replaces the image's entrypoint {IMAGE_BINARY}: the runtime tries to execute `{}` as the program, the container fails to start (StartError), and livekit-server never runs",
                    w.text
                ))
                .hint("put these words under args: (command stays unset), or start command with /livekit-server"),
        ),
        Launch::Other(w) if e.official_image() => findings.push(
            w.place
                .warning(RULE, format!(
                    "container `{name}` runs `{}` instead of the image's entrypoint {IMAGE_BINARY}, and no word of its command line starts livekit-server: lkguard cannot see what it runs, and judges the container's words as livekit-server's flags",
                    w.text
                ))
                .hint("start livekit-server as /livekit-server (or `exec /livekit-server` in a script) so its flags can be checked"),
        ),
        Launch::Other(_) => {}
        Launch::Server(w) => {
            let working_dir = e.server.container.container.working_dir.as_deref();
            let at_root = w.text == "./livekit-server" && working_dir.is_none_or(|d| d.trim_end_matches('/').is_empty());
            if !e.official_image() || w.text == IMAGE_BINARY || at_root {
                return;
            }
            let why = if w.text.contains('/') {
                format!("livekit's image holds the binary only at {IMAGE_BINARY}, so `{}` does not exist", w.text)
            } else {
                format!("`{}` is looked up on PATH, and livekit's image (alpine) keeps the binary at {IMAGE_BINARY}, which is not on PATH: \"executable file not found in $PATH\"", w.text)
            };
            findings.push(
                w.place
                    .error(RULE, format!(
                        "container `{name}` starts livekit-server as `{}`: {why}; the container fails to start and livekit-server never runs",
                        w.text
                    ))
                    .hint(format!("write {IMAGE_BINARY}, or leave command unset and pass only args")),
            );
        }
    }
}

/// A ConfigMap holding the server's config, loaded with `envFrom`: each key
/// becomes an env var, and livekit-server never reads `livekit.yaml` as one.
fn check_env_from(e: &Effective, findings: &mut Vec<Finding>) {
    for entry in e.env.iter() {
        let Via::EnvFrom {
            kind: "ConfigMap",
            name,
        } = &entry.via
        else {
            continue;
        };
        let EnvValue::Text(text) = &entry.value else {
            continue;
        };
        if entry.name == "LIVEKIT_CONFIG" || !livekit::looks_like_config_text(text) {
            continue;
        }
        findings.push(
            entry
                .entry
                .error(RULE, format!(
                    "container `{}` loads ConfigMap {name} with envFrom: its key `{}` becomes an env var that livekit-server never reads, so the server does not run on this config",
                    e.container_name(),
                    entry.name
                ))
                .hint("mount the ConfigMap as a volume and pass --config FILE, or set LIVEKIT_CONFIG from the key with valueFrom.configMapKeyRef"),
        );
    }
}

/// An `envFrom` naming a ConfigMap or Secret that kustomize generated
/// under a hashed name and did not rewrite the reference to: the object the
/// container asks for will not exist, and the kubelet refuses to start it.
fn check_renamed_env_from(e: &Effective, findings: &mut Vec<Finding>) {
    for u in e.env.unknown_sources.iter().filter(|u| !u.optional) {
        let Some(renamed) = &u.renamed else { continue };
        findings.push(
            u.place
                .error(RULE, format!(
                    "container `{}` loads {} {} with envFrom, which the render does not hold: kustomize generated it as {renamed} (with a content hash) and did not rewrite this reference, so the container fails with CreateContainerConfigError",
                    e.container_name(),
                    u.kind,
                    u.name
                ))
                .hint("add the envFrom in the base (kustomize rewrites references it sees before generating), or set options.disableNameSuffixHash: true on the generator"),
        );
    }
}

impl Policy for ConfigSchema {
    fn metadata() -> Metadata {
        Metadata {
            id: "config-schema".into(),
            version: std::env!("CARGO_PKG_VERSION").into(),
            rules: vec![RuleInfo {
                id: RULE.into(),
                summary: format!("livekit-server can decode the config it runs with (schema of livekit-server {})", effective::LIVEKIT_VERSION),
                rationale: format!(
                    "livekit-server decodes its YAML with gopkg.in/yaml.v3 into typed structs with KnownFields (pkg/config \
                    NewConfig): an unknown key (a typo such as tcp_prot) or a wrong type (log_level: [info], a quoted \
                    \"true\" for a boolean) stops it at startup, and the pod crash-loops. The effective config is \
                    validated against a JSON Schema derived from the Go config structs of livekit-server {} \
                    (scripts/livekit-schema). With --disable-strict-config (the livekit Helm chart passes it) unknown \
                    keys are ignored, so they are warnings. Env overrides LIVEKIT_<PATH> are parsed by Go's strconv: \
                    LIVEKIT_RTC_USE_EXTERNAL_IP=yes or a duration written as 5s is a startup error; a release older than the env var (generated env since v1.3.0, booleans since v1.8.4, rtc.node_ip.ipv4 since v1.10.0, by the image tag) ignores it, a warning. Ports must be \
                    0-65535. turn.enabled needs turn.tls_port or turn.udp_port. A ConfigMap holding the config but \
                    loaded with envFrom is never read as the config. A command replaces the image's entrypoint \
                    /livekit-server (livekit/livekit Dockerfile, alpine): command: [--config, ...] runs --config as the \
                    program, and a bare livekit-server is not on PATH, so the container never starts. An envFrom naming a ConfigMap that kustomize generated under a hashed name (a reference it did not rewrite) stops the container. Topology: all.",
                    effective::LIVEKIT_VERSION
                ),
            }],
            settings_schema: settings::schema(serde_json::json!({})),
        }
    }

    fn validate(batch: &Batch, settings: &str) -> Result<Vec<Finding>, String> {
        let target: Target = settings::parse(settings)?;
        let objects = batch.objects();
        let templates = workload::pod_templates(&objects);
        let servers = target.find(&templates);
        let mut findings = Vec::new();
        let mut judged: Vec<(u32, String)> = Vec::new();
        for server in &servers {
            let e = Effective::build(&objects, server.clone());
            if let Some(cfg) = e.config() {
                let key = (cfg.object.index, cfg.path.clone());
                if !judged.contains(&key) {
                    judged.push(key);
                    validate_document(cfg, e.strict(), &mut findings);
                }
            }
            for (g, setting) in e.overrides() {
                check_override(g, &setting, &mut findings);
            }
            for (g, entry, why) in e.unread_overrides() {
                findings.push(
                    entry
                        .place
                        .warning(RULE, format!(
                            "env {} is meant to set `{}`, but {} does not read it ({why}): it has no effect, and the config's value (or the default) applies",
                            entry.name,
                            g.path,
                            e.server_version()
                        ))
                        .hint("set the field in the config, or run a release that reads the env var"),
                );
            }
            check_launch(&e, &mut findings);
            check_unread_names(&e, &mut findings);
            check_turn(&e, &mut findings);
            check_env_from(&e, &mut findings);
            check_renamed_env_from(&e, &mut findings);
        }
        // Configs no server in the batch could load (a base, or a ConfigMap
        // at admission): judged as the strict default would.
        for cfg in livekit::configs(&objects, &servers) {
            if cfg.judged(&servers) && !judged.contains(&(cfg.object.index, cfg.path.clone())) {
                judged.push((cfg.object.index, cfg.path.clone()));
                validate_document(&cfg, true, &mut findings);
            }
        }
        findings.dedup();
        Ok(findings)
    }
}

lkguard_policy_sdk::export_policy!(ConfigSchema);

#[cfg(test)]
mod tests {
    use super::*;
    use lkguard_policy_sdk::testkit::render;

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
          image: livekit/livekit-server:v1.13.3
          args: ARGS
          env: ENV
          volumeMounts: [{name: config, mountPath: /etc/livekit}]
      volumes: [{name: config, configMap: {name: livekit-config}}]
"#;

    fn run_with(config: &str, args: &str, env: &str) -> Vec<Finding> {
        run_in(DEPLOY, config, args, env)
    }

    fn run_in(deploy: &str, config: &str, args: &str, env: &str) -> Vec<Finding> {
        let indented: String = config.lines().map(|l| format!("    {l}\n")).collect();
        let yaml = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: livekit-config}}\ndata:\n  livekit.yaml: |\n{indented}{}",
            deploy.replace("ARGS", args).replace("ENV", env)
        );
        ConfigSchema::validate(&render(&yaml), "{}").unwrap()
    }

    fn run(config: &str) -> Vec<Finding> {
        run_with(config, "[--config, /etc/livekit/livekit.yaml]", "[]")
    }

    const GOOD: &str = "port: 7880\nlog_level: info\nrtc:\n  tcp_port: 7881\n  udp_port: 7882\n  use_external_ip: false\nroom:\n  empty_timeout: 300\nturn:\n  enabled: false";

    #[test]
    fn a_good_config_passes() {
        assert_eq!(run(GOOD), vec![]);
    }

    #[test]
    fn a_typo_is_an_unknown_key_with_a_suggestion() {
        let f = run(&GOOD.replace("tcp_port", "tcp_prot"));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].embedded_path.as_deref(), Some("/rtc/tcp_prot"));
        assert!(
            f[0].message.contains("did you mean `tcp_port`?"),
            "{}",
            f[0].message
        );
        assert_eq!(f[0].severity, Severity::Error);
    }

    #[test]
    fn disable_strict_config_makes_unknown_keys_warnings() {
        let f = run_with(
            &GOOD.replace("tcp_port", "tcp_prot"),
            "[--disable-strict-config, --config, /etc/livekit/livekit.yaml]",
            "[]",
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].severity, Severity::Warning);
    }

    #[test]
    fn wrong_types_and_ports_fail_at_their_line() {
        let f = run(&GOOD.replace("log_level: info", "log_level: [info]"));
        assert_eq!(f[0].embedded_path.as_deref(), Some("/log_level"), "{f:?}");
        let f = run(&GOOD.replace("use_external_ip: false", "use_external_ip: \"true\""));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("bool"), "{}", f[0].message);
        let f = run(&GOOD.replace("port: 7880", "port: 70000"));
        assert!(
            f[0].message.contains("outside the port range"),
            "{}",
            f[0].message
        );
        // yaml.v3 takes YAML 1.1 words for a bool.
        assert_eq!(
            run(&GOOD.replace("use_external_ip: false", "use_external_ip: no")),
            vec![]
        );
    }

    #[test]
    fn env_overrides_are_parsed_by_strconv() {
        let f = run_with(GOOD, "[--config, /etc/livekit/livekit.yaml]", "[{name: LIVEKIT_RTC_USE_EXTERNAL_IP, value: 'yes'}, {name: LIVEKIT_PORT, value: 'tcp://10.0.0.1:7880'}, {name: LIVEKIT_RTC_TCP_PORT, value: '99999'}]");
        let paths: Vec<&str> = f.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/spec/template/spec/containers/0/env/1/value",
                "/spec/template/spec/containers/0/env/2/value",
                "/spec/template/spec/containers/0/env/0/value",
            ],
            "{f:?}"
        );
        assert!(
            f[1].message.contains("outside the port range"),
            "{}",
            f[1].message
        );
        assert_eq!(
            run_with(
                GOOD,
                "[--config, /etc/livekit/livekit.yaml]",
                "[{name: LIVEKIT_PORT, value: '0x1ec8'}]"
            ),
            vec![]
        );
    }

    #[test]
    fn an_env_var_the_release_does_not_read_is_a_warning() {
        let env = "[{name: LIVEKIT_RTC_USE_EXTERNAL_IP, value: 'false'}]";
        let old =
            |tag: &str| DEPLOY.replace("livekit-server:v1.13.3", &format!("livekit-server:{tag}"));
        let f = run_in(
            &old("v1.8.0"),
            GOOD,
            "[--config, /etc/livekit/livekit.yaml]",
            env,
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].path, "/spec/template/spec/containers/0/env/0/value");
        assert!(
            f[0].message
                .contains("livekit-server v1.8.0 does not read it"),
            "{}",
            f[0].message
        );
        assert_eq!(
            run_in(
                &old("v1.8.4"),
                GOOD,
                "[--config, /etc/livekit/livekit.yaml]",
                env
            ),
            vec![]
        );
    }

    #[test]
    fn an_env_from_kustomize_did_not_rename_stops_the_container() {
        let y = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: livekit-env-8d4bg9b877}}\ndata: {{LOG_FORMAT: json}}\n---\n{}",
            DEPLOY
                .replace("ARGS", "[]")
                .replace("          env: ENV\n", "          envFrom: [{configMapRef: {name: livekit-env}}]\n")
        );
        let f = ConfigSchema::validate(&render(&y), "{}").unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].path, "/spec/template/spec/containers/0/envFrom/0");
        assert!(
            f[0].message.contains("livekit-env-8d4bg9b877"),
            "{}",
            f[0].message
        );
        // optional: true leaves the variables unset instead.
        let optional = y.replace("name: livekit-env}", "name: livekit-env, optional: true}");
        assert_eq!(
            ConfigSchema::validate(&render(&optional), "{}").unwrap(),
            vec![]
        );
        // Another name with a suffix is not kustomize's hash.
        let other = y.replace("livekit-env-8d4bg9b877", "livekit-env-extra");
        assert_eq!(
            ConfigSchema::validate(&render(&other), "{}").unwrap(),
            vec![]
        );
    }

    #[test]
    fn a_command_that_does_not_start_the_binary_is_an_error() {
        let c = "/spec/template/spec/containers/0";
        let at = |f: &[Finding]| -> Vec<(String, Severity)> {
            f.iter().map(|f| (f.path.clone(), f.severity)).collect()
        };
        let cfg = "port: 7880";
        // Flags as the command: `--config` is run as the program.
        let f = run_with(
            cfg,
            "[]\n          command: [--config, /etc/livekit/livekit.yaml]",
            "[]",
        );
        assert_eq!(at(&f), [(format!("{c}/command/0"), Severity::Error)]);
        assert!(f[0].message.contains("StartError"), "{}", f[0].message);
        // A bare name is not on the image's PATH; inside a script too.
        for (command, path) in [
            (
                "[livekit-server, --config, /etc/livekit/livekit.yaml]",
                "command/0",
            ),
            (
                "[sh, -c, 'exec livekit-server --config /etc/livekit/livekit.yaml']",
                "command/2",
            ),
            ("[/usr/local/bin/livekit-server]", "command/0"),
        ] {
            let f = run_with(cfg, &format!("[]\n          command: {command}"), "[]");
            assert_eq!(
                at(&f),
                [(format!("{c}/{path}"), Severity::Error)],
                "{command}"
            );
        }
        assert!(
            run_with(cfg, "[]\n          command: [livekit-server]", "[]")[0]
                .message
                .contains("not on PATH")
        );
        // What works: the image's path, args alone, a script running it.
        for command in [
            "[/livekit-server, --config, /etc/livekit/livekit.yaml]",
            "[./livekit-server, --config, /etc/livekit/livekit.yaml]",
            "[/bin/sh, -c, 'exec /livekit-server --config /etc/livekit/livekit.yaml']",
        ] {
            let f = run_with(cfg, &format!("[]\n          command: {command}"), "[]");
            assert!(f.is_empty(), "{command}: {f:?}");
        }
        // Something else entirely: a warning, lkguard cannot see inside.
        let f = run_with(
            cfg,
            "[--config, /etc/livekit/livekit.yaml]\n          command: [/scripts/start.sh]",
            "[]",
        );
        assert_eq!(at(&f), [(format!("{c}/command/0"), Severity::Warning)]);
        // Another image (a build of their own) keeps its binary elsewhere.
        let own = DEPLOY.replace(
            "livekit/livekit-server:v1.13.3",
            "registry.example.com/voice/sfu:2.1",
        );
        assert!(run_in(
            &own,
            cfg,
            "[]\n          command: [livekit-server, --config, /etc/livekit/livekit.yaml]",
            "[]"
        )
        .is_empty());
    }

    #[test]
    fn a_livekit_env_var_nothing_reads_is_a_warning_with_a_suggestion() {
        let warn = |env: &str| {
            let f = run_with(GOOD, "[--config, /etc/livekit/livekit.yaml]", env);
            assert_eq!(f.len(), 1, "{env}: {f:?}");
            assert_eq!(f[0].severity, Severity::Warning);
            assert_eq!(f[0].path, "/spec/template/spec/containers/0/env/0/name");
            f[0].message.clone()
        };
        let m = warn("[{name: LIVEKIT_RTC_USE_EXTERNALIP, value: 'false'}]");
        assert!(
            m.contains("did you mean LIVEKIT_RTC_USE_EXTERNAL_IP?"),
            "{m}"
        );
        let m = warn("[{name: LIVEKIT_BIND_ADDRESSES, value: '0.0.0.0'}]");
        assert!(m.contains("lists and maps"), "{m}");
        // Read by livekit-server, or by a client SDK: no warning here.
        for env in [
            "[{name: LIVEKIT_RTC_TCP_PORT, value: '7881'}]",
            "[{name: LIVEKIT_URL, value: 'ws://localhost:7880'}]",
            "[{name: NODE_IP, value: '20.61.14.7'}]",
            "[{name: LIVEKIT_REGION, value: 'westeurope'}]",
        ] {
            assert_eq!(
                run_with(GOOD, "[--config, /etc/livekit/livekit.yaml]", env),
                vec![],
                "{env}"
            );
        }
    }

    #[test]
    fn turn_over_tls_needs_a_domain_and_a_certificate() {
        let deploy = || "[--config, /etc/livekit/livekit.yaml]";
        let f = run_with(
            "turn:\n  enabled: true\n  tls_port: 5349\n  domain: turn.example.com",
            deploy(),
            "[]",
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].embedded_path.as_deref(), Some("/turn/tls_port"));
        assert!(
            f[0].message.contains("TURN tls cert required"),
            "{}",
            f[0].message
        );
        let f = run_with("turn:\n  enabled: true\n  tls_port: 5349", deploy(), "[]");
        assert!(
            f[0].message.contains("TURN domain required"),
            "{}",
            f[0].message
        );
        for ok in [
            "turn:\n  enabled: true\n  tls_port: 5349\n  domain: turn.example.com\n  cert_file: /tls/tls.crt\n  key_file: /tls/tls.key",
            "turn:\n  enabled: true\n  tls_port: 5349\n  domain: turn.example.com\n  external_tls: true",
            "turn:\n  enabled: true\n  udp_port: 3478",
            "turn:\n  enabled: false\n  tls_port: 5349",
        ] {
            assert_eq!(run_with(ok, deploy(), "[]"), vec![], "{ok}");
        }
    }

    #[test]
    fn turn_needs_a_port() {
        let f = run(&GOOD.replace(
            "enabled: false",
            "enabled: true\n  domain: turn.example.com",
        ));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].embedded_path.as_deref(), Some("/turn/enabled"));
        assert_eq!(
            run(&GOOD.replace("enabled: false", "enabled: true\n  udp_port: 3478")),
            vec![]
        );
    }

    #[test]
    fn a_config_loaded_with_env_from_is_never_read() {
        let yaml = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: livekit-config}}\ndata:\n  livekit.yaml: |\n    port: 7880\n    rtc:\n      use_external_ip: false\n{}",
            DEPLOY
                .replace("ARGS", "[]")
                .replace("env: ENV", "envFrom: [{configMapRef: {name: livekit-config}}]")
        );
        let f = ConfigSchema::validate(&render(&yaml), "{}").unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].path, "/spec/template/spec/containers/0/envFrom/0");
    }

    #[test]
    fn secrets_are_never_quoted() {
        let f = run(&format!("{GOOD}\nkeys:\n  k: [s3cr3t-value]"));
        assert!(!f.is_empty());
        assert!(f.iter().all(|f| !f.message.contains("s3cr3t")), "{f:?}");
    }

    /// Pruning is an optimisation only: the verdicts must be the full
    /// schema's.
    #[test]
    fn the_pruned_schema_gives_the_full_schemas_verdicts() {
        let full = with_schema(|s| s.clone());
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .build(&full)
            .unwrap();
        for doc in [
            GOOD.to_string(),
            GOOD.replace("tcp_port", "tcp_prot"),
            GOOD.replace("log_level: info", "log_level: [info]"),
            GOOD.replace("port: 7880", "port: 70000"),
            "rtc: 7\nturn: {enabled: maybe}\nredis: {address: x, bogus: 1}".to_string(),
            "rtc: {udp_port: '7882-7890', node_ip: '20.61.14.7,2001:db8::7'}".to_string(),
            "rtc: {udp_port: 'x-y', node_ip: 'not-an-ip'}\nkeys: {k: [1]}".to_string(),
            "room: {enabled_codecs: [{mime: audio/opus}, {bogus: 1}]}".to_string(),
        ] {
            let instance = to_json(&serde_yaml::from_str(&doc).unwrap());
            let paths = |v: &jsonschema::Validator| {
                let mut p: Vec<String> = v
                    .iter_errors(&instance)
                    .map(|e| format!("{} {:?}", e.instance_path().as_str(), e.kind().keyword()))
                    .collect();
                p.sort();
                p
            };
            let pruned = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft7)
                .build(&prune(&full, &instance))
                .unwrap();
            assert_eq!(paths(&validator), paths(&pruned), "{doc}");
        }
    }
}
