//! What a client relies on in a delivery: every link downloads exactly the
//! bytes that the SHA-256 given for it (by GET and by the webhook)
//! describes, under a name no other delivered file has, and the bucket
//! holds one object per name.

use super::{app::TestApp, receiver::verify_with_standardwebhooks, CLIENT};
use sha2::{Digest, Sha256};
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

impl TestApp {
    /// The `dissemination.delivered` webhook of `id`, once it arrived,
    /// verified with `standardwebhooks`.
    pub async fn delivered_webhook(&self, id: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            for r in self.receiver.all() {
                let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                if body["data"]["disseminationId"] == id
                    && body["type"] == "dissemination.delivered"
                {
                    verify_with_standardwebhooks(&self.webhook_secret, &r)
                        .expect("signature verifies");
                    return body;
                }
            }
            assert!(Instant::now() < deadline, "no delivered webhook for {id}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Downloads every link of delivered dissemination `id` (owned by
    /// CLIENT) and checks its bytes against the size and SHA-256 that GET
    /// and the webhook give for it; names are distinct and the bucket
    /// holds exactly one object per name. The bytes, by delivered name.
    pub async fn assert_every_link_delivers(
        &self,
        token: &str,
        id: &str,
    ) -> BTreeMap<String, Vec<u8>> {
        let view = self.api(token).view(id).await;
        assert_eq!(view.status, model::DisseminationStatus::Disseminated);
        let hook = self.delivered_webhook(id).await;
        let hooked: BTreeMap<String, &serde_json::Value> = hook["data"]["files"]
            .as_array()
            .expect("the webhook lists files")
            .iter()
            .map(|f| (f["filename"].as_str().unwrap().to_owned(), f))
            .collect();
        assert_eq!(
            hooked.len(),
            view.files.len(),
            "GET and the webhook list the same files under distinct names: {hook}"
        );
        let mut out = BTreeMap::new();
        for f in &view.files {
            let bytes = reqwest::get(&f.download_url).await.unwrap();
            assert_eq!(bytes.status(), 200, "{}", f.filename);
            let bytes = bytes.bytes().await.unwrap().to_vec();
            let sha256 = hex::encode(Sha256::digest(&bytes));
            assert_eq!(sha256, f.checksum, "{}: GET's checksum", f.filename);
            assert_eq!(bytes.len() as u64, f.filesize, "{}: size", f.filename);
            let h = hooked
                .get(&f.filename)
                .unwrap_or_else(|| panic!("{} is not in the webhook", f.filename));
            assert_eq!(h["checksum"], sha256.as_str(), "{}: webhook's", f.filename);
            assert_eq!(h["filesize"], f.filesize, "{}", f.filename);
            let again = reqwest::get(h["downloadURL"].as_str().unwrap())
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(
                hex::encode(Sha256::digest(&again)),
                sha256,
                "{}: the webhook's link",
                f.filename
            );
            assert!(
                out.insert(f.filename.clone(), bytes).is_none(),
                "{} delivered twice",
                f.filename
            );
        }
        let prefix = self.delivered_prefix(id, view.record.archive_id.as_str());
        let mut keys = self
            .list_keys(&self.cfg.client_bucket(CLIENT), &prefix)
            .await;
        keys.sort();
        let names: Vec<String> = out.keys().map(|n| format!("{prefix}{n}")).collect();
        assert_eq!(keys, names, "one object per delivered name");
        out
    }

    /// `dissemination/{id}/{archiveId}/`: where a delivery's objects are.
    pub fn delivered_prefix(&self, id: &str, archive_id: &str) -> String {
        format!("dissemination/{id}/{archive_id}/")
    }
}
