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

/// Whether the server closed `stream` within `wait` (a read ends, with no bytes or an error).
fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_request_is_closed_after_the_header_timeout_and_the_cap_holds() {
    let server = httpmock::MockServer::start_async().await;
    let (exporter, _dir) = exporter(&server.base_url(), "");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let web = WebConfig::default().with_limits(ServeLimits {
        header_timeout: Duration::from_millis(500),
        max_connections: 4,
        shutdown_grace: Duration::from_secs(1),
    });
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { exporter.serve_with(listener, &web, shutdown).await }
    });
    let outcome = tokio::task::spawn_blocking(move || {
        let mut held: Vec<TcpStream> = (0..4).map(|_| half_open(port)).collect();
        std::thread::sleep(Duration::from_millis(100));
        // The cap is full: a fifth connection is closed at once.
        let mut fifth = half_open(port);
        let fifth_closed = closed_within(&mut fifth, Duration::from_millis(300));
        // The held ones are closed once the header timeout passes.
        let held_closed = held
            .iter_mut()
            .all(|s| closed_within(s, Duration::from_secs(3)));
        // And the slots are free again: a whole request is answered.
        let mut whole = TcpStream::connect(("127.0.0.1", port)).unwrap();
        whole
            .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        whole
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let _ = whole.read_to_string(&mut answer);
        (fifth_closed, held_closed, answer)
    })
    .await
    .unwrap();
    assert!(outcome.0, "a connection over the cap stays open");
    assert!(outcome.1, "a half-sent request held its connection");
    assert!(outcome.2.starts_with("HTTP/1.1 200"), "{}", outcome.2);
    shutdown.cancel();
    serving.await.unwrap().unwrap();
}
