//! [`CaptureReader`]: one streaming reader for pcap and pcapng.
//!
//! Shaped as a *lending* reader (`next_packet(&mut self) -> Packet<'_>`) rather than an
//! `Iterator`, because the packet bytes are a slice of the reader's own buffer: handing
//! out owned packets would cost an allocation or a copy per packet, which is what the
//! import benchmark against tcpdump punishes. The byte-level rules live in the sans-I/O
//! submodules [`pcap`] and [`pcapng`]; this module only moves bytes through the
//! [`buffer::Buffer`] and turns parse results into [`Packet`]s and positioned [`Error`]s.
//!
//! A reader is fused: after the first error (or the end of input) it returns `Ok(None)`.

mod buffer;
pub(crate) mod pcap;
pub(crate) mod pcapng;
#[cfg(test)]
mod tests;

use std::io::Read;
use std::ops::Range;

use self::buffer::{Buffer, DEFAULT_CAPACITY};
use self::pcap::{FILE_HEADER_LEN, LengthOrder, RECORD_HEADER_LEN};
use self::pcapng::{BT_EPB, BT_IDB, BT_PB, BT_SHB, BT_SPB, Interface};
use crate::bytes::ByteOrder;
use crate::error::{Error, ErrorKind};
use crate::{LinkType, MAX_PACKET_LEN};

/// One captured packet. `data` borrows the reader's buffer until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Packet<'a> {
    /// Seconds since the epoch.
    pub ts_sec: u64,
    /// Nanoseconds. From pcap files the raw sub-second field is kept (µs × 1000 for µs
    /// files, wrapping in 32 bits), even when it is >= 10^9 in a damaged file; from
    /// pcapng it is computed from the 64-bit timestamp, `if_tsresol` and `if_tsoffset`.
    pub ts_nsec: u32,
    /// Length of the packet on the wire.
    pub orig_len: u32,
    /// The captured bytes; the captured length is `data.len()`.
    pub data: &'a [u8],
    /// pcapng: interface index counted across the whole file (section 2's interface 0
    /// comes after all of section 1's interfaces); pcap: 0.
    pub interface: u32,
}

impl Packet<'_> {
    /// The timestamp in nanoseconds since the epoch, saturating at `u64::MAX`.
    pub const fn ts_ns(&self) -> u64 {
        self.ts_sec
            .saturating_mul(1_000_000_000)
            .saturating_add(self.ts_nsec as u64)
    }
}

/// The container format of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// pcap, magic `a1b2c3d4`: microsecond timestamps.
    PcapUs,
    /// pcap, magic `a1b23c4d`: nanosecond timestamps.
    PcapNs,
    Pcapng,
}

/// Reads packets from a pcap or pcapng stream; see the module documentation.
pub struct CaptureReader<R> {
    reader: R,
    buf: Buffer,
    state: State,
    done: bool,
}

enum State {
    Pcap(PcapState),
    Pcapng(NgState),
}

struct PcapState {
    order: ByteOrder,
    nanos: bool,
    lengths: LengthOrder,
    link: LinkType,
    snaplen: u32,
    effective_snaplen: u32,
}

struct NgState {
    /// Byte order of the current section.
    order: ByteOrder,
    /// Every interface of the file, in order; a section's interface `i` is
    /// `interfaces[section_base + i]`.
    interfaces: Vec<Interface>,
    section_base: usize,
    sections: u32,
}

/// Where a packet's bytes are in the buffer and what goes with them: built while the
/// buffer is mutably borrowed, turned into a [`Packet`] once it no longer is.
struct Found {
    range: Range<usize>,
    ts_sec: u64,
    ts_nsec: u32,
    orig_len: u32,
    interface: u32,
}

impl<R: Read> CaptureReader<R> {
    /// Detects pcap or pcapng by the magic number and reads the file header (pcap) or the
    /// first Section Header Block (pcapng) and the blocks up to its first Interface
    /// Description Block, so that [`Self::link_type`]`(0)` is known unless the file has
    /// no interface before its first packet.
    pub fn new(r: R) -> Result<Self, Error> {
        Self::with_capacity(r, DEFAULT_CAPACITY)
    }

