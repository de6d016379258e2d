//! Downloads: a range of a stream as pcap or pcapng, streamed straight from the store
//! through [`wirecap_query::Export`] (the one export the CLI uses too).
//!
//! ```text
//!  Export::pieces ──► blocking producer ──bounded channel (4 pieces)──► HTTP body
//!  (verified, mapped     (gzip/zstd)           ▲ a slow client stops the producer
//!   chunks; filter)
//! ```
//!
//! * **pcap, unfiltered, identity encoding** (the manual's downloads): the size is known
//!   ([`Export::exact_len`]), so the answer has an exact `Content-Length`, an `ETag`, and
//!   honours `Range` (206, one range) for resuming. Only the requested bytes are read,
//!   and they go to the socket as the store's mapped chunk bytes, without a copy.
//! * **pcapng** (`format=pcapng` or `Accept: application/x-pcapng`), **filtered**
//!   (`Filter=`, `FilterBPF=`; both given means both must match, as in the UI's analysis
//!   and `wirecap export --filter --bpf`) or **compressed** (`Accept-Encoding: zstd` or
//!   `gzip`, unless `compress=none`) answers are chunked: their size is not known before
//!   they are written.
//! * `x-wirecap-packets` gives the packets of an unfiltered download; a filtered one
//!   leaves it out (its count is known only once the whole range was filtered, after
//!   the headers are gone) and is named `NAME_filtered_HASH`, HASH being a short hash of
//!   the filter text, so two filtered downloads of one stream do not overwrite each other.
//! * **Damage is never served as data**: every chunk is checked against its CRC before
//!   its bytes leave the store. Damage found before the first byte is a 500 saying so;
//!   found later, the body ends with an error, so the client sees a broken transfer
//!   rather than a complete-looking file.
//! * A stream being captured can be downloaded at any time: the reader's snapshot is a
//!   consistent prefix of it.
//! * A **search** across streams ([`Search`], `GET /api/v1/search`) is answered the same
//!   way: both are a [`Source`] of pieces.
//! * At most [`MAX_DOWNLOADS`] at once; more get 503 with `Retry-After`.

use std::io::{self, Write};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
pub use wirecap_query::Format;
use wirecap_query::search::Search;
use wirecap_query::{Export, Piece};

use wirecap_appliance::short;

use crate::error::ApiError;

/// Most downloads served at once.
pub const MAX_DOWNLOADS: usize = 64;
/// Bytes per compressed body piece.
const PIECE: usize = 1 << 20;
/// Pieces in flight between the producer and the connection.
const DEPTH: usize = 4;
/// Pieces read before the answer's status is chosen: damage in them is a clear 500
/// instead of a transfer cut after its headers said 200.
const LOOKAHEAD: usize = 2;

pub fn extension(f: Format) -> &'static str {
    match f {
        Format::Pcap => "pcap",
        Format::Pcapng => "pcapng",
    }
}

