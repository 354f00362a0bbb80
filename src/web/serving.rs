//! One server (axum-server) for plain and TLS alike, inside `ServeLimits`: a header
//! timeout, a connection cap and a shutdown grace that no client can stretch.

use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::WebConfig;
use super::basic_auth::require_basic_auth;

/// What no client can stretch: how long a connection may take to send its request's
/// headers (a half-sent request otherwise holds a connection, and shutdown, forever), how
/// many connections are open at once (each is a file descriptor), and how long shutdown
/// waits for requests in flight before it closes what is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    pub header_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_timeout: Duration::from_secs(10),
            max_connections: 512,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Serves `router` on `listener` (with TLS and basic auth as `web` says) until `shutdown`.
/// Plain and TLS alike, within `ServeLimits`: a connection that has not sent its headers in
/// time is closed, one over the cap is closed at once, and after `shutdown` requests in
/// flight get the grace period, then every connection is closed, whatever clients do.
pub async fn serve(
    router: axum::Router,
    listener: TcpListener,
    web: &WebConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let router = match &web.users {
        Some(users) => router.layer(axum::middleware::from_fn_with_state(
            users.clone(),
            require_basic_auth,
        )),
        None => router,
    };
    let router = if web.headers.is_empty() {
        router
    } else {
        let headers = web.headers.clone();
        router.layer(axum::middleware::map_response(
            move |mut response: Response| {
                let headers = headers.clone();
                async move {
                    for (name, value) in headers.iter() {
                        response.headers_mut().insert(name.clone(), value.clone());
                    }
                    response
                }
            },
        ))
    };
    let limits = web.limits;
    let handle = axum_server::Handle::new();
    let stopping = handle.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        stopping.graceful_shutdown(Some(limits.shutdown_grace));
    });
    let mut server =
        axum_server::from_tcp(listener.into_std()?)?.first_request_timeout(limits.header_timeout);
    server
        .http_builder()
        .http1()
        .header_read_timeout(limits.header_timeout);
    if !web.http2 {
        server = server.http1_only();
    }
    let capped = CappedAcceptor(Arc::new(tokio::sync::Semaphore::new(
        limits.max_connections,
    )));
    let app = router.into_make_service();
    match &web.tls {
        None => server.acceptor(capped).handle(handle).serve(app).await,
        Some(tls) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_config(tls.clone());
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
                .handshake_timeout(limits.header_timeout)
                .acceptor(capped);
            server.acceptor(acceptor).handle(handle).serve(app).await
        }
    }
}

/// Takes a connection only while fewer than the cap are open; one over it is closed at
/// once, so a flood of idle clients costs no more file descriptors than the cap.
#[derive(Clone)]
struct CappedAcceptor(Arc<tokio::sync::Semaphore>);

impl<S> axum_server::accept::Accept<tokio::net::TcpStream, S> for CappedAcceptor {
    type Stream = Counted<tokio::net::TcpStream>;
    type Service = S;
    type Future = std::future::Ready<std::io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        std::future::ready(match self.0.clone().try_acquire_owned() {
            Ok(slot) => Ok((
                Counted {
                    stream,
                    _slot: slot,
                },
                service,
            )),
            Err(_) => Err(std::io::Error::other("too many open connections")),
        })
    }
}

/// A connection holding one of the cap's slots until it closes.
struct Counted<S> {
    stream: S,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Counted<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
