//! Identity as production runs it: roles only from the realm and this
//! API's own client, the role re-checked on every call, answers that name
//! no contract, the issuer's JWKS fetched from its URL (rotation, outage),
//! and `iss`/`aud` checked by the embedded default itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::jwks_server::JwksServer;
use crate::support::{Options, TestApp, AUDIENCE, CLIENT, ISSUER};
use api::auth::dev;
use platform::config::Config;
use serde_json::{json, Value};
use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};
use worker::demo;

/// Claims as Keycloak issues them, with the given role sources.
fn claims(extra: Value) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut c = json!({"iss": ISSUER, "aud": AUDIENCE, "azp": CLIENT, "sub": CLIENT,
        "iat": now, "nbf": now, "exp": now + 3600});
    c.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    c
}

fn no_worker() -> Options {
    Options {
        with_worker: false,
        ..Default::default()
    }
}

async fn status_and_body(res: reqwest::Response) -> (u16, String) {
    (res.status().as_u16(), res.text().await.unwrap())
}

/// `GET /v1/disseminations` with `token`: the cheapest authenticated call.
async fn list(app: &TestApp, token: &str) -> (u16, Value) {
    let res = app
        .call(reqwest::Method::GET, "/v1/disseminations", token)
        .await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["disseminationId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_count_only_from_the_realm_and_this_apis_own_client() {
    let app = TestApp::start_with(no_worker()).await;
    let body = json!({"archiveId": demo::DEMO_SINGLE});
    let sign = |extra: Value| dev::sign(&app.key_pem, "test-key", &claims(extra)).unwrap();

    // Another client's entry grants nothing here, nor does a top-level `roles`.
    for extra in [
        json!({"resource_access": {"some-other-app": {"roles": ["2d17_R"]}}}),
        json!({"roles": ["2d17_R"]}),
        json!({"resource_access": {"some-other-app": {"roles": ["2d17_R"]}},
            "realm_access": {"roles": ["offline_access"]}}),
    ] {
        let (status, text) =
            status_and_body(app.post(Some(&sign(extra.clone())), body.clone()).await).await;
        assert_eq!(status, 403, "{extra}: {text}");
        assert!(!text.contains("2d17"), "the 403 names no contract: {text}");
    }

    // This API's own client (default: the audience) and the realm do.
    let own = sign(json!({"resource_access": {AUDIENCE: {"roles": ["2d17_R"]},
        "some-other-app": {"roles": ["8a3c_R"]}}}));
    assert_eq!(app.post(Some(&own), body.clone()).await.status(), 201);
    let realm = sign(json!({"realm_access": {"roles": ["2d17_R"]}}));
    let res = app
        .post(Some(&realm), json!({"archiveId": demo::DEMO_TWO_FILES}))
        .await;
    assert_eq!(res.status(), 201);
    // The foreign entry's 8a3c_R did not count.
    let (status, text) = status_and_body(
        app.post(Some(&own), json!({"archiveId": demo::DEMO_OTHER_CONTRACT}))
            .await,
    )
    .await;
    assert_eq!(status, 403, "{text}");
    assert!(!text.contains("8a3c"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_role_hides_the_contracts_disseminations_on_every_call() {
    let app = TestApp::start_with(no_worker()).await;
    let both = app.token(CLIENT, &["2d17_R", "8a3c_R"]);
    let revoked = app.token(CLIENT, &["8a3c_R"]);
    let a = app.create(&both, demo::DEMO_SINGLE, 50).await;
    let b = app.create(&both, demo::DEMO_OTHER_CONTRACT, 50).await;

    // Visibility is eventually consistent: wait (bounded) until both are listed.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, page) = list(&app, &both).await;
        assert_eq!(status, 200);
        let listed = ids(&page);
        if listed.contains(&a) && listed.contains(&b) {
            break;
        }
        assert!(Instant::now() < deadline, "not listed: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 2d17_R revoked: its dissemination answers 404 on every call, as one
    // the caller may not see, and names no contract.
    let url = |tail: &str| format!("{}/v1/disseminations/{a}{tail}", app.api_url);
    let calls = [
        ("GET", app.http.get(url(""))),
        ("POST links", app.http.post(url("/links"))),
        ("GET events", app.http.get(url("/events"))),
        ("DELETE", app.http.delete(url(""))),
    ];
    for (name, req) in calls {
        let (status, text) = status_and_body(req.bearer_auth(&revoked).send().await.unwrap()).await;
        assert_eq!(status, 404, "{name}: {text}");
        assert!(text.contains("DISSEMINATION_NOT_FOUND"), "{name}: {text}");
        assert!(
            !text.contains("2d17") && !text.contains("8a3c"),
            "{name} names no contract: {text}"
        );
    }
    let (status, page) = list(&app, &revoked).await;
    assert_eq!(status, 200);
    assert_eq!(
        ids(&page),
        vec![b.clone()],
        "only the contract still granted"
    );
    assert_eq!(app.get(&revoked, &b).await.status(), 200);
    let (status, page) = list(&app, &app.token(CLIENT, &[])).await;
    assert_eq!((status, ids(&page).len()), (200, 0), "no role, no list");

    // Nothing was cancelled by the refused DELETE.
    let res = app.get(&both, &a).await;
    assert_eq!(res.status(), 200);
    let view: Value = res.json().await.unwrap();
    assert_ne!(view["status"], "CANCELLED", "{view}");

    // A 403 names no contract, neither the AIP's nor the token's.
    let (status, text) = status_and_body(
        app.post(
            Some(&app.token(CLIENT, &["ffff_R"])),
            json!({"archiveId": demo::DEMO_TWO_FILES}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 403, "{text}");
    assert!(!text.contains("2d17") && !text.contains("ffff"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_checks_and_mints_issuer_and_audience() {
    // The embedded default's own auth settings; only the key file is the test's.
    let app = TestApp::start_with(Options {
        with_worker: false,
        configure: Some(Arc::new(|cfg: &mut Config| {
            cfg.auth = platform::config::AuthConfig {
                jwks_path: cfg.auth.jwks_path.clone(),
                ..Default::default()
            };
        })),
        ..Default::default()
    })
    .await;
    let key = app.dir.path().join("auth/private.pem");
    std::fs::write(&key, &app.key_pem).unwrap();
    let mint = |extra: &[&str]| {
        let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/dissemination-api");
        let out = std::process::Command::new(bin)
            .args(["mint-token", "--client-id", CLIENT, "--role", "2d17_R"])
            .args(["--kid", "test-key", "--key", key.to_str().unwrap()])
            .args(extra)
            .output()
            .expect("dissemination-api (cargo build)");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let (status, _) = list(&app, &mint(&[])).await;
    assert_eq!(
        status, 200,
        "the mint command's defaults pass the default checks"
    );
    for (what, extra) in [
        ("wrong aud", vec!["--audience", "another-service"]),
        ("wrong iss", vec!["--issuer", "http://evil/realms/dps"]),
    ] {
        let (status, body) = list(&app, &mint(&extra)).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["error"]["code"], "UNAUTHORIZED", "{what}: {body}");
    }
    let no_aud = dev::sign(
        &app.key_pem,
        "test-key",
        &json!({"iss": ISSUER, "azp": CLIENT, "exp": chrono::Utc::now().timestamp() + 60,
            "realm_access": {"roles": ["2d17_R"]}}),
    )
    .unwrap();
    assert_eq!(list(&app, &no_aud).await.0, 401, "aud is required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issuers_jwks_url_follows_key_rotation_and_outlives_an_outage() {
    let key_a = dev::generate("key-a").unwrap();
    let key_b = dev::generate("key-b").unwrap();
    let issuer = JwksServer::start(&[&key_a.jwks]).await;
    let ttl = Duration::from_secs(2);
    let url = issuer.url.clone();
    let app = TestApp::start_with(Options {
        with_worker: false,
        configure: Some(Arc::new(move |cfg: &mut Config| {
            cfg.auth.jwks_url = Some(url.clone());
            cfg.auth.jwks_cache_ttl_secs = 2;
            cfg.auth.jwks_min_refresh_interval_ms = 300;
            cfg.auth.jwks_fetch_timeout_ms = 1_000;
        })),
        ..Default::default()
    })
    .await;
    let token = |pair: &dev::KeyPair, kid: &str| {
        let c = claims(json!({"realm_access": {"roles": ["2d17_R"]}}));
        dev::sign(&pair.private_pem, kid, &c).unwrap()
    };
    let (token_a, token_b) = (token(&key_a, "key-a"), token(&key_b, "key-b"));
    assert_eq!(list(&app, &token_a).await.0, 200);
    assert_eq!(
        list(&app, &token_b).await.0,
        401,
        "key-b is not published yet"
    );

    // Rotation: key-b is published; its tokens pass at once, no restart.
    issuer.publish(&[&key_a.jwks, &key_b.jwks]);
    tokio::time::sleep(Duration::from_millis(350)).await; // past the refresh interval
    assert_eq!(list(&app, &token_b).await.0, 200);
    assert_eq!(list(&app, &token_a).await.0, 200);

    // A burst of tokens naming an unknown kid fetches at most once per interval.
    tokio::time::sleep(Duration::from_millis(350)).await; // past the refresh interval
    let before = issuer.fetches();
    let unknown = token(&key_b, "key-unknown");
    let started = Instant::now();
    let statuses =
        futures::future::join_all((0..30).map(|_| async { list(&app, &unknown).await.0 })).await;
    let burst = started.elapsed();
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let fetched = issuer.fetches() - before;
    let allowed = 1 + burst.as_millis() / 300;
    assert!(
        fetched as u128 <= allowed,
        "{fetched} fetches for 30 unknown-kid tokens in {burst:?}"
    );
    eprintln!("30 unknown-kid tokens: {fetched} JWKS fetch(es) in {burst:?}");

    // key-a removed: refused once the cached set has expired.
    issuer.publish(&[&key_b.jwks]);
    let removed = Instant::now();
    loop {
        if list(&app, &token_a).await.0 == 401 {
            break;
        }
        assert!(
            removed.elapsed() < ttl + Duration::from_secs(5),
            "key-a still accepted {:?} after removal",
            removed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "removed key refused after {:?} (TTL {ttl:?})",
        removed.elapsed()
    );
    assert_eq!(list(&app, &token_b).await.0, 200);

    // The issuer goes down: the last good set keeps serving past its TTL.
    issuer.set_down(true);
    let before = issuer.fetches();
    let down = Instant::now();
    while down.elapsed() < ttl * 2 {
        assert_eq!(list(&app, &token_b).await.0, 200, "at {:?}", down.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        issuer.fetches() > before,
        "refreshes were attempted while down"
    );
    assert_eq!(list(&app, &token_a).await.0, 401);
    issuer.set_down(false);
}