    /// Like [`Self::new`] with an input buffer of `capacity` bytes instead of 1 MiB. The
    /// buffer still grows (once) when a record does not fit.
    pub fn with_capacity(mut r: R, capacity: usize) -> Result<Self, Error> {
        let mut buf = Buffer::with_capacity(capacity);
        let avail = buf.fill(&mut r, 4).map_err(|e| io_err(0, e))?;
        if avail < 4 {
            return Err(truncated(0, "the magic number", 4, avail));
        }
        let first4 = pcapng::peek4(buf.bytes(), 0);
        let state = if u32::from_le_bytes(first4) == BT_SHB {
            let mut st = NgState {
                order: ByteOrder::Little,
                interfaces: Vec::new(),
                section_base: 0,
                sections: 0,
            };
            // The first block is an SHB (its type is palindromic, so no byte order is
            // needed to recognise it); this validates it and sets the byte order.
            ng_next(&mut st, &mut buf, &mut r)?;
            // Read on to the first IDB, as libpcap does, so that `link_type(0)` is known
            // before the first packet (a writer for the copy needs it). A packet block
            // stops the look-ahead unread: `next_packet` reports it as `NoInterface`.
            while st.interfaces.is_empty() && !ng_packet_next(&st, &mut buf, &mut r)? {
                if let Step::Eof = ng_next(&mut st, &mut buf, &mut r)? {
                    break;
                }
            }
            State::Pcapng(st)
        } else if pcap::magic(first4).is_some() {
            let avail = buf
                .fill(&mut r, FILE_HEADER_LEN)
                .map_err(|e| io_err(0, e))?;
            if avail < FILE_HEADER_LEN {
                return Err(truncated(0, "the pcap file header", FILE_HEADER_LEN, avail));
            }
            let h = crate::bytes::array::<FILE_HEADER_LEN>(buf.bytes(), 0);
            let h = pcap::parse_file_header(&h).map_err(|k| Error::new(0, k))?;
            buf.consume(FILE_HEADER_LEN);
            State::Pcap(PcapState {
                order: h.order,
                nanos: h.nanos,
                lengths: h.lengths,
                link: h.link,
                snaplen: h.snaplen,
                effective_snaplen: h.effective_snaplen(),
            })
        } else {
            return Err(Error::new(
                0,
                ErrorKind::BadMagic(u32::from_be_bytes(first4)),
            ));
        };
        Ok(Self {
            reader: r,
            buf,
            state,
            done: false,
        })
    }

    pub const fn format(&self) -> Format {
        match &self.state {
            State::Pcap(st) if st.nanos => Format::PcapNs,
            State::Pcap(_) => Format::PcapUs,
            State::Pcapng(_) => Format::Pcapng,
        }
    }

    /// Byte order of the file (pcap) or of the current section (pcapng).
    pub const fn byte_order(&self) -> ByteOrder {
        match &self.state {
            State::Pcap(st) => st.order,
            State::Pcapng(st) => st.order,
        }
    }

    /// The next packet, `Ok(None)` at the end of the input (or after an error). Every
    /// packet before a damaged record is returned before the error.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, Error> {
        Ok(self.advance()?.map(|f| f.packet(self.buf.data())))
    }

    /// [`Self::next_packet`] together with the packet's link type. The packet borrows
    /// the reader, so `link_type()` cannot be called while it is alive; this is the way
    /// to dispatch on the link type of multi-interface pcapng files.
    pub fn next_packet_with_link_type(&mut self) -> Result<Option<(Packet<'_>, LinkType)>, Error> {
        let Some(f) = self.advance()? else {
            return Ok(None);
        };
        // `advance` only returns packets of known interfaces.
        let link = self.link_type(f.interface).unwrap_or(LinkType::NULL);
        Ok(Some((f.packet(self.buf.data()), link)))
    }

    fn advance(&mut self) -> Result<Option<Found>, Error> {
        if self.done {
            return Ok(None);
        }
        let r = match &mut self.state {
            State::Pcap(st) => pcap_next(st, &mut self.buf, &mut self.reader),
            State::Pcapng(st) => loop {
                match ng_next(st, &mut self.buf, &mut self.reader) {
                    Ok(Step::Packet(f)) => break Ok(Some(f)),
                    Ok(Step::Eof) => break Ok(None),
                    Ok(Step::Other) => {}
                    Err(e) => break Err(e),
                }
            },
        };
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
        }
        r
    }

    /// Link type of an interface: pcap has only interface 0; pcapng has the interfaces
    /// whose IDBs have been read so far.
    pub fn link_type(&self, interface: u32) -> Option<LinkType> {
        match &self.state {
            State::Pcap(st) => (interface == 0).then_some(st.link),
            State::Pcapng(st) => st.interfaces.get(interface as usize).map(|i| i.link),
        }
    }

    /// Snapshot length of an interface as the file states it (0 can mean "unlimited").
    pub fn snaplen(&self, interface: u32) -> Option<u32> {
        match &self.state {
            State::Pcap(st) => (interface == 0).then_some(st.snaplen),
            State::Pcapng(st) => st.interfaces.get(interface as usize).map(|i| i.snaplen),
        }
    }

    /// Number of interfaces known so far (pcap: always 1).
    pub fn interface_count(&self) -> u32 {
        match &self.state {
            State::Pcap(_) => 1,
            State::Pcapng(st) => u32::try_from(st.interfaces.len()).unwrap_or(u32::MAX),
        }
    }

    /// Number of pcapng sections seen so far (pcap: always 1).
    pub const fn section_count(&self) -> u32 {
        match &self.state {
            State::Pcap(_) => 1,
            State::Pcapng(st) => st.sections,
        }
    }

    /// Bytes of the input consumed so far: the start of the next record or block.
    pub const fn offset(&self) -> u64 {
        self.buf.pos()
    }
}

