//! The native mirror of the WIT types, plus a parsed view of each resource.

use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub name: String,
    pub deployable: bool,
    pub complete: bool,
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub origin: u32,
    pub json: String,
}

#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub origins: Vec<Origin>,
    pub resources: Vec<Resource>,
    /// What the policies parsed out of the resources, kept for the next
    /// policy: a policy set hands every member the same batch, and eleven
    /// members each parsing the same pod templates was most of a webhook
    /// request. Build batches with `..Default::default()`.
    #[doc(hidden)]
    pub cache: BatchCache,
}

/// Parses of each resource, made on first use (see [`Batch::cache`]).
#[derive(Debug, Clone, Default)]
pub struct BatchCache {
    resources: OnceLock<Vec<ResourceCache>>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ResourceCache {
    pub(crate) value: OnceLock<Value>,
    pub(crate) template: OnceLock<Option<crate::workload::Parsed>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    pub resource: u32,
    pub path: String,
    pub embedded_path: Option<String>,
    pub hint: Option<String>,
}

impl Finding {
    pub fn error(
        rule: &str,
        resource: u32,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            rule: rule.to_string(),
            severity: Severity::Error,
            message: message.into(),
            resource,
            path: path.into(),
            embedded_path: None,
            hint: None,
        }
    }

    pub fn warning(
        rule: &str,
        resource: u32,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            severity: Severity::Warning,
            ..Finding::error(rule, resource, path, message)
        }
    }

    pub fn embedded(mut self, pointer: impl Into<String>) -> Self {
        self.embedded_path = Some(pointer.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

#[derive(Debug, Clone)]
pub struct RuleInfo {
    pub id: String,
    pub summary: String,
    pub rationale: String,
}

#[derive(Debug, Clone)]
pub struct Metadata {
    pub id: String,
    pub version: String,
    pub rules: Vec<RuleInfo>,
    pub settings_schema: String,
}

/// One resource of the batch.
///
/// The JSON tree is built only when a rule asks for it: a webhook evaluation
/// is one object through five policies, and building a `serde_json::Value`
/// and then deserializing typed structs out of it was most of a policy's time
/// in wasm. Typed views ([`Object::typed`], pod templates) read the JSON text
/// directly, skipping what they do not name.
#[derive(Debug, Clone)]
pub struct Object<'a> {
    pub index: u32,
    pub resource: &'a Resource,
    pub origin: &'a Origin,
    cache: Cache<'a>,
}

/// The batch's cache of this resource, or one of its own for an object made
/// outside a batch.
#[derive(Debug, Clone)]
enum Cache<'a> {
    Shared(&'a ResourceCache),
    Own(Box<ResourceCache>),
}

impl<'a> Object<'a> {
    pub fn new(index: u32, resource: &'a Resource, origin: &'a Origin) -> Self {
        Object {
            index,
            resource,
            origin,
            cache: Cache::Own(Box::default()),
        }
    }

    pub(crate) fn cache(&self) -> &ResourceCache {
        match &self.cache {
            Cache::Shared(c) => c,
            Cache::Own(c) => c,
        }
    }

    /// The whole object as a JSON tree, parsed on first use. The host hands
    /// over only JSON it serialised itself; text that does not parse reads as
    /// `null`, which no rule matches.
    pub fn value(&self) -> &Value {
        self.cache()
            .value
            .get_or_init(|| serde_json::from_str(&self.resource.json).unwrap_or(Value::Null))
    }

    /// The object deserialized straight from its JSON into `T`; `None` when
    /// it does not have that shape.
    pub fn typed<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_str(&self.resource.json).ok()
    }

    pub fn kind(&self) -> &str {
        &self.resource.kind
    }

    pub fn name(&self) -> &str {
        &self.resource.name
    }

    pub fn is(&self, group_prefix: &str, kind: &str) -> bool {
        self.resource.kind == kind && api_group(&self.resource.api_version) == group_prefix
    }

    /// Two objects can refer to each other by name only within one namespace.
    /// A plain manifest often leaves the namespace to `kubectl -n`, so an absent
    /// namespace matches any.
    pub fn same_namespace(&self, other: &Object) -> bool {
        match (&self.resource.namespace, &other.resource.namespace) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }
}

/// `apps/v1` -> `apps`; `v1` -> `` (the core group).
pub fn api_group(api_version: &str) -> &str {
    match api_version.rsplit_once('/') {
        Some((group, _)) => group,
        None => "",
    }
}

impl Batch {
    /// Every resource with its origin. One whose origin index is out of range
    /// is skipped: the host only hands over objects with their origins.
    pub fn objects(&self) -> Vec<Object<'_>> {
        let caches = self
            .cache
            .resources
            .get_or_init(|| vec![ResourceCache::default(); self.resources.len()]);
        self.resources
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let origin = self.origins.get(r.origin as usize)?;
                let mut o = Object::new(i as u32, r, origin);
                // Resources added after the first call get caches of their own.
                if let Some(c) = caches
                    .get(i)
                    .filter(|_| caches.len() == self.resources.len())
                {
                    o.cache = Cache::Shared(c);
                }
                Some(o)
            })
            .collect()
    }
}
