//! A field of a rendered object -> the line a person must edit.
//!
//! Kustomize records which file an object was read from and which
//! kustomization files transformed it, but not which patch set which field.
//! So the kustomizations that touched the object are searched outermost first
//! (the last patch applied decides the value): an `images:` entry for an
//! image field, a `replicas:` entry for `spec.replicas`, then each patch that targets the object and sets the field
//! (strategic merge: the same field in the patch, list items matched by their
//! merge key; JSON6902: an op whose path is the field or holds it). Nothing
//! there: the field in the file the object was read from.

use std::path::Path;

use serde_json::Value;

use super::render::Origin;
use crate::load::{Loaded, Render};
use crate::locate::{self, Location};
use crate::model::Finding;

pub fn locate(
    loaded: &Loaded,
    render: usize,
    object: usize,
    finding: &Finding,
) -> Option<Location> {
    let render: &Render = loaded.renders.get(render)?;
    let obj = render.objects.get(object)?;
    let rendered = &obj.value;
    let pointer = finding.path.as_str();
    let embedded = finding.embedded_path.as_deref();

    // A patch that changed something below the field (a port of the list
    // the finding is about): where to look, but not the line that decides.
    let mut below = None;
    for kfile in obj.transformed_by.iter().rev() {
        let Some(k) = loaded.source(kfile) else {
            continue;
        };
        let Some(kvalue) = loaded.files[k].documents.first().map(|d| &d.value) else {
            continue;
        };
        if let Some(at) = image_entry(kvalue, rendered, pointer)
            .or_else(|| replicas_entry(kvalue, rendered, pointer))
        {
            return locate::in_document(loaded, k, 0, &at, None);
        }
        match in_patches(loaded, k, kvalue, kfile, rendered, pointer, embedded) {
            Some(Found::Sets(loc)) => return Some(loc),
            Some(Found::Below(loc)) => {
                below.get_or_insert(loc);
            }
            None => {}
        }
    }
    if let Some(mut loc) = below {
        loc.exact = false;
        return Some(loc);
    }

    match &obj.origin {
        Some(Origin::File(path)) => {
            let f = loaded.source(path)?;
            let docs = &loaded.files[f].documents;
            let d = same_object(docs.iter().map(|d| &d.value), rendered)?;
            let (translated, complete) = translate(rendered, &docs[d].value, pointer);
            let inner = if complete { embedded } else { None };
            let mut loc = locate::in_document(loaded, f, d, &translated, inner)?;
            loc.exact &= complete;
            Some(loc)
        }
        Some(Origin::Generated(kfile)) => {
            let k = loaded.source(kfile)?;
            let kvalue = &loaded.files[k].documents.first()?.value;
            let at = generator_entry(kvalue, rendered).unwrap_or_default();
            if let Some(loc) =
                in_generator_source(loaded, (k, kfile, kvalue), &at, pointer, embedded)
            {
                return Some(loc);
            }
            let mut loc = locate::in_document(loaded, k, 0, &at, None)?;
            loc.exact = false;
            Some(loc)
        }
        Some(Origin::Remote) | None => {
            let k = loaded.source(&render.kustomization)?;
            let mut loc = locate::in_document(loaded, k, 0, "", None)?;
            loc.exact = false;
            Some(loc)
        }
    }
}

/// An `images:` entry that rewrote the image at `pointer`.
fn image_entry(k: &Value, rendered: &Value, pointer: &str) -> Option<String> {
    if !pointer.ends_with("/image") {
        return None;
    }
    let image = rendered.pointer(pointer)?.as_str()?;
    let repo = repository(image);
    let entries = k.get("images")?.as_array()?;
    let (i, entry) = entries.iter().enumerate().rev().find(|(_, e)| {
        let s = |f: &str| e.get(f).and_then(Value::as_str);
        s("name") == Some(repo) || s("newName") == Some(repo)
    })?;
    let field = ["digest", "newTag", "newName"]
        .into_iter()
        .find(|f| entry.get(*f).is_some());
    Some(match field {
        Some(f) => format!("/images/{i}/{f}"),
        None => format!("/images/{i}"),
    })
}

/// A `replicas:` entry that set `spec.replicas` of the object (kustomize's
/// replica count transformer matches by name).
fn replicas_entry(k: &Value, rendered: &Value, pointer: &str) -> Option<String> {
    if pointer != "/spec/replicas" {
        return None;
    }
    let name = rendered.pointer("/metadata/name")?.as_str()?;
    let entries = k.get("replicas")?.as_array()?;
    let (i, _) = entries
        .iter()
        .enumerate()
        .rev()
        .find(|(_, e)| e.get("name").and_then(Value::as_str) == Some(name))?;
    Some(format!("/replicas/{i}/count"))
}

