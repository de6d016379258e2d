//! Downloads: a range of a stream as pcap or pcapng, streamed straight from the store.
//!
//! ```text
//!  segment files ──mmap──► blocking producer ──bounded channel (4 × 1 MiB)──► HTTP body
//!                             (filter, pcapng, gzip/zstd)        ▲ a slow client stops the producer
//! ```
//!
//! * **pcap, unfiltered, identity encoding** (the manual's downloads): the size is known
//!   from the index, so the answer has an exact `Content-Length`, an `ETag`, and honours
//!   `Range` (206, one range) for resuming. Only the requested bytes are read.
//! * **pcapng** (`format=pcapng` or `Accept: application/x-pcapng`), **filtered**
//!   (`Filter=`, `FilterBPF=`) or **compressed** (`Accept-Encoding: zstd` or `gzip`, unless
//!   `compress=none`) answers are chunked: their size is not known before they are written.
//! * A stream being captured can be downloaded at any time: the reader's snapshot is a
//!   consistent prefix of it.
//! * At most [`MAX_DOWNLOADS`] at once; more get 503 with `Retry-After`.

use std::fs::File;
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use wirecap_filter::summary::ChunkSummary;
use wirecap_filter::{CompileOptions, Date, Filter};
use wirecap_pcap::{LinkType, PCAP_NS_HEADER_LEN, PcapNsWriter, PcapngWriter, pcap_ns_header};
use wirecap_store::{PacketRange, StreamReader};

use wirecap_appliance::short;

use crate::error::ApiError;

/// Most downloads served at once.
pub const MAX_DOWNLOADS: usize = 64;
/// Bytes per body piece.
const PIECE: usize = 1 << 20;
/// Bytes per piece taken straight from a mapped segment (no memory of ours).
const MAP_PIECE: usize = 4 << 20;
/// Pieces in flight between the producer and the connection.
const DEPTH: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap,
    Pcapng,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Pcap => "pcap",
            Self::Pcapng => "pcapng",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Pcap => "application/vnd.tcpdump.pcap",
            Self::Pcapng => "application/x-pcapng",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

/// `format=pcap|pcapng`, else the `Accept` header.
pub fn negotiate_format(query: Option<&str>, accept: Option<&str>) -> Result<Format, ApiError> {
    match query {
        Some("pcap") => return Ok(Format::Pcap),
        Some("pcapng") => return Ok(Format::Pcapng),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format {:?}: expected pcap or pcapng",
                short(other)
            )));
        }
        None => {}
    }
    let wants_ng = accept.is_some_and(|a| {
        a.split(',')
            .any(|t| t.trim().starts_with("application/x-pcapng"))
    });
    Ok(if wants_ng {
        Format::Pcapng
    } else {
        Format::Pcap
    })
}

/// `compress=none|gzip|zstd`, else `Accept-Encoding` (zstd preferred, `q=0` honoured).
pub fn negotiate_encoding(
    query: Option<&str>,
    accept_encoding: Option<&str>,
) -> Result<Encoding, ApiError> {
    match query {
        Some("none" | "identity") => return Ok(Encoding::Identity),
        Some("gzip") => return Ok(Encoding::Gzip),
        Some("zstd") => return Ok(Encoding::Zstd),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "compress {:?}: expected none, gzip or zstd",
                short(other)
            )));
        }
        None => {}
    }
    let Some(ae) = accept_encoding else {
        return Ok(Encoding::Identity);
    };
    let accepts = |name: &str| {
        ae.split(',').any(|t| {
            let mut parts = t.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            coding.eq_ignore_ascii_case(name) && !refused
        })
    };
    Ok(if accepts("zstd") {
        Encoding::Zstd
    } else if accepts("gzip") {
        Encoding::Gzip
    } else {
        Encoding::Identity
    })
}

/// Compiles `Filter=` (the appliance language) or `FilterBPF=` (tcpdump syntax).
pub fn compile_filter(
    appliance: Option<&str>,
    bpf: Option<&str>,
    link: LinkType,
    now_ns: u64,
) -> Result<Option<Filter>, ApiError> {
    let bad = |e: wirecap_filter::FilterError| ApiError::bad_request(format!("filter: {e}"));
    match (
        appliance.filter(|s| !s.trim().is_empty()),
        bpf.filter(|s| !s.trim().is_empty()),
    ) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "give Filter (appliance language) or FilterBPF (tcpdump syntax), not both",
        )),
        (Some(f), None) => {
            let today = Date::from_days_since_epoch((now_ns / 86_400_000_000_000) as i64);
            Filter::appliance(f, link, &CompileOptions::new(today))
                .map(Some)
                .map_err(bad)
        }
        (None, Some(b)) => Filter::bpf(b, link).map(Some).map_err(bad),
        (None, None) => Ok(None),
    }
}

