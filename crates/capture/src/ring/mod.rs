//! An AF_PACKET socket with a TPACKET_V3 memory-mapped RX ring: the live capture source.
//!
//! The kernel fills fixed-size blocks with packets and hands a block over by setting
//! `TP_STATUS_USER` in its header (when the block is full, or when the retire timeout
//! expires on a partly filled one). [`RingSource::poll`] walks the ready blocks in order
//! with [`block::BlockIter`] — no system call and no allocation per packet — and gives each
//! block back by writing `TP_STATUS_KERNEL`; it calls `poll(2)` only when the next block is
//! not ready.
//!
//! Options: block size and count, retire timeout, a capture filter (a classic BPF program
//! attached with `SO_ATTACH_FILTER`, so packets it rejects are never copied into the
//! ring), snaplen (the filter's accepting returns cut to it, or the one-instruction
//! program `ret #snaplen`, so the kernel copies no more; `tp_len` keeps the wire length),
//! promiscuous mode
//! (`PACKET_ADD_MEMBERSHIP`/`PACKET_MR_PROMISC`, undone by the kernel when the socket
//! closes), `PACKET_FANOUT` (hash or cpu) across several sockets, hardware timestamps
//! (`SIOCSHWTSTAMP` + `PACKET_TIMESTAMP`/`SOF_TIMESTAMPING_RAW_HARDWARE`, falling back to the
//! kernel's software nanosecond timestamps when the NIC has none — a hardware clock is only
//! wall-clock time if something like `phc2sys` keeps it so), and opening the socket inside
//! another network namespace (`netns`, a path such as `/run/netns/NAME`).
//!
//! This is the only module of the crate with `unsafe`; every block says why it is sound.

pub mod block;
pub mod sys;

use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::source::{LINKTYPE_ETHERNET, Polled, Source, SourceStats};
use block::{BLOCK_STATUS_OFFSET, BlockIter};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use sys::{Mmap, check, setsockopt};

/// How PACKET_FANOUT spreads packets over the sockets of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanoutMode {
    /// By flow hash: a flow stays on one socket (`PACKET_FANOUT_HASH`, with defrag).
    Hash,
    /// By the CPU that received the packet (`PACKET_FANOUT_CPU`).
    Cpu,
}

/// Which timestamps to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamps {
    /// Hardware timestamps if the NIC can, else software.
    PreferHardware,
    /// Software (kernel receive time) only.
    Software,
}

/// One classic BPF instruction as the kernel takes it (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockInsn {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Constant operand.
    pub k: u32,
}

/// A capture filter: the program attached to the socket and the expression it was
/// compiled from (kept with the stream and shown in the status). This crate never
/// compiles expressions; `wirecap-filter` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketFilter {
    /// The expression, as the operator wrote it.
    pub expr: String,
    /// The compiled program; its accepting returns are cut to the snaplen at attach time.
    pub program: Vec<SockInsn>,
}

/// The most instructions the kernel accepts in a classic BPF program (`BPF_MAXINSNS`).
pub const MAX_FILTER_INSNS: usize = 4096;

/// The largest snaplen; at it no program is attached for slicing.
pub const MAX_SNAPLEN: u32 = 262_144;

const BPF_RET_K: u16 = 0x06;
const BPF_RET_A: u16 = 0x16;

