//! Who may call the API: the route layer that checks AWS Signature Version 4
//! ([`shoal_sigv4`]) on every request when the scheduler has access keys.
//!
//! Every operation needs a valid signature except the worker protocol's
//! (`/shoal/v1/registerworker`, `/shoal/v1/poll`), which workers call and
//! which are secured separately. Without keys (protected mode, loopback
//! only unless `--insecure-no-auth`) every request is accepted, signed or
//! not.

use crate::api::ApiError;
use crate::limits::{MAX_BODY_BYTES, WORKER_PATHS};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use shoal_sigv4::{HttpRequest, KeyStore};
use std::sync::Arc;

/// Does a request to `path` need a signature (when keys are configured)?
pub fn needs_signature(path: &str) -> bool {
    !WORKER_PATHS.contains(&path)
}

/// The route layer: with keys, refuse (403, AWS's error shape) a request
/// whose signature does not verify; pass everything else on unchanged.
pub async fn require_signature(
    State(keys): State<Option<Arc<KeyStore>>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(keys) = keys else {
        return next.run(req).await;
    };
    if !needs_signature(req.uri().path()) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    // The signature covers the body, so read it here (bounded, like the
    // handlers) and hand the same bytes on.
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::Client(format!(
                "cannot read the request body (at most {} KiB): {e}",
                MAX_BODY_BYTES / 1024
            ))
            .into_response()
        }
    };
    let headers: Vec<(&str, &[u8])> = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    let verdict = keys.verify(
        &HttpRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &headers,
            body: &bytes,
        },
        shoal_sigv4::now_secs(),
    );
    match verdict {
        Ok(_) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(e) => {
            tracing::debug!("refused {} {}: {e}", parts.method, parts.uri.path());
            ApiError::from(e).into_response()
        }
    }
}
