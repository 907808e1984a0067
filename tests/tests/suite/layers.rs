//! The domain crate reads bottom-up: its folders are its tiers, and no import points up a tier or
//! closes a circle between files.
//!
//! | tier | where (`shared/src/`) | what |
//! |---|---|---|
//! | 0 values | `values/` | parsed values: no store, no IO |
//! | 1 tables | `tables/` | one module per table: ids, records, the store trait |
//! | 2 memory | `memory/` | the in-memory stores |
//! | 3 bundle | the files at the top | `stores`, `config`, `keys`, `mail`, `routes`, `schema`, `throttle`, `telemetry` |
//! | 4 queue | `queue/` | dispatch, the worker, retries, the dead-letter queue |
//! | 5 services | `services/` | the use cases |
//!
//! An import is a `crate::…` path in code (not in a comment, not in the unit tests after
//! `#[cfg(test)]`), a `use crate::{…}` group's items, or a `super::…` path; the crate root's
//! re-exports (`crate::Stores`, `crate::Config`, …) count as the files that define them. The rule
//! is tested on a made-up crate first, so a rule that catches nothing cannot pass unnoticed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A file's tier, from its path under `shared/src`.
fn tier(file: &str) -> (usize, &'static str) {
    match file.split('/').next().unwrap_or_default() {
        "values" => (0, "values"),
        "tables" => (1, "tables"),
        "memory" => (2, "memory"),
        "queue" => (4, "queue"),
        "services" => (5, "services"),
        _ => (3, "bundle"),
    }
}

/// What the crate root re-exports, as the module path that defines it.
const ROOT_EXPORTS: &[(&str, &str)] = &[
    ("Clock", "values::clock"),
    ("ManualClock", "values::clock"),
    ("SystemClock", "values::clock"),
    ("Timestamp", "values::clock"),
    ("Config", "config"),
    ("ConfigError", "config"),
    ("Email", "values::email"),
    ("StoreError", "values::error"),
    ("Stores", "stores"),
];

/// The code of a file that counts: before its unit tests, without comments.
fn code(source: &str) -> String {
    let before_tests = source.split("#[cfg(test)]").next().unwrap_or_default();
    before_tests.lines().map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// The child modules a file declares (`mod x;`, `pub mod x;`, `pub(crate) mod x;`).
fn child_modules(code: &str) -> Vec<String> {
    code.lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix("pub ").or_else(|| l.strip_prefix("pub(crate) ")).unwrap_or(l);
            rest.strip_prefix("mod ")?.strip_suffix(';').map(|m| m.trim().to_owned())
        })
        .collect()
}

/// Every path a file's code names from the crate root (`a::b::c`), groups expanded one level: a
/// `crate::…` or `super::…` path, and a `use` of one of the file's own child modules
/// (`pub use child::Item;` in a folder's `mod.rs` is an import of `child` too).
fn crate_paths(code: &str, module: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let children = child_modules(code);
    for line in code.lines() {
        let l = line.trim_start();
        let Some(rest) = ["pub use ", "pub(crate) use ", "use "].iter().find_map(|p| l.strip_prefix(p)) else {
            continue;
        };
        let rest = rest.trim_start_matches("self::");
        let head: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if children.contains(&head) {
            let own: Vec<&str> =
                if module.last() == Some(&"mod") { &module[..module.len() - 1] } else { module }.to_vec();
            out.push([own.join("::"), head].iter().filter(|s| !s.is_empty()).cloned().collect::<Vec<_>>().join("::"));
        }
    }
    let bytes = code.as_bytes();
    for (start, prefix) in code
        .match_indices("crate::")
        .map(|(i, _)| (i, "crate::"))
        .chain(code.match_indices("super::").map(|(i, _)| (i, "super::")))
    {
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let base: Vec<String> = if prefix == "crate::" {
            Vec::new()
        } else {
            // `super` of `services/auth` is `services`.
            module[..module.len().saturating_sub(1)].iter().map(|s| s.to_string()).collect()
        };
        let mut at = start + prefix.len();
        let mut segments = base.clone();
        loop {
            let ident: String = code[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if ident.is_empty() {
                break;
            }
            segments.push(ident.clone());
            at += ident.len();
            if code[at..].starts_with("::") {
                at += 2;
            } else {
                break;
            }
        }
        if at < bytes.len() && bytes[at] == b'{' {
            // One level of a group: `crate::{a::b, c}` names `a::b` and `c`.
            let mut depth = 0;
            let mut item = String::new();
            for c in code[at..].chars() {
                match c {
                    '{' => {
                        depth += 1;
                        if depth > 1 {
                            item.push(c);
                        }
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                        item.push(c);
                    }
                    ',' if depth == 1 => {
                        push_item(&mut out, &segments, &item);
                        item.clear();
                    }
                    _ => item.push(c),
                }
            }
            push_item(&mut out, &segments, &item);
        } else if !segments.is_empty() {
            out.push(segments.join("::"));
        }
    }
    out
}

fn push_item(out: &mut Vec<String>, segments: &[String], item: &str) {
    let head: String =
        item.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':').collect();
    if !head.is_empty() && head != "self" {
        let mut path = segments.to_vec();
        path.push(head.trim_end_matches(':').to_owned());
        out.push(path.join("::"));
    }
}