impl Found {
    fn packet(self, data: &[u8]) -> Packet<'_> {
        Packet {
            ts_sec: self.ts_sec,
            ts_nsec: self.ts_nsec,
            orig_len: self.orig_len,
            data: data.get(self.range).unwrap_or_default(),
            interface: self.interface,
        }
    }
}

fn io_err(offset: u64, e: std::io::Error) -> Error {
    Error::new(offset, ErrorKind::Io(e))
}

fn truncated(offset: u64, what: &'static str, needed: usize, available: usize) -> Error {
    Error::new(
        offset,
        ErrorKind::Truncated {
            what,
            needed: needed as u64,
            available: available as u64,
        },
    )
}

/// The pcap hot path: one record header, one bounds check, one slice.
#[inline]
fn pcap_next<R: Read>(st: &PcapState, buf: &mut Buffer, r: &mut R) -> Result<Option<Found>, Error> {
    let at = buf.pos();
    let avail = buf.fill(r, RECORD_HEADER_LEN).map_err(|e| io_err(at, e))?;
    if avail == 0 {
        return Ok(None);
    }
    if avail < RECORD_HEADER_LEN {
        return Err(truncated(
            at,
            "a pcap record header",
            RECORD_HEADER_LEN,
            avail,
        ));
    }
    let h = pcap::parse_record_header(buf.bytes(), st.order, st.lengths);
    if h.caplen > MAX_PACKET_LEN {
        return Err(Error::new(
            at,
            ErrorKind::PacketTooLarge { caplen: h.caplen },
        ));
    }
    let total = RECORD_HEADER_LEN + h.caplen as usize;
    let avail = buf.fill(r, total).map_err(|e| io_err(at, e))?;
    if avail < total {
        return Err(truncated(
            at,
            "a pcap record (header and packet data)",
            total,
            avail,
        ));
    }
    // libpcap cuts records longer than the file's snapshot length to it (a fuzzed or
    // mis-written file); doing the same keeps filters and dissectors in step with tcpdump.
    let keep = h.caplen.min(st.effective_snaplen) as usize;
    let data_at = buf.start() + RECORD_HEADER_LEN;
    let found = Found {
        range: data_at..data_at + keep,
        ts_sec: u64::from(h.ts_sec),
        ts_nsec: pcap::frac_to_nanos(h.ts_frac, st.nanos),
        orig_len: h.orig_len,
        interface: 0,
    };
    buf.consume(total);
    Ok(Some(found))
}

enum Step {
    Packet(Found),
    /// A block that is not a packet (SHB, IDB, or one we skip).
    Other,
    Eof,
}

/// Whether the next block is a packet block (or the input ends, or is cut short: either
/// way, there is nothing to look ahead at).
fn ng_packet_next<R: Read>(st: &NgState, buf: &mut Buffer, r: &mut R) -> Result<bool, Error> {
    let at = buf.pos();
    let avail = buf.fill(r, 8).map_err(|e| io_err(at, e))?;
    if avail < 8 {
        return Ok(true);
    }
    let block_type = st.order.u32(buf.bytes(), 0);
    Ok(matches!(block_type, BT_EPB | BT_SPB | BT_PB))
}

