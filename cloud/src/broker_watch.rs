//! `vigie-cloud broker-config --watch`: keeps Mosquitto's devices password file current, for a
//! sidecar beside the broker (the chart's). Every `every` it reads the device list; when a device
//! was added, rotated or revoked it writes the file again (atomically) and sends SIGHUP to the
//! broker, found by its pid file or by its process name (`/proc/*/comm`, with the pod's process
//! namespace shared), so a change reaches the broker within one period.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::broker_files::{password_file, write_file, DEVICES_PASSWD};
use crate::store::Store;

/// Whom to tell that the files changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// Nobody (the broker is reloaded some other way).
    Nobody,
    /// The process whose pid this file holds.
    PidFile(PathBuf),
    /// Every process of this name (`/proc/PID/comm`).
    Process(String),
}

/// The pids of the processes named `name` under `proc_dir` (`/proc`).
pub fn pids_named(proc_dir: &Path, name: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir(proc_dir) else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(proc_dir.join(pid.to_string()).join("comm"))
                .is_ok_and(|comm| comm.trim_end() == name)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// Sends SIGHUP as `reload` says; how many processes got it.
pub fn reload(reload: &Reload) -> Result<usize, String> {
    let pids = match reload {
        Reload::Nobody => return Ok(0),
        Reload::PidFile(file) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read the pid file {}: {e}", file.display()))?;
            let pid: i32 = text
                .trim()
                .parse()
                .map_err(|_| format!("{}: {:?} is not a pid", file.display(), text.trim()))?;
            vec![pid]
        }
        Reload::Process(name) => pids_named(Path::new("/proc"), name),
    };
    if pids.is_empty() {
        return Err(format!("no process to reload ({reload:?})"));
    }
    for &pid in &pids {
        // SAFETY: kill(2) with a pid read above and a constant signal; no memory is shared.
        if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
            return Err(format!(
                "cannot signal {pid}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(pids.len())
}

/// Rewrites `out/devices.passwd` and reloads the broker whenever the device list changes, from
/// `written` (the list the file holds now); never returns. A failure (the database away, the
/// broker restarting) is logged and tried again at the next period.
pub fn watch(
    store: &Store,
    out: &Path,
    every: Duration,
    reload_how: &Reload,
    mut written: Vec<(String, String)>,
) -> ! {
    let mut reload_owed = false;
    loop {
        std::thread::sleep(every);
        match store.mqtt_credentials() {
            Ok(entries) if entries != written => {
                match write_file(out, DEVICES_PASSWD, &password_file(&entries), 0o640) {
                    Ok(path) => {
                        tracing::info!(devices = entries.len(), file = %path.display(),
                            "device list changed: password file written");
                        written = entries;
                        reload_owed = true;
                    }
                    Err(e) => tracing::error!(error = %e, "cannot write the password file"),
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the device list; trying again"),
        }
        if reload_owed {
            match reload(reload_how) {
                Ok(n) => {
                    tracing::info!(processes = n, "broker told to reload (SIGHUP)");
                    reload_owed = false;
                }
                Err(e) => tracing::warn!(error = %e, "cannot reload the broker; trying again"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_are_found_by_their_comm_name() {
        let proc_dir = tempfile::tempdir().unwrap();
        for (pid, comm) in [
            ("12", "mosquitto\n"),
            ("7", "vigie-cloud\n"),
            ("30", "mosquitto\n"),
        ] {
            std::fs::create_dir(proc_dir.path().join(pid)).unwrap();
            std::fs::write(proc_dir.path().join(pid).join("comm"), comm).unwrap();
        }
        std::fs::create_dir(proc_dir.path().join("self")).unwrap();
        assert_eq!(pids_named(proc_dir.path(), "mosquitto"), [12, 30]);
        assert!(pids_named(proc_dir.path(), "mosq").is_empty());
    }

    #[test]
    fn a_pid_file_that_holds_no_pid_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mosquitto.pid");
        std::fs::write(&file, "not a pid\n").unwrap();
        let err = reload(&Reload::PidFile(file)).unwrap_err();
        assert!(
            err.contains("mosquitto.pid") && err.contains("not a pid"),
            "{err}"
        );
        assert_eq!(reload(&Reload::Nobody), Ok(0));
    }
}
