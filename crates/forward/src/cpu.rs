//! Where the forwarder runs: a CPU of its own, with every other thread of wirecap kept off
//! it.
//!
//! Measured with `bench/forward.sh`: when the capture's threads (and the writer, the HTTP
//! runtime, the archive's uploads) share the forwarder's CPU, the forwarder misses its RX
//! ring in bursts and the kernel drops there (40 k ring drops in a 5 s TCP run against
//! 10 k with the capture kept off that CPU). Forwarding is a one-thread busy loop whose
//! rate is that thread's rate, so it gets a CPU to itself, the way DPDK or netmap
//! forwarders are placed; everything else shares the rest. The CPU is chosen with
//! `[forward] cpu` / `--forward-cpu`: `auto` (the default: the last CPU wirecap may run
//! on, when it may run on at least two), `off`, or a CPU number.
//!
//! The placement is process-wide on purpose: the threads to keep off the CPU belong to
//! other crates and runtimes (the pipeline, tokio, the archive), and new threads inherit
//! their creator's mask, so moving the threads that exist when the forwarder starts keeps
//! later ones off too. When the forwarder stops, every thread gets the process's
//! original CPUs back.

use std::fmt;
use std::io;
use std::str::FromStr;

/// The forwarder's CPU as configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CpuChoice {
    /// The last CPU wirecap may run on, when it may run on at least two; else none.
    #[default]
    Auto,
    /// No placement: the scheduler decides (as before this existed).
    Off,
    /// This CPU.
    Cpu(usize),
}

impl FromStr for CpuChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "auto" => Ok(Self::Auto),
            "off" => Ok(Self::Off),
            n => n.parse().map(Self::Cpu).map_err(|_| {
                format!("forwarder CPU {s:?}: give auto, off or a CPU number such as 3")
            }),
        }
    }
}

impl fmt::Display for CpuChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Off => f.write_str("off"),
            Self::Cpu(n) => write!(f, "{n}"),
        }
    }
}

/// Which CPU `choice` means when the process may run on `allowed` (sorted): `Ok(None)`
/// for no placement, with the reason in words.
pub fn resolve(choice: CpuChoice, allowed: &[usize]) -> Result<Option<usize>, String> {
    match choice {
        CpuChoice::Off => Ok(None),
        CpuChoice::Auto if allowed.len() < 2 => Ok(None),
        CpuChoice::Auto => Ok(allowed.last().copied()),
        CpuChoice::Cpu(n) if allowed.contains(&n) && allowed.len() >= 2 => Ok(Some(n)),
        CpuChoice::Cpu(n) if allowed.contains(&n) => Err(format!(
            "forwarder CPU {n}: wirecap may run on that CPU only, and a dedicated CPU needs another for the rest (use auto or off)"
        )),
        CpuChoice::Cpu(n) => Err(format!(
            "forwarder CPU {n} is not one wirecap may run on (it may run on {})",
            list(allowed)
        )),
    }
}

/// `0-3,6` for `[0, 1, 2, 3, 6]`, as `taskset -c` and `/proc/*/status` write CPU lists.
pub fn list(cpus: &[usize]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    out.join(",")
}

/// The CPUs the process may run on (its main thread's mask).
pub fn allowed() -> io::Result<Vec<usize>> {
    get(std::process::id() as libc::pid_t)
}

/// The calling thread's CPU held for the forwarder; dropping it gives every thread of the
/// process its original CPUs back.
#[derive(Debug)]
pub struct Dedicated {
    cpu: usize,
    restore: Vec<usize>,
}

impl Dedicated {
    /// Pins the calling thread to `choice`'s CPU and moves every other thread of the
    /// process off it. `Ok(None)` when `choice` places nothing on this machine.
    pub fn claim(choice: CpuChoice) -> Result<Option<Self>, String> {
        let allowed = allowed().map_err(|e| format!("reading the CPUs wirecap may run on: {e}"))?;
        let Some(cpu) = resolve(choice, &allowed)? else {
            return Ok(None);
        };
        set(0, &[cpu]).map_err(|e| format!("pinning the forwarder to CPU {cpu}: {e}"))?;
        let others: Vec<usize> = allowed.iter().copied().filter(|c| *c != cpu).collect();
        // Twice: a thread spawned during the first pass by a thread not yet moved
        // inherited the whole mask.
        for _ in 0..2 {
            for_other_threads(|tid| set(tid, &others));
        }
        Ok(Some(Self {
            cpu,
            restore: allowed,
        }))
    }

