//! The layering the source tree must keep, read from the files themselves:
//!
//! - the domain crate (`shared/src`) links no AWS SDK crate: the adapters are `gatehouse-aws` (`aws/`);
//! - a function crate (`functions/*`) depends on no `aws-sdk-*` crate, names no `aws_sdk_*` crate in
//!   its code, and depends on no other function crate;
//! - a function's source file stays small: at most [`MAX_FUNCTION_LINES`] lines of code before its
//!   tests, unless it says why not in a `// shape: <reason>` line.
//!
//! Each rule is a function over text, tested on samples first so a rule that catches nothing
//! cannot pass unnoticed.

use std::path::{Path, PathBuf};

/// Lines of code (not blank, not a `//` comment, before `#[cfg(test)]`) a function file may have.
const MAX_FUNCTION_LINES: usize = 150;

/// The function crates, by package name.
const FUNCTION_CRATES: &[&str] = &[
    "gatehouse-login",
    "gatehouse-tokens",
    "gatehouse-token-check",
    "gatehouse-password-reset",
    "gatehouse-job-worker",
    "gatehouse-pages",
    "gatehouse-oauth",
];

/// The one allowed edge between function crates: the hosted pages call the JSON API's route
/// tables in process (so no rule is implemented twice), and only the HTTP functions'.
const PAGES_CALL: &[&str] = &["gatehouse-login", "gatehouse-tokens", "gatehouse-password-reset"];

/// The function crates the operator CLI links: the HTTP functions' route tables, which
/// `gatehouse serve` serves and `gatehouse openapi` documents. Nothing else of a function: the
/// job registry and the mailer choice are the domain's and the AWS crate's.
const CLI_SERVES: &[&str] =
    &["gatehouse-login", "gatehouse-tokens", "gatehouse-password-reset", "gatehouse-pages", "gatehouse-oauth"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf()
}