/// A byte range request, resolved against the body's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No (usable) `Range`: the whole body.
    Full,
    /// Bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// Nothing of the body is in the range: 416.
    Unsatisfiable,
}

/// Reads a `Range: bytes=…` header for a body of `len` bytes. Several ranges, or
/// anything that is not a byte range, are served as the whole body (RFC 9110 allows it).
pub fn parse_range(h: &str, len: u64) -> ByteRange {
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return ByteRange::Full;
    };
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.trim().is_empty(), num(a), num(b)) {
        // bytes=-N: the last N bytes.
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                ByteRange::Unsatisfiable
            } else {
                ByteRange::Partial {
                    start: len.saturating_sub(n),
                    end: len - 1,
                }
            }
        }
        (false, Some(start), end) if b.trim().is_empty() || end.is_some() => {
            if start >= len {
                return ByteRange::Unsatisfiable;
            }
            let end = end.map_or(len - 1, |e| e.min(len - 1));
            if end < start {
                return ByteRange::Full;
            }
            ByteRange::Partial { start, end }
        }
        _ => ByteRange::Full,
    }
}

/// One download, ready to be answered.
pub struct Download {
    pub reader: StreamReader,
    pub range: PacketRange,
    pub format: Format,
    pub filter: Option<Filter>,
    pub encoding: Encoding,
    /// File name without extension.
    pub filename: String,
}

/// Hands out download slots.
#[derive(Debug, Clone)]
pub struct Slots(Arc<Semaphore>);

impl Default for Slots {
    fn default() -> Self {
        Self(Arc::new(Semaphore::new(MAX_DOWNLOADS)))
    }
}

impl Slots {
    fn take(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.0.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{MAX_DOWNLOADS} downloads are running; try again shortly"),
            )
        })
    }
}

type Piece = Result<Bytes, io::Error>;

fn body_from(rx: mpsc::Receiver<Piece>) -> Body {
    let s = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Body::from_stream(s)
}

/// A `Write` that sends what it is given to the body channel in pieces; fails with
/// `BrokenPipe` once the client has gone.
struct ChannelWriter {
    tx: mpsc::Sender<Piece>,
    buf: BytesMut,
    sent: u64,
}

impl ChannelWriter {
    fn new(tx: mpsc::Sender<Piece>) -> Self {
        Self {
            tx,
            buf: BytesMut::with_capacity(PIECE),
            sent: 0,
        }
    }
    fn send(&mut self, b: Bytes) -> io::Result<()> {
        self.sent += b.len() as u64;
        self.tx
            .blocking_send(Ok(b))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
    fn push(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let b = self.buf.split().freeze();
        self.buf.reserve(PIECE);
        self.send(b)
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PIECE {
            self.push()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.push()
    }
}

/// The compressor, if any, in front of the channel.
enum Encoder {
    Identity(ChannelWriter),
    Gzip(flate2::write::GzEncoder<ChannelWriter>),
    Zstd(zstd::stream::write::Encoder<'static, ChannelWriter>),
}

impl Encoder {
    fn new(e: Encoding, w: ChannelWriter) -> io::Result<Self> {
        Ok(match e {
            Encoding::Identity => Self::Identity(w),
            Encoding::Gzip => Self::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::fast(),
            )),
            Encoding::Zstd => Self::Zstd(zstd::stream::write::Encoder::new(w, 1)?),
        })
    }
    fn finish(self) -> io::Result<ChannelWriter> {
        let mut w = match self {
            Self::Identity(w) => w,
            Self::Gzip(g) => g.finish()?,
            Self::Zstd(z) => z.finish()?,
        };
        w.flush()?;
        Ok(w)
    }
}

impl Write for Encoder {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Self::Identity(w) => w.write(b),
            Self::Gzip(w) => w.write(b),
            Self::Zstd(w) => w.write(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Identity(w) => w.flush(),
            Self::Gzip(w) => w.flush(),
            Self::Zstd(w) => w.flush(),
        }
    }
}

