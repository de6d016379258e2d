//! Which packets of a stream a request asks for (all, a time range, a split of a view) and
//! answering it with a download: shared by the manual's `/pcap/*` and the JSON API's
//! `/api/v1/streams/{name}/pcap`, which name the same parameters differently.

use axum::http::{HeaderMap, header};
use axum::response::Response;
use wirecap_appliance::short;
use wirecap_store::timefmt::parse_time;
use wirecap_store::{PacketRange, StreamReader, View, now_ns};

use crate::download;
use crate::error::ApiError;
use crate::query::Query;
use crate::respond::blocking;
use crate::state::Shared;

/// Which packets of a stream a download wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Selection {
    All,
    Time(Option<u64>, Option<u64>),
    Split(View, u64),
}

/// A time bound of a query (`NULL` or empty: open).
pub(crate) fn bound(v: Option<&str>, what: &str) -> Result<Option<u64>, ApiError> {
    match v {
        None | Some("") | Some("NULL") | Some("null") => Ok(None),
        Some(s) => parse_time(s)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("{what}: {}", short(&e)))),
    }
}

pub(crate) fn selection(q: &Query, keys: [&str; 4]) -> Result<Selection, ApiError> {
    let [start, stop, view, split] = keys;
    match (q.get(view), q.get(split)) {
        (Some(v), Some(k)) => {
            let view = View::parse(v)?;
            let k = k.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("{split} must be a split index (0, 1, …)"))
            })?;
            return Ok(Selection::Split(view, k));
        }
        (None, None) => {}
        _ => {
            return Err(ApiError::bad_request(format!(
                "give {view} and {split} together"
            )));
        }
    }
    let (a, b) = (bound(q.get(start), start)?, bound(q.get(stop), stop)?);
    if let (Some(a), Some(b)) = (a, b)
        && b < a
    {
        return Err(ApiError::bad_request(format!(
            "{stop} ({b}) is before {start} ({a})"
        )));
    }
    Ok(match (a, b) {
        (None, None) => Selection::All,
        _ => Selection::Time(a, b),
    })
}

fn resolve(
    r: &StreamReader,
    sel: Selection,
) -> Result<(PacketRange, String), wirecap_store::Error> {
    Ok(match sel {
        Selection::All => (r.full_range(), r.name().to_owned()),
        Selection::Time(a, b) => (
            r.time_range(a, b)?,
            format!(
                "{}_{}-{}",
                r.name(),
                a.map_or("start".into(), |v| v.to_string()),
                b.map_or("end".into(), |v| v.to_string())
            ),
        ),
        Selection::Split(view, k) => {
            let s = r.split(view, k)?;
            (s.range, format!("{}_{view}_{}", r.name(), s.name))
        }
    })
}

pub(crate) struct DownloadAsk<'a> {
    pub name: String,
    pub selection: Selection,
    pub format: Option<&'a str>,
    pub compress: Option<&'a str>,
    pub filter: Option<&'a str>,
    pub bpf: Option<&'a str>,
    /// What the request calls `filter` and `bpf` (for error messages).
    pub names: (&'static str, &'static str),
}

/// Answers `ask`: opens the stream, resolves the selection, compiles the filters and
/// streams the file (see [`crate::download`]).
pub(crate) async fn download(
    app: &Shared,
    headers: &HeaderMap,
    ask: DownloadAsk<'_>,
) -> Result<Response, ApiError> {
    let h = |n: header::HeaderName| headers.get(n).and_then(|v| v.to_str().ok());
    let format = download::negotiate_format(ask.format, h(header::ACCEPT))?;
    let encoding = download::negotiate_encoding(ask.compress, h(header::ACCEPT_ENCODING))?;
    let (filter_text, bpf_text) = (ask.filter.map(str::to_owned), ask.bpf.map(str::to_owned));
    let a = app.clone();
    let (name, sel, names) = (ask.name, ask.selection, ask.names);
    let d = blocking(move || {
        let reader = a
            .engine
            .store()
            .open_stream(&name)
            .map_err(|e| download::store_failure(e, &name))?;
        let (range, mut filename) =
            resolve(&reader, sel).map_err(|e| download::store_failure(e, &name))?;
        let filter = download::compile_filter(
            filter_text.as_deref(),
            bpf_text.as_deref(),
            reader.link_type(),
            now_ns(),
            names,
        )?;
        if filter.is_some() {
            filename =
                download::filtered_name(&filename, filter_text.as_deref(), bpf_text.as_deref());
        }
        Ok(download::Download {
            packets: filter.is_none().then(|| range.packets()),
            stream: reader.name().to_owned(),
            packet_range: (range.first_packet, range.end_packet),
            export: wirecap_query::Export::new(reader, range, format, filter),
            format,
            encoding,
            filename,
        })
    })
    .await?;
    download::respond(d, headers, &app.slots, Some(app.metrics.clone())).await
}
