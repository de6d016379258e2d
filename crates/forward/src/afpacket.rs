//! The forwarder's I/O edge on Linux: one AF_PACKET socket with a TPACKET_V3 RX ring and
//! one with a TPACKET_V2 PACKET_TX_RING, both on the capture interface, and the thread
//! that runs [`Forwarder`] between them.
//!
//! Per ring block the thread walks the received packets in place (no copy, no system call,
//! no allocation per packet), writes each forwarded frame straight into a TX ring slot
//! (the one copy: the rewrite happens there), and after the block sends every queued
//! frame with one `sendto`. The TX socket bypasses the qdisc (`PACKET_QDISC_BYPASS`) and
//! drops frames the driver refuses instead of stalling the ring (`PACKET_LOSS`). The RX
//! socket ignores what this host sends (`PACKET_IGNORE_OUTGOING`), so the forwarder never
//! sees its own frames. The retire timeout of the RX ring is 1 ms: a lone ping waits at
//! most that long in a half-filled block.
//!
//! At start the thread turns off GRO, LRO and GSO on the interface (`SIOCETHTOOL`, as
//! `ethtool -K IF gro off lro off gso off` would) and logs what it changed, so the kernel
//! does not merge what it receives into super-packets. TCP super-packets still arrive (a
//! local sender's TSO over a veth): with `PACKET_VNET_HDR` the RX ring says so, and they
//! are sent on whole through a vnet-header socket for the NIC (TSO, left on) or the kernel
//! to segment; without that, the forwarder cuts them itself. Packets the kernel
//! hands over with a partial TCP/UDP checksum (`TP_STATUS_CSUMNOTREADY`: checksum offload
//! from a local sender over a veth) get their checksum completed before anything else.
//!
//! This is the crate's only `unsafe`; every block says why it is sound.

use crate::cpu::CpuChoice;
use crate::forwarder::{CaptureMode, Forwarder, ForwarderConfig, Gso, Received, Stats, Transmit};
use crate::neighbour::NeighbourConfig;
use crate::table::{ForwardTable, Inline, Pair};
use crate::tap::{Tap, TapRecorder};
use crate::wire::Mac;
use std::io;
use std::mem::{offset_of, size_of};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wirecap_capture::frame::now_ns;
use wirecap_capture::ring::block::{BLOCK_STATUS_OFFSET, RawPacket, RawPackets};
use wirecap_capture::ring::sys::{
    self, Mmap, SocketError, check, ethtool, ifreq, poll_ring, setsockopt,
};

/// Why the forwarder could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A system call failed.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// No such interface in this network namespace.
    #[error("no interface named {0:?}: check `ip link`")]
    NoSuchInterface(String),
    /// The interface has the capture IP as a kernel address: the kernel would answer for it.
    #[error(
        "interface {interface} has {ip} as a kernel address: remove it (`ip addr del {ip}/… dev {interface}`), the forwarder answers for it itself"
    )]
    KernelOwnsAddress {
        /// The interface.
        interface: String,
        /// The address.
        ip: IpAddr,
    },
}

fn sock_err<'a>(op: &'static str, interface: &'a str) -> impl FnOnce(io::Error) -> OpenError + 'a {
    move |source| OpenError::Socket(SocketError::at(op, interface)(source))
}

/// The interface's MAC address and MTU.
fn mac_and_mtu(fd: RawFd, name: &str) -> Result<(Mac, usize), OpenError> {
    let mut ifr = ifreq(name);
    // SAFETY: SIOCGIFHWADDR fills `ifr`, which lives on this frame for the whole call.
    check(unsafe { libc::ioctl(fd, libc::SIOCGIFHWADDR as _, &mut ifr) })
        .map_err(sock_err("ioctl(SIOCGIFHWADDR)", name))?;
    // SAFETY: after SIOCGIFHWADDR the union holds a sockaddr.
    let sa = unsafe { ifr.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (m, b) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *m = *b as u8;
    }
    let mut ifr = ifreq(name);
    // SAFETY: SIOCGIFMTU fills `ifr`, which lives on this frame for the whole call.
    check(unsafe { libc::ioctl(fd, libc::SIOCGIFMTU as _, &mut ifr) })
        .map_err(sock_err("ioctl(SIOCGIFMTU)", name))?;
    // SAFETY: after SIOCGIFMTU the union holds the MTU.
    let mtu = unsafe { ifr.ifr_ifru.ifru_mtu };
    Ok((mac, usize::try_from(mtu).unwrap_or(1500)))
}

