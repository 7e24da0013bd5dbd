//! What the API answers, read once: the status, the headers and the body,
//! and the body typed as a test expects it (a view, a refusal).

use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    pub async fn read(res: reqwest::Response) -> Self {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("the body reads");
        Self {
            status,
            headers,
            text,
        }
    }

    /// The header `name`, if it is there (and text).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn expect_status(&self, status: u16, what: &str) {
        assert_eq!(
            self.status, status,
            "{what}: answered {}: {}",
            self.status, self.text
        );
    }

    /// The body as `T`; one that does not parse fails the test, with the
    /// body in the message.
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    /// The body as the error envelope, whatever the status.
    pub fn refusal(&self) -> Refused {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Envelope {
            error: RefusalDetail,
            #[serde(default)]
            dissemination_id: Option<String>,
        }
        let envelope: Envelope = serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "{}: not the error envelope ({e}): {}",
                self.status, self.text
            )
        });
        Refused {
            status: self.status,
            error: envelope.error,
            dissemination_id: envelope.dissemination_id,
            location: self.header("location").map(str::to_owned),
            retry_after: self.header("retry-after").and_then(|v| v.parse().ok()),
            text: self.text.clone(),
        }
    }

    /// Asserts `status` and the error envelope with `code` and a message.
    pub fn refused(&self, status: u16, code: &str, what: &str) -> Refused {
        self.expect_status(status, what);
        let refused = self.refusal();
        assert_eq!(refused.error.code, code, "{what}: {}", self.text);
        assert!(!refused.error.message.is_empty(), "{what}: {}", self.text);
        refused
    }

    /// A created dissemination: the view and its `Location`.
    pub fn created(&self) -> Created {
        let view: workflows::DisseminationView = self.json();
        Created {
            dissemination_id: view.record.dissemination_id.to_string(),
            status: view.status,
            location: self.header("location").unwrap_or_default().to_owned(),
            view,
        }
    }

    /// An XML document (`application/xml`).
    pub fn xml(&self) -> String {
        let kind = self.header("content-type").unwrap_or_default();
        assert!(kind.starts_with("application/xml"), "{kind}");
        self.text.clone()
    }
}

/// The error envelope's `error`, which every 4xx and 5xx carries.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefusalDetail {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub details: Option<String>,
}

/// A refused call.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub error: RefusalDetail,
    /// A 409's dissemination in progress.
    pub dissemination_id: Option<String>,
    /// The `Location` header (a 409's points at the one in progress).
    pub location: Option<String>,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
    /// The body as sent.
    pub text: String,
}

/// The answer to a POST that created a dissemination.
#[derive(Debug)]
pub struct Created {
    pub dissemination_id: String,
    pub status: model::DisseminationStatus,
    /// The `Location` header.
    pub location: String,
    pub view: workflows::DisseminationView,
}