/// The program to attach for `filter` and `snaplen`, `None` when nothing needs attaching.
/// Each accepting `ret #k` becomes `ret #min(k, snaplen)`: the kernel copies what the
/// filter returns, so the filter and the slicing are one program and one pass.
pub fn socket_program(
    filter: Option<&SocketFilter>,
    snaplen: u32,
) -> std::result::Result<Option<Vec<SockInsn>>, String> {
    let Some(f) = filter else {
        return Ok((snaplen < MAX_SNAPLEN).then(|| {
            vec![SockInsn {
                code: BPF_RET_K,
                jt: 0,
                jf: 0,
                k: snaplen,
            }]
        }));
    };
    if f.program.is_empty() || f.program.len() > MAX_FILTER_INSNS {
        return Err(format!(
            "capture filter {:?} compiles to {} instructions; the kernel takes 1 to {MAX_FILTER_INSNS}",
            f.expr,
            f.program.len()
        ));
    }
    f.program
        .iter()
        .map(|i| match i.code {
            BPF_RET_K => Ok(SockInsn {
                k: i.k.min(snaplen),
                ..*i
            }),
            // A return of the accumulator cannot be cut to the snaplen here.
            BPF_RET_A => Err(format!(
                "capture filter {:?}: a program returning A cannot be sliced to the snaplen",
                f.expr
            )),
            _ => Ok(*i),
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map(Some)
}

/// Default ring block size: 1 MiB (about 650 full-size frames).
pub const DEFAULT_BLOCK_SIZE: u32 = 1 << 20;
/// Default number of ring blocks. The ring only has to cover the moments the capture
/// thread is not scheduled (it never waits for the disk: the writer queue does that), and
/// every byte of it is allocated and zeroed by the kernel when the socket opens — 256 MiB
/// cost 0.4 CPU-s here, 32 MiB 0.01–0.05. 32 MiB hold 150 ms of 1500-byte frames at the
/// ~210 MB/s a veth carries on the 2-core test box (no kernel drop measured even at 16 MiB);
/// raise it for 10G+ links (`--blocks`).
pub const DEFAULT_BLOCK_COUNT: u32 = 32;

/// Ring settings.
#[derive(Debug, Clone)]
pub struct RingConfig {
    /// Interface name.
    pub interface: String,
    /// Bytes per block (a multiple of the page size).
    pub block_size: u32,
    /// Blocks in the ring.
    pub block_count: u32,
    /// Milliseconds after which the kernel hands over a partly filled block.
    pub retire_timeout_ms: u32,
    /// Largest number of bytes kept per packet.
    pub snaplen: u32,
    /// The capture filter attached to the socket, if any.
    pub filter: Option<SocketFilter>,
    /// Put the interface in promiscuous mode while the socket is open.
    pub promiscuous: bool,
    /// Timestamp source.
    pub timestamps: Timestamps,
    /// Fanout mode when more than one socket is opened.
    pub fanout: FanoutMode,
    /// Open the socket in this network namespace (e.g. `/run/netns/NAME`).
    pub netns: Option<PathBuf>,
    /// Ignore packets this host sends (`PACKET_IGNORE_OUTGOING`); off: a capture on an
    /// interface records both directions.
    pub ignore_outgoing: bool,
}

impl RingConfig {
    /// Defaults for `interface`: [`DEFAULT_BLOCK_COUNT`] blocks of [`DEFAULT_BLOCK_SIZE`],
    /// 100 ms retire timeout, snaplen 262144, promiscuous, hardware timestamps if available.
    pub fn new(interface: impl Into<String>) -> Self {
        Self {
            interface: interface.into(),
            block_size: DEFAULT_BLOCK_SIZE,
            block_count: DEFAULT_BLOCK_COUNT,
            retire_timeout_ms: 100,
            snaplen: MAX_SNAPLEN,
            filter: None,
            promiscuous: true,
            timestamps: Timestamps::PreferHardware,
            fanout: FanoutMode::Hash,
            netns: None,
            ignore_outgoing: false,
        }
    }

    fn check(&self) -> Result<()> {
        let page = 4096;
        if self.block_size < page || !self.block_size.is_multiple_of(page) {
            return Err(Error::Config(format!(
                "block size {} is not a multiple of {page}",
                self.block_size
            )));
        }
        if self.block_count == 0
            || u64::from(self.block_size) * u64::from(self.block_count) > 1 << 36
        {
            return Err(Error::Config(
                "block count must be ≥ 1 and the ring ≤ 64 GiB".into(),
            ));
        }
        if self.snaplen < 64 {
            return Err(Error::Config(format!(
                "snaplen {} is below 64",
                self.snaplen
            )));
        }
        if self.snaplen > MAX_SNAPLEN {
            return Err(Error::Config(format!(
                "snaplen {} is above {MAX_SNAPLEN}",
                self.snaplen
            )));
        }
        socket_program(self.filter.as_ref(), self.snaplen).map_err(Error::Config)?;
        if self.interface.is_empty() || self.interface.len() >= libc::IFNAMSIZ {
            return Err(Error::NoSuchInterface(self.interface.clone()));
        }
        Ok(())
    }
}

fn os_err<'a>(op: &'static str, interface: &'a str) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Socket(sys::SocketError::at(op, interface)(source))
}

/// Creates the socket (protocol 0: nothing is queued before the ring exists) and resolves
/// the interface index, inside `netns` when given (on a helper thread, so the caller's
/// namespace is untouched).
fn socket_and_index(cfg: &RingConfig) -> Result<(OwnedFd, i32)> {
    let name = cfg.interface.clone();
    let open = move || -> Result<(OwnedFd, i32)> {
        let fd = sys::packet_socket(0).map_err(os_err("socket(AF_PACKET)", &name))?;
        let idx = sys::if_index(&name).ok_or_else(|| Error::NoSuchInterface(name.clone()))?;
        Ok((fd, idx))
    };
    let Some(ns) = cfg.netns.clone() else {
        return open();
    };
    let iface = cfg.interface.clone();
    std::thread::spawn(move || -> Result<(OwnedFd, i32)> {
        let f = std::fs::File::open(&ns)
            .map_err(|e| Error::io(format!("open netns {}", ns.display()), e))?;
        // SAFETY: setns on this helper thread only (CLONE_NEWNET is per thread); `f` is an
        // open namespace file for the duration of the call.
        check(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) })
            .map_err(os_err("setns", &iface))?;
        open()
    })
    .join()
    .map_err(|_| Error::Thread("netns helper panicked".into()))?
}

