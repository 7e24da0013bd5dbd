//! Presigned S3 GET links (SigV4 query signing), computed locally and
//! deterministically from the object, the credentials and the link's
//! signing time. Links are bearer secrets: the workflow keeps only object
//! keys and expiry times, never a URL, and whoever answers (the API on GET,
//! the worker for the webhook) signs the link on the way out — the same
//! link each time, since the signing time is part of the record.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What signing needs besides the object.
pub struct Signer<'a> {
    /// `http(s)://host[:port]` clients download from (path-style URLs).
    pub endpoint: &'a str,
    pub region: &'a str,
    pub access_key: &'a str,
    pub secret_key: &'a str,
}

/// Characters left as they are in SigV4's URI encoding.
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// `YYYYMMDDTHHMMSSZ`.
fn amz_date(t: SystemTime) -> String {
    let dt: chrono::DateTime<chrono::Utc> = t.into();
    dt.format("%Y%m%dT%H%M%SZ").to_string()
}

impl Signer<'_> {
    /// A GET link for `/{bucket}/{key}` valid for `lifetime` from `signed_at`.
    pub fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        signed_at: SystemTime,
        lifetime: Duration,
    ) -> String {
        let (scheme, host) = self
            .endpoint
            .split_once("://")
            .unwrap_or(("http", self.endpoint));
        let host = host.trim_end_matches('/');
        let path = format!("/{}/{}", encode(bucket, false), encode(key, true));
        self.presign_path(scheme, host, &path, signed_at, lifetime)
    }

    fn presign_path(
        &self,
        scheme: &str,
        host: &str,
        path: &str,
        signed_at: SystemTime,
        lifetime: Duration,
    ) -> String {
        let stamp = amz_date(signed_at);
        let day = &stamp[..8];
        let scope = format!("{day}/{}/s3/aws4_request", self.region);
        let query = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}&X-Amz-Date={stamp}&X-Amz-Expires={}&X-Amz-SignedHeaders=host",
            encode(&format!("{}/{scope}", self.access_key), false),
            lifetime.as_secs()
        );
        let canonical = format!("GET\n{path}\n{query}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD");
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let mut key = hmac(format!("AWS4{}", self.secret_key).as_bytes(), day);
        for part in [self.region, "s3", "aws4_request"] {
            key = hmac(&key, part);
        }
        let signature = hex::encode(hmac(&key, &to_sign));
        format!("{scheme}://{host}{path}?{query}&X-Amz-Signature={signature}")
    }
}

/// Unix seconds of an RFC 3339 time (the record's `linkSignedAt`).
pub fn parse_time(rfc3339: &str) -> Option<SystemTime> {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?;
    let secs = u64::try_from(t.timestamp()).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of AWS's SigV4 documentation ("Authenticating Requests:
    /// Using Query Parameters"), virtual-hosted style.
    #[test]
    fn matches_the_published_example() {
        let signer = Signer {
            endpoint: "https://examplebucket.s3.amazonaws.com",
            region: "us-east-1",
            access_key: "AKIAIOSFODNN7EXAMPLE",
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        };
        let at = parse_time("2013-05-24T00:00:00Z").expect("time");
        let url = signer.presign_path(
            "https",
            "examplebucket.s3.amazonaws.com",
            "/test.txt",
            at,
            Duration::from_secs(86400),
        );
        assert!(
            url.ends_with(
                "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
            ),
            "{url}"
        );
    }

    #[test]
    fn the_same_record_gives_the_same_link() {
        let signer = Signer {
            endpoint: "http://127.0.0.1:8333",
            region: "us-east-1",
            access_key: "a",
            secret_key: "b",
        };
        let at = parse_time("2026-12-01T10:00:00.123+01:00").expect("time");
        let one = signer.presign_get(
            "bucket",
            "dissemination/x/y z.tar",
            at,
            Duration::from_secs(60),
        );
        let two = signer.presign_get(
            "bucket",
            "dissemination/x/y z.tar",
            at,
            Duration::from_secs(60),
        );
        assert_eq!(one, two);
        assert!(one.starts_with("http://127.0.0.1:8333/bucket/dissemination/x/y%20z.tar?"));
    }
}
