//! Connections: accepted up to a cap, each with deadlines so a slow or silent client cannot
//! hold one forever. A request's headers (and the wait for the next request on a kept-alive
//! connection) must arrive within `header_timeout`; its body within `body_timeout` of the
//! headers. On shutdown the listener stops accepting and in-flight requests finish.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tower_service::Service;

use crate::AppState;

/// A body that fails once its deadline passes, however slowly it trickles.
struct TimedBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
}

/// The error a body gives when its deadline passed; `ingest::read_body` answers 408.
#[derive(Debug)]
pub struct BodyTimeout(pub Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the body did not arrive within {} s", self.0.as_secs())
    }
}

impl std::error::Error for BodyTimeout {}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            let limit = self.limit;
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimeout(limit)))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Gives every request body its deadline (a layer on the router).
pub async fn body_deadline(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let limit = st.config.body_timeout;
    let req = req.map(|inner| {
        Body::new(TimedBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit,
        })
    });
    next.run(req).await
}

/// Whether an error reading a body was its deadline.
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyTimeout>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The client's address, as the listener saw it.
pub fn client_addr(req: &axum::http::Extensions) -> Option<SocketAddr> {
    req.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn run(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(
        state.config.max_connections.max(1),
    ));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let header_timeout = state.config.header_timeout;
    loop {
        // at the cap, further connections wait in the kernel's backlog until one closes
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // out of file descriptors and the like: wait instead of spinning
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut app = app.clone();
            async move {
                let r: Result<Response, Infallible> = app.call(req.map(Body::new)).await;
                r
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .keep_alive(true);
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    state.begin_shutdown();
    tracing::info!("shutdown requested, draining in-flight requests");
    drop(listener);
    // idle connections close at once; a request still running gets the body and header
    // deadlines' worth of time
    let wait = header_timeout + state.config.body_timeout + Duration::from_secs(30);
    if tokio::time::timeout(wait, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain period; closing them");
    }
    Ok(())
}
