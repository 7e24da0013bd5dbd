//! Every rejected request gets the documented status and error envelope,
//! in the documented order, and starts nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{refused, Options, TestApp, AUDIENCE, CLIENT, ISSUER, OTHER_CLIENT};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use model::DisseminationStatus;
use reqwest::Method;
use serde_json::{json, Value};
use worker::demo;

/// An id no dissemination has.
const UNKNOWN: &str = "0000000000000000000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_follow_the_contract() {
    // No worker: nothing accepted here may progress, so 409 is deterministic.
    let app = TestApp::start_with(Options::without_worker()).await;
    let token = app.client_token();
    let api = app.api(&token);
    let ok_body = json!({"archiveId": demo::DEMO_SINGLE});

    // 401: missing, wrong signature, expired, not yet valid, garbage.
    let anonymous = app.anonymous();
    anonymous
        .create(ok_body.clone())
        .refused(401, "UNAUTHORIZED")
        .await;
    let expired = app.token_with(CLIENT, &["2d17_R"], -3600, -7200);
    let refusal = app
        .api(&expired)
        .create(ok_body.clone())
        .refused(401, "UNAUTHORIZED")
        .await;
    assert!(refusal.error.details.unwrap().contains("expired"));
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
    let future = app.token_with(CLIENT, &["2d17_R"], 7200, 3600);
    let unauthorized = [forged, future, "not.a.jwt".to_owned()]
        .into_iter()
        .chain(forged_tokens(&app))
        .map(|t| (t, 401, "UNAUTHORIZED"));
    // 403: a valid token without the contract's role.
    let forbidden = [app.token(CLIENT, &["8a3c_R"]), app.token(CLIENT, &[])]
        .into_iter()
        .map(|t| (t, 403, "FORBIDDEN"));
    for (t, status, code) in unauthorized.chain(forbidden) {
        app.api(&t)
            .create(ok_body.clone())
            .refused(status, code)
            .await;
    }

    // 404, 422, and 400: ids of the wrong shape, priorities out of range or
    // not integers, delivery formats and selections the API does not take.
    let many: Vec<String> = (0..101).map(|i| format!("f{i}.xml")).collect();
    let cases = [
        (
            "archiveId",
            vec![json!("019e404e-0000-7000-8000-000000000000")],
            404,
            "ARCHIVE_NOT_FOUND",
        ),
        (
            "archiveId",
            vec![json!(demo::DEMO_NOT_PRESERVED)],
            422,
            "ARCHIVE_NOT_PRESERVED",
        ),
        (
            "archiveId",
            vec![
                json!("not-an-id"),
                json!(""),
                json!(42),
                json!("019e404e60ab7457b7c994c453242c69"),
            ],
            400,
            "INVALID_ARCHIVE_ID",
        ),
        (
            "priority",
            vec![json!(0), json!(101), json!("high"), json!(2.5), json!(-1)],
            400,
            "INVALID_PRIORITY",
        ),
        (
            "format",
            vec![
                json!("zip"),
                json!(""),
                json!(1),
                json!(["bagit"]),
                json!("BAGIT"),
            ],
            400,
            "INVALID_FORMAT",
        ),
        (
            "select",
            vec![
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
            ],
            400,
            "INVALID_SELECT",
        ),
        ("colour", vec![json!("blue")], 400, "INVALID_REQUEST"),
    ];
    for (field, values, status, code) in cases {
        for value in values {
            let mut body = ok_body.clone();
            body[field] = value;
            api.create(body).refused(status, code).await;
        }
    }
    // Bodies no typed call sends: not JSON, not said to be JSON, too large.
    let post = || api.raw(Method::POST, "/v1/disseminations");
    let json_type = ("content-type", "application/json");
    for (req, status, code) in [
        (
            post().header(json_type.0, json_type.1).body("{not json"),
            400,
            "INVALID_REQUEST",
        ),
        (
            post()
                .header("content-type", "text/plain")
                .body(ok_body.to_string()),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            post().header(json_type.0, json_type.1).body(format!(
                "{{\"archiveId\":\"{}\",\"pad\":\"{}\"}}",
                demo::DEMO_SINGLE,
                "x".repeat(20_000)
            )),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
    ] {
        refused(req.send().await.unwrap(), status, code).await;
    }

    // Nothing above started a workflow: the first real request is accepted…
    let id = api.create(ok_body.clone()).await.dissemination_id;

    // …and GET works right away, from the memo (no worker answers queries here).
    let view = api.view(&id).await;
    assert_eq!(view.record.dissemination_id.as_str(), id);
    // Started waiting for a worker (none runs here).
    assert_eq!(view.status, DisseminationStatus::Queued);

    // 409 while it is in progress, naming the existing dissemination.
    let conflict = api
        .create(json!({"archiveId": demo::DEMO_SINGLE, "priority": 5}))
        .refused(409, "DISSEMINATION_IN_PROGRESS")
        .await;
    assert_eq!(conflict.dissemination_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        conflict.location.as_deref(),
        Some(format!("/v1/disseminations/{id}").as_str())
    );

    // Another client may request the same AIP; it cannot see the first one's.
    let other = app.api(&app.token(OTHER_CLIENT, &["2d17_R"]));
    other.create(ok_body.clone()).await;
    other
        .view(&id)
        .refused(404, "DISSEMINATION_NOT_FOUND")
        .await;

    // GET: unknown id, malformed id, no token.
    api.view(UNKNOWN)
        .refused(404, "DISSEMINATION_NOT_FOUND")
        .await;
    api.view("not-an-id")
        .refused(400, "INVALID_DISSEMINATION_ID")
        .await;
    anonymous.view(&id).refused(401, "UNAUTHORIZED").await;
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
        rate_limit_per_minute: 60,
        ..Options::without_worker()
    })
    .await;
    let api = app.api(&app.client_token());
    // Burst of 6 (a tenth of the minute's 60), then 429.
    let mut answers = vec![];
    for _ in 0..8 {
        answers.push(api.view(UNKNOWN).answer().await);
    }
    let last = answers.pop().unwrap();
    assert!(answers.iter().take(6).all(|a| a.status == 404));
    let limited = last.refused(429, "RATE_LIMITED", "the eighth GET");
    let retry_after = limited.retry_after.expect("Retry-After in seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    // Another client is not affected.
    let other = app.api(&app.token(OTHER_CLIENT, &["2d17_R"]));
    other
        .view(UNKNOWN)
        .refused(404, "DISSEMINATION_NOT_FOUND")
        .await;

    let probe = app.anonymous();
    probe.healthz().await;
    let ready = probe.readyz().await;
    assert_eq!(ready["checks"]["temporal"], "ok");
    assert_eq!(ready["checks"]["catalog"], "ok");
    // The catalog gone: not ready, and says which dependency.
    std::fs::rename(
        &app.cfg.catalog.root,
        app.cfg.catalog.root.with_extension("moved"),
    )
    .unwrap();
    let ready = probe.readyz().expecting(503).await;
    assert_eq!(ready["checks"]["catalog"], "unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_paths_huge_headers_and_a_base_path() {
    let app = TestApp::start_with(Options {
        base_path: "/dps-submission".into(),
        ..Options::without_worker()
    })
    .await;
    let token = app.client_token();
    let api = app.api(&token);
    // Mounted under the base path only.
    let created = api.create(json!({"archiveId": demo::DEMO_SINGLE})).await;
    let location = &created.location;
    assert!(
        location.starts_with("/dps-submission/v1/disseminations/"),
        "{location}"
    );
    let root = app.api_url.trim_end_matches("/dps-submission").to_owned();
    app.api_at(&root, &token)
        .view(UNKNOWN)
        .refused(404, "NOT_FOUND")
        .await;
    let doc = app.anonymous().openapi().await;
    assert_eq!(doc["servers"][0]["url"], "/dps-submission");

    // Path ids with odd characters are 400, never 500.
    for odd in [
        "%2e%2e%2f%2e%2e%2fetc",
        "a%00b",
        "%F0%9F%92%A9",
        "x'%20OR%201=1",
        "0000000000000000000000%0A",
    ] {
        let answer = api.view(odd).answer().await;
        assert!(
            answer.status == 400 || answer.status == 404,
            "{odd}: {}",
            answer.status
        );
        answer.refusal();
    }
    // An unknown route and a wrong method get the envelope too.
    let res = api.raw(Method::PUT, "/v1/disseminations").send().await;
    refused(res.unwrap(), 405, "METHOD_NOT_ALLOWED").await;

    // Huge headers are refused by the HTTP layer (431), not a 500.
    let res = api
        .raw(Method::GET, &format!("/v1/disseminations/{UNKNOWN}"))
        .header("x-padding", "x".repeat(200_000))
        .send()
        .await;
    if let Ok(res) = res {
        assert!(res.status().is_client_error(), "{}", res.status());
    }
    let huge_token = "e".repeat(100_000);
    let answer = app
        .api(&huge_token)
        .create(json!({"archiveId": demo::DEMO_SINGLE}))
        .answer()
        .await;
    assert!((400..500).contains(&answer.status), "{}", answer.status);
}
