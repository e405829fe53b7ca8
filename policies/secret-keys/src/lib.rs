//! `livekit/secret-keys`: livekit-server starts with the API keys of the
//! Secret, and every key a workload reads from that Secret exists.
//!
//! livekit-server v1.13.3 (`pkg/config` `ValidateKeys`, `cmd/server`
//! `getConfig`) takes its API keys from `LIVEKIT_KEYS` / `--keys` (YAML text
//! `key: secret`), from `keys:` in its config, or from the file `key_file`
//! names, which replaces both. With none it prints "one of key-file or keys
//! must be provided" and exits, so the pod restarts in a loop. A key file is
//! refused when others have any permission bit on it ("key file others
//! permissions must be set to 0"), which is what a Secret volume gives by
//! default (0644). `--dev` without keys falls back to the publicly known pair
//! `devkey: secret` and binds to loopback only.
//!
//! The keys come from the Secret (default `livekit-secrets`) that an
//! ExternalSecret fills: a `secretKeyRef` to a key it does not write leaves the
//! pod in CreateContainerConfigError. `livekit/secrets-source` already reports
//! literal credentials and references to another Secret; this rule judges
//! whether livekit-server ends up with keys at all. No message ever shows a
//! value.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{KeyToPath, Volume};
use lkguard_policy_sdk::effective::{Document, Effective, Raw, Setting, Source};
use lkguard_policy_sdk::env::{self, ContainerEnv, EnvValue};
use lkguard_policy_sdk::livekit::{self, LivekitContainer, Target};
use lkguard_policy_sdk::model::api_group;
use lkguard_policy_sdk::place::Place;
use lkguard_policy_sdk::settings::{self, DEFAULT_SECRET};
use lkguard_policy_sdk::workload::{self, PodTemplate};
use lkguard_policy_sdk::{pointer, Batch, Finding, Metadata, Object, Policy, RuleInfo};
use serde::Deserialize;
use serde_json::Value;
use serde_yaml::Value as Yaml;

pub const RULE: &str = "livekit/secret-keys";

/// The message livekit-server v1.13.3 prints when it has no keys (`ErrKeysNotSet`).
const NO_KEYS: &str = "one of key-file or keys must be provided";

/// The message it prints for a key file others may read (`ErrKeyFileIncorrectPermission`).
const BAD_MODE: &str = "key file others permissions must be set to 0";

/// The file mode Kubernetes gives Secret and ConfigMap volume files when
/// neither `items[].mode` nor `defaultMode` is set (0644).
const KUBERNETES_DEFAULT_MODE: i32 = 0o644;

pub struct SecretKeys;

#[derive(Debug, Deserialize)]
struct Settings {
    #[serde(flatten)]
    target: Target,
    /// The Secret livekit-server's keys come from.
    #[serde(default = "default_secret")]
    secret: String,
}

fn default_secret() -> String {
    DEFAULT_SECRET.to_string()
}

impl Policy for SecretKeys {
    fn metadata() -> Metadata {
        Metadata {
            id: "secret-keys".into(),
            version: std::env!("CARGO_PKG_VERSION").into(),
            rules: vec![RuleInfo {
                id: RULE.into(),
                summary: "livekit-server gets its API keys from the Secret, every key read from it exists, and the key file is private".into(),
                rationale: "livekit-server v1.13.3 takes its API keys from LIVEKIT_KEYS/--keys, keys: in its config, or \
                    the file key_file names (which replaces both); with none it exits with \"one of key-file or keys \
                    must be provided\". LIVEKIT_API_KEY/LIVEKIT_API_SECRET are client-SDK variables the server never \
                    reads. LIVEKIT_KEYS/--keys must parse as a YAML mapping (`key: secret`, with the space; \
                    `$(API_KEY):$(API_SECRET)` does not): otherwise it exits with \"Could not parse keys\" while \
                    loading its config, before --dev or key_file matter. keys: is not env-expanded, so a $VAR there is a literal secret of that text. A key file \
                    with any permission bit for others is refused (\"key file others permissions must be set to 0\"), \
                    and a Secret volume's default mode is 0644: set defaultMode: 0400. --dev (or development: true) \
                    without keys falls back to the publicly known pair devkey: secret and binds to 127.0.0.1 and ::1 \
                    only. Every secretKeyRef into the Secret must name a key its ExternalSecret writes, or the pod \
                    stays in CreateContainerConfigError; keys written through dataFrom cannot be checked statically. \
                    external-secrets v0.17 stopped serving external-secrets.io/v1beta1. Values are never printed. Topology: all."
                    .into(),
            }],
            settings_schema: settings::schema(serde_json::json!({
                "secret": {
                    "type": "string",
                    "minLength": 1,
                    "default": DEFAULT_SECRET,
                    "description": "The Secret livekit-server's API keys come from (the ExternalSecret's target)."
                }
            })),
        }
    }

    fn validate(batch: &Batch, settings: &str) -> Result<Vec<Finding>, String> {
        let s: Settings = settings::parse(settings)?;
        let objects = batch.objects();
        let templates = workload::pod_templates(&objects);
        let servers = s.target.find(&templates);
        let mut findings = Vec::new();
        // ExternalSecrets whose dataFrom hides whether a referenced key
        // exists, with the keys in question.
        let mut runtime: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();

        for template in &templates {
            check_references(template, &objects, &s, &mut findings, &mut runtime);
        }
        for server in &servers {
            check_server(server, &objects, &s, &mut findings, &mut runtime);
        }
        check_config_keys(&objects, &servers, &mut findings);
        check_external_secrets(&objects, &s, &runtime, &mut findings);
        Ok(findings)
    }
}

// ---------------------------------------------------------------------------
// What the batch says a Secret holds.

fn is_external_secret(o: &Object) -> bool {
    o.kind() == "ExternalSecret" && api_group(&o.resource.api_version) == "external-secrets.io"
}

/// Whether two objects can refer to each other: one origin, one namespace.
fn near(a: &Object, b: &Object) -> bool {
    a.resource.origin == b.resource.origin && a.same_namespace(b)
}

/// The keys a Secret (or ConfigMap) will hold, from what the batch shows.
struct Produced<'o, 'a> {
    /// Keys known to be written: a Secret's `data`/`stringData` (a
    /// ConfigMap's `data`/`binaryData`), an ExternalSecret's
    /// `spec.data[].secretKey`.
    keys: BTreeSet<String>,
    /// What produces it, for messages.
    by: Vec<String>,
    /// ExternalSecrets with `dataFrom`: more keys, known only at run time.
    runtime: Vec<&'o Object<'a>>,
    /// A `spec.target.template` reshapes the keys; nothing can be said.
    templated: bool,
}

enum KeyState {
    Produced,
    Absent,
    /// `dataFrom` or a template may write it.
    Unknowable,
}

impl Produced<'_, '_> {
    fn judge(&self, key: &str) -> KeyState {
        if self.keys.contains(key) {
            KeyState::Produced
        } else if self.templated || !self.runtime.is_empty() {
            KeyState::Unknowable
        } else {
            KeyState::Absent
        }
    }

    fn describe(&self) -> String {
        let by = self.by.join(" and ");
        if self.keys.is_empty() {
            format!("{by} writes no key")
        } else {
            let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
            format!("{by} writes only: {}", keys.join(", "))
        }
    }
}

