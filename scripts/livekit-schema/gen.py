#!/usr/bin/env python3
"""Generate a JSON Schema for livekit-server's YAML config from its Go structs.

Stdlib only (Python 3.11). Parses Go struct declarations from source trees of
livekit/livekit (module github.com/livekit/livekit-server),
livekit/mediatransportutil and livekit/protocol, starting at config.Config in
pkg/config, and follows the rules gopkg.in/yaml.v3 (v3.0.1) uses when decoding:

  * yaml:"name,..."          -> key "name"
  * yaml:",inline"           -> fields of the embedded struct (or map) are merged
  * yaml:"-"                 -> skipped
  * no yaml name             -> key is strings.ToLower(FieldName) (not snake_case)
  * whole tag without ':'    -> used as the yaml tag (yaml.v3 legacy rule)
  * unexported fields        -> skipped
  * embedded field w/o inline-> NOT inlined; key is the lowercased type name

It also mirrors livekit's CLI-flag/env generator (pkg/config ToCLIFlagNames +
GenerateCLIFlags) to annotate every property with x-go-type / x-go-kind and,
where a flag exists, x-flag / x-env; scalar fields the generator skips get
x-no-flag. See README.md next to this file.

Usage:
  gen.py --livekit DIR --mediatransportutil DIR --protocol DIR \
         [--manifest FILE] [--allow-unresolved PKG.Type ...] [--out FILE]
  gen.py --self-test SCHEMA_FILE      (needs: pip install jsonschema pyyaml)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

MODULES = {
    "livekit": "github.com/livekit/livekit-server",
    "mediatransportutil": "github.com/livekit/mediatransportutil",
    "protocol": "github.com/livekit/protocol",
}
ROOT_PKG = "github.com/livekit/livekit-server/pkg/config"
ROOT_TYPE = "Config"

# time.ParseDuration grammar: "0" or [sign] (number unit)+ ; yaml.v3 v3.0.1 only
# accepts *strings* for time.Duration (ints, even 0, are a decode error).
DURATION_PATTERN = (
    r"^[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)$"
)
# yaml.v3 decodes these *strings* into a Go bool (YAML 1.1 compatibility).
YAML11_BOOL_STRINGS = [
    "y", "Y", "yes", "Yes", "YES", "on", "On", "ON",
    "n", "N", "no", "No", "NO", "off", "Off", "OFF",
]

INT_RANGES = {
    "int": (-(2**63), 2**63 - 1), "int64": (-(2**63), 2**63 - 1),
    "int32": (-(2**31), 2**31 - 1), "int16": (-(2**15), 2**15 - 1),
    "int8": (-128, 127), "rune": (-(2**31), 2**31 - 1),
    "uint": (0, 2**64 - 1), "uint64": (0, 2**64 - 1), "uintptr": (0, 2**64 - 1),
    "uint32": (0, 2**32 - 1), "uint16": (0, 2**16 - 1), "uint8": (0, 255),
    "byte": (0, 255),
}
# reflect.Kind name for each basic type (used to mirror GenerateCLIFlags)
BASIC_REFLECT_KIND = {
    "bool": "Bool", "string": "String",
    "int": "Int", "int8": "Int8", "int16": "Int16", "int32": "Int32", "rune": "Int32", "int64": "Int64",
    "uint": "Uint", "uint8": "Uint8", "byte": "Uint8", "uint16": "Uint16", "uint32": "Uint32",
    "uint64": "Uint64", "uintptr": "Uintptr", "float32": "Float32", "float64": "Float64",
}
# GenerateCLIFlags switch (pkg/config/config.go): kinds that produce a flag
FLAG_KINDS = {"Bool", "String", "Int", "Int32", "Int64", "Uint8", "Uint16", "Uint32", "Uint64",
              "Float32", "Float64"}
FLAG_SILENT_SKIP_KINDS = {"Slice", "Map", "Struct"}  # `continue` in the switch

PORT_NAME_RE = re.compile(r"(^|_)port$|^port_range_(start|end)$|^relay_range_(start|end)$")


class GenError(Exception):
    pass


# --------------------------------------------------------------------------- Go parsing

class Field:
    def __init__(self, name, type_src, tag, doc, embedded, line):
        self.name = name            # Go field name ('' never; embedded: type's base name)
        self.type_src = type_src    # type expression as written
        self.tag = tag              # raw struct tag content (without backticks) or ''
        self.doc = doc
        self.embedded = embedded
        self.line = line


class TypeDecl:
    def __init__(self, pkg, name, kind, underlying=None, fields=None, file=None, imports=None, line=0):
        self.pkg = pkg
        self.name = name
        self.kind = kind            # 'struct' | 'named' | 'alias'
        self.underlying = underlying
        self.fields = fields or []
        self.file = file
        self.imports = imports or {}
        self.line = line
        self.methods = set()


def strip_block_comments(text):
    out, i, n = [], 0, len(text)
    in_raw = in_str = False
    while i < n:
        c = text[i]
        if in_raw:
            out.append(c)
            if c == "`":
                in_raw = False
            i += 1
            continue
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"' or c == "\n":
                in_str = False
            i += 1
            continue
        if c == "`":
            in_raw = True
        elif c == '"':
            in_str = True
        elif c == "/" and text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(text[i:j])
            i = j
            continue
        elif c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))  # keep line numbers
            i = j
            continue
        out.append(c)
        i += 1
    return "".join(out)


def split_comment(line):
    """Split a code line into (code, trailing // comment) ignoring // in quotes/backticks."""
    in_raw = in_str = False
    i = 0
    while i < len(line):
        c = line[i]
        if in_raw:
            in_raw = c != "`"
        elif in_str:
            if c == "\\":
                i += 1
            elif c == '"':
                in_str = False
        elif c == "`":
            in_raw = True
        elif c == '"':
            in_str = True
        elif line.startswith("//", i):
            return line[:i].rstrip(), line[i + 2:].strip()
        i += 1
    return line.rstrip(), ""


def parse_imports(text):
    imports = {}
    blocks = re.findall(r"^import\s*\((.*?)^\)", text, re.S | re.M)
    singles = re.findall(r'^import\s+((?:[\w.]+\s+)?"[^"]+")', text, re.M)
    specs = []
    for b in blocks:
        specs += [ln.strip() for ln in b.splitlines() if ln.strip() and not ln.strip().startswith("//")]
    specs += singles
    for spec in specs:
        m = re.match(r'(?:([\w.]+)\s+)?"([^"]+)"', spec)
        if not m:
            continue
        alias, path = m.group(1), m.group(2)
        if alias in ("_", "."):
            continue
        if not alias:
            parts = path.split("/")
            alias = parts[-1]
            if re.fullmatch(r"v\d+", alias) and len(parts) > 1:
                alias = parts[-2]
            if path == "gopkg.in/yaml.v3":
                alias = "yaml"
        imports[alias] = path
    return imports


def parse_struct_body(body_lines, start_line):
    fields, doc = [], []
    for off, raw in enumerate(body_lines):
        code, trailing = split_comment(raw)
        stripped = code.strip()
        if not stripped:
            if raw.strip().startswith("//"):
                doc.append(raw.strip()[2:].strip())
            else:
                doc = []
            continue
        tag = ""
        m = re.search(r"`([^`]*)`\s*$", stripped)
        if m:
            tag = m.group(1)
            stripped = stripped[: m.start()].strip()
        desc = " ".join(d for d in doc if d) or trailing
        doc = []
        m = re.match(r"^([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s+(\S.*)$", stripped)
        if m and not stripped.startswith("*") and "." not in m.group(1):
            names = [x.strip() for x in m.group(1).split(",")]
            for nm in names:
                fields.append(Field(nm, m.group(2).strip(), tag, desc, False, start_line + off))
        else:
            tsrc = stripped
            base = tsrc.lstrip("*").split(".")[-1]
            fields.append(Field(base, tsrc, tag, desc, True, start_line + off))
    return fields


def parse_go_file(path, pkgpath, decls, methods):
    with open(path, encoding="utf-8") as f:
        raw = f.read()
    text = strip_block_comments(raw)
    imports = parse_imports(text)
    lines = text.splitlines()
    i, n = 0, len(lines)
    doc = []
    group = False
    while i < n:
        line = lines[i]
        s = line.strip()
        mm = re.match(r"^func\s*\(\s*\w*\s*\*?\s*(\w+)(?:\[[^\]]*\])?\s*\)\s*(\w+)\s*\(", s)
        if mm and not group:
            methods.setdefault((pkgpath, mm.group(1)), set()).add(mm.group(2))
            i += 1
            continue
        if not group and re.match(r"^type\s*\($", s):
            group = True
            i += 1
            doc = []
            continue
        if group and s == ")":
            group = False
            i += 1
            continue
        if s.startswith("//"):
            doc.append(s[2:].strip())
            i += 1
            continue
        spec = None
        if not group and s.startswith("type "):
            spec = s[5:].strip()
        elif group and s and (line.startswith("\t") or line.startswith(" ")):
            spec = s
        if spec is None:
            doc = []
            i += 1
            continue
        code, _ = split_comment(spec)
        m = re.match(r"^([A-Za-z_]\w*)(\[[^\]]*\])?\s*(=)?\s*(.*)$", code)
        if not m:
            i += 1
            continue
        name, generic, is_alias, rest = m.group(1), m.group(2), m.group(3), m.group(4).strip()
        if rest.startswith("struct"):
            body = rest[len("struct"):].strip()
            if body.startswith("{") and body.rstrip().endswith("}") and body.count("{") == body.count("}"):
                inner = body.strip()[1:-1].strip()
                fields = parse_struct_body([inner] if inner else [], i + 1)
                j = i + 1
            else:
                depth = body.count("{") - body.count("}")
                j = i + 1
                body_lines = []
                while j < n and depth > 0:
                    c, _ = split_comment(lines[j])
                    depth += c.count("{") - c.count("}")
                    if depth > 0:
                        body_lines.append(lines[j])
                    j += 1
                fields = parse_struct_body(body_lines, i + 2)
            if not generic:
                decls[(pkgpath, name)] = TypeDecl(pkgpath, name, "struct", fields=fields, file=path,
                                                  imports=imports, line=i + 1)
            i = j
        else:
            if not generic and rest:
                decls[(pkgpath, name)] = TypeDecl(pkgpath, name, "alias" if is_alias else "named",
                                                  underlying=rest, file=path, imports=imports, line=i + 1)
            i += 1
        doc = []


def load_sources(roots):
    decls, methods = {}, {}
    for key, root in roots.items():
        module = MODULES[key]
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for fn in sorted(filenames):
                if not fn.endswith(".go") or fn.endswith("_test.go"):
                    continue
                rel = os.path.relpath(dirpath, root)
                pkgpath = module if rel == "." else module + "/" + rel.replace(os.sep, "/")
                parse_go_file(os.path.join(dirpath, fn), pkgpath, decls, methods)
    for (pkg, name), ms in methods.items():
        if (pkg, name) in decls:
            decls[(pkg, name)].methods |= ms
    return decls


def parse_base_flags(livekit_root):
    path = os.path.join(livekit_root, "cmd", "server", "main.go")
    if not os.path.exists(path):
        return [], None
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^var baseFlags = \[\]cli\.Flag\{(.*?)^\}", text, re.S | re.M)
    if not m:
        return [], path
    names = re.findall(r'Name:\s*"([^"]+)"', m.group(1))
    envs = {}
    for blk in re.findall(r"&cli\.\w+\{(.*?)\n\t\}", m.group(1), re.S):
        nm = re.search(r'Name:\s*"([^"]+)"', blk)
        ev = re.search(r'EnvVars\("([^"]+)"\)', blk)
        if nm and ev:
            envs[nm.group(1)] = ev.group(1)
    return [(nm, envs.get(nm)) for nm in names], path


# --------------------------------------------------------------------------- type model

def parse_type_expr(src):
    src = src.strip()
    if src.startswith("*"):
        return ("ptr", parse_type_expr(src[1:]))
    if src.startswith("[]"):
        return ("slice", parse_type_expr(src[2:]))
    m = re.match(r"^\[(\w+)\](.*)$", src)
    if m:
        return ("array", m.group(1), parse_type_expr(m.group(2)))
    if src.startswith("map["):
        depth, i = 0, 3
        while i < len(src):
            if src[i] == "[":
                depth += 1
            elif src[i] == "]":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        return ("map", parse_type_expr(src[4:i]), parse_type_expr(src[i + 1:]))
    if src in ("interface{}", "any") or src.startswith("interface"):
        return ("interface",)
    if src.startswith("func") or src.startswith("chan") or src.startswith("<-"):
        return ("other", src)
    if src.startswith("struct"):
        return ("anonstruct", src)
    if "." in src:
        pkg, name = src.split(".", 1)
        return ("sel", pkg, name)
    if src in BASIC_REFLECT_KIND:
        return ("basic", src)
    return ("ident", src)


class Resolved:
    """A type after following named/alias types."""

    def __init__(self, kind, **kw):
        self.kind = kind            # basic|duration|struct|ptr|slice|map|array|interface|unresolved|other
        self.__dict__.update(kw)


class Gen:
    def __init__(self, decls, allow_unresolved, base_flags):
        self.decls = decls
        self.allow_unresolved = set(allow_unresolved)
        self.used_unresolved = set()
        self.base_flags = base_flags
        self.existing_flag_names = {nm for nm, _ in base_flags}
        self.kinds_seen = set()
        self.stats = {"properties": 0, "flags": 0, "no_flag": 0}

    # -- resolution
    def resolve(self, texpr, ctx_pkg, imports, depth=0):
        if depth > 20:
            raise GenError("type resolution too deep")
        t = texpr[0]
        if t == "basic":
            return Resolved("basic", basic=texpr[1], named=None)
        if t == "ptr":
            return Resolved("ptr", elem=(texpr[1], ctx_pkg, imports))
        if t == "slice":
            return Resolved("slice", elem=(texpr[1], ctx_pkg, imports))
        if t == "array":
            return Resolved("array", elem=(texpr[2], ctx_pkg, imports))
        if t == "map":
            return Resolved("map", key=(texpr[1], ctx_pkg, imports), elem=(texpr[2], ctx_pkg, imports))
        if t == "interface":
            return Resolved("interface")
        if t in ("other", "anonstruct"):
            return Resolved("other", src=texpr[1])
        if t == "sel":
            alias, name = texpr[1], texpr[2]
            path = imports.get(alias)
            if path is None:
                raise GenError(f"unknown import alias {alias!r} in {ctx_pkg}")
            if path == "time" and name == "Duration":
                return Resolved("duration")
            return self.resolve_named(path, name, depth)
        if t == "ident":
            return self.resolve_named(ctx_pkg, texpr[1], depth)
        raise GenError(f"unhandled type {texpr}")

    def resolve_named(self, pkg, name, depth):
        d = self.decls.get((pkg, name))
        full = f"{pkg}.{name}"
        if d is None:
            if full in self.allow_unresolved:
                self.used_unresolved.add(full)
                return Resolved("unresolved", full=full)
            raise GenError(f"type {full} not found in the given sources "
                           f"(add its file, or pass --allow-unresolved {full})")
        if "UnmarshalYAML" in d.methods or "UnmarshalText" in d.methods:
            handler = CUSTOM_UNMARSHALERS.get(full)
            if handler is None:
                raise GenError(f"{full} has a custom {sorted(d.methods & {'UnmarshalYAML', 'UnmarshalText'})}; "
                               f"add a CUSTOM_UNMARSHALERS entry describing what it accepts")
            if d.kind == "struct":
                inner = Resolved("struct", decl=d)
            else:
                inner = self.resolve(parse_type_expr(d.underlying), pkg, d.imports, depth + 1)
            return Resolved("custom", decl=d, full=full, handler=handler, inner=inner)
        if d.kind == "struct":
            return Resolved("struct", decl=d)
        r = self.resolve(parse_type_expr(d.underlying), pkg, d.imports, depth + 1)
        if r.kind == "basic" and d.kind == "named":
            r.named = full
        return r

    def reflect_kind(self, r):
        if r.kind == "basic":
            return BASIC_REFLECT_KIND[r.basic]
        return {"duration": "Int64", "struct": "Struct", "ptr": "Ptr", "slice": "Slice", "map": "Map",
                "array": "Array", "interface": "Interface", "unresolved": "Struct",
                "custom": "Struct", "other": "Func"}.get(r.kind, "Invalid")

    def go_kind(self, r):
        """Closed set documented in README.md."""
        if r.kind == "basic":
            b = r.basic
            if b == "bool":
                return "bool"
            if b == "string":
                return "string"
            if b.startswith("float"):
                return "float"
            if b.startswith("uint") or b == "byte":
                return "uint"
            return "int"
        if r.kind == "duration":
            return "duration"
        if r.kind in ("struct", "unresolved"):
            return "struct"
        if r.kind == "custom":
            return "struct" if r.decl.kind == "struct" else self.go_kind(r.inner)
        if r.kind in ("slice", "array"):
            return "slice"
        if r.kind == "map":
            return "map"
        if r.kind == "ptr":
            return "pointer-to-" + self.go_kind(self.resolve(*r.elem))
        if r.kind == "interface":
            return "interface"
        return "other"

    # -- schema fragments
    def scalar_schema(self, r, yaml_key):
        if r.kind == "duration":
            return {"type": "string", "pattern": DURATION_PATTERN,
                    "$comment": "time.Duration: yaml.v3 v3.0.1 accepts only a time.ParseDuration string (e.g. \"5s\", \"500ms\"); integers (even 0) are a decode error."}
        b = r.basic
        if b == "bool":
            return {"type": ["boolean", "string"], "enum": [True, False] + YAML11_BOOL_STRINGS,
                    "$comment": "bool: yaml.v3 also decodes the YAML 1.1 strings y/yes/on and n/no/off (any case variant listed) into a typed bool; other strings such as \"true\" are rejected."}
        if b == "string":
            return {"type": ["string", "number", "boolean"],
                    "$comment": "string: yaml.v3 stores the raw text of any scalar (number, bool) into a string field."}
        if b.startswith("float"):
            return {"type": "number"}
        lo, hi = INT_RANGES[b]
        sch = {"type": "integer", "minimum": lo, "maximum": hi}
        if yaml_key is not None and PORT_NAME_RE.search(yaml_key):
            sch["minimum"], sch["maximum"] = max(lo, 0), min(hi, 65535)
        return sch

    def schema_for(self, r, yaml_key, flag_path, go_type_src, is_leaf_field):
        """Schema for a value of resolved type r. flag_path: dotted flag path if the
        CLI generator reaches this value as a struct member (else None)."""
        if r.kind in ("basic", "duration"):
            return self.scalar_schema(r, yaml_key)
        if r.kind == "struct":
            return self.struct_schema(r.decl, flag_path)
        if r.kind == "custom":
            return r.handler(self, r, flag_path)
        if r.kind == "unresolved":
            return {"$comment": f"{r.full}: Go source not available in the indexed sources used for this "
                                f"schema; shape not checked (any value accepted).",
                    "x-unresolved": True}
        if r.kind == "ptr":
            inner_r = self.resolve(*r.elem)
            inner = self.schema_for(inner_r, yaml_key, None, None, False)
            return nullable(inner)
        if r.kind in ("slice", "array"):
            er = self.resolve(*r.elem)
            return {"type": "array", "items": self.schema_for(er, None, None, None, False)}
        if r.kind == "map":
            kr = self.resolve(*r.key)
            er = self.resolve(*r.elem)
            sch = {"type": "object"}
            if kr.kind == "basic" and kr.basic not in ("string", "bool") and not kr.basic.startswith("float"):
                sch["propertyNames"] = {"pattern": "^[-+]?[0-9]+$"}
            sch["additionalProperties"] = self.schema_for(er, None, None, None, False)
            return sch
        if r.kind == "interface":
            return {"$comment": "interface{}: any YAML value"}
        raise GenError(f"cannot represent type kind {r.kind}")

    def struct_schema(self, decl, flag_prefix):
        props = {}
        self._collect(decl, flag_prefix, props, embedded_from=None, seen=set())
        return {"type": "object", "additionalProperties": False, "properties": props}

    def _collect(self, decl, flag_prefix, props, embedded_from, seen):
        key = (decl.pkg, decl.name)
        if key in seen:
            raise GenError(f"recursive struct {decl.pkg}.{decl.name} not supported")
        seen = seen | {key}
        for f in decl.fields:
            exported = f.name[:1].isupper()
            if not exported and not f.embedded:
                continue  # yaml.v3: private field
            tag = f.tag
            ytag = re.search(r'(?:^|\s)yaml:"([^"]*)"', tag)
            ytag = ytag.group(1) if ytag else ""
            if ytag == "" and ":" not in tag:
                ytag = tag  # yaml.v3 legacy: whole tag used when it has no key:"value" pairs
            if ytag == "-":
                continue
            parts = ytag.split(",")
            yname, flags = parts[0], parts[1:]
            for fl in flags:
                if fl not in ("omitempty", "flow", "inline"):
                    raise GenError(f"unsupported yaml flag {fl!r} on {decl.name}.{f.name}")
            inline = "inline" in flags
            texpr = parse_type_expr(f.type_src)
            r = self.resolve(texpr, decl.pkg, decl.imports)

            # ---- livekit ToCLIFlagNames mirror (pkg/config/config.go)
            ftag = ytag.split(",", 1)
            f_yaml_tag = ftag[0]
            f_is_inline = len(ftag) > 1 and ftag[1] == "inline"
            fpath = None
            skip_reason = None
            if flag_prefix is None:
                skip_reason = "not reachable by the flag generator (inside a pointer/slice/map or skipped parent)"
            elif (f_yaml_tag == "" and (not f_is_inline or flag_prefix == "")) or f_yaml_tag == "-":
                skip_reason = ("empty yaml name: the flag generator skips fields without an explicit yaml name"
                               if not f_is_inline else "inline struct at top level is skipped by the flag generator")
            else:
                fpath = f_yaml_tag
                if flag_prefix != "":
                    fpath = flag_prefix if f_is_inline else f"{flag_prefix}.{f_yaml_tag}"
                if fpath in self.existing_flag_names:
                    skip_reason = f"yaml path {fpath!r} collides with a base CLI flag name; generated flag skipped"
                    fpath = None

            if inline:
                target = r.decl if r.kind == "struct" else None
                if r.kind == "ptr":
                    inner = self.resolve(*r.elem)
                    target = inner.decl if inner.kind == "struct" else None
                if r.kind == "map":
                    raise GenError("inline maps not supported by this generator")
                if target is None:
                    raise GenError(f"inline on non-struct {decl.name}.{f.name}")
                sub_prefix = fpath if skip_reason is None else None
                self._collect(target, sub_prefix, props, embedded_from=f.type_src, seen=seen)
                continue
            # yaml.v3: explicit name, else strings.ToLower(Go field name); an embedded field
            # without ",inline" is a normal field named after its type.
            key_name = yname or f.name.lower()
            if key_name in props:
                raise GenError(f"duplicated key {key_name!r} in struct {decl.name} (yaml.v3 would fail too)")

            # reflect kind of the value as GenerateCLIFlags sees it
            rk = self.reflect_kind(r)
            gen_kind = rk
            if rk == "Ptr":
                gen_kind = self.reflect_kind(self.resolve(*r.elem))
            recurse_flags = None
            if skip_reason is None and rk == "Struct" and r.kind in ("struct", "custom"):
                recurse_flags = fpath  # ToCLIFlagNames enqueues struct values

            if r.kind == "struct":
                sch = self.struct_schema(r.decl, recurse_flags)
            elif r.kind == "custom":
                sch = r.handler(self, r, recurse_flags)
            else:
                sch = self.schema_for(r, key_name, None, f.type_src, True)
            prop = {}
            if f.doc:
                prop["description"] = short_desc(f.doc)
            prop.update(sch)
            gk = self.go_kind(r)
            self.kinds_seen.add(gk)
            prop["x-go-type"] = qualify(f.type_src, decl.pkg)
            prop["x-go-kind"] = gk
            if embedded_from:
                prop["x-go-embedded-in"] = embedded_from
            if f.embedded:
                prop["x-go-embedded"] = True
            scalar = gk in ("bool", "int", "uint", "float", "string", "duration") or (
                gk.startswith("pointer-to-") and gk[len("pointer-to-"):] in
                ("bool", "int", "uint", "float", "string", "duration"))
            if skip_reason is None and rk != "Struct":
                if gen_kind in FLAG_KINDS:
                    prop["x-flag"] = fpath
                    prop["x-env"] = env_name(fpath)
                    prop["x-flag-type"] = "cli." + FLAG_TYPES[gen_kind]
                    if gk.endswith("duration"):
                        prop["x-env-format"] = "integer nanoseconds (cli.Int64Flag, converted to time.Duration)"
                    self.stats["flags"] += 1
                elif gen_kind in FLAG_SILENT_SKIP_KINDS:
                    pass  # slices / maps / pointer-to-struct: silently skipped by GenerateCLIFlags
                else:
                    prop["x-no-flag"] = True
                    prop["x-flag-error"] = (f"GenerateCLIFlags returns an error for kind {gen_kind} "
                                            f"({fpath}); flag generation aborts")
                    self.stats["no_flag"] += 1
            elif skip_reason is not None and scalar:
                prop["x-no-flag"] = True
                prop["x-no-flag-reason"] = skip_reason
                base = [e for n_, e in self.base_flags if n_ == key_name and e]
                if base and "collides" in skip_reason:
                    prop["x-base-flag"] = {"name": key_name, "env": base[0]}
                self.stats["no_flag"] += 1
            self.stats["properties"] += 1
            props[key_name] = prop


def nullable(sch):
    sch = dict(sch)
    t = sch.get("type")
    if isinstance(t, str):
        sch["type"] = [t, "null"]
    elif isinstance(t, list):
        sch["type"] = t + (["null"] if "null" not in t else [])
    else:
        return {"anyOf": [sch, {"type": "null"}]}
    if "enum" in sch:
        sch["enum"] = sch["enum"] + [None]
    return sch


GO_KEYWORDS = {"map", "struct", "interface", "func", "chan", "any", "error"}


def qualify(type_src, pkgpath):
    """Write same-package named types as pkg.Name (e.g. PortRange -> rtcconfig.PortRange)."""
    pkgname = pkgpath.rsplit("/", 1)[-1]

    def rep(m):
        word, start = m.group(0), m.start()
        if start > 0 and type_src[start - 1] == ".":
            return word  # selector part of pkg.Name
        end = m.end()
        if end < len(type_src) and type_src[end] == ".":
            return word  # package qualifier
        if word in BASIC_REFLECT_KIND or word in GO_KEYWORDS or word.isdigit():
            return word
        return f"{pkgname}.{word}"

    return re.sub(r"[A-Za-z_]\w*", rep, type_src)


FLAG_TYPES = {"Bool": "BoolFlag", "String": "StringFlag", "Int": "IntFlag", "Int32": "IntFlag",
              "Int64": "Int64Flag", "Uint8": "UintFlag", "Uint16": "UintFlag", "Uint32": "UintFlag",
              "Uint64": "Uint64Flag", "Float32": "Float64Flag", "Float64": "Float64Flag"}


def env_name(path):
    return "LIVEKIT_" + path.replace(".", "_").upper()


def short_desc(doc):
    doc = re.sub(r"\s+", " ", doc).strip()
    return doc if len(doc) <= 240 else doc[:237].rstrip() + "..."


# --------------------------------------------------------------------------- custom unmarshalers

def struct_members(gen, r, flag_prefix):
    """Go members of a custom-unmarshaled struct, as livekit's ToCLIFlagNames sees them: it recurses into any
    struct value (custom unmarshaler or not), so each member gets flag `<path>.<yaml name>` and its env var."""
    members = {}
    for f in r.decl.fields:
        m = re.search(r'yaml:"([^",]*)', f.tag)
        nm = m.group(1) if m else f.name.lower()
        fr = gen.resolve(parse_type_expr(f.type_src), r.decl.pkg, r.decl.imports)
        ent = {"x-go-type": qualify(f.type_src, r.decl.pkg), "x-go-kind": gen.go_kind(fr)}
        if flag_prefix is not None:
            ent["x-flag"] = f"{flag_prefix}.{nm}"
            ent["x-env"] = env_name(f"{flag_prefix}.{nm}")
            ent["x-flag-type"] = "cli." + FLAG_TYPES[gen.reflect_kind(fr)]
            gen.stats["flags"] += 1
        members[nm] = ent
    return members


def portrange_schema(gen, r, flag_prefix):
    """rtcconfig.PortRange.UnmarshalYAML -> UnmarshalString(node.Value)."""
    members = struct_members(gen, r, flag_prefix)
    return {
        "anyOf": [
            {"type": "integer", "minimum": 0, "maximum": 65535},
            {"type": "string", "pattern": "^([0-9]+| *[0-9]+ *- *[0-9]+ *)$"},
        ],
        "$comment": ("rtcconfig.PortRange has a custom UnmarshalYAML that parses the scalar text: "
                     "a single port (\"7882\" or 7882) or a range \"<start>-<end>\" (end must be > start, "
                     "not checkable here). A mapping {start,end} is NOT decoded: its node value is empty, so "
                     "it is silently ignored by livekit-server; this schema rejects it. Ports limited to 0-65535."),
        "x-yaml-custom-unmarshaler": "UnmarshalYAML",
        "x-go-struct-fields": members,
    }


# net.ParseIP text forms, after strings.Trim(part, " "): a dotted-quad IPv4 (Go rejects leading zeros) or an
# IPv6 text (approximated: hex digits, dots and at least one colon).
_IPV4 = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
_IPV6 = r"[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*"
NODE_IP_PATTERN = (f"^( *{_IPV4} *| *{_IPV6} *| *{_IPV4} *, *{_IPV6} *| *{_IPV6} *, *{_IPV4} *)?$")


def nodeip_schema(gen, r, flag_prefix):
    """rtcconfig.NodeIP{V4 `ipv4`, V6 `ipv6`} (mediatransportutil since livekit 1.10, "Refine ipv6 support"):
    UnmarshalYAML -> UnmarshalString(node.Value): "" (no-op), one IP, or two comma-separated IPs of which at
    most one is IPv4 and one IPv6."""
    members = struct_members(gen, r, flag_prefix)
    return {
        "type": "string",
        "pattern": NODE_IP_PATTERN,
        "$comment": ("rtcconfig.NodeIP has a custom UnmarshalYAML that parses the scalar text: \"<ip>\" or "
                     "\"<ipv4>,<ipv6>\" (either order, spaces around each part trimmed; each part must pass "
                     "net.ParseIP, at most one IPv4 and one IPv6; an empty string is a no-op). IPv6 syntax is only "
                     "approximated here, and an IPv4-mapped IPv6 (::ffff:a.b.c.d) counts as IPv4 in livekit. "
                     "A mapping {ipv4, ipv6} is NOT decoded: its node value is empty, so it is silently ignored by "
                     "livekit-server; this schema rejects it."),
        "x-yaml-custom-unmarshaler": "UnmarshalYAML",
        "x-go-struct-fields": members,
    }


CUSTOM_UNMARSHALERS = {
    "github.com/livekit/mediatransportutil/pkg/rtcconfig.PortRange": portrange_schema,
    "github.com/livekit/mediatransportutil/pkg/rtcconfig.NodeIP": nodeip_schema,
}


# --------------------------------------------------------------------------- main

def read_version(livekit_root):
    p = os.path.join(livekit_root, "version", "version.go")
    with open(p, encoding="utf-8") as f:
        m = re.search(r'const Version = "([^"]+)"', f.read())
    if not m:
        raise GenError("version/version.go: Version not found")
    return "v" + m.group(1)


def generate(args):
    roots = {"livekit": args.livekit, "mediatransportutil": args.mediatransportutil, "protocol": args.protocol}
    decls = load_sources(roots)
    base_flags, _ = parse_base_flags(args.livekit)
    gen = Gen(decls, args.allow_unresolved, base_flags)
    root = decls.get((ROOT_PKG, ROOT_TYPE))
    if root is None:
        raise GenError(f"{ROOT_PKG}.{ROOT_TYPE} not found under --livekit")
    body = gen.struct_schema(root, "")
    unused = set(args.allow_unresolved) - gen.used_unresolved
    if unused:
        raise GenError(f"--allow-unresolved given for types that resolved or are unused: {sorted(unused)}")
    manifest = {}
    if args.manifest:
        with open(args.manifest, encoding="utf-8") as f:
            manifest = json.load(f)
    version = read_version(args.livekit)
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://lkguard.invalid/policies/sdk/schema/livekit-server.schema.json",
        "title": "livekit-server YAML configuration",
        "$comment": (f"Generated by scripts/livekit-schema/gen.py from the Go config structs of livekit-server "
                     f"{version} ({manifest.get('livekit', {}).get('repo', 'livekit/livekit')} commit "
                     f"{manifest.get('livekit', {}).get('commit', '?')}), "
                     f"decoded by gopkg.in/yaml.v3 with KnownFields(true): unknown keys are startup errors, "
                     f"hence additionalProperties:false on every struct. Do not edit by hand."
                     + (" " + manifest["note"] if manifest.get("note") else "")),
        "x-livekit-version": version,
    }
    if manifest.get("requested_version"):
        schema["x-requested-version"] = manifest["requested_version"]
    schema["x-source-commit"] = manifest.get("livekit", {}).get("commit", "unknown")
    if manifest.get("sources"):
        schema["x-sources"] = manifest["sources"]
    schema["x-yaml-decoder"] = "gopkg.in/yaml.v3 v3.0.1, Decoder.KnownFields(true)"
    schema["x-go-kinds"] = sorted(gen.kinds_seen)
    if gen.used_unresolved:
        schema["x-unresolved-types"] = sorted(gen.used_unresolved)
    schema.update(body)
    return schema, gen


