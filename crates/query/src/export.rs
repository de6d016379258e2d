//! Filtered exports: a range of a stream, or a capture file, through a filter.

use std::io::{BufWriter, Read, Write};
use std::ops::ControlFlow;

use serde::Serialize;
use wirecap_pcap::{
    CaptureReader, LinkType, MAX_PACKET_LEN, PCAP_NS_HEADER_LEN, Packet, PcapngWriter,
    pcap_ns_header, pcap_record_header,
};
use wirecap_store::{PacketRange, ScanStats, StreamReader};

use crate::{Error, Filter, Result, packet_ts};

/// Output file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// pcap with nanosecond timestamps (magic `a1b23c4d`).
    Pcap,
    /// pcapng, one interface, nanosecond timestamps.
    Pcapng,
}

/// What an export did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExportStats {
    /// Packets looked at (in chunks that were read).
    pub packets_examined: u64,
    /// Packets written.
    pub packets: u64,
    /// Bytes written (file header included).
    pub bytes: u64,
    pub chunks_read: u64,
    pub chunks_skipped: u64,
    pub bytes_read: u64,
    pub bytes_skipped: u64,
}

impl ExportStats {
    fn with_scan(mut self, s: ScanStats) -> Self {
        self.chunks_read = s.chunks_read;
        self.chunks_skipped = s.chunks_skipped;
        self.bytes_read = s.bytes_read;
        self.bytes_skipped = s.bytes_skipped;
        self
    }
}

/// Filtered pcap output is gathered into a buffer this large before each write.
const OUT_BUF: usize = 4 << 20;

/// Appends pcap-ns records to a large buffer and writes it out in big pieces: one
/// syscall per few megabytes, never per packet.
struct RecordBuf<'a, W: Write> {
    buf: Vec<u8>,
    out: &'a mut W,
    written: u64,
    err: Option<std::io::Error>,
}

impl<'a, W: Write> RecordBuf<'a, W> {
    fn new(out: &'a mut W, header: &[u8]) -> Self {
        let mut buf = Vec::with_capacity(OUT_BUF + MAX_PACKET_LEN as usize + 64);
        buf.extend_from_slice(header);
        Self {
            buf,
            out,
            written: 0,
            err: None,
        }
    }

    /// False when the output failed (the error is kept).
    #[inline]
    fn push(&mut self, p: &Packet<'_>) -> bool {
        // Records from the store and from a pcap reader have 32-bit seconds already; a
        // pcapng timestamp after 2106 cannot be written as pcap.
        let Ok(sec) = u32::try_from(p.ts_sec) else {
            self.err = Some(std::io::Error::other(format!(
                "packet time {} s is after 2106 and cannot be written as pcap",
                p.ts_sec
            )));
            return false;
        };
        let len = p.data.len() as u32;
        self.buf
            .extend_from_slice(&pcap_record_header(sec, p.ts_nsec, len, p.orig_len));
        self.buf.extend_from_slice(p.data);
        if self.buf.len() >= OUT_BUF {
            return self.flush();
        }
        true
    }

    fn flush(&mut self) -> bool {
        if let Err(e) = self.out.write_all(&self.buf) {
            self.err = Some(e);
            return false;
        }
        self.written += self.buf.len() as u64;
        self.buf.clear();
        true
    }

    fn finish(mut self) -> Result<u64> {
        if self.err.is_none() {
            self.flush();
        }
        match self.err {
            Some(e) => Err(Error::Output(e)),
            None => Ok(self.written),
        }
    }
}

