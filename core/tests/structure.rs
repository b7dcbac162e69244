//! The shape of zonekit-core's sources, checked so that it cannot silently regress
//! (issue 10, items 6 and 7):
//!
//! * **no import cycle** between core's top-level modules, nor between the files of
//!   a directory module (`memblock/`, `mm_init/`, `page_alloc/`);
//! * **no oversized file**: at most [`MAX_NON_TEST_LINES`] lines of non-test code
//!   per file (the lines before its first `#[cfg(test)]`).
//!
//! The import graph is read from the sources: every `use` tree and every `crate::…`,
//! `super::…` or `self::…` path in code (comments, string literals and macros'
//! `$crate` are skipped), test modules included. A path names a module (the longest
//! prefix that is one): `crate::memblock::Memblock` from `page_alloc` is the edge
//! `page_alloc -> memblock`. Two places are facades rather than nodes, and a name
//! taken from them is followed to the module that defines it: the crate root
//! (`crate::MmConfig` is `arch`) and, for the files of a directory, the module file
//! that owns them (`super::Pa` in `memblock/table.rs` names `memblock.rs`, which
//! re-exports it from `memblock/debug.rs`: the edge is `table -> debug`).
//! Method calls on a type defined in another file are not imports and are not seen;
//! the module docs of `memblock.rs` and `page_alloc.rs` give the layering of their
//! files that those calls follow.
//!
//! Run with `--nocapture` to print each graph in layers (a module after everything
//! it imports).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The largest number of non-test lines a file of `core/src` may have.
const MAX_NON_TEST_LINES: usize = 800;

/// A module path from the crate root (`[]` is the root, `["memblock", "table"]` is
/// `crate::memblock::table`).
type ModPath = Vec<String>;

/// A token of Rust source, as far as paths are concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// `::`
    Colons,
    Punct(char),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
}

/// Split `src` into identifiers, `::` and punctuation, dropping whitespace,
/// comments, string/char literals, lifetimes and numbers.
fn tokenize(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let ident_start = |ch: char| ch.is_alphabetic() || ch == '_';
    let ident_char = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut out = Vec::new();
    let (mut i, mut line) = (0usize, 1usize);
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(c[i] == '\n');
                    i += 1;
                }
            }
        } else if (ch == 'r' || (ch == 'b' && at(i + 1) == 'r'))
            && !(i > 0 && ident_char(c[i - 1]))
            && {
                let mut k = i + if ch == 'b' { 2 } else { 1 };
                while at(k) == '#' {
                    k += 1;
                }
                at(k) == '"'
            }
        {
            // Raw string: r"…", r#"…"#, br"…".
            i += if ch == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while at(i) == '#' {
                hashes += 1;
                i += 1;
            }
            i += 1;
            while i < c.len() {
                if c[i] == '"' && (1..=hashes).all(|h| at(i + h) == '#') {
                    i += 1 + hashes;
                    break;
                }
                line += usize::from(c[i] == '\n');
                i += 1;
            }
        } else if ch == '"' || (ch == 'b' && at(i + 1) == '"' && !(i > 0 && ident_char(c[i - 1]))) {
            i += if ch == 'b' { 2 } else { 1 };
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                line += usize::from(at(i) == '\n');
                i += 1;
            }
            i += 1;
        } else if ch == '\'' {
            if at(i + 1) == '\\' {
                // '\n', '\'', '\u{…}'
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                // A lifetime: its name is tokenized as an identifier, harmlessly.
                i += 1;
            }
        } else if ch == 'r' && at(i + 1) == '#' && ident_start(at(i + 2)) {
            i += 2; // raw identifier: the identifier follows
        } else if ident_start(ch) {
            let s = i;
            while i < c.len() && ident_char(c[i]) {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Ident(c[s..i].iter().collect()),
                line,
            });
        } else if ch.is_ascii_digit() {
            while i < c.len() && ident_char(c[i]) {
                i += 1;
            }
        } else if ch == ':' && at(i + 1) == ':' {
            out.push(Token {
                tok: Tok::Colons,
                line,
            });
            i += 2;
        } else {
            out.push(Token {
                tok: Tok::Punct(ch),
                line,
            });
            i += 1;
        }
    }
    out
}

