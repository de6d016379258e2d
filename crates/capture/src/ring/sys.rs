//! The few system calls every AF_PACKET ring needs, shared by the capture rings and the
//! inline forwarder's RX/TX rings: checked `setsockopt`, `ifreq` for interface ioctls, the
//! packet socket, its bind and its statistics, the ring's shared mapping with
//! bounds-checked access to its status words and regions, and the ethtool ioctl
//! ([`ethtool`]) that the forwarder and `wirecap doctor` use.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// A system call on an AF_PACKET socket or ring that failed: which, on which interface,
/// and the OS error. The one such error of the capture rings and the inline forwarder.
#[derive(Debug, thiserror::Error)]
#[error("{op} on interface {interface}: {source}")]
pub struct SocketError {
    /// The operation, e.g. `setsockopt(PACKET_RX_RING)`.
    pub op: &'static str,
    /// The interface the socket is for.
    pub interface: String,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

impl SocketError {
    /// `map_err(SocketError::at("bind", name))`.
    pub fn at<'a>(op: &'static str, interface: &'a str) -> impl FnOnce(io::Error) -> Self + 'a {
        move |source| Self {
            op,
            interface: interface.to_owned(),
            source,
        }
    }

    /// Whether the OS refused for lack of privilege (`CAP_NET_RAW`, `CAP_NET_ADMIN`).
    pub fn is_permission(&self) -> bool {
        matches!(self.source.raw_os_error(), Some(libc::EPERM | libc::EACCES))
    }
}

/// A negative return code as the `errno` error.
pub fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `setsockopt` with a typed value.
pub fn setsockopt<T>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a valid, initialised `T` for the duration of the call and the
    // length passed is its size; the kernel only reads it.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
}

/// An `ifreq` naming interface `name` (cut to IFNAMSIZ - 1 bytes), everything else zero.
pub fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: an all-zero ifreq is a valid value (a C struct of integers and a union).
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *d = s as libc::c_char;
    }
    ifr
}

/// A raw `AF_PACKET` socket for `protocol` (host order; 0 queues nothing until bound).
pub fn packet_socket(protocol: u16) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked and owned at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(protocol.to_be()),
        )
    };
    check(fd)?;
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The index of interface `name` in the caller's network namespace, `None` if there is none.
pub fn if_index(name: &str) -> Option<i32> {
    let c = CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    i32::try_from(idx).ok().filter(|&i| i != 0)
}

/// Binds packet socket `fd` to interface `ifindex` for `protocol` (host order).
pub fn bind_packet(fd: RawFd, ifindex: i32, protocol: u16) -> io::Result<()> {
    // SAFETY: an all-zero sockaddr_ll is valid; fields are set below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = ifindex;
    // SAFETY: `sll` is a valid sockaddr_ll and the length is its size.
    check(unsafe {
        libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })
}

/// Adds a membership of `kind` (`PACKET_MR_PROMISC`, `PACKET_MR_ALLMULTI`) on interface
/// `ifindex` to packet socket `fd`; the kernel drops it when the socket closes.
pub fn add_membership(fd: RawFd, ifindex: i32, kind: libc::c_int) -> io::Result<()> {
    let mreq = libc::packet_mreq {
        mr_ifindex: ifindex,
        mr_type: kind as u16,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    setsockopt(fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
}

/// Asks for a TPACKET_V3 RX ring of `block_count` blocks of `block_size` bytes
/// (`PACKET_RX_RING`); a block is handed over when full or after `retire_timeout_ms`.
/// The socket must be at `PACKET_VERSION` 3 already; map the ring with [`Mmap::ring`].
pub fn set_rx_ring_v3(
    fd: RawFd,
    block_size: u32,
    block_count: u32,
    retire_timeout_ms: u32,
) -> io::Result<()> {
    // Frames are a TPACKET_V1/V2 notion; V3 only checks that they tile the blocks.
    const FRAME: u32 = 2048;
    let req = libc::tpacket_req3 {
        tp_block_size: block_size,
        tp_block_nr: block_count,
        tp_frame_size: FRAME,
        tp_frame_nr: (u64::from(block_size) * u64::from(block_count) / u64::from(FRAME)) as u32,
        tp_retire_blk_tov: retire_timeout_ms,
        tp_sizeof_priv: 0,
        tp_feature_req_word: 0,
    };
    setsockopt(fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
}

/// Reads (and thereby resets) `PACKET_STATISTICS` of a TPACKET_V3 socket.
pub fn packet_stats(fd: RawFd) -> io::Result<libc::tpacket_stats_v3> {
    let mut st = libc::tpacket_stats_v3 {
        tp_packets: 0,
        tp_drops: 0,
        tp_freeze_q_cnt: 0,
    };
    let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
    // SAFETY: `st` and `len` are valid for writes of the sizes given.
    check(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut st as *mut libc::tpacket_stats_v3).cast(),
            &mut len,
        )
    })?;
    Ok(st)
}

/// The ethtool "value" ioctls (`SIOCETHTOOL` with a `struct ethtool_value`): reading and
/// setting the offloads a capture cares about (GRO, LRO, GSO, TSO).
pub mod ethtool {
    use super::{check, ifreq};
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