/// Every `.rs` file under `dir`, sorted, skipping any directory `skip` says to.
fn rust_files(dir: &Path, skip: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if !skip(&path) {
                out.extend(rust_files(&path, skip));
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

/// The function crates' directories.
fn function_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(root().join("functions"))
        .expect("functions/")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// Fails listing every violation, one `path:line: what` a line.
fn assert_none(rule: &str, violations: Vec<String>) {
    assert!(violations.is_empty(), "\n{rule}: {} violation(s)\n  {}\n", violations.len(), violations.join("\n  "));
}

// ---------------------------------------------------------------- the rules, over text

/// 1-based lines of `source` whose code names an `aws_sdk_*` crate: an `aws_sdk_*` path segment
/// followed by `::`, or the first segment of a `use` or `extern crate`. Comments do not count, and
/// neither does an item merely named so (`gatehouse_aws::aws_sdk_config()` is gatehouse's).
fn sdk_mentions(source: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    for (i, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let trimmed = code.trim_start();
        let first_segment = ["use ", "pub use ", "pub(crate) use ", "extern crate "]
            .iter()
            .find_map(|p| trimmed.strip_prefix(p))
            .map(|rest| rest.trim_start_matches("::").trim_start_matches('{').trim_start());
        let names_crate = first_segment.is_some_and(|s| s.starts_with("aws_sdk_"))
            || code.match_indices("aws_sdk_").any(|(at, _)| {
                let before = code[..at].chars().next_back();
                let ident_len =
                    code[at..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(code.len() - at);
                !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                    && code[at + ident_len..].starts_with("::")
            });
        if names_crate {
            lines.push(i + 1);
        }
    }
    lines
}

/// What is wrong with a function crate's `Cargo.toml` (`own` is its package name): each
/// `(line, problem)` for an `aws-sdk-*` dependency in any dependency table, and for another function
/// crate in `[dependencies]` (by name, by `package = ` or by path).
fn cargo_violations(manifest: &str, own: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut section = String::new();
    for (i, raw) in manifest.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.starts_with('[') {
            section = line.trim_matches(|c| c == '[' || c == ']').trim().to_owned();
        }
        let table = section.rsplit('.').next().unwrap_or_default();
        let (deps_table, dep_in_header) = match section.split_once('.') {
            // `[dependencies.name]`, `[target.'cfg(..)'.dependencies]`
            Some((head, name)) if head.ends_with("dependencies") => (head.to_owned(), Some(name.to_owned())),
            _ if table.ends_with("dependencies") => (table.to_owned(), None),
            _ => continue,
        };
        let key = if line.starts_with('[') {
            dep_in_header.clone().unwrap_or_default()
        } else {
            line.split(['=', '.']).next().unwrap_or_default().trim().trim_matches('"').to_owned()
        };
        if key.is_empty() && !line.contains("package") && !line.contains("path") {
            continue;
        }
        if key.starts_with("aws-sdk-") || line.contains("\"aws-sdk-") {
            out.push((i + 1, format!("an AWS SDK dependency in [{section}]: `{line}`")));
        }
        if deps_table == "dependencies" {
            let allowed = |c: &str| match own {
                "gatehouse-pages" => PAGES_CALL.contains(&c),
                "gatehouse-cli" => CLI_SERVES.contains(&c),
                _ => false,
            };
            let sibling = FUNCTION_CRATES.iter().filter(|c| **c != own && !allowed(c)).find(|c| {
                let dir = c.trim_start_matches("gatehouse-");
                key == **c
                    || line.contains(&format!("package = \"{c}\""))
                    || line.contains(&format!("\"../{dir}\""))
                    || line.contains(&format!("functions/{dir}\""))
            });
            if let Some(c) = sibling {
                out.push((i + 1, format!("depends on the function crate {c}: `{line}`")));
            }
        }
    }
    out
}

/// `Some(lines of code)` when a function source file has more than [`MAX_FUNCTION_LINES`] of
/// them and no `// shape: <reason>` line.
fn too_long(source: &str) -> Option<usize> {
    let exempt = source.lines().any(|l| l.trim().strip_prefix("// shape:").is_some_and(|why| !why.trim().is_empty()));
    let lines: Vec<&str> = source.lines().map(str::trim).collect();
    // The test module starts at `#[cfg(test)]` followed by `mod`; a `#[cfg(test)]` on anything
    // else (an import, a helper) does not end the count.
    let tests_start =
        lines.windows(2).position(|w| w[0] == "#[cfg(test)]" && w[1].starts_with("mod ")).unwrap_or(lines.len());
    let code = lines[..tests_start].iter().filter(|l| !l.is_empty() && !l.starts_with("//")).count();
    (code > MAX_FUNCTION_LINES && !exempt).then_some(code)
}

// ---------------------------------------------------------------- the rules catch what they should

#[test]
fn the_sdk_rule_catches_imports_and_paths_and_nothing_else() {
    let sample = "\
use gatehouse::Stores;
use aws_sdk_dynamodb::types::AttributeValue;
// aws_sdk_dynamodb::Client in a comment is fine
let c = aws_sdk_sqs::Client::new(&sdk); // and a comment after code
let sdk = gatehouse_aws::aws_sdk_config().await;
pub use aws_sdk_sesv2 as ses;
use ::aws_sdk_s3;
use {aws_sdk_kms::Client};
let x = gatehouse_aws::aws_sdk_dynamodb::Client::new(&sdk);
let not_it = my_aws_sdk_thing::f();
";
    assert_eq!(sdk_mentions(sample), [2, 4, 6, 7, 8, 9]);
    assert!(sdk_mentions("use gatehouse_aws::{DynamoClient, SdkConfig};\n").is_empty());
}

#[test]
fn the_cargo_rule_catches_sdk_and_sibling_dependencies() {
    let manifest = r#"[package]
name = "gatehouse-login"
description = "mentions aws-sdk-dynamodb in prose only"

[dependencies]
gatehouse = { workspace = true }
aws-sdk-dynamodb = { workspace = true }
gatehouse-tokens = { workspace = true }
gatehouse-login = { workspace = true }
sqs = { package = "aws-sdk-sqs", version = "1" }
reset = { path = "../password-reset" }

[dependencies.gatehouse-job-worker]
workspace = true

[dev-dependencies]
gatehouse-token-check = { workspace = true }
aws-sdk-sesv2.workspace = true

[target.'cfg(unix)'.dependencies]
aws-sdk-s3 = "1"
"#;
    let found: Vec<usize> = cargo_violations(manifest, "gatehouse-login").into_iter().map(|(l, _)| l).collect();
    // Itself (line 9) and a function crate among dev-dependencies (line 17) are fine.
    assert_eq!(found, [7, 8, 10, 11, 13, 18, 21]);
    // The pages may call the HTTP functions' route tables, and no other function crate.
    let pages = "[package]\nname = \"gatehouse-pages\"\n\n[dependencies]\ngatehouse-login = { workspace = true }\n\
                 gatehouse-tokens = { workspace = true }\ngatehouse-job-worker = { workspace = true }\n";
    let found: Vec<usize> = cargo_violations(pages, "gatehouse-pages").into_iter().map(|(l, _)| l).collect();
    assert_eq!(found, [7], "only the job worker is refused");
    let clean = "[package]\nname = \"gatehouse-tokens\"\n\n[dependencies]\ngatehouse-http = { workspace = true }\n";
    assert!(cargo_violations(clean, "gatehouse-tokens").is_empty());
}

#[test]
fn the_size_rule_counts_code_before_the_tests_and_honours_a_reason() {
    let code = |n: usize| (0..n).map(|i| format!("let x{i} = {i};\n")).collect::<String>();
    let padding = "\n// a comment\n    //! an inner doc\n\n".repeat(100);
    assert_eq!(too_long(&code(MAX_FUNCTION_LINES)), None);
    assert_eq!(
        too_long(&format!("{padding}{}{padding}", code(MAX_FUNCTION_LINES))),
        None,
        "blanks and comments are free"
    );
    assert_eq!(too_long(&code(MAX_FUNCTION_LINES + 1)), Some(MAX_FUNCTION_LINES + 1));
    let tested = format!("{}#[cfg(test)]\nmod tests {{\n{}}}\n", code(MAX_FUNCTION_LINES), code(500));
    assert_eq!(too_long(&tested), None, "tests do not count");
    let early = format!("#[cfg(test)]\nuse std::fmt;\n{}", code(400));
    assert_eq!(too_long(&early), Some(402), "a cfg(test) import does not end the count");
    let excused = format!("// shape: one table of routes, read top to bottom\n{}", code(400));
    assert_eq!(too_long(&excused), None);
    let no_reason = format!("// shape:\n{}", code(400));
    assert_eq!(too_long(&no_reason), Some(400), "an exemption needs a reason");
}

// ---------------------------------------------------------------- the tree keeps them

/// `cargo tree` over `edges` for `args` (the workspace's lock file, offline), one `{p} {f}` a line.
fn cargo_tree(args: &[&str], edges: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = std::process::Command::new(&cargo)
        .current_dir(root())
        .args(["tree", "--offline", "-e", edges, "-f", "{p} {f}", "--prefix", "none"])
        .args(args)
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree -e {edges}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("cargo tree prints UTF-8")
}

/// The domain crate builds, and its unit tests run, without the AWS SDK: no `aws-sdk-*` crate in
/// its dependency tree (normal or dev), no file of it naming one. The adapters are `gatehouse-aws`.
#[test]
fn the_domain_crate_links_no_aws_sdk() {
    let shared = root().join("shared/src");
    let files = rust_files(&shared, &|_| false);
    assert!(files.len() > 10, "shared/src should hold the domain crate, found {} files", files.len());
    let mut violations: Vec<String> = files
        .iter()
        .flat_map(|f| {
            sdk_mentions(&read(f)).into_iter().map(move |l| format!("{}:{l}: names an aws_sdk_* crate", rel(f)))
        })
        .collect();
    let tree = cargo_tree(&["-p", "gatehouse"], "normal,dev");
    assert!(tree.lines().any(|l| l.starts_with("sha2 ")), "cargo tree listed:\n{tree}");
    violations.extend(
        tree.lines()
            .filter(|l| l.starts_with("aws-sdk-") || l.starts_with("aws-config ") || l.starts_with("aws-smithy-"))
            .map(|l| format!("cargo tree -p gatehouse: {l}")),
    );
    assert_none("the AWS SDK in the domain crate", violations);
}

#[test]
fn function_crates_use_no_sdk_and_no_other_function() {
    let dirs = function_dirs();
    let mut names = Vec::new();
    let mut violations = Vec::new();
    for dir in &dirs {
        let manifest_path = dir.join("Cargo.toml");
        let manifest = read(&manifest_path);
        let name = manifest
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = ").map(|n| n.trim_matches('"').to_owned()))
            .unwrap_or_else(|| panic!("{}: no package name", rel(&manifest_path)));
        for (line, problem) in cargo_violations(&manifest, &name) {
            violations.push(format!("{}:{line}: {problem}", rel(&manifest_path)));
        }
        for f in rust_files(dir, &|d| d.file_name().is_some_and(|n| n == "target")) {
            for line in sdk_mentions(&read(&f)) {
                violations.push(format!("{}:{line}: names an aws_sdk_* crate", rel(&f)));
            }
        }
        names.push(name);
    }
    names.sort();
    let mut expected: Vec<String> = FUNCTION_CRATES.iter().map(|c| c.to_string()).collect();
    expected.sort();
    assert_eq!(names, expected, "functions/* is not the list of function crates this test knows");
    assert_none("function crates reaching past gatehouse", violations);
}

#[test]
fn the_cli_rule_allows_the_route_tables_and_nothing_else_of_a_function() {
    let manifest = "[package]\nname = \"gatehouse-cli\"\n[dependencies]\ngatehouse-login = { workspace = true }\n\
                    gatehouse-job-worker = { path = \"../functions/job-worker\" }\n\
                    [dev-dependencies]\ngatehouse-token-check = { workspace = true }\n";
    let found: Vec<String> = cargo_violations(manifest, "gatehouse-cli")
        .into_iter()
        .filter(|(_, p)| p.contains("function crate"))
        .map(|(_, p)| p)
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("gatehouse-job-worker"), "{found:?}");
}

/// The CLI links a function crate only for its route table (`serve`, `openapi`): never the job
/// worker or the authorizer, whose logic it once reused.
#[test]
fn the_cli_links_no_function_crate_but_the_route_tables() {
    let path = root().join("cli/Cargo.toml");
    let violations = cargo_violations(&read(&path), "gatehouse-cli")
        .into_iter()
        .filter(|(_, problem)| problem.contains("function crate"))
        .map(|(line, problem)| format!("{}:{line}: {problem}", rel(&path)))
        .collect();
    assert_none("the CLI reaching into a function crate", violations);
}

#[test]
fn function_sources_stay_small() {
    let mut violations = Vec::new();
    let mut seen = 0;
    for dir in function_dirs() {
        for f in rust_files(&dir.join("src"), &|_| false) {
            seen += 1;
            if let Some(n) = too_long(&read(&f)) {
                violations.push(format!(
                    "{}:1: {n} lines of code before #[cfg(test)] (at most {MAX_FUNCTION_LINES}; \
                     split it, or add a `// shape: <reason>` line)",
                    rel(&f)
                ));
            }
        }
    }
    assert!(seen >= 10, "expected the functions' sources, found {seen} files");
    assert_none("function source files over the size limit", violations);
}

/// A function crate switches off the test harness of a target that holds no tests (each harness
/// is one more link of the whole SDK); a test written there later must switch it back on, or it
/// would never run.
#[test]
fn no_test_hides_in_a_target_whose_harness_is_off() {
    let mut violations = Vec::new();
    for dir in function_dirs() {
        let manifest = read(&dir.join("Cargo.toml"));
        let off = |section: &str| {
            manifest.split("\n[").any(|s| s.starts_with(section) && s.lines().any(|l| l.trim() == "test = false"))
        };
        for file in rust_files(&dir.join("src"), &|_| false) {
            let is_main = file.file_name().is_some_and(|n| n == "main.rs");
            let harness_off = if is_main { off("[bin]]") } else { off("lib]") };
            let text = read(&file);
            if harness_off && (text.contains("#[cfg(test)]") || text.contains("#[test]")) {
                violations.push(format!("{}: holds tests but its target has `test = false`", rel(&file)));
            }
        }
    }
    assert_none("tests in a target without a harness", violations);
}

/// Integration tests live in two binaries: `suite` (one module per area) and `contract`.
#[test]
fn integration_tests_are_modules_of_the_two_binaries() {
    let loose: Vec<String> = std::fs::read_dir(root().join("tests/tests"))
        .expect("tests/tests")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| format!("{}: a test binary of its own; make it a module of tests/tests/suite/", rel(&p)))
        .collect();
    assert_none("integration test binaries", loose);
}

