//! The embedded MQTT broker (rumqttd), for the single-machine defaults: with no `VIGIE_MQTT_URL`,
//! `vigie-cloud` runs it in-process on `VIGIE_MQTT_LISTEN` (127.0.0.1:1884 by default).
//!
//! rumqttd keeps nothing on disk and has no ACL: it is for one trusted machine. `Broker::start` blocks
//! and builds its own runtimes, so it runs on a dedicated thread.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Why the embedded broker did not come up.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("embedded MQTT broker config: {0}")]
    Config(String),
    #[error("embedded MQTT broker did not accept connections on {addr} within {waited:?}; is the port taken?")]
    NotListening { addr: SocketAddr, waited: Duration },
}

fn config(listen: SocketAddr) -> Result<rumqttd::Config, BrokerError> {
    let text = format!(
        r#"
id = 0
[router]
max_connections = 1024
max_outgoing_packet_count = 1000
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "vigie-embedded"
listen = "{listen}"
next_connection_delay_ms = 1
[v4.1.connections]
connection_timeout_ms = 60000
max_payload_size = {max_payload}
max_inflight_count = 500
dynamic_filters = true
"#,
        max_payload = protocol::MAX_PAYLOAD_BYTES * 4,
    );
    toml::from_str(&text).map_err(|e| BrokerError::Config(e.to_string()))
}

/// Starts rumqttd on `listen` in a background thread and waits until it accepts connections.
pub fn start(listen: SocketAddr) -> Result<(), BrokerError> {
    let cfg = config(listen)?;
    if TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_ok() {
        // rumqttd never reports a bind failure; refuse to "start" on a port someone else holds.
        return Err(BrokerError::Config(format!(
            "{listen} is already in use; set VIGIE_MQTT_LISTEN to a free port or VIGIE_MQTT_URL to use that broker"
        )));
    }
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(cfg);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })
        .map_err(|e| BrokerError::Config(e.to_string()))?;
    let waited = Duration::from_secs(10);
    let deadline = Instant::now() + waited;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_ok() {
            tracing::info!(%listen, "embedded MQTT broker listening");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(BrokerError::NotListening {
        addr: listen,
        waited,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_config_parses() {
        let cfg = config("127.0.0.1:1884".parse().unwrap()).unwrap();
        let v4 = cfg.v4.unwrap();
        assert_eq!(v4["1"].listen.port(), 1884);
    }
}
