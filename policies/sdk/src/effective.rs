//! The configuration livekit-server will really run with, and where each
//! value came from.
//!
//! livekit-server (v1.13, `cmd/server/main.go` and `pkg/config/config.go`)
//! builds its config in this order, later wins:
//! 1. built-in defaults;
//! 2. one YAML document: `--config-body` / `LIVEKIT_CONFIG` when non-empty,
//!    and then the `--config` file is ignored entirely; otherwise the file;
//! 3. a hidden flag and an env var for every scalar config field
//!    (`LIVEKIT_RTC_USE_EXTERNAL_IP`), generated from the config structs:
//!    [`GENERATED`] is derived at build time from the shipped JSON Schema;
//! 4. the named flags and their env vars ([`NAMED`]).
//!
//! A command-line argument beats the env var of the same flag. Rules ask
//! [`Effective::get`] for a dotted path and get the value with the [`Place`]
//! that set it.

use k8s_openapi::api::core::v1::Container;
use serde_yaml::Value as Yaml;

use crate::env::{self, ContainerEnv, EnvEntry, EnvValue, Via, Word};
use crate::flags::{self, Flag};
use crate::goyaml::{self, GoBool};
use crate::image;
use crate::livekit::{self, ConfigSource, LivekitConfig, LivekitContainer};
use crate::model::Object;
use crate::place::Place;
use crate::{pointer, workload};

/// The Go kind of a config field, as livekit's flag generator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int,
    Uint,
    Float,
    String,
    Duration,
}

/// One generated flag: `--rtc.use_external_ip` / `LIVEKIT_RTC_USE_EXTERNAL_IP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generated {
    /// The dotted YAML path, which is also the hidden flag's name.
    pub path: &'static str,
    /// [`env_name`] of the path.
    pub env: &'static str,
    pub kind: Kind,
    /// The Go type as written in the config struct.
    pub go_type: &'static str,
}

include!(concat!(std::env!("OUT_DIR"), "/generated_flags.rs"));

/// The JSON Schema of livekit-server's config ([`LIVEKIT_VERSION`]), without
/// its prose: `schema/livekit-server.schema.json` holds the annotated one.
pub const SCHEMA_JSON: &str = include_str!(concat!(
    std::env!("OUT_DIR"),
    "/livekit-server.schema.min.json"
));

/// The env var of a generated flag: `LIVEKIT_` + the path upper-cased with
/// dots as underscores.
pub fn env_name(path: &str) -> String {
    format!("LIVEKIT_{}", path.to_ascii_uppercase().replace('.', "_"))
}

/// The generated flag an env var feeds, if any.
pub fn generated_by_env(name: &str) -> Option<&'static Generated> {
    name.strip_prefix("LIVEKIT_")?;
    GENERATED.iter().find(|g| g.env == name)
}

pub fn generated(path: &str) -> Option<&'static Generated> {
    GENERATED.iter().find(|g| g.path == path)
}

/// A named flag of `cmd/server/main.go`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Named {
    pub flag: &'static str,
    pub env: Option<&'static str>,
    /// The config field it sets, when it sets one.
    pub path: Option<&'static str>,
    pub kind: Kind,
}

/// The named flags livekit-server v1.13.3 defines (`cmd/server/main.go`),
/// with their env vars; `--cpuprofile`/`--memprofile` touch no config.
pub const NAMED: &[Named] = &[
    Named {
        flag: "config",
        env: None,
        path: None,
        kind: Kind::String,
    },
    Named {
        flag: "config-body",
        env: Some("LIVEKIT_CONFIG"),
        path: None,
        kind: Kind::String,
    },
    Named {
        flag: "key-file",
        env: None,
        path: Some("key_file"),
        kind: Kind::String,
    },
    Named {
        flag: "keys",
        env: Some("LIVEKIT_KEYS"),
        path: Some("keys"),
        kind: Kind::String,
    },
    Named {
        flag: "region",
        env: Some("LIVEKIT_REGION"),
        path: Some("region"),
        kind: Kind::String,
    },
    Named {
        flag: "node-ip",
        env: Some("NODE_IP"),
        path: Some("rtc.node_ip"),
        kind: Kind::String,
    },
    Named {
        flag: "udp-port",
        env: Some("UDP_PORT"),
        path: Some("rtc.udp_port"),
        kind: Kind::String,
    },
    Named {
        flag: "redis-host",
        env: Some("REDIS_HOST"),
        path: Some("redis.address"),
        kind: Kind::String,
    },
    Named {
        flag: "redis-password",
        env: Some("REDIS_PASSWORD"),
        path: Some("redis.password"),
        kind: Kind::String,
    },
    Named {
        flag: "turn-cert",
        env: Some("LIVEKIT_TURN_CERT"),
        path: Some("turn.cert_file"),
        kind: Kind::String,
    },
    Named {
        flag: "turn-key",
        env: Some("LIVEKIT_TURN_KEY"),
        path: Some("turn.key_file"),
        kind: Kind::String,
    },
    Named {
        flag: "bind",
        env: None,
        path: Some("bind_addresses"),
        kind: Kind::String,
    },
    Named {
        flag: "dev",
        env: None,
        path: Some("development"),
        kind: Kind::Bool,
    },
    Named {
        flag: "disable-strict-config",
        env: None,
        path: None,
        kind: Kind::Bool,
    },
];