/// Whether the kernel has `ip` as an address of `name`.
fn kernel_has_address(fd: RawFd, name: &str, ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(ip) => {
            // One line per address: hex address, ifindex, prefix, scope, flags, name.
            let hex: String = ip.octets().iter().map(|b| format!("{b:02x}")).collect();
            return std::fs::read_to_string("/proc/net/if_inet6").is_ok_and(|t| {
                t.lines().any(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.first() == Some(&hex.as_str()) && f.last() == Some(&name)
                })
            });
        }
    };
    let mut ifr = ifreq(name);
    // SAFETY: SIOCGIFADDR fills `ifr`, which lives on this frame for the whole call.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFADDR as _, &mut ifr) } < 0 {
        return false;
    }
    // SAFETY: after SIOCGIFADDR the union holds a sockaddr_in for AF_INET.
    let sa = unsafe { ifr.ifr_ifru.ifru_addr };
    let b = sa.sa_data;
    // sockaddr_in: port (2 bytes) then the address, inside sa_data.
    Ipv4Addr::new(b[2] as u8, b[3] as u8, b[4] as u8, b[5] as u8) == ip
}

/// Turns off GRO, LRO and GSO on `name`; says what it did for each, and what TSO is.
///
/// TSO is left as it is: the only frames larger than the MTU the forwarder sends are the
/// TCP super-packets it passes on whole with their `virtio_net_hdr`, which the NIC (or
/// the peer's stack, on a veth) then segments; turning it off would only make the kernel
/// cut them in software first (measured here: 2.7 instead of 4.9 Gbit/s through a veth).
pub fn disable_offloads(fd: RawFd, name: &str) -> Vec<String> {
    let mut said = Vec::new();
    for (what, get, set) in [
        ("gro", ethtool::GGRO, ethtool::SGRO),
        ("gso", ethtool::GGSO, ethtool::SGSO),
    ] {
        said.push(match ethtool::value(fd, name, get, 0) {
            Ok(0) => format!("{what} already off"),
            Ok(_) => match ethtool::value(fd, name, set, 0) {
                Ok(_) => format!("{what} turned off"),
                Err(e) => format!("{what} could not be turned off: {e}"),
            },
            Err(e) => format!("{what} unknown: {e}"),
        });
    }
    said.push(match ethtool::value(fd, name, ethtool::GFLAGS, 0) {
        Ok(f) if f & ethtool::FLAG_LRO == 0 => "lro already off".to_owned(),
        Ok(f) => match ethtool::value(fd, name, ethtool::SFLAGS, f & !ethtool::FLAG_LRO) {
            Ok(_) => "lro turned off".to_owned(),
            Err(e) => format!("lro could not be turned off: {e}"),
        },
        Err(e) => format!("lro unknown: {e}"),
    });
    said.push(match ethtool::value(fd, name, ethtool::GTSO, 0) {
        Ok(0) => "tso off (left as it is)".to_owned(),
        Ok(_) => "tso on (left on: super-packets sent whole are segmented by it)".to_owned(),
        Err(e) => format!("tso unknown: {e}"),
    });
    said
}

fn packet_socket(name: &str, protocol: u16) -> Result<(OwnedFd, i32), OpenError> {
    let fd = sys::packet_socket(protocol).map_err(sock_err("socket(AF_PACKET)", name))?;
    let idx = sys::if_index(name).ok_or_else(|| OpenError::NoSuchInterface(name.to_owned()))?;
    Ok((fd, idx))
}

