//! The HTTP API as a test calls it: `Api`, one caller (a base URL and a
//! token). Each endpoint is a `Req`: awaited, it asserts the endpoint's
//! usual status and returns the body typed; `.refused(status, code)`
//! expects the error envelope instead; `.answer()` leaves the judging to
//! the test. Requests a test means to be malformed (bad JSON, a wrong
//! content type, raw headers, an unknown route) start from `Api::raw`.

mod answer;
mod calls;
mod waits;

pub use answer::{Answer, Created, Refused};
pub use calls::BatchPage;

use super::{app::TestApp, ok_when, Wait};
use reqwest::Method;
use serde_json::Value;
use std::{
    future::{Future, IntoFuture},
    pin::Pin,
    time::Duration,
};

/// One caller of the API: where it reaches it and with which token.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl TestApp {
    /// The API as the holder of `token` calls it.
    pub fn api(&self, token: &str) -> Api {
        self.api_at(&self.api_url, token)
    }

    /// The same caller through another base URL (a replica, a proxy).
    pub fn api_at(&self, base: &str, token: &str) -> Api {
        Api {
            token: Some(token.to_owned()),
            ..self.anonymous_at(base)
        }
    }

    /// A caller with no token.
    pub fn anonymous(&self) -> Api {
        self.anonymous_at(&self.api_url)
    }

    /// A caller with no token, through another base URL.
    pub fn anonymous_at(&self, base: &str) -> Api {
        Api {
            http: self.http.clone(),
            base: base.trim_end_matches('/').to_owned(),
            token: None,
        }
    }

    /// `POST /v1/disseminations` with `token` (or none): the response as is.
    pub async fn post(&self, token: Option<&str>, body: Value) -> reqwest::Response {
        let api = token.map_or_else(|| self.anonymous(), |t| self.api(t));
        api.create(body).response().await
    }

    /// `GET /v1/disseminations/{id}`: the response as is.
    pub async fn get(&self, token: &str, id: &str) -> reqwest::Response {
        self.api(token).view(id).response().await
    }

    /// `DELETE /v1/disseminations/{id}`: the response as is.
    pub async fn cancel(&self, token: &str, id: &str) -> reqwest::Response {
        self.api(token).cancel(id).response().await
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
    ) -> (String, Value) {
        let id = self.create(token, archive_id, 50).await;
        let (_, body) = self
            .poll_until(token, &id, Duration::from_secs(60), |b| {
                b["status"] == status
            })
            .await;
        (id, body)
    }

    /// See [`Api::poll_until`].
    pub async fn poll_until(
        &self,
        token: &str,
        id: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> (Vec<String>, Value) {
        self.api(token).poll_until(id, timeout, done).await
    }
}

impl Api {
    /// `method` on `path` (after the base), with the token: what the typed
    /// calls are built on, and what a deliberately malformed request
    /// starts from.
    pub fn raw(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let rb = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// A call expecting `status`, its body read by `read`.
    fn req<T>(
        &self,
        method: Method,
        path: String,
        body: Option<Value>,
        status: u16,
        read: fn(&Answer) -> T,
    ) -> Req<'_, T> {
        Req {
            api: self,
            method,
            path,
            body,
            status,
            read,
            patient: false,
        }
    }
}

/// One call of the API, not sent yet: awaited, it expects its usual status.
pub struct Req<'a, T> {
    api: &'a Api,
    method: Method,
    path: String,
    body: Option<Value>,
    status: u16,
    read: fn(&Answer) -> T,
    /// Asked again (bounded) while the API answers 503: right after an
    /// outage a worker may still be reconnecting.
    patient: bool,
}

impl<'a, T> Req<'a, T> {
    fn what(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Expects `status` rather than the call's usual one.
    pub fn expecting(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The same call, its body left unread: calls to different endpoints
    /// in one list.
    pub fn any(self) -> Req<'a, ()> {
        Req {
            api: self.api,
            method: self.method,
            path: self.path,
            body: self.body,
            status: self.status,
            read: |_| (),
            patient: self.patient,
        }
    }

    fn patient(mut self) -> Self {
        self.patient = true;
        self
    }

    /// Sends it once: the response, or why none came (a server going
    /// away mid-request).
    pub async fn send(&self) -> reqwest::Result<reqwest::Response> {
        let mut rb = self.api.raw(self.method.clone(), &self.path);
        if let Some(body) = &self.body {
            rb = rb.json(body);
        }
        rb.send().await
    }

    /// Sends it once: the response as is.
    pub async fn response(&self) -> reqwest::Response {
        self.send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", self.what()))
    }

    /// Sends it once: what the API answered, or why nothing came.
    pub async fn try_answer(&self) -> reqwest::Result<Answer> {
        Ok(Answer::read(self.send().await?).await)
    }

    /// What the API answered, whatever it is.
    pub async fn answer(&self) -> Answer {
        // A patient call asks again while the API answers 503 (a
        // dependency coming back), as a client honouring Retry-After would.
        let ask = || async {
            let answer = Answer::read(self.response().await).await;
            let unavailable = self.patient && answer.status == 503;
            if unavailable {
                Err(answer)
            } else {
                Ok(answer)
            }
        };
        let wait = Wait::secs(30).every_ms(500);
        wait.within(ask)
            .await
            .unwrap_or_else(|unavailable| unavailable)
    }

    /// Expects `status` and the error envelope with `code`.
    pub async fn refused(&self, status: u16, code: &str) -> Refused {
        self.answer().await.refused(status, code, &self.what())
    }

    /// Sends it, asserts the expected status and reads the body.
    async fn typed(&self) -> T {
        let answer = self.answer().await;
        answer.expect_status(self.status, &self.what());
        (self.read)(&answer)
    }

    /// Asks again until `done` holds for the answer (bounded): what lists
    /// show follows the visibility store, which is eventually consistent.
    pub async fn until(&self, timeout: Duration, done: impl Fn(&T) -> bool) -> T {
        let what = self.what();
        let so = || async {
            let answer = self.answer().await;
            answer.expect_status(self.status, &what);
            let got = (self.read)(&answer);
            ok_when(done(&got), answer.text).map(|()| got)
        };
        Wait::up_to(timeout).until(&what, so).await
    }
}

impl<'a, T: Send + 'a> IntoFuture for Req<'a, T> {
    type Output = T;
    type IntoFuture = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.typed().await })
    }
}

/// Asserts a refusal: `status`, the error envelope with `code` and a
/// message; returns the whole body (a 409 also names the dissemination in
/// progress).
pub async fn refused(res: reqwest::Response, status: u16, code: &str) -> Value {
    let answer = Answer::read(res).await;
    answer.refused(status, code, "the call");
    answer.json()
}

/// The body of `res`, asserting its status; a body that does not parse as
/// `T` fails the test with the body in the message.
pub async fn expect<T: serde::de::DeserializeOwned>(
    res: reqwest::Response,
    status: u16,
    what: &str,
) -> T {
    let answer = Answer::read(res).await;
    answer.expect_status(status, what);
    answer.json()
}

/// Holding a worker's slot: the one-pass transfer reads, checks and
/// uploads.
pub fn is_transferring(status: model::DisseminationStatus) -> bool {
    use model::DisseminationStatus as Status;
    matches!(
        status,
        Status::DownloadingFromRepository | Status::FixityCheck | Status::UploadingToS3
    )
}
