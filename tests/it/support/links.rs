//! What a client relies on in a delivery: every link downloads exactly the
//! bytes that the SHA-256 given for it (by GET and by the webhook)
//! describes, under a name no other delivered file has, and the bucket
//! holds one object per name.

use super::{app::TestApp, receiver::Hook, receiver::Received, CLIENT};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

impl TestApp {
    /// The `dissemination.delivered` webhook of `id`, once it arrived,
    /// verified with `standardwebhooks`.
    pub async fn delivered_webhook(&self, id: &str) -> Hook {
        let what = format!("delivered {id}");
        self.webhook(&what, |h| h.delivered(id)).await
    }

    /// The bytes behind a link (asserting 200).
    pub async fn download(&self, url: &str) -> Vec<u8> {
        let res = self.http.get(url).send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
        res.bytes().await.unwrap().to_vec()
    }

    /// The SHA-256 (hex) of the bytes behind a link.
    pub async fn download_sha256(&self, url: &str) -> String {
        hex::encode(Sha256::digest(self.download(url).await))
    }

    /// The SHA-256 the catalog stores for the AIP's file `name` (`None`:
    /// its first).
    pub fn stored_sha256(&self, archive_id: &str, name: Option<&str>) -> String {
        let aip = self.catalog_doc(archive_id);
        let file = match name {
            Some(n) => aip.repository_files.iter().find(|f| f.relative_path == n),
            None => aip.repository_files.first(),
        };
        let file = file.unwrap_or_else(|| panic!("{archive_id} has no file {name:?}"));
        let fixity = file.fixity(model::catalog::DigestAlgorithm::Sha256);
        fixity.expect("a SHA-256").digest.clone()
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
        let hooked: BTreeMap<&str, &workflows::DeliveredFile> = hook
            .data
            .files
            .iter()
            .map(|f| (f.filename.as_str(), f))
            .collect();
        assert_eq!(
            hooked.len(),
            view.files.len(),
            "GET and the webhook list the same files under distinct names: {hook:?}"
        );
        let mut out = BTreeMap::new();
        for f in &view.files {
            let bytes = self.download(&f.download_url).await;
            let sha256 = hex::encode(Sha256::digest(&bytes));
            assert_eq!(sha256, f.checksum, "{}: GET's checksum", f.filename);
            assert_eq!(bytes.len() as u64, f.filesize, "{}: size", f.filename);
            let h = hooked
                .get(f.filename.as_str())
                .unwrap_or_else(|| panic!("{} is not in the webhook", f.filename));
            assert_eq!(h.checksum, sha256, "{}: webhook's", f.filename);
            assert_eq!(h.filesize, f.filesize, "{}", f.filename);
            assert_eq!(
                self.download_sha256(&h.download_url).await,
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

    /// Dissemination `id` of `archive_id` was delivered exactly once: one
    /// message id among `hooks` for it, a `dissemination.delivered` whose
    /// first link is the bytes the catalog stores, one object in the bucket.
    pub async fn assert_delivered_once(
        &self,
        hooks: &[(Hook, Received)],
        archive_id: &str,
        id: &str,
    ) {
        let mine: Vec<_> = hooks.iter().filter(|(h, _)| h.is_about(id)).collect();
        let message_ids: BTreeSet<String> = mine.iter().map(|(_, r)| r.webhook_id()).collect();
        assert_eq!(message_ids.len(), 1, "one webhook id for {id}");
        let hook = &mine[0].0;
        assert_eq!(hook.kind, "dissemination.delivered");
        assert_eq!(
            self.download_sha256(&hook.data.files[0].download_url).await,
            self.stored_sha256(archive_id, None),
            "{id}"
        );
        assert_eq!(
            self.delivered_keys(id).await.len(),
            1,
            "one object for {id}"
        );
    }

    /// `dissemination/{id}/{archiveId}/`: where a delivery's objects are.
    pub fn delivered_prefix(&self, id: &str, archive_id: &str) -> String {
        format!("dissemination/{id}/{archive_id}/")
    }
}