pub fn content_type(f: Format) -> &'static str {
    match f {
        Format::Pcap => "application/vnd.tcpdump.pcap",
        Format::Pcapng => "application/x-pcapng",
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

/// Compiles `Filter=` (the appliance language) and `FilterBPF=` (tcpdump syntax) into
/// one filter; when both are given a packet must match both.
pub fn compile_filter(
    appliance: Option<&str>,
    bpf: Option<&str>,
    link: wirecap_pcap::LinkType,
    now_ns: u64,
    names: (&'static str, &'static str),
) -> Result<Option<wirecap_query::Filter>, ApiError> {
    wirecap_query::compile_named(
        appliance,
        bpf,
        link,
        wirecap_query::today_utc(now_ns),
        names,
    )
    .map_err(|e| ApiError::bad_request(format!("filter error in {e}")))
}

/// The file name of a filtered download of `base`: the filter text's short hash tells
/// two filtered downloads of one range apart, and both from the unfiltered one.
pub fn filtered_name(base: &str, appliance: Option<&str>, bpf: Option<&str>) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(appliance.unwrap_or("").trim().as_bytes());
    h.update([0]);
    h.update(bpf.unwrap_or("").trim().as_bytes());
    let d = h.finalize();
    let hex: String = d[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{base}_filtered_{hex}")
}

/// The answer to a read of stream `stream` that failed before anything was sent:
/// damage says so and how to look into it; other store errors keep their usual status.
pub fn read_failure(e: wirecap_query::Error, stream: &str) -> ApiError {
    match e {
        wirecap_query::Error::Store(se) => store_failure(se, stream),
        other => {
            tracing::error!(stream, "download failed: {other}");
            ApiError::internal("the download failed; see the server log")
        }
    }
}

/// [`read_failure`] for an error of the store itself (opening the stream).
pub fn store_failure(e: wirecap_store::Error, stream: &str) -> ApiError {
    if e.is_damage() {
        tracing::error!(stream, what = %e, "download refused: the stream is damaged");
        return ApiError::internal(format!(
            "stream {stream:?} is damaged and cannot be downloaded: {e}. Run `wirecap verify {stream}` on the server for the damage, `wirecap recover` to rebuild its index"
        ));
    }
    ApiError::from(e)
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

/// What a download streams: one stream's [`Export`], or a [`Search`] across streams.
pub trait Source: Send + 'static {
    type Pieces: Iterator<Item = wirecap_query::Result<Piece>> + Send + 'static;
    /// The body's size when it is known before it is written (then `Range` works).
    fn exact_len(&self) -> Option<u64>;
    fn pieces(&self) -> Self::Pieces;
    /// Bytes `[skip, skip + take)`; only when [`Self::exact_len`] is known.
    fn byte_range(&self, skip: u64, take: u64) -> wirecap_query::Result<Self::Pieces>;
}

/// `Source` for a type whose own methods of the same names do the work.
macro_rules! source {
    ($t:ty, $pieces:ty) => {
        impl Source for $t {
            type Pieces = $pieces;
            fn exact_len(&self) -> Option<u64> {
                Self::exact_len(self)
            }
            fn pieces(&self) -> Self::Pieces {
                Self::pieces(self)
            }
            fn byte_range(&self, skip: u64, take: u64) -> wirecap_query::Result<Self::Pieces> {
                Self::byte_range(self, skip, take)
            }
        }
    };
}
source!(Export, wirecap_query::Pieces);
source!(Search, wirecap_query::search::SearchPieces);

/// One download, ready to be answered.
pub struct Download<S: Source = Export> {
    pub export: S,
    pub format: Format,
    pub encoding: Encoding,
    /// The stream's name (for the log and the `ETag`).
    pub stream: String,
    /// Names the first and end packet of the range (for the `ETag`).
    pub packet_range: (u64, u64),
    /// Packets in the file, when known before it is written.
    pub packets: Option<u64>,
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

type BodyPiece = Result<Bytes, io::Error>;

fn body_from(rx: mpsc::Receiver<BodyPiece>) -> Body {
    let s = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Body::from_stream(s)
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "client went away")
}

/// A `Write` that sends what it is given to the body channel in pieces; fails with
/// `BrokenPipe` once the client has gone.
struct ChannelWriter {
    tx: mpsc::Sender<BodyPiece>,
    buf: BytesMut,
    sent: u64,
}

impl ChannelWriter {
    fn new(tx: mpsc::Sender<BodyPiece>) -> Self {
        Self {
            tx,
            buf: BytesMut::with_capacity(PIECE),
            sent: 0,
        }
    }
    fn send(&mut self, b: Bytes) -> io::Result<()> {
        self.sent += b.len() as u64;
        self.tx.blocking_send(Ok(b)).map_err(|_| gone())
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

    /// Sends `p`: an uncompressed piece goes to the body as it is (mapped store bytes
    /// stay uncopied), a compressed one through the encoder.
    fn put(&mut self, p: Piece) -> io::Result<()> {
        match self {
            Self::Identity(w) => w.send(Bytes::from_owner(p)),
            Self::Gzip(w) => w.write_all(&p),
            Self::Zstd(w) => w.write_all(&p),
        }
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
pub async fn respond<S: Source>(
    d: Download<S>,
    req: &HeaderMap,
    slots: &Slots,
    metrics: Option<wirecap_appliance::metrics::Metrics>,
) -> Result<Response, ApiError> {
    let permit = slots.take()?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(d.format)),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        disposition(&format!("{}.{}", d.filename, extension(d.format))),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(n) = d.packets {
        headers.insert("x-wirecap-packets", HeaderValue::from(n));
    }
    // Bytes [skip, skip + take) of a file of known length, or the whole file.
    let (status, part) = match (d.export.exact_len(), d.encoding) {
        (Some(len), Encoding::Identity) => {
            let etag = format!("\"{}-{}-{}\"", d.stream, d.packet_range.0, d.packet_range.1);
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
            (status, Some((skip, take)))
        }
        _ => {
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
            (StatusCode::OK, None)
        }
    };
    let (tx, rx) = mpsc::channel::<BodyPiece>(DEPTH);
    let (started_tx, started_rx) = oneshot::channel::<Result<(), wirecap_query::Error>>();
    let (export, encoding, stream) = (d.export, d.encoding, d.stream.clone());
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let pieces = match part {
            Some((skip, take)) => export.byte_range(skip, take),
            None => Ok(export.pieces()),
        };
        let mut pieces = match pieces {
            Ok(p) => p,
            Err(e) => {
                let _ = started_tx.send(Err(e));
                return;
            }
        };
        let mut ahead = Vec::with_capacity(LOOKAHEAD);
        while ahead.len() < LOOKAHEAD {
            match pieces.next() {
                None => break,
                Some(Ok(p)) => ahead.push(p),
                Some(Err(e)) => {
                    let _ = started_tx.send(Err(e));
                    return;
                }
            }
        }
        if started_tx.send(Ok(())).is_err() {
            return;
        }
        let mut sent = 0u64;
        let res = produce(
            ahead.into_iter().map(Ok).chain(pieces),
            encoding,
            &tx,
            &mut sent,
        );
        if let Some(m) = &metrics {
            m.download_bytes(sent);
        }
        let want = part.map(|(_, take)| take);
        finish(res, sent, want, &tx, &stream);
    });
    match started_rx.await {
        Ok(Ok(())) => Ok((status, headers, body_from(rx)).into_response()),
        Ok(Err(e)) => Err(read_failure(e, &d.stream)),
        Err(_) => Err(ApiError::internal(
            "the download failed to start; see the server log",
        )),
    }
}

/// Why a download stopped early.
enum Stop {
    Read(wirecap_query::Error),
    Write(io::Error),
}

/// Sends `pieces` to the body through `encoding`; `sent` counts the body bytes.
fn produce(
    pieces: impl Iterator<Item = wirecap_query::Result<Piece>>,
    encoding: Encoding,
    tx: &mpsc::Sender<BodyPiece>,
    sent: &mut u64,
) -> Result<(), Stop> {
    let mut enc = Encoder::new(encoding, ChannelWriter::new(tx.clone())).map_err(Stop::Write)?;
    let res = (|| {
        for p in pieces {
            enc.put(p.map_err(Stop::Read)?).map_err(Stop::Write)?;
        }
        Ok(())
    })();
    let sent_now = |e: &Encoder| match e {
        Encoder::Identity(w) => w.sent,
        Encoder::Gzip(g) => g.get_ref().sent,
        Encoder::Zstd(z) => z.get_ref().sent,
    };
    if res.is_err() {
        *sent = sent_now(&enc);
        return res;
    }
    let w = enc.finish().map_err(Stop::Write)?;
    *sent = w.sent;
    Ok(())
}

fn finish(
    res: Result<(), Stop>,
    sent: u64,
    want: Option<u64>,
    tx: &mpsc::Sender<BodyPiece>,
    stream: &str,
) {
    match res {
        Ok(()) if want.is_none_or(|w| w == sent) => {
            tracing::debug!(stream, bytes = sent, "download done")
        }
        Ok(()) => {
            // The index promised more than the segments hold: never end a body short
            // silently, the client must see a broken transfer.
            tracing::error!(stream, sent, want, "download ended short");
            let _ = tx.blocking_send(Err(io::Error::other("stream ended short")));
        }
        Err(Stop::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
            tracing::debug!(stream, bytes = sent, "client went away");
        }
        Err(Stop::Write(e)) => {
            tracing::error!(stream, "download failed after {sent} bytes: {e}");
            let _ = tx.blocking_send(Err(e));
        }
        Err(Stop::Read(e)) => {
            let damaged = matches!(&e, wirecap_query::Error::Store(se) if se.is_damage());
            if damaged {
                tracing::error!(
                    stream,
                    what = %e,
                    "download cut after {sent} bytes: the stream is damaged; run `wirecap verify {stream}`"
                );
            } else {
                tracing::error!(stream, what = %e, "download failed after {sent} bytes");
            }
            // An error ends the body without its end: the client sees a broken transfer.
            let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
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
