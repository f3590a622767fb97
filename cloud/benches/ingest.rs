//! Ingest benchmark (prints figures; not a timed test). Run with `make bench`.
//!
//! All on this machine, in one run, through a Mosquitto the bench starts itself with
//! `persistence false`, `max_inflight_messages 0`, `max_queued_messages 0`, `set_tcp_nodelay true`
//! (cloud/tests/fixtures/mosquitto-plain.conf.in):
//! 1. ceiling: the broker's own QoS 1 publish → subscribe rate, no database. The load generator of
//!    step 2 (`PUBLISHERS` rumqttc connections) publishes to `SUBSCRIBERS` rumqttc connections that
//!    share one subscription (`$share/ceiling/...`, each message to one of them) and ack what they
//!    get, as the ingest does. A single subscriber connection measured its own client's event loop
//!    rather than the broker; with four, Mosquitto's one thread is the busy one (checked with
//!    `perf record -a`: mosquitto ~1 core, the bench's clients ~0.9). Mosquitto's own clients
//!    (`mosquitto_pub -q 1 -M 1000 -l`, `mosquitto_sub -q 1`, four of each) were no faster.
//!    QoS 0 is about 2.5 times faster (no PUBACK each way): it is not the ingest's ceiling;
//! 2. ingest: the same load generator publishing QoS 1 events into `vigie-cloud` + PostgreSQL,
//!    events/s committed (every device's `system/{device}/ack` reached its last `seq`), and the ratio
//!    to 1;
//! 3. latency: MQTT publish → WebSocket frame at 200 events/s, p50 and p99;
//! 4. latency: `POST /sim/button` on a simulated `vigie-edge` (durable outbox write included) →
//!    WebSocket frame, p50 and p99.
//!
//! `VIGIE_BENCH_EVENTS` (100000) and `VIGIE_BENCH_LATENCY_EVENTS` (2000) set the counts;
//! `VIGIE_BENCH_THREADS` (1) the bench's own tokio worker threads (1: a current-thread runtime).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use support::*;

const DEVICES: u64 = 10;
/// Load generator connections publishing at once.
const PUBLISHERS: usize = 4;
/// Connections sharing the ceiling's subscription.
const SUBSCRIBERS: usize = 4;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn envelope(device: &str, seq: u64) -> (String, Vec<u8>) {
    let id = uuid::Uuid::now_v7();
    let body = serde_json::json!({
        "schema_version": 1, "id": id, "device": device, "seq": seq, "sensor": "mat-1",
        "kind": "button_pressed",
        "occurred_at": protocol::time::format(chrono::Utc::now()), "clock_synced": true
    });
    (id.to_string(), body.to_string().into_bytes())
}

/// A bench client with Nagle off, like the broker (`set_tcp_nodelay true`).
fn connect(id: &str, port: u16, cap: usize) -> (AsyncClient, rumqttc::EventLoop) {
    let (client, mut eventloop) = AsyncClient::new(options(id, port), cap);
    eventloop.network_options.set_tcp_nodelay(true);
    (client, eventloop)
}

fn options(id: &str, port: u16) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_inflight(1000);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_request_channel_capacity(10_000);
    o
}