pub fn named(flag: &str) -> Option<&'static Named> {
    NAMED.iter().find(|n| n.flag == flag)
}

/// Every env var name livekit-server reads.
pub fn reads_env(name: &str) -> bool {
    generated_by_env(name).is_some() || NAMED.iter().any(|n| n.env == Some(name))
}

/// Every env var name livekit-server reads, generated and named.
pub fn env_names() -> impl Iterator<Item = &'static str> {
    GENERATED
        .iter()
        .map(|g| g.env)
        .chain(NAMED.iter().filter_map(|n| n.env))
}

/// Where a value was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    /// The YAML document.
    Document,
    /// An env var (generated or named).
    Env(String),
    /// A command-line flag.
    Arg(String),
}

/// A value as livekit-server receives it.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    /// From the YAML, decoded by yaml.v3 into the field's Go type.
    Yaml(Yaml),
    /// From an env var or a flag, parsed by urfave/cli with Go's strconv.
    Text(String),
    /// Set, from something the render does not show (a Secret, say).
    Unknown(String),
    /// A built-in default, as text.
    Default(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub raw: Raw,
    pub source: Source,
    /// `None` for a built-in default.
    pub place: Option<Place>,
    /// For an env var that came in through `envFrom`: the ConfigMap or
    /// Secret (`ConfigMap livekit-env`), so a message names the object to
    /// edit and not an env entry the pod spec does not have.
    pub env_from: Option<String>,
}

impl Setting {
    /// The scalar's text, when the render shows it.
    pub fn text(&self) -> Option<String> {
        match &self.raw {
            Raw::Yaml(v) => goyaml::scalar_text(v),
            Raw::Text(t) | Raw::Default(t) => Some(t.clone()),
            Raw::Unknown(_) => None,
        }
    }

    /// The boolean livekit-server ends up with: yaml.v3 rules for the YAML,
    /// `strconv.ParseBool` for env vars and flags. `Err` means the server
    /// does not start; `Ok(None)` that the value is not visible.
    pub fn bool(&self) -> Result<Option<bool>, String> {
        match &self.raw {
            Raw::Yaml(v) => match goyaml::yaml_bool(v) {
                GoBool::Value(b) => Ok(Some(b)),
                GoBool::Null => Ok(Some(false)),
                GoBool::Invalid(what) => Err(format!(
                    "{what} cannot be decoded into a Go bool by yaml.v3"
                )),
            },
            Raw::Text(t) | Raw::Default(t) => goyaml::strconv_bool(t)
                .map(Some)
                .ok_or_else(|| format!("`{t}` is not a Go boolean (strconv.ParseBool takes 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False)")),
            Raw::Unknown(_) => Ok(None),
        }
    }

    /// Says where the value came from, for messages.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Default => "the built-in default".into(),
            Source::Document => "the config file".into(),
            Source::Env(n) => match &self.env_from {
                Some(from) => format!("env {n} (from {from} via envFrom)"),
                None => format!("env {n}"),
            },
            Source::Arg(f) => format!("flag --{f}"),
        }
    }
}

/// Where livekit-server's YAML document comes from.
#[derive(Debug, Clone)]
pub enum Document<'o, 'a> {
    /// `--config-body` or `LIVEKIT_CONFIG`; `config` is `None` when the text
    /// comes from a Secret the render does not show.
    Body {
        place: Place,
        source: Source,
        config: Option<LivekitConfig<'o, 'a>>,
    },
    /// `--config FILE`, resolved through the mounts to a ConfigMap key.
    File {
        file: String,
        flag: Place,
        config: LivekitConfig<'o, 'a>,
    },
    /// `--config FILE` that the render cannot resolve. `missing`: no volume
    /// is mounted there, so the file does not exist in the container.
    /// `hidden`: it is on a volume whose content no render shows (a Secret,
    /// an emptyDir), so nothing can be said.
    Unresolved {
        file: String,
        flag: Place,
        why: String,
        missing: bool,
        hidden: bool,
    },
    /// Neither: the server runs on defaults, env vars and flags.
    None,
}

impl<'o, 'a> Document<'o, 'a> {
    pub fn config(&self) -> Option<&LivekitConfig<'o, 'a>> {
        match self {
            Document::Body { config, .. } => config.as_ref(),
            Document::File { config, .. } => Some(config),
            _ => None,
        }
    }

    /// The server reads a document the render does not show (a Secret, a
    /// CSI volume, LIVEKIT_CONFIG from a Secret): it may set anything.
    pub fn hidden(&self) -> bool {
        matches!(
            self,
            Document::Unresolved { hidden: true, .. } | Document::Body { config: None, .. }
        )
    }
}

