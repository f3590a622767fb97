//! The embedded MQTT broker (rumqttd), for the single-machine defaults: with no `VIGIE_MQTT_URL`,
//! `vigie-cloud` runs it in-process on `VIGIE_MQTT_LISTEN` (127.0.0.1:1884 by default; the config
//! refuses a non-loopback address unless `VIGIE_EMBEDDED_BROKER_INSECURE=1`).
//!
//! Every client authenticates at CONNECT ([`BrokerAuth`]), with client id = username: the ingest
//! with a password made at start and kept in memory, a device with its MQTT password, checked
//! against the `$7$` hash in the store (so a revoked device is refused at its next CONNECT).
//! rumqttd has no publish/subscribe authorization (no ACL): a client that logged in may publish on
//! any topic, so it is for one trusted machine; production uses Mosquitto with the generated ACL.
//! It keeps nothing on disk. `Broker::start` blocks and builds its own runtimes, so it runs on a
//! dedicated thread.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::auth::mosquitto_verify;
use crate::store::Store;

/// Why the embedded broker did not come up.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("embedded MQTT broker config: {0}")]
    Config(String),
    #[error("embedded MQTT broker did not accept connections on {addr} within {waited:?}; is the port taken?")]
    NotListening { addr: SocketAddr, waited: Duration },
}

/// Who may connect: the ingest (its own credential) and every provisioned, unrevoked device.
#[derive(Clone)]
pub struct BrokerAuth {
    inner: Arc<AuthInner>,
}

struct AuthInner {
    store: Store,
    ingest_id: String,
    /// SHA-256 of the ingest's password (compared in constant time).
    ingest_password: [u8; 32],
}

/// Why a CONNECT was refused (logged; the client only sees "not authorized").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the username {username:?} is not the client id {client_id:?}")]
    UsernameIsNotClientId { client_id: String, username: String },
    #[error("wrong password for the ingest's client id")]
    WrongIngestPassword,
    #[error("no provisioned, unrevoked device with this id")]
    UnknownDevice,
    #[error("wrong password for this device")]
    WrongDevicePassword,
    #[error("the device list could not be read: {0}")]
    Store(String),
}

impl BrokerAuth {
    /// The ingest connects as `ingest_id` with `ingest_password`; devices as themselves.
    pub fn new(store: Store, ingest_id: &str, ingest_password: &str) -> BrokerAuth {
        BrokerAuth {
            inner: Arc::new(AuthInner {
                store,
                ingest_id: ingest_id.to_owned(),
                ingest_password: Sha256::digest(ingest_password.as_bytes()).into(),
            }),
        }
    }

    /// Checks one CONNECT. Blocking (a database read and a PBKDF2 check for a device): called on
    /// a blocking thread.
    pub fn check(&self, client_id: &str, username: &str, password: &str) -> Result<(), Refusal> {
        if client_id != username {
            return Err(Refusal::UsernameIsNotClientId {
                client_id: client_id.to_owned(),
                username: username.to_owned(),
            });
        }
        if client_id == self.inner.ingest_id {
            let given: [u8; 32] = Sha256::digest(password.as_bytes()).into();
            // Equal-length digests compared without an early exit.
            let diff = given
                .iter()
                .zip(self.inner.ingest_password.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            return if diff == 0 {
                Ok(())
            } else {
                Err(Refusal::WrongIngestPassword)
            };
        }
        let credentials = self
            .inner
            .store
            .mqtt_credentials()
            .map_err(|e| Refusal::Store(e.to_string()))?;
        let hash = credentials
            .iter()
            .find(|(id, _)| id == client_id)
            .map(|(_, hash)| hash)
            .ok_or(Refusal::UnknownDevice)?;
        if mosquitto_verify(password, hash) {
            Ok(())
        } else {
            Err(Refusal::WrongDevicePassword)
        }
    }

    /// The check as rumqttd's `external_auth` runs it: on a blocking thread, logged when refused.
    async fn check_connect(self, client_id: String, username: String, password: String) -> bool {
        let checked = tokio::task::spawn_blocking(move || {
            let result = self.check(&client_id, &username, &password);
            (client_id, result)
        })
        .await;
        match checked {
            Ok((_, Ok(()))) => true,
            Ok((client_id, Err(refusal))) => {
                tracing::warn!(%client_id, reason = %refusal, "embedded MQTT broker refused a client at CONNECT");
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "embedded MQTT broker: the CONNECT check failed");
                false
            }
        }
    }
}