/// `registry/name:tag@sha256:...` -> `registry/name`.
fn repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

/// What a patch has to do with a field.
enum Found {
    /// The patch sets it: the line to edit.
    Sets(Location),
    /// The patch changes something below it, not the field itself.
    Below(Location),
}

/// A patch of kustomization `k` (file index) that sets `pointer`, else the
/// first that changes something below it.
fn in_patches(
    loaded: &Loaded,
    k: usize,
    kvalue: &Value,
    kfile: &Path,
    rendered: &Value,
    pointer: &str,
    embedded: Option<&str>,
) -> Option<Found> {
    let dir = kfile.parent()?;
    let mut below = None;
    for field in ["patches", "patchesJson6902", "patchesStrategicMerge"] {
        let Some(entries) = kvalue.get(field).and_then(Value::as_array) else {
            continue;
        };
        for (i, entry) in entries.iter().enumerate().rev() {
            let target = entry.get("target");
            if target.is_some_and(|t| !target_matches(t, rendered)) {
                continue;
            }
            // The patch text: a file, or inline in the kustomization.
            let (path, inline) = match entry {
                Value::String(s) if !s.contains('\n') && !s.contains(": ") => {
                    (Some(s.as_str()), None)
                }
                Value::String(_) => (None, Some(format!("/{field}/{i}"))),
                _ => match entry.get("path").and_then(Value::as_str) {
                    Some(p) => (Some(p), None),
                    None => (None, Some(format!("/{field}/{i}/patch"))),
                },
            };
            if let Some(p) = path {
                let Some(f) = loaded.source(&dir.join(p)) else {
                    continue;
                };
                for (d, doc) in loaded.files[f].documents.iter().enumerate() {
                    match set_by(&doc.value, target.is_some(), rendered, pointer) {
                        Some(Patched::Sets(at, complete)) => {
                            let inner = if complete { embedded } else { None };
                            let mut loc = locate::in_document(loaded, f, d, &at, inner)?;
                            loc.exact &= complete;
                            return Some(Found::Sets(loc));
                        }
                        Some(Patched::Below(at)) if below.is_none() => {
                            below = locate::in_document(loaded, f, d, &at, None);
                        }
                        _ => {}
                    }
                }
            } else if let Some(at) = inline {
                let text = kvalue.pointer(&at).and_then(Value::as_str)?;
                let Ok(patch) = serde_yaml::from_str::<Value>(text) else {
                    continue;
                };
                match set_by(&patch, target.is_some(), rendered, pointer) {
                    Some(Patched::Sets(inner, complete)) => {
                        let mut loc = locate::in_document(loaded, k, 0, &at, Some(&inner))?;
                        loc.exact &= complete;
                        return Some(Found::Sets(loc));
                    }
                    Some(Patched::Below(inner)) if below.is_none() => {
                        below = locate::in_document(loaded, k, 0, &at, Some(&inner));
                    }
                    _ => {}
                }
            }
        }
    }
    below.map(Found::Below)
}

/// What a patch does to a field, by pointers into the patch.
#[derive(Debug, PartialEq, Eq)]
enum Patched {
    /// It sets the field (or, `false`, the op or item that holds it).
    Sets(String, bool),
    /// It changes something below the field and leaves the rest as it was.
    Below(String),
}

/// What `patch` does to the field `pointer` of `rendered`.
fn set_by(patch: &Value, targeted: bool, rendered: &Value, pointer: &str) -> Option<Patched> {
    match patch {
        Value::Array(ops) => json6902(ops, rendered, pointer),
        Value::Object(_) => {
            // A finding about the whole object is about no line a patch
            // wrote (a patch's first line is where kustomize reads its
            // target, not a value it set).
            if pointer.is_empty() || (!targeted && !same_resource(patch, rendered)) {
                return None;
            }
            let (at, complete) = translate(rendered, patch, pointer);
            if !complete {
                return None;
            }
            // A strategic merge sets a scalar, or a whole list or map when
            // the render holds what the patch wrote; a map or keyed list it
            // only merged into (`containers[livekit]` with one env entry)
            // still holds lines of the base.
            let here = patch.pointer(&at)?;
            let sets =
                !(here.is_object() || here.is_array()) || Some(here) == rendered.pointer(pointer);
            Some(if sets {
                Patched::Sets(at, true)
            } else {
                Patched::Below(at)
            })
        }
        _ => None,
    }
}