/// The path of the binary in livekit's image (livekit/livekit `Dockerfile`,
/// v1.4 to v1.13: `FROM alpine`, `COPY … /livekit-server`,
/// `ENTRYPOINT ["/livekit-server"]`). alpine's PATH does not hold `/`.
pub const IMAGE_BINARY: &str = "/livekit-server";

/// The repository whose image [`IMAGE_BINARY`] describes.
pub const IMAGE_REPOSITORY: &str = "livekit/livekit-server";

/// What the container runs when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch<'e> {
    /// No `command`: the image's entrypoint runs, with `args` as its words.
    Entrypoint,
    /// `command` replaces the entrypoint, and this word starts the
    /// livekit-server binary (first word, after a wrapper, or in a shell
    /// script).
    Server(&'e Word),
    /// `command` replaces the entrypoint and no word runs a binary named
    /// livekit-server: this is the program that runs.
    Other(&'e Word),
}

/// Whether a word names the livekit-server binary (any path).
fn is_server_binary(word: &str) -> bool {
    word.rsplit('/').next() == Some("livekit-server")
}

/// Whether the container sets `command`, replacing the image's entrypoint.
fn has_command(c: &Container) -> bool {
    c.command.as_ref().is_some_and(|c| !c.is_empty())
}

/// The index of the word that starts livekit-server, when `command` is set.
fn launch_word(c: &Container, words: &[Word]) -> Option<usize> {
    if !has_command(c) {
        return None;
    }
    words.iter().position(|w| is_server_binary(&w.text))
}

/// Whether a release takes `rtc.node_ip` as `{ipv4, ipv6}` (parsed from
/// `ipv4,ipv6` text; NODE_IP then cannot replace an IPv4 the config set),
/// as it does since v1.10.0. Before, it was one address that NODE_IP /
/// `--node-ip` replaced outright (cmd/server getConfig, upstream
/// @03fc9501). An unknown release is judged as [`LIVEKIT_VERSION`].
pub fn node_ip_is_struct(version: Option<(u32, u32, u32)>) -> bool {
    version.is_none_or(|v| v >= (1, 10, 0))
}

/// One livekit-server container and the configuration it runs with.
#[derive(Debug, Clone)]
pub struct Effective<'t, 'o, 'a> {
    pub server: LivekitContainer<'t, 'o, 'a>,
    pub env: ContainerEnv,
    pub words: Vec<Word>,
    pub flags: Vec<Flag>,
    pub document: Document<'o, 'a>,
    /// The release the container's image tag names; `None` (`latest`, a
    /// digest alone) is judged as [`LIVEKIT_VERSION`].
    pub version: Option<(u32, u32, u32)>,
}

fn is_bool_flag(name: &str) -> bool {
    named(name).is_some_and(|n| n.kind == Kind::Bool)
        || generated(name).is_some_and(|g| g.kind == Kind::Bool)
        || matches!(name, "help" | "h" | "version" | "v")
}