/// Reads one pcapng block.
fn ng_next<R: Read>(st: &mut NgState, buf: &mut Buffer, r: &mut R) -> Result<Step, Error> {
    let at = buf.pos();
    let avail = buf.fill(r, 12).map_err(|e| io_err(at, e))?;
    if avail == 0 {
        return Ok(Step::Eof);
    }
    if avail < 8 {
        return Err(truncated(at, "a pcapng block header", 8, avail));
    }
    let head = buf.bytes();
    let raw_type = pcapng::peek4(head, 0);
    let is_shb = u32::from_le_bytes(raw_type) == BT_SHB;
    // An SHB announces the byte order of the section it starts, including its own length.
    let order = if is_shb {
        if avail < 12 {
            return Err(truncated(at, pcapng::block_name(BT_SHB), 12, avail));
        }
        pcapng::section_byte_order(pcapng::peek4(head, 8)).map_err(|k| Error::new(at, k))?
    } else {
        st.order
    };
    let block_type = order.u32(head, 0);
    let length = order.u32(head, 4);
    pcapng::check_block_len(block_type, length).map_err(|k| Error::new(at, k))?;
    let parsed = matches!(block_type, BT_SHB | BT_IDB | BT_EPB | BT_SPB | BT_PB);
    if parsed && length > pcapng::MAX_PARSED_BLOCK_LEN {
        return Err(Error::new(
            at,
            ErrorKind::BlockTooLarge {
                block_type,
                length,
                max: pcapng::MAX_PARSED_BLOCK_LEN,
            },
        ));
    }
    let len = length as usize;
    if !parsed && len > buf.capacity() {
        return skip_block(buf, r, at, block_type, length, order);
    }
    let avail = buf.fill(r, len).map_err(|e| io_err(at, e))?;
    if avail < len {
        return Err(truncated(at, pcapng::block_name(block_type), len, avail));
    }
    let block = &buf.bytes()[..len];
    let trailer = order.u32(block, len - 4);
    if trailer != length {
        return Err(Error::new(
            at,
            ErrorKind::BlockLengthMismatch {
                block_type,
                header: length,
                trailer,
            },
        ));
    }
    let step = match block_type {
        BT_SHB => {
            pcapng::check_shb_version(block, order).map_err(|k| Error::new(at, k))?;
            st.order = order;
            st.section_base = st.interfaces.len();
            st.sections += 1;
            Step::Other
        }
        BT_IDB => {
            let i = pcapng::parse_idb(block, order).map_err(|k| Error::new(at, k))?;
            st.interfaces.push(i);
            Step::Other
        }
        BT_EPB | BT_PB | BT_SPB => {
            let in_section = st.interfaces.len() - st.section_base;
            let fields = if block_type == BT_SPB {
                let Some(first) = st.interfaces.get(st.section_base) else {
                    return Err(Error::new(at, ErrorKind::NoInterface));
                };
                pcapng::parse_spb(block, order, first.snaplen)
            } else {
                pcapng::parse_epb_or_pb(block, block_type, order)
            }
            .map_err(|k| Error::new(at, k))?;
            let local = fields.interface.unwrap_or(0);
            let global = match usize::try_from(local) {
                Ok(l) if l < in_section => st.section_base + l,
                _ if in_section == 0 => return Err(Error::new(at, ErrorKind::NoInterface)),
                _ => return Err(Error::new(at, ErrorKind::UnknownInterface(local))),
            };
            let iface = st.interfaces[global];
            let (ts_sec, ts_nsec) =
                pcapng::timestamp(fields.ts, iface.units_per_sec, iface.ts_offset)
                    .map_err(|k| Error::new(at, k))?;
            let data_at = buf.start() + fields.data_at;
            Step::Packet(Found {
                range: data_at..data_at + fields.caplen as usize,
                ts_sec,
                ts_nsec,
                orig_len: fields.orig_len,
                interface: u32::try_from(global).unwrap_or(u32::MAX),
            })
        }
        _ => Step::Other,
    };
    buf.consume(len);
    Ok(step)
}

/// Streams past a block we do not parse and that does not fit in the buffer, checking
/// only that it is complete and that its trailer repeats its length.
fn skip_block<R: Read>(
    buf: &mut Buffer,
    r: &mut R,
    at: u64,
    block_type: u32,
    length: u32,
    order: ByteOrder,
) -> Result<Step, Error> {
    let body = u64::from(length) - 4;
    let skipped = buf.skip(r, body).map_err(|e| io_err(at, e))?;
    let avail = buf.fill(r, 4).map_err(|e| io_err(at, e))?;
    if skipped < body || avail < 4 {
        let got = skipped + avail.min(4) as u64;
        return Err(Error::new(
            at,
            ErrorKind::Truncated {
                what: pcapng::block_name(block_type),
                needed: u64::from(length),
                available: got,
            },
        ));
    }
    let trailer = order.u32(buf.bytes(), 0);
    if trailer != length {
        return Err(Error::new(
            at,
            ErrorKind::BlockLengthMismatch {
                block_type,
                header: length,
                trailer,
            },
        ));
    }
    buf.consume(4);
    Ok(Step::Other)
}
