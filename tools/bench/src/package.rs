//! The deployment packages' sizes.

use std::path::Path;

use crate::report::{mib, table};

/// Every function of the template.
const FUNCTIONS: [&str; 6] = [
    "training-prompts",
    "generate-single",
    "training-sets",
    "training-set-worker",
    "replicate-webhook",
    "reconciler",
];

/// The size table of each function's `bootstrap` and `bootstrap.zip` in `dir`.
pub fn zip_sizes(dir: &Path) -> String {
    let rows: Vec<Vec<String>> = FUNCTIONS
        .iter()
        .map(|name| {
            let size = |file: &str| {
                std::fs::metadata(dir.join(name).join(file))
                    .map_or_else(|_| "not built".to_owned(), |m| mib(m.len()))
            };
            vec![(*name).to_owned(), size("bootstrap"), size("bootstrap.zip")]
        })
        .collect();
    format!(
        "## Deployment package (release, x86_64)\n\n{}",
        table(&["function", "bootstrap", "bootstrap.zip"], &rows)
    )
}
