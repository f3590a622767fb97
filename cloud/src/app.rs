//! Wiring for `vigie-cloud serve`: store, auth, broker (embedded or external), hub, ingest, HTTP.

use std::sync::Arc;
use std::time::Duration;

use actix::Supervisor;
use actix_web::{web, App, HttpServer};
use actors::{HealthRegistry, SystemClock};
use anyhow::Context as _;
use rumqttc::{MqttOptions, Transport};

use crate::api::{self, AppState};
use crate::auth::{Auth, PasswordCost};
use crate::broker;
use crate::config::{Config, MqttTarget};
use crate::hub::Hub;
use crate::ingest::{Ingest, IngestMetrics, IngestSettings};
use crate::live::{LiveCameras, LiveSettings, LiveSource};
use crate::store::Store;

fn mqtt_options(config: &Config) -> MqttOptions {
    let mut options = match &config.mqtt {
        MqttTarget::Embedded { listen } => MqttOptions::new(
            &config.mqtt_client_id,
            listen.ip().to_string(),
            listen.port(),
        ),
        MqttTarget::External { host, port, tls } => {
            let mut o = MqttOptions::new(&config.mqtt_client_id, host.clone(), *port);
            if *tls {
                o.set_transport(match &config.mqtt_ca_pem {
                    Some(ca) => Transport::Tls(rumqttc::TlsConfiguration::Simple {
                        ca: ca.clone(),
                        alpn: None,
                        client_auth: None,
                    }),
                    None => Transport::tls_with_default_config(),
                });
            }
            o
        }
    };
    if let Some((user, password)) = &config.mqtt_credentials {
        options.set_credentials(user.clone(), password.clone());
    }
    options.set_keep_alive(Duration::from_secs(30));
    // Above what any broker Vigie configures lets through (64 KiB payloads: the embedded broker's
    // `max_payload_size`, the production Mosquitto's `message_size_limit`) plus the longest topic:
    // a message over rumqttc's limit breaks the connection, and a persistent session would then
    // redeliver it forever. What passes but is too large for the protocol is acked as invalid.
    const INCOMING_MAX: usize = protocol::MAX_PAYLOAD_BYTES * 4 + 128 * 1024;
    options.set_max_packet_size(INCOMING_MAX, protocol::MAX_PAYLOAD_BYTES * 4);
    options
}

/// Starts the metrics listener (`/metrics`, the detailed `/readyz`, `/healthz`) beside the API, on
/// the same actix system. Its address taken by another process: logged, and the rest runs (as the
/// RTSP server does), so a second cloud on one machine is not stopped by its metrics.
fn serve_ops(listen: std::net::SocketAddr, state: AppState, cameras: LiveCameras) {
    let bound = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .app_data(web::Data::new(cameras.clone()))
            .configure(api::health::ops_routes)
    })
    .workers(1)
    .tcp_nodelay(true)
    // It answers until the process exits: a probe during the drain still gets its answer.
    .disable_signals()
    .bind(listen);
    match bound {
        Ok(server) => {
            tracing::info!(listen = %listen, "metrics and readiness details served");
            actix_web::rt::spawn(server.shutdown_timeout(1).run());
        }
        Err(e) => tracing::error!(listen = %listen, error = %e,
            "cannot listen for metrics (set VIGIE_METRICS_LISTEN to a free address); no /metrics"),
    }
}

