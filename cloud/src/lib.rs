//! `vigie-cloud`: MQTT ingest, the event store, the REST + WebSocket API and auth.
//!
//! Code map: [`config`] (settings from file and env), [`store`] (the only module that speaks SQL),
//! [`auth`] (JWT, passwords, device tokens), [`broker`] (the embedded MQTT broker), [`ingest`] (the
//! MQTT ingest actor and its pure batcher), [`hub`] (WebSocket fan-out), [`api`] (HTTP routes),
//! [`app`] (wiring it all together), [`files`] (private directories, atomic writes).

pub mod api;
pub mod app;
pub mod attack_telemetry;
pub mod auth;
pub mod broker;
pub mod broker_files;
pub mod broker_watch;
pub mod config;
pub mod files;
#[doc(hidden)]
pub mod fuzzing;
pub mod hub;
pub mod ingest;
pub mod live;
pub mod media;
pub mod probe;
pub mod store;
