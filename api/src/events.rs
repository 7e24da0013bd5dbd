//! The caller's event feed (v1.2): `GET /v1/events`, every webhook message
//! the service sent it (or would have, without a webhook URL) in the order
//! they happened, paged by an opaque cursor; and `POST /v1/webhooks/recover`,
//! which sends again what its endpoint did not take. The feed is kept by
//! the `feed` crate (an ordered, exactly-once log per client in S3); a
//! recovery runs as a `WebhookRecovery` workflow on the batch queue.

use crate::{
    error::{ApiError, ErrorBody, ErrorCode},
    extract::{AppJson, AppQuery, AuthenticatedClient, RequestBody},
    state::AppState,
};
use axum::{
    extract::State,
    http::StatusCode,
    routing::{get, post},
    Json, Router,
};
use chrono::{DateTime, Utc};
use feed::FeedError;
use platform::config::ApiConfig;
use serde::{Deserialize, Serialize};
use temporalio_client::{WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowStartOptions};

/// Events one recovery sends at most (a client further behind asks again
/// from the last one it got).
pub const MAX_RECOVERED: usize = 10_000;

/// Events of a page when `pageSize` is absent.
const DEFAULT_PAGE: usize = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/events", get(list))
        .route("/v1/webhooks/recover", post(recover))
}

/// Where to start, which types and how many.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// A `cursor` (or `nextCursor`) of an earlier page: the events after
    /// it. Absent or empty: from the oldest event kept. One the API did not
    /// issue to this client is refused (`INVALID_CURSOR`).
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    after: Option<String>,
    /// Comma-separated event types (`dissemination.delivered`,
    /// `dissemination.failed`, `dissemination-batch.completed`); all when
    /// absent or empty.
    #[param(
        pattern = "^((dissemination\\.delivered|dissemination\\.failed|dissemination-batch\\.completed)(,(dissemination\\.delivered|dissemination\\.failed|dissemination-batch\\.completed))*)?$"
    )]
    types: Option<String>,
    /// Events per page, 1..`events.max_page_size` (500 by default); 100
    /// when absent.
    #[param(minimum = 1, maximum = 500)]
    page_size: Option<i32>,
}

/// One event: exactly the webhook's body and `webhook-id`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedEvent {
    /// Resumes after this event (`after`).
    pub cursor: String,
    /// The webhook message's `webhook-id`.
    pub webhook_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// RFC 3339.
    pub occurred_at: String,
    /// The webhook's JSON body, byte for byte.
    #[schema(value_type = Object)]
    pub payload: Box<serde_json::value::RawValue>,
}

/// A page of the caller's events, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    pub items: Vec<FeedEvent>,
    /// Pass as `after` for what comes next (always present: a client that
    /// is up to date polls with it).
    pub next_cursor: String,
    /// More events can be had at once with `nextCursor`; false when the
    /// caller is up to date.
    pub more: bool,
}

fn feed_error(e: FeedError) -> ApiError {
    match e {
        FeedError::BadCursor(_) => ApiError::new(
            ErrorCode::InvalidCursor,
            "the cursor was not issued to this client by this service",
        ),
        FeedError::Unavailable(_) => ApiError::unavailable("the event store", e),
        FeedError::Invalid(_) => ApiError::internal(e),
    }
}

fn event_types(asked: Option<&str>) -> Result<Vec<String>, ApiError> {
    let Some(asked) = asked else {
        return Ok(Vec::new());
    };
    // (Empty items, as in `types=`, ask for nothing in particular.)
    let types: Vec<String> = asked
        .split(',')
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    if let Some(bad) = types
        .iter()
        .find(|t| !feed::EVENT_TYPES.contains(&t.as_str()))
    {
        return Err(ApiError::new(
            ErrorCode::InvalidEventType,
            format!(
                "unknown event type {bad:?}; the types are {}",
                feed::EVENT_TYPES.join(", ")
            ),
        ));
    }
    Ok(types)
}

/// The caller's events in the order they happened: each webhook message
/// (`dissemination.delivered`, `.failed`, `dissemination-batch.completed`)
/// with the body and `webhook-id` it was sent with, kept at least
/// `events.retention_days`. Walking with the cursor of the last page sees
/// every event exactly once, in order, however many workers and API
/// replicas produce and serve them.
#[utoipa::path(get, path = "/v1/events", tag = "events",
    params(EventParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the caller's events", body = EventPage),
        (status = 400, description = "INVALID_CURSOR, INVALID_EVENT_TYPE, INVALID_PAGE_SIZE", body = ErrorBody),
        (status = 503, description = "The event store is unavailable", body = ErrorBody),
        crate::responses::Authenticated,
    ))]
pub async fn list(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    AppQuery(params): AppQuery<EventParams>,
) -> Result<Json<EventPage>, ApiError> {
    let max = state.feed.max_page_size();
    let size = match params.page_size.map(usize::try_from) {
        None => DEFAULT_PAGE.min(max),
        Some(Ok(n)) if (1..=max).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidPageSize,
                format!("pageSize must be 1..{max}"),
            ))
        }
    };
    let types = event_types(params.types.as_deref())?;
    let page = state
        .feed
        .page(
            claims.client_id.as_str(),
            params.after.as_deref().filter(|a| !a.is_empty()),
            &types,
            size,
        )
        .await
        .map_err(feed_error)?;
    Ok(Json(EventPage {
        items: page
            .events
            .into_iter()
            .map(|(cursor, e)| FeedEvent {
                cursor: cursor.as_str().to_owned(),
                webhook_id: e.webhook_id,
                event_type: e.event_type,
                occurred_at: e.occurred_at,
                payload: e.payload,
            })
            .collect(),
        next_cursor: page.next.as_str().to_owned(),
        more: page.more,
    }))
}

