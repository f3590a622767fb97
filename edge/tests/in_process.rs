//! The outbox actor, sensor actors and the local HTTP routes, in process (no broker): a fake uplink
//! records what the outbox asks it to publish.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::actors::{HealthRegistry, SharedClock, SystemClock};
use actix::prelude::*;
use actix_web::{test, App};
use protocol::{DeviceId, EventKind, SensorId, TopicPrefix};
use vigie_edge::clock_sync::{ClockSample, ClockSync};
use vigie_edge::http::{self, AppState};
use vigie_edge::outbox::actor::{AttachUplink, CloudAck, LinkUp, OutboxSetup, PubAcked};
use vigie_edge::outbox::{
    AckSource, DroppedCount, OutboxActor, OutboxKey, OutboxPolicy, QueueDepth, RefusedAckCount,
    RefusedCount, Store, WhenFull, WriterConfig,
};
use vigie_edge::sensor::debounce::DebounceConfig;
use vigie_edge::sensor::{SensorActor, SensorHandle, Sensors};
use vigie_edge::uplink::{PublishEvent, PublishGap};

/// Records every publish it is asked for.
struct FakeUplink(Arc<Mutex<Vec<PublishEvent>>>, Arc<Mutex<Vec<PublishGap>>>);

impl Actor for FakeUplink {
    type Context = Context<Self>;
}

impl Handler<PublishEvent> for FakeUplink {
    type Result = ();
    fn handle(&mut self, msg: PublishEvent, _: &mut Context<Self>) {
        self.0.lock().unwrap().push(msg);
    }
}

impl Handler<PublishGap> for FakeUplink {
    type Result = ();
    fn handle(&mut self, msg: PublishGap, _: &mut Context<Self>) {
        self.1.lock().unwrap().push(msg);
    }
}

struct Rig {
    outbox: Addr<OutboxActor>,
    depth: QueueDepth,
    refused: RefusedCount,
    dropped: DroppedCount,
    refused_acks: RefusedAckCount,
    health: HealthRegistry,
    published: Arc<Mutex<Vec<PublishEvent>>>,
    gaps: Arc<Mutex<Vec<PublishGap>>>,
    clock_sync: ClockSync,
    store: Store,
    clock: SharedClock,
    _dir: tempfile::TempDir,
}

fn rig(max_events: u64) -> Rig {
    rig_with(max_events, WhenFull::RefuseNew)
}

fn rig_with(max_events: u64, when_full: WhenFull) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let (store, loaded) = Store::open(dir.path(), &OutboxKey::from_bytes([5; 32])).unwrap();
    let clock = SystemClock::shared();
    let health = HealthRegistry::new();
    let clock_sync = ClockSync::default();
    let started = OutboxActor::start(OutboxSetup {
        store: store.clone(),
        loaded,
        writer: WriterConfig {
            device: DeviceId::new("pi-1").unwrap(),
            clock_synced: true,
            max_events,
            when_full,
        },
        policy: OutboxPolicy {
            max_in_flight: 2,
            resend_timeout: Duration::from_secs(60),
            resend_timeout_max: Duration::from_secs(60),
        },
        prefix: TopicPrefix::new("it").unwrap(),
        clock: clock.clone(),
        health: health.clone(),
        bulk: None,
        max_age: None,
        clock_sync: clock_sync.clone(),
    })
    .unwrap();
    let published = Arc::new(Mutex::new(Vec::new()));
    let gaps = Arc::new(Mutex::new(Vec::new()));
    let fake = FakeUplink(published.clone(), gaps.clone()).start();
    started.addr.do_send(AttachUplink {
        events: fake.clone().recipient(),
        gaps: fake.recipient(),
    });
    Rig {
        outbox: started.addr,
        depth: started.depth,
        refused: started.refused,
        dropped: started.dropped,
        refused_acks: started.refused_acks,
        health,
        published,
        gaps,
        clock_sync,
        store,
        clock,
        _dir: dir,
    }
}

fn sensor(r: &Rig, id: &str, kind: EventKind) -> SensorHandle {
    let actor = SensorActor::new(
        SensorId::new(id).unwrap(),
        kind.clone(),
        DebounceConfig {
            debounce: Duration::from_millis(30),
            min_active: Duration::from_millis(50),
        },
        r.outbox.clone(),
        r.clock.clone(),
        r.health.clone(),
    );
    SensorHandle {
        id: SensorId::new(id).unwrap(),
        kind,
        addr: Supervisor::start(move |_| actor),
    }
}