fn bind(fd: RawFd, ifindex: i32, protocol: u16, name: &str) -> Result<(), OpenError> {
    sys::bind_packet(fd, ifindex, protocol).map_err(sock_err("bind", name))
}

/// Offsets in a `tpacket2_hdr` (TX frames).
mod v2 {
    use super::*;
    use libc::tpacket2_hdr;
    pub(super) const STATUS: usize = offset_of!(tpacket2_hdr, tp_status);
    pub(super) const LEN: usize = offset_of!(tpacket2_hdr, tp_len);
    pub(super) const SNAPLEN: usize = offset_of!(tpacket2_hdr, tp_snaplen);
    /// Frame data starts here (TPACKET2_HDRLEN minus the sockaddr_ll, without TX_HAS_OFF).
    pub(super) const DATA: usize =
        (size_of::<tpacket2_hdr>() + libc::TPACKET_ALIGNMENT - 1) & !(libc::TPACKET_ALIGNMENT - 1);
}

/// Ring sizes.
#[derive(Debug, Clone, Copy)]
pub struct RingSizes {
    /// RX block size.
    pub rx_block: u32,
    /// RX blocks.
    pub rx_blocks: u32,
    /// TX frame slots.
    pub tx_frames: u32,
}

impl Default for RingSizes {
    fn default() -> Self {
        Self {
            rx_block: 1 << 20,
            rx_blocks: 16,
            tx_frames: 4096,
        }
    }
}

struct TxRing {
    map: Mmap,
    fd: OwnedFd,
    frame_size: usize,
    frames: usize,
    head: usize,
    queued: usize,
    wrong_format: u64,
    send_errors: u64,
    /// A socket with `PACKET_VNET_HDR` for TCP super-packets the kernel segments.
    gso: Option<OwnedFd>,
    gso_buf: Vec<u8>,
}

/// `sizeof(struct virtio_net_hdr)`.
const VNET_HDR_LEN: usize = 10;
/// `VIRTIO_NET_HDR_GSO_TCPV4`, without the ECN bit.
const VNET_GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
const VNET_GSO_TCPV6: u8 = 4;

impl TxRing {
    fn slot_status(&self, i: usize) -> &AtomicU32 {
        self.map.status(i * self.frame_size + v2::STATUS)
    }

    /// Hands every queued frame to the kernel: one system call.
    fn flush(&mut self) {
        if self.queued == 0 {
            return;
        }
        // SAFETY: sendto with no buffer and no address on a socket with a TX ring sends
        // the frames marked TP_STATUS_SEND_REQUEST; nothing of ours is read or written.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::Interrupted {
                self.send_errors += 1;
            }
        }
        self.queued = 0;
    }

    fn available(&mut self, i: usize) -> bool {
        let s = self.slot_status(i).load(Ordering::Acquire);
        if s & libc::TP_STATUS_WRONG_FORMAT != 0 {
            // With PACKET_LOSS the kernel skips such a frame; count it and take the slot.
            self.wrong_format += 1;
            self.slot_status(i)
                .store(libc::TP_STATUS_AVAILABLE, Ordering::Release);
            return true;
        }
        s == libc::TP_STATUS_AVAILABLE
    }
}