/// `POST /v1/webhooks/recover`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverIn {
    /// RFC 3339; not in the future, and at most `events.retention_days`
    /// back.
    #[serde(default)]
    #[schema(value_type = String, format = DateTime, required = true, example = "2026-12-01T00:00:00Z")]
    since: Option<serde_json::Value>,
}

/// A recovery's request, checked against the clock (not yet the window).
pub struct Recover {
    since: DateTime<Utc>,
}

impl RequestBody for Recover {
    type Wire = RecoverIn;

    fn parse(wire: RecoverIn, _api: &ApiConfig) -> Result<Self, ApiError> {
        let invalid = |m: &str| ApiError::new(ErrorCode::InvalidSince, m.to_owned());
        let since = match wire.since {
            Some(serde_json::Value::String(s)) => DateTime::parse_from_rfc3339(&s)
                .map_err(|_| invalid("since must be an RFC 3339 date-time"))?,
            Some(_) => return Err(invalid("since must be an RFC 3339 date-time")),
            None => return Err(invalid("since is required")),
        };
        let since = since.with_timezone(&Utc);
        if since > Utc::now() {
            return Err(invalid("since is in the future"));
        }
        Ok(Self { since })
    }
}

/// How many events a recovery sends again.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryStarted {
    /// Events since `since` the endpoint did not take with a 2xx (at most
    /// 10,000), being sent again in order, each with its `webhook-id`.
    pub count: usize,
    /// The workflow sending them (absent when there is nothing to send).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_id: Option<String>,
}

/// Send again every event of the caller since `since` that its webhook
/// endpoint did not acknowledge with a 2xx: a new attempt of the same
/// message (same `webhook-id` and body, new timestamp and signature).
#[utoipa::path(post, path = "/v1/webhooks/recover", tag = "events",
    request_body = RecoverIn,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "The events are being sent again", body = RecoveryStarted),
        (status = 400, description = "INVALID_SINCE: malformed, in the future or past the retention window", body = ErrorBody),
        (status = 503, description = "The event store or Temporal is unavailable", body = ErrorBody),
        crate::responses::JsonBody,
    ))]
pub async fn recover(
    State(state): State<AppState>,
    AuthenticatedClient(claims): AuthenticatedClient,
    AppJson(req): AppJson<Recover>,
) -> Result<(StatusCode, Json<RecoveryStarted>), ApiError> {
    if req.since < state.feed.oldest_allowed() {
        return Err(ApiError::new(
            ErrorCode::InvalidSince,
            format!(
                "since is more than the {} days events are kept back",
                state.cfg.events.retention_days
            ),
        ));
    }
    let client = claims.client_id.as_str();
    let count = state
        .feed
        .undelivered_since(client, req.since, MAX_RECOVERED)
        .await
        .map_err(feed_error)?
        .len();
    let recovery_id = if count > 0 {
        Some(start_recovery(&state, client, req.since, count).await?)
    } else {
        None
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(RecoveryStarted { count, recovery_id }),
    ))
}

async fn start_recovery(
    state: &AppState,
    client: &str,
    since: DateTime<Utc>,
    count: usize,
) -> Result<String, ApiError> {
    let id = format!("recover-{client}-{}", uuid_v4());
    let input = workflows::RecoveryInput {
        client_id: client.to_owned(),
        since: model::time::Timestamp::at(&since),
        limit: u32::try_from(count).unwrap_or(u32::MAX),
        settings: crate::settings::workflow_settings(&state.cfg),
    };
    let opts = WorkflowStartOptions::new(state.cfg.batch_queue(), id.clone())
        .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        .static_summary(format!(
            "send again {count} event(s) of {client} since {since}"
        ))
        .build();
    state
        .temporal
        .bounded(async {
            state
                .temporal
                .client
                .start_workflow(workflows::WebhookRecovery::run, input, opts)
                .await
                .map(|_| ())
                .map_err(|e| ApiError::unavailable("Temporal", e))
        })
        .await?;
    Ok(id)
}

/// A random id (122 bits), hex.
fn uuid_v4() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_checked_against_the_emitted_ones() {
        assert!(event_types(None).unwrap_or_default().is_empty());
        assert_eq!(
            event_types(Some("dissemination.delivered,dissemination.failed")).ok(),
            Some(vec![
                "dissemination.delivered".to_owned(),
                "dissemination.failed".to_owned()
            ])
        );
        assert!(event_types(Some("")).unwrap_or_default().is_empty());
        for bad in [
            "dissemination.staged",
            "delivered,",
            "dissemination.failed,x",
        ] {
            let e = event_types(Some(bad)).err();
            assert_eq!(
                e.map(|e| e.code),
                Some(ErrorCode::InvalidEventType),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn since_must_be_a_past_rfc3339_time() {
        let api = ApiConfig::default();
        let parse = |v: serde_json::Value| {
            Recover::parse(
                serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}")),
                &api,
            )
        };
        assert!(parse(serde_json::json!({"since": "2020-01-01T00:00:00Z"})).is_ok());
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"since": 5}),
            serde_json::json!({"since": "yesterday"}),
            serde_json::json!({"since": "2999-01-01T00:00:00Z"}),
        ] {
            let code = parse(bad.clone()).err().map(|e| e.code);
            assert_eq!(code, Some(ErrorCode::InvalidSince), "{bad}");
        }
    }
}