fn config(listen: SocketAddr, auth: Option<BrokerAuth>) -> Result<rumqttd::Config, BrokerError> {
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
    let mut cfg: rumqttd::Config =
        toml::from_str(&text).map_err(|e| BrokerError::Config(e.to_string()))?;
    if let Some(auth) = auth {
        let server = cfg
            .v4
            .as_mut()
            .and_then(|servers| servers.get_mut("1"))
            .ok_or_else(|| BrokerError::Config("no [v4.1] server in the embedded config".into()))?;
        server
            .connections
            .set_auth_handler(move |client_id, username, password| {
                auth.clone().check_connect(client_id, username, password)
            });
    }
    Ok(cfg)
}

/// Starts rumqttd on `listen` in a background thread, authenticating every CONNECT with `auth`, and
/// waits until it accepts connections.
pub fn start(listen: SocketAddr, auth: BrokerAuth) -> Result<(), BrokerError> {
    let cfg = config(listen, Some(auth))?;
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
        let cfg = config("127.0.0.1:1884".parse().unwrap(), None).unwrap();
        let v4 = cfg.v4.unwrap();
        assert_eq!(v4["1"].listen.port(), 1884);
    }

    fn auth_with_device(dir: &std::path::Path) -> BrokerAuth {
        let store = Store::open(None, dir).unwrap();
        let id = protocol::DeviceId::new("pi-1".to_owned()).unwrap();
        let mqtt = crate::auth::mosquitto_hash("pi-secret");
        let hashes = crate::store::CredentialHashes {
            token: "token-hash",
            mqtt_password: Some(&mqtt),
            live_token: None,
        };
        store.provision_device(&id, hashes).unwrap();
        BrokerAuth::new(store, "vigie-cloud", "ingest-secret")
    }

    #[test]
    fn a_device_connects_only_as_itself_with_its_own_password() {
        let dir = tempfile::tempdir().unwrap();
        let auth = auth_with_device(dir.path());
        assert_eq!(auth.check("pi-1", "pi-1", "pi-secret"), Ok(()));
        assert_eq!(
            auth.check("pi-1", "pi-1", "wrong"),
            Err(Refusal::WrongDevicePassword)
        );
        assert_eq!(
            auth.check("pi-1", "pi-1", ""),
            Err(Refusal::WrongDevicePassword)
        );
        assert!(matches!(
            auth.check("spy", "pi-1", "pi-secret"),
            Err(Refusal::UsernameIsNotClientId { .. })
        ));
        assert_eq!(
            auth.check("pi-2", "pi-2", "pi-secret"),
            Err(Refusal::UnknownDevice)
        );
    }

    #[test]
    fn the_ingest_connects_with_its_own_credential_only() {
        let dir = tempfile::tempdir().unwrap();
        let auth = auth_with_device(dir.path());
        assert_eq!(
            auth.check("vigie-cloud", "vigie-cloud", "ingest-secret"),
            Ok(())
        );
        assert_eq!(
            auth.check("vigie-cloud", "vigie-cloud", "pi-secret"),
            Err(Refusal::WrongIngestPassword)
        );
        assert!(auth.check("vigie-cloud", "pi-1", "pi-secret").is_err());
    }

    #[test]
    fn a_revoked_device_is_refused_at_its_next_connect() {
        let dir = tempfile::tempdir().unwrap();
        let auth = auth_with_device(dir.path());
        let id = protocol::DeviceId::new("pi-1".to_owned()).unwrap();
        assert!(auth.inner.store.revoke_device(&id).unwrap());
        assert_eq!(
            auth.check("pi-1", "pi-1", "pi-secret"),
            Err(Refusal::UnknownDevice)
        );
    }
}
