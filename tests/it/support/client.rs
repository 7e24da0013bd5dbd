//! The HTTP API as a test uses it: requests, and bounded waits on what
//! they answer.

use super::app::TestApp;
use super::receiver::Received;
use std::time::{Duration, Instant};

impl TestApp {
    pub async fn post(&self, token: Option<&str>, body: serde_json::Value) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}/v1/disseminations", self.api_url))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// `method` on `path` (after the base path) with `token`, no body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::Response {
        self.http
            .request(method, format!("{}{path}", self.api_url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// `DELETE /v1/disseminations/{id}`: the client cancels.
    pub async fn cancel(&self, token: &str, id: &str) -> reqwest::Response {
        let path = format!("/v1/disseminations/{id}");
        self.call(reqwest::Method::DELETE, &path, token).await
    }

    pub async fn get(&self, token: &str, id: &str) -> reqwest::Response {
        let path = format!("/v1/disseminations/{id}");
        self.call(reqwest::Method::GET, &path, token).await
    }

    /// The audit trail (GET …/events), as (type, outcome, location) triples
    /// plus the raw items.
    pub async fn events(&self, token: &str, id: &str) -> Vec<serde_json::Value> {
        // A worker answers; right after an outage it may still be
        // reconnecting (503 with Retry-After): asked again, bounded.
        let deadline = Instant::now() + Duration::from_secs(30);
        let res = loop {
            let res = self
                .http
                .get(format!("{}/v1/disseminations/{id}/events", self.api_url))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            if res.status() != 503 || Instant::now() > deadline {
                break res;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        body["items"].as_array().unwrap().clone()
    }

    /// POSTs a dissemination and returns its id (asserting 201).
    pub async fn create(&self, token: &str, archive_id: &str, priority: u8) -> String {
        self.api(token)
            .create(serde_json::json!({"archiveId": archive_id, "priority": priority}))
            .await
            .dissemination_id
    }

    /// Creates a dissemination and waits (bounded) for `status`.
    pub async fn create_until(
        &self,
        token: &str,
        archive_id: &str,
        status: &str,
    ) -> (String, serde_json::Value) {
        let id = self.create(token, archive_id, 50).await;
        let (_, body) = self
            .poll_until(token, &id, Duration::from_secs(60), |b| {
                b["status"] == status
            })
            .await;
        (id, body)
    }

    /// Polls GET until `done` holds for the body (bounded); returns every
    /// distinct status seen, in order, and the last body.
    pub async fn poll_until(
        &self,
        token: &str,
        id: &str,
        timeout: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> (Vec<String>, serde_json::Value) {
        let deadline = Instant::now() + timeout;
        let mut seen: Vec<String> = Vec::new();
        loop {
            let res = self.get(token, id).await;
            if res.status() == 503 && Instant::now() < deadline {
                // A dependency coming back (Temporal restarted): as a client
                // would, honour Retry-After (shortened here) and ask again.
                assert!(
                    res.headers().contains_key("retry-after"),
                    "503 without Retry-After"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            assert_eq!(res.status(), 200, "GET {id}");
            let body: serde_json::Value = res.json().await.unwrap();
            let status = body["status"].as_str().unwrap_or_default().to_owned();
            if seen.last() != Some(&status) {
                seen.push(status);
            }
            if done(&body) {
                return (seen, body);
            }
            assert!(
                Instant::now() < deadline,
                "timed out; statuses seen: {seen:?}; last: {body}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits (bounded) until the receiver has at least `n` requests.
    pub async fn wait_webhooks(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let all = self.receiver.all();
            if all.len() >= n {
                return all;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} webhook(s), got {}",
                all.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    /// The audit trail's event types, oldest first.
    pub async fn event_types(&self, token: &str, id: &str) -> Vec<String> {
        self.events(token, id)
            .await
            .iter()
            .map(|e| e["eventType"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// The error envelope every 4xx and 5xx carries.
#[derive(Debug, serde::Deserialize)]
pub struct Refusal {
    pub error: RefusalDetail,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefusalDetail {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub details: Option<String>,
}

/// The answer to a POST that created a dissemination.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub dissemination_id: String,
    pub status: model::DisseminationStatus,
    /// The `Location` header.
    #[serde(skip)]
    pub location: String,
}

/// Asserts a refusal: `status`, the error envelope with `code` and a
/// message; returns the whole body (a 409 also names the dissemination in
/// progress).
pub async fn refused(res: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    let got = res.status().as_u16();
    let text = res.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    let envelope: Refusal = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not the error envelope ({e}): {text}"));
    assert_eq!(envelope.error.code, code, "{text}");
    assert!(!envelope.error.message.is_empty(), "{text}");
    serde_json::from_str(&text).unwrap()
}

/// One caller of the API, with its token: every request asserts the status
/// it expects and returns the body typed.
pub struct Api<'a> {
    app: &'a TestApp,
    token: String,
}

impl TestApp {
    /// The API as the holder of `token` calls it.
    pub fn api(&self, token: &str) -> Api<'_> {
        Api {
            app: self,
            token: token.to_owned(),
        }
    }
}

/// The body of `res`, asserting its status; a body that does not parse as
/// `T` fails the test with the body in the message.
pub async fn expect<T: serde::de::DeserializeOwned>(
    res: reqwest::Response,
    status: u16,
    what: &str,
) -> T {
    let got = res.status().as_u16();
    let body = res.text().await.unwrap();
    assert_eq!(got, status, "{what}: answered {got}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"))
}

impl Api<'_> {
    /// `POST /v1/disseminations`, expecting 201.
    pub async fn create(&self, body: serde_json::Value) -> Created {
        let res = self.app.post(Some(&self.token), body).await;
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut created: Created = expect(res, 201, "POST /v1/disseminations").await;
        created.location = location;
        created
    }

    /// `POST /v1/disseminations`, expecting `status` and the error envelope.
    pub async fn refused_create(&self, body: serde_json::Value, status: u16) -> RefusalDetail {
        let res = self.app.post(Some(&self.token), body).await;
        expect::<Refusal>(res, status, "POST /v1/disseminations")
            .await
            .error
    }

    /// `GET /v1/disseminations/{id}`, expecting 200.
    pub async fn view(&self, id: &str) -> workflows::DisseminationView {
        let res = self.app.get(&self.token, id).await;
        expect(res, 200, &format!("GET {id}")).await
    }

    /// `GET /v1/disseminations/{id}`, expecting `status` and the envelope.
    pub async fn refused_view(&self, id: &str, status: u16) -> RefusalDetail {
        let res = self.app.get(&self.token, id).await;
        expect::<Refusal>(res, status, &format!("GET {id}"))
            .await
            .error
    }

    /// `GET …/events`, expecting 200 (asked again, bounded, while a worker
    /// reconnects after an outage and the API answers 503).
    pub async fn events(&self, id: &str) -> Vec<workflows::DisseminationEvent> {
        #[derive(serde::Deserialize)]
        struct Items {
            items: Vec<workflows::DisseminationEvent>,
        }
        let url = format!("{}/v1/disseminations/{id}/events", self.app.api_url);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let res = self
                .app
                .http
                .get(&url)
                .bearer_auth(&self.token)
                .send()
                .await
                .unwrap();
            if res.status() == 503 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            return expect::<Items>(res, 200, &format!("GET {id}/events"))
                .await
                .items;
        }
    }

    /// Waits (bounded) until the view satisfies `done`; the last view.
    pub async fn wait_for(
        &self,
        id: &str,
        timeout: Duration,
        done: impl Fn(&workflows::DisseminationView) -> bool,
    ) -> workflows::DisseminationView {
        let (_, body) = self
            .app
            .poll_until(&self.token, id, timeout, |b| {
                serde_json::from_value(b.clone()).is_ok_and(|v| done(&v))
            })
            .await;
        serde_json::from_value(body).unwrap()
    }
}
