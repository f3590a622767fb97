//! The media uploader: its own thread, so clips never hold back events (which go over MQTT and the
//! bulk drain on their own connections). It takes the media outbox's entries not yet in the cloud,
//! snapshots first (small, and what a person looks at first), then clips, oldest first; each is
//! announced (`PUT`), then sent in chunks from where the cloud stands (`GET`/409 tell it), and marked
//! uploaded only when the cloud has checked the whole file's size and SHA-256. After each pass it
//! applies local retention. Failures back off (capped, jittered); a wake-up comes with each new
//! clip or snapshot.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ::actors::{Backoff, SharedClock};
use protocol::media::UploadStatus;
use uuid::Uuid;

use super::retention::{self, RetentionPolicy};
use super::spool::{QueueEntry, Spool};
use crate::api::{ApiClient, UploadError};

/// How often the queue is looked at when nothing wakes the uploader.
const IDLE_PASS: Duration = Duration::from_secs(30);

/// How long media the cloud refused waits before it is offered again (a fixed cloud, a restored
/// device): never a tight loop, never given up on while it is on the Pi.
const REFUSED_RETRY: Duration = Duration::from_secs(600);

/// Counts shared with the status and the tests.
#[derive(Debug, Default)]
pub struct MediaCounters {
    /// Clips and snapshots confirmed by the cloud since start.
    pub uploaded: AtomicU64,
    /// Not-yet-uploaded media deleted by the retention bounds since start (lost).
    pub dropped_unsent: AtomicU64,
    /// Entries not yet in the cloud, after the last pass.
    pub pending: AtomicU64,
}

/// The uploader's settings.
pub struct UploaderSetup {
    /// `None`: no API configured; only retention runs.
    pub client: Option<ApiClient>,
    pub spool: Spool,
    pub retention: RetentionPolicy,
    pub chunk_bytes: usize,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub clock: SharedClock,
    pub counters: Arc<MediaCounters>,
}

/// Wakes and stops the uploader thread.
#[derive(Clone)]
pub struct UploaderHandle {
    wake: Sender<()>,
    stop: Arc<AtomicBool>,
}

impl UploaderHandle {
    /// New media is in the queue.
    pub fn wake(&self) {
        let _ = self.wake.send(());
    }

    /// Asks the thread to stop after the current request.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.send(());
    }
}

