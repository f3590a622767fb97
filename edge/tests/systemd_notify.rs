//! The edge against a real notify socket, as systemd runs it (`Type=notify`, `WatchdogSec=`): the
//! test binds the Unix datagram socket `NOTIFY_SOCKET` names and reads what the edge sends. READY
//! comes only once the outbox is the edge's: while another edge holds it, none within 5 s; once that
//! one stops, READY. With `WATCHDOG_USEC` the edge pings while its outbox actor beats; a fault hook
//! that wedges the outbox actor stops the pings within the watchdog period.

mod support;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use support::{free_port, Edge, Names};

/// The service manager's end: a datagram socket at `path`, and what arrived on it, with when.
struct NotifySocket {
    socket: UnixDatagram,
    path: String,
}

impl NotifySocket {
    fn bind(path: &Path) -> NotifySocket {
        let socket = UnixDatagram::bind(path).unwrap();
        NotifySocket {
            socket,
            path: path.display().to_string(),
        }
    }

    /// Every datagram until `until`, each with the instant it arrived.
    fn read_until(&self, until: Instant) -> Vec<(Instant, String)> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return got;
            }
            self.socket.set_read_timeout(Some(left)).unwrap();
            match self.socket.recv(&mut buf) {
                Ok(n) => got.push((
                    Instant::now(),
                    String::from_utf8_lossy(&buf[..n]).into_owned(),
                )),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return got
                }
                Err(e) => panic!("reading the notify socket: {e}"),
            }
        }
    }

    /// Waits up to `within` for a datagram holding `line`; what came before it too.
    fn wait_for(&self, line: &str, within: Duration) -> Option<Vec<String>> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            for (_, msg) in
                self.read_until((Instant::now() + Duration::from_millis(200)).min(deadline))
            {
                let found = msg.lines().any(|l| l == line);
                seen.push(msg);
                if found {
                    return Some(seen);
                }
            }
        }
        None
    }
}

#[tokio::test]
async fn no_ready_while_another_edge_holds_the_outbox_and_ready_once_it_is_free() {
    let names = Names::unique();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let broker = free_port(); // no broker: READY does not wait for the uplink
    let first_socket = NotifySocket::bind(&dir.path().join("first.sock"));
    let mut first = Edge::start_with(
        &names,
        &data,
        broker,
        1,
        &[("NOTIFY_SOCKET", &first_socket.path)],
    );
    let said = first_socket.wait_for("READY=1", Duration::from_secs(30));
    assert!(
        said.is_some(),
        "the first edge never said READY:\n{}",
        first.logs()
    );
    first.wait_alive().await;

    let second_socket = NotifySocket::bind(&dir.path().join("second.sock"));
    let second = Edge::start_with(
        &names,
        &data,
        broker,
        2,
        &[("NOTIFY_SOCKET", &second_socket.path)],
    );
    let early = second_socket.read_until(Instant::now() + Duration::from_secs(5));
    assert!(
        !early
            .iter()
            .any(|(_, msg)| msg.lines().any(|l| l == "READY=1")),
        "READY while the outbox was another's: {early:?}"
    );
    assert!(
        early
            .iter()
            .any(|(_, msg)| msg.contains("STATUS=waiting for the outbox")),
        "it said why it waits: {early:?}"
    );
    assert!(
        second.logs().contains("in use by another process"),
        "{}",
        second.logs()
    );

    // The first stops (its outbox flushed, STOPPING said); the second gets the outbox, then READY.
    assert!(first.terminate().success());
    assert!(
        first_socket
            .wait_for("STOPPING=1", Duration::from_secs(1))
            .is_some(),
        "the first edge said STOPPING as it stopped"
    );
    let said = second_socket.wait_for("READY=1", Duration::from_secs(30));
    assert!(
        said.is_some(),
        "the second edge never said READY:\n{}",
        second.logs()
    );
}

#[tokio::test]
async fn a_wedged_outbox_stops_the_watchdog_pings_within_the_period() {
    let names = Names::unique();
    let dir = tempfile::tempdir().unwrap();
    let socket = NotifySocket::bind(&dir.path().join("notify.sock"));
    let period = Duration::from_secs(4);
    let usec = period.as_micros().to_string();
    let mut edge = Edge::start_with(
        &names,
        &dir.path().join("data"),
        free_port(),
        1,
        &[
            ("NOTIFY_SOCKET", &socket.path),
            ("WATCHDOG_USEC", &usec),
            ("VIGIE_EDGE_FAULT_STALL_OUTBOX", "1"),
        ],
    );
    assert!(
        socket
            .wait_for("READY=1", Duration::from_secs(30))
            .is_some(),
        "never READY:\n{}",
        edge.logs()
    );
    edge.wait_alive().await;
    // Healthy: a ping at least every half period.
    let healthy = socket.read_until(Instant::now() + period);
    let pings = healthy
        .iter()
        .filter(|(_, m)| m.lines().any(|l| l == "WATCHDOG=1"))
        .count();
    assert!(pings >= 2, "pings while healthy: {healthy:?}");

    // The first stored event wedges the outbox actor's thread.
    // (Its answer never comes: the outbox that would confirm it is wedged.)
    let wedged_at = Instant::now();
    let _ = tokio::time::timeout(Duration::from_secs(1), edge.press()).await;
    let after = socket.read_until(wedged_at + 2 * period);
    let last_ping = after
        .iter()
        .rev()
        .find(|(_, m)| m.lines().any(|l| l == "WATCHDOG=1"))
        .map(|(at, _)| *at);
    if let Some(last) = last_ping {
        assert!(
            last.duration_since(wedged_at) <= period,
            "a ping {:?} after the wedge, beyond the {period:?} period",
            last.duration_since(wedged_at)
        );
    }
    // And none for a whole period after that: systemd would restart it.
    let logs = edge.logs();
    assert!(logs.contains("outbox's thread stops here"), "{logs}");
    assert!(logs.contains("no more watchdog pings"), "{logs}");
}
