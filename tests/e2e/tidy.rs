//! docs/ARCHITECTURE.md cannot drift from the code: every file path it names
//! in backticks exists, and every Rust name it gives in backticks (a type, a
//! function, `module::item`) still appears in the sources.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whole words of the sources: identifiers as the code spells them.
fn words(files: &[PathBuf]) -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    for file in files.iter().filter(|f| f.extension().is_some_and(|e| e == "rs")) {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if !word.is_empty() {
                words.insert(word.to_owned());
            }
        }
    }
    words
}

/// The backticked spans of a Markdown text, outside fenced blocks.
fn spans(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut parts = line.split('`');
        parts.next();
        while let (Some(inside), Some(_)) = (parts.next(), parts.next()) {
            out.push(inside.to_owned());
        }
    }
    out
}

fn is_path(span: &str) -> bool {
    !span.contains(' ')
        && !span.starts_with('/')
        && !span.starts_with("../")
        && !span.contains('{')
        && [".rs", ".md", ".toml", ".bin", ".sh", ".json", ".py"].iter().any(|ext| span.ends_with(ext))
}

/// `Name`, `name()`, `a::b::Name`, `Type::method`: a Rust name to look up.
fn rust_name(span: &str) -> Option<Vec<String>> {
    let span = span.strip_suffix("()").unwrap_or(span);
    let segments: Vec<&str> = span.split("::").collect();
    let ident = |s: &str| {
        let mut chars = s.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !segments.iter().all(|s| ident(s)) {
        return None;
    }
    // Single lower-case words (`validated`, `admin`, `serve`) are prose, not names.
    let single = segments.len() == 1;
    let code_like = |s: &str| s.contains('_') || s.chars().next().is_some_and(|c| c.is_ascii_uppercase());
    if single && !code_like(segments[0]) {
        return None;
    }
    Some(segments.into_iter().map(str::to_owned).collect())
}

/// Every file of the workspace (not `target/` or hidden ones).
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a dir").flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// A path named from the root, or the tail of one (`federation/komunitin.rs`
/// within `api/src`, `reference_multi.rs` within `tests/e2e`).
fn path_exists(span: &str, all: &[PathBuf]) -> bool {
    let root = root();
    root.join(span).exists() || all.iter().any(|f| f.strip_prefix(&root).is_ok_and(|rel| rel.ends_with(span)))
}

/// Every file of the workspace, walked once.
fn workspace_files() -> Vec<PathBuf> {
    let mut all = Vec::new();
    files(&root(), &mut all);
    all
}

#[test]
fn tidy_every_name_in_the_architecture_page_exists() {
    let page = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).expect("docs/ARCHITECTURE.md");
    let all = workspace_files();
    let words = words(&all);
    let mut missing = Vec::new();
    let mut checked = 0;
    for span in spans(&page) {
        if is_path(&span) {
            checked += 1;
            if !path_exists(&span, &all) {
                missing.push(format!("file `{span}`"));
            }
        } else if let Some(segments) = rust_name(&span) {
            checked += 1;
            if let Some(gone) = segments.iter().find(|s| !words.contains(s.as_str())) {
                missing.push(format!("`{span}` (no `{gone}` in the sources)"));
            }
        }
    }
    assert!(checked > 50, "the page names only {checked} files and items: is the parser broken?");
    assert!(missing.is_empty(), "docs/ARCHITECTURE.md names what no longer exists:\n{}", missing.join("\n"));
}

#[test]
fn tidy_the_checker_finds_what_is_missing() {
    let all = workspace_files();
    assert!(!path_exists("ledger/src/no_such_file.rs", &all));
    assert!(path_exists("ledger/src/decide.rs", &all) && path_exists("federation/komunitin.rs", &all));
    assert_eq!(rust_name("ledger::decide"), Some(vec!["ledger".to_owned(), "decide".to_owned()]));
    assert_eq!(rust_name("validated"), None, "prose");
    assert_eq!(rust_name("GET /admin/nodes"), None);
    assert!(spans("a `x` b\n```\n`y`\n```\n`z`") == vec!["x".to_owned(), "z".to_owned()]);
    let words = words(&all);
    let absent = format!("NoSuch{}", "TypeAnywhere42");
    assert!(words.contains("ReadModel") && !words.contains(&absent));
}