async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn state(r: &Rig, simulated: bool, all: Vec<SensorHandle>) -> AppState {
    AppState {
        health: r.health.clone(),
        depth: r.depth.clone(),
        refused: r.refused.clone(),
        dropped: r.dropped.clone(),
        refused_acks: r.refused_acks.clone(),
        sensors: Sensors { simulated, all },
        media: None,
    }
}

#[actix_web::test]
async fn the_outbox_publishes_in_order_within_its_window_and_forgets_what_the_cloud_confirmed() {
    let r = rig(100);
    let mat = sensor(&r, "mat-1", EventKind::ButtonPressed);
    for expected in 1..=3 {
        let e = mat
            .addr
            .send(vigie_edge::sensor::Simulate)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.seq, expected);
    }
    assert!(r.published.lock().unwrap().is_empty(), "the link is down");
    r.outbox.do_send(LinkUp);
    until("two publishes (the window)", || {
        r.published.lock().unwrap().len() == 2
    })
    .await;
    {
        let published = r.published.lock().unwrap();
        assert_eq!(published[0].topic, "it/sensors/pi-1/button/pressed");
        assert_eq!(published.iter().map(|p| p.seq).collect::<Vec<_>>(), [1, 2]);
    }
    r.outbox.do_send(PubAcked(1));
    until("the third publish", || {
        r.published.lock().unwrap().len() == 3
    })
    .await;
    assert_eq!(r.depth.get(), 3, "a PubAck is not a confirmation");
    r.outbox.do_send(CloudAck {
        acked_seq: 3,
        source: AckSource::Mqtt,
    });
    until("an empty outbox", || r.depth.get() == 0).await;
    until("the store emptied", || {
        r.store.load().unwrap().pending.is_empty()
    })
    .await;
    assert_eq!(r.store.load().unwrap().next_seq, 4);
}

#[actix_web::test]
async fn a_forged_mqtt_ack_above_the_highest_seq_is_refused_counted_and_deletes_nothing() {
    let r = rig(100);
    let mat = sensor(&r, "mat-1", EventKind::ButtonPressed);
    let app = test::init_service(App::new().configure(http::configure(state(
        &r,
        true,
        vec![mat.clone()],
    ))))
    .await;
    for _ in 0..2 {
        mat.addr
            .send(vigie_edge::sensor::Simulate)
            .await
            .unwrap()
            .unwrap();
    }
    r.outbox.do_send(CloudAck {
        acked_seq: 1_000_000,
        source: AckSource::Mqtt,
    });
    until("the refusal counted", || r.refused_acks.get() == 1).await;
    // The event after the forged ack is kept too, under the next seq.
    let third = mat
        .addr
        .send(vigie_edge::sensor::Simulate)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(third.seq, 3, "the forged ack moved no seq");
    until("three events in the outbox", || r.depth.get() == 3).await;
    let loaded = r.store.load().unwrap();
    assert_eq!(loaded.pending, [1, 2, 3]);
    assert_eq!((loaded.confirmed_seq, loaded.next_seq), (0, 4));
    let body: serde_json::Value =
        test::call_and_read_body_json(&app, test::TestRequest::get().uri("/readyz").to_request())
            .await;
    assert_eq!(body["refused_acks"], 1, "{body}");
    assert_eq!(body["queue_depth"], 3, "{body}");
    // The same ack over the authenticated API is taken (a wiped Pi continues above it).
    r.outbox.do_send(CloudAck {
        acked_seq: 40,
        source: AckSource::Api,
    });
    until("the store moved past the API's acked_seq", || {
        let l = r.store.load().unwrap();
        l.pending.is_empty() && l.next_seq == 41
    })
    .await;
    assert_eq!(r.refused_acks.get(), 1);
}

#[actix_web::test]
async fn the_sim_route_answers_201_once_durable_and_503_when_the_outbox_is_full() {
    let r = rig(1);
    let mat = sensor(&r, "mat-1", EventKind::ButtonPressed);
    let app =
        test::init_service(App::new().configure(http::configure(state(&r, true, vec![mat])))).await;

    let res = test::call_service(
        &app,
        test::TestRequest::post().uri("/sim/button").to_request(),
    )
    .await;
    assert_eq!(res.status(), 201);
    let body: protocol::api::SimulatedEvent = test::read_body_json(res).await;
    assert_eq!(body.seq, 1);
    assert!(
        r.store.get(1).unwrap().is_some_and(|e| e.id == body.id),
        "durable before the answer"
    );

    let res = test::call_service(
        &app,
        test::TestRequest::post().uri("/sim/button").to_request(),
    )
    .await;
    assert_eq!(res.status(), 503);
    let body: protocol::api::ApiError = test::read_body_json(res).await;
    assert!(body.error.contains("full"), "{}", body.error);
    assert_eq!(r.refused.get(), 1, "the refusal is counted");
    let res = test::call_service(&app, test::TestRequest::get().uri("/readyz").to_request()).await;
    let v: serde_json::Value = test::read_body_json(res).await;
    assert_eq!(v["refused_events"], 1);
}

