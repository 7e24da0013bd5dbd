//! An issuer's JWKS endpoint served by the test itself: the key set can be
//! swapped (a rotation) and the endpoint taken down (an outage); every
//! fetch is counted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::{extract::State, http::StatusCode, response::IntoResponse, routing::get, Json, Router};
use serde_json::{json, Value};
use std::sync::{
    atomic::{AtomicBool, AtomicUsize, Ordering},
    Arc, Mutex,
};
use tokio::sync::oneshot;

#[derive(Clone, Default)]
struct Shared {
    keys: Arc<Mutex<Vec<Value>>>,
    down: Arc<AtomicBool>,
    fetches: Arc<AtomicUsize>,
}

/// Serves `/realms/dps/protocol/openid-connect/certs` on 127.0.0.1:0 until dropped.
pub struct JwksServer {
    pub url: String,
    shared: Shared,
    stop: Option<oneshot::Sender<()>>,
}

async fn certs(State(s): State<Shared>) -> axum::response::Response {
    s.fetches.fetch_add(1, Ordering::SeqCst);
    if s.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let keys = s.keys.lock().unwrap().clone();
    Json(json!({ "keys": keys })).into_response()
}

impl JwksServer {
    /// Publishes the keys of the given JWKS documents (`dev::generate`'s `jwks`).
    pub async fn start(sets: &[&Value]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/realms/dps/protocol/openid-connect/certs",
            listener.local_addr().unwrap()
        );
        let shared = Shared::default();
        let app = Router::new()
            .route("/realms/dps/protocol/openid-connect/certs", get(certs))
            .with_state(shared.clone());
        let server = Self {
            url,
            shared,
            stop: Some(crate::support::serve_until_stopped(listener, app)),
        };
        server.publish(sets);
        server
    }

    /// Replaces the published key set.
    pub fn publish(&self, sets: &[&Value]) {
        *self.shared.keys.lock().unwrap() = sets
            .iter()
            .flat_map(|s| s["keys"].as_array().unwrap().clone())
            .collect();
    }

    /// The issuer goes down (503) or comes back.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    pub fn fetches(&self) -> usize {
        self.shared.fetches.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
