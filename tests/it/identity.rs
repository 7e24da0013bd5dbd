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

/// What `GET /v1/disseminations`, the cheapest authenticated call, answers
/// `token`.
async fn list(app: &TestApp, token: &str) -> u16 {
    app.api(token).list("").answer().await.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_count_only_from_the_realm_and_this_apis_own_client() {
    let app = TestApp::start_with(Options::without_worker()).await;
    let body = json!({"archiveId": demo::DEMO_SINGLE});
    let sign = |extra: Value| dev::sign(&app.key_pem, "test-key", &claims(extra)).unwrap();

    // Another client's entry grants nothing here, nor does a top-level `roles`.
    for extra in [
        json!({"resource_access": {"some-other-app": {"roles": ["2d17_R"]}}}),
        json!({"roles": ["2d17_R"]}),
        json!({"resource_access": {"some-other-app": {"roles": ["2d17_R"]}},
            "realm_access": {"roles": ["offline_access"]}}),
    ] {
        let api = app.api(&sign(extra.clone()));
        let text = api
            .create(body.clone())
            .refused(403, "FORBIDDEN")
            .await
            .text;
        assert!(
            !text.contains("2d17"),
            "{extra}: the 403 names no contract: {text}"
        );
    }

    // This API's own client (default: the audience) and the realm do.
    let own = app.api(&sign(
        json!({"resource_access": {AUDIENCE: {"roles": ["2d17_R"]},
        "some-other-app": {"roles": ["8a3c_R"]}}}),
    ));
    own.create(body.clone()).await;
    let realm = app.api(&sign(json!({"realm_access": {"roles": ["2d17_R"]}})));
    realm
        .create(json!({"archiveId": demo::DEMO_TWO_FILES}))
        .await;
    // The foreign entry's 8a3c_R did not count.
    let text = own
        .create(json!({"archiveId": demo::DEMO_OTHER_CONTRACT}))
        .refused(403, "FORBIDDEN")
        .await
        .text;
    assert!(!text.contains("8a3c"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_role_hides_the_contracts_disseminations_on_every_call() {
    let app = TestApp::start_with(Options::without_worker()).await;
    let both = app.api(&app.token(CLIENT, &["2d17_R", "8a3c_R"]));
    let revoked = app.api(&app.token(CLIENT, &["8a3c_R"]));
    let a = both
        .create(json!({"archiveId": demo::DEMO_SINGLE}))
        .await
        .dissemination_id;
    let b = both
        .create(json!({"archiveId": demo::DEMO_OTHER_CONTRACT}))
        .await
        .dissemination_id;

    // Visibility is eventually consistent: wait (bounded) until both are listed.
    both.list("")
        .until(Duration::from_secs(20), |p| {
            p.ids().contains(&a) && p.ids().contains(&b)
        })
        .await;

    // 2d17_R revoked: its dissemination answers 404 on every call, as one
    // the caller may not see, and names no contract.
    let not_found = "DISSEMINATION_NOT_FOUND";
    for (name, refused) in [
        ("GET", revoked.view(&a).refused(404, not_found).await),
        (
            "POST links",
            revoked.links(&a).refused(404, not_found).await,
        ),
        (
            "GET events",
            revoked.events(&a).refused(404, not_found).await,
        ),
        ("DELETE", revoked.cancel(&a).refused(404, not_found).await),
    ] {
        let text = refused.text;
        assert!(
            !text.contains("2d17") && !text.contains("8a3c"),
            "{name} names no contract: {text}"
        );
    }
    assert_eq!(
        revoked.list("").await.ids(),
        vec![b.clone()],
        "only the contract still granted"
    );
    revoked.view(&b).await;
    let no_role = app.api(&app.token(CLIENT, &[]));
    assert!(no_role.list("").await.items.is_empty(), "no role, no list");

    // Nothing was cancelled by the refused DELETE.
    let view = both.view(&a).await;
    assert_ne!(
        view.status,
        model::DisseminationStatus::Cancelled,
        "{view:?}"
    );

    // A 403 names no contract, neither the AIP's nor the token's.
    let text = app
        .api(&app.token(CLIENT, &["ffff_R"]))
        .create(json!({"archiveId": demo::DEMO_TWO_FILES}))
        .refused(403, "FORBIDDEN")
        .await
        .text;
    assert!(!text.contains("2d17") && !text.contains("ffff"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_checks_and_mints_issuer_and_audience() {
    // The embedded default's own auth settings; only the key file is the test's.
    let app = TestApp::start_with(Options {
        configure: Some(Arc::new(|cfg: &mut Config| {
            cfg.auth = platform::config::AuthConfig {
                jwks_path: cfg.auth.jwks_path.clone(),
                ..Default::default()
            };
        })),
        ..Options::without_worker()
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
    assert_eq!(
        list(&app, &mint(&[])).await,
        200,
        "the mint command's defaults pass the default checks"
    );
    for extra in [
        vec!["--audience", "another-service"],
        vec!["--issuer", "http://evil/realms/dps"],
    ] {
        let api = app.api(&mint(&extra));
        api.list("").refused(401, "UNAUTHORIZED").await;
    }
    let no_aud = dev::sign(
        &app.key_pem,
        "test-key",
        &json!({"iss": ISSUER, "azp": CLIENT, "exp": chrono::Utc::now().timestamp() + 60,
            "realm_access": {"roles": ["2d17_R"]}}),
    )
    .unwrap();
    assert_eq!(list(&app, &no_aud).await, 401, "aud is required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issuers_jwks_url_follows_key_rotation_and_outlives_an_outage() {
    let key_a = dev::generate("key-a").unwrap();
    let key_b = dev::generate("key-b").unwrap();
    let issuer = JwksServer::start(&[&key_a.jwks]).await;
    let ttl = Duration::from_secs(2);
    let url = issuer.url.clone();
    let app = TestApp::start_with(Options {
        configure: Some(Arc::new(move |cfg: &mut Config| {
            cfg.auth.jwks_url = Some(url.clone());
            cfg.auth.jwks_cache_ttl_secs = 2;
            cfg.auth.jwks_min_refresh_interval_ms = 300;
            cfg.auth.jwks_fetch_timeout_ms = 1_000;
        })),
        ..Options::without_worker()
    })
    .await;
    let token = |pair: &dev::KeyPair, kid: &str| {
        let c = claims(json!({"realm_access": {"roles": ["2d17_R"]}}));
        dev::sign(&pair.private_pem, kid, &c).unwrap()
    };
    let (token_a, token_b) = (token(&key_a, "key-a"), token(&key_b, "key-b"));
    assert_eq!(list(&app, &token_a).await, 200);
    assert_eq!(
        list(&app, &token_b).await,
        401,
        "key-b is not published yet"
    );

    // Rotation: key-b is published; its tokens pass at once, no restart.
    issuer.publish(&[&key_a.jwks, &key_b.jwks]);
    tokio::time::sleep(Duration::from_millis(350)).await; // past the refresh interval
    assert_eq!(list(&app, &token_b).await, 200);
    assert_eq!(list(&app, &token_a).await, 200);

    // A burst of tokens naming an unknown kid fetches at most once per interval.
    tokio::time::sleep(Duration::from_millis(350)).await; // past the refresh interval
    let before = issuer.fetches();
    let unknown = token(&key_b, "key-unknown");
    let started = Instant::now();
    let statuses = futures::future::join_all((0..30).map(|_| list(&app, &unknown))).await;
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
    while list(&app, &token_a).await != 401 {
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
    assert_eq!(list(&app, &token_b).await, 200);

    // The issuer goes down: the last good set keeps serving past its TTL.
    issuer.set_down(true);
    let before = issuer.fetches();
    let down = Instant::now();
    while down.elapsed() < ttl * 2 {
        assert_eq!(list(&app, &token_b).await, 200, "at {:?}", down.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        issuer.fetches() > before,
        "refreshes were attempted while down"
    );
    assert_eq!(list(&app, &token_a).await, 401);
    issuer.set_down(false);
}