/// Runs the cloud until Ctrl-C or SIGTERM, then drains it ([`stop_on_signal`]).
pub async fn serve(mut config: Config) -> anyhow::Result<()> {
    crate::files::private_dir(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let (url, dir) = (config.database_url.clone(), config.data_dir.clone());
    let store = web::block(move || Store::open(url.as_deref(), &dir))
        .await?
        .context("cannot open the database")?;
    let auth = Auth::load_or_create(
        config.jwt_secret.as_deref(),
        &config.data_dir,
        config.token_ttl,
    )
    .context("cannot set up JWT signing")?;
    if let MqttTarget::Embedded { listen } = config.mqtt {
        // The ingest's own credential for the embedded broker: made now, kept in memory only.
        let ingest_password = crate::auth::new_mqtt_password();
        let auth = broker::BrokerAuth::new(store.clone(), &config.mqtt_client_id, &ingest_password);
        config.mqtt_credentials = Some((config.mqtt_client_id.clone(), ingest_password));
        web::block(move || broker::start(listen, auth)).await??;
        if !listen.ip().is_loopback() || !config.listen.ip().is_loopback() {
            tracing::warn!(
                "the embedded defaults (embedded MQTT broker without ACL, SQLite) are for one trusted \
                 machine, and this one listens beyond loopback"
            );
        }
    }

    let cameras = LiveCameras::new();
    let live = LiveSettings {
        source: config.live_source.clone(),
        dir: config.data_dir.join("live"),
        segment: config.live_segment,
        list_size: crate::live::list_size(config.live_segment),
    };
    // Live view is optional: a taken RTSP port (another cloud on this machine) leaves the rest up.
    if let Err(e) = crate::live::start(live, store.clone(), cameras.clone()) {
        tracing::error!(error = %e, "live view is off: set rtsp_listen (VIGIE_RTSP_LISTEN) to a free address");
    }

    let health = HealthRegistry::new();
    health.register("database", true);
    let metrics = Arc::new(IngestMetrics::default());
    let hub = {
        let (buffer, metrics, store) = (config.ws_buffer, metrics.clone(), store.clone());
        let health = health.clone();
        // Watching the store: sockets of sessions ended elsewhere (the CLI) close within 1 s.
        Supervisor::start(move |_| {
            Hub::new(buffer, metrics.clone())
                .watching(store.clone())
                .beating(health.clone())
        })
    };
    let ingest = Ingest::start(
        IngestSettings {
            options: mqtt_options(&config),
            prefix: config.topic_prefix.clone(),
            max_batch: config.ingest_max_batch,
        },
        store.clone(),
        hub.clone(),
        metrics.clone(),
        health.clone(),
        SystemClock::shared(),
    );
    crate::attack_telemetry::Flusher::new(store.clone(), metrics.clone(), cameras.rtsp_metrics())
        .spawn()
        .context("cannot start the attack telemetry's thread")?;
    let state = AppState {
        store,
        auth,
        hub: hub.clone(),
        ingest: Some(ingest.clone()),
        metrics,
        health,
        max_body_bytes: config.max_body_bytes,
        password_cost: PasswordCost::Standard,
        login_policy: crate::auth::LoginPolicy::default(),
        login_throttle: crate::auth::LoginThrottle::new(config.trusted_proxies.clone()),
        allowed_origins: api::origin::AllowedOrigins::new(config.allowed_origins.clone()),
    };
    let media_store = crate::media::MediaStore::open(config.media_url.as_deref(), &config.data_dir)
        .context("cannot open the media store")?;
    let staging = crate::media::Staging::open(&config.data_dir.join("uploads"))
        .context("cannot open the upload staging directory")?;
    match crate::media::sweep_staging(&staging, &state.store) {
        Ok(0) => {}
        Ok(removed) => tracing::info!(
            removed,
            "staging files of finished or unknown uploads removed"
        ),
        Err(e) => tracing::warn!(error = %e, "sweeping the upload staging directory failed"),
    }
    // The same registry the live gateway fills: `/api/cameras` lists a streaming camera as live.
    let media = web::Data::new(api::MediaState::new(media_store, staging, cameras.clone()));
    // The one reader the MediaMTX hook lets in: the cloud itself, with its pull URL's credentials.
    let live_reader = match &config.live_source {
        LiveSource::Pull(url) => api::LiveReader::from_pull_url(url),
        LiveSource::Listen(_) => None,
    };
    let allowed_origins = state.allowed_origins.clone();
    let max_body = config.max_body_bytes;
    let console_dir = config.console_dir.clone();
    if console_dir.join("index.html").is_file() {
        tracing::info!(console_dir = %console_dir.display(), "serving the web console at /");
    } else {
        tracing::warn!(console_dir = %console_dir.display(),
            "no built web console there (run `make web`); / says so");
    }
    serve_ops(config.metrics_listen, state.clone(), cameras.clone());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let server = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(
                api::origin::refuse_foreign_origin,
            ))
            .wrap(actix_web::middleware::from_fn(api::body_deadline::enforce))
            .wrap(api::origin::cors(allowed_origins.clone()))
            .wrap(api::origin::security_headers())
            .app_data(web::Data::new(state.clone()))
            .app_data(media.clone())
            .app_data(web::Data::new(cameras.clone()))
            .configure(|c| {
                if let Some(reader) = &live_reader {
                    c.app_data(web::Data::new(reader.clone()));
                }
            })
            .configure(|c| api::routes(c, max_body))
            .configure(|c| api::console::configure(c, &console_dir))
    })
    .tcp_nodelay(true)
    // Per worker: one actix worker a core.
    .max_connections(config.max_connections.div_ceil(workers))
    .workers(workers)
    .bind(config.listen)
    .with_context(|| format!("cannot listen on {}", config.listen))?
    .shutdown_timeout(5)
    // SIGTERM and Ctrl-C are handled below: the drain comes before the HTTP server stops.
    .disable_signals()
    .run();
    tracing::info!(listen = %config.listen, "vigie-cloud serving the API");
    actix_web::rt::spawn(stop_on_signal(
        server.handle(),
        ingest,
        hub,
        config.shutdown_grace,
    ));
    server.await?;
    Ok(())
}

/// On SIGTERM (or Ctrl-C): drain the ingest (no more deliveries; what is in hand committed and
/// acked), close every WebSocket with 1012 (the console reconnects and catches up), then stop the
/// HTTP server, finishing its requests. Past `grace`, the server stops at once.
async fn stop_on_signal(
    server: actix_web::dev::ServerHandle,
    ingest: actix::Addr<Ingest>,
    hub: actix::Addr<Hub>,
    grace: Duration,
) {
    use actix_web::rt::signal::unix::{signal, SignalKind};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch for SIGTERM; it will stop the process at once");
            return;
        }
    };
    let which = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = actix_web::rt::signal::ctrl_c() => "SIGINT",
    };
    let started = std::time::Instant::now();
    tracing::info!(
        signal = which,
        grace_s = grace.as_secs(),
        "stopping: draining first"
    );
    let drain = async {
        let _ = ingest.send(crate::ingest::Drain).await;
        let closed = hub.send(crate::hub::EndAllSockets).await.unwrap_or(0);
        tracing::info!(
            websockets = closed,
            "websockets closed with 1012 (service restart)"
        );
        server.stop(true).await;
    };
    if actix_web::rt::time::timeout(grace, drain).await.is_err() {
        tracing::warn!(
            grace_s = grace.as_secs(),
            "the drain outlasted the grace period; stopping now"
        );
        server.stop(false).await;
    }
    tracing::info!(
        ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "stopped"
    );
}
