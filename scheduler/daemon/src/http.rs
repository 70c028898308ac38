//! The HTTP API: AWS Batch's rest-json paths (`POST /v1/submitjob`, …) plus
//! Shoal's own (`POST /shoal/v1/…`).
//!
//! Handlers only parse and validate the body (in parallel, on the async
//! runtime); everything that touches state goes to the state actor
//! ([`crate::actor`]), which replies once the change is committed.

use crate::actor::ActorHandle;
use crate::api::{ApiError, Request};
use crate::mailbox::Mailboxes;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use crate::limits::{
    AWS_ROUTE, CLIENT_TOKEN_HEADER, MAX_BODY_BYTES, MAX_POLL_WAIT_MS, SHOAL_ROUTE, TAGS_ROUTE,
};

/// An error reply in AWS's shape: `{"__type": KIND, "message": …}` with
/// `x-amzn-errortype`.
pub fn error_response(status: StatusCode, kind: &'static str, message: &str) -> Response {
    let body = serde_json::json!({ "__type": kind, "message": message });
    let mut resp = (status, body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert("x-amzn-errortype", HeaderValue::from_static(kind));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = match &self {
            ApiError::Client(_) => (StatusCode::BAD_REQUEST, "ClientException"),
            ApiError::Server(_) => (StatusCode::INTERNAL_SERVER_ERROR, "ServerException"),
            ApiError::UnknownOperation(_) => (StatusCode::NOT_FOUND, "UnknownOperationException"),
            ApiError::UnrecognizedClient(_) => {
                (StatusCode::FORBIDDEN, "UnrecognizedClientException")
            }
            ApiError::InvalidSignature(_) => (StatusCode::FORBIDDEN, "InvalidSignatureException"),
            ApiError::AccessDenied(_) => (StatusCode::FORBIDDEN, "AccessDeniedException"),
        };
        error_response(status, kind, &self.to_string())
    }
}

/// A path that is no operation of Shoal's.
async fn unknown_path(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "UnknownOperationException",
        &format!(
            "{method} {}: Shoal serves AWS Batch's job, queue, compute environment, job definition and scheduling policy operations as POST /v1/OPERATION, and tags on /v1/tags/ARN; this is not one of them",
            uri.path()
        ),
    )
}

/// An operation's path with a method other than POST.
async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "UnknownOperationException",
        &format!(
            "{method} {}: operations are called with POST and a JSON body",
            uri.path()
        ),
    )
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The state actor.
    pub actor: ActorHandle,
    /// Orders waiting for workers.
    pub mail: Mailboxes,
    /// The access keys requests must be signed with (None: any request is
    /// accepted; see [`crate::auth`]).
    pub keys: Option<std::sync::Arc<shoal_sigv4::KeyStore>>,
    /// Where SubmitJob's latency goes.
    pub metrics: crate::metrics::Metrics,
}

/// Build the router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(AWS_ROUTE, post(aws_op))
        .route(SHOAL_ROUTE, post(shoal_op))
        .route(
            TAGS_ROUTE,
            axum::routing::get(tags_op).post(tags_op).delete(tags_op),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.keys.clone(),
            crate::auth::require_signature,
        ))
        .fallback(unknown_path)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn aws_op(
    State(AppState { actor, metrics, .. }): State<AppState>,
    Path(op): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_error(e).into_response(),
    };
    // A configured scheduler has verified the SigV4 signature already
    // (crate::auth, a route layer).
    let token = headers
        .get(CLIENT_TOKEN_HEADER)
        .map(|v| v.to_str().unwrap_or("\u{1}"));
    let started = std::time::Instant::now();
    let req = Request::parse_aws(&op, &body).and_then(|r| r.with_client_token(token));
    let submit = matches!(req, Ok(Request::SubmitJob(..)));
    let resp = run(actor, req).await;
    if submit && resp.status() == StatusCode::OK {
        metrics.observe_submit(started.elapsed());
    }
    resp
}

/// The metrics listener's router: `GET /metrics` (OpenMetrics text), and
/// nothing else.
pub fn metrics_router(actor: ActorHandle) -> Router {
    Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let actor = actor.clone();
                async move {
                    match actor.scrape().await {
                        Ok(text) => {
                            let mut resp = (StatusCode::OK, text).into_response();
                            resp.headers_mut().insert(
                                header::CONTENT_TYPE,
                                HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
                            );
                            resp
                        }
                        Err(e) => e.into_response(),
                    }
                }
            }),
        )
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "this is Shoal's metrics listener: GET /metrics\n",
            )
        })
}

/// `/v1/tags/{resourceArn}`: TagResource (POST), UntagResource (DELETE),
/// ListTagsForResource (GET).
async fn tags_op(
    State(AppState { actor, .. }): State<AppState>,
    Path(arn): Path<String>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_error(e).into_response(),
    };
    let body: &[u8] = if body.iter().all(|b| b.is_ascii_whitespace()) {
        b"{}"
    } else {
        &body
    };
    run(actor, Request::parse_tags(&method, &arn, uri.query(), body)).await
}

/// A body that could not be read (too large, or broken off) is the
/// client's error, in AWS's shape like every other.
fn body_error(e: axum::extract::rejection::BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::Client(format!(
            "the request body is larger than {} KiB; send a smaller request",
            MAX_BODY_BYTES / 1024
        ))
    } else {
        ApiError::Client(format!("cannot read the request body: {e}"))
    }
}

async fn shoal_op(
    State(st): State<AppState>,
    Path(op): Path<String>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_error(e).into_response(),
    };
    let req = Request::parse_shoal(&op, &body);
    let Ok(Request::WorkerPoll(poll)) = req else {
        return run(st.actor, req).await;
    };
    // A poll: hand the reports to the actor (committed), then hold the
    // request open until orders arrive or the wait ends.
    let name = poll.name.clone();
    let wait = std::time::Duration::from_millis(poll.wait_ms.min(MAX_POLL_WAIT_MS));
    let stopping = poll.phase != shoal_model::wire::WorkerPhase::Running;
    let ack = poll.ack;
    if shoal_model::path::enabled() {
        for r in &poll.reports {
            shoal_model::path::mark(&r.task.job_id, report_step(&r.event));
        }
    }
    if let Err(e) = st.actor.call(Request::WorkerPoll(poll)).await {
        return e.into_response();
    }
    // A stopping worker takes no more orders (the actor withdrew its Starts).
    st.mail.ack(&name, ack);
    let (orders, first) = if stopping {
        Default::default()
    } else {
        st.mail.take_or_wait(&name, wait).await
    };
    if shoal_model::path::enabled() {
        for o in &orders {
            if let shoal_model::wire::Order::Start(s) = o {
                shoal_model::path::mark(&s.task.job_id, "order_sent");
            }
        }
    }
    let body =
        serde_json::to_vec(&shoal_model::wire::PollResponse { orders, first }).unwrap_or_default();
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The path step of a task report reaching the scheduler (`shoal bench path`).
fn report_step(e: &shoal_model::wire::TaskEvent) -> &'static str {
    match e {
        shoal_model::wire::TaskEvent::Started => "started_report_received",
        _ => "exit_report_received",
    }
}

async fn run(actor: ActorHandle, req: Result<Request, ApiError>) -> Response {
    let req = match req {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match actor.call(req).await {
        Ok(body) => {
            let mut resp = (StatusCode::OK, body).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(e) => e.into_response(),
    }
}
