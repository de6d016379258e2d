//! `/api/v1/search`: a time range and a filter over every stream that overlaps it, as one
//! time-ordered capture file (see [`wirecap_query::search`]), downloaded like a stream
//! (through [`crate::download`]: streamed, `Range` when the size is known).

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use wirecap_query::search;
use wirecap_store::now_ns;

use crate::download;
use crate::error::{ApiError, ErrorBody};
use crate::packets::bound;
use crate::query::Query;
use crate::respond::blocking;
use crate::state::Shared;

/// A search's answer before anything is read: store errors keep their status, a range
/// over streams of different link types is the client's to narrow.
fn plan_failure(e: wirecap_query::Error) -> ApiError {
    match e {
        wirecap_query::Error::Store(se) => ApiError::from(se),
        wirecap_query::Error::Invalid(m) => ApiError::bad_request(m),
        other => {
            tracing::error!("search: {other}");
            ApiError::internal("the search failed; see the server log")
        }
    }
}

/// Names the parts of an unfiltered search for its `ETag`: the same streams and ranges
/// are the same bytes.
fn tag(plan: &search::Plan) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for p in plan.parts() {
        let r = p.range();
        h.update(p.name().as_bytes());
        h.update([0]);
        for v in [r.first_packet, r.end_packet, r.start_pos, r.end_pos] {
            h.update(v.to_le_bytes());
        }
    }
    let d = h.finalize();
    let hex: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("search_{hex}")
}

#[utoipa::path(get, path = "/api/v1/search", tag = "search",
    params(
        ("start" = String, Query, description = "first packet time, inclusive: ns since the epoch or ISO-8601"),
        ("stop" = String, Query, description = "stop time, exclusive"),
        ("filter" = Option<String>, Query, description = "the appliance's filter language"),
        ("bpf" = Option<String>, Query, description = "tcpdump syntax, ANDed with filter"),
        ("format" = Option<String>, Query, description = "pcap (default) or pcapng"),
        ("compress" = Option<String>, Query, description = "gzip or zstd")),
    responses(
        (status = 200, description = "the matching packets of every stream with packets in [start, stop), merged in time order (Range supported when unfiltered); `x-wirecap-streams` counts the streams read", content_type = "application/vnd.tcpdump.pcap"),
        (status = 206, description = "a range of them"),
        (status = 400, description = "a bad time or filter, or streams of different link types in the range", body = ErrorBody),
        (status = "default", body = ErrorBody)))]
pub(crate) async fn search(
    State(app): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let start = bound(Some(q.require("start")?), "start")?;
    let stop = bound(Some(q.require("stop")?), "stop")?;
    let h = |n: header::HeaderName| headers.get(n).and_then(|v| v.to_str().ok());
    let format = download::negotiate_format(q.get("format"), h(header::ACCEPT))?;
    let encoding = download::negotiate_encoding(q.get("compress"), h(header::ACCEPT_ENCODING))?;
    let filter_text = q
        .get("filter")
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned);
    let bpf_text = q
        .get("bpf")
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned);
    let a = app.clone();
    let (d, streams, skipped) = blocking(move || {
        let plan = search::plan(a.engine.store(), start, stop).map_err(plan_failure)?;
        let filter = download::compile_filter(
            filter_text.as_deref(),
            bpf_text.as_deref(),
            plan.link_type(),
            now_ns(),
            ("filter", "bpf"),
        )?;
        let name = |t: Option<u64>| t.map_or_else(|| "open".to_owned(), |t| t.to_string());
        let mut filename = format!("search_{}-{}", name(start), name(stop));
        if filter.is_some() {
            filename =
                download::filtered_name(&filename, filter_text.as_deref(), bpf_text.as_deref());
        }
        let (streams, skipped) = (plan.parts().len(), plan.skipped().len());
        for (stream, why) in plan.skipped() {
            tracing::warn!(stream, "left out of a search: {why}");
        }
        Ok((
            download::Download {
                packets: filter.is_none().then(|| plan.packets()),
                stream: tag(&plan),
                packet_range: (start.unwrap_or(0), stop.unwrap_or(u64::MAX)),
                export: plan.search(format, filter),
                format,
                encoding,
                filename,
            },
            streams,
            skipped,
        ))
    })
    .await?;
    let mut resp = download::respond(d, &headers, &app.slots, Some(app.metrics.clone())).await?;
    let hs = resp.headers_mut();
    hs.insert("x-wirecap-streams", streams.into());
    if skipped > 0 {
        // Streams that could not be read are named in the server log, never dropped silently.
        hs.insert("x-wirecap-streams-skipped", skipped.into());
    }
    Ok(resp)
}
