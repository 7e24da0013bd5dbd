//! The routes as a client sees them (in process, real drive tasks with no
//! mount time and tiny files).

use super::{auth::TokenFile, router, ApiConfig, App};
use crate::{
    catalog::Catalog,
    drives,
    state::{Library, LibraryConfig},
    Shared,
};
use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
    Router,
};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc,
    },
    time::Duration,
};
use tower::ServiceExt;

const TOKEN: &str = "secret-token";

struct Fixture {
    dir: PathBuf,
    router: Router,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

fn setup(with_token: bool) -> Fixture {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tape-library-http-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("tape/aips/x")).expect("tape dir");
    std::fs::write(dir.join("tape/aips/x/primary.tar"), b"0123456789").expect("tape file");
    std::fs::write(dir.join("tokens"), format!("{TOKEN}\n")).expect("tokens");
    let lib = Library::new(LibraryConfig {
        drives: 1,
        buffer_bytes: 1 << 20,
        default_lifetime: Duration::from_secs(3600),
    });
    let catalog = Catalog::without_manifest(dir.join("tape"));
    let shared = Arc::new(Shared::new(lib, catalog, dir.join("buffer")));
    let timing = drives::Timing {
        mount: Duration::ZERO,
        unmount: Duration::ZERO,
        bytes_per_sec: 0,
    };
    let tasks = drives::spawn(shared.clone(), 1, timing);
    let app = App {
        shared,
        tokens: with_token.then(|| TokenFile::new(dir.join("tokens"))),
        api: ApiConfig {
            base: "/api/v1".into(),
            public_url: None,
            sitename: "test-site".into(),
            description: "test".into(),
            scheme: "https",
        },
    };
    Fixture {
        router: router(Arc::new(app)),
        dir,
        tasks,
    }
}

impl Fixture {
    async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "tape.test:8444")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let res = self
            .router
            .clone()
            .oneshot(req.body(body).expect("request"))
            .await
            .expect("infallible");
        let (parts, body) = res.into_parts();
        let body = body.collect().await.expect("body").to_bytes().to_vec();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// Polls the request until its file is in a terminal state.
    async fn wait_done(&self, id: &str) -> Value {
        for _ in 0..500 {
            let a = self
                .call(Method::GET, &format!("/api/v1/stage/{id}"), None, &[])
                .await;
            assert_eq!(a.status, StatusCode::OK);
            let v = a.json();
            if v.get("completedAt").is_some() {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("request {id} did not complete");
    }
}

const FILE: &str = "/aips/x/primary.tar";

#[tokio::test]
async fn discovery_points_at_the_api_on_the_origin_the_client_used() {
    let f = setup(true);
    // Open without a token, as on dCache and EOS-CTA.
    let req = Request::get("/.well-known/wlcg-tape-rest-api")
        .header(header::HOST, "tape.test:8444")
        .body(Body::empty())
        .expect("request");
    let res = f.router.clone().oneshot(req).await.expect("infallible");
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.into_body().collect().await.expect("body").to_bytes();
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["sitename"], "test-site");
    assert_eq!(v["endpoints"][0]["uri"], "https://tape.test:8444/api/v1");
    assert_eq!(v["endpoints"][0]["version"], "v1");
    assert!(v["endpoints"][0]["metadata"].is_object());
}

