//! Property-based tests of the served OpenAPI document with schemathesis
//! (PyPI): generated requests, valid and invalid, against the real API with
//! a valid token, every check on: no 5xx, every response matches the
//! document, and the API accepts what the document allows and refuses what
//! it does not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::TestApp;
use std::path::Path;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    // With a worker: reads of the audit trail need one to answer.
    let app = TestApp::start().await;
    let token = app.client_token();
    let st = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/schemathesis/bin/schemathesis");
    // A cursor is valid only if the API issued it (and it has not expired),
    // which no schema can say: the list is asked for from its first page.
    let config = app.dir.path().join("schemathesis.toml");
    // A body over the documented 16 KiB limit is refused with 413 (in the
    // document) before its fields are looked at: a rejection too. What no
    // schema can bound is refused with 400 although schema-valid: a
    // recovery's `since` further back than the retention window, an
    // acknowledgement naming other paths than the ones delivered.
    std::fs::write(
        &config,
        "[parameters]\n\"query.cursor\" = \"\"\n\"query.after\" = \"\"\n\n[checks.negative_data_rejection]\n\
         expected-statuses = [\"400\", \"401\", \"403\", \"404\", \"405\", \"406\", \"409\", \"413\", \"415\", \"422\"]\n\n\
         [phases.stateful.inference]\nalgorithms = [\"dependency-analysis\"]\n\n\
         [[operations]]\ninclude-path = \"/v1/webhooks/recover\"\n\
         checks.positive_data_acceptance.expected-statuses = [\"202\", \"400\", \"401\", \"429\", \"503\"]\n\n\
         [[operations]]\ninclude-path = \"/v1/disseminations/{disseminationId}/acknowledgement\"\n\
         checks.positive_data_acceptance.expected-statuses = [\"200\", \"400\", \"401\", \"404\", \"409\", \"410\", \"429\", \"503\"]\n",
    )
    .unwrap();
    let out = tokio::process::Command::new(st)
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{}/openapi.json", app.api_url)])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all"])
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
