//! `cargo xtask gen-proto-table`: generator for `control/src/proto/table.rs`, the static schema the protobuf request-body decoder walks.
//!
//! Usage: `cargo xtask gen-proto-table --go-api <kubernetes/api tree> --go-apimachinery <kubernetes/apimachinery tree>
//! [--out src/proto/table.rs] [--sources-note "kubernetes/api@<commit> ..."]` (both trees at the
//! release matching k8s-openapi's `v1_37`; the note, naming them, goes into the file header).
//!
//! Three inputs, each the authority for one thing, cross-checked against each other:
//! - the upstream `generated.proto` files (in the Go trees): messages, field numbers, wire types.
//!   k8s-pb is prost output of these files, but from an older release (it lacks 1.36/1.37
//!   fields), so the files themselves are read.
//! - the upstream Go `types.go` structs: the JSON name of every protobuf field, its position in
//!   the JSON object, inlined (embedded) structs, and — what neither the protos nor the OpenAPI
//!   schema carry — whether Go's JSON encoding emits the field: Go's protobuf encoder writes every
//!   non-pointer field even when zero, and `omitempty` drops such zeros again in JSON, while
//!   pointer fields keep an explicit zero. Without this, `kubectl create namespace` would decode
//!   to `"uid":"","generation":0,...`.
//! - the k8s-openapi sources in cargo's registry: the kinds (API_VERSION/KIND of every resource)
//!   and the JSON field names of every schema, which must match the Go structs exactly.
//!
//! Anything that does not line up fails the run with every problem listed; nothing is guessed.

use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const K8S_OPENAPI: &str = "k8s-openapi-0.29.0";
const API_VERSION_DIR: &str = "v1_37";

/// Group versions whose kinds the decoder accepts (k8s-openapi `API_VERSION` values).
const GROUP_VERSIONS: &[&str] = &[
    "v1",
    "apps/v1",
    "batch/v1",
    "discovery.k8s.io/v1",
    "networking.k8s.io/v1",
    "rbac.authorization.k8s.io/v1",
    "coordination.k8s.io/v1",
    "autoscaling/v1",
    "autoscaling/v2",
    "policy/v1",
    "events.k8s.io/v1",
    "scheduling.k8s.io/v1",
    "storage.k8s.io/v1",
    "authorization.k8s.io/v1",
    "authentication.k8s.io/v1",
];

const DELETE_OPTIONS: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions";

/// Messages whose JSON form is not an object of their fields, with the exact field layout the
/// decoder relies on: (message, special, [(tag, proto type)]).
/// Field numbers and proto types of a special message.
type Layout = &'static [(u32, &'static str)];

const SPECIALS: &[(&str, &str, Layout)] = &[
    (
        "k8s.io.apimachinery.pkg.apis.meta.v1.Time",
        "Time",
        &[(1, "int64"), (2, "int32")],
    ),
    (
        "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime",
        "MicroTime",
        &[(1, "int64"), (2, "int32")],
    ),
    (
        "k8s.io.apimachinery.pkg.apis.meta.v1.Duration",
        "Duration",
        &[(1, "int64")],
    ),
    (
        "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1",
        "FieldsV1",
        &[(1, "bytes")],
    ),
    (
        "k8s.io.apimachinery.pkg.api.resource.Quantity",
        "Quantity",
        &[(1, "string")],
    ),
    (
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString",
        "IntOrString",
        &[(1, "int64"), (2, "int32"), (3, "string")],
    ),
    (
        "k8s.io.apimachinery.pkg.runtime.RawExtension",
        "RawExtension",
        &[(1, "bytes")],
    ),
];

/// JSON fields k8s-openapi has but the Go snapshot lacks, acknowledged one by one: the decoder
/// cannot know their field numbers and skips them as unknown. (schema, JSON field, why).
const KNOWN_SKEW: &[(&str, &str, &str)] = &[(
    "io.k8s.api.core.v1.NodeSystemInfo",
    "runningInUserNamespace",
    "added to 1.37 after the 2026-07-24 kubernetes/api snapshot; kubelet-written node status only",
)];

const SCALARS: &[&str] = &[
    "string", "bool", "int32", "int64", "double", "float", "bytes",
];