#[actix_web::test]
async fn the_sim_route_refuses_unknown_kinds_missing_sensors_and_real_sensors() {
    let r = rig(10);
    let mat = sensor(&r, "mat-1", EventKind::ButtonPressed);
    let app = test::init_service(App::new().configure(http::configure(state(
        &r,
        true,
        vec![mat.clone()],
    ))))
    .await;
    let status = |uri: &'static str| {
        let app = &app;
        async move {
            test::call_service(app, test::TestRequest::post().uri(uri).to_request())
                .await
                .status()
        }
    };
    assert_eq!(status("/sim/smoke").await, 400);
    assert_eq!(
        status("/sim/motion").await,
        404,
        "no motion sensor configured"
    );
    assert_eq!(status("/sim/button?sensor=mat-2").await, 404);
    assert_eq!(status("/sim/button?sensor=mat-1").await, 201);

    let real =
        test::init_service(App::new().configure(http::configure(state(&r, false, vec![mat]))))
            .await;
    let res = test::call_service(
        &real,
        test::TestRequest::post().uri("/sim/button").to_request(),
    )
    .await;
    assert_eq!(res.status(), 404, "gpio sensors cannot be simulated");
}

#[actix_web::test]
async fn health_is_alive_and_readiness_lists_each_component_with_the_queue_depth() {
    let r = rig(10);
    let mat = sensor(&r, "mat-1", EventKind::ButtonPressed);
    mat.addr
        .send(vigie_edge::sensor::Simulate)
        .await
        .unwrap()
        .unwrap();
    r.health.register("uplink", false);
    r.health.set(
        "uplink",
        ::actors::ComponentState::Degraded {
            reason: "broker unreachable".into(),
        },
    );
    let app =
        test::init_service(App::new().configure(http::configure(state(&r, true, vec![mat])))).await;

    let res = test::call_service(&app, test::TestRequest::get().uri("/healthz").to_request()).await;
    assert_eq!(res.status(), 200);

    until("the stored event counted", || r.depth.get() == 1).await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/readyz").to_request()).await;
    assert_eq!(
        res.status(),
        200,
        "a degraded uplink does not make the edge unready"
    );
    let v: serde_json::Value = test::read_body_json(res).await;
    assert_eq!(v["components"]["outbox"]["state"], "ready");
    assert_eq!(v["components"]["sensor/mat-1"]["state"], "ready");
    assert_eq!(v["components"]["uplink"]["state"], "degraded");
    assert_eq!(v["queue_depth"], 1);
    assert_eq!(v["refused_events"], 0);

    r.health.set(
        "outbox",
        ::actors::ComponentState::Failed {
            reason: "disk".into(),
        },
    );
    let res = test::call_service(&app, test::TestRequest::get().uri("/readyz").to_request()).await;
    assert_eq!(res.status(), 503);
}

#[actix_web::test]
async fn raw_edges_held_past_min_active_become_exactly_one_stored_event() {
    let r = rig(10);
    let mat = sensor(&r, "mat-1", EventKind::ButtonPressed);
    let at = |ms: u64| r.clock.monotonic() + Duration::from_millis(ms);
    // A bounce, then a held press: the sensor's own timer fires the activation once.
    for (active, t) in [(true, 0), (false, 2), (true, 4)] {
        mat.addr
            .do_send(vigie_edge::sensor::RawEdge { active, at: at(t) });
    }
    until("the press stored", || r.depth.get() == 1).await;
    mat.addr.do_send(vigie_edge::sensor::RawEdge {
        active: false,
        at: r.clock.monotonic(),
    });
    let loaded = r.store.load().unwrap();
    assert_eq!(loaded.pending, [1]);
    assert_eq!(r.store.get(1).unwrap().unwrap().sensor.as_str(), "mat-1");
}

