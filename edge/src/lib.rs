//! `vigie-edge`, the Pi supervisor: sensor actors feed a durable outbox, an uplink actor drains it to
//! MQTT, and a local HTTP port serves health (and, with simulated sensors, injects activations).
//!
//! Code map:
//! - [`config`]: the TOML file and its environment overrides, raw → validated.
//! - [`sensor`]: the debounce core, one actor per sensor, and the GPIO and simulated backends.
//! - [`outbox`]: the sled store, encrypted at rest (key file, sealing), its single writer thread
//!   (group commit, full-disk recovery), the pure bookkeeping core and the outbox actor.
//! - [`uplink`]: the MQTT actor (rumqttc), its pkid tracker and its connection options.
//! - [`api`]: the cloud's HTTP API client and its worker thread, used to drain a large backlog in
//!   bulk (`POST /api/events`) while live events keep going over MQTT.
//! - [`http`]: `/healthz`, `/readyz`, `/sim/{kind}`.
//! - [`provision`]: first boot: the bundle and the site file from the boot partition, checked whole,
//!   installed into /etc/vigie, then deleted from the card.
//! - [`app`]: wiring and shutdown; [`systemd`]: READY, STOPPING and the watchdog pings driven by
//!   the actors' heartbeats; [`logging`]: the tracing subscriber; [`files`]: private directories.
//!
//! Architecture invariant: an event is durable in the outbox before anything else happens to it, and
//! it leaves the outbox only when the cloud confirms its commit (`system/{device}/ack`, or the
//! `acked_seq` of a bulk answer).

pub mod api;
pub mod app;
pub mod clock_sync;
pub mod config;
pub mod files;
pub mod http;
pub mod logging;
pub mod media;
pub mod outbox;
pub mod provision;
pub mod recorder;
pub mod sensor;
pub mod systemd;
pub mod uplink;