pub fn run(ws: &Path, argv: Vec<String>) -> Result<()> {
    let mut go_api = None;
    let mut go_apimachinery = None;
    let mut out = ws.join("control/src/proto/table.rs");
    let mut note = None;
    let mut args = argv.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--go-api" => go_api = Some(PathBuf::from(value()?)),
            "--go-apimachinery" => go_apimachinery = Some(PathBuf::from(value()?)),
            "--out" => out = PathBuf::from(value()?),
            "--sources-note" => note = Some(value()?),
            other => bail!("unknown argument {other}"),
        }
    }
    let sources = Sources {
        go_api: go_api.context("--go-api <kubernetes/api source tree> is required")?,
        go_apimachinery: go_apimachinery
            .context("--go-apimachinery <kubernetes/apimachinery source tree> is required")?,
        openapi: find_openapi()?,
    };
    let text = generate(&sources, note.as_deref())?;
    std::fs::write(&out, text).with_context(|| format!("write {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}

struct Sources {
    go_api: PathBuf,
    go_apimachinery: PathBuf,
    openapi: PathBuf,
}

fn find_openapi() -> Result<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    let registry = home.join("registry/src");
    for entry in
        std::fs::read_dir(&registry).with_context(|| format!("read {}", registry.display()))?
    {
        let dir = entry?
            .path()
            .join(K8S_OPENAPI)
            .join("src")
            .join(API_VERSION_DIR);
        if dir.is_dir() {
            return Ok(dir);
        }
    }
    bail!(
        "{K8S_OPENAPI} not found under {} (run `cargo fetch`)",
        registry.display()
    )
}

// ---------------------------------------------------------------------------------------------
// generated.proto

#[derive(Debug, Clone, PartialEq)]
enum Label {
    Optional,
    Repeated,
    /// `map<key, value>`: `ty` is the value type.
    Map(String),
}

#[derive(Debug, Clone)]
struct ProtoField {
    name: String,
    tag: u32,
    label: Label,
    /// A scalar name or a message's full name.
    ty: String,
}

#[derive(Debug)]
struct ProtoMessage {
    go_package: String,
    fields: Vec<ProtoField>,
}

#[derive(Default)]
struct Protos {
    messages: BTreeMap<String, ProtoMessage>,
    loaded: BTreeSet<String>,
}

impl Protos {
    fn message(&mut self, src: &Sources, full: &str) -> Result<&ProtoMessage> {
        let (package, _) = full.rsplit_once('.').context("unqualified message name")?;
        if self.loaded.insert(package.to_string()) {
            let path = proto_path(src, package)?;
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("read {}", path.display()))?;
            parse_proto(&text, &mut self.messages)
                .with_context(|| format!("parse {}", path.display()))?;
        }
        self.messages
            .get(full)
            .with_context(|| format!("message {full} not found in its generated.proto"))
    }
}

fn proto_path(src: &Sources, package: &str) -> Result<PathBuf> {
    let (root, rest) = if let Some(rest) = package.strip_prefix("k8s.io.api.") {
        (&src.go_api, rest)
    } else if let Some(rest) = package.strip_prefix("k8s.io.apimachinery.") {
        (&src.go_apimachinery, rest)
    } else {
        bail!("proto package {package} is outside kubernetes/api and kubernetes/apimachinery")
    };
    Ok(root.join(rest.replace('.', "/")).join("generated.proto"))
}

fn proto_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    // Same comment syntax as Go.
    for line in strip_go_comments(text).lines() {
        let mut cur = String::new();
        let mut in_str = false;
        for c in line.chars() {
            if in_str {
                cur.push(c);
                if c == '"' {
                    in_str = false;
                    tokens.push(std::mem::take(&mut cur));
                }
            } else if c == '"' {
                in_str = true;
                cur.push(c);
            } else if c.is_whitespace() || "{};=<>,[]".contains(c) {
                if !cur.is_empty() {
                    tokens.push(std::mem::take(&mut cur));
                }
                if !c.is_whitespace() {
                    tokens.push(c.to_string());
                }
            } else {
                cur.push(c);
            }
        }
        if !cur.is_empty() {
            tokens.push(cur);
        }
    }
    tokens
}

fn parse_proto(text: &str, out: &mut BTreeMap<String, ProtoMessage>) -> Result<()> {
    let tokens = proto_tokens(text);
    let mut package = None;
    let mut go_package = None;
    let mut i = 0;
    let tok = |i: usize| -> Result<&str> {
        tokens
            .get(i)
            .map(String::as_str)
            .context("unexpected end of file")
    };
    while i < tokens.len() {
        match tok(i)? {
            "syntax" | "import" => {
                while tok(i)? != ";" {
                    i += 1;
                }
                i += 1;
            }
            "package" => {
                package = Some(tok(i + 1)?.to_string());
                i += 3;
            }
            "option" => {
                if tok(i + 1)? == "go_package" {
                    go_package = Some(tok(i + 3)?.trim_matches('"').to_string());
                }
                while tok(i)? != ";" {
                    i += 1;
                }
                i += 1;
            }
            "message" => {
                let package = package.as_deref().context("message before package")?;
                let go_package = go_package.clone().context("message before go_package")?;
                let name = tok(i + 1)?;
                if tok(i + 2)? != "{" {
                    bail!("message {name}: expected {{");
                }
                i += 3;
                let mut fields = Vec::new();
                while tok(i)? != "}" {
                    let (label, ty, rest) = match tok(i)? {
                        "optional" | "required" => (Label::Optional, tok(i + 1)?, i + 2),
                        "repeated" => (Label::Repeated, tok(i + 1)?, i + 2),
                        "map" => {
                            // map < K , V > name = N ;
                            if tok(i + 1)? != "<" || tok(i + 3)? != "," || tok(i + 5)? != ">" {
                                bail!("message {name}: malformed map field");
                            }
                            if tok(i + 2)? != "string" {
                                bail!("message {name}: map key {} is not string", tok(i + 2)?);
                            }
                            (Label::Map(String::new()), tok(i + 4)?, i + 6)
                        }
                        other => bail!("message {name}: unsupported statement starting {other}"),
                    };
                    let fname = tok(rest)?;
                    if tok(rest + 1)? != "=" || tok(rest + 3)? != ";" {
                        bail!(
                            "message {name}.{fname}: expected `= N;` (field options unsupported)"
                        );
                    }
                    let tag: u32 = tok(rest + 2)?
                        .parse()
                        .with_context(|| format!("message {name}.{fname}: bad field number"))?;
                    let ty = resolve_proto_type(package, ty);
                    let (label, ty) = match label {
                        Label::Map(_) => (Label::Map(ty), String::new()),
                        l => (l, ty),
                    };
                    fields.push(ProtoField {
                        name: fname.to_string(),
                        tag,
                        label,
                        ty,
                    });
                    i = rest + 4;
                }
                i += 1;
                out.insert(
                    format!("{package}.{name}"),
                    ProtoMessage { go_package, fields },
                );
            }
            other => bail!("unsupported top-level statement {other}"),
        }
    }
    Ok(())
}