    /// Get the flags word (`ETH_FLAG_*`).
    pub const GFLAGS: u32 = 0x25;
    /// Set the flags word.
    pub const SFLAGS: u32 = 0x26;
    /// Get TSO.
    pub const GTSO: u32 = 0x1e;
    /// Get GSO.
    pub const GGSO: u32 = 0x23;
    /// Set GSO.
    pub const SGSO: u32 = 0x24;
    /// Get GRO.
    pub const GGRO: u32 = 0x2b;
    /// Set GRO.
    pub const SGRO: u32 = 0x2c;
    /// LRO in the flags word.
    pub const FLAG_LRO: u32 = 1 << 15;

    #[repr(C)]
    struct EthtoolValue {
        cmd: u32,
        data: u32,
    }

    /// One ethtool value command `cmd` with `data` on interface `name` through socket `fd`
    /// (any socket will do); returns the value the kernel wrote back.
    pub fn value(fd: RawFd, name: &str, cmd: u32, data: u32) -> io::Result<u32> {
        let mut v = EthtoolValue { cmd, data };
        let mut ifr = ifreq(name);
        ifr.ifr_ifru.ifru_data = (&raw mut v).cast();
        // SAFETY: SIOCETHTOOL reads and writes the ethtool_value `ifr` points at, which
        // lives on this frame for the whole call.
        check(unsafe { libc::ioctl(fd, libc::SIOCETHTOOL as _, &mut ifr) })?;
        Ok(v.data)
    }

    /// [`value`] for a "get" command, on a datagram socket opened for the call; `None`
    /// when the interface or its driver does not answer.
    pub fn get(name: &str, cmd: u32) -> Option<u32> {
        if name.len() >= libc::IFNAMSIZ {
            return None;
        }
        // SAFETY: a datagram socket only to carry the ioctl; checked and owned at once.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return None;
        }
        // SAFETY: a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        value(fd.as_raw_fd(), name, cmd, 0).ok()
    }
}

/// Waits up to `timeout` for a ring socket to have packets. Returns whether the socket
/// reported an error instead (a link going down leaves ENETDOWN pending): that error is
/// read and so cleared, else poll would return at once forever; the caller should then
/// not spin while the link is down. An interrupted wait is a normal return.
pub fn poll_ring(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN | libc::POLLERR,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pfd` is one valid pollfd for the duration of the call.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    if rc == 0 || pfd.revents & libc::POLLERR == 0 {
        return Ok(false);
    }
    let mut err: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid for writes of the sizes given.
    unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        );
    }
    Ok(true)
}

/// The shared mapping of a socket's ring, unmapped on drop.
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; moving it to another thread is
// fine, and access goes through `&mut self` (regions) or atomics (status words).
unsafe impl Send for Mmap {}

impl Mmap {
    /// Maps `len` bytes of the ring of socket `fd`, locked in memory where RLIMIT_MEMLOCK
    /// allows it (a ring paged out would drop packets while it faults back in).
    pub fn ring(fd: RawFd, len: usize) -> io::Result<Self> {
        let map = |flags| {
            // SAFETY: a fresh shared mapping of the socket's ring; no existing memory is
            // touched, and the result is checked before use.
            unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_POPULATE | flags,
                    fd,
                    0,
                )
            }
        };
        let mut p = map(libc::MAP_LOCKED);
        if p == libc::MAP_FAILED {
            // MAP_LOCKED fails under a low RLIMIT_MEMLOCK: the ring still works unlocked.
            p = map(0);
        }
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Self { ptr, len })
    }

    /// The status word at `off`, shared with the kernel.
    pub fn status(&self, off: usize) -> &AtomicU32 {
        assert!(off + 4 <= self.len && off.is_multiple_of(4));
        // SAFETY: inside the mapping (checked above) and 4-byte aligned (the mapping is
        // page-aligned, `off` a multiple of 4); the kernel accesses it concurrently, hence
        // only through an atomic.
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(off).cast()) }
    }

    /// `len` bytes at `off`. The caller owns that region: its status word hands it to user
    /// space, so the kernel does not write it while the slice lives.
    pub fn region(&mut self, off: usize, len: usize) -> &mut [u8] {
        assert!(off + len <= self.len);
        // SAFETY: inside the mapping (checked above); the kernel leaves the region alone
        // while user space owns it (the caller's contract), and `&mut self` makes the
        // slice unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(off), len) }
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, and no slice into the mapping
        // outlives `self` (slices borrow `&mut self`).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_errors_read_the_same_from_capture_and_say_when_privilege_is_missing() {
        let denied =
            SocketError::at("socket(AF_PACKET)", "eth9")(io::Error::from_raw_os_error(libc::EPERM));
        assert!(denied.is_permission());
        let e = crate::Error::from(denied);
        assert!(
            e.to_string()
                .starts_with("socket(AF_PACKET) on interface eth9: "),
            "{e}"
        );
        assert!(matches!(&e, crate::Error::Socket(s) if s.interface == "eth9"));
        let busy = SocketError::at("bind", "eth9")(io::Error::from_raw_os_error(libc::EADDRINUSE));
        assert!(!busy.is_permission());
    }
}