impl<'t, 'o, 'a> Effective<'t, 'o, 'a> {
    pub fn build(objects: &'o [Object<'a>], server: LivekitContainer<'t, 'o, 'a>) -> Self {
        let object = server.template.object;
        let c = server.container.container;
        let env = env::container_env(objects, object, &server.container.path, c);
        let words = env::command_line(object, &server.container.path, c, &env);
        // The server's flags are the words after the word that starts it; a
        // wrapper's own options (`cp -r`, `env -i`) are not livekit-server's.
        let flags = match launch_word(c, &words) {
            Some(i) => flags::parse(&words[i + 1..], is_bool_flag),
            None => flags::parse(&words, is_bool_flag),
        };
        let document = document(objects, &server, &env, &flags);
        let version = c.image.as_deref().and_then(|i| image::parse(i).version());
        Effective {
            server,
            env,
            words,
            flags,
            document,
            version,
        }
    }

    /// What the container starts: the image's entrypoint, or what `command`
    /// replaces it with (Kubernetes `command` is the entrypoint, not Docker's
    /// CMD).
    pub fn launch(&self) -> Launch<'_> {
        let c = self.server.container.container;
        match launch_word(c, &self.words) {
            Some(i) => Launch::Server(&self.words[i]),
            None if has_command(c) => self.words.first().map_or(Launch::Entrypoint, Launch::Other),
            None => Launch::Entrypoint,
        }
    }

    /// Whether the image is livekit's own (any registry or mirror prefix),
    /// whose only copy of the binary is [`IMAGE_BINARY`].
    pub fn official_image(&self) -> bool {
        self.server
            .container
            .container
            .image
            .as_deref()
            .is_some_and(|i| image::parse(i).is_repository(IMAGE_REPOSITORY))
    }

    /// `livekit-server v1.9.1`, or the schema's version when the tag names
    /// none, for messages that depend on the release.
    pub fn server_version(&self) -> String {
        match self.version {
            Some((a, b, c)) => format!("livekit-server v{a}.{b}.{c}"),
            None => format!("livekit-server {LIVEKIT_VERSION}"),
        }
    }

    /// Why this release reads no env var for generated field `g`, if it
    /// does not (CHANGELOG: generated flags and their env since 1.3.0,
    /// booleans from env since 1.8.4 (#3382), `rtc.node_ip` a struct with
    /// `ipv4`/`ipv6` since 1.10.0).
    pub fn unread_env(&self, g: &Generated) -> Option<&'static str> {
        let v = self.version?;
        if v < (1, 3, 0) {
            Some("generated config env vars exist since v1.3.0")
        } else if g.kind == Kind::Bool && v < (1, 8, 4) {
            Some("boolean config env vars are read since v1.8.4")
        } else if g.path.starts_with("rtc.node_ip.") && !node_ip_is_struct(self.version) {
            Some("rtc.node_ip has ipv4/ipv6 members since v1.10.0")
        } else {
            None
        }
    }

    /// Env vars named for a generated field that this release does not
    /// read, with the reason: set, and without effect.
    pub fn unread_overrides(&self) -> Vec<(&'static Generated, &EnvEntry, &'static str)> {
        self.env
            .iter()
            .filter_map(|e| {
                let g = generated_by_env(&e.name)?;
                Some((g, e, self.unread_env(g)?))
            })
            .collect()
    }

    pub fn object(&self) -> &'o Object<'a> {
        self.server.template.object
    }

    pub fn container_name(&self) -> &str {
        &self.server.container.container.name
    }

    /// The container in the pod spec: where a finding about the container
    /// as a whole points.
    pub fn container_place(&self) -> Place {
        Place::new(self.object().index, self.server.container.path.clone())
    }

    pub fn config(&self) -> Option<&LivekitConfig<'o, 'a>> {
        self.document.config()
    }

    /// `(flag, env var)` of a flag: the arg when given, else the env var.
    fn flag_or_env(&self, flag: &str, env: Option<&str>) -> Option<Setting> {
        if let Some(f) = flags::last(&self.flags, flag) {
            return Some(Setting {
                raw: Raw::Text(f.value.clone().unwrap_or_else(|| "true".into())),
                source: Source::Arg(flag.to_string()),
                place: Some(f.place.clone()),
                env_from: None,
            });
        }
        let e = self.env.get(env?)?;
        Some(env_setting(e))
    }

    /// The env var or flag set for a generated config field, if any.
    pub fn generated_override(&self, path: &str) -> Option<Setting> {
        let g = generated(path)?;
        let env = self.unread_env(g).is_none().then_some(g.env);
        self.flag_or_env(path, env)
    }

    /// The named flag (or its env var) given for a config field, if any.
    pub fn named_override(&self, path: &str) -> Option<Setting> {
        let n = NAMED.iter().find(|n| n.path == Some(path))?;
        self.flag_or_env(n.flag, n.env)
    }

    /// The value in the YAML document, if it sets one.
    pub fn from_document(&self, path: &str) -> Option<Setting> {
        let cfg = self.config()?;
        let (value, at) = cfg.get(path)?;
        Some(Setting {
            raw: Raw::Yaml(value.clone()),
            source: Source::Document,
            place: Some(Place::new(cfg.object.index, cfg.path.clone()).inside(at)),
            env_from: None,
        })
    }

    /// The value of a config field, with livekit-server's precedence.
    pub fn get(&self, path: &str) -> Option<Setting> {
        self.named_override(path)
            .or_else(|| self.generated_override(path))
            .or_else(|| self.from_document(path))
            .or_else(|| {
                default(path).map(|d| Setting {
                    raw: Raw::Default(d.to_string()),
                    source: Source::Default,
                    place: None,
                    env_from: None,
                })
            })
    }

    /// `--dev`: development mode.
    pub fn dev(&self) -> bool {
        self.flag_or_env("dev", None)
            .and_then(|s| s.bool().ok().flatten())
            .unwrap_or(false)
            || self
                .from_document("development")
                .and_then(|s| s.bool().ok().flatten())
                .unwrap_or(false)
    }

    /// `--disable-strict-config`: unknown YAML keys are ignored.
    pub fn strict(&self) -> bool {
        !self
            .flag_or_env("disable-strict-config", None)
            .and_then(|s| s.bool().ok().flatten())
            .unwrap_or(false)
    }

    /// Every generated override present (env var or flag), with its field.
    pub fn overrides(&self) -> Vec<(&'static Generated, Setting)> {
        // Only the fields something sets: asking each of the 258 fields in
        // turn was most of a webhook request's time.
        let order = |g: &'static Generated| GENERATED.iter().position(|x| std::ptr::eq(x, g));
        let mut set: Vec<(Option<usize>, &'static Generated)> = self
            .env
            .iter()
            .filter_map(|e| generated_by_env(&e.name))
            .chain(self.flags.iter().filter_map(|f| generated(&f.name)))
            .map(|g| (order(g), g))
            .collect();
        set.sort_by_key(|(i, _)| *i);
        set.dedup_by_key(|(i, _)| *i);
        set.into_iter()
            .filter_map(|(_, g)| Some((g, self.generated_override(g.path)?)))
            .collect()
    }
}