/// The file a crate path lands in: its longest prefix that is a module of `modules`.
fn file_of<'m>(path: &str, modules: &'m BTreeMap<String, String>) -> Option<&'m String> {
    let mut segments: Vec<&str> = path.split("::").collect();
    if segments.len() == 1
        && let Some((_, module)) = ROOT_EXPORTS.iter().find(|(name, _)| *name == segments[0])
    {
        return modules.get(*module);
    }
    while !segments.is_empty() {
        if let Some(file) = modules.get(&segments.join("::")) {
            return Some(file);
        }
        segments.pop();
    }
    None
}

/// Every violation of the direction rule in a crate given as `(path under src, source)`: an import
/// up a tier, and each circle of imports between files.
fn violations(files: &[(String, String)]) -> Vec<String> {
    let module_of = |file: &str| -> String {
        let trimmed = file.trim_end_matches(".rs");
        let trimmed = trimmed.strip_suffix("/mod").unwrap_or(trimmed);
        trimmed.replace('/', "::")
    };
    let modules: BTreeMap<String, String> =
        files.iter().filter(|(f, _)| f != "lib.rs").map(|(f, _)| (module_of(f), f.clone())).collect();
    let mut out = Vec::new();
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (file, source) in files.iter().filter(|(f, _)| f != "lib.rs") {
        let module = module_of(file);
        let segments: Vec<&str> = module.split("::").collect();
        // A folder's mod.rs is the folder itself: its `super` is the folder's parent.
        let own = if file.ends_with("mod.rs") { [segments.as_slice(), &["mod"]].concat() } else { segments.clone() };
        for path in crate_paths(&code(source), &own) {
            let Some(target) = file_of(&path, &modules) else { continue };
            if target == file {
                continue;
            }
            let (from, from_name) = tier(file);
            let (to, to_name) = tier(target);
            if to > from {
                out.push(format!("{file} ({from_name}) imports {path} from {target} ({to_name}), a tier above"));
            }
            edges.entry(file.as_str()).or_default().insert(target.as_str());
        }
    }
    out.extend(circles(&edges).into_iter().map(|c| format!("a circle of imports: {}", c.join(" -> "))));
    out
}

/// Each circle of `edges` once, found by depth-first search (Tarjan's components of more than one
/// file), written as the files of the component.
fn circles<'a>(edges: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Vec<Vec<&'a str>> {
    struct Search<'a, 'e> {
        edges: &'e BTreeMap<&'a str, BTreeSet<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<&'a str>>,
    }
    impl<'a> Search<'a, '_> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for &w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut search = Search {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for &v in edges.keys() {
        if !search.index.contains_key(v) {
            search.visit(v);
        }
    }
    search.found
}

#[test]
fn the_direction_rule_catches_an_import_up_a_tier_and_a_circle() {
    let crate_of = |files: &[(&str, &str)]| -> Vec<(String, String)> {
        files.iter().map(|(f, s)| (f.to_string(), s.to_string())).collect()
    };
    let clean = crate_of(&[
        ("lib.rs", "pub mod values; pub mod tables; pub mod services;"),
        ("values/email.rs", "pub struct Email;"),
        ("tables/users.rs", "use crate::values::email::Email;\n// crate::services::auth in prose is no import\n"),
        ("tables/sessions.rs", "use crate::{tables::users::User, values::email};"),
        ("services/auth.rs", "use crate::Stores; use super::access::Access;"),
        ("services/access.rs", "fn f() { crate::tables::users::f() }\n#[cfg(test)]\nuse crate::services::auth;"),
        ("stores.rs", "use crate::tables::users::UserStore;"),
    ]);
    assert_eq!(violations(&clean), Vec::<String>::new());

    let mut up = clean.clone();
    up.push(("tables/cache.rs".into(), "use crate::{values::clock, services::auth::Auth};".into()));
    let found = violations(&up);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("tables/cache.rs (tables) imports services::auth::Auth"), "{found:?}");

    let mut root_export = clean.clone();
    root_export.push(("tables/jobs.rs".into(), "fn f(s: &crate::Stores) {}".into()));
    assert!(violations(&root_export)[0].contains("from stores.rs (bundle)"), "{:?}", violations(&root_export));

    let mut facade = clean.clone();
    facade.push(("queue/mod.rs".into(), "mod worker;\npub use worker::Worker;\npub struct Dispatcher;".into()));
    facade.push(("queue/worker.rs".into(), "use super::Dispatcher;\npub struct Worker;".into()));
    let found = violations(&facade);
    assert_eq!(found, vec!["a circle of imports: queue/mod.rs -> queue/worker.rs".to_owned()], "a facade's circle");

    let mut circle = clean.clone();
    circle.retain(|(f, _)| f != "services/access.rs");
    circle.push(("services/access.rs".into(), "use super::auth::Auth;".into()));
    let found = violations(&circle);
    assert_eq!(found, vec!["a circle of imports: services/access.rs -> services/auth.rs".to_owned()]);
}

#[test]
fn the_domain_crate_reads_bottom_up() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/src");
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(&src).expect("under src").display().to_string();
                files.push((rel, std::fs::read_to_string(&path).expect("readable")));
            }
        }
    }
    files.sort();
    assert!(files.len() > 40, "shared/src should hold the domain crate, found {} files", files.len());
    let found = violations(&files);
    assert!(
        found.is_empty(),
        "\nthe domain crate's direction rule: {} violation(s)\n  {}\n",
        found.len(),
        found.join("\n  ")
    );
}