/// Enables hardware RX timestamps on the NIC; false when it has none (veth, most VMs).
fn enable_hw_timestamps(fd: RawFd, interface: &str) -> bool {
    let mut cfg = libc::hwtstamp_config {
        flags: 0,
        tx_type: 0,
        rx_filter: libc::HWTSTAMP_FILTER_ALL as libc::c_int,
    };
    let mut ifr = sys::ifreq(interface);
    ifr.ifr_ifru.ifru_data = (&mut cfg as *mut libc::hwtstamp_config).cast();
    // SAFETY: SIOCSHWTSTAMP reads and writes the hwtstamp_config `ifr` points at, which
    // lives on this stack frame for the whole call.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCSHWTSTAMP as _, &mut ifr) };
    rc == 0
}

/// One TPACKET_V3 ring on one socket.
pub struct RingSource {
    // Field order matters: the mapping is unmapped before the socket closes.
    map: Mmap,
    fd: OwnedFd,
    config: RingConfig,
    describe: String,
    block_size: usize,
    block_count: usize,
    current: usize,
    scratch: Vec<u8>,
    hw_timestamps: bool,
    stats: SourceStats,
}

impl std::fmt::Debug for RingSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingSource")
            .field("interface", &self.config.interface)
            .field("blocks", &self.block_count)
            .field("block_size", &self.block_size)
            .finish_non_exhaustive()
    }
}

impl RingSource {
    /// Opens one socket with its ring on `config.interface`.
    pub fn open(config: &RingConfig) -> Result<Self> {
        Self::open_member(config, None)
    }

    /// Opens `threads` sockets in one PACKET_FANOUT group (one socket if `threads <= 1`).
    pub fn open_fanout(config: &RingConfig, threads: usize) -> Result<Vec<Self>> {
        if threads <= 1 {
            return Ok(vec![Self::open(config)?]);
        }
        // A group id unique enough within the process and host.
        let id = (std::process::id() as u16) ^ (crate::frame::now_ns() as u16).rotate_left(7);
        (0..threads)
            .map(|_| Self::open_member(config, Some(id)))
            .collect()
    }

