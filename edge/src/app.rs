//! Wiring: opens the outbox, starts the sensor, outbox (with the bulk drain when an API url and token
//! are set) and uplink actors under supervision, serves
//! the local HTTP port, and on Ctrl-C or SIGTERM shuts down cleanly (HTTP stops, the uplink says
//! offline and disconnects, the outbox writer flushes sled).

use std::sync::Arc;
use std::time::Duration;

use ::actors::{HealthRegistry, SharedClock, SystemClock};
use actix::prelude::*;
use actix_web::{App, HttpServer};
use anyhow::Context as _;

use crate::api::{AckedSeqError, ApiClient, ApiStatus};
use crate::clock_sync::{ClockSync, Prober};
use crate::config::{Backend, Config};
use crate::http::{self, AppState};
use crate::media::{
    CameraActor, CameraSetup, MediaCounters, RetentionPolicy, Spool, StopCamera, UploaderHandle,
    UploaderSetup,
};
use crate::outbox::actor::{AttachCamera, AttachUplink, BulkSetup, OutboxSetup};
use crate::outbox::resume::ResumePolicy;
use crate::outbox::state::BulkPolicy;
use crate::outbox::{self, OutboxActor, OutboxKey, OutboxPolicy, Store, WriterConfig};
use crate::recorder::live::{LiveConfig, LivePublisher};
use crate::sensor::debounce::DebounceConfig;
use crate::sensor::{gpio, SensorActor, SensorHandle, Sensors};
use crate::uplink::{Shutdown, StatusFacts, UplinkActor};

