//! `/api/v1/flows`: the flows of every stream with packets in a time range, through a
//! filter, sorted and paged (see [`wirecap_query::flowlist`]); JSON, or CSV with
//! `format=csv`. `/api/v1/streams/{name}/flows/{id}/pcap`: one flow's packets, read at
//! the positions its stream's flow index keeps (see [`wirecap_query::flow_export`]).

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use wirecap_appliance::api::FlowPage;
use wirecap_query::flowlist::{self, FlowAsk, FlowSort};
use wirecap_store::now_ns;

use crate::download;
use crate::error::{ApiError, ErrorBody};
use crate::packets::bound;
use crate::query::Query;
use crate::respond::{blocking, json_ok, stream_name};
use crate::state::Shared;

/// Most rows of one page.
pub const MAX_LIMIT: usize = 10_000;

#[utoipa::path(get, path = "/api/v1/flows", tag = "search",
    params(
        ("start" = String, Query, description = "first packet time, inclusive: ns since the epoch or ISO-8601"),
        ("stop" = String, Query, description = "stop time, exclusive"),
        ("filter" = Option<String>, Query, description = "the appliance's filter language"),
        ("bpf" = Option<String>, Query, description = "tcpdump syntax, ANDed with filter"),
        ("sort" = Option<String>, Query, description = "start (default), duration, packets, bytes, proto, src, dst or stream; a leading - sorts descending"),
        ("limit" = Option<usize>, Query, description = "rows per page (100, at most 10000)"),
        ("cursor" = Option<String>, Query, description = "the `next` of the page before"),
        ("format" = Option<String>, Query, description = "json (default) or csv")),
    responses(
        (status = 200, description = "a page of flows and the totals of every matching flow (CSV: the page's rows; `x-wirecap-total` and `x-wirecap-next` carry the total and the next cursor)", body = FlowPage),
        (status = 400, description = "a bad time, filter, sort or cursor", body = ErrorBody),
        (status = "default", body = ErrorBody)))]
pub(crate) async fn flows(
    State(app): State<Shared>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let start = bound(Some(q.require("start")?), "start")?;
    let stop = bound(Some(q.require("stop")?), "stop")?;
    let (sort, desc) = FlowSort::parse(q.get("sort").unwrap_or("start"))
        .map_err(|e| ApiError::field("sort", e.to_string()))?;
    let limit = match q.get("limit") {
        None | Some("") => 100,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::field("limit", format!("limit must be 1 to {MAX_LIMIT} rows"))
            })?,
    };
    let csv = match q.get("format") {
        None | Some("" | "json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::field("format", "format must be json or csv")),
    };
    let ask = FlowAsk {
        sort,
        desc,
        limit,
        cursor: q.get("cursor").filter(|c| !c.is_empty()).map(str::to_owned),
    };
    let filter_text = q.get("filter").map(str::to_owned);
    let bpf_text = q.get("bpf").map(str::to_owned);
    let a = app.clone();
    let page = blocking(move || {
        // A filter mistake is kept aside to answer with its own message and status.
        let mut bad_filter = None;
        let now = now_ns();
        let r = flowlist::flows(
            a.engine.store(),
            start,
            stop,
            |link| {
                download::compile_filter(
                    filter_text.as_deref(),
                    bpf_text.as_deref(),
                    link,
                    now,
                    ("filter", "bpf"),
                )
                .map_err(|e| {
                    bad_filter = Some(e);
                    wirecap_query::Error::Invalid("filter".into())
                })
            },
            &ask,
        );
        match (r, bad_filter) {
            (Err(_), Some(e)) => Err(e),
            (Ok(p), _) => Ok(p),
            (Err(wirecap_query::Error::Store(se)), _) => Err(ApiError::from(se)),
            (Err(wirecap_query::Error::Invalid(m)), _) => Err(ApiError::bad_request(m)),
            (Err(other), _) => {
                tracing::error!("flows: {other}");
                Err(ApiError::internal(
                    "the flow listing failed; see the server log",
                ))
            }
        }
    })
    .await?;
    if csv {
        let mut body = Vec::new();
        page.write_csv(&mut body)
            .map_err(|_| ApiError::internal("cannot write CSV"))?;
        let mut resp = (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/csv; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            body,
        )
            .into_response();
        // What the JSON answer says beside the rows.
        let h = resp.headers_mut();
        h.insert("x-wirecap-total", page.total.into());
        if let Some(next) = page
            .next
            .as_deref()
            .and_then(|n| HeaderValue::from_str(n).ok())
        {
            h.insert("x-wirecap-next", next);
        }
        return Ok(resp);
    }
    Ok(json_ok(&FlowPage::of(&page)))
}

#[utoipa::path(get, path = "/api/v1/streams/{name}/flows/{id}/pcap", tag = "search",
    params(("name" = String, Path, description = "the stored stream name"),
        ("id" = u64, Path, description = "the flow's id (`id` of a flow of /api/v1/flows)"),
        ("format" = Option<String>, Query, description = "pcap (default) or pcapng"),
        ("compress" = Option<String>, Query, description = "gzip or zstd")),
    responses((status = 200, description = "the flow's packets, both directions", content_type = "application/vnd.tcpdump.pcap"),
        (status = "default", body = ErrorBody)))]
pub(crate) async fn flow_pcap(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(q.as_deref())?;
    let name = stream_name(&name)?;
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_request("the flow id is a number (`id` of /api/v1/flows)"))?;
    let h = |n: header::HeaderName| headers.get(n).and_then(|v| v.to_str().ok());
    let format = download::negotiate_format(q.get("format"), h(header::ACCEPT))?;
    let encoding = download::negotiate_encoding(q.get("compress"), h(header::ACCEPT_ENCODING))?;
    let a = app.clone();
    let n = name.clone();
    let export = blocking(move || {
        wirecap_query::flow_export(a.engine.store(), &n, id, format)
            .map_err(|e| download::read_failure(e, &n))
    })
    .await?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("stream {name:?} has no flow {id}"),
        )
    })?;
    let d = download::Download {
        export,
        format,
        encoding,
        stream: name.clone(),
        packet_range: (id, id),
        packets: None,
        filename: format!("{name}_flow_{id}"),
    };
    download::respond(d, &headers, &app.slots, Some(app.metrics.clone())).await
}
