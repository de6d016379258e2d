//! Password checks on a small fixed pool of threads, each reusing one argon2 memory block.
//!
//! An argon2id check of the default parameters needs 19 MiB. Run on tokio's blocking
//! threads (up to 512 of them), a flood of wrong logins allocated that much on many
//! threads at once, and the allocator kept it in per-thread pools: the process grew by
//! hundreds of MiB and never gave it back. Here [`POOL_THREADS`] threads do every check,
//! each with its own block that is reused, so memory stays bounded by
//! `POOL_THREADS × m` however many requests arrive; queued checks are bounded too, and a
//! check that finds its queue full is refused at once instead of waiting.
//!
//! Two queues: checks from addresses that never failed (`Lane::Clean`) are taken before
//! those from addresses that did (`Lane::Suspect`), so a correct login stays fast while a
//! flood of wrong ones waits its turn.
//!
//! It never decides who may log in (that is [`crate::auth`]): it answers "does this
//! password match this hash".

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// Threads that compute password hashes (two cores is the small appliance).
pub const POOL_THREADS: usize = 2;
/// Checks that may wait, per lane.
pub const CLEAN_QUEUE: usize = 64;
pub const SUSPECT_QUEUE: usize = 4;

/// The largest argon2 parameters accepted in `users.json`: beyond them a check would take
/// seconds or gigabytes (a file with m = 4 GiB hung start-up and every login).
pub const MAX_M_KIB: u32 = 256 * 1024;
pub const MAX_T: u32 = 16;
pub const MAX_P: u32 = 8;

/// Which queue a check waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// From an address (prefix) with no recent failure.
    Clean,
    /// From one that failed before.
    Suspect,
}

/// Reads and bounds the parameters of a PHC string.
pub fn bounded_params(hash: &str) -> Result<(PasswordHash<'_>, Params), String> {
    let h = PasswordHash::new(hash).map_err(|e| format!("not an argon2 PHC string: {e}"))?;
    if h.algorithm.as_str() != "argon2id"
        && h.algorithm.as_str() != "argon2i"
        && h.algorithm.as_str() != "argon2d"
    {
        return Err(format!("algorithm {} is not argon2", h.algorithm));
    }
    let p = Params::try_from(&h).map_err(|e| format!("argon2 parameters: {e}"))?;
    if p.m_cost() > MAX_M_KIB {
        return Err(format!(
            "argon2 memory m = {} KiB is above the limit of {MAX_M_KIB} KiB",
            p.m_cost()
        ));
    }
    if p.t_cost() > MAX_T {
        return Err(format!(
            "argon2 iterations t = {} is above the limit of {MAX_T}",
            p.t_cost()
        ));
    }
    if p.p_cost() > MAX_P {
        return Err(format!(
            "argon2 parallelism p = {} is above the limit of {MAX_P}",
            p.p_cost()
        ));
    }
    Ok((h, p))
}

/// Checks `password` against `hash`, computing in `blocks` (grown when too small).
pub fn verify_with(blocks: &mut Vec<Block>, hash: &str, password: &[u8]) -> bool {
    let Ok((h, params)) = bounded_params(hash) else {
        return false;
    };
    let (Some(salt), Some(want)) = (h.salt, h.hash) else {
        return false;
    };
    let Ok(alg) = Algorithm::try_from(h.algorithm) else {
        return false;
    };
    let version = h
        .version
        .map_or(Ok(Version::default()), Version::try_from)
        .unwrap_or(Version::V0x13);
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let need = params.block_count();
    if blocks.len() < need {
        blocks.resize(need, Block::default());
    }
    let mut out = vec![0u8; want.len()];
    let a = Argon2::new(alg, version, params);
    if a.hash_password_into_with_memory(password, salt, &mut out, &mut blocks[..need])
        .is_err()
    {
        return false;
    }
    // Constant time: every byte is compared.
    out.iter()
        .zip(want.as_bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

type Reply = tokio::sync::oneshot::Sender<bool>;

struct Job {
    hash: String,
    password: String,
    reply: Reply,
}

#[derive(Default)]
struct Queues {
    clean: VecDeque<Job>,
    suspect: VecDeque<Job>,
}

/// The pool (see the module's text).
pub struct Pool {
    queues: Arc<(Mutex<Queues>, Condvar)>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

impl Default for Pool {
    fn default() -> Self {
        Self::new(POOL_THREADS)
    }
}

impl Pool {
    /// Starts `threads` threads; they end when the pool is dropped.
    pub fn new(threads: usize) -> Self {
        let queues: Arc<(Mutex<Queues>, Condvar)> = Arc::default();
        for i in 0..threads.max(1) {
            let q = Arc::downgrade(&queues);
            let spawned = std::thread::Builder::new()
                .name(format!("wc-passwd{i}"))
                .spawn(move || work(&q));
            if let Err(e) = spawned {
                tracing::error!("cannot start a password thread: {e}");
            }
        }
        Self { queues }
    }

    /// Does `password` match `hash`? `None` when the lane's queue is full (refused at once).
    pub async fn verify(&self, lane: Lane, hash: String, password: String) -> Option<bool> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let mut q = self.queues.0.lock().unwrap_or_else(|e| e.into_inner());
            let (queue, cap) = match lane {
                Lane::Clean => (&mut q.clean, CLEAN_QUEUE),
                Lane::Suspect => (&mut q.suspect, SUSPECT_QUEUE),
            };
            if queue.len() >= cap {
                return None;
            }
            queue.push_back(Job {
                hash,
                password,
                reply: tx,
            });
        }
        self.queues.1.notify_one();
        rx.await.ok()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // The threads hold only weak references: wake them to see it gone.
        self.queues.1.notify_all();
    }
}

fn work(queues: &std::sync::Weak<(Mutex<Queues>, Condvar)>) {
    let mut blocks: Vec<Block> = Vec::new();
    loop {
        let Some(q) = queues.upgrade() else { return };
        let job = {
            let mut g = q.0.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(j) = g.clean.pop_front().or_else(|| g.suspect.pop_front()) {
                    break j;
                }
                // Woken by a new job or by the pool's end (checked on the next turn).
                let (next, _) =
                    q.1.wait_timeout(g, std::time::Duration::from_secs(1))
                        .unwrap_or_else(|e| e.into_inner());
                g = next;
                if Arc::strong_count(&q) == 1 {
                    return;
                }
            }
        };
        drop(q);
        // A caller that went away (its connection closed) costs no hash.
        if job.reply.is_closed() {
            continue;
        }
        let ok = verify_with(&mut blocks, &job.hash, job.password.as_bytes());
        let _ = job.reply.send(ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checks_on_the_pool_match_argon2() {
        let hash = crate::auth::hash_password("correct horse").unwrap();
        let pool = Pool::new(1);
        assert_eq!(
            pool.verify(Lane::Clean, hash.clone(), "correct horse".into())
                .await,
            Some(true)
        );
        assert_eq!(
            pool.verify(Lane::Suspect, hash, "wrong".into()).await,
            Some(false)
        );
    }

    #[test]
    fn absurd_parameters_are_refused_without_hashing() {
        // m = 4 GiB: checking it would allocate 4 GiB.
        let h = "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY";
        let e = bounded_params(h).unwrap_err();
        assert!(e.contains("m = 4194304 KiB"), "{e}");
        let t = std::time::Instant::now();
        assert!(!verify_with(&mut Vec::new(), h, b"x"));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }
}
