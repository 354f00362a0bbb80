//! One server (axum-server) for plain and TLS alike, inside `ServeLimits`: a header
//! timeout, an idle timeout, a connection cap and a shutdown grace that no client can
//! stretch. A connection is idle while it has no request in flight; idle past the timeout
//! it is closed, HTTP/1 keep-alive and HTTP/2 alike (hyper closes neither by itself), and
//! when the cap is full a new connection takes the place of the one idle longest, so a
//! scrape gets through however many idle clients hold connections.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::response::Response;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::WebConfig;
use super::basic_auth::require_basic_auth;

/// What no client can stretch: how long a connection may take to send its request's
/// headers (a half-sent request otherwise holds a connection, and shutdown, forever), how
/// long a connection may sit idle with no request in flight, how many connections are open
/// at once (each is a file descriptor), and how long shutdown waits for requests in flight
/// before it closes what is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_timeout: Duration::from_secs(10),
            // Longer than the slowest scrape interval people use (60 s) and Go's idle
            // keep-alive (90 s), so Prometheus keeps its connection between scrapes.
            idle_timeout: Duration::from_secs(120),
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
    let capped = CappedAcceptor(Arc::new(Connections::new(
        limits.max_connections,
        limits.idle_timeout,
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

/// The open connections: how many, and each one's state, so that a connection over the cap
/// can take the place of the one idle longest.
struct Connections {
    cap: usize,
    idle_timeout: Duration,
    /// When the server started: activity times are milliseconds since.
    epoch: Instant,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    next_id: u64,
    by_id: BTreeMap<u64, Arc<Connection>>,
}

/// One connection as the cap and the idle timeout see it.
struct Connection {
    id: u64,
    /// Milliseconds since the server's epoch of the last byte read or written, or of a
    /// request begun or answered.
    last_active: AtomicU64,
    in_flight: AtomicUsize,
    /// Set when a new connection takes this one's place: it ends at its next read.
    evicted: AtomicBool,
    /// Who to wake to end it: the task reading it.
    reader: Mutex<Option<Waker>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Connections {
    fn new(cap: usize, idle_timeout: Duration) -> Self {
        Connections {
            cap,
            idle_timeout,
            epoch: Instant::now(),
            open: Mutex::new(Open::default()),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A place for a new connection: a free one, or the place of the connection idle longest
    /// (asked to end; until it has, the open count is over the cap by the ones leaving, and
    /// never past twice the cap). None when every connection has a request in flight.
    fn admit(&self) -> Option<Arc<Connection>> {
        let mut open = lock(&self.open);
        let leaving = open
            .by_id
            .values()
            .filter(|c| c.evicted.load(Ordering::Relaxed))
            .count();
        if open.by_id.len().saturating_sub(leaving) >= self.cap {
            if open.by_id.len() >= 2 * self.cap.max(1) {
                return None;
            }
            let victim = open
                .by_id
                .values()
                .filter(|c| {
                    !c.evicted.load(Ordering::Relaxed) && c.in_flight.load(Ordering::Relaxed) == 0
                })
                .min_by_key(|c| c.last_active.load(Ordering::Relaxed))?;
            victim.end();
        }
        open.next_id += 1;
        let connection = Arc::new(Connection {
            id: open.next_id,
            last_active: AtomicU64::new(self.now_ms()),
            in_flight: AtomicUsize::new(0),
            evicted: AtomicBool::new(false),
            reader: Mutex::new(None),
        });
        open.by_id.insert(connection.id, connection.clone());
        Some(connection)
    }

    fn closed(&self, id: u64) {
        lock(&self.open).by_id.remove(&id);
    }
}

impl Connection {
    fn end(&self) {
        self.evicted.store(true, Ordering::Relaxed);
        self.wake();
    }

    fn wake(&self) {
        if let Some(waker) = lock(&self.reader).take() {
            waker.wake();
        }
    }
}

/// Takes a connection while there is a place for it (see `Connections::admit`); one that
/// finds none is closed at once, so a flood of clients costs no more file descriptors than
/// twice the cap.
#[derive(Clone)]
struct CappedAcceptor(Arc<Connections>);

impl<S> axum_server::accept::Accept<tokio::net::TcpStream, S> for CappedAcceptor {
    type Stream = Tracked<tokio::net::TcpStream>;
    type Service = TrackedService<S>;
    type Future = std::future::Ready<std::io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        std::future::ready(match self.0.admit() {
            Some(connection) => Ok((
                Tracked {
                    stream,
                    connections: self.0.clone(),
                    connection: connection.clone(),
                    idle: Box::pin(tokio::time::sleep(self.0.idle_timeout)),
                },
                TrackedService {
                    inner: service,
                    connections: self.0.clone(),
                    connection,
                },
            )),
            None => Err(std::io::Error::other("too many open connections")),
        })
    }
}

/// A connection's stream: its reads and writes are its activity, its place in `Connections`
/// is freed when it closes, and once idle past the timeout (or evicted) it reads as ended,
/// which makes hyper close it.
struct Tracked<S> {
    stream: S,
    connections: Arc<Connections>,
    connection: Arc<Connection>,
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl<S> Tracked<S> {
    fn touch(&self) {
        self.connection
            .last_active
            .store(self.connections.now_ms(), Ordering::Relaxed);
    }

    /// Whether the connection has been idle past the timeout; if not, `cx` is woken when it
    /// would be.
    fn idle_past_timeout(&mut self, cx: &mut Context<'_>) -> bool {
        if self.connection.in_flight.load(Ordering::Relaxed) > 0 {
            return false;
        }
        let last = self.connection.last_active.load(Ordering::Relaxed);
        let deadline = tokio::time::Instant::from_std(
            self.connections.epoch + Duration::from_millis(last) + self.connections.idle_timeout,
        );
        if self.idle.deadline() != deadline {
            self.idle.as_mut().reset(deadline);
        }
        self.idle.as_mut().poll(cx).is_ready()
    }
}

impl<S> Drop for Tracked<S> {
    fn drop(&mut self) {
        self.connections.closed(self.connection.id);
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.connection.evicted.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(read) => {
                if buf.filled().len() > before {
                    self.touch();
                }
                Poll::Ready(read)
            }
            Poll::Pending => {
                *lock(&self.connection.reader) = Some(cx.waker().clone());
                // Read as ended: hyper closes the connection, whichever HTTP it speaks.
                let evicted = self.connection.evicted.load(Ordering::Relaxed);
                if evicted || self.idle_past_timeout(cx) {
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A connection's service: a request in flight keeps the connection from being idle, and
/// its answer starts the idle clock again.
#[derive(Clone)]
struct TrackedService<S> {
    inner: S,
    connections: Arc<Connections>,
    connection: Arc<Connection>,
}

/// One request in flight on a connection, until its answer is made or it is dropped.
struct InFlight {
    connections: Arc<Connections>,
    connection: Arc<Connection>,
}

impl InFlight {
    fn new(connections: Arc<Connections>, connection: Arc<Connection>) -> Self {
        connection.in_flight.fetch_add(1, Ordering::Relaxed);
        connection
            .last_active
            .store(connections.now_ms(), Ordering::Relaxed);
        InFlight {
            connections,
            connection,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.connection
            .last_active
            .store(self.connections.now_ms(), Ordering::Relaxed);
        self.connection.in_flight.fetch_sub(1, Ordering::Relaxed);
        // The reader may be waiting with no idle clock running: start it.
        self.connection.wake();
    }
}

impl<S, R> tower_service::Service<R> for TrackedService<S>
where
    S: tower_service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let in_flight = InFlight::new(self.connections.clone(), self.connection.clone());
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answer = answer.await;
            drop(in_flight);
            answer
        })
    }
}