#[tokio::test]
async fn stage_poll_read_release_as_gfal2_sends_them() {
    let f = setup(true);
    let info = f
        .call(
            Method::POST,
            "/api/v1/archiveinfo/",
            Some(json!({"paths": [FILE, "/nope"]})),
            &[],
        )
        .await;
    assert_eq!(info.status, StatusCode::OK);
    assert_eq!(
        info.json(),
        json!([{"path": FILE, "locality": "TAPE"},
               {"path": "/nope", "error": "USER ERROR: file does not exist or is not accessible to you"}])
    );
    let not_yet = f.call(Method::GET, FILE, None, &[]).await;
    assert_eq!(not_yet.status, StatusCode::CONFLICT);
    assert_eq!(
        not_yet.headers[header::CONTENT_TYPE],
        "application/problem+json"
    );

    let created = f
        .call(
            Method::POST,
            "/api/v1/stage/",
            Some(json!({"files": [{"path": FILE, "diskLifetime": "PT1H",
              "targetedMetadata": {"test-site": {"activity": "x"}}}]})),
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.json()["requestId"]
        .as_str()
        .expect("requestId")
        .to_owned();
    assert_eq!(
        created.headers[header::LOCATION],
        format!("https://tape.test:8444/api/v1/stage/{id}").as_str()
    );
    let done = f.wait_done(&id).await;
    assert_eq!(done["id"], id.as_str());
    assert_eq!(done["files"][0]["path"], FILE);
    assert_eq!(done["files"][0]["state"], "COMPLETED");
    assert!(done["files"][0].get("onDisk").is_none(), "state xor onDisk");
    for k in ["createdAt", "startedAt", "completedAt"] {
        assert!(done[k].is_u64(), "{k}");
    }

    let info = f
        .call(
            Method::POST,
            "/api/v1/archiveinfo",
            Some(json!({"paths": [FILE]})),
            &[],
        )
        .await;
    assert_eq!(info.json()[0]["locality"], "DISK_AND_TAPE");
    let all = f.call(Method::GET, FILE, None, &[]).await;
    assert_eq!(
        (all.status, all.body.as_slice()),
        (StatusCode::OK, &b"0123456789"[..])
    );
    let part = f
        .call(Method::GET, FILE, None, &[("range", "bytes=2-4")])
        .await;
    assert_eq!(
        (part.status, part.body.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &b"234"[..])
    );
    assert_eq!(part.headers[header::CONTENT_RANGE], "bytes 2-4/10");
    let head = f.call(Method::HEAD, FILE, None, &[]).await;
    assert_eq!(head.headers[header::CONTENT_LENGTH], "10");

    let foreign = f
        .call(
            Method::POST,
            &format!("/api/v1/release/{id}"),
            Some(json!({"paths": ["/other"]})),
            &[],
        )
        .await;
    assert_eq!(foreign.status, StatusCode::BAD_REQUEST);
    let released = f
        .call(
            Method::POST,
            &format!("/api/v1/release/{id}"),
            Some(json!({"paths": [FILE]})),
            &[],
        )
        .await;
    assert_eq!((released.status, released.body.len()), (StatusCode::OK, 0));
    let state = f.call(Method::GET, "/admin/state", None, &[]).await.json();
    assert_eq!(state["buffer"]["files"][0]["pins"], json!([]));
    assert_eq!(state["mounts"], 1);

    let deleted = f
        .call(Method::DELETE, &format!("/api/v1/stage/{id}"), None, &[])
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    let gone = f
        .call(Method::GET, &format!("/api/v1/stage/{id}"), None, &[])
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.json()["status"], 404);
    assert_eq!(gone.json()["title"], "Not found");
}

#[tokio::test]
async fn cancel_refuses_a_path_outside_the_request() {
    let f = setup(false);
    let created = f
        .call(
            Method::POST,
            "/api/v1/stage",
            Some(json!({"files": [{"path": FILE}]})),
            &[],
        )
        .await;
    let id = created.json()["requestId"].as_str().expect("id").to_owned();
    let bad = f
        .call(
            Method::POST,
            &format!("/api/v1/stage/{id}/cancel"),
            Some(json!({"paths": ["/x"]})),
            &[],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["title"], "File missing from stage request");
    let unknown = f
        .call(
            Method::POST,
            "/api/v1/stage/nope/cancel",
            Some(json!({"paths": [FILE]})),
            &[],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn malformed_bodies_are_400_problems() {
    let f = setup(false);
    for (uri, body) in [
        ("/api/v1/stage", "{not json"),
        ("/api/v1/stage", r#"{"files": []}"#),
        (
            "/api/v1/stage",
            r#"{"files": [{"path": "/a", "diskLifetime": "P1Y"}]}"#,
        ),
        ("/api/v1/archiveinfo", r#"{"paths": "/a"}"#),
        ("/api/v1/archiveinfo", r#"{}"#),
    ] {
        let req = Request::post(uri).body(Body::from(body)).expect("request");
        let res = f.router.clone().oneshot(req).await.expect("infallible");
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{uri} {body}");
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let v: Value =
            serde_json::from_slice(&res.into_body().collect().await.expect("body").to_bytes())
                .expect("problem json");
        assert_eq!(v["title"], "JSON Validation error");
        assert_eq!(v["status"], 400);
    }
}

#[tokio::test]
async fn a_token_is_required_when_configured() {
    let f = setup(true);
    for (auth, expected) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some("Bearer wrong"), StatusCode::UNAUTHORIZED),
        (Some("Bearer secret-token"), StatusCode::OK),
    ] {
        let mut req = Request::get("/admin/state");
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let res = f
            .router
            .clone()
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(res.status(), expected, "{auth:?}");
        if expected == StatusCode::UNAUTHORIZED {
            assert!(res.headers().contains_key(header::WWW_AUTHENTICATE));
        }
    }
}

#[tokio::test]
async fn reserved_prefixes_and_methods() {
    let f = setup(false);
    assert_eq!(
        f.call(Method::GET, "/api/v1/nothing", None, &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        f.call(Method::GET, "/admin/nothing", None, &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        f.call(Method::GET, "/aips/none.tar", None, &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        f.call(Method::PUT, FILE, None, &[]).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let head = f.call(Method::HEAD, FILE, None, &[]).await;
    assert_eq!(
        head.status,
        StatusCode::OK,
        "HEAD answers from the namespace"
    );
    assert_eq!(head.headers[header::CONTENT_LENGTH], "10");
}