fn resolve_proto_type(package: &str, ty: &str) -> String {
    if let Some(full) = ty.strip_prefix('.') {
        full.to_string()
    } else if SCALARS.contains(&ty) {
        ty.to_string()
    } else {
        format!("{package}.{ty}")
    }
}

// ---------------------------------------------------------------------------------------------
// Go types

#[derive(Debug, Clone)]
struct GoField {
    /// `None` for an embedded field.
    name: Option<String>,
    ty: String,
    json: Option<String>,
    proto_tag: Option<u32>,
}

#[derive(Debug, Clone)]
enum GoDecl {
    Struct(Vec<std::result::Result<GoField, String>>),
    /// `type X <expr>` (also aliases).
    Named(String),
}

#[derive(Debug, Default)]
struct GoPackage {
    /// type name → (declaration, index of the declaring file's imports).
    decls: HashMap<String, (GoDecl, usize)>,
    imports: Vec<HashMap<String, String>>,
}

#[derive(Default)]
struct GoTypes {
    packages: HashMap<String, GoPackage>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    Pointer,
    Slice,
    Bytes,
    Map,
    Struct,
    Scalar,
}

impl GoTypes {
    fn package(&mut self, src: &Sources, import: &str) -> Result<&GoPackage> {
        if !self.packages.contains_key(import) {
            let dir = if let Some(rest) = import.strip_prefix("k8s.io/api/") {
                src.go_api.join(rest)
            } else if let Some(rest) = import.strip_prefix("k8s.io/apimachinery/") {
                src.go_apimachinery.join(rest)
            } else {
                bail!("Go package {import} is outside kubernetes/api and kubernetes/apimachinery")
            };
            let pkg = parse_go_package(&dir).with_context(|| format!("Go package {import}"))?;
            self.packages.insert(import.to_string(), pkg);
        }
        self.packages
            .get(import)
            .with_context(|| format!("Go package {import}"))
    }

    fn decl(&mut self, src: &Sources, import: &str, name: &str) -> Result<(GoDecl, usize)> {
        self.package(src, import)?
            .decls
            .get(name)
            .cloned()
            .with_context(|| format!("Go type {name} not declared in {import}"))
    }

    /// What kind of Go value `expr` (written in `import`'s file `file`) is.
    fn shape(&mut self, src: &Sources, import: &str, file: usize, expr: &str) -> Result<Shape> {
        let expr = expr.trim();
        if expr.starts_with('*') {
            return Ok(Shape::Pointer);
        }
        if expr == "[]byte" {
            return Ok(Shape::Bytes);
        }
        if expr.starts_with("[]") {
            return Ok(Shape::Slice);
        }
        if expr.starts_with("map[") {
            return Ok(Shape::Map);
        }
        if expr.starts_with("struct") {
            return Ok(Shape::Struct);
        }
        const BUILTIN: &[&str] = &[
            "string", "bool", "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16",
            "uint32", "uint64", "float32", "float64", "byte", "rune",
        ];
        if BUILTIN.contains(&expr) {
            return Ok(Shape::Scalar);
        }
        let (target, name) = self.qualify(src, import, file, expr)?;
        let (decl, decl_file) = self.decl(src, &target, &name)?;
        match decl {
            GoDecl::Struct(_) => Ok(Shape::Struct),
            GoDecl::Named(under) => self.shape(src, &target, decl_file, &under),
        }
    }

    /// Resolves `pkg.Name` / `Name` to (import path, type name).
    fn qualify(
        &mut self,
        src: &Sources,
        import: &str,
        file: usize,
        expr: &str,
    ) -> Result<(String, String)> {
        match expr.split_once('.') {
            Some((alias, name)) => {
                let pkg = self.package(src, import)?;
                let target = pkg
                    .imports
                    .get(file)
                    .and_then(|m| m.get(alias))
                    .with_context(|| format!("{import}: unknown import alias {alias} in {expr}"))?
                    .clone();
                Ok((target, name.to_string()))
            }
            None => Ok((import.to_string(), expr.to_string())),
        }
    }
}