/// Writes the packets of `range` that match `filter` (all of them without one) to `out`
/// as `format`. With a filter, chunks whose summary rules it out are skipped unread;
/// without one, pcap output is copied by the kernel ([`StreamReader::write_pcap`]).
pub fn export<W: Write>(
    reader: &StreamReader,
    range: PacketRange,
    filter: Option<&Filter>,
    format: Format,
    out: &mut W,
) -> Result<ExportStats> {
    let link = reader.link_type();
    let snaplen = reader.meta().snaplen;
    let mut stats = ExportStats::default();
    match (format, filter) {
        (Format::Pcap, None) => {
            stats.bytes = reader.write_pcap(range, out)?;
            stats.packets = range.packets();
            stats.packets_examined = range.packets();
            stats.bytes_read = range.end_pos - range.start_pos;
            Ok(stats)
        }
        (Format::Pcap, Some(f)) => {
            let mut w = RecordBuf::new(out, &pcap_ns_header(link, snaplen));
            let scan = reader.scan(
                range,
                |s| f.may_match(s),
                |p| {
                    stats.packets_examined += 1;
                    if f.matches(packet_ts(p), p.orig_len, p.data) {
                        stats.packets += 1;
                        if !w.push(p) {
                            return ControlFlow::Break(());
                        }
                    }
                    ControlFlow::Continue(())
                },
            )?;
            stats.bytes = w.finish()?;
            Ok(stats.with_scan(scan))
        }
        (Format::Pcapng, f) => {
            let mut w =
                PcapngWriter::new(BufWriter::with_capacity(OUT_BUF, &mut *out), link, snaplen)
                    .map_err(Error::Output)?;
            let mut err = None;
            let scan = reader.scan(
                range,
                |s| f.is_none_or(|f| f.may_match(s)),
                |p| {
                    stats.packets_examined += 1;
                    if f.is_none_or(|f| f.matches(packet_ts(p), p.orig_len, p.data)) {
                        stats.packets += 1;
                        if let Err(e) = w.write_packet(p) {
                            err = Some(e);
                            return ControlFlow::Break(());
                        }
                    }
                    ControlFlow::Continue(())
                },
            )?;
            if let Some(e) = err {
                return Err(pcap_out(e));
            }
            stats.bytes = w.offset();
            w.into_inner().flush().map_err(Error::Output)?;
            Ok(stats.with_scan(scan))
        }
    }
}

fn pcap_out(e: wirecap_pcap::Error) -> Error {
    match e.kind {
        wirecap_pcap::ErrorKind::Io(io) => Error::Output(io),
        _ => Error::Pcap(e),
    }
}

/// What [`filter_capture`] did.
#[derive(Debug, Default)]
pub struct FileFilterStats {
    pub packets_read: u64,
    pub packets: u64,
    pub bytes: u64,
    pub link_type: Option<LinkType>,
    /// The input was damaged after `packets_read` packets (those were filtered and
    /// written): the reader's error, with its byte offset.
    pub input_error: Option<wirecap_pcap::Error>,
}

/// Filters a pcap or pcapng capture into pcap with nanosecond timestamps, like
/// `tcpdump -r IN -w OUT EXPR`. The filter is compiled by `compile` once the input's
/// link type is known. A damaged input ends the output after the last whole packet
/// and is reported in [`FileFilterStats::input_error`], as tcpdump does.
pub fn filter_capture<R: Read, W: Write, C>(
    input: R,
    compile: C,
    out: &mut W,
) -> Result<FileFilterStats>
where
    C: FnOnce(LinkType) -> Result<Option<Filter>>,
{
    let mut r = CaptureReader::new(input)?;
    let mut stats = FileFilterStats::default();
    // A pcapng file's first interface fixes the link type (as libpcap does); a file
    // without any says nothing, and gives an empty pcap of Ethernet.
    let link = r.link_type(0).unwrap_or(LinkType::ETHERNET);
    stats.link_type = Some(link);
    let snaplen = match r.snaplen(0) {
        Some(0) | None => MAX_PACKET_LEN,
        Some(n) => n,
    };
    let filter = compile(link)?;
    let mut w = RecordBuf::new(out, &pcap_ns_header(link, snaplen));
    loop {
        let (p, lt) = match r.next_packet_with_link_type() {
            Ok(Some(x)) => x,
            Ok(None) => break,
            Err(e) => {
                stats.input_error = Some(e);
                break;
            }
        };
        if lt != link {
            w.finish()?;
            return Err(Error::Invalid(format!(
                "interface {} has link type {lt}, but the first has {link}; pcap output holds one link type",
                p.interface
            )));
        }
        stats.packets_read += 1;
        if filter
            .as_ref()
            .is_none_or(|f| f.matches(packet_ts(&p), p.orig_len, p.data))
        {
            stats.packets += 1;
            if !w.push(&p) {
                break;
            }
        }
    }
    stats.bytes = w.finish()?;
    debug_assert!(stats.bytes >= PCAP_NS_HEADER_LEN as u64);
    Ok(stats)
}