impl Transmit for TxRing {
    fn transmit_gso(&mut self, gso: &Gso, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool {
        let Some(fd) = self.gso.as_ref().map(AsRawFd::as_raw_fd) else {
            return false;
        };
        // Frames queued in the ring go first: the flow stays in order.
        self.flush();
        self.gso_buf.clear();
        self.gso_buf.extend_from_slice(&gso.vnet_hdr);
        self.gso_buf.resize(VNET_HDR_LEN + len, 0);
        fill(&mut self.gso_buf[VNET_HDR_LEN..]);
        // SAFETY: the buffer is valid for reads of its length for the whole call.
        let rc = unsafe { libc::send(fd, self.gso_buf.as_ptr().cast(), self.gso_buf.len(), 0) };
        if rc < 0 {
            self.send_errors += 1;
            return false;
        }
        true
    }

    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool {
        if len + v2::DATA > self.frame_size {
            return false;
        }
        let i = self.head;
        if !self.available(i) {
            // Ring full of frames not yet sent: send them, then look again once.
            self.flush();
            if !self.available(i) {
                return false;
            }
        }
        let base = i * self.frame_size;
        {
            let slot = self.map.region(base, self.frame_size);
            fill(&mut slot[v2::DATA..v2::DATA + len]);
            let l = (len as u32).to_ne_bytes();
            slot[v2::LEN..v2::LEN + 4].copy_from_slice(&l);
            slot[v2::SNAPLEN..v2::SNAPLEN + 4].copy_from_slice(&l);
        }
        self.slot_status(i)
            .store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.head = (i + 1) % self.frames;
        self.queued += 1;
        if self.queued >= self.frames / 2 {
            self.flush();
        }
        true
    }
}

struct RxRing {
    map: Mmap,
    fd: OwnedFd,
    block_size: usize,
    blocks: usize,
    current: usize,
    malformed: u64,
    /// Each packet is preceded by a `virtio_net_hdr` (`PACKET_VNET_HDR`).
    vnet: bool,
    kernel_drops: u64,
}

impl RxRing {
    fn ready(&self) -> bool {
        self.map
            .status(self.current * self.block_size + BLOCK_STATUS_OFFSET)
            .load(Ordering::Acquire)
            & libc::TP_STATUS_USER
            != 0
    }

    /// Adds what PACKET_STATISTICS says (and resets) to `self.kernel_drops`.
    fn read_drops(&mut self) {
        if let Ok(st) = sys::packet_stats(self.fd.as_raw_fd()) {
            self.kernel_drops += u64::from(st.tp_drops);
        }
    }

    fn wait(&self, timeout: Duration) {
        // A poll failure other than EINTR cannot happen on a live packet socket; the
        // loop comes back here either way.
        let link_error = poll_ring(self.fd.as_raw_fd(), timeout).unwrap_or(false);
        if link_error && !self.ready() {
            std::thread::sleep(timeout.min(Duration::from_millis(20)));
        }
    }

    /// Calls `each` for every packet of the current block (ready), then gives it back.
    fn block(&mut self, each: &mut dyn FnMut(Received<'_>)) -> usize {
        let start = self.current * self.block_size;
        let block = self.map.region(start, self.block_size);
        let mut n = 0;
        match RawPackets::new(block) {
            Ok(mut packets) => {
                while let Some(p) = packets.next() {
                    let Ok(p) = p else {
                        self.malformed += 1;
                        break;
                    };
                    let gso = if self.vnet {
                        let Some(&h) = p.headroom.last_chunk::<VNET_HDR_LEN>() else {
                            self.malformed += 1;
                            break;
                        };
                        let gso_size = u16::from_ne_bytes([h[4], h[5]]);
                        (matches!(h[1] & 0x7f, VNET_GSO_TCPV4 | VNET_GSO_TCPV6) && gso_size > 0)
                            .then_some(Gso {
                                vnet_hdr: h,
                                gso_size,
                            })
                    } else {
                        None
                    };
                    each(received(p, gso));
                    n += 1;
                }
            }
            Err(_) => self.malformed += 1,
        }
        self.map
            .status(start + BLOCK_STATUS_OFFSET)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.current = (self.current + 1) % self.blocks;
        n
    }
}

/// The tag the kernel took off `p` (TPID and TCI as on the wire), read from its
/// `tpacket3_hdr` at the start of the headroom.
fn stripped_tag(p: &RawPacket<'_>) -> Option<[u8; 4]> {
    use std::mem::offset_of;
    const HV1: usize = offset_of!(libc::tpacket3_hdr, hv1);
    const TCI: usize = HV1 + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tci);
    const TPID: usize = HV1 + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tpid);
    let h = p.headroom;
    let tci = u32::from_ne_bytes(h.get(TCI..TCI + 4)?.try_into().ok()?) as u16;
    let tpid = u16::from_ne_bytes(h.get(TPID..TPID + 2)?.try_into().ok()?);
    // libpcap's rule: the flag, or a non-zero TCI from kernels that predate it.
    if p.status & libc::TP_STATUS_VLAN_VALID == 0 && tci == 0 {
        return None;
    }
    let tpid = if p.status & libc::TP_STATUS_VLAN_TPID_VALID != 0 && tpid != 0 {
        tpid
    } else {
        crate::wire::ethertype::VLAN
    };
    let (t, c) = (tpid.to_be_bytes(), tci.to_be_bytes());
    Some([t[0], t[1], c[0], c[1]])
}