    fn open_member(config: &RingConfig, fanout_id: Option<u16>) -> Result<Self> {
        config.check()?;
        let ifname = config.interface.as_str();
        let (fd, ifindex) = socket_and_index(config)?;
        let raw = fd.as_raw_fd();
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        setsockopt(raw, libc::SOL_PACKET, libc::PACKET_VERSION, &version)
            .map_err(os_err("setsockopt(PACKET_VERSION)", ifname))?;
        let hw =
            config.timestamps == Timestamps::PreferHardware && enable_hw_timestamps(raw, ifname);
        if hw {
            let req = libc::SOF_TIMESTAMPING_RAW_HARDWARE as libc::c_int;
            setsockopt(raw, libc::SOL_PACKET, libc::PACKET_TIMESTAMP, &req)
                .map_err(os_err("setsockopt(PACKET_TIMESTAMP)", ifname))?;
        }
        // Before the bind: the socket queues nothing until then, so no packet escapes the
        // filter or the slicing.
        if let Some(program) =
            socket_program(config.filter.as_ref(), config.snaplen).map_err(Error::Config)?
        {
            let prog: Vec<libc::sock_filter> = program
                .iter()
                .map(|i| libc::sock_filter {
                    code: i.code,
                    jt: i.jt,
                    jf: i.jf,
                    k: i.k,
                })
                .collect();
            let fprog = libc::sock_fprog {
                len: prog.len() as u16,
                filter: prog.as_ptr().cast_mut(),
            };
            setsockopt(raw, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
                .map_err(os_err("setsockopt(SO_ATTACH_FILTER)", ifname))?;
        }
        sys::set_rx_ring_v3(
            raw,
            config.block_size,
            config.block_count,
            config.retire_timeout_ms,
        )
        .map_err(os_err("setsockopt(PACKET_RX_RING)", ifname))?;
        let len = config.block_size as usize * config.block_count as usize;
        let map = Mmap::ring(raw, len).map_err(os_err("mmap(ring)", ifname))?;
        sys::bind_packet(raw, ifindex, libc::ETH_P_ALL as u16).map_err(os_err("bind", ifname))?;
        if config.promiscuous {
            sys::add_membership(raw, ifindex, libc::PACKET_MR_PROMISC)
                .map_err(os_err("setsockopt(PACKET_ADD_MEMBERSHIP)", ifname))?;
        }
        if config.ignore_outgoing {
            let one: libc::c_int = 1;
            setsockopt(raw, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one)
                .map_err(os_err("setsockopt(PACKET_IGNORE_OUTGOING)", ifname))?;
        }
        if let Some(id) = fanout_id {
            let mode = match config.fanout {
                FanoutMode::Hash => libc::PACKET_FANOUT_HASH | libc::PACKET_FANOUT_FLAG_DEFRAG,
                FanoutMode::Cpu => libc::PACKET_FANOUT_CPU,
            };
            let arg: libc::c_int = (id as libc::c_int) | ((mode as libc::c_int) << 16);
            setsockopt(raw, libc::SOL_PACKET, libc::PACKET_FANOUT, &arg)
                .map_err(os_err("setsockopt(PACKET_FANOUT)", ifname))?;
        }
        Ok(Self {
            map,
            fd,
            describe: match &config.netns {
                None => format!("capture:{ifname}"),
                Some(ns) => format!("capture:{ifname}@{}", ns.display()),
            },
            block_size: config.block_size as usize,
            block_count: config.block_count as usize,
            current: 0,
            scratch: Vec::with_capacity(config.snaplen as usize + block::VLAN_TAG_LEN),
            hw_timestamps: hw,
            stats: SourceStats::default(),
            config: config.clone(),
        })
    }

    /// Whether the NIC gives hardware timestamps.
    pub fn hardware_timestamps(&self) -> bool {
        self.hw_timestamps
    }

    fn status_word(&self, i: usize) -> &AtomicU32 {
        debug_assert!(i < self.block_count);
        self.map.status(i * self.block_size + BLOCK_STATUS_OFFSET)
    }

    fn block_ready(&self, i: usize) -> bool {
        self.status_word(i).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    fn wait(&self, timeout: Duration) -> Result<()> {
        let link_error = sys::poll_ring(self.fd.as_raw_fd(), timeout)
            .map_err(os_err("poll", &self.config.interface))?;
        // A downed link: wait out the timeout instead of spinning a core; the ring
        // resumes when the link comes back.
        if link_error && !self.block_ready(self.current) {
            std::thread::sleep(timeout.min(Duration::from_millis(100)));
        }
        Ok(())
    }

    /// Reads (and thereby resets) PACKET_STATISTICS, accumulating into `self.stats`.
    fn read_kernel_stats(&mut self) -> Result<()> {
        let st = sys::packet_stats(self.fd.as_raw_fd()).map_err(os_err(
            "getsockopt(PACKET_STATISTICS)",
            &self.config.interface,
        ))?;
        self.stats.kernel_packets += u64::from(st.tp_packets);
        self.stats.kernel_drops += u64::from(st.tp_drops);
        self.stats.freezes += u64::from(st.tp_freeze_q_cnt);
        Ok(())
    }
}

impl Source for RingSource {
    fn describe(&self) -> &str {
        &self.describe
    }
    fn link_type(&self) -> u32 {
        LINKTYPE_ETHERNET
    }
    fn snaplen(&self) -> u32 {
        self.config.snaplen
    }
    fn interface(&self) -> Option<&str> {
        Some(&self.config.interface)
    }

    fn poll(&mut self, timeout: Duration, on_frame: &mut dyn FnMut(&Frame<'_>)) -> Result<Polled> {
        if !self.block_ready(self.current) {
            self.wait(timeout)?;
            if !self.block_ready(self.current) {
                return Ok(Polled::Idle {
                    // A packet may still sit in the open block for up to the retire timeout.
                    quiet_before_ns: Some(crate::frame::now_ns().saturating_sub(
                        u64::from(self.config.retire_timeout_ms) * 2_000_000 + 50_000_000,
                    )),
                });
            }
        }
        let i = self.current;
        let start = i * self.block_size;
        // The block's status is TP_STATUS_USER (checked with Acquire above): the kernel does
        // not write it until TP_STATUS_KERNEL is stored below.
        let block = self.map.region(start, self.block_size);
        let mut n = 0u32;
        match BlockIter::new(block, self.config.snaplen, &mut self.scratch) {
            Ok(mut it) => {
                while let Some(r) = it.next() {
                    match r {
                        Ok(f) => {
                            on_frame(&f);
                            n += 1;
                        }
                        Err(_) => break,
                    }
                }
                self.stats.malformed += u64::from(it.num_pkts().saturating_sub(it.yielded()));
            }
            Err(_) => self.stats.malformed += 1,
        }
        self.status_word(i)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.current = (i + 1) % self.block_count;
        Ok(Polled::Packets(n))
    }

    fn stats(&mut self) -> Result<SourceStats> {
        self.read_kernel_stats()?;
        Ok(self.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(code: u16, k: u32) -> SockInsn {
        SockInsn {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }

    #[test]
    fn the_socket_program_is_the_filter_with_its_returns_cut_to_the_snaplen() {
        assert_eq!(socket_program(None, MAX_SNAPLEN), Ok(None));
        assert_eq!(
            socket_program(None, 96),
            Ok(Some(vec![insn(BPF_RET_K, 96)]))
        );
        // ldh [12]; jeq #0x800 → ret #262144 else ret #0
        let f = SocketFilter {
            expr: "ip".into(),
            program: vec![
                insn(0x28, 12),
                SockInsn {
                    code: 0x15,
                    jt: 0,
                    jf: 1,
                    k: 0x800,
                },
                insn(BPF_RET_K, 262_144),
                insn(BPF_RET_K, 0),
            ],
        };
        let p = socket_program(Some(&f), 128).unwrap().unwrap();
        assert_eq!(p[..2], f.program[..2]);
        assert_eq!(p[2], insn(BPF_RET_K, 128));
        assert_eq!(p[3], insn(BPF_RET_K, 0), "a rejecting return stays 0");
        let p = socket_program(Some(&f), MAX_SNAPLEN).unwrap().unwrap();
        assert_eq!(p, f.program);
        let ret_a = SocketFilter {
            expr: "odd".into(),
            program: vec![insn(BPF_RET_A, 0)],
        };
        assert!(
            socket_program(Some(&ret_a), 96)
                .unwrap_err()
                .contains("returning A")
        );
        let huge = SocketFilter {
            expr: "huge".into(),
            program: vec![insn(BPF_RET_K, 1); MAX_FILTER_INSNS + 1],
        };
        assert!(
            socket_program(Some(&huge), 96)
                .unwrap_err()
                .contains("4096")
        );
        let cfg = RingConfig {
            filter: Some(huge),
            ..RingConfig::new("eth0")
        };
        assert!(matches!(cfg.check(), Err(Error::Config(m)) if m.contains("4096")));
        let cfg = RingConfig {
            snaplen: MAX_SNAPLEN + 1,
            ..RingConfig::new("eth0")
        };
        assert!(cfg.check().is_err());
    }
}