/// One segment file, mapped read-only: pieces of the body are `Bytes` that borrow the
/// mapping, so the socket (or TLS) reads the page cache directly, without a copy into a
/// buffer of ours. Falls back to `read_at` when the file cannot be mapped.
enum Segment {
    Mapped(Bytes),
    File(File),
}

impl Segment {
    fn open(path: &std::path::Path) -> io::Result<Self> {
        let f = File::open(path)?;
        // SAFETY: a mapping is unsound only if the file shrinks under it while mapped
        // pages are touched. Segment files only grow while the server runs (the store
        // appends; recovery, the one place that cuts a torn tail, runs before the server
        // serves and only beyond the last indexed chunk), and this function only ever
        // reads ranges that the index recorded after their bytes were written. Deleting
        // a stream unlinks its files, which leaves existing mappings valid.
        match unsafe { memmap2::Mmap::map(&f) } {
            Ok(m) => {
                let _ = m.advise(memmap2::Advice::Sequential);
                Ok(Self::Mapped(Bytes::from_owner(m)))
            }
            Err(_) => Ok(Self::File(f)),
        }
    }

    /// Bytes `[at, at + n)` of the file.
    fn piece(&self, at: u64, n: usize) -> io::Result<Bytes> {
        match self {
            Self::Mapped(b) => {
                let (a, e) = (at as usize, at as usize + n);
                if e > b.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "segment file is shorter than its index says",
                    ));
                }
                Ok(b.slice(a..e))
            }
            Self::File(f) => {
                let mut buf = BytesMut::zeroed(n);
                f.read_exact_at(&mut buf, at)?;
                Ok(buf.freeze())
            }
        }
    }
}

/// Segments a download maps before it sends anything (the rest are mapped as reached).
const HELD_SEGMENTS: u32 = 64;

/// Maps the first segments of `range` at once: retention may trim the stream's head
/// while the download runs, and a mapped file stays readable after it is unlinked, so a
/// download that started is not cut by a trim of what it covers.
fn hold_segments(
    reader: &StreamReader,
    range: PacketRange,
) -> std::collections::BTreeMap<u32, Segment> {
    let mut held = std::collections::BTreeMap::new();
    let Some(Ok(first)) = reader.slices(range).next() else {
        return held;
    };
    for n in first.segment..first.segment.saturating_add(HELD_SEGMENTS) {
        match Segment::open(&reader.dir().join(wirecap_store::layout::segment(n))) {
            Ok(seg) => {
                held.insert(n, seg);
            }
            Err(_) => break,
        }
    }
    held
}

/// Sends bytes `[skip, skip + take)` of `range` as a pcap file, reading only those.
/// `emit` fails when the client has gone, which stops the producer.
fn produce_raw(
    reader: &StreamReader,
    range: PacketRange,
    skip: u64,
    take: u64,
    emit: &mut dyn FnMut(Bytes) -> io::Result<()>,
) -> io::Result<()> {
    let end = skip.saturating_add(take);
    let header = pcap_ns_header(reader.link_type(), reader.meta().snaplen);
    let mut pos = 0u64;
    // The part of [a, a+len) that lies in [skip, end), as offsets into the part.
    let clip = |a: u64, len: u64| -> Option<(u64, u64)> {
        let from = skip.max(a);
        let to = end.min(a + len);
        (from < to).then(|| (from - a, to - from))
    };
    if let Some((off, n)) = clip(0, PCAP_NS_HEADER_LEN as u64) {
        emit(Bytes::copy_from_slice(
            &header[off as usize..(off + n) as usize],
        ))?;
    }
    pos += PCAP_NS_HEADER_LEN as u64;
    let mut held = hold_segments(reader, range);
    let mut open: Option<(u32, Segment)> = None;
    for s in reader.slices(range) {
        if pos >= end {
            break;
        }
        let s = s.map_err(|e| io::Error::other(e.to_string()))?;
        let here = pos;
        pos += s.len;
        let Some((off, mut n)) = clip(here, s.len) else {
            continue;
        };
        if open.as_ref().is_none_or(|(seg, _)| *seg != s.segment) {
            let seg = match held.remove(&s.segment) {
                Some(seg) => seg,
                None => {
                    Segment::open(&reader.dir().join(wirecap_store::layout::segment(s.segment)))?
                }
            };
            open = Some((s.segment, seg));
        }
        let Some((_, seg)) = open.as_ref() else {
            continue;
        };
        let mut at = s.offset + off;
        while n > 0 {
            let max = if matches!(seg, Segment::Mapped(_)) {
                MAP_PIECE
            } else {
                PIECE
            };
            let want = n.min(max as u64) as usize;
            let piece = seg.piece(at, want)?;
            at += want as u64;
            n -= want as u64;
            emit(piece)?;
        }
    }
    Ok(())
}

