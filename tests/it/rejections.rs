//! Every rejected request gets the documented status and error envelope,
//! in the documented order, and starts nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{refused, Options, TestApp, AUDIENCE, CLIENT, ISSUER, OTHER_CLIENT};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde_json::{json, Value};
use worker::demo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_follow_the_contract() {
    // No worker: nothing accepted here may progress, so 409 is deterministic.
    let app = TestApp::start_with(Options {
        with_worker: false,
        ..Default::default()
    })
    .await;
    let token = app.client_token();
    let ok_body = json!({"archiveId": demo::DEMO_SINGLE});

    // 401: missing, wrong signature, expired, not yet valid, garbage.
    refused(app.post(None, ok_body.clone()).await, 401, "UNAUTHORIZED").await;
    let foreign = api::auth::dev::generate("test-key").unwrap();
    let forged = api::auth::dev::mint(
        &foreign.private_pem,
        "test-key",
        &api::auth::dev::TokenSpec {
            client_id: CLIENT,
            roles: &["2d17_R".to_owned()],
            issuer: ISSUER,
            audience: Some(AUDIENCE),
            expires_in: 3600,
            not_before_in: 0,
        },
    )
    .unwrap();
    refused(
        app.post(Some(&forged), ok_body.clone()).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let expired = app.token_with(CLIENT, &["2d17_R"], -3600, -7200);
    let body = refused(
        app.post(Some(&expired), ok_body.clone()).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert!(body["error"]["details"]
        .as_str()
        .unwrap()
        .contains("expired"));
    let future = app.token_with(CLIENT, &["2d17_R"], 7200, 3600);
    refused(
        app.post(Some(&future), ok_body.clone()).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    refused(
        app.post(Some("not.a.jwt"), ok_body.clone()).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    for token in forged_tokens(&app) {
        refused(
            app.post(Some(&token), ok_body.clone()).await,
            401,
            "UNAUTHORIZED",
        )
        .await;
    }

    // 403: a valid token without the contract's role.
    let other_contract = app.token(CLIENT, &["8a3c_R"]);
    refused(
        app.post(Some(&other_contract), ok_body.clone()).await,
        403,
        "FORBIDDEN",
    )
    .await;
    let no_roles = app.token(CLIENT, &[]);
    refused(
        app.post(Some(&no_roles), ok_body.clone()).await,
        403,
        "FORBIDDEN",
    )
    .await;

    // 404, 422.
    let unknown = json!({"archiveId": "019e404e-0000-7000-8000-000000000000"});
    refused(
        app.post(Some(&token), unknown).await,
        404,
        "ARCHIVE_NOT_FOUND",
    )
    .await;
    let not_preserved = json!({"archiveId": demo::DEMO_NOT_PRESERVED});
    refused(
        app.post(Some(&token), not_preserved).await,
        422,
        "ARCHIVE_NOT_PRESERVED",
    )
    .await;

    // 400: ids of the wrong shape, priorities out of range or not integers.
    for bad in [
        json!("not-an-id"),
        json!(""),
        json!(42),
        json!("019e404e60ab7457b7c994c453242c69"),
    ] {
        let res = app.post(Some(&token), json!({"archiveId": bad})).await;
        refused(res, 400, "INVALID_ARCHIVE_ID").await;
    }
    for bad in [json!(0), json!(101), json!("high"), json!(2.5), json!(-1)] {
        let res = app
            .post(
                Some(&token),
                json!({"archiveId": demo::DEMO_SINGLE, "priority": bad}),
            )
            .await;
        refused(res, 400, "INVALID_PRIORITY").await;
    }
    // 400: delivery formats and selections that are not what the API takes.
    for bad in [
        json!("zip"),
        json!(""),
        json!(1),
        json!(["bagit"]),
        json!("BAGIT"),
    ] {
        let res = app
            .post(
                Some(&token),
                json!({"archiveId": demo::DEMO_SINGLE, "format": bad}),
            )
            .await;
        refused(res, 400, "INVALID_FORMAT").await;
    }
    let many: Vec<String> = (0..101).map(|i| format!("f{i}.xml")).collect();
    for bad in [
        json!("METS.xml"),
        json!([]),
        json!([""]),
        json!(["/etc/passwd"]),
        json!(["../up.xml"]),
        json!(["content/../../up.xml"]),
        json!(["a//b"]),
        json!(["bad\u{0}nul"]),
        json!(["line\nbreak"]),
        json!([42]),
        json!(many),
        json!(["x".repeat(1025)]),
    ] {
        let res = app
            .post(
                Some(&token),
                json!({"archiveId": demo::DEMO_SINGLE, "select": bad}),
            )
            .await;
        refused(res, 400, "INVALID_SELECT").await;
    }
    let res = app
        .post(
            Some(&token),
            json!({"archiveId": demo::DEMO_SINGLE, "colour": "blue"}),
        )
        .await;
    refused(res, 400, "INVALID_REQUEST").await;
    let res = app
        .http
        .post(format!("{}/v1/disseminations", app.api_url))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    refused(res, 400, "INVALID_REQUEST").await;
    let res = app
        .http
        .post(format!("{}/v1/disseminations", app.api_url))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(ok_body.to_string())
        .send()
        .await
        .unwrap();
    refused(res, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    let res = app
        .http
        .post(format!("{}/v1/disseminations", app.api_url))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(format!(
            "{{\"archiveId\":\"{}\",\"pad\":\"{}\"}}",
            demo::DEMO_SINGLE,
            "x".repeat(20_000)
        ))
        .send()
        .await
        .unwrap();
    refused(res, 413, "PAYLOAD_TOO_LARGE").await;

    // Nothing above started a workflow: the first real request is accepted…
    let res = app.post(Some(&token), ok_body.clone()).await;
    assert_eq!(res.status(), 201);
    let first: Value = res.json().await.unwrap();
    let id = first["disseminationId"].as_str().unwrap().to_owned();

    // …and GET works right away, from the memo (no worker answers queries here).
    let res = app.get(&token, &id).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["disseminationId"], id.as_str());
    // Started waiting for a worker (none runs here).
    assert_eq!(body["status"], "QUEUED");

    // 409 while it is in progress, naming the existing dissemination.
    let res = app
        .post(
            Some(&token),
            json!({"archiveId": demo::DEMO_SINGLE, "priority": 5}),
        )
        .await;
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = refused(res, 409, "DISSEMINATION_IN_PROGRESS").await;
    assert_eq!(body["disseminationId"], id.as_str());
    assert_eq!(
        location.as_deref(),
        Some(format!("/v1/disseminations/{id}").as_str())
    );

    // Another client may request the same AIP; it cannot see the first one's.
    let other = app.token(OTHER_CLIENT, &["2d17_R"]);
    assert_eq!(app.post(Some(&other), ok_body.clone()).await.status(), 201);
    refused(app.get(&other, &id).await, 404, "DISSEMINATION_NOT_FOUND").await;

    // GET: unknown id, malformed id, no token.
    refused(
        app.get(&token, "0000000000000000000000").await,
        404,
        "DISSEMINATION_NOT_FOUND",
    )
    .await;
    refused(
        app.get(&token, "not-an-id").await,
        400,
        "INVALID_DISSEMINATION_ID",
    )
    .await;
    let res = app
        .http
        .get(format!("{}/v1/disseminations/{id}", app.api_url))
        .send()
        .await
        .unwrap();
    refused(res, 401, "UNAUTHORIZED").await;
}

/// Tokens with a valid shape that must not be accepted: wrong issuer, wrong
/// audience, `alg: none`, and HS256 signed with the public key (the classic
/// algorithm-confusion attack).
fn forged_tokens(app: &TestApp) -> Vec<String> {
    let roles = ["2d17_R".to_owned()];
    let spec = |issuer, audience| api::auth::dev::TokenSpec {
        client_id: CLIENT,
        roles: &roles,
        issuer,
        audience,
        expires_in: 3600,
        not_before_in: 0,
    };
    let wrong_issuer = api::auth::dev::mint(
        &app.key_pem,
        "test-key",
        &spec("http://evil/realms/dps", Some(AUDIENCE)),
    )
    .unwrap();
    let wrong_audience = api::auth::dev::mint(
        &app.key_pem,
        "test-key",
        &spec(ISSUER, Some("another-service")),
    )
    .unwrap();
    let no_audience = api::auth::dev::mint(&app.key_pem, "test-key", &spec(ISSUER, None)).unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "azp": CLIENT, "exp": now + 3600,
        "realm_access": {"roles": ["2d17_R"]}});
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": "test-key"})),
        b64(&claims)
    );
    let n = app.jwks["keys"][0]["n"].as_str().unwrap().to_owned();
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some("test-key".into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(n.as_bytes()),
    )
    .unwrap();
    vec![wrong_issuer, wrong_audience, no_audience, alg_none, hs256]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_rate_limit_is_429_with_retry_after_and_probes_need_no_token() {
    let app = TestApp::start_with(Options {
        with_worker: false,
        rate_limit_per_minute: 60,
        ..Default::default()
    })
    .await;
    let token = app.client_token();
    // Burst of 6 (a tenth of the minute's 60), then 429.
    let mut statuses = vec![];
    for _ in 0..8 {
        statuses.push(app.get(&token, "0000000000000000000000").await);
    }
    let last = statuses.pop().unwrap();
    assert!(statuses.iter().take(6).all(|r| r.status() == 404));
    let retry_after: u64 = last.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    refused(last, 429, "RATE_LIMITED").await;
    // Another client is not affected.
    let other = app.token(OTHER_CLIENT, &["2d17_R"]);
    assert_eq!(
        app.get(&other, "0000000000000000000000").await.status(),
        404
    );

    let health = app
        .http
        .get(format!("{}/healthz", app.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = app
        .http
        .get(format!("{}/readyz", app.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["temporal"], "ok");
    assert_eq!(body["checks"]["catalog"], "ok");
    // The catalog gone: not ready, and says which dependency.
    std::fs::rename(
        &app.cfg.catalog.root,
        app.cfg.catalog.root.with_extension("moved"),
    )
    .unwrap();
    let ready = app
        .http
        .get(format!("{}/readyz", app.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(
        ready.json::<Value>().await.unwrap()["checks"]["catalog"],
        "unavailable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_paths_huge_headers_and_a_base_path() {
    let app = TestApp::start_with(Options {
        with_worker: false,
        base_path: "/dps-submission".into(),
        ..Default::default()
    })
    .await;
    let token = app.client_token();
    // Mounted under the base path only.
    let res = app
        .post(Some(&token), json!({"archiveId": demo::DEMO_SINGLE}))
        .await;
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/dps-submission/v1/disseminations/"),
        "{location}"
    );
    let root = app.api_url.trim_end_matches("/dps-submission").to_owned();
    let res = app
        .http
        .get(format!("{root}/v1/disseminations/0000000000000000000000"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    refused(res, 404, "NOT_FOUND").await;
    let doc: Value = app
        .http
        .get(format!("{}/openapi.json", app.api_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["servers"][0]["url"], "/dps-submission");

    // Path ids with odd characters are 400, never 500.
    for odd in [
        "%2e%2e%2f%2e%2e%2fetc",
        "a%00b",
        "%F0%9F%92%A9",
        "x'%20OR%201=1",
        "0000000000000000000000%0A",
    ] {
        let res = app.get(&token, odd).await;
        assert!(
            res.status() == 400 || res.status() == 404,
            "{odd}: {}",
            res.status()
        );
        let body: Value = res.json().await.unwrap();
        assert!(body["error"]["code"].is_string(), "{odd}: {body}");
    }
    // An unknown route and a wrong method get the envelope too.
    let res = app
        .http
        .put(format!("{}/v1/disseminations", app.api_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    refused(res, 405, "METHOD_NOT_ALLOWED").await;

    // Huge headers are refused by the HTTP layer (431), not a 500.
    let res = app
        .http
        .get(format!(
            "{}/v1/disseminations/0000000000000000000000",
            app.api_url
        ))
        .bearer_auth(&token)
        .header("x-padding", "x".repeat(200_000))
        .send()
        .await;
    if let Ok(res) = res {
        assert!(res.status().is_client_error(), "{}", res.status());
    }
    let huge_token = "e".repeat(100_000);
    let res = app
        .post(Some(&huge_token), json!({"archiveId": demo::DEMO_SINGLE}))
        .await;
    assert!(res.status().is_client_error(), "{}", res.status());
}
