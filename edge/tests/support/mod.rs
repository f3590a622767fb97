//! Helpers for tests that run the real `vigie-edge` binary against the machine's Mosquitto
//! (127.0.0.1:1883): a child process with its own data dir, HTTP port, device id and topic prefix; a
//! tiny HTTP client; a rumqttc subscriber that collects everything under the prefix.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use protocol::{DeviceAck, DeviceId, EventEnvelope, Topic, TopicPrefix};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use uuid::Uuid;

pub const BROKER_PORT: u16 = 1883;
pub const WAIT: Duration = Duration::from_secs(15);

/// A unique device id and prefix for one test.
pub struct Names {
    pub device: DeviceId,
    pub prefix: TopicPrefix,
}

impl Names {
    pub fn unique() -> Names {
        let id = Uuid::now_v7().simple().to_string();
        Names {
            device: DeviceId::new(format!("t-{}", &id[id.len() - 12..])).unwrap(),
            prefix: TopicPrefix::new(&format!("test-{id}")).unwrap(),
        }
    }

    pub fn topic(&self, topic: Topic) -> String {
        topic.render(&self.prefix)
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `vigie-edge`; killed (SIGKILL) when dropped.
pub struct Edge {
    child: Child,
    pub http: SocketAddr,
    pub log: PathBuf,
}

impl Edge {
    /// Starts the binary on `examples/simulated.toml` with every deployment value overridden.
    pub fn start(names: &Names, data_dir: &Path, broker_port: u16, run: u32) -> Edge {
        Edge::start_with(names, data_dir, broker_port, run, &[])
    }

    /// As [`Edge::start`], with more environment (`NOTIFY_SOCKET`, a fault hook...).
    pub fn start_with(
        names: &Names,
        data_dir: &Path,
        broker_port: u16,
        run: u32,
        env: &[(&str, &str)],
    ) -> Edge {
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = data_dir.with_extension(format!("run{run}.log"));
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/simulated.toml");
        let child = Command::new(env!("CARGO_BIN_EXE_vigie-edge"))
            .envs(env.iter().copied())
            .args(["run", "--config"])
            .arg(config)
            .env("VIGIE_EDGE_DEVICE_ID", names.device.as_str())
            .env("VIGIE_TOPIC_PREFIX", names.prefix.as_str())
            .env(
                "VIGIE_EDGE_MQTT_URL",
                format!("mqtt://127.0.0.1:{broker_port}"),
            )
            .env("VIGIE_EDGE_DATA_DIR", data_dir)
            .env("VIGIE_EDGE_HTTP_LISTEN", http.to_string())
            .env("VIGIE_LOG_FORMAT", "json")
            .env("RUST_LOG", "info,vigie_edge=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start vigie-edge");
        Edge { child, http, log }
    }

    /// Waits until `/healthz` answers.
    pub async fn wait_alive(&mut self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok((200, _)) = http(self.http, "GET", "/healthz").await {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("vigie-edge exited with {status}:\n{}", self.logs());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "vigie-edge never answered:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `POST /sim/button`; returns `(id, seq)` of the durable event.
    pub async fn press(&self) -> (Uuid, u64) {
        let (status, body) = http(self.http, "POST", "/sim/button").await.unwrap();
        assert_eq!(status, 201, "{body}\n{}", self.logs());
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        (
            v["id"].as_str().unwrap().parse().unwrap(),
            v["seq"].as_u64().unwrap(),
        )
    }

    /// Polls `/readyz` until `pred` holds on its JSON body.
    pub async fn wait_ready_until(&self, what: &str, pred: impl Fn(&serde_json::Value) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut last = String::new();
        while tokio::time::Instant::now() < deadline {
            if let Ok((_, body)) = http(self.http, "GET", "/readyz").await {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) {
                    if pred(&v) {
                        return;
                    }
                }
                last = body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("/readyz never showed {what}; last: {last}\n{}", self.logs());
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 request; returns status and body.
pub async fn http(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// A test-side MQTT client subscribed to everything under the prefix.
pub struct Watcher {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
}

impl Watcher {
    pub async fn start(names: &Names) -> Watcher {
        let id = format!("watch-{}", Uuid::now_v7().simple());
        let mut options = MqttOptions::new(id, "127.0.0.1", BROKER_PORT);
        options.set_keep_alive(Duration::from_secs(10));
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let (tx, rx) = mpsc::unbounded_channel();
        let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
        let mut subscribed_tx = Some(subscribed_tx);
        client
            .subscribe(format!("{}/#", names.prefix.as_str()), QoS::AtLeastOnce)
            .await
            .unwrap();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::SubAck(_))) => {
                        if let Some(tx) = subscribed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        if tx.send((p.topic.clone(), p.payload.to_vec())).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("watcher: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        tokio::time::timeout(WAIT, subscribed_rx)
            .await
            .expect("the watcher subscribed")
            .unwrap();
        Watcher { client, rx }
    }

    /// Waits until events with every seq in `seqs` arrived on `topic`; returns seq → id of what came.
    pub async fn events(&mut self, topic: &str, seqs: &[u64]) -> BTreeMap<u64, Uuid> {
        let mut seen = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        while !seqs.iter().all(|s| seen.contains_key(s)) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Ok(Some((t, payload))) = tokio::time::timeout(left, self.rx.recv()).await else {
                panic!("events {seqs:?} never all arrived; got {seen:?}");
            };
            if t == topic {
                let e = EventEnvelope::from_json(&payload).expect("a valid envelope");
                if let Some(previous) = seen.insert(e.seq, e.id) {
                    assert_eq!(previous, e.id, "a resend keeps its id");
                }
            }
        }
        seen
    }

    /// Waits for a message on `topic` whose payload satisfies `pred`.
    pub async fn wait_for(&mut self, topic: &str, what: &str, pred: impl Fn(&[u8]) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some((t, payload))) if t == topic && pred(&payload) => return,
                Ok(Some(_)) => {}
                _ => panic!("never saw {what} on {topic}"),
            }
        }
    }

    /// Drops everything received so far.
    pub fn clear(&mut self) {
        while self.rx.try_recv().is_ok() {}
    }

    /// Publishes the cloud's retained commit acknowledgement.
    pub async fn ack(&self, names: &Names, acked_seq: u64) {
        let ack = DeviceAck::new(names.device.clone(), acked_seq);
        self.client
            .publish(
                names.topic(Topic::Ack(names.device.clone())),
                QoS::AtLeastOnce,
                true,
                ack.to_json(),
            )
            .await
            .unwrap();
    }

    /// Clears the retained messages this test left on the broker.
    pub async fn clean_up(&self, names: &Names) {
        for topic in [
            Topic::Ack(names.device.clone()),
            Topic::Status(names.device.clone()),
        ] {
            let _ = self
                .client
                .publish(names.topic(topic), QoS::AtLeastOnce, true, Vec::new())
                .await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