/// One leaf of a `use` tree.
#[derive(Clone, Debug)]
struct UseLeaf {
    /// The path as written (`crate`, `super`, `self` or a name first).
    path: Vec<String>,
    /// The name it binds (`None` for a glob).
    binds: Option<String>,
}

/// Parse the use tree at `toks[*j..]` (after `use`), up to and including `;`.
fn parse_use(toks: &[Token], j: &mut usize, prefix: &[String], out: &mut Vec<UseLeaf>) {
    let mut path = prefix.to_vec();
    if toks.get(*j).map(|t| &t.tok) == Some(&Tok::Colons) {
        *j += 1; // `use ::core::…`
    }
    loop {
        match toks.get(*j).map(|t| t.tok.clone()) {
            Some(Tok::Ident(s)) if s != "as" => {
                path.push(s);
                *j += 1;
                if toks.get(*j).map(|t| &t.tok) == Some(&Tok::Colons) {
                    *j += 1;
                    continue;
                }
                let mut binds = path.last().cloned();
                if toks.get(*j).map(|t| &t.tok) == Some(&Tok::Ident("as".into())) {
                    if let Some(Tok::Ident(alias)) = toks.get(*j + 1).map(|t| t.tok.clone()) {
                        binds = Some(alias);
                    }
                    *j += 2;
                }
                if path.last().map(String::as_str) == Some("self") {
                    // `use a::b::{self}` binds `b`.
                    path.pop();
                    if binds.as_deref() == Some("self") {
                        binds = path.last().cloned();
                    }
                }
                out.push(UseLeaf { path, binds });
                return;
            }
            Some(Tok::Punct('*')) => {
                *j += 1;
                out.push(UseLeaf { path, binds: None });
                return;
            }
            Some(Tok::Punct('{')) => {
                *j += 1;
                loop {
                    match toks.get(*j).map(|t| &t.tok) {
                        Some(Tok::Punct('}')) => {
                            *j += 1;
                            return;
                        }
                        Some(Tok::Punct(',')) => *j += 1,
                        None => return,
                        _ => parse_use(toks, j, &path, out),
                    }
                }
            }
            _ => return,
        }
    }
}

/// What one file says.
#[derive(Default, Debug)]
struct FileInfo {
    /// Names defined at the top level of the file (items and file-level modules).
    defs: BTreeSet<String>,
    /// File-level `use` bindings: name -> absolute path.
    imports: BTreeMap<String, Vec<String>>,
    /// File-level glob imports (absolute module paths).
    globs: Vec<Vec<String>>,
    /// Every reference: (absolute path, line).
    refs: Vec<(Vec<String>, usize)>,
}

/// The parsed crate.
struct Crate {
    files: BTreeMap<ModPath, (PathBuf, FileInfo)>,
}

const ITEM_KEYWORDS: [&str; 9] = [
    "fn", "struct", "enum", "const", "static", "type", "trait", "union", "mod",
];

