//! The MQTT connection options, built from the configuration in one place: client id = device id,
//! persistent session, keep-alive, the retained last will, the in-flight limit and the transport.

use protocol::{DeviceStatus, Topic};
use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};

use crate::config::Config;

/// Requests the uplink may queue in rumqttc's channel beyond the outbox window (status, subscribe).
pub const EXTRA_REQUESTS: usize = 32;

/// The options for `config`.
pub fn mqtt_options(config: &Config) -> MqttOptions {
    let device = config.device.clone();
    let mut options = MqttOptions::new(device.as_str(), &config.mqtt.host, config.mqtt.port);
    options
        .set_keep_alive(config.keep_alive)
        .set_clean_session(false)
        .set_last_will(LastWill::new(
            Topic::Status(device.clone()).render(&config.prefix),
            DeviceStatus::last_will(device).to_json(),
            QoS::AtLeastOnce,
            true,
        ))
        .set_inflight(inflight(config.outbox.max_in_flight));
    if config.mqtt.tls {
        options.set_transport(match &config.mqtt_auth.ca_pem {
            // The CA the device was provisioned with: only a broker certificate it signed passes.
            Some(ca) => Transport::Tls(TlsConfiguration::Simple {
                ca: ca.clone(),
                alpn: None,
                client_auth: None,
            }),
            None => Transport::tls_with_default_config(),
        });
    }
    if let Some((username, password)) = &config.mqtt_auth.credentials {
        options.set_credentials(username.clone(), password.clone());
    }
    options
}

/// rumqttc's own in-flight limit: the outbox window plus room for status publishes.
pub fn inflight(window: usize) -> u16 {
    (window + EXTRA_REQUESTS).min(u16::MAX as usize) as u16
}

/// The capacity of rumqttc's request channel: it never fills while the outbox window holds.
pub fn request_capacity(window: usize) -> usize {
    window + EXTRA_REQUESTS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let text = include_str!("../../examples/simulated.toml");
        let mut raw = crate::config::parse(std::path::Path::new("x"), text).unwrap();
        raw.mqtt.topic_prefix = "run-1".into();
        Config::from_raw(raw).unwrap()
    }

    #[test]
    fn the_client_id_is_the_device_id_and_the_session_persists() {
        let o = mqtt_options(&config());
        assert_eq!(o.client_id(), "pi-1");
        assert!(!o.clean_session());
        assert_eq!(o.broker_address(), ("127.0.0.1".to_owned(), 1884));
    }

    #[test]
    fn the_last_will_is_a_retained_offline_status_under_the_prefix() {
        let o = mqtt_options(&config());
        let will = o.last_will().unwrap();
        assert_eq!(will.topic, "run-1/system/pi-1/status");
        assert!(will.retain);
        assert_eq!(will.qos, QoS::AtLeastOnce);
        let status = DeviceStatus::from_json(&will.message).unwrap();
        assert_eq!(status.state, protocol::DeviceState::Offline);
    }
}