/// A `cargo tree -f '{p} {f}' --prefix none` listing: each package as cargo names it (`name
/// version`, with ` (proc-macro)` for a host build, which resolves its features apart) → its
/// features, as written.
fn feature_sets(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim_end_matches(" (*)");
            let mut words = l.splitn(3, ' ');
            let (name, version) = (words.next()?, words.next()?);
            let rest = words.next().unwrap_or("");
            let (host, features) = match rest.strip_prefix("(proc-macro)") {
                Some(f) => (" (proc-macro)", f.trim_start()),
                None => ("", rest),
            };
            Some((format!("{name} {version}{host}"), features.to_owned()))
        })
        .collect()
}

/// Packages whose features differ between two `cargo tree -f '{p} {f}' --prefix none` listings.
fn feature_drift(bins: &str, tests: &str) -> Vec<String> {
    let parse = feature_sets;
    let (bins, tests) = (parse(bins), parse(tests));
    bins.iter()
        .filter_map(|(pkg, features)| match tests.get(pkg) {
            Some(other) if other != features => {
                Some(format!("{pkg}: [{features}] in a bins build, [{other}] in a test build"))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn the_feature_rule_catches_a_feature_only_tests_turn_on() {
    let bins = "num-traits v0.2.19 \nserde v1.0.1 derive,std\nrand v0.9.0 std (*)\n";
    let same = "num-traits v0.2.19 \nserde v1.0.1 derive,std\nrand v0.9.0 std\nproptest v1.0.0 std\n";
    assert!(feature_drift(bins, same).is_empty());
    let drift = "num-traits v0.2.19 std\nserde v1.0.1 derive,std\nrand v0.9.0 std\n";
    assert_eq!(feature_drift(bins, drift), vec!["num-traits v0.2.19: [] in a bins build, [std] in a test build"]);
    // A proc-macro (a host build) is its own entry, not the same crate's target build.
    let sets = feature_sets("serde_derive v1.0.1 (proc-macro) default\nserde_derive v1.0.1 \n");
    assert_eq!(sets.get("serde_derive v1.0.1 (proc-macro)").map(String::as_str), Some("default"));
    assert_eq!(sets.get("serde_derive v1.0.1").map(String::as_str), Some(""));
}

/// A `--bins` build (scripts/test's first step, and what the tour and browser scripts build) and the
/// test build must resolve every shared dependency's features alike, or cargo compiles those crates
/// (the whole AWS SDK, through its signer) twice. `shared/Cargo.toml` turns on what the
/// dev-dependencies would otherwise turn on alone.
#[test]
fn bins_and_tests_resolve_the_same_features() {
    let tree = |edges: &str| cargo_tree(&["--workspace"], edges);
    let (bins, tests) = (tree("normal,build"), tree("normal,build,dev"));
    // The listing is the one the rule reads: the SDK's signer, where the drift did its damage, is in it.
    assert!(feature_sets(&bins).keys().any(|p| p.starts_with("aws-sigv4 ")), "cargo tree listed:\n{bins}");
    assert_none(
        "features only a test build turns on (add them to shared/Cargo.toml's unification block)",
        feature_drift(&bins, &tests),
    );
}

/// A `rust-version` as numbers (`1.94.1` → `[1, 94, 1]`); a missing part is 0.
fn version(v: &str) -> [u64; 3] {
    let mut parts = v.split('.').map(|p| p.parse().unwrap_or(0));
    [parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0)]
}

/// The members whose `rust-version` is below what `packages` (from `cargo metadata`) ask: a
/// dependency's own `rust-version`, and 1.88 for the let-chains the code uses.
fn rust_version_gaps(metadata: &serde_json::Value) -> Vec<String> {
    let members: Vec<&str> =
        metadata["workspace_members"].as_array().into_iter().flatten().filter_map(|m| m.as_str()).collect();
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let (ours, theirs): (Vec<_>, Vec<_>) =
        packages.iter().partition(|p| p["id"].as_str().is_some_and(|id| members.contains(&id)));
    let (needed, by) = theirs
        .iter()
        .filter_map(|p| Some((version(p["rust_version"].as_str()?), p["name"].as_str().unwrap_or("?"))))
        .chain([(version("1.88"), "let-chains")])
        .max()
        .unwrap_or(([0; 3], "nothing"));
    ours.iter()
        .filter(|p| p["rust_version"].as_str().is_none_or(|v| version(v) < needed))
        .map(|p| format!("{} says rust-version {}, but {by} needs {needed:?}", p["name"], p["rust_version"]))
        .collect()
}

#[test]
fn the_rust_version_rule_catches_a_dependency_that_needs_more() {
    let meta = serde_json::json!({
        "workspace_members": ["ours"],
        "packages": [
            {"id": "ours", "name": "gatehouse", "rust_version": "1.90"},
            {"id": "dep", "name": "aws-types", "rust_version": "1.94.1"},
        ],
    });
    let gaps = rust_version_gaps(&meta);
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert!(gaps[0].contains("aws-types needs [1, 94, 1]"), "{gaps:?}");
    let honest = serde_json::json!({
        "workspace_members": ["ours"],
        "packages": [{"id": "ours", "name": "gatehouse", "rust_version": "1.94.1"}, {"id": "dep", "name": "x"}],
    });
    assert_eq!(rust_version_gaps(&honest), Vec::<String>::new());
}

/// `rust-version` is no lower than any dependency's, so it never promises a toolchain the lock
/// file cannot build with (CI builds with the machine's newer one).
#[test]
fn rust_version_is_at_least_every_dependency_s() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = std::process::Command::new(&cargo)
        .current_dir(root())
        .args(["metadata", "--offline", "--format-version", "1"])
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    assert!(metadata["packages"].as_array().is_some_and(|p| p.len() > 100), "cargo metadata listed too little");
    assert_none("rust-version below what the dependencies need", rust_version_gaps(&metadata));
}