#[actix_web::test]
async fn a_tampered_stored_event_is_reported_with_its_seq_and_the_others_still_go_out() {
    let r = rig(10);
    let mat = sensor(&r, "mat-1", EventKind::ButtonPressed);
    for _ in 0..2 {
        mat.addr
            .send(vigie_edge::sensor::Simulate)
            .await
            .unwrap()
            .unwrap();
    }
    let mut raw = r.store.raw_event(1).unwrap().unwrap();
    raw[30] ^= 0xff;
    r.store.put_raw_event(1, &raw).unwrap();
    r.outbox.do_send(LinkUp);
    until("seq 2 published", || {
        r.published.lock().unwrap().iter().any(|p| p.seq == 2)
    })
    .await;
    assert!(
        r.published.lock().unwrap().iter().all(|p| p.seq != 1),
        "an unauthenticated record is never sent"
    );
    let v = serde_json::to_value(r.health.readiness()).unwrap();
    assert_eq!(v["components"]["outbox"]["state"], "degraded", "{v}");
    let reason = v["components"]["outbox"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("event 1") && reason.contains("authentication"),
        "{reason}"
    );
}

#[actix_web::test]
async fn a_full_outbox_drops_the_oldest_sends_a_gap_record_and_keeps_it_until_confirmed() {
    let r = rig_with(3, WhenFull::DropOldest);
    let mat = sensor(&r, "mat-1", EventKind::ButtonPressed);
    for _ in 0..5 {
        mat.addr
            .send(vigie_edge::sensor::Simulate)
            .await
            .unwrap()
            .expect("new events are accepted when full");
    }
    assert_eq!(r.depth.get(), 3);
    assert_eq!(r.dropped.get(), 2);
    r.outbox.do_send(LinkUp);
    until("the gap record is sent", || {
        !r.gaps.lock().unwrap().is_empty()
    })
    .await;
    until("the window is full", || {
        r.published.lock().unwrap().len() == 2
    })
    .await;
    let gap = protocol::GapRecord::from_json(&r.gaps.lock().unwrap()[0].payload).unwrap();
    assert_eq!((gap.first_seq, gap.last_seq), (1, 2));
    assert!(r.gaps.lock().unwrap()[0].topic.ends_with("system/pi-1/gap"));
    let first_sent: Vec<u64> = r.published.lock().unwrap().iter().map(|p| p.seq).collect();
    assert_eq!(first_sent, [3, 4], "the oldest kept event goes first");

    // Once the cloud confirms past it, the record is not sent again at the next link up.
    r.outbox.do_send(CloudAck {
        acked_seq: 5,
        source: AckSource::Mqtt,
    });
    until("the outbox is empty", || r.depth.get() == 0).await;
    r.gaps.lock().unwrap().clear();
    r.outbox.do_send(LinkUp);
    // A new event after the link up: the fake uplink gets its publish after whatever the link up
    // sent, so once it is seen, a resent gap record would have been seen too.
    let next = mat
        .addr
        .send(vigie_edge::sensor::Simulate)
        .await
        .unwrap()
        .unwrap();
    until("the new event is published", || {
        r.published
            .lock()
            .unwrap()
            .iter()
            .any(|p| p.seq == next.seq)
    })
    .await;
    assert!(
        r.gaps.lock().unwrap().is_empty(),
        "a confirmed gap record is not sent again"
    );
    until("the confirmed gap record is deleted", || {
        r.store.load().unwrap().gaps.is_empty()
    })
    .await;
}

#[actix_web::test]
async fn an_event_is_sent_with_the_clock_offset_measured_in_its_boot() {
    let r = rig(100);
    let mat = sensor(&r, "mat-1", EventKind::ButtonPressed);
    let stored = mat
        .addr
        .send(vigie_edge::sensor::Simulate)
        .await
        .unwrap()
        .unwrap();
    // The cloud said it was an hour later than this device thinks, one second after the event.
    let boot_ms = stored.boot_ms.expect("events carry the boot clock");
    r.clock_sync.set(ClockSample {
        boot_id: stored.boot_id.clone().unwrap(),
        boot_ms: boot_ms + 1000,
        cloud_at: stored.occurred_at + chrono::Duration::milliseconds(3_600_000 + 1000),
        offset_ms: 3_600_000,
    });
    r.outbox.do_send(LinkUp);
    until("the event is sent", || {
        !r.published.lock().unwrap().is_empty()
    })
    .await;
    let sent = protocol::EventEnvelope::from_json(&r.published.lock().unwrap()[0].payload).unwrap();
    assert_eq!(sent.clock_offset_ms, Some(3_600_000));
    assert_eq!(sent.id, stored.id, "the same event, stamped when sent");
}