/// The text of Rust source without its comments, string literals and char
/// literals, so that only code is searched for paths.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !chars[..i].last().is_some_and(|p| p.is_alphanumeric() || *p == '_')
        {
            // A raw string: r"…", r#"…"#, …
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            i += hashes + 2;
            while i < chars.len()
                && !(chars[i] == '"' && chars[i + 1..].iter().take(hashes).filter(|&&h| h == '#').count() == hashes)
            {
                i += 1;
            }
            i += 1 + hashes;
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('x', '\n', '\''), else a lifetime or a label.
            let close = if next == Some('\\') {
                chars[i + 2..].iter().position(|&x| x == '\'').map(|p| i + 2 + p)
            } else {
                (chars.get(i + 2) == Some(&'\'')).then_some(i + 2)
            };
            match close {
                Some(end) => {
                    i = end + 1;
                    out.push_str("' '");
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The crate-level names a source text reaches through `crate::`: `use
/// crate::a::…`, `use crate::{a, b::c}`, inline `crate::a::f()`.
fn crate_names(code: &str) -> Vec<(String, usize)> {
    let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    let mut names = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].chars().last().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let line = code[..at].matches('\n').count() + 1;
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group, split on commas outside nested braces.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        names.push((ident(&group[i..]), line));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            names.push((ident(rest), line));
        }
    }
    names
}

/// The edges between top-level modules: `(from, to) -> [file:line]`, given
/// each module's files (`name`, path shown, text).
fn module_edges(files: &[(String, String, String)]) -> BTreeMap<(String, String), Vec<String>> {
    let modules: BTreeSet<&str> = files.iter().map(|(m, _, _)| m.as_str()).collect();
    let mut edges: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (module, shown, text) in files {
        for (name, line) in crate_names(&code_only(text)) {
            if name != *module && modules.contains(name.as_str()) {
                edges.entry((module.clone(), name)).or_default().push(format!("{shown}:{line}"));
            }
        }
    }
    edges
}

/// A loop among the modules, as the modules along it (first = last), if any.
fn find_cycle(edges: &BTreeMap<(String, String), Vec<String>>) -> Option<Vec<String>> {
    fn visit<'a>(
        node: &'a str,
        edges: &'a BTreeMap<(String, String), Vec<String>>,
        done: &mut BTreeSet<&'a str>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = path[at..].iter().map(|n| (*n).to_owned()).collect();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for ((_, to), _) in edges.range((node.to_owned(), String::new())..).take_while(|((from, _), _)| from == node) {
            if let Some(cycle) = visit(to, edges, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|(from, _)| visit(from, edges, &mut done, &mut Vec::new()))
}

/// The api crate's files by top-level module: `api/src/x.rs` and everything
/// under `api/src/x/` are module `x` (the crate root, `lib.rs`, is none).
fn api_modules(all: &[PathBuf]) -> Vec<(String, String, String)> {
    let src = root().join("api/src");
    let mut files = Vec::new();
    for file in all.iter().filter(|f| f.extension().is_some_and(|e| e == "rs")) {
        let Ok(rel) = file.strip_prefix(&src) else { continue };
        let first = rel.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned()).unwrap_or_default();
        let module = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("read a source file");
        files.push((module, format!("api/src/{}", rel.display()), text));
    }
    files
}

#[test]
fn tidy_the_api_modules_import_each_other_in_no_loop() {
    let files = api_modules(&workspace_files());
    let modules: BTreeSet<&str> = files.iter().map(|(m, _, _)| m.as_str()).collect();
    assert!(modules.len() > 15 && modules.contains("routes") && modules.contains("federation"), "{modules:?}");
    let edges = module_edges(&files);
    assert!(edges.contains_key(&("routes".to_owned(), "app".to_owned())), "is the parser broken?");
    if let Some(cycle) = find_cycle(&edges) {
        let steps: Vec<String> = cycle
            .windows(2)
            .map(|w| format!("{} -> {} ({})", w[0], w[1], edges[&(w[0].clone(), w[1].clone())].join(", ")))
            .collect();
        panic!(
            "api's top-level modules import each other in a loop (a lower module must not name a higher one; \
             docs/ARCHITECTURE.md, api):\n{}",
            steps.join("\n")
        );
    }
}

#[test]
fn tidy_the_loop_checker_finds_a_loop() {
    let file = |module: &str, text: &str| (module.to_owned(), format!("{module}.rs"), text.to_owned());
    let files = vec![
        file(
            "a",
            "use crate::b::X;\n// crate::c::nothing\nlet s = \"crate::c::x\"; let c = '\"'; let r = r#\"crate::c\"#;",
        ),
        file("b", "pub(crate) fn f() { crate::c::g() }\nuse crate::{d::Y, error};"),
        file("c", "fn g<'a>(x: &'a str) { let q = '\\''; super::h(); crate::failpoint_is(x); }"),
        file("d", ""),
        file("error", ""),
    ];
    let edges = module_edges(&files);
    let pairs: Vec<(&str, &str)> = edges.keys().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(pairs, vec![("a", "b"), ("b", "c"), ("b", "d"), ("b", "error")], "comments and strings are not paths");
    assert_eq!(find_cycle(&edges), None);
    let mut looped = files.clone();
    looped.push(file("d", "use crate::a::Z;"));
    let edges = module_edges(&looped);
    assert_eq!(find_cycle(&edges), Some(vec!["a", "b", "d", "a"].into_iter().map(str::to_owned).collect()));
}