fn received(p: RawPacket<'_>, gso: Option<Gso>) -> Received<'_> {
    let stripped_tag = stripped_tag(&p);
    Received {
        ts_ns: p.ts_ns,
        data: p.data,
        wire_len: p.wire_len as usize,
        checksum_partial: p.status & libc::TP_STATUS_CSUMNOTREADY != 0,
        stripped_tag,
        gso,
    }
}

fn open_rx(name: &str, sizes: RingSizes) -> Result<(RxRing, RawFd, i32), OpenError> {
    let (fd, ifindex) = packet_socket(name, 0)?;
    let raw = fd.as_raw_fd();
    let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
    setsockopt(raw, libc::SOL_PACKET, libc::PACKET_VERSION, &version)
        .map_err(sock_err("setsockopt(PACKET_VERSION)", name))?;
    // Super-packets then come with their segmentation facts and can be sent on whole.
    let one: libc::c_int = 1;
    let vnet = setsockopt(raw, libc::SOL_PACKET, libc::PACKET_VNET_HDR, &one).is_ok();
    // A 1 ms retire timeout: a lone ping waits at most that long in a half-filled block.
    sys::set_rx_ring_v3(raw, sizes.rx_block, sizes.rx_blocks, 1)
        .map_err(sock_err("setsockopt(PACKET_RX_RING)", name))?;
    let len = sizes.rx_block as usize * sizes.rx_blocks as usize;
    let map = Mmap::ring(raw, len).map_err(sock_err("mmap(RX ring)", name))?;
    let one: libc::c_int = 1;
    setsockopt(raw, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one)
        .map_err(sock_err("setsockopt(PACKET_IGNORE_OUTGOING)", name))?;
    bind(raw, ifindex, libc::ETH_P_ALL as u16, name)?;
    // Neighbour solicitations for the capture address go to its solicited-node multicast
    // group, which a NIC filters out unless told otherwise; undone when the socket closes.
    sys::add_membership(raw, ifindex, libc::PACKET_MR_ALLMULTI)
        .map_err(sock_err("setsockopt(PACKET_ADD_MEMBERSHIP)", name))?;
    Ok((
        RxRing {
            map,
            fd,
            block_size: sizes.rx_block as usize,
            blocks: sizes.rx_blocks as usize,
            current: 0,
            malformed: 0,
            vnet,
            kernel_drops: 0,
        },
        raw,
        ifindex,
    ))
}

fn open_tx(name: &str, mtu: usize, sizes: RingSizes) -> Result<(TxRing, bool), OpenError> {
    let (fd, ifindex) = packet_socket(name, 0)?;
    let raw = fd.as_raw_fd();
    let version = libc::tpacket_versions::TPACKET_V2 as libc::c_int;
    setsockopt(raw, libc::SOL_PACKET, libc::PACKET_VERSION, &version)
        .map_err(sock_err("setsockopt(PACKET_VERSION)", name))?;
    let one: libc::c_int = 1;
    setsockopt(raw, libc::SOL_PACKET, libc::PACKET_LOSS, &one)
        .map_err(sock_err("setsockopt(PACKET_LOSS)", name))?;
    let bypass = setsockopt(raw, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &one).is_ok();
    let frame_size = (mtu + 14 + 2 * 4 + v2::DATA).next_power_of_two().max(2048);
    let frames_per_block = (1usize << 20) / frame_size;
    let blocks = (sizes.tx_frames as usize).div_ceil(frames_per_block).max(1);
    let frames = blocks * frames_per_block;
    let req = libc::tpacket_req {
        tp_block_size: 1 << 20,
        tp_block_nr: blocks as u32,
        tp_frame_size: frame_size as u32,
        tp_frame_nr: frames as u32,
    };
    setsockopt(raw, libc::SOL_PACKET, libc::PACKET_TX_RING, &req)
        .map_err(sock_err("setsockopt(PACKET_TX_RING)", name))?;
    let map = Mmap::ring(raw, blocks << 20).map_err(sock_err("mmap(TX ring)", name))?;
    bind(raw, ifindex, 0, name)?;
    let gso = open_gso(name, ifindex).ok();
    Ok((
        TxRing {
            map,
            fd,
            frame_size,
            frames,
            head: 0,
            queued: 0,
            wrong_format: 0,
            send_errors: 0,
            gso,
            gso_buf: Vec::with_capacity(1 << 16),
        },
        bypass,
    ))
}

/// A plain packet socket with `PACKET_VNET_HDR`: sends one super-packet per call, which
/// the kernel segments on the way out (GSO in software, since the forwarder turned the
/// interface's TSO/GSO off).
fn open_gso(name: &str, ifindex: i32) -> Result<OwnedFd, OpenError> {
    let (fd, _) = packet_socket(name, 0)?;
    let raw = fd.as_raw_fd();
    let one: libc::c_int = 1;
    setsockopt(raw, libc::SOL_PACKET, libc::PACKET_VNET_HDR, &one)
        .map_err(sock_err("setsockopt(PACKET_VNET_HDR)", name))?;
    // No PACKET_QDISC_BYPASS here: the direct path drops a packet that needs segmenting
    // (`__dev_direct_xmit` refuses a changed skb), the qdisc path segments it.
    bind(raw, ifindex, 0, name)?;
    Ok(fd)
}

/// What the forwarder is set up with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The capture interface.
    pub interface: String,
    /// The capture address.
    pub inline: Inline,
    /// Peer pairs.
    pub pairs: Vec<Pair>,
    /// Capture mode.
    pub mode: CaptureMode,
    /// The CPU the forwarder thread has to itself ([`crate::cpu`]).
    pub cpu: CpuChoice,
}