fn json6902(ops: &[Value], rendered: &Value, pointer: &str) -> Option<Patched> {
    let mut below = None;
    for (j, op) in ops.iter().enumerate().rev() {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or_default();
        let Some(path) = op.get("path").and_then(Value::as_str) else {
            continue;
        };
        // A field the render lacks because this op removed it (or a parent
        // of it): a finding about its absence belongs at the op.
        if kind == "remove" {
            let covers = pointer == path
                || pointer
                    .strip_prefix(path)
                    .is_some_and(|r| r.starts_with('/'));
            if covers && rendered.pointer(pointer).is_none() {
                return Some(Patched::Sets(format!("/{j}"), true));
            }
            continue;
        }
        if !matches!(kind, "add" | "replace" | "copy" | "move") {
            continue;
        }
        // An op on something inside the field (the last one applied wins).
        let inside = !pointer.is_empty()
            && path
                .strip_prefix(pointer)
                .is_some_and(|r| r.starts_with('/'));
        if inside && below.is_none() {
            below = Some(if op.get("value").is_some() {
                format!("/{j}/value")
            } else {
                format!("/{j}")
            });
        }
        let rest = if path == pointer {
            Some("")
        } else if let Some(rest) = pointer.strip_prefix(path).filter(|r| r.starts_with('/')) {
            Some(rest)
        } else if let Some(parent) = path.strip_suffix("/-") {
            // Appended: the op does not know the index; the rendered item it
            // added is the one equal to its value by merge key.
            pointer
                .strip_prefix(parent)
                .and_then(|r| r.strip_prefix('/'))
                .and_then(|r| {
                    let (index, tail) = r.split_once('/').unwrap_or((r, ""));
                    let item = rendered.pointer(&format!("{parent}/{index}"))?;
                    let value = op.get("value")?;
                    let same = item == value
                        || MERGE_KEYS
                            .iter()
                            .any(|k| item.get(*k).is_some() && item.get(*k) == value.get(*k));
                    same.then(|| {
                        &pointer[pointer.len() - tail.len() - usize::from(!tail.is_empty())..]
                    })
                })
        } else {
            None
        };
        if let Some(rest) = rest {
            if matches!(kind, "copy" | "move") {
                return Some(Patched::Sets(format!("/{j}/from"), false));
            }
            let value = op.get("value")?;
            let at = format!("/{j}/value");
            return Some(if rest.is_empty() || value.pointer(rest).is_some() {
                Patched::Sets(format!("{at}{rest}"), true)
            } else {
                Patched::Sets(at, false)
            });
        }
    }
    below.map(Patched::Below)
}

fn api_group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Kustomize patch targets name the object as the kustomization saw it,
/// before an outer `namePrefix`/`nameSuffix`: the rendered name contains it.
fn name_matches(wanted: &str, rendered: &Value) -> bool {
    let name = str_at(rendered, "/metadata/name");
    name == wanted || (!wanted.is_empty() && name.contains(wanted))
}

fn target_matches(target: &Value, rendered: &Value) -> bool {
    let s = |k: &str| target.get(k).and_then(Value::as_str);
    let api = str_at(rendered, "/apiVersion");
    s("kind").is_none_or(|k| k == str_at(rendered, "/kind"))
        && s("group").is_none_or(|g| g == api_group(api))
        && s("version").is_none_or(|v| api.rsplit('/').next() == Some(v))
        && s("name").is_none_or(|n| name_matches(n, rendered))
        && s("namespace").is_none_or(|n| n == str_at(rendered, "/metadata/namespace"))
}

fn same_resource(patch: &Value, rendered: &Value) -> bool {
    str_at(patch, "/kind") == str_at(rendered, "/kind")
        && name_matches(str_at(patch, "/metadata/name"), rendered)
}

/// The document of a file that holds the rendered object.
fn same_object<'v>(docs: impl Iterator<Item = &'v Value>, rendered: &Value) -> Option<usize> {
    let docs: Vec<&Value> = docs.collect();
    let kind = str_at(rendered, "/kind");
    let of_kind: Vec<usize> = (0..docs.len())
        .filter(|&i| str_at(docs[i], "/kind") == kind)
        .collect();
    of_kind
        .iter()
        .copied()
        .find(|&i| str_at(docs[i], "/metadata/name") == str_at(rendered, "/metadata/name"))
        .or_else(|| {
            of_kind
                .iter()
                .copied()
                .find(|&i| same_resource(docs[i], rendered))
        })
        .or_else(|| (of_kind.len() == 1).then(|| of_kind[0]))
}

