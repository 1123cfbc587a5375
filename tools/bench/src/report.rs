//! The printed report: Markdown tables, their rows and units.

use crate::stats::Samples;

/// Microseconds as milliseconds with two decimals.
pub fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A Markdown table: a header row and rows of cells.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n", header.join(" | "));
    out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out
}

/// A table row of `samples`: n, p50, p99 and max.
pub fn row(label: &str, samples: &Samples) -> Vec<String> {
    vec![
        label.to_owned(),
        samples.len().to_string(),
        ms(samples.median()),
        ms(samples.percentile(99.0)),
        ms(samples.max()),
    ]
}
