//! docs/ARCHITECTURE.md cannot drift from the code: every file path it names
//! in backticks exists, and every Rust name it gives in backticks (a type, a
//! function, `module::item`) still appears in the sources.

use std::collections::BTreeSet;
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
