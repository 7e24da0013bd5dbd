//! `docker-compose.temporal.yml`, the deployment for machines with Docker: it
//! cannot run here, so it is checked against the Compose specification
//! (check-jsonschema's built-in `vendor.compose-spec`) and for completeness.

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use std::{path::Path, path::PathBuf, process::Command};

/// A path in the repository; the tools are from scripts/install-tools.sh.
fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

const COMPOSE: &str = "docker-compose.temporal.yml";
const VENV: &str = ".tools/check-jsonschema/bin";

/// Validates `file` against the Compose specification: (valid, output).
fn check_compose_spec(file: &Path) -> Result<(bool, String)> {
    let out = Command::new(repo(VENV).join("check-jsonschema"))
        .args(["--builtin-schema", "vendor.compose-spec"])
        .arg(file)
        .output()
        .context("running check-jsonschema (scripts/install-tools.sh installs it)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    Ok((out.status.success(), format!("{stdout}{stderr}")))
}

#[test]
fn compose_file_conforms_to_the_compose_specification() -> Result<()> {
    let (valid, output) = check_compose_spec(&repo(COMPOSE))?;
    ensure!(valid, "{COMPOSE} violates the spec:\n{output}");
    Ok(())
}

#[test]
fn compose_files_violating_the_specification_are_rejected() -> Result<()> {
    let text = std::fs::read_to_string(repo(COMPOSE)).context("reading the compose file")?;
    let bad = "\nservices:\n  broken:\n    image: busybox\n    ports: \"not-a-list\"\n";
    let violations = [
        (
            "`ports: \"not-a-list\"`",
            text.replacen("\nservices:\n", bad, 1),
        ),
        ("an unknown top-level key", format!("{text}nonsense: 1\n")),
    ];
    let dir = crate::support::tempdir()?;
    for (i, (what, broken)) in violations.into_iter().enumerate() {
        let file = dir.path().join(format!("broken-{i}.yml"));
        std::fs::write(&file, broken)?;
        let (valid, output) = check_compose_spec(&file)?;
        ensure!(!valid, "check-jsonschema accepted {what}:\n{output}");
    }
    Ok(())
}

/// The compose file as JSON, parsed by ruamel.yaml from the same virtualenv
/// (anchors and merge keys resolved, as Compose does).
fn compose_as_json() -> Result<Value> {
    let script = "import json, sys\nfrom ruamel.yaml import YAML\n\
                  json.dump(YAML(typ='safe').load(open(sys.argv[1])), sys.stdout)";
    let out = Command::new(repo(VENV).join("python"))
        .args(["-c", script])
        .arg(repo(COMPOSE))
        .output()
        .context("running the check-jsonschema virtualenv's python")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "parsing {COMPOSE}: {stderr}");
    serde_json::from_slice(&out.stdout).context("reading the compose file as JSON")
}

#[test]
fn compose_file_runs_the_whole_service_configured_like_the_embedded_default() -> Result<()> {
    let doc = compose_as_json()?;
    let services = doc["services"].as_object().context("no services")?;
    for name in "postgresql temporal temporal-ui jaeger s3 api worker".split(' ') {
        ensure!(services.contains_key(name), "no service `{name}`");
    }
    for (name, service) in services {
        // One-shot setup jobs say `restart: "no"`; everything else runs long.
        let one_shot = service["restart"] == "no";
        let checked = service["healthcheck"]["test"].is_array();
        ensure!(one_shot || checked, "`{name}` has no healthcheck");
    }
    let api = &services["api"]["environment"];
    let worker = &services["worker"]["environment"];
    let shared = "TEMPORAL__ADDRESS TEMPORAL__NAMESPACE S3__ENDPOINT S3__PUBLIC_ENDPOINT \
                  S3__ACCESS_KEY S3__SECRET_KEY CATALOG__ROOT REPOSITORY__LOCATIONS__DISK__ROOT \
                  REPOSITORY__LOCATIONS__S3__BUCKET AUTH__JWKS_PATH TELEMETRY__OTLP_ENDPOINT";
    for key in shared.split_whitespace() {
        let key = format!("DISSEMINATION_{key}");
        ensure!(api[&key].is_string(), "the api lacks {key}");
        ensure!(api[&key] == worker[&key], "api and worker differ on {key}");
    }
    ensure!(
        api["DISSEMINATION_API__LISTEN"].is_string(),
        "no API__LISTEN"
    );
    let metrics = &worker["DISSEMINATION_WORKER__METRICS_ADDR"];
    ensure!(metrics.is_string(), "no WORKER__METRICS_ADDR");
    // Each service's environment is a configuration the service accepts.
    for name in ["api", "worker", "seed"] {
        let env = services[name]["environment"]
            .as_object()
            .with_context(|| format!("`{name}` has no environment"))?;
        let vars: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        platform::config::Config::from_env_vars(vars)
            .with_context(|| format!("`{name}`'s configuration is refused"))?;
    }
    let jaeger = &services["jaeger"];
    let ports = jaeger["ports"].as_array().context("no jaeger ports")?;
    for port in ["4317", "16686"] {
        let published = ports
            .iter()
            .any(|p| p.as_str().and_then(|p| p.rsplit(':').next()) == Some(port));
        ensure!(published, "jaeger does not publish {port}: {ports:?}");
    }
    let otlp = &jaeger["environment"]["COLLECTOR_OTLP_ENABLED"];
    ensure!(otlp == "true", "jaeger's OTLP receiver is not enabled");
    Ok(())
}
