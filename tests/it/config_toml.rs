//! The production keys (JWKS URL and cache, role source, Temporal TLS and
//! API key, the metrics listener) added to the harness's TOML file, so the
//! service's own binaries run with them too.

use model::config::Config;

/// `toml` with the keys below added to their tables.
pub fn with_production_keys(cfg: &Config, toml: String) -> String {
    let q = |v: &str| format!("{v:?}");
    let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| q(&p.display().to_string()));
    let a = &cfg.auth;
    let t = &cfg.temporal;
    let auth = lines(&[
        ("jwks_url", a.jwks_url.as_deref().map(q)),
        (
            "jwks_cache_ttl_secs",
            Some(a.jwks_cache_ttl_secs.to_string()),
        ),
        (
            "jwks_min_refresh_interval_ms",
            Some(a.jwks_min_refresh_interval_ms.to_string()),
        ),
        (
            "jwks_fetch_timeout_ms",
            Some(a.jwks_fetch_timeout_ms.to_string()),
        ),
        ("api_client_id", a.api_client_id.as_deref().map(q)),
    ]);
    let temporal = lines(&[
        ("tls", t.tls.map(|b| b.to_string())),
        ("tls_ca_path", path(&t.tls_ca_path)),
        ("tls_cert_path", path(&t.tls_cert_path)),
        ("tls_key_path", path(&t.tls_key_path)),
        ("tls_server_name", t.tls_server_name.as_deref().map(q)),
        (
            "api_key",
            t.api_key
                .as_ref()
                .map(|k| q(secrecy::ExposeSecret::expose_secret(k))),
        ),
        ("connect_timeout_ms", Some(t.connect_timeout_ms.to_string())),
    ]);
    let api = lines(&[
        ("metrics_listen", Some(q(&cfg.api.metrics_listen))),
        (
            "metrics_count_cache_ms",
            Some(cfg.api.metrics_count_cache_ms.to_string()),
        ),
    ]);
    toml.replacen("[auth]\n", &format!("[auth]\n{auth}"), 1)
        .replacen("[temporal]\n", &format!("[temporal]\n{temporal}"), 1)
        .replacen("[api]\n", &format!("[api]\n{api}"), 1)
}

fn lines(keys: &[(&str, Option<String>)]) -> String {
    keys.iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} = {v}\n")))
        .collect()
}
