//! Slow and idle clients against a real `vigie-cloud`: a body dripped one byte a second into the
//! login is failed at its deadline (10 s of grace, then 4 KiB/s) and its connection freed; with
//! `VIGIE_MAX_CONNECTIONS` sockets held open, the next client waits in the backlog until one is
//! released, then is answered.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::*;

fn start(dir: &std::path::Path, extra: &[(&str, &str)]) -> Cloud {
    let mut env = vec![(
        "VIGIE_MQTT_LISTEN".to_owned(),
        format!("127.0.0.1:{}", free_port()),
    )];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Cloud::start(dir, env)
}

fn connect(cloud: &Cloud) -> TcpStream {
    let addr = cloud.base.trim_start_matches("http://");
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

#[test]
fn a_dripping_body_is_failed_at_its_deadline_and_frees_its_connection() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = start(dir.path(), &[]);
    let mut stream = connect(&cloud);
    stream
        .write_all(
            b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
              Content-Length: 1000\r\n\r\n{",
        )
        .unwrap();
    let started = Instant::now();
    // One byte a second, at most 40: the cloud ends the request long before.
    let mut answer = Vec::new();
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    for _ in 0..40 {
        let mut buf = [0u8; 4096];
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
        if stream.write_all(b" ").is_err() {
            break;
        }
    }
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(20),
        "the dripping body was ended after {took:?} (grace 10 s): {text}"
    );
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 4"),
        "a client error or a closed connection, not an answer: {text}"
    );
    // The cloud still serves others.
    cloud.add_user("admin", "admin", "correct horse battery");
    cloud.login("admin", "correct horse battery");
}

#[test]
fn beyond_the_connection_cap_a_client_waits_until_a_connection_is_released() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = start(dir.path(), &[("VIGIE_MAX_CONNECTIONS", "2")]);
    // The cap is split across the workers (one a core): hold enough sockets to fill every one.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let held: Vec<TcpStream> = (0..workers.max(2)).map(|_| connect(&cloud)).collect();
    // Each held socket is accepted (its worker has room for one): give the accept loop a request
    // on each so they are surely taken, then keep them open without a new request.
    for mut s in held.iter() {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 512];
        assert!(
            s.read(&mut buf).unwrap() > 0,
            "the held connections are served"
        );
    }
    let mut waiting = connect(&cloud);
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut buf = [0u8; 512];
    let early = waiting.read(&mut buf);
    assert!(
        early.is_err(),
        "a client beyond the cap is not served while the others hold their connections: {early:?}"
    );
    drop(held);
    waiting
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let n = waiting.read(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "served once a connection is released"
    );
}

/// The body deadline never applies to a WebSocket: its frames follow the upgrade on the same
/// stream and come only when there is something to say (found by the console's end-to-end test: an
/// idle console's socket was cut after 10 s).
#[test]
fn an_idle_websocket_outlives_the_body_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = start(dir.path(), &[]);
    cloud.add_user("admin", "admin", "correct horse battery");
    let token = cloud.login("admin", "correct horse battery");
    let mut socket = open_stream(&cloud.base, &token);
    let (tx, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || loop {
        match socket.read() {
            Ok(tungstenite::Message::Close(frame)) => {
                let _ = tx.send(format!("closed: {frame:?}"));
                break;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = tx.send(format!("ended: {e}"));
                break;
            }
        }
    });
    // Past the grace (10 s) with nothing sent: still open.
    let waited = Duration::from_secs(15);
    assert!(
        ended.recv_timeout(waited).is_err(),
        "the idle socket ended within {waited:?}: {:?}",
        ended.try_recv()
    );
}
