//! The layer rule of `shared/src/lib.rs`, checked on the sources: the domain, the ports and
//! the use cases use no async runtime, AWS, Lambda or HTTP crate; nothing imports a layer
//! outside it (the adapters no use case, nothing below entry the entry). A path written in
//! full (`::tokio::`, `crate::entry::`) counts as much as a `use`.

use std::path::{Path, PathBuf};

/// Crates that tie code to a runtime, a cloud or a transport.
const INFRASTRUCTURE_CRATES: [&str; 11] = [
    "tokio",
    "aws_config",
    "aws_sdk_dynamodb",
    "aws_sdk_s3",
    "aws_sdk_ssm",
    "aws_smithy_types",
    "aws_lambda_events",
    "lambda_http",
    "lambda_runtime",
    "reqwest",
    "http",
];

/// Each layer: its place under `shared/src`, the crate modules it must not name, and whether
/// infrastructure crates are refused.
const LAYERS: [(&str, &[&str], bool); 7] = [
    (
        "domain",
        &["ports", "usecases", "adapters", "entry", "timing"],
        true,
    ),
    ("ports", &["usecases", "adapters", "entry", "timing"], true),
    ("usecases", &["adapters", "entry", "timing"], true),
    ("adapters", &["usecases", "entry"], false),
    ("entry", &[], false),
    (
        "retry.rs",
        &["domain", "ports", "usecases", "adapters", "entry", "timing"],
        true,
    ),
    (
        "timing.rs",
        &["domain", "ports", "usecases", "adapters", "entry", "retry"],
        false,
    ),
];

fn sources(under: &Path) -> Vec<PathBuf> {
    if under.is_file() {
        return vec![under.to_owned()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(under).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

/// Whether a file holds only test code (test modules kept in their own files, and the
/// in-memory fakes of the ports): tests may use the runtime they run on.
fn is_test_code(file: &Path) -> bool {
    let name = file
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("");
    name.ends_with("_tests.rs") || name == "fakes.rs"
}

/// The code of a source file without its comments (line comments and doc comments) and
/// without its test module (`#[cfg(test)] mod tests`, always the last item).
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `code` names the crate `root`: a path that starts with `root::` as a whole name,
/// or `::root::` from the crate root. `a::http::` (a module of another crate) does not count.
fn uses_crate(code: &str, root: &str) -> bool {
    let needle = format!("{root}::");
    code.match_indices(&needle).any(|(at, _)| {
        let before = &code[..at];
        let previous = before.chars().next_back();
        match previous {
            Some(c) if c.is_alphanumeric() || c == '_' => false,
            // `a::http::` is a module of another crate; `::http::` alone is the crate.
            Some(':') => {
                let rest = before.trim_end_matches(':');
                rest.chars()
                    .next_back()
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
            }
            _ => true,
        }
    })
}

/// The violations of one file of `layer`.
fn violations(code: &str, forbidden_modules: &[&str], no_infrastructure: bool) -> Vec<String> {
    let mut found: Vec<String> = forbidden_modules
        .iter()
        .filter(|module| code.contains(&format!("crate::{module}")))
        .map(|module| format!("crate::{module}"))
        .collect();
    if no_infrastructure {
        found.extend(
            INFRASTRUCTURE_CRATES
                .iter()
                .filter(|name| uses_crate(code, name))
                .map(|name| (*name).to_owned()),
        );
    }
    found
}

#[test]
fn every_layer_uses_only_what_the_rule_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken = Vec::new();
    let mut checked = 0;
    for (place, forbidden, no_infrastructure) in LAYERS {
        for file in sources(&src.join(place)) {
            if is_test_code(&file) {
                continue;
            }
            checked += 1;
            let text = std::fs::read_to_string(&file).unwrap();
            for violation in violations(&code(&text), forbidden, no_infrastructure) {
                broken.push(format!("{}: {violation}", file.display()));
            }
        }
    }
    assert!(checked > 40, "only {checked} files were checked");
    assert!(
        broken.is_empty(),
        "the layer rule is broken:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_check_finds_what_it_looks_for() {
    let domain = LAYERS[0];
    let bad = "use tokio::sync::oneshot;\nfn f() { ::reqwest::get(); crate::entry::x(); }";
    assert_eq!(
        violations(bad, domain.1, domain.2),
        ["crate::entry", "tokio", "reqwest"]
    );
    // A module named like a crate inside another path, and comments, are not uses.
    let fine = "use lambda_http_like::x; // tokio::spawn\nlet a = my_tokio::b; x::http::y;";
    assert!(violations(&code(fine), domain.1, domain.2).is_empty());
    // Test code may use the runtime its tests run on.
    let with_tests =
        "fn f() {}\n#[cfg(test)]\nmod tests {\n    #[tokio::test]\n    async fn t() {}\n}\n";
    assert!(violations(&code(with_tests), domain.1, domain.2).is_empty());
    assert!(is_test_code(Path::new("usecases/fakes.rs")));
    assert!(!is_test_code(Path::new("usecases/store.rs")));
    assert!(uses_crate("use http::StatusCode;", "http"));
}

#[test]
fn only_the_configuration_modules_read_the_environment() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let configs = [
        src.join("entry").join("config.rs"),
        src.join("entry").join("training_config.rs"),
    ];
    let readers: Vec<String> = sources(&src)
        .into_iter()
        .filter(|file| !configs.contains(file) && !is_test_code(file))
        .filter(|file| {
            let code = code(&std::fs::read_to_string(file).unwrap());
            code.contains("env::var") || code.contains("env::vars")
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(readers.is_empty(), "the environment is read in {readers:?}");
}
