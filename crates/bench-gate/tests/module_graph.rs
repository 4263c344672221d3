//! The library's modules import each other in one direction only: this test reads `src/` and
//! fails, naming the circle, when a chain of `crate::` references leads back to its start.
//! (Find, parse, decide, print: a circle means two concerns have become one.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module of each source file (`output/text.rs` belongs to `output`); the crate root
/// and the binary are left out, as they declare or wire modules rather than depend on them.
fn module_of(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "main.rs" => None,
        _ => Some(first.trim_end_matches(".rs").to_string()),
    }
}

/// The code of a file without comments (doc links are not imports) and without its trailing
/// `#[cfg(test)]` module (a test may reach anywhere).
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The leading identifier of `s`.
fn ident(s: &str) -> &str {
    let s = s.trim_start();
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Every module named right after `crate::`, including each item of `crate::{a, b::c}`, and, in
/// a submodule of `output`, after `super::` (which is `output` itself).
fn references(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item_start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.insert(ident(&group[item_start..i]).to_string());
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(&group[item_start..i]).to_string());
                        item_start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest).to_string());
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let Some(module) = module_of(rel) else {
                continue;
            };
            let text = std::fs::read_to_string(&path).unwrap();
            let targets = graph.entry(module.clone()).or_default();
            for target in references(&code(&text)) {
                if target != module {
                    targets.insert(target);
                }
            }
        }
    }
    graph
}

/// A circle through the graph, if any, as the list of modules along it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = path.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Open);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut marks, &mut Vec::new()))
}

#[test]
fn the_modules_of_bench_gate_import_each_other_without_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    // The reader must see the modules it is meant to check, or the test proves nothing.
    for module in [
        "config",
        "criterion",
        "export",
        "locate",
        "source",
        "verdict",
    ] {
        assert!(
            graph.contains_key(module),
            "{module} not found in {graph:?}"
        );
    }
    assert!(graph["source"].contains("export") && graph["source"].contains("criterion"));
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import circle: {}\n{graph:#?}", cycle.join(" -> "));
    }
}

#[test]
fn the_reader_sees_grouped_imports_and_finds_a_planted_circle() {
    let refs = references(&code(
        "use crate::{config::Config, criterion::{self, Baseline}, error};\n\
         // crate::commented\nlet x = crate::stats::mean(&v);",
    ));
    let want: BTreeSet<String> = ["config", "criterion", "error", "stats"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(refs, want);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to) in [
        ("config", "criterion"),
        ("criterion", "export"),
        ("export", "config"),
    ] {
        g.entry(from.into()).or_default().insert(to.into());
    }
    let cycle = find_cycle(&g).unwrap();
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4, "{cycle:?}");
}
