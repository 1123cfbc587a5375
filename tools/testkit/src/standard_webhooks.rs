//! Signing and verifying with PyPI's `standardwebhooks` (through `tools/standard_webhooks.py`
//! in the project's environment): an implementation independent of the service's verifier
//! and the emulator's signer, for the tests that hold each against it.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::repo_root;

/// Runs the script with `args`, `input` on its stdin: its exit status and stdout.
fn script(args: &[&str], input: &[u8]) -> (bool, String) {
    let mut child = Command::new("python3")
        .arg(repo_root().join("tools/standard_webhooks.py"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 with standardwebhooks (tools/requirements-dev.txt)");
    child
        .stdin
        .take()
        .expect("its stdin")
        .write_all(input)
        .expect("write its stdin");
    let output = child.wait_with_output().expect("its output");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
    )
}

/// The `webhook-signature` value `standardwebhooks` gives `body` with this id and timestamp.
pub fn standard_sign(secret: &str, id: &str, timestamp: u64, body: &str) -> String {
    let (ok, signature) = script(
        &["sign", secret, id, &timestamp.to_string()],
        body.as_bytes(),
    );
    assert!(
        ok && signature.starts_with("v1,"),
        "signing failed: {signature}"
    );
    signature
}

/// Whether `standardwebhooks` takes `body` with these headers as signed with `secret`.
pub fn standard_verifies(secret: &str, headers: &[(&str, &str)], body: &str) -> bool {
    let headers: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), json!(value)))
        .collect();
    let delivery = json!({ "headers": headers, "body": body });
    script(&["verify", secret], delivery.to_string().as_bytes()).0
}