fn packet_ts(p: &wirecap_pcap::Packet<'_>) -> u64 {
    p.ts_sec
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(p.ts_nsec))
}

/// Writes `range` through `filter` in `format` into `out`.
fn produce_packets(
    reader: &StreamReader,
    range: PacketRange,
    format: Format,
    filter: Option<&Filter>,
    out: &mut Encoder,
) -> io::Result<()> {
    let link = reader.link_type();
    let snaplen = reader.meta().snaplen;
    let mut err: Option<io::Error> = None;
    let to_io = |e: wirecap_pcap::Error| io::Error::other(e.to_string());
    let keep = |p: &wirecap_pcap::Packet<'_>| {
        filter.is_none_or(|f| f.matches(packet_ts(p), p.orig_len, p.data))
    };
    // Chunks whose stored summary the filter rules out are skipped without being read.
    let may_match = |summary: &[u8]| match (filter, ChunkSummary::from_bytes(summary)) {
        (Some(f), Ok(s)) => f.may_match(&s),
        _ => true,
    };
    let walked = match format {
        Format::Pcap => {
            let mut w = PcapNsWriter::new(&mut *out, link, snaplen)?;
            reader.scan(range, may_match, |p| {
                if keep(p)
                    && let Err(e) = w.write_packet(p)
                {
                    err = Some(to_io(e));
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            })
        }
        Format::Pcapng => {
            let mut w = PcapngWriter::new(&mut *out, link, snaplen)?;
            reader.scan(range, may_match, |p| {
                if keep(p)
                    && let Err(e) = w.write_packet(p)
                {
                    err = Some(to_io(e));
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            })
        }
    };
    if let Some(e) = err {
        return Err(e);
    }
    walked
        .map(|_| ())
        .map_err(|e| io::Error::other(e.to_string()))
}

fn disposition(name: &str) -> HeaderValue {
    // Names are made of store names and digits; anything else becomes '_'.
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    HeaderValue::from_str(&format!("attachment; filename=\"{safe}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// Answers a download request.
pub fn respond(
    d: Download,
    req: &HeaderMap,
    slots: &Slots,
    metrics: Option<wirecap_appliance::metrics::Metrics>,
) -> Result<Response, ApiError> {
    let raw = d.format == Format::Pcap && d.filter.is_none() && d.encoding == Encoding::Identity;
    let permit = slots.take()?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(d.format.content_type()),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        disposition(&format!("{}.{}", d.filename, d.format.extension())),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&d.range.packets().to_string()) {
        headers.insert("x-wirecap-packets", v);
    }
    let (tx, rx) = mpsc::channel::<Piece>(DEPTH);
    let reader = d.reader;
    let range = d.range;
    if raw {
        let len = range.pcap_bytes();
        let etag = format!(
            "\"{}-{}-{}\"",
            reader.name(),
            range.first_packet,
            range.end_packet
        );
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if let Ok(v) = HeaderValue::from_str(&etag) {
            headers.insert(header::ETAG, v);
        }
        let if_range_ok = req
            .get(header::IF_RANGE)
            .is_none_or(|v| v.as_bytes() == etag.as_bytes());
        let br = match req.get(header::RANGE).and_then(|v| v.to_str().ok()) {
            Some(h) if if_range_ok => parse_range(h, len),
            _ => ByteRange::Full,
        };
        let (status, skip, take) = match br {
            ByteRange::Full => (StatusCode::OK, 0, len),
            ByteRange::Partial { start, end } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
                (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
            }
            ByteRange::Unsatisfiable => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
                return Ok((StatusCode::RANGE_NOT_SATISFIABLE, headers, "").into_response());
            }
        };
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(take));
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut sent = 0u64;
            let res = produce_raw(&reader, range, skip, take, &mut |b| {
                sent += b.len() as u64;
                tx.blocking_send(Ok(b))
                    .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
            });
            if let Some(m) = &metrics {
                m.download_bytes(sent);
            }
            finish(res, sent, take, &tx, reader.name());
        });
        return Ok((status, headers, body_from(rx)).into_response());
    }
    match d.encoding {
        Encoding::Identity => {}
        Encoding::Gzip => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        Encoding::Zstd => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("zstd"));
        }
    }
    headers.insert(
        header::VARY,
        HeaderValue::from_static("accept-encoding, accept"),
    );
    let (format, filter, encoding) = (d.format, d.filter, d.encoding);
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let run = || -> io::Result<u64> {
            let mut enc = Encoder::new(encoding, ChannelWriter::new(tx.clone()))?;
            if format == Format::Pcap && filter.is_none() {
                produce_raw(&reader, range, 0, u64::MAX, &mut |b| enc.write_all(&b))?;
            } else {
                produce_packets(&reader, range, format, filter.as_ref(), &mut enc)?;
            }
            Ok(enc.finish()?.sent)
        };
        let res = run();
        let sent = *res.as_ref().unwrap_or(&0);
        if let Some(m) = &metrics {
            m.download_bytes(sent);
        }
        finish(res.map(|_| ()), sent, sent, &tx, reader.name());
    });
    Ok((StatusCode::OK, headers, body_from(rx)).into_response())
}

