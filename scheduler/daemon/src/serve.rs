//! The accept loop of both listeners: axum's router on hyper's HTTP/1
//! connections, with hyper's header read timeout. (`axum::serve` gives its
//! connections no timer, so a client that never finished its headers held
//! its connection, and a task, for ever.) The body is bounded by
//! [`crate::body`].

use crate::limits::HEADER_TIMEOUT;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower_service::Service;

/// Serve `app` on `listener` until `stop` changes, then let the requests in
/// flight finish. Each request carries `ConnectInfo(peer(address))`.
pub async fn serve<L, P>(
    mut listener: L,
    app: Router,
    peer: impl Fn(&L::Addr) -> P,
    mut stop: tokio::sync::watch::Receiver<()>,
) where
    L: axum::serve::Listener,
    P: Clone + Send + Sync + 'static,
{
    // Every connection holds a receiver; when all are gone, so is the
    // last request.
    let (all_closed, open) = tokio::sync::watch::channel(());
    loop {
        let (io, addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => break,
        };
        let info = ConnectInfo(peer(&addr));
        let app = app.clone();
        let (mut stop, open) = (stop.clone(), open.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(info.clone());
                    let mut app = app.clone();
                    async move { app.call(req.map(axum::body::Body::new)).await }
                },
            );
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(io), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(open);
        });
    }
    drop(open);
    all_closed.closed().await;
}