/// Publishes `messages` QoS 1 from `PUBLISHERS` clients at once; returns when every PubAck is in.
async fn publish_all(port: u16, messages: Vec<(String, Vec<u8>)>) {
    let mut shares: Vec<Vec<(String, Vec<u8>)>> = (0..PUBLISHERS).map(|_| Vec::new()).collect();
    for (i, m) in messages.into_iter().enumerate() {
        shares[i % PUBLISHERS].push(m);
    }
    let tasks: Vec<_> = shares
        .into_iter()
        .map(|share| tokio::spawn(publish_share(port, share)))
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

async fn publish_share(port: u16, messages: Vec<(String, Vec<u8>)>) {
    let (client, mut eventloop) = connect(&unique("load-"), port, 10_000);
    let total = messages.len();
    let sender = tokio::spawn(async move {
        for (topic, payload) in messages {
            client
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await
                .unwrap();
        }
        client
    });
    let mut acked = 0;
    while acked < total {
        if let Event::Incoming(Packet::PubAck(_)) =
            eventloop.poll().await.expect("load generator connection")
        {
            acked += 1;
        }
    }
    let _client = sender.await.unwrap();
}

/// The broker's own QoS 1 rate: `PUBLISHERS` publishing and `SUBSCRIBERS` connections sharing one
/// subscription (`$share/..`), each acking what it gets, no database. One subscriber connection
/// understates the broker: its single client event loop, not the broker, sets the pace.
fn ceiling(rt: &tokio::runtime::Runtime, port: u16, n: u64) -> f64 {
    rt.block_on(async {
        let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut subscribers = Vec::new();
        for _ in 0..SUBSCRIBERS {
            let (sub, mut sub_loop) = connect(&unique("sub-"), port, 10_000);
            sub.subscribe("$share/ceiling/ceiling/#", QoS::AtLeastOnce)
                .await
                .unwrap();
            loop {
                if let Event::Incoming(Packet::SubAck(_)) = sub_loop.poll().await.unwrap() {
                    break;
                }
            }
            let received = received.clone();
            subscribers.push(tokio::spawn(async move {
                let _sub = sub;
                loop {
                    if let Event::Incoming(Packet::Publish(_)) = sub_loop.poll().await.unwrap() {
                        if received.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 >= n {
                            return Instant::now();
                        }
                    }
                }
            }));
        }
        let messages: Vec<_> = (0..n)
            .map(|i| {
                (
                    format!("ceiling/d{}", i % DEVICES),
                    envelope("pi-1", i + 1).1,
                )
            })
            .collect();
        let start = Instant::now();
        publish_all(port, messages).await;
        let (done, _, others) = futures_util::future::select_all(subscribers).await;
        for other in others {
            other.abort();
        }
        let elapsed = done.unwrap() - start;
        n as f64 / elapsed.as_secs_f64()
    })
}

fn ingest(rt: &tokio::runtime::Runtime, port: u16, prefix: &str, n: u64) -> f64 {
    rt.block_on(async {
        let per_device = n / DEVICES;
        let devices: Vec<String> = (0..DEVICES).map(|d| format!("bench-{d}")).collect();
        let (watch, mut watch_loop) = connect(&unique("acks-"), port, 1000);
        watch
            .subscribe(format!("{prefix}/system/+/ack"), QoS::AtMostOnce)
            .await
            .unwrap();
        loop {
            if let Event::Incoming(Packet::SubAck(_)) = watch_loop.poll().await.unwrap() {
                break;
            }
        }
        let mut messages = Vec::with_capacity(n as usize);
        for seq in 1..=per_device {
            for d in &devices {
                messages.push((
                    format!("{prefix}/sensors/{d}/button/pressed"),
                    envelope(d, seq).1,
                ));
            }
        }
        let start = Instant::now();
        let publisher = tokio::spawn(publish_all(port, messages));
        let mut acked: HashMap<String, u64> = HashMap::new();
        while acked.len() < devices.len() || acked.values().any(|&s| s < per_device) {
            if let Event::Incoming(Packet::Publish(p)) = watch_loop.poll().await.unwrap() {
                let ack = protocol::DeviceAck::from_json(&p.payload).unwrap();
                acked.insert(ack.device.to_string(), ack.acked_seq);
            }
        }
        let elapsed = start.elapsed();
        publisher.await.unwrap();
        (per_device * DEVICES) as f64 / elapsed.as_secs_f64()
    })
}

/// Records when each event id first arrives on the WebSocket.
fn watch_stream(base: &str, token: &str) -> Arc<Mutex<HashMap<String, Instant>>> {
    let url = format!("{}/api/stream", base.replacen("http://", "ws://", 1));
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(url).unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tungstenite::connect(request).expect("websocket");
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = socket.get_ref() {
        s.set_nodelay(true).unwrap();
    }
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        while let Ok(msg) = socket.read() {
            if let tungstenite::Message::Text(t) = msg {
                let at = Instant::now();
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "event" {
                    sink.lock()
                        .unwrap()
                        .insert(v["data"]["id"].as_str().unwrap().to_owned(), at);
                }
            }
        }
    });
    seen
}

fn percentiles(mut ms: Vec<f64>) -> (f64, f64, usize) {
    ms.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    (at(0.50), at(0.99), ms.len())
}

fn wait_seen(seen: &Arc<Mutex<HashMap<String, Instant>>>, ids: &[String]) {
    wait_for(
        "every event on the WebSocket",
        Duration::from_secs(60),
        || {
            let seen = seen.lock().unwrap();
            ids.iter().all(|id| seen.contains_key(id))
        },
    );
}