    /// The CPU held.
    pub fn cpu(&self) -> usize {
        self.cpu
    }
}

impl Drop for Dedicated {
    fn drop(&mut self) {
        for_other_threads(|tid| set(tid, &self.restore));
    }
}

/// Runs `f` on every thread of the process but the caller; threads that end meanwhile
/// are skipped.
fn for_other_threads(f: impl Fn(libc::pid_t) -> io::Result<()>) {
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() };
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for t in tasks.flatten() {
        let Some(tid) = t.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if tid != me {
            // A thread that ended (ESRCH) or that may not be moved keeps its mask: the
            // placement is a speed matter, never a reason to fail forwarding.
            let _ = f(tid);
        }
    }
}

fn get(tid: libc::pid_t) -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data, zeroed is a valid empty set; the kernel writes at
    // most size_of::<cpu_set_t>() bytes into it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::sched_getaffinity(tid, size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: i < CPU_SETSIZE, within the set.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect())
}

fn set(tid: libc::pid_t, cpus: &[usize]) -> io::Result<()> {
    // SAFETY: as in `get`; CPU_SET is given indexes below CPU_SETSIZE only.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus.iter().filter(|c| **c < libc::CPU_SETSIZE as usize) {
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    let r = unsafe { libc::sched_setaffinity(tid, size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_and_print() {
        for s in ["auto", "off", "3"] {
            assert_eq!(s.parse::<CpuChoice>().unwrap().to_string(), s);
        }
        assert!(
            "three"
                .parse::<CpuChoice>()
                .unwrap_err()
                .contains("auto, off")
        );
        assert!("-1".parse::<CpuChoice>().is_err());
    }

    #[test]
    fn resolving_keeps_a_cpu_for_the_rest() {
        assert_eq!(resolve(CpuChoice::Auto, &[0, 1, 2, 3]), Ok(Some(3)));
        assert_eq!(resolve(CpuChoice::Auto, &[2, 5]), Ok(Some(5)));
        assert_eq!(resolve(CpuChoice::Auto, &[0]), Ok(None));
        assert_eq!(resolve(CpuChoice::Off, &[0, 1]), Ok(None));
        assert_eq!(resolve(CpuChoice::Cpu(0), &[0, 1]), Ok(Some(0)));
        assert!(
            resolve(CpuChoice::Cpu(0), &[0])
                .unwrap_err()
                .contains("only")
        );
        let e = resolve(CpuChoice::Cpu(9), &[0, 1, 2, 4]).unwrap_err();
        assert!(e.contains("0-2,4"), "{e}");
    }

    #[test]
    fn lists_are_written_as_taskset_writes_them() {
        assert_eq!(list(&[0, 1, 2, 3, 6]), "0-3,6");
        assert_eq!(list(&[1]), "1");
        assert_eq!(list(&[0, 2, 4, 5]), "0,2,4-5");
        assert_eq!(list(&[]), "");
    }

    #[test]
    fn a_claim_moves_the_other_threads_and_gives_them_back() {
        let all = allowed().unwrap();
        if all.len() < 2 {
            eprintln!("skipped: this process may run on one CPU only");
            return;
        }
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (ttx, trx) = std::sync::mpsc::channel();
        let other = std::thread::spawn(move || {
            ttx.send(unsafe { libc::gettid() }).unwrap();
            let _ = rx.recv();
        });
        let tid = trx.recv().unwrap();
        let claimer = std::thread::spawn(move || {
            let d = Dedicated::claim(CpuChoice::Auto).unwrap().unwrap();
            let cpu = d.cpu();
            let mine = get(0).unwrap();
            let theirs = get(tid).unwrap();
            drop(d);
            (cpu, mine, theirs, get(tid).unwrap())
        });
        let (cpu, mine, theirs, after) = claimer.join().unwrap();
        tx.send(()).unwrap();
        other.join().unwrap();
        assert_eq!(cpu, *all.last().unwrap());
        assert_eq!(mine, vec![cpu]);
        assert!(!theirs.contains(&cpu) && !theirs.is_empty(), "{theirs:?}");
        assert_eq!(after, all);
    }
}
