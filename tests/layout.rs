//! ARCHITECTURE.md's invariants about the code itself, checked on the source so that a change
//! that breaks one fails the test command:
//! - only the store (`src/queues/`) knows Redis key names;
//! - only the archive (`src/archive/`) knows SQL and the PostgreSQL client;
//! - `classify` and `routing` use neither Redis nor the network;
//! - the ticket's life (`src/lifecycle/`) knows no HTTP, no Redis and no async runtime;
//! - no function of the domain is longer than 80 lines.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src(sub: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(sub);
    if root.is_file() {
        files.push(root);
    } else {
        sources(&root, &mut files);
    }
    files
}

/// The file's code lines (comments and doc comments dropped), numbered from 1.
fn code(path: &Path) -> Vec<(usize, String)> {
    std::fs::read_to_string(path)
        .expect("readable source")
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect()
}

fn offences(files: &[PathBuf], forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for f in files {
        for (n, line) in code(f) {
            for word in forbidden {
                if line.contains(word) {
                    found.push(format!("{}:{n}: `{word}` in {}", f.display(), line.trim()));
                }
            }
        }
    }
    found
}

#[test]
fn only_the_store_knows_redis_key_names() {
    let outside: Vec<PathBuf> = src("")
        .into_iter()
        .filter(|p| !p.components().any(|c| c.as_os_str() == "queues"))
        .collect();
    let found = offences(&outside, &["\"hl:", "hl:{"]);
    assert!(
        found.is_empty(),
        "Redis key names outside src/queues:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_archive_knows_sql() {
    let outside: Vec<PathBuf> = src("")
        .into_iter()
        .filter(|p| !p.components().any(|c| c.as_os_str() == "archive"))
        .collect();
    // `local_postgres` starts a server (initdb, postgres, createdb) and probes it; it sends no
    // SQL and is allowed the client only to see whether the server answers.
    let (probe, rest): (Vec<PathBuf>, Vec<PathBuf>) = outside
        .into_iter()
        .partition(|p| p.ends_with("local_postgres.rs"));
    let found = offences(
        &rest,
        &[
            "SELECT ",
            "INSERT INTO",
            "UPDATE cases",
            "DELETE FROM",
            "CREATE TABLE",
            "tokio_postgres",
            "deadpool_postgres",
        ],
    );
    assert!(
        found.is_empty(),
        "SQL or the PostgreSQL client outside src/archive:\n{}",
        found.join("\n")
    );
    let found = offences(
        &probe,
        &[
            "SELECT ",
            "INSERT INTO",
            "UPDATE ",
            "DELETE FROM",
            "CREATE ",
        ],
    );
    assert!(
        found.is_empty(),
        "SQL in local_postgres.rs:\n{}",
        found.join("\n")
    );
}

#[test]
fn classify_and_routing_use_neither_redis_nor_the_network() {
    let mut files = src("classify");
    files.extend(src("routing.rs"));
    let found = offences(
        &files,
        &[
            "redis",
            "reqwest",
            "hyper",
            "tokio::net",
            "std::net",
            "crate::queues",
            "crate::state",
        ],
    );
    assert!(
        found.is_empty(),
        "I/O in classify or routing:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_tickets_life_knows_no_http_redis_or_runtime() {
    let found = offences(
        &src("lifecycle"),
        &[
            "axum",
            "hyper",
            "http::",
            "redis",
            "tokio",
            "crate::queues",
            "crate::api",
            "crate::state",
            "crate::handling",
        ],
    );
    assert!(
        found.is_empty(),
        "the domain reaches out:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_function_of_the_domain_is_longer_than_80_lines() {
    let mut long = Vec::new();
    for f in src("lifecycle") {
        if f.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("readable");
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let l = lines[i];
            let t = l.trim_start();
            let is_fn = [
                "fn ",
                "pub fn ",
                "pub(crate) fn ",
                "pub(super) fn ",
                "async fn ",
                "pub async fn ",
            ]
            .iter()
            .any(|p| t.starts_with(p));
            if is_fn && !t.contains(';') {
                let indent = l.len() - t.len();
                let close = format!("{}}}", " ".repeat(indent));
                let end = (i..lines.len()).find(|&j| lines[j] == close).unwrap_or(i);
                let length = end - i + 1;
                if length > 80 {
                    long.push(format!("{}:{}: {length} lines", f.display(), i + 1));
                }
                i = end;
            }
            i += 1;
        }
    }
    assert!(
        long.is_empty(),
        "domain functions over 80 lines:\n{}",
        long.join("\n")
    );
}
