//! Reading request bodies so that a client can neither stall the API nor
//! miss its answer: the outermost layer of both routers reads every body,
//! bounded in time and size, before anything else sees the request.
//!
//! - A body that has not arrived within [`BODY_TIMEOUT`] (a client that
//!   declared 100 bytes and sent 10) is answered `ClientException` and the
//!   connection closed, so stalled clients hold nothing for long.
//! - A body larger than [`MAX_BODY_BYTES`] is read on and dropped, up to
//!   [`DRAIN_MAX_BYTES`], and then refused with `ClientException`: a client
//!   that sends its whole body reads the reason instead of a broken pipe.
//!   One declared or sent beyond that is refused at once, and the
//!   connection closed.

use crate::api::ApiError;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use crate::limits::{BODY_TIMEOUT, DRAIN_MAX_BYTES, MAX_BODY_BYTES};

/// What reading a body came to.
enum Read {
    Whole(Vec<u8>),
    /// Over [`MAX_BODY_BYTES`]: how much was seen, and whether all of it
    /// was read (so the connection may stay open).
    TooLarge(usize, bool),
}

fn too_large(seen: usize) -> ApiError {
    ApiError::Client(format!(
        "the request body is larger than {} KiB ({} KiB or more); send a smaller request",
        MAX_BODY_BYTES / 1024,
        seen / 1024
    ))
}

/// The refusal, with `Connection: close` when the body was not read to its
/// end (what is left of it must not be taken for the next request).
fn refuse(e: ApiError, close: bool) -> Response {
    let mut resp = e.into_response();
    if close {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

async fn read(body: Body) -> Result<Read, axum::Error> {
    let mut body = body;
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers
        };
        seen += data.len();
        if seen <= MAX_BODY_BYTES {
            buf.extend_from_slice(&data);
        } else if seen > DRAIN_MAX_BYTES {
            return Ok(Read::TooLarge(seen, false));
        }
    }
    Ok(if seen > MAX_BODY_BYTES {
        Read::TooLarge(seen, true)
    } else {
        Read::Whole(buf)
    })
}

/// The layer: read the body (bounded), then hand the request on with the
/// bytes in memory.
pub async fn read_body(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(n) = declared.filter(|&n| n > DRAIN_MAX_BYTES as u64) {
        return refuse(too_large(n.min(usize::MAX as u64) as usize), true);
    }
    match tokio::time::timeout(BODY_TIMEOUT, read(body)).await {
        Err(_) => refuse(
            ApiError::Client(format!(
                "the request body did not arrive within {} s{}; send it whole",
                BODY_TIMEOUT.as_secs(),
                declared
                    .map(|n| format!(" (it declared {n} bytes)"))
                    .unwrap_or_default()
            )),
            true,
        ),
        Ok(Err(e)) => refuse(
            ApiError::Client(format!("cannot read the request body: {e}")),
            true,
        ),
        Ok(Ok(Read::TooLarge(seen, whole))) => refuse(too_large(seen), !whole),
        Ok(Ok(Read::Whole(bytes))) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}