/// Drops `//` and `/* */` comments, keeping string and raw-string literals (struct tags) intact.
fn strip_go_comments(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    if b[i] == b'\n' {
                        out.push(b'\n');
                    }
                    i += 1;
                }
                i += 2;
            }
            q @ (b'"' | b'`' | b'\'') => {
                out.push(q);
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' && q != b'`' {
                        out.push(b[i]);
                        i += 1;
                    }
                    if i < b.len() {
                        out.push(b[i]);
                    }
                    i += 1;
                }
                if i < b.len() {
                    out.push(q);
                }
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_go_package(dir: &Path) -> Result<GoPackage> {
    let mut pkg = GoPackage::default();
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.ends_with(".go")
                && !n.ends_with("_test.go")
                && !n.starts_with("zz_generated")
                && !n.starts_with("generated.")
        })
        .collect();
    names.sort();
    for path in names {
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        let text = strip_go_comments(&text);
        let file = pkg.imports.len();
        pkg.imports.push(parse_go_imports(&text));
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i];
            i += 1;
            let Some(rest) = line.strip_prefix("type ") else {
                continue;
            };
            let rest = rest.trim();
            if rest == "(" {
                // Grouped declarations hold no API structs upstream; types in them resolve as
                // missing and fail loudly if ever needed.
                continue;
            }
            let (name, def) = rest
                .split_once(char::is_whitespace)
                .with_context(|| format!("{}: odd type line {line}", path.display()))?;
            if name.contains('[') {
                continue; // generic type
            }
            let def = def.trim().trim_start_matches("= ").trim();
            if def.starts_with("struct") && def.ends_with('}') {
                pkg.decls
                    .insert(name.to_string(), (GoDecl::Struct(Vec::new()), file));
            } else if def.starts_with("struct") && def.ends_with('{') {
                let mut fields = Vec::new();
                let mut depth = 1;
                while i < lines.len() {
                    let l = lines[i].trim();
                    i += 1;
                    let code = l.split('`').next().unwrap_or("");
                    depth += code.matches('{').count();
                    depth -= code.matches('}').count();
                    if depth == 0 {
                        break;
                    }
                    if l.is_empty() || depth > 1 {
                        continue;
                    }
                    fields.push(parse_go_field(l));
                }
                pkg.decls
                    .insert(name.to_string(), (GoDecl::Struct(fields), file));
            } else {
                pkg.decls
                    .insert(name.to_string(), (GoDecl::Named(def.to_string()), file));
            }
        }
    }
    Ok(pkg)
}

fn parse_go_imports(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut in_block = false;
    for line in text.lines() {
        let l = line.trim();
        let spec = if in_block {
            if l == ")" {
                in_block = false;
                continue;
            }
            l
        } else if l == "import (" {
            in_block = true;
            continue;
        } else if let Some(s) = l.strip_prefix("import ") {
            s
        } else {
            continue;
        };
        let parts: Vec<&str> = spec.split_whitespace().collect();
        let (alias, path) = match parts.as_slice() {
            [path] => (None, *path),
            [alias, path] => (Some(*alias), *path),
            _ => continue,
        };
        let path = path.trim_matches('"');
        let alias = alias.map_or_else(
            || path.rsplit('/').next().unwrap_or(path).to_string(),
            str::to_string,
        );
        out.insert(alias, path.to_string());
    }
    out
}

fn parse_go_field(line: &str) -> std::result::Result<GoField, String> {
    let (code, tag) = match line.split_once('`') {
        Some((code, rest)) => (code, rest.trim_end_matches('`')),
        None => (line, ""),
    };
    let words: Vec<&str> = code.split_whitespace().collect();
    let (name, ty) = match words.as_slice() {
        [ty] => (None, ty.to_string()),
        [name, ty] => (Some(name.to_string()), ty.to_string()),
        _ => return Err(line.to_string()),
    };
    let json = tag_value(tag, "json");
    let proto_tag = match tag_value(tag, "protobuf") {
        Some(p) if p != "-" => Some(
            p.split(',')
                .nth(1)
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| line.to_string())?,
        ),
        _ => None,
    };
    Ok(GoField {
        name,
        ty,
        json,
        proto_tag,
    })
}

fn tag_value(tag: &str, key: &str) -> Option<String> {
    let start = tag.find(&format!("{key}:\""))? + key.len() + 2;
    let len = tag[start..].find('"')?;
    Some(tag[start..start + len].to_string())
}

// ---------------------------------------------------------------------------------------------
// k8s-openapi

struct OpenApi {
    /// schema name → JSON keys.
    schemas: HashMap<String, BTreeSet<String>>,
    /// (apiVersion, kind, schema name).
    kinds: Vec<(String, String, String)>,
}

