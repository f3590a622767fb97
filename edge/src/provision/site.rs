//! The site file, `vigie/site.toml` on the boot partition: what the person flashing a Pi knows of
//! its site (the cloud, the broker, the time zone, Wi-Fi, the SSH key, a WireGuard peer). Checked
//! whole before anything is applied; unknown keys are refused, so a typo is said, not ignored.

use std::path::Path;

use serde::Deserialize;

/// `site.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// The cloud's URL, `https://HOST` (the API: bulk drain, clock, uploads).
    pub cloud_url: String,
    /// The broker's devices listener, `mqtts://HOST:8883`.
    pub broker_url: String,
    /// The site's topic prefix, if it has one.
    #[serde(default)]
    pub topic_prefix: String,
    /// An IANA time zone, e.g. `Europe/Paris`.
    pub time_zone: String,
    /// The public key that may log in over SSH (as root; no password login exists).
    pub ssh_authorized_key: String,
    /// Wi-Fi, if the Pi is not on Ethernet.
    #[serde(default)]
    pub wifi: Option<Wifi>,
    /// A WireGuard configuration (`wg0`), for the Pi's traffic through a peer the site operates.
    #[serde(default)]
    pub wireguard: Option<String>,
    /// The camera (`video.source`): `v4l` (a USB camera at /dev/video0), `rpicam` (a camera
    /// module through `rpicam-vid`), `synthetic` (a test pattern); none: sensors only.
    #[serde(default)]
    pub camera: Option<String>,
    /// Where the live view is pushed, `rtsp://HOST:8554/live/{device}` (none: no live view).
    #[serde(default)]
    pub live_url: Option<String>,
    /// With a bundle for another device id: archive the outbox of the one this Pi was, even with
    /// unsent events, instead of refusing.
    #[serde(default)]
    pub replace_device: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wifi {
    pub country: String,
    pub ssid: String,
    pub psk: String,
}

impl Site {
    /// Parses and checks a site file; `root` is the system root (its zoneinfo names the zones).
    pub fn parse(text: &str, root: &Path) -> Result<Site, String> {
        let site: Site = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        let url = |key: &str, value: &str, schemes: &[&str]| {
            let ok = schemes.iter().any(|s| {
                value
                    .strip_prefix(s)
                    .and_then(|r| r.strip_prefix("://"))
                    .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace))
            });
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "{key} = {value:?}: expected {}://HOST...",
                    schemes.join("|")
                ))
            }
        };
        url("cloud_url", &site.cloud_url, &["https", "http"])?;
        url("broker_url", &site.broker_url, &["mqtts", "mqtt"])?;
        if let Some(live) = &site.live_url {
            url("live_url", live, &["rtsp", "rtsps"])?;
        }
        if let Some(camera) = &site.camera {
            if !["v4l", "rpicam", "synthetic", "none"].contains(&camera.as_str()) {
                return Err(format!(
                    "camera = {camera:?}: expected v4l, rpicam, synthetic or none"
                ));
            }
        }
        let zone = &site.time_zone;
        if zone.is_empty()
            || zone.starts_with('/')
            || zone.split('/').any(|part| part == ".." || part.is_empty())
            || !root.join("usr/share/zoneinfo").join(zone).is_file()
        {
            return Err(format!(
                "time_zone = {zone:?}: not a time zone of this system (e.g. Europe/Paris)"
            ));
        }
        let key = site.ssh_authorized_key.trim();
        let parts: Vec<&str> = key.split_whitespace().collect();
        if parts.len() < 2
            || !(parts[0].starts_with("ssh-") || parts[0].starts_with("ecdsa-"))
            || key.contains('\n')
        {
            return Err("ssh_authorized_key: expected one public key line, e.g. \"ssh-ed25519 AAAA... you@laptop\"".into());
        }
        if let Some(wifi) = &site.wifi {
            if wifi.country.len() != 2 || !wifi.country.chars().all(|c| c.is_ascii_uppercase()) {
                return Err(format!(
                    "wifi.country = {:?}: a two-letter country code, e.g. FR",
                    wifi.country
                ));
            }
            if wifi.ssid.is_empty() || wifi.ssid.len() > 32 || wifi.ssid.contains(['"', '\n']) {
                return Err("wifi.ssid: 1 to 32 bytes, no quote or newline".into());
            }
            if !(8..=63).contains(&wifi.psk.len()) || wifi.psk.contains(['"', '\n']) {
                return Err("wifi.psk: 8 to 63 characters, no quote or newline".into());
            }
        }
        if let Some(wg) = &site.wireguard {
            if !wg.contains("[Interface]") || !wg.contains("PrivateKey") {
                return Err("wireguard: expected a wg-quick configuration with [Interface] and its PrivateKey".into());
            }
        }
        Ok(site)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn root_with_zone() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let zone = root.path().join("usr/share/zoneinfo/Europe");
        std::fs::create_dir_all(&zone).unwrap();
        std::fs::write(zone.join("Paris"), b"TZif").unwrap();
        root
    }

    const GOOD: &str = r#"
cloud_url = "https://vigie.example.org"
broker_url = "mqtts://pis.vigie.example.org:8883"
time_zone = "Europe/Paris"
ssh_authorized_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample admin@laptop"
[wifi]
country = "FR"
ssid = "atelier"
psk = "correct horse"
"#;

    #[test]
    fn a_site_file_is_read_whole() {
        let root = root_with_zone();
        let site = Site::parse(GOOD, root.path()).unwrap();
        assert_eq!(site.wifi.unwrap().ssid, "atelier");
        assert!(!site.replace_device);
    }

    #[test]
    fn a_bad_site_file_is_refused_saying_what_is_wrong() {
        let root = root_with_zone();
        let cases = [
            (GOOD.replace("https://vigie", "ftp://vigie"), "cloud_url"),
            (GOOD.replace("mqtts://", "tcp://"), "broker_url"),
            (
                GOOD.replace("Europe/Paris", "Mars/Olympus"),
                "time_zone = \"Mars/Olympus\"",
            ),
            (
                GOOD.replace("Europe/Paris", "../../etc/passwd"),
                "time_zone",
            ),
            (
                GOOD.replace("ssh-ed25519 AAAA", "AAAA"),
                "ssh_authorized_key",
            ),
            (
                GOOD.replace("country = \"FR\"", "country = \"France\""),
                "wifi.country",
            ),
            (GOOD.replace("correct horse", "short"), "wifi.psk"),
            (
                GOOD.replace("time_zone", "timezone"),
                "unknown field `timezone`",
            ),
            (
                GOOD.replace("cloud_url = \"https://vigie.example.org\"\n", ""),
                "missing field `cloud_url`",
            ),
        ];
        for (text, expected) in cases {
            let error = Site::parse(&text, root.path()).unwrap_err();
            assert!(
                error.contains(expected),
                "{error:?} should say {expected:?}"
            );
        }
    }
}