/// MQTT publish → WebSocket frame, and publish → the cloud's `system/{device}/ack` covering it.
fn mqtt_to_ws(
    rt: &tokio::runtime::Runtime,
    port: u16,
    prefix: &str,
    cloud: &Cloud,
    token: &str,
    n: u64,
) -> ((f64, f64, usize), (f64, f64, usize)) {
    let seen = watch_stream(&cloud.base, token);
    let (sent, acked_at) = rt.block_on(async {
        let (client, mut eventloop) = connect(&unique("lat-"), port, 1000);
        client
            .subscribe(format!("{prefix}/system/lat-1/ack"), QoS::AtMostOnce)
            .await
            .unwrap();
        let topic = format!("{prefix}/sensors/lat-1/button/pressed");
        let pacer = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_millis(5));
            let mut sent = Vec::new();
            for seq in 1..=n {
                ticker.tick().await;
                let (id, payload) = envelope("lat-1", seq);
                let at = Instant::now();
                client
                    .publish(topic.clone(), QoS::AtLeastOnce, false, payload)
                    .await
                    .unwrap();
                sent.push((id, at));
            }
            sent
        });
        let mut acked_at: Vec<Instant> = Vec::new();
        while (acked_at.len() as u64) < n {
            if let Event::Incoming(Packet::Publish(p)) = eventloop.poll().await.unwrap() {
                let now = Instant::now();
                let ack = protocol::DeviceAck::from_json(&p.payload).unwrap();
                while (acked_at.len() as u64) < ack.acked_seq {
                    acked_at.push(now);
                }
            }
        }
        (pacer.await.unwrap(), acked_at)
    });
    let ids: Vec<String> = sent.iter().map(|(id, _)| id.clone()).collect();
    wait_seen(&seen, &ids);
    let seen = seen.lock().unwrap();
    let to_ws = percentiles(
        sent.iter()
            .map(|(id, at)| (seen[id] - *at).as_secs_f64() * 1000.0)
            .collect(),
    );
    let to_ack = percentiles(
        sent.iter()
            .zip(&acked_at)
            .map(|((_, at), acked)| (*acked - *at).as_secs_f64() * 1000.0)
            .collect(),
    );
    (to_ws, to_ack)
}

fn sim_to_ws(edge: &Edge, cloud: &Cloud, token: &str, n: u64) -> (f64, f64, usize) {
    let seen = watch_stream(&cloud.base, token);
    let agent = agent();
    let mut sent = Vec::new();
    for _ in 0..n {
        let at = Instant::now();
        let (id, _) = edge.fire(&agent, "button");
        sent.push((id, at));
        std::thread::sleep(Duration::from_millis(20));
    }
    let ids: Vec<String> = sent.iter().map(|(id, _)| id.clone()).collect();
    wait_seen(&seen, &ids);
    let seen = seen.lock().unwrap();
    percentiles(
        sent.iter()
            .map(|(id, at)| (seen[id] - *at).as_secs_f64() * 1000.0)
            .collect(),
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("ingest: bench");
        return;
    }
    let events = env_or("VIGIE_BENCH_EVENTS", 100_000);
    let latency_events = env_or("VIGIE_BENCH_LATENCY_EVENTS", 2000);
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let rt = match env_or("VIGIE_BENCH_THREADS", 1) {
        0 | 1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        threads => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads as usize)
            .enable_all()
            .build()
            .unwrap(),
    };

    let ceiling_rate = ceiling(&rt, broker.port, events);
    println!("ceiling   Mosquitto QoS 1 publish → subscribe: {ceiling_rate:>9.0} msgs/s ({events} messages)");

    let db = PgDatabase::create();
    let prefix = unique("bench-");
    let cloud = Cloud::start(
        dir.path(),
        vec![
            ("VIGIE_DATABASE_URL".into(), db.url()),
            (
                "VIGIE_MQTT_URL".into(),
                format!("mqtt://127.0.0.1:{}", broker.port),
            ),
            ("VIGIE_MQTT_CLIENT_ID".into(), unique("cloud-")),
            ("VIGIE_TOPIC_PREFIX".into(), prefix.clone()),
        ],
    );
    let ingest_rate = ingest(&rt, broker.port, &prefix, events);
    println!(
        "ingest    vigie-cloud + PostgreSQL committed:  {ingest_rate:>9.0} events/s = {:.2} of the ceiling",
        ingest_rate / ceiling_rate
    );
    assert_eq!(
        db.event_counts().0 as u64,
        events / DEVICES * DEVICES,
        "every event stored once"
    );

    cloud.add_user("bench", "admin", "bench password");
    let token = cloud.login("bench", "bench password");
    let ((p50, p99, count), (a50, a99, _)) =
        mqtt_to_ws(&rt, broker.port, &prefix, &cloud, &token, latency_events);
    println!("latency   MQTT publish → WebSocket at 200/s:   p50 {p50:.2} ms, p99 {p99:.2} ms ({count} events)");
    println!("latency   MQTT publish → committed ack:       p50 {a50:.2} ms, p99 {a99:.2} ms");

    let edge = Edge::start(
        dir.path(),
        &unique("pi"),
        &format!("mqtt://127.0.0.1:{}", broker.port),
        &prefix,
    );
    let (p50, p99, count) = sim_to_ws(&edge, &cloud, &token, latency_events / 4);
    println!("latency   sensor (POST /sim) → WebSocket:     p50 {p50:.2} ms, p99 {p99:.2} ms ({count} events)");
}