def self_test(schema_path):
    try:
        import jsonschema  # type: ignore
        import yaml  # type: ignore
    except ImportError as e:  # pragma: no cover
        print(f"self-test needs jsonschema and pyyaml: {e}", file=sys.stderr)
        return 2
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    props = schema["properties"]
    log_level_doc = "log_level: [info]\n" if "log_level" in props else "logging: {level: [info]}\n"
    cases = [
        ("pass", "port: 7880\nrtc:\n  tcp_port: 7881\n  udp_port: 7882\n  use_external_ip: false\nkeys:\n  k: s\n"),
        ("pass", "rtc: {port_range_start: 50000, port_range_end: 60000}\n"),
        ("pass", "rtc: {udp_port: \"50000-60000\"}\nvideo: {dynacast_pause_delay: 5s}\nlogging: {level: info, json: true}\n"),
        ("fail", "rtc: {tcp_prot: 7881}\n"),
        ("fail", log_level_doc),
        ("fail", "rtc: {use_external_ip: \"true\"}\n"),
        ("fail", "port: 70000\n"),
        ("fail", "video: {dynacast_pause_delay: 5}\n"),
        ("fail", "rtc: {udp_port: {start: 1, end: 2}}\n"),
    ]
    node_ip = props.get("rtc", {}).get("properties", {}).get("node_ip", {})
    if node_ip.get("x-go-type") == "rtcconfig.NodeIP":  # struct NodeIP{V4,V6} (livekit >= 1.10)
        cases += [
            ("pass", "port: 7880\nrtc:\n  tcp_port: 7881\n  udp_port: 7882\n  use_external_ip: false\n"
                     "  node_ip: 20.61.14.7\nkeys:\n  k: s\n"),
            ("pass", "rtc: {node_ip: \"20.61.14.7,2001:db8::7\"}\n"),
            ("pass", "rtc: {node_ip: \"2001:db8::7, 20.61.14.7\"}\n"),
            ("fail", "rtc: {node_ip: \"20.61.14.7,20.61.14.8\"}\n"),
            ("fail", "rtc: {node_ip: {ipv4: 20.61.14.7}}\n"),
            ("fail", "rtc: {node_ip: <LB_IP>}\n"),
        ]
    failures = 0
    for expect, doc in cases:
        inst = yaml.safe_load(doc)
        errs = list(v.iter_errors(inst))
        ok = (not errs) if expect == "pass" else bool(errs)
        status = "ok  " if ok else "FAIL"
        detail = "" if expect == "pass" or not errs else f"  -> {errs[0].message[:90]}"
        if expect == "pass" and errs:
            detail = f"  -> unexpected: {errs[0].message[:90]}"
        print(f"{status} expect {expect}: {doc.strip()!r}{detail}")
        failures += 0 if ok else 1
    passed = len(cases) - failures
    print(f"{passed} passed, {failures} failed")
    return 1 if failures else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--livekit", help="livekit/livekit source tree (module github.com/livekit/livekit-server)")
    ap.add_argument("--mediatransportutil", help="livekit/mediatransportutil source tree")
    ap.add_argument("--protocol", help="livekit/protocol source tree")
    ap.add_argument("--manifest", help="JSON file naming the commits the sources were read at")
    ap.add_argument("--allow-unresolved", action="append", default=[], metavar="IMPORTPATH.Type",
                    help="accept (unchecked) a named type whose source is not available")
    ap.add_argument("--out", help="write schema here (default: stdout)")
    ap.add_argument("--check", action="store_true", help="with --out: fail if the file differs from the output")
    ap.add_argument("--self-test", metavar="SCHEMA", help="validate sample documents against SCHEMA")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test(args.self_test)
    if not (args.livekit and args.mediatransportutil and args.protocol):
        ap.error("--livekit, --mediatransportutil and --protocol are required")
    try:
        schema, gen = generate(args)
    except GenError as e:
        print(f"gen.py: error: {e}", file=sys.stderr)
        return 1
    text = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    if args.out:
        if args.check:
            with open(args.out, encoding="utf-8") as f:
                if f.read() != text:
                    print(f"{args.out} is not the generator's output", file=sys.stderr)
                    return 1
            print(f"{args.out} is up to date")
            return 0
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {args.out}: {len(text)} bytes, {gen.stats['properties']} properties, "
              f"{gen.stats['flags']} flags, {gen.stats['no_flag']} x-no-flag, "
              f"kinds={sorted(gen.kinds_seen)}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
