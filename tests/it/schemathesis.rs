//! Property-based tests of the served OpenAPI document with schemathesis
//! (PyPI): generated requests, valid and invalid, against the real API with
//! a valid token. No 5xx, and every response matches the document.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::harness::TestApp;
use std::path::Path;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    // With a worker: reads of the audit trail need one to answer.
    let app = TestApp::start().await;
    let token = app.client_token();
    let st = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/schemathesis/bin/schemathesis");
    let out = tokio::process::Command::new(st)
        .args(["run", &format!("{}/openapi.json", app.api_url)])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,response_headers_conformance,negative_data_rejection",
        ])
        .args(["--max-examples", "40", "--seed", "20251125", "--no-color"])
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .output()
        .await
        .expect("schemathesis runs (scripts/install-tools.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}"
    );
}