/// One neighbour as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighbourView {
    /// The peer.
    pub ip: IpAddr,
    /// Its MAC, if resolved.
    pub mac: Option<Mac>,
}

/// The forwarder's figures, as the status and metrics show them.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Why the forwarder thread stopped by itself (it panicked): nothing is forwarded any
    /// more, and the status must say so rather than show the last figures as if live.
    pub failed: Option<String>,
    /// Cumulative counters.
    pub stats: Stats,
    /// Packets forwarded per second over the last whole second.
    pub pps: u64,
    /// Bits forwarded per second over the last whole second.
    pub bps: u64,
    /// Packets waiting for ARP.
    pub arp_pending: u64,
    /// Peers.
    pub neighbours: Vec<NeighbourView>,
    /// TX frames the driver refused.
    pub tx_errors: u64,
    /// Malformed RX ring entries.
    pub rx_malformed: u64,
    /// Packets the kernel dropped because the RX ring was full (`PACKET_STATISTICS`).
    pub rx_ring_drops: u64,
    /// The interface's MAC.
    pub mac: Mac,
    /// The interface's MTU.
    pub mtu: usize,
    /// What was done about offloads at start.
    pub offloads: Vec<String>,
    /// Whether the TX socket bypasses the qdisc.
    pub qdisc_bypass: bool,
    /// The CPU the forwarder thread has to itself, if any ([`crate::cpu`]).
    pub cpu: Option<usize>,
    /// Why the configured CPU could not be had (forwarding goes on without it).
    pub cpu_error: Option<String>,
}