/// Runs the edge until a shutdown signal.
pub fn run(config: Config) -> anyhow::Result<()> {
    // Every log line of the system thread (all actors) and of the threads spawned from it carries
    // the device id.
    let span = tracing::info_span!("edge", device_id = %config.device);
    let _entered = span.enter();
    actix_rt::System::new().block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let clock: SharedClock = match fake_clock_skew()? {
        Some(skew) => Arc::new(SkewedClock::new(skew)),
        None => SystemClock::shared(),
    };
    let health = HealthRegistry::new();
    let device_id = config.device.to_string();
    tracing::info!(%device_id, broker_host = %config.mqtt.host, broker_port = config.mqtt.port,
        prefix = config.prefix.as_str(), backend = ?config.backend, "vigie-edge starting");

    // Real pins first: a machine without GPIO fails before anything starts.
    let mut pins = Vec::new();
    if config.backend == Backend::Gpio {
        for sensor in &config.sensors {
            pins.push(gpio::open(sensor)?);
        }
    }

    // The key first: a refused key leaves nothing behind.
    let key = load_key(&config)?;
    let data_dir = config.outbox.data_dir.clone();
    crate::files::private_dir(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let key_file = config.outbox.key_file.display();
    let (store, mut loaded) = open_outbox(&data_dir, &key).await.with_context(|| {
        format!(
            "opening the outbox {} with the key file {key_file}",
            data_dir.display()
        )
    })?;
    drop(key);
    if outbox::resume::is_new(&loaded) {
        resume_new_outbox(&config, &store, &mut loaded).await?;
    }
    tracing::info!(
        data_dir = %data_dir.display(),
        key_file = %key_file,
        pending = loaded.pending.len(),
        next_seq = loaded.next_seq,
        "outbox opened"
    );
    let watchdog = crate::systemd::watchdog();
    let api_status = ApiStatus::new(&health);
    let clock_sync = ClockSync::default();
    let prober = clock_prober(&config, &clock, &clock_sync, &api_status)?;
    let outbox = OutboxActor::start(OutboxSetup {
        store,
        loaded,
        writer: WriterConfig {
            device: config.device.clone(),
            clock_synced: config.clock_synced,
            max_events: config.outbox.max_events,
            when_full: config.outbox.when_full,
        },
        policy: OutboxPolicy {
            max_in_flight: config.outbox.max_in_flight,
            resend_timeout: config.outbox.resend_timeout,
            resend_timeout_max: config.outbox.resend_timeout_max,
        },
        prefix: config.prefix.clone(),
        clock: clock.clone(),
        health: health.clone(),
        bulk: bulk_setup(&config, &api_status)?,
        max_age: config.outbox.max_age,
        clock_sync: clock_sync.clone(),
    })?;

    let mut sensors = Sensors {
        simulated: config.backend == Backend::Simulated,
        all: Vec::new(),
    };
    let mut pins = pins.into_iter();
    for sensor in &config.sensors {
        let actor = SensorActor::new(
            sensor.id.clone(),
            sensor.kind.clone(),
            DebounceConfig {
                debounce: sensor.debounce,
                min_active: sensor.min_active,
            },
            outbox.addr.clone(),
            clock.clone(),
            health.clone(),
        );
        let addr = Supervisor::start(move |_| actor);
        if let Some(pin) = pins.next() {
            gpio::spawn_reader(sensor, pin, addr.clone(), clock.clone())?;
        }
        sensors.all.push(SensorHandle {
            id: sensor.id.clone(),
            kind: sensor.kind.clone(),
            addr,
        });
    }

    let uplink_actor = UplinkActor::new(
        config.clone(),
        outbox.addr.clone(),
        outbox.depth.clone(),
        StatusFacts {
            api: config.api_url.is_some().then(|| api_status.clone()),
            clock: clock_sync,
            dropped: outbox.dropped.clone(),
            refused_acks: outbox.refused_acks.clone(),
            prober,
        },
        clock.clone(),
        health.clone(),
    );
    let uplink = Supervisor::start(move |_| uplink_actor);
    outbox.addr.do_send(AttachUplink {
        events: uplink.clone().recipient(),
        gaps: uplink.clone().recipient(),
    });
    let video = start_video(&config, &clock, &health, &uplink)?;
    if let Some(video) = &video {
        outbox
            .addr
            .do_send(AttachCamera(video.camera.clone().recipient()));
    }

    let state = AppState {
        health: health.clone(),
        depth: outbox.depth.clone(),
        refused: outbox.refused.clone(),
        dropped: outbox.dropped.clone(),
        refused_acks: outbox.refused_acks.clone(),
        sensors,
        media: video.as_ref().map(|v| v.counters.clone()),
    };
    let server = HttpServer::new(move || App::new().configure(http::configure(state.clone())))
        .workers(1)
        .tcp_nodelay(true)
        .disable_signals()
        .bind(config.http_listen)
        .with_context(|| format!("cannot listen on {} (http.listen)", config.http_listen))?;
    for addr in server.addrs() {
        tracing::info!(listen = %addr, "http listening");
    }
    let server = server.run();
    let handle = server.handle();
    let server_task = actix_rt::spawn(server);

    // Up: the outbox is open and every actor started. systemd (Type=notify) learns it now, and the
    // watchdog is pinged for as long as the outbox beats.
    health.expect_beats(
        crate::outbox::actor::NAME,
        crate::systemd::beat_allowance(watchdog),
    );
    crate::systemd::ready(&format!(
        "running: outbox open with {} pending events",
        outbox.depth.get()
    ));
    if let Some(period) = watchdog {
        crate::systemd::spawn_watchdog(health.clone(), period)
            .context("cannot start the watchdog thread")?;
        tracing::info!(
            period_ms = period.as_millis() as u64,
            "pinging the systemd watchdog"
        );
    }

    let signal = wait_for_signal().await?;
    tracing::info!(signal, "shutting down");
    crate::systemd::stopping();
    handle.stop(true).await;
    let _ = server_task.await;
    if let Some(video) = video {
        video.stop().await;
    }
    let _ = uplink.send(Shutdown).await;
    let _ = outbox.writer.close().await;
    tracing::info!(%device_id, "outbox flushed; stopped");
    System::current().stop();
    Ok(())
}

/// Opens the outbox, waiting while another process holds it (a second edge on the same data
/// directory, or one still stopping): no READY for systemd until it is ours.
async fn open_outbox(
    dir: &std::path::Path,
    key: &OutboxKey,
) -> Result<(Store, outbox::Loaded), outbox::StoreError> {
    // Said at once, then every 30 s while it lasts.
    let mut next_word = std::time::Instant::now();
    loop {
        match Store::open(dir, key) {
            Err(outbox::StoreError::Locked { path }) => {
                if std::time::Instant::now() >= next_word {
                    tracing::warn!(path = %path.display(),
                        "the outbox is in use by another process; waiting for it");
                    crate::systemd::status("waiting for the outbox, in use by another process");
                    next_word += Duration::from_secs(30);
                }
                actix_rt::time::sleep(Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

/// The camera, its media outbox and the uploader, when `[video]` names a camera.
struct Video {
    camera: Addr<CameraActor>,
    counters: std::sync::Arc<MediaCounters>,
    uploader: UploaderHandle,
    uploader_thread: std::thread::JoinHandle<()>,
}

impl Video {
    /// Closes the clip being written (queued), then stops the uploader after its current request.
    async fn stop(self) {
        let _ = self.camera.send(StopCamera).await;
        self.uploader.stop();
        let thread = self.uploader_thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

fn start_video(
    config: &Config,
    clock: &SharedClock,
    health: &HealthRegistry,
    uplink: &Addr<UplinkActor>,
) -> anyhow::Result<Option<Video>> {
    let Some(video) = &config.video else {
        return Ok(None);
    };
    let spool = Spool::open(&video.dir)
        .with_context(|| format!("opening the media directory {}", video.dir.display()))?;
    let recovered = spool.recover().context("recovering the media outbox")?;
    tracing::info!(media_dir = %video.dir.display(), queued = recovered.entries,
        orphans_removed = recovered.orphans_removed, partials_removed = recovered.partials_removed,
        "media outbox opened");
    let client = match (&config.api_url, &config.api_token) {
        (Some(url), Some(token)) => Some(ApiClient::new(url, token, config.api.timeout)?),
        _ => {
            tracing::warn!(
                "api.url and api.token are not both set: clips and snapshots stay on the Pi"
            );
            None
        }
    };
    let counters = std::sync::Arc::new(MediaCounters::default());
    let (uploader, uploader_thread) = crate::media::uploader::spawn(UploaderSetup {
        client,
        spool: spool.clone(),
        retention: RetentionPolicy {
            max_bytes: video.retention_max_bytes,
            max_age: video.retention_max_age,
        },
        chunk_bytes: video.upload_chunk_bytes,
        retry_base: config.api.retry_base,
        retry_max: config.api.retry_max,
        clock: clock.clone(),
        counters: counters.clone(),
    })
    .context("starting the media uploader")?;
    let setup = CameraSetup {
        config: video.clone(),
        device: config.device.clone(),
        prefix: config.prefix.clone(),
        spool,
        uploader: uploader.clone(),
        publish: Some(uplink.clone().recipient()),
    };
    let actor = CameraActor::new(
        setup,
        live_tap_factory(config),
        clock.clone(),
        health.clone(),
    );
    let camera = Supervisor::start(move |_| actor);
    Ok(Some(Video {
        camera,
        counters,
        uploader,
        uploader_thread,
    }))
}

/// The live stream's publisher for each (re)start of the camera, when `video.live_url` is set:
/// the device id and its live-push token (never its API token) authenticate it to the RTSP server.
fn live_tap_factory(config: &Config) -> Option<crate::media::LiveTapFactory> {
    let url = config.video.as_ref()?.live_url.clone()?;
    // Validation requires it with live_url.
    let token = config.live_token.clone()?;
    let device = config.device.to_string();
    tracing::info!(live_url = %url, "live stream enabled");
    Some(Box::new(move |parameters, time_base| {
        let live = LiveConfig::new(url.clone(), device.clone(), token.clone());
        match LivePublisher::start(live, parameters.clone(), time_base) {
            // The tap keeps the publisher's thread alive; it ends with the recorder.
            Ok(publisher) => Some(publisher.tap()),
            Err(e) => {
                tracing::error!(error = %e, "live stream not started");
                None
            }
        }
    }))
}

/// The clock probe (`GET /api/time`) when both `api.url` and `api.token` are set.
fn clock_prober(
    config: &Config,
    clock: &SharedClock,
    sync: &ClockSync,
    api: &ApiStatus,
) -> anyhow::Result<Option<Prober>> {
    let (Some(url), Some(token)) = (&config.api_url, &config.api_token) else {
        return Ok(None);
    };
    let client = ApiClient::new(url, token, config.api.timeout)?;
    Ok(Some(Prober::spawn(
        client,
        clock.clone(),
        sync.clone(),
        api.clone(),
        config.api.clock_probe_every,
    )?))
}

/// The bulk drain over HTTP when both `api.url` and `api.token` are set; otherwise MQTT only.
fn bulk_setup(config: &Config, api: &ApiStatus) -> anyhow::Result<Option<BulkSetup>> {
    let (Some(url), Some(token)) = (&config.api_url, &config.api_token) else {
        if config.api_url.is_some() != config.api_token.is_some() {
            tracing::warn!("api.url and api.token must both be set for the bulk drain; MQTT only");
        }
        return Ok(None);
    };
    let client = ApiClient::new(url, token, config.api.timeout)?;
    tracing::info!(api_url = %url, bulk_threshold = config.api.bulk_threshold,
        bulk_batch = config.api.bulk_batch, "bulk drain over HTTP enabled");
    Ok(Some(BulkSetup {
        client,
        policy: BulkPolicy {
            threshold: config.api.bulk_threshold,
            batch: config.api.bulk_batch,
        },
        retry_base: config.api.retry_base,
        retry_max: config.api.retry_max,
        api: api.clone(),
    }))
}

/// A new outbox (first start, or a wiped Pi with the same id) asks the cloud over the API for the
/// device's `acked_seq` and continues after it, so no seq the cloud holds is issued again. Bounded:
/// [`ResumePolicy`] attempts; if the API cannot answer, the edge starts from seq 1 and says so.
async fn resume_new_outbox(
    config: &Config,
    store: &Store,
    loaded: &mut outbox::Loaded,
) -> anyhow::Result<()> {
    let (Some(url), Some(token)) = (&config.api_url, &config.api_token) else {
        tracing::info!("new outbox and no api.url/api.token: starting from seq 1");
        return Ok(());
    };
    let policy = ResumePolicy::default();
    let client = Arc::new(ApiClient::new(
        url,
        token,
        config.api.timeout.min(std::time::Duration::from_secs(5)),
    )?);
    let mut pause = policy.pause;
    for attempt in 1..=policy.attempts {
        let asking = client.clone();
        let answer = tokio::task::spawn_blocking(move || asking.acked_seq())
            .await
            .context("the acked_seq request thread failed")?;
        match answer {
            Ok(acked_seq) => {
                if acked_seq > 0 {
                    outbox::resume::continue_above(store, loaded, acked_seq)
                        .context("recording the cloud's acked_seq in the new outbox")?;
                    tracing::warn!(
                        device_id = %config.device,
                        acked_seq,
                        next_seq = loaded.next_seq,
                        "new outbox, but the cloud already holds seqs of this device (wiped or                          re-flashed?): continuing after them so that no seq is reused"
                    );
                }
                return Ok(());
            }
            Err(e @ (AckedSeqError::Unauthorized | AckedSeqError::NoAckedSeq)) => {
                tracing::warn!(error = %e,
                    "new outbox: cannot read the device's acked_seq; starting from seq 1");
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(attempt, attempts = policy.attempts, error = %e,
                    "new outbox: the cloud did not answer its acked_seq yet");
                if attempt < policy.attempts {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
            }
        }
    }
    tracing::warn!(
        device_id = %config.device,
        "new outbox and the cloud unreachable: starting from seq 1; if this Pi was wiped, the          cloud's next bulk answer moves it past the seqs it holds"
    );
    Ok(())
}

/// Reads the outbox key file; with the demo option `create_key`, makes it first when missing.
fn load_key(config: &Config) -> anyhow::Result<OutboxKey> {
    let path = &config.outbox.key_file;
    if config.outbox.create_key && !path.exists() {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::files::private_dir(parent)
                .with_context(|| format!("cannot create the directory of {}", path.display()))?;
        }
        outbox::key::generate(path)?;
        tracing::warn!(key_file = %path.display(),
            "outbox.create_key (demos only): created a new outbox key; a real Pi gets its key at provisioning");
    }
    Ok(outbox::key::load(path)?)
}

/// TESTS ONLY: `VIGIE_EDGE_FAKE_CLOCK_SKEW_MS` shifts the wall clock the edge reads, to play a Pi
/// whose clock is wrong (booted offline, no RTC).
fn fake_clock_skew() -> anyhow::Result<Option<i64>> {
    let Ok(raw) = std::env::var("VIGIE_EDGE_FAKE_CLOCK_SKEW_MS") else {
        return Ok(None);
    };
    let skew: i64 = raw
        .trim()
        .parse()
        .with_context(|| format!("VIGIE_EDGE_FAKE_CLOCK_SKEW_MS={raw:?} is not an integer"))?;
    tracing::warn!(
        skew_ms = skew,
        "VIGIE_EDGE_FAKE_CLOCK_SKEW_MS (tests only): the wall clock is shifted"
    );
    Ok(Some(skew))
}

/// The system clock shifted by a fixed amount (tests of clock correction).
struct SkewedClock {
    inner: SystemClock,
    skew: chrono::Duration,
}

impl SkewedClock {
    fn new(skew_ms: i64) -> SkewedClock {
        SkewedClock {
            inner: SystemClock::new(),
            skew: chrono::Duration::milliseconds(skew_ms),
        }
    }
}

impl ::actors::Clock for SkewedClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.now() + self.skew
    }
    fn monotonic(&self) -> std::time::Duration {
        self.inner.monotonic()
    }
}

async fn wait_for_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    Ok(tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    })
}