/// Starts the uploader thread.
pub fn spawn(setup: UploaderSetup) -> std::io::Result<(UploaderHandle, JoinHandle<()>)> {
    let (wake, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = UploaderHandle {
        wake,
        stop: stop.clone(),
    };
    let span = tracing::Span::current();
    let thread = std::thread::Builder::new()
        .name("media-uploader".into())
        .spawn(move || {
            let _entered = span.enter();
            Uploader { setup, stop }.run(rx)
        })?;
    Ok((handle, thread))
}

/// How one upload ended.
enum Outcome {
    Done,
    /// Try again later (the API did not answer, or refused for now).
    Later(String),
    /// The cloud refuses this entry as it is; offer it again only after `REFUSED_RETRY`.
    Refused(String),
}

struct Uploader {
    setup: UploaderSetup,
    stop: Arc<AtomicBool>,
}

impl Uploader {
    fn run(self, rx: Receiver<()>) {
        let mut backoff = Backoff::new(self.setup.retry_base, self.setup.retry_max);
        let mut refused: std::collections::HashMap<Uuid, std::time::Instant> = Default::default();
        while !self.stop.load(Ordering::SeqCst) {
            self.apply_retention();
            let wait = match self.pass(&mut refused) {
                Ok(()) => {
                    backoff.reset();
                    IDLE_PASS
                }
                Err(reason) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(%reason, retry_in_ms = delay.as_millis() as u64,
                        attempts = backoff.attempts(), "media upload paused");
                    delay
                }
            };
            match rx.recv_timeout(wait) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while rx.try_recv().is_ok() {}
        }
    }

    /// Uploads every pending entry; stops at the first one that must wait.
    fn pass(
        &self,
        refused: &mut std::collections::HashMap<Uuid, std::time::Instant>,
    ) -> Result<(), String> {
        let entries = self.setup.spool.entries().map_err(|e| e.to_string())?;
        let mut pending: Vec<QueueEntry> = entries.into_iter().filter(|e| !e.uploaded).collect();
        self.setup
            .counters
            .pending
            .store(pending.len() as u64, Ordering::Relaxed);
        let Some(client) = &self.setup.client else {
            return Ok(());
        };
        pending.sort_by_key(|e| (e.is_clip(), e.queued_at));
        for entry in pending {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            if refused
                .get(&entry.id())
                .is_some_and(|at| at.elapsed() < REFUSED_RETRY)
            {
                continue;
            }
            match self.upload(client, &entry) {
                Outcome::Done => {
                    self.setup
                        .spool
                        .mark_uploaded(entry.id())
                        .map_err(|e| e.to_string())?;
                    // Pending first: whoever sees the upload counted sees it no longer pending.
                    let _ = self.setup.counters.pending.fetch_update(
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                        |n| Some(n.saturating_sub(1)),
                    );
                    self.setup.counters.uploaded.fetch_add(1, Ordering::SeqCst);
                    tracing::info!(media_id = %entry.id(), kind = entry.manifest.kind(),
                        size = entry.size(), "media uploaded");
                }
                Outcome::Later(reason) => return Err(reason),
                Outcome::Refused(reason) => {
                    tracing::error!(media_id = %entry.id(), kind = entry.manifest.kind(), %reason,
                        retry_in_s = REFUSED_RETRY.as_secs(),
                        "the cloud refuses this media; kept on the Pi and offered again later");
                    refused.insert(entry.id(), std::time::Instant::now());
                }
            }
        }
        Ok(())
    }

    /// Announces `entry` and sends its file from where the cloud stands.
    fn upload(&self, client: &ApiClient, entry: &QueueEntry) -> Outcome {
        let mut status = match client.put_manifest(&entry.manifest) {
            Ok(status) => status,
            Err(e) => return classify(e),
        };
        let path = self.setup.spool.path(&entry.file);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) => return Outcome::Refused(format!("cannot open {}: {e}", path.display())),
        };
        let mut buf = vec![0u8; self.setup.chunk_bytes];
        let mut integrity_failures = 0;
        while !status.complete {
            if self.stop.load(Ordering::SeqCst) {
                return Outcome::Later("stopping".into());
            }
            match self.send_chunk(client, entry.id(), &mut file, &mut buf, &status) {
                Ok(next) => status = next,
                Err(UploadError::Offset(at)) => status = at,
                Err(UploadError::Integrity(reason)) => {
                    integrity_failures += 1;
                    if integrity_failures > 1 {
                        return Outcome::Refused(format!("sent twice, refused twice: {reason}"));
                    }
                    tracing::warn!(media_id = %entry.id(), %reason, "the cloud refused the file's hash; sending it again from the start");
                    status = UploadStatus {
                        received: 0,
                        ..status
                    };
                }
                Err(e) => return classify(e),
            }
        }
        Outcome::Done
    }

    fn send_chunk(
        &self,
        client: &ApiClient,
        id: Uuid,
        file: &mut File,
        buf: &mut [u8],
        status: &UploadStatus,
    ) -> Result<UploadStatus, UploadError> {
        let read = file
            .seek(SeekFrom::Start(status.received))
            .and_then(|_| read_up_to(file, buf))
            .map_err(|e| UploadError::Failed {
                status: 0,
                message: format!("reading the file: {e}"),
            })?;
        if read == 0 && status.received == status.size {
            // The cloud has every byte but did not finish (it stopped after the last chunk): an
            // empty chunk at the end asks it to check and store the file.
            return client.patch_chunk(id, status.received, &[]);
        }
        if read == 0 {
            return Err(UploadError::Failed {
                status: 0,
                message: format!(
                    "the file ends at {} but the cloud expects {} bytes",
                    status.received, status.size
                ),
            });
        }
        client.patch_chunk(id, status.received, &buf[..read])
    }

    fn apply_retention(&self) {
        let spool = &self.setup.spool;
        let entries = match spool.entries() {
            Ok(entries) => entries,
            Err(e) => {
                tracing::error!(error = %e, "media retention: cannot list the queue");
                return;
            }
        };
        let now = self.setup.clock.now();
        for deletion in retention::plan(&entries, self.setup.retention, now) {
            let Some(entry) = entries.iter().find(|e| e.id() == deletion.id) else {
                continue;
            };
            if let Err(e) = spool.remove(entry) {
                tracing::error!(error = %e, media_id = %entry.id(), "media retention: delete failed");
                continue;
            }
            if deletion.uploaded {
                tracing::debug!(media_id = %entry.id(), reason = ?deletion.reason, "media retention: deleted a local copy already in the cloud");
            } else {
                self.setup
                    .counters
                    .dropped_unsent
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(media_id = %entry.id(), kind = entry.manifest.kind(), reason = ?deletion.reason,
                    "media retention: deleted media that never reached the cloud (LOST)");
            }
        }
    }
}

fn classify(e: UploadError) -> Outcome {
    match e {
        UploadError::Conflict(reason) => Outcome::Refused(reason),
        // A request the cloud will refuse again as it is (bad manifest, too large, gone).
        UploadError::Failed { status, message } if matches!(status, 400 | 404 | 410 | 413) => {
            Outcome::Refused(format!("HTTP {status}: {message}"))
        }
        other => Outcome::Later(other.to_string()),
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