enum Command {
    Reconfigure(Inline, ForwardTable, CaptureMode),
}

struct Shared {
    snapshot: Mutex<Snapshot>,
    settings: Mutex<Settings>,
}

/// A running forwarder thread.
pub struct ForwarderHandle {
    shared: Arc<Shared>,
    commands: Mutex<Sender<Command>>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    tap: Arc<Tap>,
}

impl std::fmt::Debug for ForwarderHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwarderHandle")
            .field("settings", &self.settings())
            .finish_non_exhaustive()
    }
}

impl ForwarderHandle {
    /// Opens the rings on `settings.interface`, turns its offloads off and starts the
    /// forwarder thread.
    pub fn start(settings: Settings) -> Result<Self, OpenError> {
        let name = settings.interface.clone();
        let table = ForwardTable::new(settings.inline, &settings.pairs).map_err(|e| {
            OpenError::Socket(SocketError::at("forwarding table", &name)(io::Error::new(
                io::ErrorKind::InvalidInput,
                e.to_string(),
            )))
        })?;
        // A CPU that cannot be had is a configuration error, said before anything opens.
        let cpus = crate::cpu::allowed()
            .map_err(sock_err("reading the CPUs wirecap may run on", &name))?;
        crate::cpu::resolve(settings.cpu, &cpus).map_err(|e| {
            OpenError::Socket(SocketError::at("forwarder CPU", &name)(io::Error::new(
                io::ErrorKind::InvalidInput,
                e,
            )))
        })?;
        let cpu_choice = settings.cpu;
        let sizes = RingSizes::default();
        let (rx, raw, _) = open_rx(&name, sizes)?;
        let (mac, mtu) = mac_and_mtu(raw, &name)?;
        if kernel_has_address(raw, &name, settings.inline.ip) {
            return Err(OpenError::KernelOwnsAddress {
                interface: name,
                ip: settings.inline.ip,
            });
        }
        let offloads = disable_offloads(raw, &name);
        let (tx, qdisc_bypass) = open_tx(&name, mtu, sizes)?;
        let config = ForwarderConfig {
            inline: settings.inline,
            mac,
            mtu,
            neighbours: NeighbourConfig::default(),
        };
        let fwd = Forwarder::new(config, table, settings.mode);
        let tap = Tap::new(&name);
        let shared = Arc::new(Shared {
            snapshot: Mutex::new(Snapshot {
                mac,
                mtu,
                offloads,
                qdisc_bypass,
                ..Snapshot::default()
            }),
            settings: Mutex::new(settings),
        });
        let (ctx, crx) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            fwd,
            rx,
            tx,
            rec: tap.recorder(),
            shared: shared.clone(),
            commands: crx,
            stop: stop.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("wc-forward".into())
            .spawn(move || {
                let shared = worker.shared.clone();
                // Held for the thread's life: dropping it gives the other threads their
                // CPUs back.
                let claimed = crate::cpu::Dedicated::claim(cpu_choice);
                {
                    let mut s = shared.snapshot.lock().unwrap_or_else(|e| e.into_inner());
                    match &claimed {
                        Ok(d) => s.cpu = d.as_ref().map(crate::cpu::Dedicated::cpu),
                        Err(e) => s.cpu_error = Some(e.clone()),
                    }
                }
                if let Err(p) =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.run()))
                {
                    let why = p
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".to_owned());
                    shared
                        .snapshot
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .failed = Some(format!("the forwarder thread stopped: {why}"));
                }
            })
            .map_err(sock_err("spawn forwarder thread", &name))?;
        Ok(Self {
            shared,
            commands: Mutex::new(ctx),
            stop,
            thread: Mutex::new(Some(thread)),
            tap,
        })
    }

    /// The tap a capture reads the forwarder's records from.
    pub fn tap(&self) -> &Arc<Tap> {
        &self.tap
    }

    /// The current figures.
    pub fn snapshot(&self) -> Snapshot {
        self.shared
            .snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The current settings.
    pub fn settings(&self) -> Settings {
        self.shared
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes the capture address, pairs and mode of the running forwarder (the
    /// interface stays). The table is checked first; nothing changes when it is refused.
    pub fn reconfigure(
        &self,
        inline: Inline,
        pairs: Vec<Pair>,
        mode: CaptureMode,
    ) -> Result<(), crate::TableError> {
        let table = ForwardTable::new(inline, &pairs)?;
        let mut s = self
            .shared
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let _ = self
            .commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Command::Reconfigure(inline, table, mode));
        s.inline = inline;
        s.pairs = pairs;
        s.mode = mode;
        Ok(())
    }

    /// Stops the thread (also on drop).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Drop for ForwarderHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Worker {
    fwd: Forwarder,
    rx: RxRing,
    tx: TxRing,
    rec: TapRecorder,
    shared: Arc<Shared>,
    commands: Receiver<Command>,
    stop: Arc<AtomicBool>,
}

impl Worker {
    fn run(mut self) {
        let mut last_poll = Instant::now() - Duration::from_secs(1);
        let mut last_publish = Instant::now();
        let mut second = (Instant::now(), Stats::default());
        let mut rates = (0u64, 0u64);
        while !self.stop.load(Ordering::Relaxed) {
            if self.rx.ready() {
                let now = now_ns();
                let (fwd, tx, rec) = (&mut self.fwd, &mut self.tx, &mut self.rec);
                self.rx.block(&mut |r| fwd.receive(now, r, tx, rec));
                self.tx.flush();
                self.rec.flush();
            } else {
                self.rx.wait(Duration::from_millis(20));
            }
            if last_poll.elapsed() >= Duration::from_millis(10) {
                last_poll = Instant::now();
                while let Ok(Command::Reconfigure(i, t, m)) = self.commands.try_recv() {
                    self.fwd.reconfigure(i, t, m);
                }
                self.fwd.poll(now_ns(), &mut self.tx);
                self.tx.flush();
                self.rec.flush();
            }
            if second.0.elapsed() >= Duration::from_secs(1) {
                let s = *self.fwd.stats();
                let secs = second.0.elapsed().as_secs_f64();
                let dp = s.forwarded() - second.1.forwarded();
                let db = (s.a_to_b_bytes + s.b_to_a_bytes)
                    - (second.1.a_to_b_bytes + second.1.b_to_a_bytes);
                rates = ((dp as f64 / secs) as u64, (db as f64 * 8.0 / secs) as u64);
                second = (Instant::now(), s);
            }
            if last_publish.elapsed() >= Duration::from_millis(100) {
                last_publish = Instant::now();
                self.publish(rates);
            }
        }
        self.publish(rates);
    }

    fn publish(&mut self, (pps, bps): (u64, u64)) {
        self.rx.read_drops();
        let now = now_ns();
        let neighbours = self
            .fwd
            .table()
            .peers()
            .map(|ip| NeighbourView {
                ip,
                mac: self.fwd.neighbour(ip, now),
            })
            .collect();
        let mut s = self
            .shared
            .snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        s.stats = *self.fwd.stats();
        s.pps = pps;
        s.bps = bps;
        s.arp_pending = self.fwd.arp_pending() as u64;
        s.neighbours = neighbours;
        s.tx_errors = self.tx.wrong_format + self.tx.send_errors;
        s.rx_malformed = self.rx.malformed;
        s.rx_ring_drops = self.rx.kernel_drops;
    }
}