fn generator_entry(k: &Value, rendered: &Value) -> Option<String> {
    let field = match str_at(rendered, "/kind") {
        "Secret" => "secretGenerator",
        _ => "configMapGenerator",
    };
    let entries = k.get(field)?.as_array()?;
    let i = entries.iter().position(|e| {
        name_matches(
            e.get("name").and_then(Value::as_str).unwrap_or("\0"),
            rendered,
        )
    })?;
    Some(format!("/{field}/{i}"))
}

/// A key of a generated ConfigMap (`/data/KEY`) where its generator wrote
/// it: the `literals:` item, the line of an `envs:` file, or the file of a
/// `files:` item, pointed into with `embedded` when the key holds YAML (a
/// livekit.yaml kept as its own file is the common way to ship one).
fn in_generator_source(
    loaded: &Loaded,
    (k, kfile, kvalue): (usize, &Path, &Value),
    entry_at: &str,
    pointer: &str,
    embedded: Option<&str>,
) -> Option<Location> {
    let i: usize = entry_at
        .strip_prefix("/configMapGenerator/")?
        .parse()
        .ok()?;
    let key = lkguard_policy_sdk::pointer::unescape(
        pointer
            .strip_prefix("/data/")
            .or_else(|| pointer.strip_prefix("/binaryData/"))?,
    );
    let entry = kvalue.pointer(entry_at)?;
    if let Some(j) = entry
        .get("literals")
        .and_then(Value::as_array)
        .and_then(|l| {
            l.iter().position(|lit| {
                lit.as_str()
                    .and_then(|t| t.split_once('='))
                    .is_some_and(|(name, _)| name.trim() == key)
            })
        })
    {
        return locate::in_document(loaded, k, 0, &format!("{entry_at}/literals/{j}"), None);
    }
    let dir = kfile.parent()?;
    for source in super::tree::generator_sources(kvalue).filter(|g| g.entry == i) {
        let Some(f) = loaded.source(&dir.join(source.path)) else {
            continue;
        };
        let file = &loaded.files[f];
        match source.key {
            Some(k) if k == key => {
                if file.documents.is_empty() {
                    return whole_line(loaded, f, 0, false);
                }
                return locate::in_document(loaded, f, 0, embedded.unwrap_or(""), None);
            }
            Some(_) => {}
            None => {
                let mut offset = 0;
                for line in file.text.split_inclusive('\n') {
                    let trimmed = line.trim_start();
                    if !trimmed.starts_with('#')
                        && trimmed
                            .split_once('=')
                            .is_some_and(|(name, _)| name.trim() == key)
                    {
                        return whole_line(loaded, f, offset + line.len() - trimmed.len(), true);
                    }
                    offset += line.len();
                }
            }
        }
    }
    None
}

/// A location at `offset` of a source file, to the end of its line.
fn whole_line(loaded: &Loaded, f: usize, offset: usize, exact: bool) -> Option<Location> {
    let file = loaded.files.get(f)?;
    let (line, col) = file.line_col(offset);
    Some(Location {
        file: f,
        line,
        col,
        offset,
        len: locate::Lines::of(file).rest_of_line(offset),
        exact,
    })
}

/// List items that strategic merge matches by a key rather than by position.
const MERGE_KEYS: &[&str] = &[
    "name",
    "containerPort",
    "mountPath",
    "devicePath",
    "ip",
    "port",
    "topologyKey",
];

