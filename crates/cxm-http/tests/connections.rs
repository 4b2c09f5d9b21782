//! Connections a client holds without finishing: silent ones and idle kept-alive ones are
//! closed after the header deadline, a body trickled past its deadline is refused with 408,
//! and past the connection cap new connections wait until one closes.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Backend, TestApp};
use cxm_http::HttpConfig;

fn limits() -> HttpConfig {
    HttpConfig {
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
        max_connections: 2,
        ..HttpConfig::default()
    }
}

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection (or `within` passes); returns what it sent
/// and how long it took.
fn read_to_close(s: &mut TcpStream, within: Duration) -> (String, Duration) {
    s.set_read_timeout(Some(within)).unwrap();
    let t = Instant::now();
    let mut out = vec![];
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), t.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_and_silent_clients_are_cut_off() {
    let app = TestApp::spawn_with(Backend::Sqlite, limits())
        .await
        .unwrap();
    let a = addr(&app);
    let wk = app.write_key.clone();
    tokio::task::spawn_blocking(move || {
        // a connection that never sends a byte is closed after the header deadline
        let mut silent = TcpStream::connect(&a).unwrap();
        let (_, took) = read_to_close(&mut silent, Duration::from_secs(10));
        assert!(took < Duration::from_secs(5), "silent connection held {took:?}");

        // headers trickled past the deadline: closed too
        let mut slow = TcpStream::connect(&a).unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
        let (_, took) = read_to_close(&mut slow, Duration::from_secs(10));
        assert!(took < Duration::from_secs(5), "slow headers held {took:?}");

        // a body trickled over longer than its deadline: 408
        let body = format!(r#"{{"batch":[{{"type":"track","event":"X","userId":"u"}}],"writeKey":"{wk}"}}"#);
        let mut trickle = TcpStream::connect(&a).unwrap();
        write!(
            trickle,
            "POST /v1/batch HTTP/1.1\r\nHost: {a}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        trickle.set_read_timeout(Some(Duration::from_millis(250))).unwrap();
        for b in body.bytes() {
            if trickle.write_all(&[b]).is_err() {
                break;
            }
            let mut buf = [0u8; 2048];
            if let Ok(n) = trickle.read(&mut buf) {
                answer.push_str(&String::from_utf8_lossy(&buf[..n]));
                if n > 0 {
                    break;
                }
            }
        }
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("request_timeout"), "{answer}");

        // a kept-alive connection idle after its request is closed after the deadline
        let mut idle = TcpStream::connect(&a).unwrap();
        write!(idle, "GET /healthz HTTP/1.1\r\nHost: {a}\r\n\r\n").unwrap();
        let (got, took) = read_to_close(&mut idle, Duration::from_secs(10));
        assert!(got.starts_with("HTTP/1.1 200"), "{got}");
        assert!(took < Duration::from_secs(5), "idle keep-alive held {took:?}");
    })
    .await
    .unwrap();
    assert_eq!(
        app.get_json("/api/v1/overview").await["total_events"],
        0,
        "the trickled batch was not stored"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_cap_wait() {
    let config = HttpConfig {
        header_timeout: Duration::from_secs(30),
        ..limits()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, config).await.unwrap();
    let a = addr(&app);
    tokio::task::spawn_blocking(move || {
        let hold1 = TcpStream::connect(&a).unwrap();
        let hold2 = TcpStream::connect(&a).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let mut third = TcpStream::connect(&a).unwrap();
        write!(
            third,
            "GET /healthz HTTP/1.1\r\nHost: {a}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let (got, _) = read_to_close(&mut third, Duration::from_millis(500));
        assert!(got.is_empty(), "served past the cap: {got}");
        drop(hold1);
        let (got, _) = read_to_close(&mut third, Duration::from_secs(5));
        assert!(
            got.starts_with("HTTP/1.1 200"),
            "served once a slot freed: {got:?}"
        );
        drop(hold2);
    })
    .await
    .unwrap();
    app.stop().await;
}
