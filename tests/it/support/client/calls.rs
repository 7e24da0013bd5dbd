//! The endpoints, one `Req` each, with the status each answers when all
//! goes well and the body typed.

use super::{Answer, Api, Created, Req};
use reqwest::Method;
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::Value;
use workflows::{BatchItem, BatchView, DisseminationEvent, DisseminationView};

/// `GET /v1/disseminations`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DisseminationPage {
    pub items: Vec<DisseminationView>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

impl DisseminationPage {
    /// The ids listed, in order.
    pub fn ids(&self) -> Vec<String> {
        self.items
            .iter()
            .map(|v| v.record.dissemination_id.to_string())
            .collect()
    }
}

/// `POST /v1/dissemination-batches`' 201.
#[derive(Debug, Deserialize)]
pub struct BatchCreated {
    #[serde(flatten)]
    pub batch: BatchView,
    pub items: Vec<BatchItem>,
    /// The `Location` header.
    #[serde(skip)]
    pub location: String,
}

impl BatchCreated {
    pub fn id(&self) -> String {
        self.batch.record.batch_id.to_string()
    }

    /// The disseminations the batch started, in its order.
    pub fn owned(&self) -> Vec<String> {
        self.items
            .iter()
            .filter(|i| i.is_owned())
            .map(|i| i.dissemination_id.clone().expect("an owned item's id"))
            .collect()
    }
}

/// `GET /v1/dissemination-batches/{id}`: the batch and a page of items.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchPage {
    #[serde(flatten)]
    pub batch: BatchView,
    pub items: Vec<BatchItem>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// `GET /v1/dissemination-batches`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchList {
    pub items: Vec<BatchView>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// `{"items": [...]}`.
fn items<T: DeserializeOwned>(answer: &Answer) -> Vec<T> {
    #[derive(Deserialize)]
    struct Items<T> {
        items: Vec<T>,
    }
    answer.json::<Items<T>>().items
}

fn batch_created(answer: &Answer) -> BatchCreated {
    let mut created: BatchCreated = answer.json();
    created.location = answer.header("location").unwrap_or_default().to_owned();
    created
}

const DISSEMINATIONS: &str = "/v1/disseminations";
const BATCHES: &str = "/v1/dissemination-batches";

impl Api {
    /// `POST /v1/disseminations`: 201.
    pub fn create(&self, body: Value) -> Req<'_, Created> {
        let path = DISSEMINATIONS.to_owned();
        self.req(Method::POST, path, Some(body), 201, Answer::created)
    }

    /// `GET /v1/disseminations/{id}`: 200.
    pub fn view(&self, id: &str) -> Req<'_, DisseminationView> {
        let path = format!("{DISSEMINATIONS}/{id}");
        self.req(Method::GET, path, None, 200, Answer::json)
    }

    /// `GET …/events`: 200, asked again (bounded) while it answers 503.
    pub fn events(&self, id: &str) -> Req<'_, Vec<DisseminationEvent>> {
        let path = format!("{DISSEMINATIONS}/{id}/events");
        self.req(Method::GET, path, None, 200, items).patient()
    }

    /// The audit trail's event types, oldest first.
    pub async fn event_types(&self, id: &str) -> Vec<workflows::EventType> {
        let events = self.events(id).await;
        events.iter().map(|e| e.event_type).collect()
    }

    /// `POST …/links`: 200, the view with new links.
    pub fn links(&self, id: &str) -> Req<'_, DisseminationView> {
        let path = format!("{DISSEMINATIONS}/{id}/links");
        self.req(Method::POST, path, None, 200, Answer::json)
    }

    /// `DELETE /v1/disseminations/{id}`: 202.
    pub fn cancel(&self, id: &str) -> Req<'_, DisseminationView> {
        let path = format!("{DISSEMINATIONS}/{id}");
        self.req(Method::DELETE, path, None, 202, Answer::json)
    }

    /// `GET …/receipt`: 200, the PREMIS document.
    pub fn receipt(&self, id: &str) -> Req<'_, String> {
        let path = format!("{DISSEMINATIONS}/{id}/receipt");
        self.req(Method::GET, path, None, 200, Answer::xml)
    }

    /// `GET /v1/disseminations{query}` (`query` empty or from `?`): 200.
    pub fn list(&self, query: &str) -> Req<'_, DisseminationPage> {
        let path = format!("{DISSEMINATIONS}{query}");
        self.req(Method::GET, path, None, 200, Answer::json)
    }

    /// `GET /healthz`: 200, no token needed.
    pub fn healthz(&self) -> Req<'_, ()> {
        self.req(Method::GET, "/healthz".to_owned(), None, 200, |_| ())
    }

    /// `GET /readyz`: 200, each dependency's check.
    pub fn readyz(&self) -> Req<'_, Value> {
        self.req(Method::GET, "/readyz".to_owned(), None, 200, Answer::json)
    }

    /// A page the API serves (Swagger UI, its assets): 200, the text.
    pub fn page(&self, path: &str) -> Req<'_, String> {
        self.req(Method::GET, path.to_owned(), None, 200, |a| a.text.clone())
    }

    /// `GET /openapi.json`: 200, the document.
    pub fn openapi(&self) -> Req<'_, Value> {
        self.req(
            Method::GET,
            "/openapi.json".to_owned(),
            None,
            200,
            Answer::json,
        )
    }

    /// `POST /v1/dissemination-batches`: 201.
    pub fn create_batch(&self, body: Value) -> Req<'_, BatchCreated> {
        let path = BATCHES.to_owned();
        self.req(Method::POST, path, Some(body), 201, batch_created)
    }

    /// `GET /v1/dissemination-batches/{id}`, its first 100 items: 200.
    pub fn batch(&self, id: &str) -> Req<'_, BatchPage> {
        self.batch_page(id, None)
    }

    /// A page of 100 items from `cursor`: 200.
    pub fn batch_page(&self, id: &str, cursor: Option<&str>) -> Req<'_, BatchPage> {
        let mut path = format!("{BATCHES}/{id}?pageSize=100");
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        self.req(Method::GET, path, None, 200, Answer::json)
    }

    /// `GET /v1/dissemination-batches`: 200.
    pub fn batches(&self) -> Req<'_, BatchList> {
        self.req(Method::GET, BATCHES.to_owned(), None, 200, Answer::json)
    }

    /// `DELETE /v1/dissemination-batches/{id}`: 202.
    pub fn cancel_batch(&self, id: &str) -> Req<'_, BatchView> {
        let path = format!("{BATCHES}/{id}");
        self.req(Method::DELETE, path, None, 202, Answer::json)
    }
}