fn finish(res: io::Result<()>, sent: u64, want: u64, tx: &mpsc::Sender<Piece>, name: &str) {
    match res {
        Ok(()) if sent == want => tracing::debug!(stream = name, bytes = sent, "download done"),
        Ok(()) => {
            // The index promised more than the segments hold: never end a body short
            // silently, the client must see a broken transfer.
            tracing::error!(stream = name, sent, want, "download ended short");
            let _ = tx.blocking_send(Err(io::Error::other("stream ended short")));
        }
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            tracing::debug!(stream = name, bytes = sent, "client went away");
        }
        Err(e) => {
            tracing::error!(stream = name, "download failed after {sent} bytes: {e}");
            let _ = tx.blocking_send(Err(e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            parse_range("bytes=0-9", 100),
            ByteRange::Partial { start: 0, end: 9 }
        );
        assert_eq!(
            parse_range("bytes=90-", 100),
            ByteRange::Partial { start: 90, end: 99 }
        );
        assert_eq!(
            parse_range("bytes=-10", 100),
            ByteRange::Partial { start: 90, end: 99 }
        );
        assert_eq!(
            parse_range("bytes=-1000", 100),
            ByteRange::Partial { start: 0, end: 99 }
        );
        assert_eq!(
            parse_range("bytes=50-1000", 100),
            ByteRange::Partial { start: 50, end: 99 }
        );
        assert_eq!(parse_range("bytes=100-", 100), ByteRange::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), ByteRange::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), ByteRange::Full);
        assert_eq!(parse_range("items=0-1", 100), ByteRange::Full);
        assert_eq!(parse_range("bytes=x-1", 100), ByteRange::Full);
        assert_eq!(parse_range("bytes=9-3", 100), ByteRange::Full);
        assert_eq!(
            parse_range("bytes=99999999999999999999999-", 100),
            ByteRange::Full
        );
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate_format(None, None).unwrap(), Format::Pcap);
        assert_eq!(
            negotiate_format(None, Some("application/x-pcapng, */*")).unwrap(),
            Format::Pcapng
        );
        assert_eq!(
            negotiate_format(Some("pcap"), Some("application/x-pcapng")).unwrap(),
            Format::Pcap
        );
        assert!(negotiate_format(Some("pcapx"), None).is_err());
        assert_eq!(negotiate_encoding(None, None).unwrap(), Encoding::Identity);
        assert_eq!(
            negotiate_encoding(None, Some("gzip, deflate")).unwrap(),
            Encoding::Gzip
        );
        assert_eq!(
            negotiate_encoding(None, Some("gzip, zstd")).unwrap(),
            Encoding::Zstd
        );
        assert_eq!(
            negotiate_encoding(None, Some("zstd;q=0, gzip")).unwrap(),
            Encoding::Gzip
        );
        assert_eq!(
            negotiate_encoding(Some("none"), Some("zstd")).unwrap(),
            Encoding::Identity
        );
        assert!(negotiate_encoding(Some("brotli"), None).is_err());
    }
}
