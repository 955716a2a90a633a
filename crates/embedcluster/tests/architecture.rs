//! The house rules of the core crate, checked on its sources: every module sits on a
//! floor and imports only modules on lower floors (so there is no import cycle), and only
//! the readers, the jobs and `persist` open files.
//!
//! A module's imports are the `crate::<module>` paths in its code (comments and doc
//! comments, where links to any module are fine, are left out). `cargo test --test
//! architecture -- --nocapture` prints the module graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Floors, lowest first. A module may use modules of lower floors only.
const FLOORS: &[&[&str]] = &[
    &["dtype", "units"],
    &["error"],
    &["memory"],
    &["runtime"],
    &["io"],
    &["linalg"],
    &["preprocessing", "metrics", "summary"],
    &["decomposition", "cluster", "neighbors"],
    &["pipeline"],
    &["persist"],
    &["jobs"],
    &["report"],
    &["fuzzing"],
];

fn floor_of(module: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&module))
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/` with the top-level module it belongs to.
fn files() -> Vec<(String, PathBuf)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let root = src_dir();
    let mut all = Vec::new();
    walk(&root, &mut all);
    all.sort();
    all.into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(&root).unwrap().to_path_buf();
            let first = rel.components().next()?.as_os_str().to_str()?.to_string();
            let module = first.trim_end_matches(".rs").to_string();
            (module != "lib").then_some((module, p))
        })
        .collect()
}

/// The code of a file without its comments (line comments, doc comments, block comments)
/// and string literals.
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && i + 1 < b.len() && b[i + 1] == b'/' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && i + 1 < b.len() && b[i + 1] == b'*' {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// `crate::<name>` references in `code`, and the names of `use crate::{a, b::c}` groups.
fn imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, path) in files() {
        let code = code_of(&std::fs::read_to_string(&path).unwrap());
        let deps = g.entry(module.clone()).or_default();
        for d in imports(&code) {
            // the crate-root re-exports (`crate::Error`, `crate::Real`) belong to their floors
            let d = match d.as_str() {
                "Error" | "Result" => "error".to_string(),
                "Real" | "DType" => "dtype".to_string(),
                _ => d,
            };
            if d != module {
                deps.insert(d);
            }
        }
    }
    g
}

#[test]
fn every_module_imports_only_lower_floors() {
    let g = graph();
    let mut bad = Vec::new();
    for (m, deps) in &g {
        let Some(fm) = floor_of(m) else {
            bad.push(format!("module `{m}` has no floor in FLOORS"));
            continue;
        };
        for d in deps {
            match floor_of(d) {
                Some(fd) if fd < fm => {}
                Some(fd) => bad.push(format!("`{m}` (floor {fm}) imports `{d}` (floor {fd})")),
                None => bad.push(format!("`{m}` imports `{d}`, which has no floor")),
            }
        }
    }
    for (m, deps) in &g {
        println!(
            "{m:>14} -> {}",
            deps.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_module_graph_has_no_cycle() {
    let g = graph();
    // Kahn's algorithm: a cycle leaves modules that never reach in-degree 0
    let mut indeg: BTreeMap<&str, usize> = g.keys().map(|k| (k.as_str(), 0)).collect();
    for deps in g.values() {
        for d in deps {
            if let Some(n) = indeg.get_mut(d.as_str()) {
                *n += 1;
            }
        }
    }
    let mut ready: Vec<&str> = indeg
        .iter()
        .filter(|(_, &n)| n == 0)
        .map(|(k, _)| *k)
        .collect();
    let mut seen = 0;
    while let Some(m) = ready.pop() {
        seen += 1;
        for d in &g[m] {
            if let Some(n) = indeg.get_mut(d.as_str()) {
                *n -= 1;
                if *n == 0 {
                    ready.push(d.as_str());
                }
            }
        }
    }
    let left: Vec<&str> = indeg
        .iter()
        .filter(|(_, &n)| n > 0)
        .map(|(k, _)| *k)
        .collect();
    assert_eq!(seen, g.len(), "modules on a cycle: {left:?}");
}

#[test]
fn only_readers_jobs_and_persist_open_files() {
    let openers = [
        "File::open",
        "File::create",
        "fs::read",
        "fs::write",
        "AtomicFile::create",
        "OpenOptions",
    ];
    let allowed = ["io", "jobs", "persist", "fuzzing", "memory"];
    let mut bad = Vec::new();
    for (module, path) in files() {
        if allowed.contains(&module.as_str()) {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(&path).unwrap());
        // unit tests may write temporary files
        let code = code.split("#[cfg(test)]").next().unwrap_or("");
        for o in openers {
            if code.contains(o) {
                bad.push(format!("{} uses {o}", path.display()));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn no_environment_variable_is_read_by_the_core() {
    let mut bad = Vec::new();
    for (_, path) in files() {
        let code = code_of(&std::fs::read_to_string(&path).unwrap());
        let code = code.split("#[cfg(test)]").next().unwrap_or("");
        if code.contains("env::var") {
            bad.push(path.display().to_string());
        }
    }
    assert!(
        bad.is_empty(),
        "environment read in {bad:?}: front ends pass settings in"
    );
}

#[test]
fn the_checker_sees_imports() {
    let code = code_of("use crate::io::X; // crate::jobs\nfn f() { crate::linalg::gemm(); let s = \"crate::persist\"; }\nuse crate::{cluster, memory::A};");
    let got: Vec<String> = imports(&code).into_iter().collect();
    assert_eq!(got, ["cluster", "io", "linalg", "memory"]);
}
