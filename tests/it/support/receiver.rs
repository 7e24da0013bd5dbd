//! A real HTTP server that records webhook deliveries and answers from a
//! plan, the messages typed as a test reads them, bounded waits for them,
//! and the reference library that verifies their signatures.

use super::{app::TestApp, ok_when, Wait};
use axum::{body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post, Router};
use serde::Deserialize;
use std::{
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::sync::oneshot;

/// One request a webhook receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    /// The message, typed.
    pub fn hook(&self) -> Hook {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// `webhook-id`: the same on every attempt of one message.
    pub fn webhook_id(&self) -> String {
        let id = self.headers.get("webhook-id").expect("a webhook-id");
        id.to_str().unwrap().to_owned()
    }
}

/// A webhook message (Standard Webhooks' `{type, timestamp, data}`).
#[derive(Clone, Debug, Deserialize)]
pub struct Hook {
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: String,
    pub data: HookData,
}

/// What a message is about: a dissemination (delivered: its files; failed
/// or rejected: its status and reasons) or a batch (its counts).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookData {
    pub dissemination_id: Option<String>,
    pub archive_id: Option<String>,
    pub client_id: Option<String>,
    pub contract_id: Option<String>,
    pub object_id: Option<String>,
    pub sum_size_in_bytes: Option<u64>,
    #[serde(default)]
    pub files: Vec<workflows::DeliveredFile>,
    pub status: Option<String>,
    #[serde(default)]
    pub reasons: Vec<workflows::Reason>,
    pub batch_id: Option<String>,
    pub counts: Option<workflows::BatchCounts>,
}

impl Hook {
    /// About dissemination `id`.
    pub fn is_about(&self, id: &str) -> bool {
        self.data.dissemination_id.as_deref() == Some(id)
    }

    /// `dissemination.delivered` for dissemination `id`.
    pub fn delivered(&self, id: &str) -> bool {
        self.is_about(id) && self.kind == "dissemination.delivered"
    }
}

/// A status code to answer with, and an optional `Retry-After`; code 0
/// means "answer 204 after the given number of milliseconds".
pub type PlannedAnswer = (u16, Option<String>);

/// A real HTTP server recording webhook deliveries; answers from a plan of
/// status codes, then 200.
#[derive(Clone, Default)]
pub struct Receiver {
    pub received: Arc<Mutex<Vec<Received>>>,
    pub plan: Arc<Mutex<Vec<PlannedAnswer>>>,
    pub url: String,
    addr: Option<std::net::SocketAddr>,
    stop: Arc<Mutex<Option<oneshot::Sender<()>>>>,
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap) {
    r.received.lock().unwrap().push(Received {
        headers,
        body,
        at: Instant::now(),
    });
    let next = {
        let mut plan = r.plan.lock().unwrap();
        if plan.is_empty() {
            None
        } else {
            Some(plan.remove(0))
        }
    };
    let mut out = HeaderMap::new();
    match next {
        Some((0, Some(delay_ms))) => {
            // A slow endpoint: answers, but only after the delay.
            tokio::time::sleep(Duration::from_millis(delay_ms.parse().unwrap())).await;
            (StatusCode::NO_CONTENT, out)
        }
        Some((code, retry_after)) => {
            if let Some(v) = retry_after {
                out.insert("retry-after", v.parse().unwrap());
            }
            (StatusCode::from_u16(code).unwrap(), out)
        }
        None => (StatusCode::NO_CONTENT, out),
    }
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let mut r = Receiver {
            url: format!("http://{}/hooks/dissemination", listener.local_addr()?),
            ..Default::default()
        };
        r.addr = Some(listener.local_addr()?);
        r.serve(listener);
        Ok(r)
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let app = Router::new()
            .route("/hooks/dissemination", post(receive))
            .with_state(self.clone());
        *self.stop.lock().unwrap() = Some(serve_until_stopped(listener, app));
    }

    /// The endpoint goes down: connections are refused.
    pub async fn go_down(&self) {
        if let Some(tx) = self.stop.lock().unwrap().take() {
            let _ = tx.send(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    /// Back on the same address.
    pub async fn come_back(&self) {
        let listener = tokio::net::TcpListener::bind(self.addr.unwrap())
            .await
            .unwrap();
        self.serve(listener);
    }

    pub fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl TestApp {
    /// The messages received so far, typed, with the requests.
    pub fn hooks(&self) -> Vec<(Hook, Received)> {
        let all = self.receiver.all();
        all.into_iter().map(|r| (r.hook(), r)).collect()
    }

    /// Waits (bounded) until `done` holds for the messages received; them.
    pub async fn hooks_until(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[(Hook, Received)]) -> bool,
    ) -> Vec<(Hook, Received)> {
        let so = || async {
            let hooks = self.hooks();
            let count = hooks.len();
            ok_when(done(&hooks), count).map(|()| hooks)
        };
        Wait::up_to(timeout)
            .until(&format!("{what} (messages)"), so)
            .await
    }

    /// Waits (bounded) until the receiver has at least `n` requests.
    pub async fn wait_webhooks(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let so = || async {
            let all = self.receiver.all();
            let count = all.len();
            ok_when(count >= n, count).map(|()| all)
        };
        let what = format!("{n} webhook(s) (the count so far)");
        Wait::up_to(timeout).every_ms(50).until(&what, so).await
    }

    /// The first message `pick` chooses, once it arrived (bounded),
    /// verified with `standardwebhooks`.
    pub async fn webhook(&self, what: &str, pick: impl Fn(&Hook) -> bool) -> Hook {
        let picked = || async {
            let hooks = self.hooks();
            let count = hooks.len();
            hooks.into_iter().find(|(h, _)| pick(h)).ok_or(count)
        };
        let what = format!("a webhook {what} (among the messages)");
        let (hook, r) = Wait::secs(30).every_ms(50).until(&what, picked).await;
        verify_with_standardwebhooks(&self.webhook_secret, &r).expect("signature verifies");
        hook
    }

    /// The first message about dissemination `id`, verified.
    pub async fn webhook_of(&self, id: &str) -> Hook {
        self.webhook(&format!("about {id}"), |h| h.is_about(id))
            .await
    }

    /// Asserts that the first message about dissemination `id` (bounded,
    /// verified) says it was delivered.
    pub async fn delivered(&self, id: &str) -> Hook {
        let hook = self.webhook_of(id).await;
        assert_eq!(hook.kind, "dissemination.delivered", "{hook:?}");
        hook
    }
}

/// Verifies a Standard Webhooks signature with the reference Python library.
pub fn verify_with_standardwebhooks(secret: &str, r: &Received) -> Result<(), String> {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/py");
    let script = "import sys,json\nfrom standardwebhooks import Webhook\n\
        h=json.loads(sys.argv[2])\nbody=sys.stdin.buffer.read()\nWebhook(sys.argv[1]).verify(body,h)\nprint('ok')";
    let headers = serde_json::json!({
        "webhook-id": r.headers.get("webhook-id").and_then(|v| v.to_str().ok()),
        "webhook-timestamp": r.headers.get("webhook-timestamp").and_then(|v| v.to_str().ok()),
        "webhook-signature": r.headers.get("webhook-signature").and_then(|v| v.to_str().ok()),
    });
    let mut child = Command::new("python3")
        .args(["-c", script, secret, &headers.to_string()])
        .env("PYTHONPATH", py)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&r.body)
            .map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Serves `app` on `listener` in the background until the returned sender
/// is used or dropped.
pub fn serve_until_stopped(listener: tokio::net::TcpListener, app: Router) -> oneshot::Sender<()> {
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    tx
}