fn module_path(rel: &Path) -> ModPath {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs").to_string();
    if !(stem == "mod" || (parts.is_empty() && stem == "lib")) {
        parts.push(stem);
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

impl Crate {
    fn load() -> Crate {
        let root = src_dir();
        let mut paths = Vec::new();
        rust_files(&root, &mut paths);
        let mods: BTreeSet<ModPath> = paths
            .iter()
            .map(|p| module_path(p.strip_prefix(&root).expect("under src")))
            .collect();
        let mut files = BTreeMap::new();
        for p in paths {
            let rel = p.strip_prefix(&root).expect("under src").to_path_buf();
            let m = module_path(&rel);
            let src = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let info = parse_file(&m, &tokenize(&src), &mods);
            files.insert(m, (rel, info));
        }
        Crate { files }
    }

    fn is_module(&self, m: &[String]) -> bool {
        self.files.contains_key(m)
    }

    /// The module `path` names: its longest prefix that is a module, following
    /// module re-exports (`pub use page_alloc::buddy;` in the root).
    fn named(&self, path: &[String], depth: usize) -> ModPath {
        let mut cur: ModPath = Vec::new();
        for (k, seg) in path.iter().enumerate() {
            let mut next = cur.clone();
            next.push(seg.clone());
            if self.is_module(&next) {
                cur = next;
                continue;
            }
            let alias = self.files.get(&cur).and_then(|(_, f)| f.imports.get(seg));
            if let Some(target) = alias {
                if depth < 16 && self.is_module(target) {
                    let mut p = target.clone();
                    p.extend_from_slice(&path[k + 1..]);
                    return self.named(&p, depth + 1);
                }
            }
            break;
        }
        cur
    }

    /// The module defining what `path` names, following every re-export.
    fn defining(&self, path: &[String], depth: usize) -> ModPath {
        let m = self.named(path, depth);
        let rest = &path[m.len().min(path.len())..];
        let Some(name) = rest.first() else {
            return m;
        };
        if depth >= 16 {
            return m;
        }
        let Some((_, f)) = self.files.get(&m) else {
            return m;
        };
        if f.defs.contains(name) {
            return m;
        }
        if let Some(target) = f.imports.get(name) {
            let mut p = target.clone();
            p.extend_from_slice(&rest[1..]);
            return self.defining(&p, depth + 1);
        }
        for g in &f.globs {
            let gm = self.named(g, depth + 1);
            if let Some((_, gf)) = self.files.get(&gm) {
                if gf.defs.contains(name) || gf.imports.contains_key(name) {
                    let mut p = gm.clone();
                    p.extend_from_slice(rest);
                    return self.defining(&p, depth + 1);
                }
            }
        }
        m
    }

    /// The module a reference from file module `from` to `path` depends on.
    fn target(&self, from: &[String], path: &[String]) -> ModPath {
        let n = self.named(path, 0);
        if n.len() < from.len() && from.starts_with(&n) {
            // The root or the file's own directory: a facade, follow the name.
            self.defining(path, 0)
        } else {
            n
        }
    }

    /// Every graph: for each parent module (the root for the top-level graph, and
    /// each directory module), the edges between its children, with the first place
    /// each is seen.
    fn graphs(&self) -> BTreeMap<ModPath, Graph> {
        let mut graphs: BTreeMap<ModPath, Graph> = BTreeMap::new();
        for m in self.files.keys() {
            if let Some((_, parent)) = m.split_last() {
                graphs
                    .entry(parent.to_vec())
                    .or_default()
                    .nodes
                    .insert(m[parent.len()].clone());
            }
        }
        for (from, (file, info)) in &self.files {
            for (path, line) in &info.refs {
                let to = self.target(from, path);
                let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
                if common >= from.len() || common >= to.len() {
                    continue; // itself, an ancestor, or (for the root) anything
                }
                let parent = from[..common].to_vec();
                let g = graphs.entry(parent).or_default();
                g.edges
                    .entry((from[common].clone(), to[common].clone()))
                    .or_insert_with(|| format!("{}:{line} `{}`", file.display(), path.join("::")));
            }
        }
        graphs
    }
}

/// Read one file: its definitions, imports and references.
fn parse_file(fmod: &[String], toks: &[Token], mods: &BTreeSet<ModPath>) -> FileInfo {
    let mut info = FileInfo::default();
    // Inline modules (`mod tests { … }`): name and brace depth inside them.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut pending_mod: Option<String> = None;
    let mut depth = 0usize;
    let mut j = 0;
    let ident = |k: usize| match toks.get(k).map(|t| &t.tok) {
        Some(Tok::Ident(s)) => Some(s.as_str()),
        _ => None,
    };
    let is = |k: usize, t: &Tok| toks.get(k).map(|x| &x.tok) == Some(t);
    while j < toks.len() {
        let cur: ModPath = fmod
            .iter()
            .cloned()
            .chain(inline.iter().map(|(n, _)| n.clone()))
            .collect();
        let file_level = inline.is_empty() && depth == 0;
        match &toks[j].tok {
            Tok::Punct('{') => {
                depth += 1;
                if let Some(name) = pending_mod.take() {
                    inline.push((name, depth));
                }
                j += 1;
            }
            Tok::Punct('}') => {
                if inline.last().is_some_and(|&(_, d)| d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                j += 1;
            }
            Tok::Punct(';') => {
                pending_mod = None;
                j += 1;
            }
            Tok::Ident(kw) if kw == "use" => {
                let line = toks[j].line;
                j += 1;
                let mut leaves = Vec::new();
                parse_use(toks, &mut j, &[], &mut leaves);
                for leaf in leaves {
                    let Some(abs) = absolute(&cur, &leaf.path, mods, true) else {
                        continue;
                    };
                    if file_level {
                        match &leaf.binds {
                            Some(name) => {
                                info.imports.insert(name.clone(), abs.clone());
                            }
                            None => info.globs.push(abs.clone()),
                        }
                    }
                    info.refs.push((abs, line));
                }
            }
            Tok::Ident(kw) if kw == "macro_rules" => {
                if let Some(name) = ident(j + 2) {
                    if file_level {
                        info.defs.insert(name.to_string());
                    }
                }
                j += 1;
            }
            Tok::Ident(kw) if ITEM_KEYWORDS.contains(&kw.as_str()) => {
                if let Some(name) = ident(j + 1) {
                    if file_level && !ITEM_KEYWORDS.contains(&name) {
                        info.defs.insert(name.to_string());
                    }
                    if kw == "mod" && is(j + 2, &Tok::Punct('{')) {
                        pending_mod = Some(name.to_string());
                    }
                }
                j += 1;
            }
            Tok::Ident(kw)
                if (kw == "crate" || kw == "super" || kw == "self")
                    && is(j + 1, &Tok::Colons)
                    && !(j > 0 && is(j - 1, &Tok::Punct('$'))) =>
            {
                let line = toks[j].line;
                let mut path = vec![kw.clone()];
                j += 1;
                while is(j, &Tok::Colons) {
                    match ident(j + 1) {
                        Some(s) => {
                            path.push(s.to_string());
                            j += 2;
                        }
                        None => break,
                    }
                }
                if let Some(abs) = absolute(&cur, &path, mods, false) {
                    info.refs.push((abs, line));
                }
            }
            _ => j += 1,
        }
    }
    info
}

/// `path` as written in module `cur`, from the crate root; `None` for another crate.
fn absolute(
    cur: &[String],
    path: &[String],
    mods: &BTreeSet<ModPath>,
    in_use: bool,
) -> Option<Vec<String>> {
    let first = path.first()?;
    let (mut base, rest): (Vec<String>, &[String]) = match first.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (cur.to_vec(), &path[1..]),
        "super" => (cur.to_vec(), path),
        _ if in_use => {
            // 2018 paths: `use table::X` in a `mod.rs` names its child module.
            let mut child = cur.to_vec();
            child.push(first.clone());
            if !mods.contains(&child) {
                return None;
            }
            (cur.to_vec(), path)
        }
        _ => return None,
    };
    let mut rest = rest;
    while rest.first().map(String::as_str) == Some("super") {
        base.pop();
        rest = &rest[1..];
    }
    base.extend_from_slice(rest);
    Some(base)
}

/// A dependency graph between the children of one module.
#[derive(Default, Debug)]
struct Graph {
    nodes: BTreeSet<String>,
    /// (from, to) -> where it is first seen.
    edges: BTreeMap<(String, String), String>,
}

impl Graph {
    fn successors(&self, n: &str) -> Vec<&str> {
        self.edges
            .keys()
            .filter(|(a, _)| a == n)
            .map(|(_, b)| b.as_str())
            .collect()
    }

    /// One cycle per strongly connected component that has one, each as the list of
    /// its nodes (the first repeated at the end).
    fn cycles(&self) -> Vec<Vec<String>> {
        self.tangles().into_iter().map(|(_, c)| c).collect()
    }

    /// The strongly connected components with more than one node (sorted), each with
    /// one of its cycles.
    fn tangles(&self) -> Vec<(Vec<String>, Vec<String>)> {
        // Tarjan's algorithm.
        struct St<'a> {
            g: &'a Graph,
            index: BTreeMap<&'a str, usize>,
            low: BTreeMap<&'a str, usize>,
            stack: Vec<&'a str>,
            on: BTreeSet<&'a str>,
            sccs: Vec<Vec<&'a str>>,
        }
        fn visit<'a>(s: &mut St<'a>, v: &'a str) {
            let i = s.index.len();
            s.index.insert(v, i);
            s.low.insert(v, i);
            s.stack.push(v);
            s.on.insert(v);
            for w in s.g.successors(v) {
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let lw = s.low[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if s.on.contains(w) {
                    let iw = s.index[w];
                    let lv = s.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if s.low[v] == s.index[v] {
                let mut scc = Vec::new();
                while let Some(w) = s.stack.pop() {
                    s.on.remove(w);
                    scc.push(w);
                    if w == v {
                        break;
                    }
                }
                s.sccs.push(scc);
            }
        }
        let mut s = St {
            g: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on: BTreeSet::new(),
            sccs: Vec::new(),
        };
        let nodes: BTreeSet<&str> = self
            .nodes
            .iter()
            .map(String::as_str)
            .chain(
                self.edges
                    .keys()
                    .flat_map(|(a, b)| [a.as_str(), b.as_str()]),
            )
            .collect();
        for n in nodes {
            if !s.index.contains_key(n) {
                visit(&mut s, n);
            }
        }
        let mut out = Vec::new();
        for mut scc in s.sccs.into_iter().filter(|c| c.len() > 1) {
            scc.sort_unstable();
            // A shortest way back to the start inside the component (breadth first).
            let inside: BTreeSet<&str> = scc.iter().copied().collect();
            let start = *scc.iter().min().expect("non-empty");
            let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
            let mut queue = std::collections::VecDeque::from([start]);
            'bfs: while let Some(v) = queue.pop_front() {
                for w in self.successors(v) {
                    if !inside.contains(w) {
                        continue;
                    }
                    if w == start {
                        prev.insert(start, v);
                        break 'bfs;
                    }
                    if !prev.contains_key(w) {
                        prev.insert(w, v);
                        queue.push_back(w);
                    }
                }
            }
            let mut cycle = vec![start.to_string()];
            let mut v = prev[start];
            while v != start {
                cycle.push(v.to_string());
                v = prev[v];
            }
            cycle.push(start.to_string());
            cycle.reverse();
            out.push((scc.iter().map(|n| n.to_string()).collect(), cycle));
        }
        out
    }

    /// The nodes in dependency order (a module after everything it uses), when the
    /// graph is acyclic.
    fn layers(&self) -> Vec<Vec<String>> {
        let mut placed: BTreeSet<&str> = BTreeSet::new();
        let mut layers = Vec::new();
        loop {
            let layer: Vec<String> = self
                .nodes
                .iter()
                .filter(|n| !placed.contains(n.as_str()))
                .filter(|n| self.successors(n).iter().all(|s| placed.contains(s)))
                .cloned()
                .collect();
            if layer.is_empty() {
                return layers;
            }
            placed.extend(
                self.nodes
                    .iter()
                    .filter(|n| layer.contains(n))
                    .map(String::as_str),
            );
            layers.push(layer);
        }
    }
}

fn describe(parent: &[String]) -> String {
    if parent.is_empty() {
        "the top-level modules of zonekit-core".to_string()
    } else {
        format!("the files of `crate::{}`", parent.join("::"))
    }
}

#[test]
fn core_has_no_module_cycles() {
    let krate = Crate::load();
    let graphs = krate.graphs();
    let mut failures = Vec::new();
    for (parent, g) in &graphs {
        println!("{}:", describe(parent));
        for (k, layer) in g.layers().iter().enumerate() {
            println!("  layer {k}: {}", layer.join(", "));
        }
        for (scc, cycle) in g.tangles() {
            let mut msg = format!(
                "cycle among {}: {} (all of {} depend on each other)",
                describe(parent),
                cycle.join(" -> "),
                scc.join(", ")
            );
            for w in cycle.windows(2) {
                let at = &g.edges[&(w[0].clone(), w[1].clone())];
                msg.push_str(&format!("\n    {} -> {}: {at}", w[0], w[1]));
            }
            failures.push(msg);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_import_graph_is_really_read() {
    // Guards the parser: an empty graph would have no cycles either.
    let krate = Crate::load();
    let graphs = krate.graphs();
    let top = &graphs[&Vec::new()];
    for (a, b) in [
        ("memtest", "memblock"),
        ("memblock", "storage"),
        ("page", "mmtypes"),
    ] {
        assert!(
            top.edges.contains_key(&(a.to_string(), b.to_string())),
            "the edge {a} -> {b} was not found: {:#?}",
            top.edges.keys()
        );
    }
    // `crate::MmConfig` (a root re-export) counts as `arch`.
    let from: ModPath = vec!["page_alloc".into()];
    assert_eq!(krate.target(&from, &["MmConfig".into()]), ["arch"]);
    for dir in ["memblock", "mm_init", "page_alloc"] {
        assert!(
            graphs
                .get(&vec![dir.to_string()])
                .is_some_and(|g| g.nodes.len() > 2),
            "{dir}/ has its files"
        );
    }
}

#[test]
fn a_cycle_is_found_and_named() {
    let mut g = Graph::default();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("e", "d")] {
        g.nodes.insert(a.into());
        g.nodes.insert(b.into());
        g.edges.insert((a.into(), b.into()), String::new());
    }
    assert_eq!(g.cycles(), vec![vec!["a", "b", "c", "a"]]);
    g.edges.remove(&("c".to_string(), "a".to_string()));
    assert!(g.cycles().is_empty());
    let layers: Vec<String> = g.layers().iter().map(|l| l.join(" ")).collect();
    assert_eq!(layers, ["d", "c e", "b", "a"]);
}

#[test]
fn use_trees_and_paths_are_parsed() {
    let src = r#"
        use crate::a::{self, b::C, d::*};
        use super::e as f;
        // crate::comment::Ignored
        fn g() { let _ = "crate::string::Ignored"; crate::h::i(); $crate::j::k(); }
        mod tests { use super::*; }
    "#;
    let mods: BTreeSet<ModPath> = BTreeSet::new();
    let info = parse_file(&["x".into(), "y".into()], &tokenize(src), &mods);
    let refs: Vec<String> = info.refs.iter().map(|(p, _)| p.join("::")).collect();
    assert_eq!(refs, ["a", "a::b::C", "a::d", "x::e", "h::i", "x::y"]);
    assert_eq!(info.imports["f"], ["x", "e"]);
    assert_eq!(info.imports["a"], ["a"]);
    assert_eq!(info.globs, [vec!["a".to_string(), "d".into()]]);
    assert!(info.defs.contains("g") && info.defs.contains("tests"));
}

#[test]
fn no_file_is_over_the_line_budget() {
    let root = src_dir();
    let mut paths = Vec::new();
    rust_files(&root, &mut paths);
    let mut over = Vec::new();
    for p in paths {
        let src = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let lines = src
            .lines()
            .take_while(|l| !l.trim_start().starts_with("#[cfg(test)]"))
            .count();
        if lines > MAX_NON_TEST_LINES {
            over.push(format!(
                "{}: {lines} non-test lines (at most {MAX_NON_TEST_LINES})",
                p.strip_prefix(&root).unwrap_or(&p).display()
            ));
        }
    }
    assert!(over.is_empty(), "files over budget:\n{}", over.join("\n"));
}
