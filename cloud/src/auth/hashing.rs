//! Where password hashes run: a fixed pool of threads, one per core, each keeping its argon2
//! working memory (19 MiB at the standard cost) from one hash to the next.
//!
//! Why not the blocking pool: argon2 allocates its memory per hash, and glibc's malloc, once it has
//! raised its mmap threshold above that size, keeps the freed blocks in the thread's heap, so every
//! login grew the process by ~19 MiB (10 failed logins: +154 MiB of RSS, 40: +592 MiB, measured on
//! the binary). Here the memory is allocated once per thread and reused: at most `threads × m_cost`
//! whatever the flood. A semaphore in front keeps waiters on the async side (never more jobs in the
//! channel than threads).

use std::cell::RefCell;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use argon2::Block;
use tokio::sync::{oneshot, Semaphore};

type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    /// This hashing thread's argon2 memory, grown to the largest `m_cost` seen, then reused.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's argon2 memory (a hashing thread's, or a fresh one elsewhere).
pub fn with_memory<T>(f: impl FnOnce(&mut Vec<Block>) -> T) -> T {
    MEMORY.with(|m| match m.try_borrow_mut() {
        Ok(mut memory) => f(&mut memory),
        // Only if `f` itself hashed again on this thread: give it memory of its own.
        Err(_) => f(&mut Vec::new()),
    })
}

/// A password hash could not run (the pool is gone or the work panicked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashingError(pub String);

/// The hashing threads. Cheap to share (`Arc`); the threads end when the pool is dropped.
#[derive(Debug)]
pub struct HashPool {
    jobs: Mutex<mpsc::Sender<Job>>,
    permits: Semaphore,
    threads: usize,
}

impl HashPool {
    /// A pool of `threads` hashing threads (at least one).
    pub fn new(threads: usize) -> Arc<HashPool> {
        let threads = threads.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("vigie-hash-{n}"))
                .spawn(move || loop {
                    let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => break,
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Arc::new(HashPool {
            jobs: Mutex::new(tx),
            permits: Semaphore::new(threads),
            threads,
        })
    }

    /// How many hashes run at once.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `work` on a hashing thread once one is free; the caller waits asynchronously.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashingError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HashingError("the hashing pool is closed".into()))?;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(work());
        });
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job)
            .map_err(|_| HashingError("no hashing thread is running".into()))?;
        rx.await
            .map_err(|_| HashingError("the hash panicked".into()))
    }
}
