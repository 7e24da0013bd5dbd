//! What a test asks the library about itself: its admin API (state,
//! forget, evict; docs/tape-library.md) and its request log.

use super::TapeLibrary;
use serde_json::{json, Value};

impl TapeLibrary {
    /// `GET /admin/state` (see docs/tape-library.md).
    pub async fn state(&self) -> Value {
        let res = self
            .authed(self.http.get(format!("{}/admin/state", self.url())))
            .send()
            .await
            .expect("GET /admin/state");
        assert_eq!(res.status(), 200, "GET /admin/state");
        res.json().await.unwrap()
    }

    /// `POST /admin/forget`: every request, queued recall and pin dropped,
    /// as a restart would.
    pub async fn forget(&self) {
        let res = self
            .authed(self.http.post(format!("{}/admin/forget", self.url())))
            .send()
            .await
            .expect("POST /admin/forget");
        assert_eq!(res.status(), 204, "POST /admin/forget");
    }

    /// `POST /admin/evict`: removes these copies from the buffer whatever
    /// their pins (an empty list: every unpinned copy); the paths evicted.
    pub async fn evict(&self, paths: &[&str]) -> Vec<String> {
        let rb = self.authed(self.http.post(format!("{}/admin/evict", self.url())));
        let rb = if paths.is_empty() {
            rb
        } else {
            rb.json(&json!({ "paths": paths }))
        };
        let res = rb.send().await.expect("POST /admin/evict");
        assert_eq!(res.status(), 200, "POST /admin/evict");
        let body: Value = res.json().await.unwrap();
        body["evicted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_owned())
            .collect()
    }

    /// Volumes mounted since the start (a restart counts from 0 again).
    pub async fn mounts(&self) -> u64 {
        self.state().await["mounts"].as_u64().unwrap()
    }

    /// Pins held on the buffer's copies, in all.
    pub async fn pins(&self) -> usize {
        let state = self.state().await;
        state["buffer"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["pins"].as_array().map_or(0, Vec::len))
            .sum()
    }

    /// The paths in the buffer (on disk).
    pub async fn on_disk(&self) -> Vec<String> {
        let state = self.state().await;
        state["buffer"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The stage requests it knows, in the progress shape.
    pub async fn requests(&self) -> Vec<Value> {
        self.state().await["requests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// STAGE requests accepted (201) since the first start, across
    /// restarts and whether or not they were deleted since: counted in the
    /// request log.
    pub fn stage_requests_seen(&self) -> usize {
        self.log_text()
            .lines()
            .filter(|l| {
                l.contains("method=POST uri=/api/v1/stage ")
                    || l.contains("method=POST uri=/api/v1/stage/ ")
            })
            .filter(|l| l.contains("status=201"))
            .count()
    }
}
