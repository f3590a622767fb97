//! The edge's .deb, built with cargo-deb from the binary this run built (`make deb` builds the
//! release one): lintian finds nothing at any level but what `edge/debian/vigie-edge.lintian-overrides`
//! overrides, each override with the comment that gives its reason; the package holds the binary,
//! the committed unit, the sysusers and udev files, and `/etc/vigie/edge.toml` as its one conffile;
//! and that conffile, with a site's values in the environment as `/etc/vigie/site.env` gives them,
//! takes the edge past its settings to the GPIO it needs (this machine has none).

use std::path::{Path, PathBuf};
use std::process::Command;

use vigie_system_tests::checked;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Builds the .deb into `dir` from target/debug (as `make test` built it); its path.
fn build_deb(dir: &Path) -> PathBuf {
    let out = checked(
        Command::new("cargo")
            .args([
                "deb",
                "-p",
                "vigie-edge",
                "--no-build",
                "--profile",
                "dev",
                "-o",
            ])
            .arg(dir)
            .current_dir(workspace()),
        "cargo deb (cargo-deb: make test installs it)",
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    let deb = PathBuf::from(printed.trim().lines().last().unwrap());
    assert!(deb.exists(), "{printed}");
    deb
}

#[test]
fn the_edge_deb_is_lintian_clean_and_holds_what_a_pi_runs() {
    let dir = tempfile::tempdir().unwrap();
    let deb = build_deb(dir.path());
    let name = deb.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("vigie-edge_") && name.ends_with("_amd64.deb"),
        "{name}"
    );

    // lintian: nothing at any level, overrides aside.
    vigie_system_tests::assert_lintian_clean(&deb);
    // Every override carries its reason, in the comment just above it.
    let overrides =
        std::fs::read_to_string(workspace().join("edge/debian/vigie-edge.lintian-overrides"))
            .unwrap();
    let mut commented = false;
    for line in overrides.lines() {
        if line.starts_with('#') {
            commented = true;
        } else if !line.trim().is_empty() {
            assert!(commented, "an override without its reason: {line}");
            commented = false;
        }
    }

    // Its files, and its one conffile.
    let listing = String::from_utf8_lossy(
        &checked(Command::new("dpkg-deb").arg("-c").arg(&deb), "dpkg-deb -c").stdout,
    )
    .into_owned();
    for path in [
        "./usr/bin/vigie-edge",
        "./etc/vigie/edge.toml",
        "./usr/lib/systemd/system/vigie-edge.service",
        "./usr/lib/sysusers.d/vigie-edge.conf",
        "./usr/lib/udev/rules.d/60-vigie-edge.rules",
        "./usr/share/doc/vigie-edge/copyright",
    ] {
        assert!(listing.contains(path), "{path} in:\n{listing}");
    }
    let control = dir.path().join("control");
    checked(
        Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control),
        "dpkg-deb -e",
    );
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    assert_eq!(conffiles.trim(), "/etc/vigie/edge.toml");
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    assert!(
        postinst.contains("systemd-sysusers") && postinst.contains("deb-systemd-helper enable")
    );
    let root = dir.path().join("root");
    checked(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root),
        "dpkg-deb -x",
    );
    assert_eq!(
        std::fs::read_to_string(root.join("usr/lib/systemd/system/vigie-edge.service")).unwrap(),
        std::fs::read_to_string(workspace().join("edge/debian/vigie-edge.service")).unwrap(),
        "the committed unit, as it is"
    );
    let sysusers =
        std::fs::read_to_string(root.join("usr/lib/sysusers.d/vigie-edge.conf")).unwrap();
    assert!(
        sysusers.contains("u vigie") && sysusers.contains("m vigie gpio"),
        "{sysusers}"
    );

    // The conffile, with the site's values and the bundle's files given as site.env gives them.
    let site = dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    for (file, text) in [
        ("mqtt.password", "a-device-password\n"),
        ("api.token", "vgd_0123456789abcdef\n"),
    ] {
        std::fs::write(site.join(file), text).unwrap();
        std::fs::set_permissions(
            site.join(file),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
    }
    let ca = checked(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "1",
                "-subj",
                "/CN=vigie-test-ca",
            ])
            .current_dir(&site),
        "openssl",
    );
    drop(ca);
    let edge = root.join("usr/bin/vigie-edge");
    checked(
        Command::new(&edge)
            .args(["keygen", "--out"])
            .arg(site.join("outbox.key")),
        "vigie-edge keygen",
    );
    let out = Command::new(&edge)
        .args(["run", "--config"])
        .arg(root.join("etc/vigie/edge.toml"))
        .env("VIGIE_EDGE_DEVICE_ID", "pi-7")
        .env("VIGIE_EDGE_MQTT_URL", "mqtts://127.0.0.1:1")
        .env("VIGIE_EDGE_API_URL", "https://127.0.0.1:1")
        .env("VIGIE_EDGE_MQTT_PASSWORD_FILE", site.join("mqtt.password"))
        .env("VIGIE_EDGE_MQTT_CA_FILE", site.join("ca.pem"))
        .env("VIGIE_EDGE_TOKEN_FILE", site.join("api.token"))
        .env("VIGIE_EDGE_KEY_FILE", site.join("outbox.key"))
        .env("VIGIE_EDGE_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("sensor mat-1: GPIO is not available"),
        "past its settings, stopped at the GPIO this machine lacks: {stderr}"
    );
}
