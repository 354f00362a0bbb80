//! What no client can stretch: a half-sent request is closed after the header timeout, a
//! connection over the cap is closed at once, and SIGTERM ends the binary in seconds with
//! half-open clients connected.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mining_exporter::web::{ServeLimits, WebConfig};
use tokio_util::sync::CancellationToken;

use crate::common::*;

/// A connection that sent half a request line and nothing more.
fn half_open(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(b"GET /metr").unwrap();
    stream
}

#[test]
fn sigterm_ends_the_binary_with_half_open_clients_connected() {
    let server = httpmock::MockServer::start();
    let (_dir, config, port) = served_config(&config_text(&server.base_url(), ""));
    let child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let mut connected = None;
    for _ in 0..100 {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            connected = Some(stream);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(connected.expect("the exporter listens"));
    let clients: Vec<TcpStream> = (0..20).map(|_| half_open(port)).collect();
    std::thread::sleep(Duration::from_millis(200));
    sigterm(&child.0);
    let asked = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break Some(status);
        }
        if asked.elapsed() > Duration::from_secs(20) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = asked.elapsed();
    drop(clients);
    let status = status.unwrap_or_else(|| panic!("still running {took:?} after SIGTERM"));
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(10), "exit took {took:?}");
}

/// Serves a test exporter with `limits` on a free port until the returned token is
/// cancelled; the port, and the serving task.
async fn serve_with(
    limits: ServeLimits,
) -> (
    u16,
    CancellationToken,
    tokio::task::JoinHandle<Result<(), mining_exporter::error::StartError>>,
    httpmock::MockServer,
    tempfile::TempDir,
) {
    let server = httpmock::MockServer::start_async().await;
    let (exporter, dir) = exporter(&server.base_url(), "");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let web = WebConfig::default().with_limits(limits);
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { exporter.serve_with(listener, &web, shutdown).await }
    });
    (port, shutdown, serving, server, dir)
}

/// A whole request on a fresh connection, answered or not within three seconds.
fn whole_request(port: u16) -> String {
    let mut whole = TcpStream::connect(("127.0.0.1", port)).unwrap();
    whole
        .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    whole
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let _ = whole.read_to_string(&mut answer);
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_request_is_closed_after_the_header_timeout_and_the_cap_holds() {
    let (port, shutdown, serving, _server, _dir) = serve_with(ServeLimits {
        // Past the 100 ms this test waits on each held connection for the one given up.
        header_timeout: Duration::from_millis(1500),
        idle_timeout: Duration::from_secs(60),
        max_connections: 4,
        shutdown_grace: Duration::from_secs(1),
    })
    .await;
    let outcome = tokio::task::spawn_blocking(move || {
        let mut held: Vec<TcpStream> = (0..4).map(|_| half_open(port)).collect();
        std::thread::sleep(Duration::from_millis(100));
        // The cap is full of connections with no request in flight: a fifth takes the
        // place of the one idle longest, which is closed at once (well before the header
        // timeout closes the others).
        let fifth = whole_request(port);
        let at_once = held
            .iter_mut()
            .filter_map(|s| drained_to_close_within(s, Duration::from_millis(100)).then_some(()))
            .count();
        let first_closed = at_once == 1;
        // The others are closed once the header timeout passes.
        let held_closed = held
            .iter_mut()
            .all(|s| drained_to_close_within(s, Duration::from_secs(3)));
        // And the places are free again: a whole request is answered.
        (fifth, first_closed, held_closed, whole_request(port))
    })
    .await
    .unwrap();
    assert!(outcome.0.starts_with("HTTP/1.1 200"), "{}", outcome.0);
    assert!(
        outcome.1,
        "not exactly one connection gave its place to the fifth"
    );
    assert!(outcome.2, "a half-sent request held its connection");
    assert!(outcome.3.starts_with("HTTP/1.1 200"), "{}", outcome.3);
    shutdown.cancel();
    serving.await.unwrap().unwrap();
}

/// An HTTP/2 client that said hello and asked nothing more (the connection preface and an
/// empty SETTINGS frame), as idle as a pooled connection between requests.
fn idle_http2(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    stream
}

/// Whether the server closed `stream` within `wait`, whatever it wrote first (an HTTP/2
/// server sends its SETTINGS, maybe a GOAWAY, before it closes).
fn drained_to_close_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let until = Instant::now() + wait;
    let mut buf = [0u8; 512];
    while Instant::now() < until {
        stream
            .set_read_timeout(Some(
                until
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            ))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
    false
}

/// Idle connections, HTTP/2 and HTTP/1 keep-alive alike, are closed after the idle timeout;
/// with the cap full of them a scrape still gets through at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_and_a_scrape_gets_through_a_cap_full_of_them() {
    let (port, shutdown, serving, _server, _dir) = serve_with(ServeLimits {
        header_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(1),
        max_connections: 8,
        shutdown_grace: Duration::from_secs(1),
    })
    .await;
    let outcome = tokio::task::spawn_blocking(move || {
        let mut idle: Vec<TcpStream> = (0..8).map(|_| idle_http2(port)).collect();
        std::thread::sleep(Duration::from_millis(200));
        let scrape = whole_request(port);
        // A keep-alive HTTP/1 connection after its answer.
        let mut keep_alive = TcpStream::connect(("127.0.0.1", port)).unwrap();
        keep_alive
            .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut first = [0u8; 64];
        keep_alive
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let answered = keep_alive.read(&mut first).unwrap_or(0) > 0;
        let started = Instant::now();
        let all_closed = idle
            .iter_mut()
            .all(|s| drained_to_close_within(s, Duration::from_secs(5)));
        let keep_alive_closed = drained_to_close_within(&mut keep_alive, Duration::from_secs(5));
        (
            scrape,
            answered,
            all_closed,
            keep_alive_closed,
            started.elapsed(),
        )
    })
    .await
    .unwrap();
    assert!(
        outcome.0.starts_with("HTTP/1.1 200"),
        "a scrape with the cap full: {:?}",
        outcome.0
    );
    assert!(outcome.1, "the keep-alive request was answered");
    assert!(outcome.2, "idle HTTP/2 connections stayed open");
    assert!(outcome.3, "an idle keep-alive connection stayed open");
    println!(
        "idle connections closed within {:?} of a 1 s idle timeout",
        outcome.4
    );
    shutdown.cancel();
    serving.await.unwrap().unwrap();
}