fn env_setting(e: &EnvEntry) -> Setting {
    Setting {
        raw: match &e.value {
            EnvValue::Text(t) => Raw::Text(t.clone()),
            EnvValue::Unknown(why) => Raw::Unknown(why.clone()),
        },
        source: Source::Env(e.name.clone()),
        place: Some(e.place.clone()),
        env_from: match &e.via {
            Via::EnvFrom { kind, name } => Some(format!("{kind} {name}")),
            Via::Env => None,
        },
    }
}

/// livekit-server's built-in defaults that rules depend on
/// (`pkg/config/config.go` `DefaultConfig`).
fn default(path: &str) -> Option<&'static str> {
    Some(match path {
        "port" => "7880",
        "rtc.tcp_port" => "7881",
        "rtc.use_external_ip" => "false",
        _ => return None,
    })
}

/// Finds the YAML document a container loads.
fn document<'o, 'a>(
    objects: &'o [Object<'a>],
    server: &LivekitContainer<'_, 'o, 'a>,
    env: &ContainerEnv,
    flags: &[Flag],
) -> Document<'o, 'a> {
    let object = server.template.object;
    let c = server.container.container;
    // `--config-body`, else LIVEKIT_CONFIG, when non-empty.
    let body = flags::last(flags, "config-body")
        .map(|f| {
            (
                f.value
                    .clone()
                    .map(EnvValue::Text)
                    .unwrap_or(EnvValue::Text(String::new())),
                f.place.clone(),
                Source::Arg("config-body".into()),
            )
        })
        .or_else(|| {
            env.get("LIVEKIT_CONFIG").map(|e| {
                (
                    e.value.clone(),
                    e.place.clone(),
                    Source::Env(e.name.clone()),
                )
            })
        })
        .filter(|(v, _, _)| v.text().is_none_or(|t| !t.trim().is_empty()));
    if let Some((value, place, source)) = body {
        let config = value.text().map(|text| {
            let owner = objects
                .iter()
                .find(|o| o.index == place.resource)
                .unwrap_or(object);
            LivekitConfig {
                object: owner,
                path: place.path.clone(),
                source: match owner.is("", "ConfigMap") {
                    true => ConfigSource::ConfigMap {
                        name: owner.name().to_string(),
                        key: place
                            .path
                            .strip_prefix("/data/")
                            .map(pointer::unescape)
                            .unwrap_or_default(),
                    },
                    false => ConfigSource::Env {
                        container: c.name.clone(),
                    },
                },
                parsed: livekit::parse(text),
                loaded_by: vec![(object.index, server.container.path.clone())],
            }
        });
        return Document::Body {
            place,
            source,
            config,
        };
    }
    let Some(flag) = flags::last(flags, "config") else {
        return Document::None;
    };
    let Some(file) = flag.value.clone().filter(|f| !f.is_empty()) else {
        return Document::None;
    };
    resolve_file(objects, server, &file, flag.place.clone())
}

