//! pcap and pcapng, read and written: the file formats wirecap imports and exports.
//!
//! This crate owns the byte layout of capture files and nothing else: it reads from any
//! [`std::io::Read`] and writes to any [`std::io::Write`], never opens files, never
//! allocates per packet on the hot path, and never guesses. What it reads:
//!
//! * pcap with microsecond (`a1b2c3d4`) and nanosecond (`a1b23c4d`) timestamps, in both
//!   byte orders, versions 2.0-2.4; the link-type field's FCS bits (26-31) are masked off
//!   as libpcap does, and a file whose reserved bits (16-25) are set is refused; a record
//!   longer than the file's snapshot length is cut to it, as libpcap does;
//! * pcapng: SHB (several sections, either byte order), IDB (with `if_tsresol`, decimal
//!   and binary, and `if_tsoffset`), EPB, SPB, the obsolete PB; every other block is
//!   skipped by its length. Unlike libpcap 1.10, interfaces of different link types or
//!   snapshot lengths are accepted and reported per packet ([`Packet::interface`],
//!   [`CaptureReader::link_type`], [`CaptureReader::next_packet_with_link_type`]).
//!
//! What it writes: pcap with nanosecond timestamps (magic `a1b23c4d`, little-endian,
//! the format of wirecap's store and downloads), and pcapng (one SHB, one IDB with
//! `if_tsresol = 9`, EPBs). Store chunks, which are pcap-ns records without a file
//! header, are built with [`pcap_record_header`] and iterated with [`records`]; other
//! crates that walk records themselves read each header with [`RecordHeader::parse_le`].
//!
//! Errors carry the byte offset at which the file went wrong; the caller adds the file
//! name. A reader that hits damage returns every packet before it first, then the error.

mod bytes;
mod error;
mod linktype;
mod read;
mod records;
mod write;

pub use bytes::ByteOrder;
pub use error::{Error, ErrorKind};
pub use linktype::LinkType;
pub use read::{CaptureReader, Format, Packet};
pub use records::{Records, records};
pub use write::{
    PCAP_NS_HEADER_LEN, PCAP_RECORD_HEADER_LEN, PcapNsWriter, PcapngWriter, RecordHeader,
    pcap_ns_header, pcap_record_header,
};

/// Largest packet the readers accept. A record that claims more is treated as
/// corruption instead of being allocated (a corrupt file may claim 4 GiB).
pub const MAX_PACKET_LEN: u32 = 256 * 1024;