/// The pointer in `target` to the field `pointer` names in `rendered`,
/// matching list items by merge key, as far as `target` has it; and whether
/// it has all of it.
pub fn translate(rendered: &Value, target: &Value, pointer: &str) -> (String, bool) {
    let mut r = rendered;
    let mut t = target;
    let mut out = String::new();
    let segments: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    for seg in &segments {
        let next = match (r, t) {
            (Value::Object(ro), Value::Object(to)) => ro
                .get(seg)
                .zip(to.get(seg))
                .map(|(rv, tv)| (rv, tv, seg.replace('~', "~0").replace('/', "~1"))),
            (Value::Array(ra), Value::Array(ta)) => seg.parse::<usize>().ok().and_then(|i| {
                let item = ra.get(i)?;
                let j = MERGE_KEYS
                    .iter()
                    .find_map(|k| {
                        let key = item.get(*k)?;
                        ta.iter().position(|x| x.get(*k) == Some(key))
                    })
                    .or_else(|| {
                        let keyed =
                            item.is_object() && MERGE_KEYS.iter().any(|k| item.get(*k).is_some());
                        (!keyed && i < ta.len()).then_some(i)
                    })?;
                Some((item, &ta[j], j.to_string()))
            }),
            _ => None,
        };
        let Some((rv, tv, name)) = next else {
            return (out, false);
        };
        out.push('/');
        out.push_str(&name);
        r = rv;
        t = tv;
    }
    (out, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_items_are_matched_by_merge_key_not_position() {
        let rendered = json!({"spec": {"containers": [
            {"name": "sidecar"},
            {"name": "livekit", "env": [{"name": "A", "value": "1"}, {"name": "NODE_IP", "value": "1.2.3.4"}]}
        ]}});
        let patch = json!({"spec": {"containers": [
            {"name": "livekit", "env": [{"name": "NODE_IP", "value": "1.2.3.4"}]}
        ]}});
        assert_eq!(
            translate(&rendered, &patch, "/spec/containers/1/env/1/value"),
            ("/spec/containers/0/env/0/value".into(), true)
        );
        assert_eq!(
            translate(&rendered, &patch, "/spec/containers/1/env/0/value"),
            ("/spec/containers/0/env".into(), false)
        );
    }

    #[test]
    fn json6902_ops_that_set_or_hold_the_field() {
        let ops: Vec<Value> = serde_json::from_value(json!([
            {"op": "replace", "path": "/spec/rules/0/host", "value": "a"},
            {"op": "add", "path": "/spec/template/spec/containers/0/env/-", "value": {"name": "NODE_IP", "value": "1.2.3.4"}},
            {"op": "remove", "path": "/spec/template/spec/affinity"},
        ]))
        .unwrap();
        let rendered = json!({"spec": {"template": {"spec": {"containers": [{"env": [
            {"name": "A", "value": "x"},
            {"name": "NODE_IP", "value": "1.2.3.4"},
        ]}]}}}});
        let at = |p: &str| json6902(&ops, &rendered, p);
        let sets = |p: &str, exact| Some(Patched::Sets(p.into(), exact));
        assert_eq!(at("/spec/rules/0/host"), sets("/0/value", true));
        assert_eq!(
            at("/spec/template/spec/containers/0/env/1/value"),
            sets("/1/value/value", true)
        );
        assert_eq!(at("/spec/template/spec/containers/0/env/0/value"), None);
        assert_eq!(at("/spec/rules/1/host"), None);
        // Absent because the op removed it, or a parent of it.
        assert_eq!(at("/spec/template/spec/affinity"), sets("/2", true));
        assert_eq!(
            at("/spec/template/spec/affinity/podAntiAffinity"),
            sets("/2", true)
        );
        assert_eq!(at("/spec/template/spec/affinityX"), None);
        // A parent of what an op changed: the op, but not as the field.
        assert_eq!(at("/spec/rules"), Some(Patched::Below("/0/value".into())));
        assert_eq!(at(""), None);
    }

    #[test]
    fn a_strategic_merge_sets_scalars_and_whole_values_not_what_it_merged_into() {
        let rendered = json!({"kind": "Deployment", "metadata": {"name": "livekit"}, "spec": {"template": {"spec": {"containers": [
            {"name": "livekit", "args": ["--config", "/etc/livekit.yaml"], "env": [
                {"name": "A", "value": "1"}, {"name": "NODE_IP", "value": "1.2.3.4"}]}
        ]}}}});
        let patch = json!({"kind": "Deployment", "metadata": {"name": "livekit"}, "spec": {"template": {"spec": {"containers": [
            {"name": "livekit", "args": ["--config", "/etc/livekit.yaml"], "env": [{"name": "NODE_IP", "value": "1.2.3.4"}]}
        ]}}}});
        let at = |p: &str| set_by(&patch, false, &rendered, p);
        let c = "/spec/template/spec/containers/0";
        assert_eq!(
            at(&format!("{c}/env/1/value")),
            Some(Patched::Sets(format!("{c}/env/0/value"), true))
        );
        // The whole list, as the render holds it.
        assert_eq!(
            at(&format!("{c}/args")),
            Some(Patched::Sets(format!("{c}/args"), true))
        );
        // Merged into: the base holds the rest of the list.
        assert_eq!(
            at(&format!("{c}/env")),
            Some(Patched::Below(format!("{c}/env")))
        );
        assert_eq!(at(c), Some(Patched::Below(c.into())));
        // The whole object: never the patch's first line.
        assert_eq!(at(""), None);
    }

    #[test]
    fn image_repository_drops_tag_and_digest_but_not_a_registry_port() {
        assert_eq!(
            repository("livekit/livekit-server:v1.9.1@sha256:ab"),
            "livekit/livekit-server"
        );
        assert_eq!(
            repository("reg:5000/livekit/livekit-server"),
            "reg:5000/livekit/livekit-server"
        );
        assert_eq!(repository("reg:5000/lk:v1"), "reg:5000/lk");
    }
}