/// Follows a file path through the container's volume mounts.
fn resolve_file<'o, 'a>(
    objects: &'o [Object<'a>],
    server: &LivekitContainer<'_, 'o, 'a>,
    file: &str,
    flag: Place,
) -> Document<'o, 'a> {
    let object = server.template.object;
    let c = server.container.container;
    // `missing`: the file does not exist; `hidden`: it exists, but the
    // render does not show its content.
    let unresolved = |why: String, missing: bool, hidden: bool| Document::Unresolved {
        file: file.to_string(),
        flag: flag.clone(),
        why,
        missing,
        hidden,
    };
    let Some(mounted) = server.template.mounted(c, file) else {
        return unresolved(format!("no volume is mounted at {file}"), true, false);
    };
    let Some((_, volume)) = mounted.volume else {
        return unresolved(
            format!(
                "volumeMount {} names no volume of the pod",
                mounted.mount.name
            ),
            true,
            false,
        );
    };
    let in_volume = &mounted.in_volume;
    let sources: Vec<(String, Vec<(String, String)>)> =
        match (&volume.config_map, &volume.projected) {
            (Some(cm), _) => vec![(
                cm.name.clone(),
                cm.items
                    .iter()
                    .flatten()
                    .map(|i| (i.key.clone(), i.path.clone()))
                    .collect(),
            )],
            (None, Some(p)) => p
                .sources
                .iter()
                .flatten()
                .filter_map(|s| s.config_map.as_ref())
                .map(|cm| {
                    (
                        cm.name.clone(),
                        cm.items
                            .iter()
                            .flatten()
                            .map(|i| (i.key.clone(), i.path.clone()))
                            .collect(),
                    )
                })
                .collect(),
            _ => {
                let what = if volume.secret.is_some() {
                    "a Secret volume"
                } else if volume.empty_dir.is_some() {
                    "an emptyDir filled at run time"
                } else {
                    "a volume the render does not show the content of"
                };
                return unresolved(format!("{file} is on {what}"), false, true);
            }
        };
    for (name, items) in sources {
        let Some(cm) = objects.iter().find(|o| {
            o.is("", "ConfigMap")
                && o.name() == name
                && o.same_namespace(object)
                && o.origin == object.origin
        }) else {
            // When the render holds a generated `name-<hash>` of it,
            // nothing else will create `name`: the volume cannot be
            // mounted and the pod does not start.
            if let Some(renamed) = env::renamed_by_kustomize(objects, object, "ConfigMap", &name) {
                return unresolved(
                    format!("its volume names ConfigMap {name}, which the render does not hold: kustomize generated it as {renamed} (with a content hash) and did not rewrite this reference, so the volume cannot be mounted and the pod does not start"),
                    true,
                    false,
                );
            }
            continue;
        };
        let data = workload::config_map_data(cm);
        let key = if items.is_empty() {
            data.contains_key(in_volume).then(|| in_volume.clone())
        } else {
            items
                .iter()
                .find(|(_, p)| p == in_volume)
                .map(|(k, _)| k.clone())
        };
        if let Some(key) = key {
            let Some(text) = data.get(&key) else { continue };
            return Document::File {
                file: file.to_string(),
                flag,
                config: LivekitConfig {
                    object: cm,
                    path: workload::data_path(&key),
                    source: ConfigSource::ConfigMap {
                        name: cm.name().to_string(),
                        key: key.clone(),
                    },
                    parsed: livekit::parse(text),
                    loaded_by: vec![(object.index, server.container.path.clone())],
                },
            };
        }
        return unresolved(
            format!(
                "ConfigMap {name} mounted at {} has no key that becomes {file}",
                mounted.mount.mount_path
            ),
            true,
            false,
        );
    }
    unresolved(
        format!("{file} is on a ConfigMap volume whose ConfigMap is not in this render"),
        false,
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::livekit::Target;
    use crate::testkit::render;
    use crate::workload;

    const CM: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: livekit-config}
data:
  livekit.yaml: |
    port: 7880
    rtc:
      udp_port: 7882
      use_external_ip: false
  other.yaml: |
    port: 9999
"#;

    fn deploy(container: &str, volumes: &str) -> String {
        format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: livekit}}\nspec:\n  template:\n    metadata: {{labels: {{app: livekit}}}}\n    spec:\n      containers:\n        - name: livekit\n          image: livekit/livekit-server:v1.13.3\n{container}\n      volumes: {volumes}\n"
        )
    }

    /// Runs `f` on the effective config of the one livekit container.
    fn with<R>(yaml: &str, f: impl FnOnce(&Effective) -> R) -> R {
        let batch = render(yaml);
        let objects = batch.objects();
        let templates = workload::pod_templates(&objects);
        let servers = Target::default().find(&templates);
        let e = Effective::build(&objects, servers[0].clone());
        f(&e)
    }

    /// What starts, as (kind, word, pointer).
    fn launched(container: &str) -> (String, String, String) {
        with(&deploy(container, "[]"), |e| match e.launch() {
            Launch::Entrypoint => ("entrypoint".into(), String::new(), String::new()),
            Launch::Server(w) => ("server".into(), w.text.clone(), w.place.path.clone()),
            Launch::Other(w) => ("other".into(), w.text.clone(), w.place.path.clone()),
        })
    }

    #[test]
    fn command_replaces_the_entrypoint() {
        let c = "/spec/template/spec/containers/0";
        assert_eq!(launched("          args: [--dev]").0, "entrypoint");
        assert_eq!(
            launched("          command: [/livekit-server, --dev]"),
            (
                "server".into(),
                "/livekit-server".into(),
                format!("{c}/command/0")
            )
        );
        assert_eq!(
            launched("          command: [--config, /etc/livekit.yaml]"),
            ("other".into(), "--config".into(), format!("{c}/command/0"))
        );
        // A shell script: the word that runs the binary, inside the script.
        assert_eq!(
            launched("          command: [sh, -c]\n          args: ['envsubst < /t > /c.yaml && exec livekit-server --config /c.yaml']"),
            ("server".into(), "livekit-server".into(), format!("{c}/args/0"))
        );
    }

    #[test]
    fn a_wrapper_s_options_are_not_the_server_s() {
        with(
            &deploy(
                "          command: [sh, -c, 'cp -r /a /b && exec /livekit-server --config /b/c.yaml']",
                "[]",
            ),
            |e| {
                let names: Vec<&str> = e.flags.iter().map(|f| f.name.as_str()).collect();
                assert_eq!(names, ["config"]);
            },
        );
    }

    fn where_set(s: &Setting) -> (String, Option<String>) {
        let p = s.place.clone().expect("a place");
        (p.path, p.embedded)
    }

    #[test]
    fn a_mounted_file_is_resolved_through_the_mount() {
        let yaml = format!(
            "{CM}{}",
            deploy(
                "          args: [--config, /etc/livekit/livekit.yaml]\n          volumeMounts: [{name: cfg, mountPath: /etc/livekit}]",
                "[{name: cfg, configMap: {name: livekit-config}}]"
            )
        );
        with(&yaml, |e| {
            assert!(matches!(e.document, Document::File { .. }));
            let s = e.get("rtc.udp_port").unwrap();
            assert_eq!(s.source, Source::Document);
            assert_eq!(
                where_set(&s),
                ("/data/livekit.yaml".into(), Some("/rtc/udp_port".into()))
            );
            // Not in the file: the built-in default.
            assert_eq!(e.get("rtc.tcp_port").unwrap().source, Source::Default);
        });
    }

    #[test]
    fn sub_path_and_items_pick_the_key() {
        let sub = format!(
            "{CM}{}",
            deploy(
                "          args: [--config=/config.yaml]\n          volumeMounts: [{name: cfg, mountPath: /config.yaml, subPath: other.yaml}]",
                "[{name: cfg, configMap: {name: livekit-config}}]"
            )
        );
        with(&sub, |e| {
            assert_eq!(e.get("port").unwrap().text().as_deref(), Some("9999"))
        });
        let items = format!(
            "{CM}{}",
            deploy(
                "          args: [--config, /etc/lk/server.yaml]\n          volumeMounts: [{name: cfg, mountPath: /etc/lk}]",
                "[{name: cfg, configMap: {name: livekit-config, items: [{key: livekit.yaml, path: server.yaml}]}}]"
            )
        );
        with(&items, |e| {
            assert_eq!(e.get("port").unwrap().text().as_deref(), Some("7880"))
        });
    }

    #[test]
    fn an_unmounted_path_is_a_missing_file() {
        let yaml = format!(
            "{CM}{}",
            deploy("          args: [--config, /etc/livekit.yaml]", "[]")
        );
        with(&yaml, |e| {
            assert!(
                matches!(e.document, Document::Unresolved { missing: true, .. }),
                "{:?}",
                e.document
            )
        });
    }

    #[test]
    fn a_volume_naming_an_unhashed_generated_config_map_is_missing() {
        let yaml = format!(
            "{}{}",
            CM.replace("name: livekit-config}", "name: livekit-config-8d4bg9b877}"),
            deploy(
                "          args: [--config, /etc/livekit/livekit.yaml]\n          volumeMounts: [{name: cfg, mountPath: /etc/livekit}]",
                "[{name: cfg, configMap: {name: livekit-config}}]"
            )
        );
        with(&yaml, |e| match &e.document {
            Document::Unresolved { missing, why, .. } => {
                assert!(*missing);
                assert!(why.contains("livekit-config-8d4bg9b877"), "{why}");
            }
            other => panic!("{other:?}"),
        });
    }

    #[test]
    fn the_body_replaces_the_file_entirely() {
        let yaml = format!(
            "{CM}{}",
            deploy(
                "          args: [--config, /etc/livekit/livekit.yaml]\n          volumeMounts: [{name: cfg, mountPath: /etc/livekit}]\n          env: [{name: LIVEKIT_CONFIG, value: 'port: 7000'}]",
                "[{name: cfg, configMap: {name: livekit-config}}]"
            )
        );
        with(&yaml, |e| {
            assert!(matches!(e.document, Document::Body { .. }));
            assert_eq!(e.get("port").unwrap().text().as_deref(), Some("7000"));
            // The file's udp_port is not merged in.
            assert!(e.from_document("rtc.udp_port").is_none());
        });
    }

    #[test]
    fn env_beats_the_file_and_an_arg_beats_the_env() {
        let yaml = format!(
            "{CM}{}",
            deploy(
                "          args: [--config, /etc/livekit/livekit.yaml]\n          volumeMounts: [{name: cfg, mountPath: /etc/livekit}]\n          env: [{name: LIVEKIT_RTC_USE_EXTERNAL_IP, value: 'true'}, {name: UDP_PORT, value: '7999'}]",
                "[{name: cfg, configMap: {name: livekit-config}}]"
            )
        );
        with(&yaml, |e| {
            let s = e.get("rtc.use_external_ip").unwrap();
            assert_eq!(s.source, Source::Env("LIVEKIT_RTC_USE_EXTERNAL_IP".into()));
            assert_eq!(s.bool(), Ok(Some(true)));
            assert_eq!(
                where_set(&s).0,
                "/spec/template/spec/containers/0/env/0/value"
            );
            assert_eq!(
                e.get("rtc.udp_port").unwrap().text().as_deref(),
                Some("7999")
            );
        });
        let arg = yaml.replace(
            "args: [--config,",
            "args: [--udp-port=7001, --rtc.use_external_ip=false, --config,",
        );
        with(&arg, |e| {
            assert_eq!(
                e.get("rtc.udp_port").unwrap().source,
                Source::Arg("udp-port".into())
            );
            assert_eq!(
                e.get("rtc.use_external_ip").unwrap().bool(),
                Ok(Some(false))
            );
        });
    }

    #[test]
    fn overrides_lists_each_field_set_once_in_schema_order() {
        let yaml = deploy(
            "          args: [--rtc.tcp_port=7001, --port=7000]\n          env: [{name: LIVEKIT_RTC_TCP_PORT, value: '9'}, {name: LIVEKIT_LOG_LEVEL, value: debug}, {name: UDP_PORT, value: '7999'}, {name: LIVEKIT_RTC_UDP_PORT, value: '1'}]",
            "[]",
        );
        with(&yaml, |e| {
            let got: Vec<(&str, Source)> = e
                .overrides()
                .into_iter()
                .map(|(g, s)| (g.path, s.source))
                .collect();
            let mut expected = vec![
                ("port", Source::Arg("port".into())),
                ("log_level", Source::Env("LIVEKIT_LOG_LEVEL".into())),
                ("rtc.tcp_port", Source::Arg("rtc.tcp_port".into())),
            ];
            let at = |p: &str| GENERATED.iter().position(|g| g.path == p).unwrap();
            expected.sort_by_key(|(p, _)| at(p));
            // UDP_PORT is a named flag and a bare LIVEKIT_RTC_UDP_PORT is
            // read by nothing: neither is a generated override.
            assert_eq!(got, expected);
        });
    }

    #[test]
    fn a_release_before_a_generated_env_var_does_not_read_it() {
        let yaml = format!(
            "{CM}{}",
            deploy(
                "          args: [--config, /etc/livekit/livekit.yaml]\n          volumeMounts: [{name: cfg, mountPath: /etc/livekit}]\n          env: [{name: LIVEKIT_RTC_USE_EXTERNAL_IP, value: 'true'}, {name: LIVEKIT_PORT, value: '7001'}]",
                "[{name: cfg, configMap: {name: livekit-config}}]"
            )
        );
        let at =
            |tag: &str| yaml.replace("livekit-server:v1.13.3", &format!("livekit-server:{tag}"));
        with(&at("v1.8.3"), |e| {
            assert_eq!(e.server_version(), "livekit-server v1.8.3");
            let s = e.get("rtc.use_external_ip").unwrap();
            assert_eq!((s.bool(), s.source), (Ok(Some(false)), Source::Document));
            // Numbers were read from env long before.
            assert_eq!(e.get("port").unwrap().text().as_deref(), Some("7001"));
            let unread: Vec<&str> = e
                .unread_overrides()
                .iter()
                .map(|(g, _, _)| g.path)
                .collect();
            assert_eq!(unread, ["rtc.use_external_ip"]);
        });
        with(&at("v1.8.4"), |e| {
            assert_eq!(e.get("rtc.use_external_ip").unwrap().bool(), Ok(Some(true)));
            assert!(e.unread_overrides().is_empty());
        });
        with(&at("v1.2.0"), |e| {
            assert_eq!(e.get("port").unwrap().source, Source::Document);
            assert_eq!(e.unread_overrides().len(), 2);
        });
        // No release in the tag: the schema's.
        with(&at("latest"), |e| {
            assert_eq!(e.get("rtc.use_external_ip").unwrap().bool(), Ok(Some(true)));
        });
    }

    #[test]
    fn env_from_a_config_map_points_at_its_key() {
        let yaml = format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: lk-env}}\ndata: {{LIVEKIT_PORT: '7001', livekit.yaml: 'port: 1'}}\n{}",
            deploy("          envFrom: [{configMapRef: {name: lk-env}}]", "[]")
        );
        with(&yaml, |e| {
            let s = e.get("port").unwrap();
            assert_eq!(s.text().as_deref(), Some("7001"));
            assert_eq!(
                s.describe(),
                "env LIVEKIT_PORT (from ConfigMap lk-env via envFrom)"
            );
            assert_eq!(s.place.unwrap().path, "/data/LIVEKIT_PORT");
            assert!(matches!(e.document, Document::None));
        });
    }

    #[test]
    fn strconv_is_not_yaml() {
        let s = Setting {
            raw: Raw::Text("yes".into()),
            source: Source::Env("X".into()),
            place: None,
            env_from: None,
        };
        assert!(s.bool().is_err());
        let y = Setting {
            raw: Raw::Yaml(serde_yaml::from_str("yes").unwrap()),
            ..s
        };
        assert_eq!(y.bool(), Ok(Some(true)));
    }

    #[test]
    fn generated_names_come_from_the_schema() {
        assert_eq!(
            generated_by_env("LIVEKIT_RTC_USE_EXTERNAL_IP").map(|g| g.kind),
            Some(Kind::Bool)
        );
        assert!(generated_by_env("LIVEKIT_RTC_UDP_PORT_START").is_some());
        assert!(generated_by_env("LIVEKIT_RTC_UDP_PORT").is_none());
        assert!(generated_by_env("LIVEKIT_KEYS").is_none());
        assert!(reads_env("LIVEKIT_KEYS") && reads_env("NODE_IP"));
    }
}