fn read_openapi(dir: &Path) -> Result<OpenApi> {
    let mut files = Vec::new();
    collect_rs(dir, &mut files)?;
    let mut schemas = HashMap::new();
    let mut kinds = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
        let Some(schema) = quoted_after(&text, "fn schema_name()") else {
            continue;
        };
        let keys = text
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                let (key, rest) = l.strip_prefix('"')?.split_once('"')?;
                rest.trim_start()
                    .starts_with("=> Field::Key_")
                    .then(|| key.to_string())
            })
            .collect();
        if let Some(at) = text.find("impl crate::Resource for ") {
            let block = &text[at..];
            if let (Some(v), Some(k)) = (
                quoted_after(block, "const API_VERSION"),
                quoted_after(block, "const KIND"),
            ) {
                kinds.push((v, k, schema.clone()));
            }
        }
        schemas.insert(schema, keys);
    }
    Ok(OpenApi { schemas, kinds })
}

fn quoted_after(text: &str, marker: &str) -> Option<String> {
    let at = text.find(marker)?;
    let rest = &text[at..];
    let start = rest.find('"')? + 1;
    let len = rest[start..].find('"')?;
    Some(rest[start..start + len].to_string())
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_rs(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    Ok(())
}

fn schema_of(proto_full: &str) -> String {
    format!(
        "io.k8s.{}",
        proto_full.strip_prefix("k8s.io.").unwrap_or(proto_full)
    )
}

// ---------------------------------------------------------------------------------------------
// The table

#[derive(Debug, Clone, Copy, PartialEq)]
enum Presence {
    Pointer,
    PointerOrNull,
    OmitEmpty,
    OmitZero,
    Always,
    Inline,
}

#[derive(Debug, Clone)]
struct OutField {
    tag: u32,
    json: String,
    /// `Str`, `Msg(full name)` etc., resolved to ids when writing.
    kind: String,
    repeated: bool,
    presence: Presence,
}

#[derive(Debug)]
enum OutMessage {
    Special(&'static str),
    /// A Go named slice type wrapped as `message X { repeated T items = 1; }`.
    Items(OutField),
    Struct(Vec<OutField>),
}

fn scalar_kind(ty: &str) -> Option<&'static str> {
    Some(match ty {
        "string" => "Str",
        "bool" => "Bool",
        "int32" => "I32",
        "int64" => "I64",
        "double" => "F64",
        "float" => "F32",
        "bytes" => "Bytes",
        _ => return None,
    })
}

fn generate(src: &Sources, note: Option<&str>) -> Result<String> {
    let openapi = read_openapi(&src.openapi)?;
    let mut protos = Protos::default();
    let mut go = GoTypes::default();
    let mut problems: Vec<String> = Vec::new();

    // Roots: every kind of the chosen group versions, plus DeleteOptions under each of them.
    let mut kinds: BTreeMap<(String, String), String> = BTreeMap::new();
    for (version, kind, schema) in &openapi.kinds {
        // Meta types (Status, APIGroup, ...) carry API_VERSION "v1" too; they are no request
        // bodies, so only kubernetes/api kinds count.
        if !GROUP_VERSIONS.contains(&version.as_str()) || !schema.starts_with("io.k8s.api.") {
            continue;
        }
        let Some(rest) = schema.strip_prefix("io.k8s.") else {
            problems.push(format!("kind {version} {kind}: odd schema name {schema}"));
            continue;
        };
        kinds.insert((version.clone(), kind.clone()), format!("k8s.io.{rest}"));
    }
    for version in GROUP_VERSIONS.iter().copied().chain(["meta.k8s.io/v1"]) {
        kinds.insert(
            (version.to_string(), "DeleteOptions".to_string()),
            DELETE_OPTIONS.to_string(),
        );
    }
    for gv in GROUP_VERSIONS {
        if !kinds.keys().any(|(v, k)| v == gv && k != "DeleteOptions") {
            problems.push(format!("no kinds found for {gv} in k8s-openapi"));
        }
    }

    let mut out: BTreeMap<String, OutMessage> = BTreeMap::new();
    let mut queue: VecDeque<String> = kinds.values().cloned().collect();
    let mut unchecked_schemas = Vec::new();
    let mut failed = BTreeSet::new();
    while let Some(full) = queue.pop_front() {
        if out.contains_key(&full) || failed.contains(&full) {
            continue;
        }
        let msg = match convert_message(src, &mut protos, &mut go, &full) {
            Ok(m) => m,
            Err(e) => {
                problems.push(format!("{full}: {e:#}"));
                failed.insert(full);
                continue;
            }
        };
        let fields: Vec<&OutField> = match &msg {
            OutMessage::Special(_) => vec![],
            OutMessage::Items(f) => vec![f],
            OutMessage::Struct(fs) => fs.iter().collect(),
        };
        for f in fields {
            for dep in message_refs(&f.kind) {
                queue.push_back(dep.to_string());
            }
        }
        out.insert(full, msg);
    }

    // Cross-check JSON names against k8s-openapi.
    for (full, msg) in &out {
        let OutMessage::Struct(_) = msg else { continue };
        let Some(expected) = openapi.schemas.get(&schema_of(full)) else {
            unchecked_schemas.push(full.clone());
            continue;
        };
        let mut actual = BTreeSet::new();
        flatten_json_names(&out, full, &mut actual);
        if embeds_type_meta(src, &mut protos, &mut go, full)? {
            actual.insert("apiVersion".to_string());
            actual.insert("kind".to_string());
        }
        let schema = schema_of(full);
        for (_, json, _) in KNOWN_SKEW.iter().filter(|(s, _, _)| *s == schema) {
            if !actual.insert(json.to_string()) {
                problems.push(format!(
                    "{full}: KNOWN_SKEW entry {json} is on the wire now; drop it"
                ));
            }
        }
        if &actual != expected {
            let missing: Vec<_> = expected.difference(&actual).collect();
            let extra: Vec<_> = actual.difference(expected).collect();
            problems.push(format!(
                "{full}: JSON fields differ from k8s-openapi: only in openapi {missing:?}, only on the wire {extra:?}"
            ));
        }
    }

    if !problems.is_empty() {
        bail!(
            "{} problem(s):\n  {}",
            problems.len(),
            problems.join("\n  ")
        );
    }
    eprintln!(
        "{} messages, {} kinds; {} inline-only messages have no k8s-openapi schema to check: {}",
        out.len(),
        kinds.len(),
        unchecked_schemas.len(),
        unchecked_schemas.join(", ")
    );
    write_table(&out, &kinds, note)
}

fn message_refs(kind: &str) -> Vec<&str> {
    let mut refs = Vec::new();
    let mut rest = kind;
    while let Some(at) = rest.find("Msg(") {
        let tail = &rest[at + 4..];
        let end = tail.find(')').unwrap_or(tail.len());
        refs.push(&tail[..end]);
        rest = &tail[end..];
    }
    refs
}

fn flatten_json_names(
    out: &BTreeMap<String, OutMessage>,
    full: &str,
    names: &mut BTreeSet<String>,
) {
    let Some(OutMessage::Struct(fields)) = out.get(full) else {
        return;
    };
    for f in fields {
        if f.presence == Presence::Inline {
            for dep in message_refs(&f.kind) {
                flatten_json_names(out, dep, names);
            }
        } else {
            names.insert(f.json.clone());
        }
    }
}

fn go_struct(
    src: &Sources,
    protos: &mut Protos,
    go: &mut GoTypes,
    full: &str,
) -> Result<(String, GoDecl, usize)> {
    let go_package = protos.message(src, full)?.go_package.clone();
    let name = full.rsplit('.').next().unwrap_or(full);
    let (decl, file) = go.decl(src, &go_package, name)?;
    Ok((go_package, decl, file))
}

fn embeds_type_meta(
    src: &Sources,
    protos: &mut Protos,
    go: &mut GoTypes,
    full: &str,
) -> Result<bool> {
    let (_, decl, _) = go_struct(src, protos, go, full)?;
    let GoDecl::Struct(fields) = decl else {
        return Ok(false);
    };
    Ok(fields.iter().flatten().any(|f| {
        f.name.is_none() && f.proto_tag.is_none() && f.ty.rsplit('.').next() == Some("TypeMeta")
    }))
}

fn convert_message(
    src: &Sources,
    protos: &mut Protos,
    go: &mut GoTypes,
    full: &str,
) -> Result<OutMessage> {
    let proto_fields = protos.message(src, full)?.fields.clone();
    if let Some((_, special, layout)) = SPECIALS.iter().find(|(n, _, _)| *n == full) {
        let actual: Vec<(u32, &str)> = proto_fields
            .iter()
            .map(|f| (f.tag, f.ty.as_str()))
            .collect();
        if actual != *layout || proto_fields.iter().any(|f| f.label != Label::Optional) {
            bail!("special message changed layout: {actual:?}, expected {layout:?}");
        }
        return Ok(OutMessage::Special(special));
    }
    let (go_package, decl, file) = go_struct(src, protos, go, full)?;
    let go_fields = match decl {
        GoDecl::Struct(fields) => fields,
        GoDecl::Named(under) => {
            let shape = go.shape(src, &go_package, file, &under)?;
            return match (shape, proto_fields.as_slice()) {
                (Shape::Slice, [f]) if f.tag == 1 && f.label == Label::Repeated => {
                    Ok(OutMessage::Items(OutField {
                        tag: 1,
                        json: String::new(),
                        kind: proto_kind(&f.ty)?,
                        repeated: true,
                        presence: Presence::Always,
                    }))
                }
                _ => bail!("Go type `{under}` is not a struct nor a wrapped slice"),
            };
        }
    };
    let mut fields = Vec::new();
    let mut seen = BTreeSet::new();
    for gf in go_fields {
        let gf = gf.map_err(|line| anyhow::anyhow!("unparsed Go field line `{line}`"))?;
        let Some(tag) = gf.proto_tag else {
            // Not on the wire: the embedded TypeMeta (set from the envelope at the top level).
            let is_type_meta = gf.name.is_none() && gf.ty.ends_with("TypeMeta");
            if !is_type_meta {
                bail!(
                    "Go field {} has no protobuf tag",
                    gf.name.as_deref().unwrap_or(&gf.ty)
                );
            }
            continue;
        };
        let pf = proto_fields
            .iter()
            .find(|p| p.tag == tag)
            .with_context(|| format!("Go field {:?} has tag {tag}, not in the proto", gf.name))?;
        seen.insert(tag);
        let (json_name, omitempty, omitzero) = match gf.json.as_deref() {
            Some("-") => bail!("field {} is on the wire but not in JSON", pf.name),
            Some(j) => {
                let mut parts = j.split(',');
                let name = parts.next().unwrap_or("").to_string();
                let opts: Vec<&str> = parts.collect();
                (
                    name,
                    opts.contains(&"omitempty"),
                    opts.contains(&"omitzero"),
                )
            }
            None => (String::new(), false, false),
        };
        let shape = go.shape(src, &go_package, file, &gf.ty)?;
        let inline = gf.name.is_none() && json_name.is_empty();
        let json = if json_name.is_empty() && !inline {
            gf.name.clone().unwrap_or_default()
        } else {
            json_name
        };
        let presence = if inline {
            Presence::Inline
        } else if omitzero {
            // Go omits a zero value; only the time types (zero ⇔ JSON null) are supported.
            let time = ["Time", "MicroTime"]
                .iter()
                .any(|t| pf.ty == format!("k8s.io.apimachinery.pkg.apis.meta.v1.{t}"));
            if !time || pf.label != Label::Optional {
                bail!("field {}: omitzero on {} is not supported", pf.name, pf.ty);
            }
            match shape {
                Shape::Pointer => Presence::Pointer,
                _ => Presence::OmitZero,
            }
        } else {
            match shape {
                Shape::Pointer if omitempty => Presence::Pointer,
                Shape::Pointer => Presence::PointerOrNull,
                // encoding/json never omits a struct value, omitempty or not.
                Shape::Struct => Presence::Always,
                _ if omitempty => Presence::OmitEmpty,
                _ => Presence::Always,
            }
        };
        let (kind, repeated) = match &pf.label {
            Label::Map(value) => {
                if shape != Shape::Map {
                    bail!("field {}: proto map but Go {:?}", pf.name, shape);
                }
                (format!("StrMap(&{})", proto_kind(value)?), false)
            }
            Label::Repeated => {
                // A Go named slice used directly is still a repeated proto field.
                if shape != Shape::Slice {
                    bail!("field {}: proto repeated but Go {:?}", pf.name, shape);
                }
                (proto_kind(&pf.ty)?, true)
            }
            Label::Optional => {
                let kind = proto_kind(&pf.ty)?;
                let ok = match (kind.as_str(), shape) {
                    (_, Shape::Pointer) => true,
                    ("Bytes", s) => s == Shape::Bytes,
                    (k, s) if k.starts_with("Msg(") => {
                        s == Shape::Struct || s == Shape::Slice || s == Shape::Map
                    }
                    (_, s) => s == Shape::Scalar,
                };
                if !ok {
                    bail!("field {}: proto {} but Go {:?}", pf.name, pf.ty, shape);
                }
                if inline && !kind.starts_with("Msg(") {
                    bail!("field {}: inlined but not a message", pf.name);
                }
                (kind, false)
            }
        };
        fields.push(OutField {
            tag,
            json,
            kind,
            repeated,
            presence,
        });
    }
    for pf in &proto_fields {
        if !seen.contains(&pf.tag) {
            bail!("proto field {} = {} has no Go field", pf.name, pf.tag);
        }
    }
    Ok(OutMessage::Struct(fields))
}

fn proto_kind(ty: &str) -> Result<String> {
    if let Some(k) = scalar_kind(ty) {
        return Ok(k.to_string());
    }
    if SCALARS.contains(&ty) || !ty.starts_with("k8s.io.") {
        bail!("unsupported proto type {ty}");
    }
    Ok(format!("Msg({ty})"))
}

fn write_table(
    out: &BTreeMap<String, OutMessage>,
    kinds: &BTreeMap<(String, String), String>,
    note: Option<&str>,
) -> Result<String> {
    let ids: HashMap<&str, usize> = out
        .keys()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    if ids.len() > usize::from(u16::MAX) {
        bail!("too many messages for u16 ids");
    }
    let resolve = |kind: &str| -> Result<String> {
        let mut s = kind.to_string();
        for dep in message_refs(kind) {
            let id = ids
                .get(dep)
                .with_context(|| format!("message {dep} not in the table"))?;
            s = s.replace(&format!("Msg({dep})"), &format!("Msg({id})"));
        }
        Ok(s)
    };
    let field = |f: &OutField| -> Result<String> {
        Ok(format!(
            "f({}, {:?}, {}, {}, {:?})",
            f.tag,
            f.json,
            resolve(&f.kind)?,
            f.repeated,
            f.presence
        ))
    };
    let mut s = String::new();
    s.push_str(
        "// @generated by the proto table generator (`gen`) from the upstream generated.proto and \
         types.go\n// files of kubernetes/api and kubernetes/apimachinery and the k8s-openapi \
         sources; do not edit.\n",
    );
    if let Some(note) = note {
        writeln!(s, "// Sources: {note}")?;
    }
    s.push_str(
        "\n\
         //! Protobuf schema of the built-in kinds: for every message, its fields in Go JSON \
         order.\n\n\
         use super::schema::Kind::*;\n\
         use super::schema::Presence::*;\n\
         use super::schema::{Message, Special, f};\n\n",
    );
    writeln!(
        s,
        "pub(super) static MESSAGES: [Message; {}] = [",
        out.len()
    )?;
    for (i, (name, msg)) in out.iter().enumerate() {
        let (special, fields) = match msg {
            OutMessage::Special(sp) => (format!("Special::{sp}"), String::new()),
            OutMessage::Items(f) => ("Special::Items".to_string(), field(f)?),
            OutMessage::Struct(fs) => (
                "Special::None".to_string(),
                fs.iter()
                    .map(field)
                    .collect::<Result<Vec<_>>>()?
                    .join(",\n        "),
            ),
        };
        writeln!(s, "    // {i}")?;
        if fields.is_empty() {
            writeln!(
                s,
                "    Message {{ name: {name:?}, special: {special}, fields: &[] }},"
            )?;
        } else {
            writeln!(
                s,
                "    Message {{ name: {name:?}, special: {special}, fields: &[\n        {fields},\n    ] }},"
            )?;
        }
    }
    s.push_str("];\n\n");
    s.push_str("/// (apiVersion, kind, message id), sorted for binary search.\n");
    writeln!(
        s,
        "pub(super) static KINDS: [(&str, &str, u16); {}] = [",
        kinds.len()
    )?;
    for ((version, kind), full) in kinds {
        let id = ids
            .get(full.as_str())
            .with_context(|| format!("kind {version} {kind}: message {full} not in the table"))?;
        writeln!(s, "    ({version:?}, {kind:?}, {id}),")?;
    }
    s.push_str("];\n");
    Ok(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn go_fields_with_tags_and_embedding() {
        let f = parse_go_field(
            r#"Replicas *int32 `json:"replicas,omitempty" protobuf:"varint,1,opt,name=replicas"`"#,
        )
        .unwrap();
        assert_eq!(f.name.as_deref(), Some("Replicas"));
        assert_eq!(f.ty, "*int32");
        assert_eq!(f.json.as_deref(), Some("replicas,omitempty"));
        assert_eq!(f.proto_tag, Some(1));

        let f = parse_go_field(r#"ProbeHandler `json:"" protobuf:"bytes,1,opt,name=handler"`"#)
            .unwrap();
        assert_eq!(
            (f.name, f.ty.as_str(), f.proto_tag),
            (None, "ProbeHandler", Some(1))
        );

        let f = parse_go_field(r#"metav1.TypeMeta `json:",inline"`"#).unwrap();
        assert_eq!((f.json.as_deref(), f.proto_tag), (Some(",inline"), None));

        assert!(parse_go_field("A, B string").is_err());
    }

    #[test]
    fn go_comments_are_dropped_but_tags_kept() {
        let src = "type A struct {\n\t// x `not a tag`\n\tB string `json:\"b\"` // trailing\n\t/* block\n */ C int\n}\n";
        let out = strip_go_comments(src);
        assert_eq!(
            out,
            "type A struct {\n\t\n\tB string `json:\"b\"` \n\t\n C int\n}\n"
        );
    }

    #[test]
    fn proto_messages_and_map_fields() {
        let src = r#"
            /* licence */
            syntax = "proto2";
            package k8s.io.api.core.v1;
            import "k8s.io/apimachinery/pkg/api/resource/generated.proto";
            option go_package = "k8s.io/api/core/v1";
            // A comment.
            message ResourceRequirements {
              map<string, .k8s.io.apimachinery.pkg.api.resource.Quantity> limits = 1;
              repeated ResourceClaim claims = 3;
              optional string name = 4;
            }
        "#;
        let mut out = BTreeMap::new();
        parse_proto(src, &mut out).unwrap();
        let m = &out["k8s.io.api.core.v1.ResourceRequirements"];
        assert_eq!(m.go_package, "k8s.io/api/core/v1");
        let got: Vec<(u32, &Label, &str)> = m
            .fields
            .iter()
            .map(|f| (f.tag, &f.label, f.ty.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    1,
                    &Label::Map("k8s.io.apimachinery.pkg.api.resource.Quantity".into()),
                    ""
                ),
                (3, &Label::Repeated, "k8s.io.api.core.v1.ResourceClaim"),
                (4, &Label::Optional, "string"),
            ]
        );
        let bad = "syntax = \"proto2\";\npackage p;\noption go_package = \"x\";\nmessage M { map<int32, string> m = 1; }";
        assert!(parse_proto(bad, &mut BTreeMap::new()).is_err());
    }

    #[test]
    fn imports_with_and_without_alias() {
        let src = "import (\n\tmetav1 \"k8s.io/apimachinery/pkg/apis/meta/v1\"\n\t\"k8s.io/apimachinery/pkg/util/intstr\"\n)\nimport \"fmt\"\n";
        let m = parse_go_imports(src);
        assert_eq!(m["metav1"], "k8s.io/apimachinery/pkg/apis/meta/v1");
        assert_eq!(m["intstr"], "k8s.io/apimachinery/pkg/util/intstr");
        assert_eq!(m["fmt"], "fmt");
    }
}