/// What produces Secret `name` near `near`, or `None` when nothing in the
/// batch does: then nothing can be said (an admission request holds one
/// object; the ExternalSecret may live elsewhere).
fn produced_secret<'o, 'a>(
    objects: &'o [Object<'a>],
    near_to: &Object,
    name: &str,
) -> Option<Produced<'o, 'a>> {
    let mut out = Produced {
        keys: BTreeSet::new(),
        by: Vec::new(),
        runtime: Vec::new(),
        templated: false,
    };
    for o in objects.iter().filter(|o| near(o, near_to)) {
        if o.is("", "Secret") && o.name() == name {
            for field in ["data", "stringData"] {
                if let Some(map) = o.value().get(field).and_then(Value::as_object) {
                    out.keys.extend(map.keys().cloned());
                }
            }
            out.by.push(format!("Secret {name}"));
        } else if is_external_secret(o) && env::external_secret_target(o) == name {
            let v = o.value();
            out.keys.extend(
                v.pointer("/spec/data")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d.get("secretKey").and_then(Value::as_str))
                    .map(str::to_string),
            );
            if v.pointer("/spec/dataFrom")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
            {
                out.runtime.push(o);
            }
            let template = v.pointer("/spec/target/template");
            let non_empty = |p: &str| {
                template
                    .and_then(|t| t.pointer(p))
                    .is_some_and(|x| match x {
                        Value::Object(m) => !m.is_empty(),
                        Value::Array(a) => !a.is_empty(),
                        _ => false,
                    })
            };
            if non_empty("/data") || non_empty("/templateFrom") {
                out.templated = true;
            }
            out.by.push(format!("ExternalSecret {}", o.name()));
        }
    }
    (!out.by.is_empty()).then_some(out)
}

/// The data keys of ConfigMap `name` near `near`, when it is in the batch.
fn produced_config_map<'o, 'a>(
    objects: &'o [Object<'a>],
    near_to: &Object,
    name: &str,
) -> Option<Produced<'o, 'a>> {
    let cm = objects
        .iter()
        .find(|o| o.is("", "ConfigMap") && o.name() == name && near(o, near_to))?;
    let mut keys = BTreeSet::new();
    for field in ["data", "binaryData"] {
        if let Some(map) = cm.value().get(field).and_then(Value::as_object) {
            keys.extend(map.keys().cloned());
        }
    }
    Some(Produced {
        keys,
        by: vec![format!("ConfigMap {name}")],
        runtime: Vec::new(),
        templated: false,
    })
}

// ---------------------------------------------------------------------------
// Check 3: every reference into the Secret names a key that exists.

