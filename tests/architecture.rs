//! The layering ARCHITECTURE.md promises, checked on the source: no import cycle between the
//! files of a crate, and the two halves of the workspace never import each other.
//!
//! A file's imports are the `crate::`, `super::` and `self::` paths it names and the child
//! modules it declares and then uses by name; each resolves to the longest prefix that is a
//! module file. Test modules (`#[cfg(test)] mod tests`) and comments are ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `src`, keyed by its module path (`["index", "vector"]` for
/// `index/vector/mod.rs`, `[]` for `lib.rs`).
fn modules(src: &Path) -> BTreeMap<Module, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).expect("under src");
            let mut parts: Module = rel
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).expect("readable source");
            out.insert(parts, code_of(&text));
        }
    }
    out
}

/// The text without line comments and without the `#[cfg(test)] mod tests` block (by
/// convention the last item of a file).
fn code_of(text: &str) -> String {
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    code.lines()
        .map(|l| l.find("//").map_or(l, |at| &l[..at]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Paths of the form `head::a::b` in `code`, as segment lists after `head`.
fn paths_after(code: &str, head: &str) -> Vec<Vec<String>> {
    let pattern = format!("{head}::");
    let mut out = Vec::new();
    for (at, _) in code.match_indices(&pattern) {
        if code[..at].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let rest = &code[at + pattern.len()..];
        let mut segments = Vec::new();
        let mut tail = rest;
        loop {
            let end = tail.find(|c: char| !is_ident(c)).unwrap_or(tail.len());
            if end == 0 {
                // `crate::{a, b::c}`: each item of the group is a path of its own.
                if let Some(group) = tail.strip_prefix('{') {
                    let close = group.find('}').unwrap_or(group.len());
                    for item in group[..close].split(',') {
                        let first: String =
                            item.trim().chars().take_while(|&c| is_ident(c)).collect();
                        if !first.is_empty() {
                            let mut path = segments.clone();
                            path.push(first);
                            out.push(path);
                        }
                    }
                }
                break;
            }
            segments.push(tail[..end].to_string());
            tail = &tail[end..];
            match tail.strip_prefix("::") {
                Some(t) => tail = t,
                None => break,
            }
        }
        if !segments.is_empty() {
            out.push(segments);
        }
    }
    out
}

/// Child modules declared in `code` (`mod x;`, `pub mod x;`, `pub(crate) mod x;`).
fn declared_children(code: &str) -> BTreeSet<String> {
    code.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l
                .strip_prefix("pub(crate) ")
                .or_else(|| l.strip_prefix("pub "))
                .unwrap_or(l);
            let name = l.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_string())
        })
        .collect()
}

/// The file-level import graph of one crate.
fn import_graph(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let modules = modules(src);
    let resolve = |path: &[String]| -> Option<Module> {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|m| modules.contains_key(m))
    };
    let mut graph = BTreeMap::new();
    for (module, code) in &modules {
        let parent: Module = module[..module.len().saturating_sub(1)].to_vec();
        let mut targets: Vec<Module> = Vec::new();
        for p in paths_after(code, "crate") {
            targets.push(p);
        }
        for p in paths_after(code, "super") {
            targets.push([parent.clone(), p].concat());
        }
        for p in paths_after(code, "self") {
            targets.push([module.clone(), p].concat());
        }
        for child in declared_children(code) {
            let used = code.match_indices(&format!("{child}::")).any(|(at, _)| {
                !code[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| is_ident(c) || c == ':')
            });
            if used {
                targets.push([module.clone(), vec![child]].concat());
            }
        }
        let edges: BTreeSet<Module> = targets
            .iter()
            .filter_map(|t| resolve(t))
            .filter(|t| t != module)
            .collect();
        graph.insert(module.clone(), edges);
    }
    graph
}

/// Strongly connected components with more than one module (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'g Module, usize>,
        low: BTreeMap<&'g Module, usize>,
        stack: Vec<&'g Module>,
        on_stack: BTreeSet<&'g Module>,
        found: Vec<Vec<Module>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g Module) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in &self.graph[v] {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.found
}

fn assert_acyclic(krate: &str) {
    let src = workspace().join(krate).join("src");
    let graph = import_graph(&src);
    assert!(
        graph.len() > 3,
        "found only {} modules in {}",
        graph.len(),
        src.display()
    );
    let found = cycles(&graph);
    let shown: Vec<String> = found
        .iter()
        .map(|c| {
            let names: Vec<String> = c.iter().map(|m| m.join("/")).collect();
            names.join(" <-> ")
        })
        .collect();
    assert!(found.is_empty(), "import cycles in {krate}: {shown:#?}");
}

#[test]
fn memory_core_has_no_import_cycle() {
    assert_acyclic("crates/memory-core");
}

#[test]
fn bench_gate_has_no_import_cycle() {
    assert_acyclic("crates/bench-gate");
}

#[test]
fn the_cycle_finder_finds_a_planted_cycle() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path();
    std::fs::create_dir_all(src.join("store")).expect("mkdir");
    std::fs::write(src.join("lib.rs"), "mod a;\nmod store;\n").expect("write");
    std::fs::write(src.join("a.rs"), "use crate::store::Thing;\n").expect("write");
    std::fs::write(
        src.join("store/mod.rs"),
        "mod sqlite;\npub struct Thing;\nuse sqlite::Rows;\n",
    )
    .expect("write");
    std::fs::write(
        src.join("store/sqlite.rs"),
        "use crate::{a::helper, store::Thing};\n#[cfg(test)]\nmod tests { use crate::lib; }\n",
    )
    .expect("write");
    let graph = import_graph(src);
    let found = cycles(&graph);
    assert_eq!(found.len(), 1, "{graph:#?}");
    let mut members: Vec<String> = found[0].iter().map(|m| m.join("/")).collect();
    members.sort();
    assert_eq!(members, ["a", "store", "store/sqlite"]);
}

#[test]
fn the_engine_and_the_gate_never_import_each_other() {
    for (krate, other) in [
        ("crates/memory-core", "bench_gate"),
        ("crates/bench-gate", "memory_core"),
    ] {
        let manifest =
            std::fs::read_to_string(workspace().join(krate).join("Cargo.toml")).expect("manifest");
        let dependency = other.replace('_', "-");
        assert!(
            !manifest
                .lines()
                .any(|l| l.trim_start().starts_with(&dependency)),
            "{krate} depends on {dependency}"
        );
        for code in modules(&workspace().join(krate).join("src")).values() {
            assert!(
                !code.contains(&format!("{other}::")),
                "{krate} names {other}"
            );
        }
    }
}