fn check_references(
    template: &PodTemplate,
    objects: &[Object],
    s: &Settings,
    findings: &mut Vec<Finding>,
    runtime: &mut BTreeMap<u32, BTreeSet<String>>,
) {
    let object = template.object;
    let Some(produced) = produced_secret(objects, object, &s.secret) else {
        return;
    };
    let mut judge = |key: &str, at: String, what: String, effect: &str| match produced.judge(key) {
        KeyState::Produced => {}
        KeyState::Absent => findings.push(
            Finding::error(
                RULE,
                object.index,
                at,
                format!(
                    "{what} key `{key}` of Secret {}, but {}: {effect}",
                    s.secret,
                    produced.describe()
                ),
            )
            .hint(format!(
                "name a key the ExternalSecret writes, or add `- secretKey: {key}` to its spec.data"
            )),
        ),
        KeyState::Unknowable => {
            for es in &produced.runtime {
                runtime.entry(es.index).or_default().insert(key.to_string());
            }
        }
    };
    // Init containers too: one that cannot get its env holds the pod back.
    for c in template.containers() {
        for (i, e) in c.container.env.iter().flatten().enumerate() {
            let Some(r) = e
                .value_from
                .as_ref()
                .and_then(|f| f.secret_key_ref.as_ref())
            else {
                continue;
            };
            // An optional reference to a missing key leaves the variable unset.
            if r.name != s.secret || r.optional == Some(true) {
                continue;
            }
            judge(
                &r.key,
                format!(
                    "{}/valueFrom/secretKeyRef/key",
                    workload::env_path(&c.path, i)
                ),
                format!("env {} of container `{}` reads", e.name, c.container.name),
                "the kubelet cannot build the container's environment, so the pod stays in CreateContainerConfigError",
            );
        }
    }
    const MOUNT: &str =
        "the kubelet cannot mount the volume (couldn't find key), so the pod stays in ContainerCreating";
    // The kubelet sets up only the volumes some container mounts.
    let mounted: BTreeSet<&str> = template
        .containers()
        .iter()
        .flat_map(|c| c.container.volume_mounts.iter().flatten())
        .map(|m| m.name.as_str())
        .collect();
    for (v, volume) in template.spec.volumes.iter().flatten().enumerate() {
        if !mounted.contains(volume.name.as_str()) {
            continue;
        }
        let at = format!("{}/volumes/{v}", template.spec_path);
        if let Some(sv) = &volume.secret {
            if sv.secret_name.as_deref() == Some(s.secret.as_str()) && sv.optional != Some(true) {
                for (i, item) in sv.items.iter().flatten().enumerate() {
                    judge(
                        &item.key,
                        format!("{at}/secret/items/{i}/key"),
                        format!("volume `{}` projects", volume.name),
                        MOUNT,
                    );
                }
            }
        }
        if let Some(p) = &volume.projected {
            for (j, src) in p.sources.iter().flatten().enumerate() {
                let Some(sp) = &src.secret else { continue };
                if sp.name != s.secret || sp.optional == Some(true) {
                    continue;
                }
                for (i, item) in sp.items.iter().flatten().enumerate() {
                    judge(
                        &item.key,
                        format!("{at}/projected/sources/{j}/secret/items/{i}/key"),
                        format!("volume `{}` projects", volume.name),
                        MOUNT,
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Checks 1, 2, 4 and 5: the livekit-server container.

/// Whether livekit-server ends up with keys, as far as the render shows.
#[derive(Debug, Clone)]
enum Verdict {
    Has,
    /// From something the render does not show.
    Unknown,
    /// Wrong, but reported already (by this rule at another place, or by
    /// `livekit/secrets-source`).
    Reported,
    /// livekit-server exits. `place`: what to fix, when one setting is
    /// the cause; `why` ends in the consequence.
    Missing {
        place: Option<Place>,
        why: String,
    },
    /// The keys cannot be parsed: livekit-server exits while it loads its
    /// config, before `--dev` could fall back to the placeholder pair.
    Unparsable {
        place: Option<Place>,
        why: String,
    },
}

fn check_server(
    server: &LivekitContainer,
    objects: &[Object],
    s: &Settings,
    findings: &mut Vec<Finding>,
    runtime: &mut BTreeMap<u32, BTreeSet<String>>,
) {
    let object = server.template.object;
    // A base lacks per-environment values; overlays are judged.
    if !object.origin.deployable {
        return;
    }
    let e = Effective::build(objects, server.clone());
    let file = key_file(&e, objects, findings, runtime);
    let direct = direct_keys(&e);
    check_env_dollar(&e, findings);

    let dev = development(&e);
    if let Some(dev) = &dev {
        findings.push(dev_finding(&e, dev, &direct, file.is_some()));
    }

    let verdict = match (file, direct) {
        // `--keys` is parsed while the config loads, before any key file is
        // read: unparsable keys stop the server whatever key_file says. One
        // object shows it, so admission judges it too.
        (_, d @ Verdict::Unparsable { .. }) => d,
        // "Missing" needs the whole deployment: in admission a ConfigMap or
        // the Secret's producer is not in the batch.
        _ if !object.origin.complete => return,
        (Some(v), _) => v,
        (None, direct) => match direct {
            Verdict::Missing { .. } if e.env.maybe_set_elsewhere("LIVEKIT_KEY_FILE").is_some() => {
                Verdict::Unknown
            }
            d => d,
        },
    };
    let (place, why, parsed) = match verdict {
        Verdict::Missing { place, why } => (place, why, true),
        Verdict::Unparsable { place, why } => (place, why, false),
        _ => return,
    };
    let from_file = file_is_cause(&e);
    // With --dev and no keys at all livekit-server runs on devkey: secret;
    // the dev finding says so. A key file that cannot be read, or keys that
    // cannot be parsed, still stop it.
    let devkey = dev.is_some() && !from_file && parsed;

    // LIVEKIT_API_KEY / LIVEKIT_API_SECRET: what a client SDK reads.
    let client_vars: Vec<_> = ["LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"]
        .iter()
        .filter_map(|n| e.env.get(n))
        .collect();
    if !from_file && parsed {
        if let Some(first) = client_vars.first() {
            let names: Vec<&str> = client_vars.iter().map(|v| v.name.as_str()).collect();
            let tail = if devkey {
                "so --dev falls back to the publicly known pair devkey: secret and rejects every token clients sign with the real pair"
            } else {
                "so it prints \"one of key-file or keys must be provided\" and exits, and the pod restarts in a loop"
            };
            findings.push(
                first
                    .entry
                    .error(RULE, format!(
                        "env {} on container `{}` is read by LiveKit client SDKs and the livekit CLI, never by livekit-server v1.13.3, which takes its keys only from LIVEKIT_KEYS/--keys, keys: in its config or key_file; with none of those set it has no API keys, {tail}",
                        names.join(" and "),
                        e.container_name(),
                    ))
                    .hint(format!(
                        "set env LIVEKIT_KEYS (`<api key>: <api secret>`) from secretKeyRef {{name: {}, key: livekit-keys}} instead",
                        s.secret
                    )),
            );
            return;
        }
    }
    if devkey {
        return;
    }
    let place = place.unwrap_or_else(|| e.container_place());
    findings.push(
        place
            .error(
                RULE,
                if parsed {
                    format!(
                        "livekit-server in container `{}` gets no API keys: {why}",
                        e.container_name()
                    )
                } else {
                    format!("livekit-server in container `{}` cannot start: {why}", e.container_name())
                },
            )
            .hint(if parsed {
                format!(
                    "set env LIVEKIT_KEYS (`<api key>: <api secret>`) from secretKeyRef {{name: {}, key: livekit-keys}}, or mount key_file from Secret {} with defaultMode: 0400",
                    s.secret, s.secret
                )
            } else {
                "write it as YAML `<api key>: <api secret>`, with a space after the colon (composed: `$(API_KEY): $(API_SECRET)`), or read the whole pair from one Secret key".to_string()
            }),
    );
}

/// Whether a key file is what livekit-server reads its keys from.
fn file_is_cause(e: &Effective) -> bool {
    e.get("key_file")
        .is_some_and(|k| k.text().is_none_or(|t| !t.trim().is_empty()))
}

/// What `exits` says for a missing-keys verdict.
fn exits() -> String {
    format!("livekit-server v1.13.3 prints \"{NO_KEYS}\" and exits at startup, and the pod restarts in a loop")
}

/// Keys from `--keys`/`LIVEKIT_KEYS` or `keys:` in the config: what the
/// dev-mode check in `getConfig` sees, before any key file is read.
fn direct_keys(e: &Effective) -> Verdict {
    if let Some(set) = e.named_override("keys") {
        // `--keys` on the command line or a value from a Secret: set.
        // A literal env value is `livekit/secrets-source`'s to report, but
        // one that yields no key leaves the server without keys.
        let Raw::Text(text) = &set.raw else {
            return Verdict::Has;
        };
        if !matches!(set.source, Source::Env(_) | Source::Arg(_)) {
            return Verdict::Has;
        }
        // `$(API_KEY):$(API_SECRET)` composed from other variables: their
        // values are unknown, but the shape around them decides whether
        // the text parses (an API key or secret holds no `: `).
        let shaped;
        let text = if text.contains('$') {
            shaped = env::expand_with(text, |n| e.env.get(n).map(|_| "k".to_string()));
            if shaped.contains('$') {
                return Verdict::Has;
            }
            &shaped
        } else {
            text
        };
        return match count_keys(text) {
            Some(0) => Verdict::Missing {
                place: set.place.clone(),
                why: format!(
                    "{} is set but holds no `key: secret` pair, and it replaces any keys: of the config; {}",
                    set.describe(),
                    exits()
                ),
            },
            Some(_) => Verdict::Has,
            None => Verdict::Unparsable {
                place: set.place.clone(),
                why: format!(
                    "{} is not YAML text of the form `key: secret`, so livekit-server v1.13.3 exits at startup with \"Could not parse keys, it needs to be exactly, \\\"key: secret\\\", including the space\"",
                    set.describe()
                ),
            },
        };
    }
    match &e.document {
        // The YAML comes from something the render does not show.
        Document::Body { config: None, .. } | Document::Unresolved { .. } => {
            return Verdict::Unknown
        }
        _ => {}
    }
    if let Some(set) = e.from_document("keys") {
        let non_empty =
            matches!(&set.raw, Raw::Yaml(v) if v.as_mapping().is_some_and(|m| !m.is_empty()));
        return if non_empty {
            // A literal secret in a ConfigMap: `livekit/secrets-source`.
            Verdict::Has
        } else {
            Verdict::Missing {
                place: set.place.clone(),
                why: format!("keys: in its config is empty; {}", exits()),
            }
        };
    }
    if e.env.maybe_set_elsewhere("LIVEKIT_KEYS").is_some() {
        return Verdict::Unknown;
    }
    Verdict::Missing {
        place: None,
        why: format!(
            "it has no LIVEKIT_KEYS env or --keys arg, no key_file and no keys: in its config; {}",
            exits()
        ),
    }
}

/// How many keys `unmarshalKeys` keeps from `LIVEKIT_KEYS` text: entries of
/// a YAML mapping whose value is a string. `None`: not a mapping (an error).
fn count_keys(text: &str) -> Option<usize> {
    match serde_yaml::from_str::<Yaml>(text) {
        Ok(Yaml::Null) => Some(0),
        Ok(Yaml::Mapping(m)) => Some(m.values().filter(|v| v.is_string()).count()),
        _ => None,
    }
}

/// Checks 1 and 4 for `key_file`: `None` when no key file is set (an empty
/// path counts as unset in livekit-server).
fn key_file(
    e: &Effective,
    objects: &[Object],
    findings: &mut Vec<Finding>,
    runtime: &mut BTreeMap<u32, BTreeSet<String>>,
) -> Option<Verdict> {
    // `--key-file` beats `LIVEKIT_KEY_FILE` (or `--key_file`), which beats
    // the YAML.
    let set = e.get("key_file")?;
    let raw = match &set.raw {
        Raw::Unknown(_) => return Some(Verdict::Unknown),
        _ => set.text()?,
    };
    if raw.trim().is_empty() {
        return None;
    }
    // livekit-server runs the path through os.ExpandEnv and homedir.Expand.
    // A relative path depends on the image's working directory.
    let Some(file) = expand_path(&raw, &e.env).filter(|f| f.starts_with('/')) else {
        return Some(Verdict::Unknown);
    };
    let place = set.place.clone();
    let missing = |why: String| {
        Verdict::Missing {
        place: place.clone(),
        why: format!(
            "it reads them from key_file {file} ({}), but {why}, so livekit-server v1.13.3 cannot stat it and exits at startup, and the pod restarts in a loop",
            set.describe()
        ),
    }
    };
    let template = e.server.template;
    let c = e.server.container.container;
    let Some(mounted) = template.mounted(c, &file) else {
        return Some(missing(format!("no volume is mounted at {file}")));
    };
    let Some((v, volume)) = mounted.volume else {
        return Some(missing(format!(
            "volumeMount {} names no volume of the pod",
            mounted.mount.name
        )));
    };
    let in_volume = mounted.in_volume;
    if in_volume.is_empty() {
        // The key file is the volume's directory: not a case to guess at.
        return Some(Verdict::Unknown);
    }
    let at = format!("{}/volumes/{v}", template.spec_path);
    let object = template.object;
    match locate(volume, &in_volume, &at, objects, object, runtime) {
        Located::Hidden => Some(Verdict::Unknown),
        Located::NoSuchFile(why) => Some(missing(why)),
        Located::File {
            mode,
            mode_at,
            from,
        } => {
            if mode & 0o007 == 0 {
                return Some(Verdict::Has);
            }
            let (how, hint) = match from {
                ModeFrom::Item => (
                    "its items[].mode",
                    "set mode: 0400 on this item (256 in JSON; YAML 0400 is octal)",
                ),
                ModeFrom::Default => (
                    "the volume's defaultMode",
                    "set defaultMode: 0400 (256 in JSON; YAML 0400 is octal)",
                ),
                ModeFrom::Kubernetes => (
                    "Kubernetes' default, as neither defaultMode nor items[].mode is set",
                    "set defaultMode: 0400 on the volume (256 in JSON; YAML 0400 is octal)",
                ),
            };
            findings.push(
                Finding::error(
                    RULE,
                    object.index,
                    mode_at,
                    format!(
                        "livekit-server's key_file {file} is on volume `{}` with mode {mode:04o} ({how}), which gives others access: livekit-server v1.13.3 refuses a key file with any permission bit for others and exits at startup with \"{BAD_MODE}\"",
                        volume.name
                    ),
                )
                .hint(hint),
            );
            // The missing-keys check would only repeat the cause.
            Some(Verdict::Reported)
        }
    }
}

/// `os.ExpandEnv` of the key file path with the container's env; `None` when
/// a variable's value (or `~`, the home directory) is not in the render.
fn expand_path(path: &str, env: &ContainerEnv) -> Option<String> {
    if path.starts_with('~') {
        return None;
    }
    let mut out = String::new();
    let mut rest = path;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
            braced.split_once('}')?
        } else {
            let end = after
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        if name.is_empty() {
            return None;
        }
        // Unset in the pod spec may still be set by the image.
        out.push_str(env.get(name)?.value.text()?);
        rest = tail;
    }
    out.push_str(rest);
    Some(out)
}

#[derive(Debug, Clone, Copy)]
enum ModeFrom {
    Item,
    Default,
    Kubernetes,
}

enum Located {
    /// The file is there, with this mode set at `mode_at`.
    File {
        mode: i32,
        mode_at: String,
        from: ModeFrom,
    },
    /// The volume does not hold this path; the string says why.
    NoSuchFile(String),
    /// A volume whose content the render does not show (emptyDir, CSI...).
    Hidden,
}

/// The effective mode: `items[].mode`, else `defaultMode`, else 0644.
fn mode_of(
    item: Option<(&KeyToPath, String)>,
    default: Option<i32>,
    default_at: String,
    source_at: String,
) -> (i32, String, ModeFrom) {
    if let Some((KeyToPath { mode: Some(m), .. }, at)) = item {
        return (*m, format!("{at}/mode"), ModeFrom::Item);
    }
    match default {
        Some(d) => (d, default_at, ModeFrom::Default),
        None => (KUBERNETES_DEFAULT_MODE, source_at, ModeFrom::Kubernetes),
    }
}

/// The item of `items` that puts a file at `in_volume`, with its pointer.
fn item_at<'i>(
    items: &'i Option<Vec<KeyToPath>>,
    base: &str,
    in_volume: &str,
) -> Option<(&'i KeyToPath, String)> {
    items.iter().flatten().enumerate().find_map(|(i, item)| {
        (item.path.trim_matches('/') == in_volume).then(|| (item, format!("{base}/items/{i}")))
    })
}

/// Finds the file at `in_volume` in a Secret, ConfigMap or projected volume.
fn locate(
    volume: &Volume,
    in_volume: &str,
    at: &str,
    objects: &[Object],
    object: &Object,
    runtime: &mut BTreeMap<u32, BTreeSet<String>>,
) -> Located {
    // Without items every key is a file named after it.
    let mut no_key = |produced: Option<Produced>, what: &str| -> Option<String> {
        let produced = produced?;
        match produced.judge(in_volume) {
            KeyState::Produced => None,
            KeyState::Absent => Some(format!(
                "{what} has no key `{in_volume}` ({})",
                produced.describe()
            )),
            KeyState::Unknowable => {
                for es in &produced.runtime {
                    runtime
                        .entry(es.index)
                        .or_default()
                        .insert(in_volume.to_string());
                }
                None
            }
        }
    };
    let single = |items: &Option<Vec<KeyToPath>>,
                  base: String,
                  default: Option<i32>,
                  what: String,
                  produced: &mut dyn FnMut() -> Option<String>| {
        let has_items = items.as_ref().is_some_and(|i| !i.is_empty());
        let item = item_at(items, &base, in_volume);
        if has_items && item.is_none() {
            return Located::NoSuchFile(format!(
                "the items of {what} in volume `{}` put no file at {in_volume}",
                volume.name
            ));
        }
        // A missing items[].key stops the mount itself (check 3).
        if !has_items {
            if let Some(why) = produced() {
                return Located::NoSuchFile(why);
            }
        }
        let (mode, mode_at, from) = mode_of(item, default, format!("{base}/defaultMode"), base);
        Located::File {
            mode,
            mode_at,
            from,
        }
    };
    if let Some(sv) = &volume.secret {
        let name = sv.secret_name.clone().unwrap_or_default();
        let what = format!("Secret {name}");
        return single(
            &sv.items,
            format!("{at}/secret"),
            sv.default_mode,
            what.clone(),
            &mut || no_key(produced_secret(objects, object, &name), &what),
        );
    }
    if let Some(cm) = &volume.config_map {
        let what = format!("ConfigMap {}", cm.name);
        return single(
            &cm.items,
            format!("{at}/configMap"),
            cm.default_mode,
            what.clone(),
            &mut || no_key(produced_config_map(objects, object, &cm.name), &what),
        );
    }
    let Some(p) = &volume.projected else {
        return Located::Hidden;
    };
    let base = format!("{at}/projected");
    // An item with this path decides; else a source without items that
    // holds the key (its mode is the projection's default either way).
    let mut whole_sources = Vec::new();
    for (j, src) in p.sources.iter().flatten().enumerate() {
        let (items, produced) = if let Some(sp) = &src.secret {
            (
                &sp.items,
                produced_secret(objects, object, &sp.name)
                    .map(|pr| (pr, format!("Secret {}", sp.name))),
            )
        } else if let Some(cm) = &src.config_map {
            (
                &cm.items,
                produced_config_map(objects, object, &cm.name)
                    .map(|pr| (pr, format!("ConfigMap {}", cm.name))),
            )
        } else {
            // Downward API, service account token, trust bundle: not keys.
            continue;
        };
        let kind = if src.secret.is_some() {
            "secret"
        } else {
            "configMap"
        };
        if let Some(item) = item_at(items, &format!("{base}/sources/{j}/{kind}"), in_volume) {
            let (mode, mode_at, from) = mode_of(
                Some(item),
                p.default_mode,
                format!("{base}/defaultMode"),
                base,
            );
            return Located::File {
                mode,
                mode_at,
                from,
            };
        }
        if items.as_ref().is_none_or(|i| i.is_empty()) {
            whole_sources.push(produced);
        }
    }
    if whole_sources.is_empty() {
        return Located::NoSuchFile(format!(
            "no source of projected volume `{}` puts a file at {in_volume}",
            volume.name
        ));
    }
    let mut reasons = Vec::new();
    for source in whole_sources {
        match source {
            None => {
                reasons.clear();
                break;
            }
            Some((produced, what)) => match no_key(Some(produced), &what) {
                Some(why) => reasons.push(why),
                None => {
                    reasons.clear();
                    break;
                }
            },
        }
    }
    if !reasons.is_empty() {
        return Located::NoSuchFile(reasons.join("; "));
    }
    let (mode, mode_at, from) = mode_of(None, p.default_mode, format!("{base}/defaultMode"), base);
    Located::File {
        mode,
        mode_at,
        from,
    }
}

/// Development mode: `--dev`, else `LIVEKIT_DEVELOPMENT`/`--development`,
/// else `development:` in the YAML; only when it is on.
fn development(e: &Effective) -> Option<Setting> {
    let set = e.get("development")?;
    set.place.as_ref()?;
    (set.bool() == Ok(Some(true))).then_some(set)
}

fn dev_finding(e: &Effective, dev: &Setting, direct: &Verdict, has_file: bool) -> Finding {
    let what = match &dev.source {
        Source::Arg(f) => format!("--{f}"),
        Source::Env(n) => format!("env {n}"),
        _ => "development: true in its config".to_string(),
    };
    let binds = e.get("bind_addresses").is_some();
    let bind = if binds {
        "keeps the bind addresses set here"
    } else {
        "binds only to 127.0.0.1 and ::1 (no bind addresses are set), so nothing outside the pod can reach it"
    };
    let keys = match direct {
        Verdict::Missing { .. } if has_file => format!(
            "key_file is read only after the dev-mode check, so at that check it has no keys: it takes the placeholder pair devkey: secret (which the key file then replaces) and {bind}"
        ),
        Verdict::Missing { .. } => format!(
            "with no keys provided it falls back to the publicly known pair devkey: secret, so anyone can sign tokens for it, and {bind}"
        ),
        Verdict::Has => "keys are provided, so the devkey: secret fallback and the loopback-only bind do not apply".to_string(),
        Verdict::Unparsable { .. } => "its keys cannot be parsed, so it exits while loading its config, before development mode could fall back to the placeholder pair devkey: secret".to_string(),
        _ => format!(
            "if no keys reach it, it falls back to the publicly known pair devkey: secret and {bind}"
        ),
    };
    dev.place
        .clone()
        .unwrap_or_else(|| e.container_place())
        .error(
            RULE,
            format!(
                "{what} runs livekit-server v1.13.3 in development mode: {keys}; development mode also defaults the UDP port to 7882 instead of 50000-60000, shrinks the TURN relay range to 30000-30002 and logs at debug level"
            ),
        )
        .hint(match &dev.source {
            Source::Document => "remove development: true from the config".to_string(),
            _ => format!("remove {what}"),
        })
}

// ---------------------------------------------------------------------------
// `$VAR` where livekit-server expects a secret.

/// Whether text is only a variable reference: `$NAME`, `${NAME}` or `$(NAME)`.
/// Returns the name.
fn var_reference(text: &str) -> Option<&str> {
    let t = text.trim();
    let rest = t.strip_prefix('$')?;
    let name = rest
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .or_else(|| rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')))
        .unwrap_or(rest);
    let mut chars = name.chars();
    let first = chars.next()?;
    ((first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_'))
    .then_some(name)
}

/// `keys:` entries of every livekit-server config in the batch whose key or
/// secret is a `$VAR`: livekit-server decodes `keys:` with yaml.v3 as plain
/// strings and never expands environment variables there (only key_file's
/// path goes through os.ExpandEnv), so the secret is that literal text.
fn check_config_keys(
    objects: &[Object],
    servers: &[LivekitContainer],
    findings: &mut Vec<Finding>,
) {
    for cfg in livekit::configs(objects, servers)
        .into_iter()
        .filter(|c| c.judged(servers))
    {
        let Some((keys, at)) = cfg.get("keys") else {
            continue;
        };
        let Some(map) = keys.as_mapping() else {
            continue;
        };
        for (k, v) in map {
            // `$(NAME)` in a LIVEKIT_CONFIG env value is the kubelet's to
            // expand: the real value arrives.
            let literal_ref = |t: &str| var_reference(t).is_some() && !cfg.kubelet_expands(t);
            let key_ref = k.as_str().is_some_and(literal_ref);
            let secret_ref = v.as_str().is_some_and(literal_ref);
            if !(key_ref || secret_ref) {
                continue;
            }
            let Some(name) = lkguard_policy_sdk::goyaml::scalar_text(k) else {
                continue;
            };
            let which = match (key_ref, secret_ref) {
                (true, true) => "the API key and its secret look",
                (true, false) => "the API key looks",
                _ => "the API secret looks",
            };
            findings.push(
                Place::new(cfg.object.index, cfg.path.clone())
                    .inside(pointer::push(&at, name))
                    .error(RULE, format!(
                        "in keys: of the livekit config in {}, {which} like a `$VAR` reference, but livekit-server v1.13.3 does not expand environment variables in keys:, so it takes that text literally: tokens signed with the real secret are rejected, and anyone who reads the manifest can sign tokens",
                        cfg.describe()
                    ))
                    .hint("remove keys: from the config and set env LIVEKIT_KEYS from secretKeyRef (or mount key_file from the Secret)"),
            );
        }
    }
}

/// The same mistake in a literal `LIVEKIT_KEYS` env value: neither the
/// kubelet (which expands only `$(NAME)` of variables it knows) nor
/// livekit-server expands it.
fn check_env_dollar(e: &Effective, findings: &mut Vec<Finding>) {
    let Some(entry) = e.env.get("LIVEKIT_KEYS") else {
        return;
    };
    let EnvValue::Text(text) = &entry.value else {
        return;
    };
    let Ok(Yaml::Mapping(map)) = serde_yaml::from_str::<Yaml>(text) else {
        return;
    };
    let kubelet_knows = |name: &str, whole: &str| {
        whole.trim().starts_with("$(")
            && (e.env.get(name).is_some() || e.env.maybe_set_elsewhere(name).is_some())
    };
    let literal_ref = |s: &str| var_reference(s).is_some_and(|name| !kubelet_knows(name, s));
    let hit = map
        .iter()
        .any(|(k, v)| k.as_str().is_some_and(literal_ref) || v.as_str().is_some_and(literal_ref));
    if hit {
        findings.push(
            entry
                .place
                .error(RULE, format!(
                    "an entry of LIVEKIT_KEYS for container `{}` looks like a `$VAR` reference, but neither the kubelet (which expands only $(NAME) of variables defined in the pod) nor livekit-server v1.13.3 expands it, so the key pair is that literal text and tokens signed with the real secret are rejected",
                    e.container_name()
                ))
                .hint("set LIVEKIT_KEYS itself from secretKeyRef, holding `<api key>: <api secret>`"),
        );
    }
}

// ---------------------------------------------------------------------------
// The ExternalSecrets that fill the Secret.

fn check_external_secrets(
    objects: &[Object],
    s: &Settings,
    runtime: &BTreeMap<u32, BTreeSet<String>>,
    findings: &mut Vec<Finding>,
) {
    for es in objects
        .iter()
        .filter(|o| is_external_secret(o) && env::external_secret_target(o) == s.secret)
    {
        if es.resource.api_version == "external-secrets.io/v1beta1" {
            findings.push(
                Finding::warning(
                    RULE,
                    es.index,
                    "/apiVersion",
                    format!(
                        "ExternalSecret {} is on external-secrets.io/v1beta1, which external-secrets v0.17 and later no longer serve: applying it fails on a current operator, and Secret {}, where livekit-server's API keys come from, is not created or refreshed",
                        es.name(),
                        s.secret
                    ),
                )
                .hint("apiVersion: external-secrets.io/v1"),
            );
        }
        if let Some(keys) = runtime.get(&es.index) {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            findings.push(Finding::warning(
                RULE,
                es.index,
                "/spec/dataFrom",
                format!(
                    "ExternalSecret {} fills Secret {} with dataFrom, whose keys only the provider knows at run time, so whether it writes the keys read from it ({}) cannot be checked statically; a key it does not write keeps the pod from running (CreateContainerConfigError for an env var, a missing key file for livekit-server)",
                    es.name(),
                    s.secret,
                    keys.join(", ")
                ),
            ).hint("list the keys livekit reads under spec.data"));
        }
    }
}

lkguard_policy_sdk::export_policy!(SecretKeys);

#[cfg(test)]
mod tests {
    use super::*;
    use lkguard_policy_sdk::testkit::{batch, render, Source as Src};
    use lkguard_policy_sdk::Severity;

    const ES: &str = r#"apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: livekit-secrets}
spec:
  secretStoreRef: {name: keyvault, kind: ClusterSecretStore}
  target: {name: livekit-secrets}
  data:
    - {secretKey: livekit-keys, remoteRef: {key: livekit-keys}}
"#;

    /// A livekit Deployment; `extra` goes under the container, `volumes`
    /// under the pod spec.
    fn server(extra: &str, volumes: &str) -> String {
        format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: livekit}}\nspec:\n  template:\n    metadata: {{labels: {{app: livekit}}}}\n    spec:\n      containers:\n        - name: livekit\n          image: livekit/livekit-server:v1.13.3\n{extra}\n      volumes: {volumes}\n"
        )
    }

    const KEYS_ENV: &str = "          env:\n            - name: LIVEKIT_KEYS\n              valueFrom: {secretKeyRef: {name: livekit-secrets, key: livekit-keys}}";

    const KEY_FILE: &str = "          args: [--key-file, /etc/livekit/keys.yaml]\n          volumeMounts: [{name: keys, mountPath: /etc/livekit, readOnly: true}]";

    fn run_with(yaml: &str, settings: &str) -> Vec<Finding> {
        SecretKeys::validate(&render(yaml), settings).unwrap()
    }

    fn run(yaml: &str) -> Vec<Finding> {
        run_with(yaml, "{}")
    }

    fn paths(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn metadata_names_the_rule_and_its_settings() {
        let m = SecretKeys::metadata();
        assert_eq!(m.id, "secret-keys");
        assert_eq!(m.rules[0].id, "livekit/secret-keys");
        let schema: Value = serde_json::from_str(&m.settings_schema).unwrap();
        assert_eq!(
            schema.pointer("/properties/secret/default"),
            Some(&Value::from("livekit-secrets"))
        );
        assert!(schema.pointer("/properties/image").is_some());
        assert!(SecretKeys::validate(&render(ES), r#"{"secret": 1}"#).is_err());
        assert!(SecretKeys::validate(&render(ES), "").is_ok());
    }

    #[test]
    fn keys_from_the_secret_produced_by_the_external_secret_pass() {
        let yaml = format!("{ES}{}", server(KEYS_ENV, "[]"));
        assert_eq!(run(&yaml), vec![]);
    }

    #[test]
    fn key_file_from_the_secret_with_mode_0400_passes() {
        let yaml = format!(
            "{}{}",
            ES.replace("secretKey: livekit-keys", "secretKey: keys.yaml"),
            server(
                KEY_FILE,
                "[{name: keys, secret: {secretName: livekit-secrets, defaultMode: 256}}]"
            )
        );
        assert_eq!(run(&yaml), vec![]);
        // YAML `0600` arrives as 384 in JSON; group bits (0440 = 288) are
        // allowed since livekit-server 1.4.5.
        for mode in ["384", "288"] {
            let other = yaml.replace("defaultMode: 256", &format!("defaultMode: {mode}"));
            assert_eq!(run(&other), vec![], "{mode}");
        }
    }

    #[test]
    fn no_keys_is_an_error_at_the_container() {
        let f = run(&format!("{ES}{}", server("          args: []", "[]")));
        assert_eq!(paths(&f), ["/spec/template/spec/containers/0"]);
        assert_eq!(f[0].severity, Severity::Error);
        assert!(f[0].message.contains(NO_KEYS), "{}", f[0].message);
        assert!(f[0].hint.as_deref().unwrap().contains("livekit-secrets"));
    }

    #[test]
    fn no_keys_is_not_judged_in_a_base_or_in_admission() {
        let yaml = server("          args: []", "[]");
        let base = batch(&[Src {
            name: "base",
            deployable: false,
            complete: true,
            yaml: &yaml,
        }]);
        assert_eq!(SecretKeys::validate(&base, "{}").unwrap(), vec![]);
        let admission = batch(&[Src {
            name: "admission",
            deployable: true,
            complete: false,
            yaml: &yaml,
        }]);
        assert_eq!(SecretKeys::validate(&admission, "{}").unwrap(), vec![]);
    }

    #[test]
    fn env_from_the_secret_counts_only_with_a_livekit_keys_key() {
        let env_from = "          envFrom: [{secretRef: {name: livekit-secrets}}]";
        let good = format!(
            "{}{}",
            ES.replace("secretKey: livekit-keys", "secretKey: LIVEKIT_KEYS"),
            server(env_from, "[]")
        );
        assert_eq!(run(&good), vec![]);
        // The ExternalSecret writes `livekit-keys`: no variable LIVEKIT_KEYS.
        let f = run(&format!("{ES}{}", server(env_from, "[]")));
        assert_eq!(paths(&f), ["/spec/template/spec/containers/0"]);
        // Without the ExternalSecret in the render, anything may be in it.
        assert_eq!(run(&server(env_from, "[]")), vec![]);
    }

    #[test]
    fn an_empty_livekit_keys_is_an_error_at_its_value() {
        let f = run(&server(
            "          env: [{name: LIVEKIT_KEYS, value: ''}]",
            "[]",
        ));
        assert_eq!(paths(&f), ["/spec/template/spec/containers/0/env/0/value"]);
        assert!(
            f[0].message.contains("no `key: secret` pair"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn keys_in_a_config_map_are_left_to_secrets_source() {
        let yaml = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: livekit-config}}\ndata:\n  livekit.yaml: |\n    port: 7880\n    keys:\n      APIabc: a-literal-secret-reported-by-secrets-source\n{}",
            server(
                "          args: [--config, /etc/livekit/livekit.yaml]\n          volumeMounts: [{name: cfg, mountPath: /etc/livekit}]",
                "[{name: cfg, configMap: {name: livekit-config}}]"
            )
        );
        assert_eq!(run(&yaml), vec![]);
        let empty = yaml.replace(
            "    keys:\n      APIabc: a-literal-secret-reported-by-secrets-source\n",
            "    keys: {}\n",
        );
        let f = run(&empty);
        assert_eq!(paths(&f), ["/data/livekit.yaml"]);
        assert_eq!(f[0].embedded_path.as_deref(), Some("/keys"));
    }

    #[test]
    fn dollar_var_in_config_keys_is_an_error_at_that_line() {
        for secret in ["$LIVEKIT_SECRET", "${API_SECRET}", "$(API_SECRET)"] {
            let yaml = format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: livekit-config}}\ndata:\n  livekit.yaml: |\n    port: 7880\n    rtc: {{tcp_port: 7881}}\n    keys:\n      APIabc: \"{secret}\"\n      APIdef: real-looking-secret-0123456789abcdef\n"
            );
            let f = run(&yaml);
            assert_eq!(paths(&f), ["/data/livekit.yaml"], "{secret}");
            assert_eq!(f[0].embedded_path.as_deref(), Some("/keys/APIabc"));
            let m = &f[0].message;
            assert!(m.contains("`$VAR` reference"), "{m}");
            for leaked in ["LIVEKIT_SECRET", "API_SECRET", "APIabc", "real-looking"] {
                assert!(!m.contains(leaked), "{m}");
            }
        }
    }

    #[test]
    fn dollar_var_in_a_literal_livekit_keys_is_an_error() {
        let f = run(&server(
            "          env: [{name: LIVEKIT_KEYS, value: 'APIabc: $LIVEKIT_API_SECRET'}]",
            "[]",
        ));
        assert_eq!(paths(&f), ["/spec/template/spec/containers/0/env/0/value"]);
        assert!(!f[0].message.contains("LIVEKIT_API_SECRET"));
        // `$(NAME)` of a variable the pod defines is the kubelet's to expand.
        let expanded = "          env:\n            - name: SECRET\n              valueFrom: {secretKeyRef: {name: livekit-secrets, key: secret}}\n            - {name: LIVEKIT_KEYS, value: 'APIabc: $(SECRET)'}";
        assert_eq!(run(&server(expanded, "[]")), vec![]);
    }

    #[test]
    fn dollar_paren_in_a_livekit_config_env_value_is_expanded_by_the_kubelet() {
        // The config itself is an env value: the kubelet expands `$(NAME)`
        // in it before livekit-server reads it.
        let env = "          env:\n            - name: K\n              valueFrom: {secretKeyRef: {name: livekit-secrets, key: k}}\n            - name: S\n              valueFrom: {secretKeyRef: {name: livekit-secrets, key: s}}\n            - name: LIVEKIT_CONFIG\n              value: |\n                port: 7880\n                keys:\n                  \"$(K)\": \"$(S)\"";
        assert_eq!(run(&server(env, "[]")), vec![]);
        // `$NAME` there is still taken literally by livekit-server.
        let f = run(&server(&env.replace("\"$(S)\"", "\"$S\""), "[]"));
        assert_eq!(
            paths(&f),
            ["/spec/template/spec/containers/0/env/2/value"],
            "{f:?}"
        );
    }

    #[test]
    fn client_api_key_env_alone_is_an_error_at_the_entry() {
        let env = "          env:\n            - {name: LIVEKIT_URL, value: 'ws://localhost:7880'}\n            - name: LIVEKIT_API_KEY\n              valueFrom: {secretKeyRef: {name: livekit-secrets, key: api-key}}\n            - name: LIVEKIT_API_SECRET\n              valueFrom: {secretKeyRef: {name: livekit-secrets, key: api-secret}}";
        let f = run(&server(env, "[]"));
        assert_eq!(paths(&f), ["/spec/template/spec/containers/0/env/1"]);
        let m = &f[0].message;
        assert!(m.contains("LIVEKIT_API_KEY and LIVEKIT_API_SECRET"), "{m}");
        assert!(m.contains("client SDKs") && m.contains(NO_KEYS), "{m}");
        // With LIVEKIT_KEYS as well they are merely unused.
        let both = env.replace("          env:\n", &format!("{KEYS_ENV}\n"));
        assert_eq!(run(&server(&both, "[]")), vec![]);
    }

    #[test]
    fn secret_key_ref_to_a_key_the_external_secret_does_not_write() {
        let agent = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: agent}\nspec:\n  template:\n    spec:\n      initContainers:\n        - name: wait\n          image: busybox\n          env:\n            - name: TOKEN\n              valueFrom: {secretKeyRef: {name: livekit-secrets, key: api-secret}}\n      containers:\n        - name: agent\n          image: agent:1\n          env:\n            - name: LIVEKIT_API_KEY\n              valueFrom: {secretKeyRef: {name: livekit-secrets, key: livekit-keys}}\n            - name: OTHER\n              valueFrom: {secretKeyRef: {name: other, key: x}}\n            - name: MAYBE\n              valueFrom: {secretKeyRef: {name: livekit-secrets, key: maybe, optional: true}}\n";
        let f = run(&format!("{ES}{agent}"));
        assert_eq!(
            paths(&f),
            ["/spec/template/spec/initContainers/0/env/0/valueFrom/secretKeyRef/key"]
        );
        let m = &f[0].message;
        assert!(m.contains("CreateContainerConfigError"), "{m}");
        assert!(m.contains("writes only: livekit-keys"), "{m}");
        // In a base too: the reference and the producer are both there.
        let base = batch(&[Src {
            name: "base",
            deployable: false,
            complete: true,
            yaml: &format!("{ES}{agent}"),
        }]);
        assert_eq!(SecretKeys::validate(&base, "{}").unwrap().len(), 1);
        // Nothing to compare against: silent.
        assert_eq!(run(agent), vec![]);
    }

    #[test]
    fn a_secret_volume_item_the_external_secret_does_not_write() {
        let yaml = format!(
            "{ES}{}",
            server(
                KEY_FILE,
                "[{name: keys, secret: {secretName: livekit-secrets, defaultMode: 256, items: [{key: keys-yaml, path: keys.yaml}]}}]"
            )
        );
        let f = run(&yaml);
        assert_eq!(
            paths(&f),
            ["/spec/template/spec/volumes/0/secret/items/0/key"]
        );
        assert!(f[0].message.contains("ContainerCreating"));
        // A volume no container mounts is never set up.
        let unused = yaml.replace("name: keys, mountPath", "name: other, mountPath");
        assert!(!paths(&run(&unused)).iter().any(|p| p.ends_with("/key")));
    }

    #[test]
    fn data_from_is_one_warning_at_data_from() {
        let es = ES.replace(
            "  data:\n    - {secretKey: livekit-keys, remoteRef: {key: livekit-keys}}\n",
            "  dataFrom:\n    - extract: {key: livekit}\n",
        );
        let env = format!(
            "{KEYS_ENV}\n            - name: LIVEKIT_KEYS_TOO\n              valueFrom: {{secretKeyRef: {{name: livekit-secrets, key: other}}}}"
        );
        let f = run(&format!("{es}{}", server(&env, "[]")));
        assert_eq!(paths(&f), ["/spec/dataFrom"]);
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(
            f[0].message.contains("livekit-keys, other"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn key_file_at_the_default_mode_is_refused() {
        let es = ES.replace("secretKey: livekit-keys", "secretKey: keys.yaml");
        let with = |volumes: &str| run(&format!("{es}{}", server(KEY_FILE, volumes)));
        // Nothing set: Kubernetes' 0644.
        let f = with("[{name: keys, secret: {secretName: livekit-secrets}}]");
        assert_eq!(paths(&f), ["/spec/template/spec/volumes/0/secret"]);
        assert!(f[0].message.contains("0644") && f[0].message.contains(BAD_MODE));
        assert!(f[0].hint.as_deref().unwrap().contains("defaultMode: 0400"));
        // defaultMode 0604 (others may read).
        let f = with("[{name: keys, secret: {secretName: livekit-secrets, defaultMode: 388}}]");
        assert_eq!(
            paths(&f),
            ["/spec/template/spec/volumes/0/secret/defaultMode"]
        );
        assert!(f[0].message.contains("0604"), "{}", f[0].message);
        // An item's mode beats defaultMode.
        let f = with("[{name: keys, secret: {secretName: livekit-secrets, defaultMode: 256, items: [{key: keys.yaml, path: keys.yaml, mode: 420}]}}]");
        assert_eq!(
            paths(&f),
            ["/spec/template/spec/volumes/0/secret/items/0/mode"]
        );
        assert!(f[0].hint.as_deref().unwrap().contains("mode: 0400"));
        let ok = with("[{name: keys, secret: {secretName: livekit-secrets, defaultMode: 420, items: [{key: keys.yaml, path: keys.yaml, mode: 256}]}}]");
        assert_eq!(ok, vec![]);
        // A projected volume has its own defaultMode.
        let f = with("[{name: keys, projected: {sources: [{secret: {name: livekit-secrets}}]}}]");
        assert_eq!(paths(&f), ["/spec/template/spec/volumes/0/projected"]);
        let ok = with("[{name: keys, projected: {defaultMode: 256, sources: [{secret: {name: livekit-secrets}}]}}]");
        assert_eq!(ok, vec![]);
    }

    #[test]
    fn key_file_through_a_sub_path_and_from_the_config() {
        let es = ES.replace("secretKey: livekit-keys", "secretKey: keys");
        let yaml = format!(
            "{es}apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: livekit-config}}\ndata:\n  livekit.yaml: |\n    port: 7880\n    key_file: /keys.yaml\n{}",
            server(
                "          args: [--config, /etc/livekit/livekit.yaml]\n          volumeMounts:\n            - {name: cfg, mountPath: /etc/livekit}\n            - {name: keys, mountPath: /keys.yaml, subPath: keys}",
                "[{name: cfg, configMap: {name: livekit-config}}, {name: keys, secret: {secretName: livekit-secrets}}]"
            )
        );
        let f = run(&yaml);
        assert_eq!(paths(&f), ["/spec/template/spec/volumes/1/secret"]);
    }

    #[test]
    fn key_file_the_secret_does_not_hold_stops_the_server() {
        // The ExternalSecret writes `livekit-keys`; the file is keys.yaml.
        let f = run(&format!(
            "{ES}{}",
            server(
                KEY_FILE,
                "[{name: keys, secret: {secretName: livekit-secrets, defaultMode: 256}}]"
            )
        ));
        assert_eq!(paths(&f), ["/spec/template/spec/containers/0/args/1"]);
        assert!(
            f[0].message.contains("no key `keys.yaml`"),
            "{}",
            f[0].message
        );
        // LIVEKIT_KEY_FILE pointing where nothing is mounted (and the
        // `--key-file` form alike).
        let f = run(&server(
            "          env: [{name: LIVEKIT_KEY_FILE, value: /etc/keys.yaml}]",
            "[]",
        ));
        assert_eq!(paths(&f), ["/spec/template/spec/containers/0/env/0/value"]);
        assert!(f[0].message.contains("no volume is mounted"));
        // A relative path depends on the image's working directory.
        assert_eq!(
            run(&server(
                "          env: [{name: LIVEKIT_KEY_FILE, value: keys.yaml}]",
                "[]",
            )),
            vec![]
        );
        let f = run(&server(
            "          args: [--key-file, /etc/keys.yaml]",
            "[]",
        ));
        assert_eq!(paths(&f), ["/spec/template/spec/containers/0/args/1"]);
        assert!(f[0].message.contains("no volume is mounted"));
        // A CSI volume (Key Vault provider): its content is not in the render.
        assert_eq!(
            run(&server(
                KEY_FILE,
                "[{name: keys, csi: {driver: secrets-store.csi.k8s.io}}]"
            )),
            vec![]
        );
    }

    #[test]
    fn dev_is_an_error_at_the_arg() {
        let f = run(&server("          args: [--dev]", "[]"));
        assert_eq!(paths(&f), ["/spec/template/spec/containers/0/args/0"]);
        let m = &f[0].message;
        assert!(
            m.contains("devkey: secret") && m.contains("127.0.0.1 and ::1"),
            "{m}"
        );
        // Bind addresses set: kept.
        let f = run(&server("          args: [--dev, --bind, 0.0.0.0]", "[]"));
        assert!(
            f[0].message.contains("keeps the bind addresses"),
            "{}",
            f[0].message
        );
        // With keys the fallback does not apply, but dev mode is still wrong.
        let f = run(&format!(
            "{ES}{}",
            server(&format!("          args: [--dev]\n{KEYS_ENV}"), "[]")
        ));
        assert_eq!(paths(&f), ["/spec/template/spec/containers/0/args/0"]);
        assert!(f[0].message.contains("do not apply"), "{}", f[0].message);
        // Only a key file: read after the dev check, so still loopback.
        let es = ES.replace("secretKey: livekit-keys", "secretKey: keys.yaml");
        let f = run(&format!(
            "{es}{}",
            server(
                &KEY_FILE.replace("args: [", "args: [--dev, "),
                "[{name: keys, secret: {secretName: livekit-secrets, defaultMode: 256}}]"
            )
        ));
        assert_eq!(paths(&f), ["/spec/template/spec/containers/0/args/0"]);
        assert!(f[0].message.contains("127.0.0.1"), "{}", f[0].message);
        // --dev=false, and a base, are fine.
        assert_eq!(
            paths(&run(&server("          args: ['--dev=false']", "[]"))),
            ["/spec/template/spec/containers/0"]
        );
        let base = batch(&[Src {
            name: "base",
            deployable: false,
            complete: false,
            yaml: &server("          args: [--dev]", "[]"),
        }]);
        assert_eq!(SecretKeys::validate(&base, "{}").unwrap(), vec![]);
    }

    #[test]
    fn unparsable_keys_stop_the_server_even_in_dev_mode() {
        // No colon (or no space after it): a YAML string, not a mapping.
        // livekit-server's updateFromCLI fails before the dev-mode check,
        // before any key file is read, and a single object shows it.
        for value in ["devkey secret", "devkey:secret"] {
            let env = format!("          env: [{{name: LIVEKIT_KEYS, value: '{value}'}}]");
            let f = run(&server(&format!("          args: [--dev]\n{env}"), "[]"));
            assert_eq!(
                paths(&f),
                [
                    "/spec/template/spec/containers/0/args/0",
                    "/spec/template/spec/containers/0/env/0/value"
                ],
                "{value}"
            );
            assert!(
                f[0].message.contains("cannot be parsed"),
                "{}",
                f[0].message
            );
            assert!(!f[0].message.contains("falls back"), "{}", f[0].message);
            assert!(
                f[1].message.contains("Could not parse keys"),
                "{}",
                f[1].message
            );
            assert!(
                !f.iter().any(|f| f.message.contains(value)),
                "a secret value is quoted"
            );
            let admission = batch(&[Src {
                name: "admission",
                deployable: true,
                complete: false,
                yaml: &server(&env, "[]"),
            }]);
            assert_eq!(
                paths(&SecretKeys::validate(&admission, "{}").unwrap()),
                ["/spec/template/spec/containers/0/env/0/value"]
            );
        }
        // The same text as an arg.
        let f = run(&server("          args: [--keys, 'devkey secret']", "[]"));
        assert_eq!(paths(&f), ["/spec/template/spec/containers/0/args/1"]);
        // Composed from Secret variables: the shape decides.
        let composed = |keys: &str| {
            run(&format!(
                "{ES}{}",
                server(&format!("          env:\n            - {{name: K, valueFrom: {{secretKeyRef: {{name: livekit-secrets, key: livekit-keys}}}}}}\n            - {{name: S, valueFrom: {{secretKeyRef: {{name: livekit-secrets, key: livekit-keys}}}}}}\n            - {{name: LIVEKIT_KEYS, value: '{keys}'}}"), "[]")
            ))
        };
        assert_eq!(
            paths(&composed("$(K):$(S)")),
            ["/spec/template/spec/containers/0/env/2/value"]
        );
        assert_eq!(paths(&composed("$(K): $(S)")), Vec::<&str>::new());
    }

    #[test]
    fn development_in_env_or_config_is_the_same() {
        let f = run(&server(
            "          env: [{name: LIVEKIT_DEVELOPMENT, value: 'true'}]",
            "[]",
        ));
        assert_eq!(paths(&f), ["/spec/template/spec/containers/0/env/0/value"]);
        let yaml = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata:\n  livekit.yaml: 'development: true'\n{}",
            server(
                "          args: [--config, /etc/livekit/livekit.yaml]\n          volumeMounts: [{name: cfg, mountPath: /etc/livekit}]",
                "[{name: cfg, configMap: {name: c}}]"
            )
        );
        let f = run(&yaml);
        assert_eq!(paths(&f), ["/data/livekit.yaml"]);
        assert_eq!(f[0].embedded_path.as_deref(), Some("/development"));
    }

    #[test]
    fn v1beta1_external_secret_is_a_warning_at_api_version() {
        let es = ES.replace("external-secrets.io/v1\n", "external-secrets.io/v1beta1\n");
        let f = run(&es);
        assert_eq!(paths(&f), ["/apiVersion"]);
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(f[0].message.contains("v0.17"));
        assert_eq!(
            f[0].hint.as_deref(),
            Some("apiVersion: external-secrets.io/v1")
        );
        // Another Secret's ExternalSecret is not this rule's business.
        assert_eq!(run(&es.replace("livekit-secrets", "memql-secrets")), vec![]);
    }

    #[test]
    fn the_secret_name_comes_from_settings() {
        let yaml = format!("{ES}{}", server(KEYS_ENV, "[]")).replace("livekit-secrets", "lk");
        assert_eq!(run_with(&yaml, r#"{"secret": "lk"}"#), vec![]);
        let wrong_key = yaml.replace("key: livekit-keys}", "key: keys}");
        let f = run_with(&wrong_key, r#"{"secret": "lk"}"#);
        assert_eq!(
            paths(&f),
            ["/spec/template/spec/containers/0/env/0/valueFrom/secretKeyRef/key"]
        );
        // Under the default name, `lk` is some other Secret.
        assert_eq!(run(&wrong_key), vec![]);
    }

    #[test]
    fn no_message_shows_a_secret_value() {
        let secret = "Sup3rS3cretValueThatMustNeverAppear";
        let yaml = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata:\n  livekit.yaml: |\n    rtc: {{tcp_port: 7881}}\n    keys: {{\"$KEY{secret}\": \"${{S}}\"}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: livekit-secrets}}\nstringData: {{livekit-keys: 'k: {secret}'}}\n{}",
            server(
                &format!("          args: [--dev]\n          env:\n            - {{name: LIVEKIT_API_SECRET, value: {secret}}}\n            - {{name: LIVEKIT_KEYS, value: 'k: $S{secret}'}}\n            - name: X\n              valueFrom: {{secretKeyRef: {{name: livekit-secrets, key: nope}}}}"),
                "[]"
            )
        );
        let f = run(&yaml);
        assert!(f.len() >= 3, "{f:?}");
        for finding in &f {
            assert!(!finding.message.contains(secret), "{}", finding.message);
            assert!(!finding.hint.clone().unwrap_or_default().contains(secret));
        }
    }
}
